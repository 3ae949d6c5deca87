//! The whole CONNACK, both ways: a client or proxy reads the server's answer, a server writes
//! one with Session Present and every 5.0 property. As strict as the CONNECT decoder, and on
//! the same layers: the property table and block iterator, the rules, the `Reader` and
//! `Writer`.

use core::num::NonZeroUsize;

use crate::decode::{self, Needed, Status};
use crate::encode::{EncodeError, block_len, write_block};
use crate::error::{Error, Field, ReasonCode};
use crate::packet::{ConnackPacket, ConnackProperties};
use crate::rules;
use crate::spec::{Block, CONNACK_BYTE, Protocol};
use crate::wire::{Reader, Writer, vbi};

/// The 3.x return code for `code`; `None` where 3.x has none and the server closes instead.
pub(crate) const fn return_code_v3(code: ReasonCode) -> Option<u8> {
    Some(match code {
        ReasonCode::Success => 0x00,
        ReasonCode::UnsupportedProtocolVersion => 0x01,
        ReasonCode::ClientIdentifierNotValid => 0x02,
        ReasonCode::ServerUnavailable | ReasonCode::ServerBusy => 0x03,
        ReasonCode::BadUserNameOrPassword => 0x04,
        ReasonCode::NotAuthorized | ReasonCode::Banned => 0x05,
        _ => return None,
    })
}

/// The 5.0 name of a 3.x return code; 6 to 255 are reserved.
const fn reason_code_v3(code: u8) -> Option<ReasonCode> {
    Some(match code {
        0x00 => ReasonCode::Success,
        0x01 => ReasonCode::UnsupportedProtocolVersion,
        0x02 => ReasonCode::ClientIdentifierNotValid,
        0x03 => ReasonCode::ServerUnavailable,
        0x04 => ReasonCode::BadUserNameOrPassword,
        0x05 => ReasonCode::NotAuthorized,
        _ => return None,
    })
}

/// The reason code `byte` names in `protocol`.
fn reason_code(protocol: Protocol, byte: u8) -> Option<ReasonCode> {
    match protocol {
        Protocol::V5 => ReasonCode::try_from(byte).ok(),
        _ => reason_code_v3(byte),
    }
}

/// [MQTT-3.2.2-8] (5.0; 3.1.1's return codes are 0 to 5, 6 to 255 reserved) A CONNACK's code is
/// one of the Connect Reason Codes.
fn connect_reason_code(protocol: Protocol, code: u8) -> Result<ReasonCode, Error> {
    reason_code(protocol, code).ok_or(Error::InvalidReasonCode { code })
}

/// The code byte for `code` in `protocol`.
const fn code_byte(protocol: Protocol, code: ReasonCode) -> Option<u8> {
    match protocol {
        Protocol::V5 => Some(code as u8),
        _ => return_code_v3(code),
    }
}

/// The fixed header of a CONNACK: its length and Remaining Length; `None` while it is not
/// all there.
fn fixed_header(buf: &[u8]) -> Result<Option<(usize, vbi::Vbi)>, Error> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    rules::connack_comes_first(first)?;
    rules::fixed_header_flags_are_zero(first)?;
    Ok(vbi::parse(rest, Field::RemainingLength)?.map(|v| (1 + v.len, v)))
}

/// The version of a CONNACK of `remaining` bytes after its fixed header, with reason code
/// `code` (`None` until it has come), that answers a CONNECT of `connect`: the CONNECT's, of
/// its length (3.x: 2, 5.0: at least 3), or the other's when it is the refusal of an
/// unsupported version [MQTT-3.1.2-2]. `None` while only the code can tell.
fn answered_in(connect: Protocol, remaining: u32, code: Option<u8>) -> Result<Option<Protocol>, Error> {
    let length_of = |protocol: Protocol| if protocol.is_v5() { remaining >= 3 } else { remaining == 2 };
    if length_of(connect) {
        return Ok(Some(connect));
    }
    let other = if connect.is_v5() { Protocol::V3_1_1 } else { Protocol::V5 };
    let wrong = Error::ConnackRemainingLength { remaining };
    if !length_of(other) {
        return Err(wrong);
    }
    let Some(code) = code else { return Ok(None) };
    match reason_code(other, code) {
        Some(code) if rules::unsupported_version_in_servers_version(connect, other.is_v5(), code) => {
            Ok(Some(other))
        }
        _ => Err(wrong),
    }
}

impl<'a> ConnackPacket<'a> {
    /// Decodes the CONNACK at the front of `buf`, answering a CONNECT of `protocol`.
    ///
    /// As the CONNECT decoder does, it checks what has come of a frame not yet whole: a fault
    /// in the fixed header, the acknowledge flags or the reason code is reported as soon as
    /// their bytes arrive, one in the 5.0 property block once the block has arrived, and at
    /// the latest once the frame is whole (the Remaining Length bounds both). Otherwise it
    /// answers `Incomplete` with exactly how many bytes are missing; inside a complete frame a
    /// field cut short is an error. 3.x CONNACKs are 4 bytes (more only with a Remaining
    /// Length padded, which 3.x allows); a 5.0 one is as long as its properties, up to
    /// 256 MiB, so cap what you buffer for it with [`decode_within`](Self::decode_within).
    ///
    /// A server that does not speak the client's version refuses it in its own
    /// [MQTT-3.1.2-2]: a 3.1.1 server a 5.0 client, a 5.0 server a 3.x client. That refusal is
    /// decoded in the server's version, which the packet's `protocol` says:
    ///
    /// ```
    /// use mqtt_connect::{ConnackPacket, Protocol, ReasonCode, Status};
    ///
    /// // A 3.1.1 broker's answer to a 5.0 CONNECT.
    /// let Ok(Status::Complete { packet, .. }) = ConnackPacket::decode(Protocol::V5, b"\x20\x02\x00\x01") else {
    ///     panic!("the refusal is read");
    /// };
    /// assert_eq!((packet.protocol, packet.reason_code), (Protocol::V3_1_1, ReasonCode::UnsupportedProtocolVersion));
    /// ```
    pub fn decode(protocol: Protocol, buf: &'a [u8]) -> Result<Status<Self>, Error> {
        Self::decode_within(protocol, buf, u32::MAX)
    }

    /// [`decode`](Self::decode), with a cap on the whole packet, fixed header included: a
    /// CONNACK over `max_packet_size` bytes is [`Error::PacketTooLarge`] from its fixed header
    /// alone, as the CONNECT decoder refuses one over its cap. A 5.0 client that announced a
    /// Maximum Packet Size caps the CONNACK at it [MQTT-3.1.2-24].
    ///
    /// ```
    /// use mqtt_connect::{ConnackPacket, Error, Protocol, ReasonCode, Status};
    ///
    /// // A Remaining Length of 268,435,455: refused before any of it is buffered.
    /// let huge = ConnackPacket::decode_within(Protocol::V5, b"\x20\xff\xff\xff\x7f", 1024);
    /// assert!(matches!(huge, Err(Error::PacketTooLarge { limit: 1024, .. })));
    /// let Ok(Status::Complete { packet, .. }) = ConnackPacket::decode_within(Protocol::V5, b"\x20\x03\x00\x00\x00", 1024) else {
    ///     panic!("a small CONNACK is decoded");
    /// };
    /// assert_eq!(packet.reason_code, ReasonCode::Success);
    /// ```
    pub fn decode_within(
        protocol: Protocol,
        buf: &'a [u8],
        max_packet_size: u32,
    ) -> Result<Status<Self>, Error> {
        let Some((header_len, remaining)) = fixed_header(buf)? else {
            return Ok(Status::Incomplete(Needed::Unknown));
        };
        let wanted = rules::within_cap(header_len, remaining.value, max_packet_size)?;
        let body = buf.get(header_len..).unwrap_or_default();
        let Some(protocol) = answered_in(protocol, remaining.value, body.get(1).copied())? else {
            let missing = wanted.saturating_sub(body.len());
            return Ok(Status::Incomplete(NonZeroUsize::new(missing).map_or(Needed::Unknown, Needed::Size)));
        };
        if protocol.is_v5() {
            rules::variable_byte_integer_is_minimal(remaining.minimal, Field::RemainingLength)?;
        }
        match body.get(..wanted) {
            Some(frame) => {
                let packet = Self::body(protocol, frame)?;
                Ok(Status::Complete { packet, len: header_len + wanted })
            }
            None => {
                // Check what has arrived; running out of it here only means waiting. Once the
                // properties end, what the frame holds past them is left over, counted as in
                // the whole frame: the `missing` bytes still to come, and any already here.
                let missing = wanted.saturating_sub(body.len());
                match Self::body(protocol, body) {
                    Err(Error::Truncated { .. }) => {}
                    Ok(_) => return Err(Error::TrailingBytes { count: missing }),
                    Err(Error::TrailingBytes { count }) => {
                        return Err(Error::TrailingBytes { count: count.saturating_add(missing) });
                    }
                    Err(e) => return Err(e),
                }
                Ok(Status::Incomplete(NonZeroUsize::new(missing).map_or(Needed::Unknown, Needed::Size)))
            }
        }
    }

    /// The variable header and properties, in wire order.
    fn body(protocol: Protocol, frame: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(frame);
        let flags = r.u8(Field::AcknowledgeFlags)?;
        rules::ack_flags_reserved_bits_are_zero(protocol, flags)?;
        let session_present = flags & 1 != 0;
        let code = r.u8(Field::ReasonCode)?;
        let reason_code = connect_reason_code(protocol, code)?;
        rules::session_present_needs_success(session_present, code)?;
        let mut properties = ConnackProperties::default();
        if protocol.is_v5() {
            properties = read_properties(&mut r)?;
        }
        if !r.is_empty() {
            return Err(Error::TrailingBytes { count: r.rest().len() });
        }
        Ok(Self { protocol, session_present, reason_code, properties })
    }

    /// Checks every rule and sizes the packet: (Remaining Length, property block length).
    fn layout(&self) -> Result<(usize, usize), EncodeError> {
        let code = code_byte(self.protocol, self.reason_code)
            .ok_or(EncodeError::NotInVersion { field: Field::ReasonCode })?;
        if self.session_present && self.protocol == Protocol::V3_1 {
            return Err(EncodeError::NotInVersion { field: Field::AcknowledgeFlags });
        }
        rules::session_present_needs_success(self.session_present, code)?;
        if !self.protocol.is_v5() {
            if !self.properties.is_empty() {
                return Err(EncodeError::NotInVersion { field: Field::ConnackProperties });
            }
            return Ok((2, 0));
        }
        let p = &self.properties;
        let block = block_len(p.entries(), &p.user_properties)?;
        let remaining = u32::try_from(block)
            .ok()
            .filter(|&n| n <= vbi::MAX)
            .map(|n| 2 + vbi::len(n) + block)
            .filter(|&n| n <= vbi::MAX as usize)
            .ok_or(EncodeError::TooLong { field: Field::RemainingLength })?;
        Ok((remaining, block))
    }

    /// Bytes the encoded packet takes; the same checks as [`ConnackPacket::encode`].
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let (remaining, _) = self.layout()?;
        Ok(1 + vbi::len(remaining as u32) + remaining)
    }

    /// Writes the packet to the front of `buf` and returns its length, refusing what the
    /// decoder would refuse. Properties are written in id order, User Properties last.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let (remaining, block) = self.layout()?;
        let needed = 1 + vbi::len(remaining as u32) + remaining;
        let Some(out) = buf.get_mut(..needed) else {
            return Err(EncodeError::BufferTooSmall { needed, len: buf.len() });
        };
        let mut w = Writer::new(out);
        w.u8(CONNACK_BYTE);
        vbi::write(&mut w, remaining as u32);
        w.u8(u8::from(self.session_present));
        w.u8(code_byte(self.protocol, self.reason_code).unwrap_or_default());
        if self.protocol.is_v5() {
            let p = &self.properties;
            write_block(&mut w, block, p.entries(), &p.user_properties);
        }
        w.finish().map_err(|o| EncodeError::SizeMismatch { sized: o.room, written: o.written })
    }
}

/// A complete 5.0 property block, read as the CONNECT's are.
fn read_properties<'a>(r: &mut Reader<'a>) -> Result<ConnackProperties<'a>, Error> {
    let mut properties = ConnackProperties::default();
    properties.user_properties = decode::read_block(r, Block::Connack, false, |p, v| properties.set(p, v))?;
    Ok(properties)
}
