//! Proof that routing allocates nothing: the test-support crate's counting allocator.

use mqtt_connect::routing::{self, ClientId, RoutingKey, Upstream, UserProperty, Username};
use mqtt_connect::{Connect, Protocol, Status, UserProperties};
use mqtt_connect_testkit::allocations;

const NODES: [Upstream<'static>; 4] = [
    Upstream::new(b"10.0.0.1:1883", 1),
    Upstream::new(b"10.0.0.2:1883", 2),
    Upstream::new(b"10.0.0.3:1883", 0),
    Upstream::new(b"10.0.0.4:1883", 1),
];

#[test]
fn keys_pick_and_rank_allocate_nothing() {
    let pairs = [("region", "eu"), ("tenant", "acme")];
    let mut connect = Connect::new(Protocol::V5, "sensor-17");
    connect.username = Some("bob");
    connect.properties.user_properties = UserProperties::new(&pairs);
    let mut buf = [0u8; 128];
    let len = connect.encode(&mut buf).expect("encodes");

    let (picked, n) = allocations(|| {
        let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(&buf[..len]) else { return None };
        let tenant = UserProperty("tenant").routing_key(&packet)?;
        let key = ClientId.or(Username).routing_key(&packet)?;
        let closure = routing::from_fn(|c| c.client_id.as_bytes().get(..6));
        let prefix = closure.routing_key(&packet)?;
        let ranked = routing::rank(key, &NODES).count();
        Some((
            routing::pick(key, &NODES),
            routing::pick(tenant, &NODES),
            routing::pick(prefix, &NODES),
            ranked,
        ))
    });
    assert_eq!(n, 0, "routing allocated {n} times");
    let (first, tenant, prefix, ranked) = picked.expect("keys found");
    assert!(first.is_some() && tenant.is_some() && prefix.is_some());
    assert_eq!(ranked, 3);
}

#[test]
fn the_counter_counts() {
    let (_, n) = allocations(|| Box::new(1));
    assert_eq!(n, 1);
}

#[test]
fn the_counter_counts_this_thread_only() {
    use std::sync::{Arc, Barrier};
    let (start, done) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let other = {
        let (start, done) = (start.clone(), done.clone());
        std::thread::spawn(move || {
            start.wait();
            let boxed = std::hint::black_box(Box::new(1));
            done.wait();
            *boxed
        })
    };
    let (_, n) = allocations(|| {
        start.wait();
        done.wait();
    });
    assert_eq!(other.join().expect("the other thread allocates"), 1);
    assert_eq!(n, 0, "another thread's allocation counted");
}
