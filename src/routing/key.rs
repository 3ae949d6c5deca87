//! Routing keys: which bytes of a CONNECT name the client for placement.

use crate::packet::Connect;

/// Chooses the bytes that place a connection, so every connection of one client lands on the
/// same upstream.
///
/// Keys return `None` when they have nothing to offer, so that [`RoutingKey::or`] can fall back
/// to another; what to do when none has (the client's address, a refusal) is the caller's.
/// An empty value is treated as absent: it names no one, and hashing it would pile every such
/// client onto one node.
pub trait RoutingKey {
    /// The bytes to hash for this connection, or None when this key has nothing to offer.
    fn routing_key<'a>(&self, connect: &Connect<'a>) -> Option<&'a [u8]>;

    /// Fallback combinator: `ClientId.or(Username)`.
    #[must_use = "returns the combined key, leaving this one as it was"]
    fn or<K: RoutingKey>(self, other: K) -> Or<Self, K>
    where
        Self: Sized,
    {
        Or(self, other)
    }
}

/// The Client Identifier, the key of the session a broker keeps.
///
/// `None` when empty: the broker assigns an id then, which no later connection can repeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientId;

/// The User Name, to keep all of one account's clients together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Username;

/// The first CONNECT User Property with this name, such as a tenant or a shard that clients
/// announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserProperty<'n>(pub &'n str);

/// The first key's bytes, or the second's when the first has none; built by [`RoutingKey::or`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Or<A, B>(pub A, pub B);

impl RoutingKey for ClientId {
    fn routing_key<'a>(&self, connect: &Connect<'a>) -> Option<&'a [u8]> {
        non_empty(connect.client_id)
    }
}

impl RoutingKey for Username {
    fn routing_key<'a>(&self, connect: &Connect<'a>) -> Option<&'a [u8]> {
        connect.username.and_then(non_empty)
    }
}

impl RoutingKey for UserProperty<'_> {
    fn routing_key<'a>(&self, connect: &Connect<'a>) -> Option<&'a [u8]> {
        connect.properties.user_properties.get(self.0).and_then(non_empty)
    }
}

impl<A: RoutingKey, B: RoutingKey> RoutingKey for Or<A, B> {
    fn routing_key<'a>(&self, connect: &Connect<'a>) -> Option<&'a [u8]> {
        self.0.routing_key(connect).or_else(|| self.1.routing_key(connect))
    }
}

/// Any function of the packet is a key, for what the provided ones don't cover; a closure
/// goes through [`from_fn`] to get that signature.
impl<F> RoutingKey for F
where
    F: for<'a> Fn(&Connect<'a>) -> Option<&'a [u8]>,
{
    /// The closure's key; an empty one is `None`, as for the keys above.
    fn routing_key<'a>(&self, connect: &Connect<'a>) -> Option<&'a [u8]> {
        self(connect).filter(|key| !key.is_empty())
    }
}

/// Gives a closure the signature of a key, which the compiler cannot infer from the
/// `RoutingKey` bound alone: the returned bytes borrow from the packet, not the closure.
///
/// ```
/// use mqtt_connect::routing::{self, RoutingKey};
/// use mqtt_connect::{Connect, Protocol};
///
/// let site = routing::from_fn(|c| c.client_id.split('/').next().map(str::as_bytes));
/// let connect = Connect::new(Protocol::V5, "berlin/sensor-17");
/// assert_eq!(site.routing_key(&connect), Some(&b"berlin"[..]));
/// ```
pub fn from_fn<F>(f: F) -> F
where
    F: for<'a> Fn(&Connect<'a>) -> Option<&'a [u8]>,
{
    f
}

fn non_empty(value: &str) -> Option<&[u8]> {
    Some(value.as_bytes()).filter(|bytes| !bytes.is_empty())
}
