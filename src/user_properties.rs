//! User Properties: kept as the validated bytes they came in, read lazily.

use core::fmt;

use crate::error::{Error, Field};
use crate::properties::{Property, Value};
use crate::strings;

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
    /// Validated property bytes holding `len` User Properties, maybe among other properties.
    Wire {
        bytes: &'a [u8],
        len: usize,
    },
    Pairs(&'a [(&'a str, &'a str)]),
}

impl<'a> UserProperties<'a> {
    /// User Properties to encode.
    pub const fn new(pairs: &'a [(&'a str, &'a str)]) -> Self {
        Self(Repr::Pairs(pairs))
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
            Repr::Wire { bytes, .. } => IterRepr::Wire(bytes),
            Repr::Pairs(pairs) => IterRepr::Pairs(pairs.iter()),
        };
        Iter { repr, remaining: self.len() }
    }

    /// The value of the first pair named `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        match self.0 {
            // Names compare as bytes; only the value found is turned into text.
            Repr::Wire { mut bytes, .. } => loop {
                let (n, value) = next_pair(&mut bytes)?;
                if n == name.as_bytes() {
                    break core::str::from_utf8(value).ok();
                }
            },
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
    Wire(&'a [u8]),
    Pairs(core::slice::Iter<'a, (&'a str, &'a str)>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = match &mut self.repr {
            IterRepr::Pairs(pairs) => pairs.next().copied(),
            // The bytes were validated when decoded, so nothing here fails; a failure would
            // only end the iteration early.
            IterRepr::Wire(bytes) => next_pair(bytes).and_then(|(name, value)| {
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

/// The name and value bytes of the next User Property in `bytes`, a span of framed
/// properties, stepping over any other property; `None` at the end.
#[inline]
fn next_pair<'a>(bytes: &mut &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
    let field = Field::Property(Property::UserProperty);
    loop {
        let [id, tail @ ..] = *bytes else { return None };
        let property = Property::from_id(*id)?;
        if property != Property::UserProperty {
            *bytes = Value::read(tail, property).ok()?.0;
            continue;
        }
        let (rest, name) = strings::binary(tail, field).ok()?;
        let (rest, value) = strings::binary(rest, field).ok()?;
        *bytes = rest;
        return Some((name, value));
    }
}

/// Gathers the span of a block that holds its User Properties while the block is read.
pub(crate) struct UserPropertiesBuilder<'a> {
    block: &'a [u8],
    start: Option<usize>,
    end: usize,
    len: usize,
    /// The span holds User Properties only, and every length prefix is below 128.
    plain: bool,
    /// Zero bytes in the span's length prefixes, when `plain`.
    zeros: usize,
}

impl<'a> UserPropertiesBuilder<'a> {
    pub(crate) fn new(block: &'a [u8]) -> Self {
        Self { block, start: None, end: 0, len: 0, plain: true, zeros: 0 }
    }

    /// Records a User Property that starts where `at` does and ends where `after` starts
    /// (both suffixes of the block), with the lengths of its name and value.
    pub(crate) fn push(&mut self, at: &[u8], after: &[u8], lens: [usize; 2]) {
        let start = self.block.len().saturating_sub(at.len());
        self.plain &= self.start.is_none() || start == self.end;
        self.start.get_or_insert(start);
        self.end = self.block.len().saturating_sub(after.len());
        self.len = self.len.saturating_add(1);
        for len in lens {
            // Below 128, the high byte is 0, and the low one too when the string is empty.
            self.plain &= len < 0x80;
            self.zeros = self.zeros.saturating_add(1 + usize::from(len == 0));
        }
    }

    /// Validates every User Property string, then hands out their span.
    ///
    /// A plain span is checked whole, without a walk: one `from_utf8` call, and one count of
    /// its zero bytes. Outside the strings it holds only the id `&` and length bytes below
    /// 128, all ASCII, so a valid run splits into valid strings, and a zero byte the length
    /// prefixes do not account for is a U+0000 in a string. Any other span is walked, and
    /// each string validated by itself.
    pub(crate) fn finish(self) -> Result<UserProperties<'a>, Error> {
        let Some(span) = self.start.and_then(|start| self.block.get(start..self.end)) else {
            return Ok(UserProperties::default());
        };
        let field = Field::Property(Property::UserProperty);
        if self.plain && core::str::from_utf8(span).is_ok() {
            if strings::count_zero_bytes(span) != self.zeros {
                return Err(Error::NullCharacter { field });
            }
            return Ok(UserProperties(Repr::Wire { bytes: span, len: self.len }));
        }
        let mut rest = span;
        while let [id, tail @ ..] = rest {
            let property = Property::from_id(*id).ok_or(Error::Truncated { field })?;
            if property != Property::UserProperty {
                rest = Value::read(tail, property)?.0;
                continue;
            }
            rest = strings::two(tail, field, field)?.0;
        }
        Ok(UserProperties(Repr::Wire { bytes: span, len: self.len }))
    }
}
