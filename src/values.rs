//! The standard's data types read off a [`Reader`]: UTF-8 strings, property values, and the
//! one iterator over a property block, which the decoder's validation and the
//! `UserProperties` of a decoded packet both use.

use crate::error::{Error, Field};
use crate::rules;
use crate::spec::{Block, Kind, Property};
use crate::wire::{Reader, vbi};

/// A UTF-8 string: well-formed [MQTT-1.5.4-1], free of U+0000 [MQTT-1.5.4-2], and kept
/// whole, a leading U+FEFF included [MQTT-1.5.4-3].
#[inline(always)] // once per string on the decode path, a length read and two calls
pub(crate) fn utf8<'a>(r: &mut Reader<'a>, field: Field) -> Result<&'a str, Error> {
    let text = well_formed(r.binary(field)?, field)?;
    rules::no_null_character(text, field)?;
    Ok(text)
}

/// [MQTT-1.5.4-1] Bytes as text, when they are well-formed UTF-8.
#[inline(always)] // a wrapper on `from_utf8` that names the field
pub(crate) fn well_formed(bytes: &[u8], field: Field) -> Result<&str, Error> {
    core::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 { field })
}

/// A 5.0 Variable Byte Integer inside a complete frame: it must be there, and minimal.
#[inline]
fn variable_byte_integer(r: &mut Reader<'_>, field: Field) -> Result<u32, Error> {
    let vbi = vbi::parse(r.rest(), field)?.ok_or(Error::Truncated { field })?;
    rules::variable_byte_integer_is_minimal(vbi.minimal, field)?;
    r.take(vbi.len, field)?;
    Ok(vbi.value)
}

/// One property value as it stands on the wire. A User Property's name and value are bytes
/// here: the block's reader validates them, together when it can.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Byte(u8),
    U16(u16),
    U32(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a [u8], &'a [u8]),
}

impl<'a> Value<'a> {
    /// Reads the value of `property`, written as `kind`.
    #[inline(always)] // one arm survives per call site once `kind` is known
    fn read(r: &mut Reader<'a>, property: Property, kind: Kind) -> Result<Self, Error> {
        let field = Field::Property(property);
        Ok(match kind {
            Kind::Byte => Self::Byte(r.u8(field)?),
            Kind::U16 => Self::U16(r.u16(field)?),
            Kind::U32 => Self::U32(r.u32(field)?),
            Kind::Str => Self::Str(utf8(r, field)?),
            Kind::Bin => Self::Bin(r.binary(field)?),
            Kind::Pair => Self::Pair(r.binary(field)?, r.binary(field)?),
        })
    }

    /// The value's rules beyond its type, dispatched to [`rules`].
    // Left to the optimiser it stayed a call: 5.0 all properties took 5,953 instructions per
    // decode (benches/instructions.sh), 5,634 inlined.
    #[inline(always)] // inlined where `property` is known, it folds to the one rule that applies
    pub(crate) fn check(self, property: Property) -> Result<(), Error> {
        match (property, self) {
            (Property::ReceiveMaximum, Self::U16(v)) => rules::receive_maximum_not_zero(v),
            (Property::MaximumPacketSize, Self::U32(v)) => rules::maximum_packet_size_not_zero(v),
            (
                Property::RequestResponseInformation
                | Property::RequestProblemInformation
                | Property::PayloadFormatIndicator
                | Property::MaximumQos
                | Property::RetainAvailable
                | Property::WildcardSubscriptionAvailable
                | Property::SubscriptionIdentifiersAvailable
                | Property::SharedSubscriptionAvailable,
                Self::Byte(v),
            ) => rules::byte_flag_is_0_or_1(property, v),
            (Property::ResponseTopic, Self::Str(topic)) => {
                rules::topic_name(topic, Field::Property(property))
            }
            _ => Ok(()),
        }
    }
}

/// The properties of one block's bytes (its length prefix already read), in wire order:
/// the only code that walks a property block.
///
/// An id the block does not allow is [`Error::PropertyNotAllowed`]; a value cut short is
/// [`Error::Truncated`] naming the property. Callers stop at the first error: what follows
/// it means nothing.
#[derive(Clone, Debug)]
pub(crate) struct Properties<'a> {
    bytes: &'a [u8],
    r: Reader<'a>,
    block: Block,
}

impl<'a> Properties<'a> {
    pub(crate) const fn new(bytes: &'a [u8], block: Block) -> Self {
        Self { bytes, r: Reader::new(bytes), block }
    }

    /// The block's bytes, all of them.
    pub(crate) const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Reads a block's Variable Byte Integer length, then hands out an iterator over it.
    #[inline(always)] // once per block on the decode path
    pub(crate) fn read_block(r: &mut Reader<'a>, block: Block) -> Result<Self, Error> {
        let field = Field::from(block);
        let len = variable_byte_integer(r, field)?;
        let len = usize::try_from(len).map_err(|_| Error::Truncated { field })?;
        Ok(Self::new(r.take(len, field)?, block))
    }

    /// Bytes of the block read so far.
    pub(crate) const fn position(&self) -> usize {
        self.r.position()
    }

    #[inline(always)] // the decoder's block loop is this body
    fn read_next(&mut self, id: u8) -> Result<(Property, Value<'a>), Error> {
        let (property, kind) = Property::in_block(id, self.block)
            .ok_or(Error::PropertyNotAllowed { id, field: self.block.into() })?;
        Ok((property, Value::read(&mut self.r, property, kind)?))
    }
}

impl<'a> Iterator for Properties<'a> {
    type Item = Result<(Property, Value<'a>), Error>;

    #[inline(always)] // see `read_next`
    fn next(&mut self) -> Option<Self::Item> {
        let id = self.r.next_byte()?;
        Some(self.read_next(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_iterator_names_each_fault() {
        let mut it = Properties::new(b"\x11\x00\x00\x00\x05\x26\x00\x01k\x00\x00", Block::Connect);
        assert_eq!(it.next(), Some(Ok((Property::SessionExpiryInterval, Value::U32(5)))));
        assert_eq!(it.position(), 5);
        assert_eq!(it.next(), Some(Ok((Property::UserProperty, Value::Pair(b"k", b"")))));
        assert_eq!(it.next(), None);

        let mut it = Properties::new(b"\x01\x00\x11\x00", Block::Connect);
        assert_eq!(it.next(), Some(Err(Error::PropertyNotAllowed { id: 0x01, field: Field::Properties })));

        let mut it = Properties::new(b"\x7f", Block::Will);
        let unknown = Error::PropertyNotAllowed { id: 0x7f, field: Field::WillProperties };
        assert_eq!(it.next(), Some(Err(unknown)), "an unknown id is not a truncation");

        let mut it = Properties::new(b"\x21\x00", Block::Connect);
        let cut = Error::Truncated { field: Field::Property(Property::ReceiveMaximum) };
        assert_eq!(it.next(), Some(Err(cut)));
    }
}
