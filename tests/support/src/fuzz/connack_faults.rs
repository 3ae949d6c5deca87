//! A model of a CONNACK's faults, written from the standard's layout (3.1.1 section 3.2, 5.0
//! section 3.2) and not from the decoder: a plain walk of the bytes, field by field in wire
//! order, that stops at the first fault. The `connack` target holds `ConnackPacket::decode` to
//! it, so that a packet with several faults reports the first on the wire, as the README and
//! `ConnackPacket::decode` promise.
//!
//! Across fields the order is the wire's. Within one field, where the bytes alone cannot
//! order two faults, the model takes the decoder's documented order: the Remaining Length is
//! checked against the cap, then against the version's length, then for 5.0's shortest form;
//! a property is framed (its id allowed, its value not cut short), then its strings checked,
//! then its repetition, then its range. A frame not yet whole is judged on the bytes that have
//! come, and a field cut short in it, by them or by the end of its property block, is taken
//! as still coming: the decoder's rule, under which such a fault shows once the frame is
//! whole.

use mqtt_connect::{Error, Field, Property, Protocol};

/// What the model says of some bytes read as a CONNACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A valid CONNACK of this many bytes.
    Complete(usize),
    /// A valid start of one; more bytes may tell.
    Incomplete,
    /// The first fault on the wire.
    Fault(Error),
}

/// Why a walk stopped short of a whole packet.
enum Stop {
    /// The bytes ran out inside the frame.
    Wait,
    /// A fault.
    Fault(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Self::Fault(e)
    }
}

/// Reads `buf` as the CONNACK answering a CONNECT of `connect`, in a client that takes
/// packets of at most `cap` bytes.
pub fn connack(connect: Protocol, buf: &[u8], cap: u32) -> Answer {
    match walk(connect, buf, cap) {
        Ok(len) => Answer::Complete(len),
        Err(Stop::Wait) => Answer::Incomplete,
        Err(Stop::Fault(e)) => Answer::Fault(e),
    }
}

/// The walk: the fixed header, the variable header, then 5.0's property block.
fn walk(connect: Protocol, buf: &[u8], cap: u32) -> Result<usize, Stop> {
    let &first = buf.first().ok_or(Stop::Wait)?;
    // 3.1.1 [MQTT-3.2.0-1]: a server's first packet is a CONNACK, type 2.
    if first >> 4 != 2 {
        return Err(Error::NotConnack { byte: first }.into());
    }
    // [MQTT-2.1.3-1]: its flags are 0.
    if first & 0x0F != 0 {
        return Err(Error::FixedHeaderFlags { flags: first & 0x0F }.into());
    }
    let mut at = Cursor { buf, pos: 1, end: usize::MAX, whole: false };
    let (remaining, minimal) = at.vbi(Field::RemainingLength)?;
    // The fixed header is the first byte and the Remaining Length, which ends at `at.pos`.
    let size = at.pos + remaining as usize;
    if size as u64 > u64::from(cap) {
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        return Err(Error::PacketTooLarge { size, limit: cap }.into());
    }
    at.end = size;
    at.whole = buf.len() >= size;
    let protocol = version(connect, remaining, buf.get(at.pos + 1).copied())?;
    if protocol == Protocol::V5 && !minimal {
        return Err(Error::VbiNotMinimal { field: Field::RemainingLength }.into());
    }
    variable_header(&mut at, protocol)?;
    if protocol == Protocol::V5 {
        properties(&mut at)?;
    }
    if at.pos < at.end {
        return Err(Error::TrailingBytes { count: at.end - at.pos }.into());
    }
    Ok(size)
}

/// The version the CONNACK is in: the CONNECT's when its Remaining Length is that version's
/// (3.x: 2; 5.0: 3 or more), or the other's when that is the length and the code the other's
/// Unsupported Protocol Version, the one refusal a server sends in its own version
/// [MQTT-3.1.2-2]. Until the code comes, only the length can rule it out.
fn version(connect: Protocol, remaining: u32, code: Option<u8>) -> Result<Protocol, Stop> {
    let fits = |p: Protocol| if p == Protocol::V5 { remaining >= 3 } else { remaining == 2 };
    if fits(connect) {
        return Ok(connect);
    }
    let (other, refusal) =
        if connect == Protocol::V5 { (Protocol::V3_1_1, 0x01) } else { (Protocol::V5, 0x84) };
    let wrong = Error::ConnackRemainingLength { remaining };
    match code {
        _ if !fits(other) => Err(wrong.into()),
        None => Err(Stop::Wait),
        Some(code) if code == refusal => Ok(other),
        Some(_) => Err(wrong.into()),
    }
}

/// The Connect Acknowledge Flags and the code.
fn variable_header(at: &mut Cursor<'_>, protocol: Protocol) -> Result<(), Stop> {
    let flags = at.byte(Field::AcknowledgeFlags)?;
    // 5.0 [MQTT-3.2.2-1], 3.1.1 3.2.2.1: bits 7..1 are reserved; 3.1 has no Session Present.
    let reserved = if protocol == Protocol::V3_1 { 0xFF } else { 0xFE };
    if flags & reserved != 0 {
        return Err(Error::ReservedAckFlags { flags }.into());
    }
    let code = at.byte(Field::ReasonCode)?;
    if !is_connack_code(protocol, code) {
        return Err(Error::InvalidReasonCode { code }.into());
    }
    // 5.0 [MQTT-3.2.2-6], 3.1.1 [MQTT-3.2.2-4]: Session Present only with success.
    if flags & 1 != 0 && code != 0 {
        return Err(Error::SessionPresentWithError { code }.into());
    }
    Ok(())
}

/// 3.1.1's return codes 0 to 5 (3.1's are the same), or 5.0's Connect Reason Codes (table
/// 3-1 of section 3.2.2.2).
fn is_connack_code(protocol: Protocol, code: u8) -> bool {
    const V5: [u8; 22] = [
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99,
        0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
    ];
    if protocol == Protocol::V5 { V5.contains(&code) } else { code <= 5 }
}

/// How a CONNACK property's value is written (5.0 section 2.2.2.2).
#[derive(Clone, Copy)]
enum Kind {
    Byte,
    U16,
    U32,
    Str,
    Bin,
    Pair,
}

/// The properties a CONNACK may hold (5.0 section 3.2.2.3), with how each is written.
fn connack_property(id: u8) -> Option<(Property, Kind)> {
    use Property as P;
    Some(match id {
        0x11 => (P::SessionExpiryInterval, Kind::U32),
        0x12 => (P::AssignedClientIdentifier, Kind::Str),
        0x13 => (P::ServerKeepAlive, Kind::U16),
        0x15 => (P::AuthenticationMethod, Kind::Str),
        0x16 => (P::AuthenticationData, Kind::Bin),
        0x1A => (P::ResponseInformation, Kind::Str),
        0x1C => (P::ServerReference, Kind::Str),
        0x1F => (P::ReasonString, Kind::Str),
        0x21 => (P::ReceiveMaximum, Kind::U16),
        0x22 => (P::TopicAliasMaximum, Kind::U16),
        0x24 => (P::MaximumQos, Kind::Byte),
        0x25 => (P::RetainAvailable, Kind::Byte),
        0x26 => (P::UserProperty, Kind::Pair),
        0x27 => (P::MaximumPacketSize, Kind::U32),
        0x28 => (P::WildcardSubscriptionAvailable, Kind::Byte),
        0x29 => (P::SubscriptionIdentifiersAvailable, Kind::Byte),
        0x2A => (P::SharedSubscriptionAvailable, Kind::Byte),
        _ => return None,
    })
}

/// The property block: its length, then each property in turn, within it.
fn properties(at: &mut Cursor<'_>) -> Result<(), Stop> {
    let field = Field::ConnackProperties;
    let (len, minimal) = at.vbi(field)?;
    if !minimal {
        return Err(Error::VbiNotMinimal { field }.into());
    }
    let bytes = at.take(len as usize, field)?;
    let mut block = Cursor { buf: bytes, pos: 0, end: bytes.len(), whole: at.whole };
    let mut seen = Vec::new();
    while block.pos < block.end {
        property(&mut block, &mut seen)?;
    }
    Ok(())
}

/// One property: its id, its value, then the rules on it.
fn property(at: &mut Cursor<'_>, seen: &mut Vec<Property>) -> Result<(), Stop> {
    let id = at.byte(Field::ConnackProperties)?;
    let (property, kind) =
        connack_property(id).ok_or(Error::PropertyNotAllowed { id, field: Field::ConnackProperties })?;
    let field = Field::Property(property);
    let value = match kind {
        Kind::Byte => u32::from(at.byte(field)?),
        Kind::U16 => u32::from(u16::from_be_bytes(at.take(2, field)?.try_into().unwrap())),
        Kind::U32 => u32::from_be_bytes(at.take(4, field)?.try_into().unwrap()),
        Kind::Bin => {
            at.binary(field)?;
            0
        }
        Kind::Str => {
            text(at.binary(field)?, field)?;
            0
        }
        Kind::Pair => {
            // Both strings are framed before either is read as text.
            let (name, value) = (at.binary(field)?, at.binary(field)?);
            text(name, field)?;
            text(value, field)?;
            return Ok(());
        }
    };
    // "It is a Protocol Error to include" any but User Property "more than once".
    if seen.contains(&property) {
        return Err(Error::DuplicateProperty { property }.into());
    }
    seen.push(property);
    let in_range = match property {
        Property::ReceiveMaximum | Property::MaximumPacketSize => value != 0,
        Property::MaximumQos
        | Property::RetainAvailable
        | Property::WildcardSubscriptionAvailable
        | Property::SubscriptionIdentifiersAvailable
        | Property::SharedSubscriptionAvailable => value <= 1,
        _ => true,
    };
    if !in_range {
        return Err(Error::InvalidPropertyValue { property }.into());
    }
    Ok(())
}

/// [MQTT-1.5.4-1] well-formed UTF-8, [MQTT-1.5.4-2] without U+0000.
fn text(bytes: &[u8], field: Field) -> Result<(), Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 { field })?;
    if text.contains('\0') {
        return Err(Error::NullCharacter { field });
    }
    Ok(())
}

/// A position in the bytes that have come, `buf`, inside a frame or block that ends at `end`:
/// a read past `end` is a fault once the frame is `whole`, and a read past what has come a
/// wait.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    whole: bool,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: Field) -> Result<&'a [u8], Stop> {
        let to = self.pos.saturating_add(n);
        if to > self.end {
            return Err(if self.whole { Error::Truncated { field }.into() } else { Stop::Wait });
        }
        let bytes = self.buf.get(self.pos..to).ok_or(Stop::Wait)?;
        self.pos = to;
        Ok(bytes)
    }

    fn byte(&mut self, field: Field) -> Result<u8, Stop> {
        Ok(self.take(1, field)?[0])
    }

    /// Two bytes of length, then as many bytes.
    fn binary(&mut self, field: Field) -> Result<&'a [u8], Stop> {
        let len = u16::from_be_bytes(self.take(2, field)?.try_into().unwrap());
        self.take(usize::from(len), field)
    }

    /// A Variable Byte Integer: 7 bits a byte, low group first, at most 4 bytes; its value,
    /// and whether it is in its shortest form (no last byte of 0 after others).
    fn vbi(&mut self, field: Field) -> Result<(u32, bool), Stop> {
        let mut value = 0u32;
        for i in 0..4 {
            let byte = self.byte(field)?;
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok((value, i == 0 || byte != 0));
            }
        }
        Err(Error::VbiTooLong { field }.into())
    }
}
