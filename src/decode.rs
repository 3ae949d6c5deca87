//! The decoder: frames the packet from its fixed header, then reads the frame whole.

use core::num::NonZeroUsize;

use crate::connect::{Connect, Protocol, QoS, Will};
use crate::error::{Error, Field};
use crate::properties::{self, Block, ConnectProperties, WillProperties};
use crate::{PayloadFormat, Res, numbers, strings, varint};

/// The fixed header's first byte: type 1 (CONNECT), flags 0.
pub(crate) const CONNECT_BYTE: u8 = 0x10;

/// The bridge bit mosquitto sets on the level byte.
pub(crate) const BRIDGE_BIT: u8 = 0x80;

/// What a decode found: a whole packet, or how much more to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// `len` bytes at the front of the buffer are the whole packet.
    Complete {
        /// The packet.
        packet: T,
        /// Bytes it took; what follows is the next packet, pipelined.
        len: usize,
    },
    /// The buffer holds a valid start of a packet, but not all of it. Not an error: read more
    /// and call again with the grown buffer.
    Incomplete(Needed),
}

/// How many more bytes a packet needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needed {
    /// The fixed header is not complete yet, so the size is not known.
    Unknown,
    /// Exactly this many more bytes complete the frame.
    Size(NonZeroUsize),
}

/// A CONNECT decoder with its options. Strict by default, but for the bridge bit.
///
/// ```
/// use mqtt_connect::{Decoder, Error, Needed, Status};
///
/// let decoder = Decoder::new().max_packet_size(1024);
///
/// // A 3.1.1 CONNECT for client "c1", cut short: the decoder says how much is missing.
/// let packet = b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1";
/// let status = decoder.decode(&packet[..10])?;
/// assert_eq!(status, Status::Incomplete(Needed::Size(6.try_into()?)));
///
/// let Status::Complete { packet: connect, len } = decoder.decode(packet)? else { panic!() };
/// assert_eq!((connect.client_id, len), ("c1", 16));
///
/// // Over the cap: refused from the Remaining Length alone, before the bytes arrive.
/// let err = decoder.decode(b"\x10\xff\x7f").unwrap_err();
/// assert_eq!(u8::from(err.reason_code()), 0x95);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoder {
    max_packet_size: u32,
    allow_bridge_bit: bool,
    limit_v3_1_client_id: bool,
    check_payload_format: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with no cap but the standard's, that accepts the bridge bit.
    pub const fn new() -> Self {
        Self {
            max_packet_size: u32::MAX,
            allow_bridge_bit: true,
            limit_v3_1_client_id: false,
            check_payload_format: false,
        }
    }

    /// Cap on the whole packet, fixed header included. Decided from the Remaining Length
    /// alone: a packet over the cap is an error (reason code 0x95) before its bytes arrive.
    pub const fn max_packet_size(self, bytes: u32) -> Self {
        Self { max_packet_size: bytes, ..self }
    }

    /// Accept the mosquitto bridge bit (0x80) on the level byte; on by default, since real
    /// bridges send it. Off, such a level is an unsupported version.
    pub const fn allow_bridge_bit(self, yes: bool) -> Self {
        Self { allow_bridge_bit: yes, ..self }
    }

    /// Refuse 3.1 client ids over 23 characters, as the 3.1 specification says; off by
    /// default, as most brokers take longer ids.
    pub const fn limit_v3_1_client_id(self, yes: bool) -> Self {
        Self { limit_v3_1_client_id: yes, ..self }
    }

    /// Refuse a will payload announced as UTF-8 that is not (reason code 0x99); off by
    /// default, as the standard lets a server choose.
    pub const fn check_payload_format(self, yes: bool) -> Self {
        Self { check_payload_format: yes, ..self }
    }

    /// Frames the CONNECT at the front of `buf` without decoding it: `Complete` with the
    /// frame's length (in both `packet` and `len`) once the whole frame is there,
    /// `Incomplete` before.
    ///
    /// It runs every check [`decode`](Self::decode) makes before the frame is whole (first
    /// byte, Remaining Length against the cap, protocol name and level, flags, Keep Alive),
    /// so on any prefix of a packet it errs, or waits, exactly as `decode` does. Since it
    /// borrows nothing, a read loop can grow its buffer until `frame` says `Complete`, then
    /// decode once.
    ///
    /// ```
    /// use std::io::Read;
    /// use mqtt_connect::{Decoder, Needed, Status};
    ///
    /// // A socket that hands the packet over a few bytes at a time.
    /// let wire = b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1";
    /// let mut socket = std::io::Cursor::new(&wire[..]).chain(&[][..]);
    /// let decoder = Decoder::new().max_packet_size(1024);
    ///
    /// let mut buf = Vec::new();
    /// let len = loop {
    ///     match decoder.frame(&buf)? {
    ///         Status::Complete { len, .. } => break len,
    ///         Status::Incomplete(needed) => {
    ///             let want = match needed {
    ///                 Needed::Size(n) => n.get(),
    ///                 Needed::Unknown => 1,
    ///             };
    ///             let start = buf.len();
    ///             buf.resize(start + want.min(4), 0);
    ///             let got = socket.read(&mut buf[start..])?;
    ///             buf.truncate(start + got);
    ///             assert!(got > 0, "closed mid-packet");
    ///         }
    ///     }
    /// };
    /// // The one decode of this connection.
    /// let Status::Complete { packet, .. } = decoder.decode(&buf[..len])? else { unreachable!() };
    /// assert_eq!(packet.client_id, "c1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn frame(&self, buf: &[u8]) -> Result<Status<usize>, Error> {
        match self.split(buf)? {
            Framed::Whole(header, frame) => {
                self.preamble(frame, &header)?;
                let len = header.len + frame.len();
                Ok(Status::Complete { packet: len, len })
            }
            Framed::Partial(needed) => Ok(Status::Incomplete(needed)),
        }
    }

    /// Decodes the CONNECT at the front of `buf`.
    ///
    /// Errors come as soon as the bytes show them: a wrong first byte at once, a packet over
    /// the cap from its Remaining Length, a wrong protocol name or flags before the rest
    /// arrives. Inside a complete frame a field cut short is an error, never `Incomplete`.
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Status<Connect<'a>>, Error> {
        match self.split(buf)? {
            Framed::Whole(header, frame) => self.body(frame, &header),
            Framed::Partial(needed) => Ok(Status::Incomplete(needed)),
        }
    }

    /// Cuts the frame off `buf`, or says how much is missing after checking what has arrived.
    #[inline(always)] // one copy in `decode`, one in `frame`: keeps the hot path one call deep
    fn split<'a>(&self, buf: &'a [u8]) -> Result<Framed<'a>, Error> {
        let Some(header) = FixedHeader::parse(buf)? else {
            return Ok(Framed::Partial(Needed::Unknown));
        };
        let size = header.packet_size();
        let remaining =
            usize::try_from(header.remaining).ok().filter(|_| size <= u64::from(self.max_packet_size));
        let Some(remaining) = remaining else {
            let size = u32::try_from(size).unwrap_or(u32::MAX);
            return Err(Error::PacketTooLarge { size, limit: self.max_packet_size });
        };
        let body = buf.get(header.len..).unwrap_or_default();
        match body.get(..remaining) {
            Some(frame) => Ok(Framed::Whole(header, frame)),
            None => {
                // Check what has arrived of the variable header; running out of it here
                // only means waiting.
                match self.preamble(body, &header) {
                    Ok(_) | Err(Error::Truncated { .. }) => {}
                    Err(e) => return Err(e),
                }
                let missing = remaining.saturating_sub(body.len());
                Ok(Framed::Partial(NonZeroUsize::new(missing).map_or(Needed::Unknown, Needed::Size)))
            }
        }
    }

    /// Protocol name and level, then the 5.0 rule on the Remaining Length, then the flags.
    #[inline(always)]
    fn preamble<'a>(&self, input: &'a [u8], header: &FixedHeader) -> Res<'a, Preamble> {
        let (rest, (protocol, level)) = protocol(input)?;
        let bridge = level & BRIDGE_BIT != 0;
        let protocol = match protocol {
            Some(p) if self.allow_bridge_bit || !bridge => p,
            _ => return Err(Error::UnsupportedProtocolLevel { level }),
        };
        if protocol.is_v5() && !header.minimal {
            return Err(Error::VbiNotMinimal { field: Field::RemainingLength });
        }
        let (rest, flags) = numbers::u8(rest, Field::ConnectFlags)?;
        let flags = Flags::parse(flags, protocol)?;
        let (rest, keep_alive) = numbers::u16(rest, Field::KeepAlive)?;
        Ok((rest, Preamble { protocol, bridge, flags, keep_alive }))
    }

    /// Reads a complete frame: every byte of it, and nothing past it.
    #[inline]
    fn body<'a>(&self, frame: &'a [u8], header: &FixedHeader) -> Result<Status<Connect<'a>>, Error> {
        let (rest, pre) = self.preamble(frame, header)?;
        let len = header.len + frame.len();
        // A copy of the reader per version: in the 3.x one, with no properties to fill in
        // memory, the optimiser keeps every field in registers and writes the 280-byte
        // `Connect` once, in place, instead of assembling it by copying from the stack.
        if pre.protocol.is_v5() {
            self.fields::<true>(rest, &pre, len)
        } else {
            self.fields::<false>(rest, &pre, len)
        }
    }

    /// The CONNECT properties and the payload, up to the end of the frame.
    #[inline(always)]
    fn fields<'a, const V5: bool>(
        &self,
        input: &'a [u8],
        pre: &Preamble,
        len: usize,
    ) -> Result<Status<Connect<'a>>, Error> {
        let mut properties = ConnectProperties::default();
        let rest = if V5 {
            let (rest, users) = properties::parse_block(input, Block::Connect, |p, v| properties.set(p, v))?;
            properties.user_properties = users;
            properties.check()?;
            rest
        } else {
            input
        };

        // The string right after the client id, when there is one, is read with it as one run.
        let after_id = match pre.flags.will {
            Some(_) if V5 => None,
            Some(_) => Some(Field::WillTopic),
            None if pre.flags.username => Some(Field::Username),
            None => None,
        };
        let (rest, client_id, mut next) = match after_id {
            Some(field) => {
                let (rest, (id, next)) = strings::two(rest, Field::ClientId, field)?;
                (rest, id, Some(next))
            }
            None => {
                let (rest, id) = strings::utf8(rest, Field::ClientId)?;
                (rest, id, None)
            }
        };
        check_client_id(pre.protocol, client_id, pre.flags.clean_start, self.limit_v3_1_client_id)?;

        let (rest, will) = match pre.flags.will {
            Some((qos, retain)) => {
                let (rest, will) = self.will::<V5>(rest, qos, retain, next.take())?;
                (rest, Some(will))
            }
            None => (rest, None),
        };
        let (rest, username) = match next {
            Some(username) => (rest, Some(username)),
            None => optional(rest, pre.flags.username, |i| strings::utf8(i, Field::Username))?,
        };
        let (rest, password) = optional(rest, pre.flags.password, |i| strings::binary(i, Field::Password))?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes { count: rest.len() });
        }
        let packet = Connect {
            protocol: pre.protocol,
            bridge: pre.bridge,
            clean_start: pre.flags.clean_start,
            keep_alive: pre.keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        };
        Ok(Status::Complete { packet, len })
    }

    /// The will fields; `topic` when it was read already, with the client id.
    #[inline(always)]
    fn will<'a, const V5: bool>(
        &self,
        input: &'a [u8],
        qos: QoS,
        retain: bool,
        topic: Option<&'a str>,
    ) -> Res<'a, Will<'a>> {
        let mut properties = WillProperties::default();
        let rest = if V5 {
            let (rest, users) = properties::parse_block(input, Block::Will, |p, v| properties.set(p, v))?;
            properties.user_properties = users;
            rest
        } else {
            input
        };
        let (rest, topic) = match topic {
            Some(topic) => (rest, topic),
            None => strings::utf8(rest, Field::WillTopic)?,
        };
        strings::check_topic(topic, Field::WillTopic)?;
        let (rest, payload) = strings::binary(rest, Field::WillPayload)?;
        if self.check_payload_format
            && properties.payload_format == Some(PayloadFormat::Utf8)
            && core::str::from_utf8(payload).is_err()
        {
            return Err(Error::InvalidPayloadFormat);
        }
        Ok((rest, Will { qos, retain, topic, payload, properties }))
    }
}

/// Decodes the CONNECT at the front of `buf` with the default [`Decoder`].
///
/// ```
/// use mqtt_connect::{Protocol, Status};
///
/// let bytes = b"\x10\x0f\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x02c1";
/// match mqtt_connect::decode(bytes)? {
///     Status::Complete { packet, len } => {
///         assert_eq!(packet.protocol, Protocol::V5);
///         assert_eq!(packet.client_id, "c1");
///         assert_eq!(len, bytes.len());
///     }
///     Status::Incomplete(_) => unreachable!("the packet is whole"),
/// }
/// # Ok::<(), mqtt_connect::Error>(())
/// ```
#[inline]
pub fn decode(buf: &[u8]) -> Result<Status<Connect<'_>>, Error> {
    Decoder::new().decode(buf)
}

/// The fixed header: first byte and Remaining Length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FixedHeader {
    /// Bytes the fixed header takes, 2 to 5.
    pub(crate) len: usize,
    pub(crate) remaining: u32,
    /// The Remaining Length is in its shortest form.
    minimal: bool,
}

impl FixedHeader {
    /// `None` while the header is not all there; a wrong first byte fails at once.
    #[inline]
    pub(crate) fn parse(buf: &[u8]) -> Result<Option<Self>, Error> {
        let Some((&first, rest)) = buf.split_first() else {
            return Ok(None);
        };
        if first >> 4 != CONNECT_BYTE >> 4 {
            return Err(Error::NotConnect { byte: first });
        }
        if first & 0x0F != 0 {
            return Err(Error::FixedHeaderFlags { flags: first & 0x0F });
        }
        Ok(varint::parse(rest, Field::RemainingLength)?.map(|vbi| Self {
            len: 1 + vbi.len,
            remaining: vbi.value,
            minimal: vbi.minimal,
        }))
    }

    fn packet_size(&self) -> u64 {
        self.len as u64 + u64::from(self.remaining)
    }
}

/// Reads the protocol name and the raw level byte; the version is `None` when they do not
/// pair, and the name must be one MQTT uses.
#[inline]
pub(crate) fn protocol(input: &[u8]) -> Res<'_, (Option<Protocol>, u8)> {
    let (rest, name) = strings::binary(input, Field::ProtocolName)?;
    let mqisdp = match name {
        b"MQTT" => false,
        b"MQIsdp" => true,
        _ => return Err(Error::UnknownProtocolName),
    };
    let (rest, level) = numbers::u8(rest, Field::ProtocolLevel)?;
    let protocol = match (mqisdp, level & !BRIDGE_BIT) {
        (true, 3) => Some(Protocol::V3_1),
        (false, 4) => Some(Protocol::V3_1_1),
        (false, 5) => Some(Protocol::V5),
        _ => None,
    };
    Ok((rest, (protocol, level)))
}

/// A frame cut off the input, or how much more it needs.
enum Framed<'a> {
    /// The fixed header and the frame after it, exactly Remaining Length bytes.
    Whole(FixedHeader, &'a [u8]),
    /// A valid start of a packet.
    Partial(Needed),
}

/// The variable header up to the properties.
struct Preamble {
    protocol: Protocol,
    bridge: bool,
    flags: Flags,
    keep_alive: u16,
}

/// Connect Flags once their rules hold.
struct Flags {
    username: bool,
    password: bool,
    /// QoS and retain of the will, when the will flag is set.
    will: Option<(QoS, bool)>,
    clean_start: bool,
}

impl Flags {
    fn parse(byte: u8, protocol: Protocol) -> Result<Self, Error> {
        let bit = |n: u8| byte & (1 << n) != 0;
        if bit(0) {
            return Err(Error::ReservedFlag);
        }
        let retain = bit(5);
        let qos = match (byte >> 3) & 0b11 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            2 => QoS::ExactlyOnce,
            _ => return Err(Error::InvalidWillQos),
        };
        let will = if bit(2) {
            Some((qos, retain))
        } else if qos != QoS::AtMostOnce || retain {
            return Err(Error::WillFlagsWithoutWill);
        } else {
            None
        };
        let (username, password) = (bit(7), bit(6));
        if password && !username && !protocol.is_v5() {
            return Err(Error::PasswordWithoutUsername);
        }
        Ok(Self { username, password, will, clean_start: bit(1) })
    }
}

/// The 3.x rules on the client id [MQTT-3.1.3-8]; 5.0 leaves the choice to the server.
#[inline(always)]
pub(crate) fn check_client_id(
    protocol: Protocol,
    client_id: &str,
    clean_start: bool,
    limit_v3_1: bool,
) -> Result<(), Error> {
    match protocol {
        Protocol::V3_1 if client_id.is_empty() => Err(Error::EmptyClientId),
        Protocol::V3_1 if limit_v3_1 && client_id.chars().nth(23).is_some() => Err(Error::ClientIdTooLong),
        Protocol::V3_1_1 if client_id.is_empty() && !clean_start => Err(Error::EmptyClientId),
        _ => Ok(()),
    }
}

/// Reads a field the flags announce, or nothing.
#[inline]
fn optional<'a, T>(
    input: &'a [u8],
    present: bool,
    read: impl FnOnce(&'a [u8]) -> Res<'a, T>,
) -> Res<'a, Option<T>> {
    if present {
        let (rest, value) = read(input)?;
        Ok((rest, Some(value)))
    } else {
        Ok((input, None))
    }
}
