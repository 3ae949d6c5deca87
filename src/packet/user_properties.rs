//! User Properties: kept as the validated bytes they came in, read lazily.

use core::fmt;

use crate::error::Error;
use crate::spec::{Block, Property};
use crate::values::{Properties, Value};

/// The User Properties of a CONNECT or a will, in wire order.
///
/// A decoded value borrows the property block it came from and stores nothing; one built for
/// encoding borrows a slice of pairs. Both compare equal when their pairs are equal in order.
///
/// ```
/// use mqtt_connect::UserProperties;
///
/// let pairs = [("tenant", "acme"), ("region", "eu"), ("tenant", "other")];
/// let props = UserProperties::new(&pairs);
/// assert_eq!(props.get("tenant"), Some("acme"));
/// assert_eq!(props.len(), 3);
/// ```
#[derive(Clone, Copy)]
pub struct UserProperties<'a>(Repr<'a>);

#[derive(Clone, Copy)]
enum Repr<'a> {
    /// Validated property bytes of `block` holding `len` User Properties, maybe among other
    /// properties.
    Wire {
        bytes: &'a [u8],
        len: usize,
        block: Block,
    },
    Pairs(&'a [(&'a str, &'a str)]),
}

impl<'a> UserProperties<'a> {
    /// User Properties to encode.
    pub const fn new(pairs: &'a [(&'a str, &'a str)]) -> Self {
        Self(Repr::Pairs(pairs))
    }

    /// User Properties in `bytes`, a span of a `block` that the decoder read whole and
    /// whose `len` User Properties it validated.
    pub(crate) const fn from_wire(bytes: &'a [u8], len: usize, block: Block) -> Self {
        Self(Repr::Wire { bytes, len, block })
    }

    /// What [`from_wire`](Self::from_wire) was given, for a value the decoder made; `None`
    /// for pairs to encode. An owned packet keeps it, to rebuild this value without a decode.
    #[cfg(feature = "bytes")]
    pub(crate) const fn wire(&self) -> Option<(&'a [u8], usize, Block)> {
        match self.0 {
            Repr::Wire { bytes, len, block } => Some((bytes, len, block)),
            Repr::Pairs(_) => None,
        }
    }

    /// How many pairs there are.
    pub const fn len(&self) -> usize {
        match self.0 {
            Repr::Wire { len, .. } => len,
            Repr::Pairs(pairs) => pairs.len(),
        }
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pairs, in wire order.
    pub fn iter(&self) -> Iter<'a> {
        let repr = match self.0 {
            Repr::Wire { bytes, block, .. } => IterRepr::Wire(Properties::new(bytes, block)),
            Repr::Pairs(pairs) => IterRepr::Pairs(pairs.iter()),
        };
        Iter { repr, remaining: self.len() }
    }

    /// The value of the first pair named `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        match self.0 {
            // Names compare as bytes; only the value found is turned into text.
            Repr::Wire { bytes, block, .. } => pairs(Properties::new(bytes, block))
                .find(|(n, _)| *n == name.as_bytes())
                .and_then(|(_, value)| core::str::from_utf8(value).ok()),
            Repr::Pairs(pairs) => pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
        }
    }
}

impl Default for UserProperties<'_> {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl<'a> From<&'a [(&'a str, &'a str)]> for UserProperties<'a> {
    fn from(pairs: &'a [(&'a str, &'a str)]) -> Self {
        Self::new(pairs)
    }
}

impl PartialEq for UserProperties<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for UserProperties<'_> {}

impl fmt::Debug for UserProperties<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for UserProperties<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &UserProperties<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// An iterator over User Properties, in wire order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    repr: IterRepr<'a>,
    remaining: usize,
}

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    Wire(Properties<'a>),
    Pairs(core::slice::Iter<'a, (&'a str, &'a str)>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = match &mut self.repr {
            IterRepr::Pairs(pairs) => pairs.next().copied(),
            // The bytes were validated when decoded, so nothing here fails; a failure would
            // only end the iteration early.
            IterRepr::Wire(props) => pairs(props).next().and_then(|(name, value)| {
                Some((core::str::from_utf8(name).ok()?, core::str::from_utf8(value).ok()?))
            }),
        };
        self.remaining = self.remaining.saturating_sub(1);
        pair
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The name and value bytes of each User Property in a validated block, stepping over the
/// other properties.
fn pairs<'a>(
    props: impl Iterator<Item = Result<(Property, Value<'a>), Error>>,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    props.map_while(Result::ok).filter_map(|(_, value)| match value {
        Value::Pair(name, value) => Some((name, value)),
        _ => None,
    })
}
