//! Routing: which upstream broker a connection belongs on, the same answer from every proxy.
//!
//! A [`RoutingKey`] takes the bytes that name the client from its CONNECT; [`pick`] maps them
//! to one of a caller-owned slice of [`Node`]s by weighted rendezvous hashing, and [`rank`]
//! lists the nodes in the order to fail over. Nothing is allocated and no state is kept, so
//! proxies that never talk to each other agree as long as they are given the same nodes.
//!
//! ```
//! use mqtt_connect::routing::{self, ClientId, RoutingKey, Upstream, Username};
//! use mqtt_connect::Status;
//!
//! let bytes = b"\x10\x18\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x03bob\x00\x03pwd";
//! let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(bytes) else { return };
//!
//! let brokers = [
//!     Upstream::new(b"10.0.0.1:1883", 1),
//!     Upstream::new(b"10.0.0.2:1883", 1),
//!     Upstream::new(b"10.0.0.3:1883", 2),
//! ];
//! let key = ClientId.or(Username).routing_key(&packet);
//! assert_eq!(key, Some(&b"c1"[..]));
//! if let Some(key) = key {
//!     let first = routing::pick(key, &brokers);
//!     // When the first choice is down, try the others in this order.
//!     let mut order = routing::rank(key, &brokers);
//!     assert_eq!(order.next(), first);
//!     assert_eq!(order.count(), 2);
//! }
//! ```
//!
//! # The contract
//!
//! Each node hashes the key with XXH3-64 (the xxHash specification), seeded with the XXH3-64
//! hash of the node's identity. The top 52 bits of that hash give `u` in (0, 1), and the node
//! scores `weight / -ln(u)`. The highest score wins; equal scores go to the smaller identity,
//! then to the earlier position. This is the same across processes, machines, platforms and
//! versions of this crate, since each step is specified, and `f64` division and `libm`'s
//! portable logarithm give the same bits on every target but the x87-only `i586` ones.
//! Changing any step is a breaking change.
//!
//! What follows from it:
//!
//! - Removing a node, or setting its weight to 0, moves only the keys that were on it; they
//!   spread over the others in proportion to their weights. The failover order of every key
//!   is the old one without that node.
//! - Adding a node moves keys only onto it, about `weight / total weight` of them.
//! - A node takes `weight / total weight` of the keys in expectation, exactly: the scores are
//!   exponential races, which weight shapes without any rounding to points.
//! - A node's identity is its placement. Renamed, say from an address to a host name, it is a
//!   new node: its keys move to others and it draws a fresh share. Name brokers by what
//!   survives their restarts.
//! - The order of the slice matters only between nodes listed twice.
//!
//! # Compared with rings
//!
//! Ketama rings, as in APISIX's `chash` and nginx's `hash ... consistent`, place 160 points per
//! unit of weight on a CRC32 circle and send a key to the next point. HAProxy's `hash-type
//! consistent` places 16 points per unit of weight, from the server's numeric id by default.
//! A ring must be built and sorted whenever a node or a weight changes, and its shares are only
//! as even as its points fall: with 160 points a node's share is off by several percent, and
//! more with 16. A lookup is then a binary search.
//!
//! Rendezvous keeps no structure: each pick scores every node, O(n) instead of O(log n), some
//! 20 to 40 ns a node (`cargo bench --bench routing`: 108 ns for 3 nodes, 1.24 µs for 64).
//! MQTT clusters run tens of brokers, and a proxy picks once per connection, not per message,
//! so that stays around a microsecond. In exchange there
//! is nothing to rebuild when health checks change the set, the disruption is the minimum
//! possible, weights are exact, and the failover order falls out of the same scores.

mod key;
mod select;

pub use key::{ClientId, Or, RoutingKey, UserProperty, Username, from_fn};
pub use select::{Node, Rank, Upstream, pick, rank, score};
