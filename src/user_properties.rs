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
}

impl<'a> UserPropertiesBuilder<'a> {
    pub(crate) fn new(block: &'a [u8]) -> Self {
        Self { block, start: None, end: 0, len: 0 }
    }

    /// Records a User Property that starts where `at` does and ends where `after` starts;
    /// both are suffixes of the block.
    pub(crate) fn push(&mut self, at: &[u8], after: &[u8]) {
        self.start.get_or_insert(self.block.len().saturating_sub(at.len()));
        self.end = self.block.len().saturating_sub(after.len());
        self.len = self.len.saturating_add(1);
    }

    /// Validates every User Property string, then hands out their span.
    ///
    /// The span mostly validates as one UTF-8 run, since its strings are joined by the id
    /// byte `&` and length prefixes that are ASCII below 128: one `from_utf8` call for all of
    /// them. A string inside a valid run is valid itself when both its ends are character
    /// boundaries, that is when neither its first byte nor the byte after it is a
    /// continuation byte. Only a string that fails that test (the run broke on other bytes)
    /// is validated by itself.
    pub(crate) fn finish(self) -> Result<UserProperties<'a>, Error> {
        let Some(span) = self.start.and_then(|start| self.block.get(start..self.end)) else {
            return Ok(UserProperties::default());
        };
        let field = Field::Property(Property::UserProperty);
        let run_is_valid = core::str::from_utf8(span).is_ok();
        let boundary = |byte: Option<&u8>| byte.is_none_or(|b| b & 0xC0 != 0x80);
        // `bytes` is a string of the span, and `rest` the span after it.
        let check = |bytes: &[u8], rest: &[u8]| {
            let inside_run = run_is_valid && boundary(bytes.first()) && boundary(rest.first());
            if !inside_run && core::str::from_utf8(bytes).is_err() {
                return Err(Error::InvalidUtf8 { field });
            }
            if strings::has_zero_byte(bytes) {
                return Err(Error::NullCharacter { field });
            }
            Ok(())
        };
        let mut rest = span;
        while let [id, tail @ ..] = rest {
            let property = Property::from_id(*id).ok_or(Error::Truncated { field })?;
            if property != Property::UserProperty {
                rest = Value::read(tail, property)?.0;
                continue;
            }
            let (after_name, name) = strings::binary(tail, field)?;
            check(name, after_name)?;
            let (after, value) = strings::binary(after_name, field)?;
            check(value, after)?;
            rest = after;
        }
        Ok(UserProperties(Repr::Wire { bytes: span, len: self.len }))
    }
}
