//! Weighted rendezvous selection: every node scores the key, the highest score wins.

use core::cmp::Ordering;
use core::iter::FusedIterator;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// An upstream that keys can be placed on.
///
/// Both answers must stay the same while a [`Rank`] over the node is iterated.
pub trait Node {
    /// The stable identity that placement hashes, e.g. `b"10.0.0.1:1883"`: two proxies agree
    /// on a key's node only when they name the nodes alike.
    fn id(&self) -> &[u8];

    /// The node's share of keys relative to the others; 0 takes it out of selection.
    fn weight(&self) -> u32;
}

impl<N: Node + ?Sized> Node for &N {
    fn id(&self) -> &[u8] {
        (**self).id()
    }

    fn weight(&self) -> u32 {
        (**self).weight()
    }
}

/// A ready-made [`Node`], for callers whose upstream type doesn't already name itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upstream<'a> {
    /// The stable identity, see [`Node::id`].
    pub id: &'a [u8],
    /// The relative share, see [`Node::weight`].
    pub weight: u32,
}

impl<'a> Upstream<'a> {
    /// A node, const so that fixed upstream tables can be statics.
    pub const fn new(id: &'a [u8], weight: u32) -> Self {
        Self { id, weight }
    }
}

impl Node for Upstream<'_> {
    fn id(&self) -> &[u8] {
        self.id
    }

    fn weight(&self) -> u32 {
        self.weight
    }
}

/// The index of the node that `key` belongs on, or `None` when no node has a weight.
///
/// The same as the first item of [`rank`], in one pass over the nodes.
pub fn pick<N: Node>(key: &[u8], nodes: &[N]) -> Option<usize> {
    rank(key, nodes).next()
}

/// Every node of non-zero weight, best first, for failing over when the first choice is down.
///
/// Each step scans all nodes, so it allocates nothing; with tens of nodes that costs less than
/// sorting into a buffer would.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub fn rank<'a, N: Node>(key: &'a [u8], nodes: &'a [N]) -> Rank<'a, N> {
    Rank { key, nodes, last: None }
}

/// How strongly `node` claims `key`: `weight / -ln(u)`, `u` drawn from the node's hash of the
/// key. 0 for a node of weight 0; otherwise positive and finite.
///
/// The highest score wins. It is public for callers that combine it with their own state, such
/// as skipping nodes that are draining.
pub fn score(key: &[u8], node: &impl Node) -> f64 {
    f64::from(node.weight()) / -libm::log(unit(hash(key, node.id())))
}

/// The node's hash of the key: XXH3-64 of the key, seeded with XXH3-64 of the node's identity.
fn hash(key: &[u8], id: &[u8]) -> u64 {
    xxh3_64_with_seed(key, xxh3_64(id))
}

/// The top 52 bits of the hash as the midpoint of one of 2^52 equal cells of (0, 1): exact in
/// an `f64`, and never 0 or 1, so the logarithm is finite and non-zero.
fn unit(hash: u64) -> f64 {
    const CELLS: f64 = (1u64 << 52) as f64;
    ((hash >> 12) as f64 + 0.5) / CELLS
}

/// The nodes of [`rank`], best first.
#[derive(Clone, Debug)]
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Rank<'a, N> {
    key: &'a [u8],
    nodes: &'a [N],
    last: Option<Candidate<'a>>,
}

impl<N: Node> Iterator for Rank<'_, N> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let mut best: Option<Candidate<'_>> = None;
        for (index, node) in self.nodes.iter().enumerate() {
            let candidate = Candidate { score: score(self.key, node), id: node.id(), index };
            let eligible = candidate.score > 0.0 && self.last.is_none_or(|last| last.before(&candidate));
            if eligible && best.is_none_or(|best| candidate.before(&best)) {
                best = Some(candidate);
            }
        }
        match best {
            Some(best) => self.last = Some(best),
            // Forget the nodes, or the next call would start over from the best.
            None => self.nodes = &[],
        }
        best.map(|best| best.index)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.nodes.len()))
    }
}

impl<N: Node> FusedIterator for Rank<'_, N> {}

/// A node's claim on the key, ordered so that no two nodes tie.
#[derive(Clone, Copy, Debug)]
struct Candidate<'a> {
    score: f64,
    id: &'a [u8],
    index: usize,
}

impl Candidate<'_> {
    /// Higher score first; equal scores by identity, which all proxies share, then by position
    /// for nodes listed twice.
    fn before(&self, other: &Self) -> bool {
        let order =
            other.score.total_cmp(&self.score).then(self.id.cmp(other.id)).then(self.index.cmp(&other.index));
        order == Ordering::Less
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from the C reference implementation, libxxhash 0.8.1.
    #[test]
    fn hash_matches_the_reference_xxh3() {
        assert_eq!(xxh3_64(b""), 0x2d06_8005_38d3_94c2);
        assert_eq!(xxh3_64(b"a"), 0xe6c6_32b6_1e96_4e1f);
        assert_eq!(xxh3_64(b"10.0.0.1:1883"), 0x1166_fcdf_0118_6dfb);
        assert_eq!(hash(b"sensor-17", b"10.0.0.1:1883"), 0xc3a6_e829_75df_9513);
        assert_eq!(hash(b"sensor-17", b"10.0.0.2:1883"), 0x9533_f49f_b7aa_35b1);
        assert_eq!(hash(b"sensor-17", b"10.0.0.3:1883"), 0x6afa_1a8a_f083_fe2b);
        let long: [u8; 512] = core::array::from_fn(|i| i as u8);
        assert_eq!(hash(&long, b"10.0.0.1:1883"), 0x5393_3726_b0d7_05ec);
    }

    #[test]
    fn unit_stays_inside_the_open_interval() {
        assert_eq!(unit(0), 0.5 / (1u64 << 52) as f64);
        assert!(unit(u64::MAX) < 1.0);
        assert_eq!(unit(u64::MAX), 1.0 - 0.5 / (1u64 << 52) as f64);
    }
}
