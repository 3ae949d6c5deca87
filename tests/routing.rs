//! Routing: key extraction, and the placement properties the module docs promise.

use mqtt_connect::routing::{self, ClientId, Node, RoutingKey, Upstream, UserProperty, Username};
use mqtt_connect::{Connect, Protocol, Status, UserProperties};
use proptest::prelude::*;

/// Keys per measurement. A share near 0.1 then has a sampling deviation near 0.001, so the
/// bounds below (0.005 on moved shares, 3 % on weighted shares) sit at about five deviations.
const KEYS: usize = 100_000;

fn brokers(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("10.0.0.{i}:1883")).collect()
}

fn upstreams<'a>(ids: &'a [String], weights: &[u32]) -> Vec<Upstream<'a>> {
    ids.iter().zip(weights).map(|(id, &w)| Upstream::new(id.as_bytes(), w)).collect()
}

fn keys() -> impl Iterator<Item = Vec<u8>> {
    (0..KEYS).map(|i| format!("client-{i}").into_bytes())
}

/// The identity of the picked node, so that picks over different slices compare.
fn pick_id<'a>(key: &[u8], nodes: &[Upstream<'a>]) -> Option<&'a [u8]> {
    routing::pick(key, nodes).and_then(|i| nodes.get(i)).map(|n| n.id)
}

fn rank_ids<'a>(key: &[u8], nodes: &[Upstream<'a>]) -> Vec<&'a [u8]> {
    routing::rank(key, nodes).filter_map(|i| nodes.get(i)).map(|n| n.id).collect()
}

// Key extraction.

fn decoded<'b>(connect: &Connect<'_>, buf: &'b mut [u8]) -> Connect<'b> {
    let len = connect.encode(buf).expect("encodes");
    match mqtt_connect::decode(&buf[..len]) {
        Ok(Status::Complete { packet, .. }) => packet,
        other => panic!("did not decode: {other:?}"),
    }
}

#[test]
fn client_id_is_none_when_empty() {
    assert_eq!(ClientId.routing_key(&Connect::new(Protocol::V5, "")), None);
    assert_eq!(ClientId.routing_key(&Connect::new(Protocol::V3_1_1, "c1")), Some(&b"c1"[..]));
}

#[test]
fn username_when_present_and_not_empty() {
    let mut connect = Connect::new(Protocol::V3_1_1, "c1");
    assert_eq!(Username.routing_key(&connect), None);
    connect.username = Some("");
    assert_eq!(Username.routing_key(&connect), None);
    connect.username = Some("bob");
    assert_eq!(Username.routing_key(&connect), Some(&b"bob"[..]));
}

/// A closure's empty key is absent too, as the trait promises: hashed, it would pile every
/// client whose key is empty onto one node.
#[test]
fn a_closures_empty_key_is_none_and_falls_back() {
    let site = routing::from_fn(|c| c.client_id.split('/').next().map(str::as_bytes));
    let mut connect = Connect::new(Protocol::V5, "");
    assert_eq!(site.routing_key(&connect), None);
    connect.username = Some("bob");
    assert_eq!(site.or(Username).routing_key(&connect), Some(&b"bob"[..]));
}

#[test]
fn user_property_takes_the_first_match_from_the_wire() {
    let pairs = [("region", "eu"), ("tenant", "acme"), ("tenant", "other")];
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.properties.user_properties = UserProperties::new(&pairs);
    let mut buf = [0u8; 128];
    let connect = decoded(&connect, &mut buf);
    assert_eq!(UserProperty("tenant").routing_key(&connect), Some(&b"acme"[..]));
    assert_eq!(UserProperty("region").routing_key(&connect), Some(&b"eu"[..]));
    assert_eq!(UserProperty("shard").routing_key(&connect), None);
}

#[test]
fn user_property_ignores_the_will() {
    let pairs = [("tenant", "acme")];
    let mut will = mqtt_connect::Will::new("t", b"bye");
    will.properties.user_properties = UserProperties::new(&pairs);
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.will = Some(will);
    let mut buf = [0u8; 128];
    assert_eq!(UserProperty("tenant").routing_key(&decoded(&connect, &mut buf)), None);
}

#[test]
fn or_falls_back_in_order() {
    let pairs = [("tenant", "acme")];
    let mut connect = Connect::new(Protocol::V5, "");
    let key = ClientId.or(UserProperty("tenant")).or(Username);
    assert_eq!(key.routing_key(&connect), None);
    connect.username = Some("bob");
    assert_eq!(key.routing_key(&connect), Some(&b"bob"[..]));
    connect.properties.user_properties = UserProperties::new(&pairs);
    assert_eq!(key.routing_key(&connect), Some(&b"acme"[..]));
    connect.client_id = "c1";
    assert_eq!(key.routing_key(&connect), Some(&b"c1"[..]));
}

fn site<'a>(connect: &Connect<'a>) -> Option<&'a [u8]> {
    connect.client_id.split_once('/').map(|(site, _)| site.as_bytes())
}

#[test]
fn functions_and_closures_are_keys() {
    let connect = Connect::new(Protocol::V5, "berlin/sensor-17");
    assert_eq!(site.routing_key(&connect), Some(&b"berlin"[..]));
    let len = 6;
    let prefix = routing::from_fn(move |c| c.client_id.as_bytes().get(..len));
    assert_eq!(prefix.routing_key(&connect), Some(&b"berlin"[..]));
    assert_eq!(site.or(ClientId).routing_key(&Connect::new(Protocol::V5, "c1")), Some(&b"c1"[..]));
}

// Selection.

#[test]
fn no_node_picks_nothing() {
    let none: [Upstream<'_>; 0] = [];
    assert_eq!(routing::pick(b"c1", &none), None);
    assert_eq!(routing::rank(b"c1", &none).next(), None);
    let idle = [Upstream::new(b"a", 0), Upstream::new(b"b", 0)];
    assert_eq!(routing::pick(b"c1", &idle), None);
    assert_eq!(routing::rank(b"c1", &idle).count(), 0);
}

#[test]
fn zero_weight_excludes_a_node() {
    let ids = brokers(3);
    let nodes = upstreams(&ids, &[1, 0, 1]);
    assert_eq!(routing::score(b"c1", &nodes[1]), 0.0);
    for key in keys().take(10_000) {
        assert_ne!(routing::pick(&key, &nodes), Some(1));
        assert!(!routing::rank(&key, &nodes).any(|i| i == 1));
    }
}

#[test]
fn rank_is_fused() {
    let ids = brokers(3);
    let nodes = upstreams(&ids, &[1, 1, 1]);
    let mut order = routing::rank(b"c1", &nodes);
    assert_eq!(order.by_ref().count(), 3);
    assert_eq!(order.next(), None);
    assert_eq!(order.next(), None);
}

/// A slice of references ranks as the slice of nodes does: `&N` is a `Node` with `N`'s id
/// and weight, so a caller can route over borrowed upstreams.
#[test]
fn references_to_nodes_rank_as_the_nodes() {
    let ids = brokers(4);
    let nodes = upstreams(&ids, &[1, 0, 3, 1]);
    let refs: Vec<&Upstream<'_>> = nodes.iter().collect();
    assert_eq!(<&Upstream<'_> as Node>::weight(&refs[2]), 3);
    assert_eq!(<&Upstream<'_> as Node>::id(&refs[2]), ids[2].as_bytes());
    for key in keys().take(1_000) {
        let order: Vec<_> = routing::rank(&key, &refs).collect();
        assert_eq!(order, routing::rank(&key, &nodes).collect::<Vec<_>>());
    }
}

/// Pins the hash and the scoring end to end: a change here moves keys between brokers that
/// proxies of different versions would disagree on.
#[test]
fn placement_is_pinned() {
    let ids = brokers(5);
    let nodes = upstreams(&ids, &[1, 1, 2, 1, 3]);
    // The documented formula over hashes from the C reference implementation, libxxhash 0.8.1.
    let reference = [0xc3a6_e829_75df_9513_u64, 0x9533_f49f_b7aa_35b1, 0x6afa_1a8a_f083_fe2b];
    for (node, hash) in nodes.iter().zip(reference) {
        let u = ((hash >> 12) as f64 + 0.5) / (1u64 << 52) as f64;
        let expected = f64::from(node.weight) / -u.ln();
        let score = routing::score(b"sensor-17", node);
        assert!((score / expected - 1.0).abs() < 1e-12, "{score} against {expected}");
    }
    assert_eq!(routing::rank(b"sensor-17", &nodes[..3]).collect::<Vec<_>>(), [0, 2, 1]);
    let pinned: [(&[u8], [usize; 5]); 4] = [
        (b"sensor-17", [0, 4, 2, 1, 3]),
        (b"c1", [1, 2, 3, 4, 0]),
        (b"", [4, 3, 2, 0, 1]),
        (b"tenant/acme", [1, 4, 3, 2, 0]),
    ];
    for (key, order) in pinned {
        assert_eq!(routing::rank(key, &nodes).collect::<Vec<_>>(), order, "{key:?}");
    }
    let scores: Vec<u64> = nodes.iter().map(|n| routing::score(b"sensor-17", n).to_bits()).collect();
    assert_eq!(
        scores,
        [
            0x400d_c1ea_2912_4ab0,
            0x3ffd_a303_14ba_02f9,
            0x4002_5636_4e5d_fdd4,
            0x3ff3_bac1_4b77_f3d3,
            0x4007_0ea7_864b_3a1b
        ]
    );
}

/// 10 equal nodes, one removed: every moved key was on it, and the moved share is 1/10 ± 0.005.
#[test]
fn removal_moves_only_the_removed_nodes_keys() {
    let ids = brokers(10);
    let before = upstreams(&ids, &[1; 10]);
    let removed = before[3].id;
    let after: Vec<_> = before.iter().copied().filter(|n| n.id != removed).collect();
    let mut moved = 0;
    for key in keys() {
        let (old, new) = (pick_id(&key, &before), pick_id(&key, &after));
        if old != new {
            assert_eq!(old, Some(removed), "a key moved off a node that stayed");
            moved += 1;
        }
    }
    let share = moved as f64 / KEYS as f64;
    println!("removal: moved {share:.4} of keys, ideal {:.4}", 1.0 / 10.0);
    assert!((share - 0.1).abs() < 0.005, "moved {share}");
}

/// 10 equal nodes and an 11th: every moved key is on it, and the moved share is 1/11 ± 0.005.
#[test]
fn addition_moves_keys_only_onto_the_new_node() {
    let ids = brokers(11);
    let after = upstreams(&ids, &[1; 11]);
    let before = &after[..10];
    let added = after[10].id;
    let mut moved = 0;
    for key in keys() {
        let (old, new) = (pick_id(&key, before), pick_id(&key, &after));
        if old != new {
            assert_eq!(new, Some(added), "a key moved between nodes that stayed");
            moved += 1;
        }
    }
    let share = moved as f64 / KEYS as f64;
    println!("addition: moved {share:.4} of keys, ideal {:.4}", 1.0 / 11.0);
    assert!((share - 1.0 / 11.0).abs() < 0.005, "moved {share}");
}

/// Weights 1, 1, 2, 4: each share within 3 % of weight / total, weight 2 at 2 ± 0.1 times weight 1.
#[test]
fn weights_shape_the_share() {
    let weights = [1, 1, 2, 4];
    let ids = brokers(weights.len());
    let nodes = upstreams(&ids, &weights);
    let mut counts = [0usize; 4];
    for key in keys() {
        if let Some(count) = routing::pick(&key, &nodes).and_then(|i| counts.get_mut(i)) {
            *count += 1;
        }
    }
    let total: u32 = weights.iter().sum();
    for (count, weight) in counts.iter().zip(weights) {
        let share = *count as f64 / KEYS as f64;
        let ideal = f64::from(weight) / f64::from(total);
        println!("weight {weight}: share {share:.4}, ideal {ideal:.4}");
        assert!((share / ideal - 1.0).abs() < 0.03, "weight {weight}: {share} against {ideal}");
    }
    let ratio = counts[2] as f64 / ((counts[0] + counts[1]) as f64 / 2.0);
    println!("weight 2 over weight 1: {ratio:.3}");
    assert!((ratio - 2.0).abs() < 0.1, "{ratio}");
}

// Properties over random node sets.

/// Up to 12 nodes with distinct identities and weights 0 to 3.
fn nodes() -> impl Strategy<Value = Vec<(String, u32)>> {
    prop::collection::vec(("[a-z0-9.:]{0,12}", 0u32..4), 0..12)
        .prop_map(|v| v.into_iter().enumerate().map(|(i, (id, w))| (format!("{i}-{id}"), w)).collect())
}

fn as_upstreams(nodes: &[(String, u32)]) -> Vec<Upstream<'_>> {
    nodes.iter().map(|(id, w)| Upstream::new(id.as_bytes(), *w)).collect()
}

proptest! {
    #[test]
    fn rank_covers_every_eligible_node_once_best_first(
        nodes in nodes(),
        key in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let nodes = as_upstreams(&nodes);
        let order: Vec<usize> = routing::rank(&key, &nodes).collect();
        let mut seen = order.clone();
        seen.sort_unstable();
        let eligible: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].weight() > 0).collect();
        prop_assert_eq!(seen, eligible);
        prop_assert_eq!(order.first().copied(), routing::pick(&key, &nodes));
        let scores: Vec<f64> = order.iter().map(|&i| routing::score(&key, &nodes[i])).collect();
        prop_assert!(scores.windows(2).all(|w| w[0] >= w[1]));
        prop_assert!(scores.iter().all(|s| s.is_finite() && *s > 0.0));
    }

    #[test]
    fn placement_ignores_the_order_of_the_slice(
        nodes in nodes(),
        key in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let nodes = as_upstreams(&nodes);
        let reversed: Vec<_> = nodes.iter().rev().copied().collect();
        prop_assert_eq!(rank_ids(&key, &nodes), rank_ids(&key, &reversed));
        prop_assert_eq!(pick_id(&key, &nodes), pick_id(&key, &reversed));
    }

    #[test]
    fn removal_keeps_the_rest_of_the_order(
        nodes in nodes(),
        removed in any::<prop::sample::Index>(),
        key in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        prop_assume!(!nodes.is_empty());
        let before = as_upstreams(&nodes);
        let removed = removed.index(before.len());
        let mut after = before.clone();
        after.remove(removed);
        let mut expected = rank_ids(&key, &before);
        expected.retain(|id| *id != before[removed].id);
        prop_assert_eq!(rank_ids(&key, &after), expected);
    }

    #[test]
    fn addition_and_weight_gain_move_keys_only_onto_that_node(
        nodes in nodes(),
        changed in any::<prop::sample::Index>(),
        gain in 1u32..4,
        key in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        prop_assume!(!nodes.is_empty());
        let after = as_upstreams(&nodes);
        let changed = changed.index(after.len());
        let mut before = after.clone();
        before.remove(changed);
        let new = pick_id(&key, &after);
        prop_assert!(new == pick_id(&key, &before) || new == Some(after[changed].id));

        let mut heavier = after.clone();
        heavier[changed].weight += gain;
        let new = pick_id(&key, &heavier);
        prop_assert!(new == pick_id(&key, &after) || new == Some(after[changed].id));
    }
}

/// A rank's size hint: at most one item for each node it was given, and none once it has
/// ended.
#[test]
fn rank_hints_at_most_one_item_a_node() {
    let ids = brokers(3);
    let nodes = upstreams(&ids, &[1, 0, 1]);
    let mut order = routing::rank(b"c1", &nodes);
    assert_eq!(order.size_hint(), (0, Some(3)));
    assert_eq!(order.by_ref().count(), 2);
    assert_eq!(order.size_hint(), (0, Some(0)));
}
