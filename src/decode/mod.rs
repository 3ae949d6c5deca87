//! The decoder: frames the packet from its fixed header, then reads the frame whole, field
//! by field in the standard's order, so that the first fault on the wire is the one reported.

mod block;

pub(crate) use block::read as read_block;

use core::num::NonZeroUsize;

use crate::error::{Error, Field};
use crate::packet::{Connect, ConnectProperties, Will, WillProperties};
use crate::rules;
use crate::spec::{Block, ConnectFlags, Protocol, QoS};
use crate::values;
use crate::wire::{Reader, vbi};

/// What a decode found: a whole packet, or how much more to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Needed {
    /// The fixed header is not complete yet, so the size is not known.
    Unknown,
    /// Exactly this many more bytes complete the frame.
    Size(NonZeroUsize),
}

/// A CONNECT decoder with its options. Strict by default, but for the bridge bit; the
/// policies the standard leaves to a server are off until asked for.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decoder {
    max_packet_size: u32,
    allow_bridge_bit: bool,
    limit_v3_1_client_id: bool,
    check_payload_format: bool,
    refuse_control_characters: bool,
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
            refuse_control_characters: false,
        }
    }

    /// Cap on the whole packet, fixed header included. Decided from the Remaining Length
    /// alone: a packet over the cap is an error (reason code 0x95) before its bytes arrive.
    ///
    /// The decoder is `Copy`, so a cap set and dropped leaves it uncapped; `#[must_use]` says so:
    ///
    /// ```compile_fail
    /// #![deny(unused_must_use)]
    /// let decoder = mqtt_connect::Decoder::new();
    /// decoder.max_packet_size(1024);
    /// ```
    #[must_use = "returns the changed decoder, leaving this one as it was"]
    pub const fn max_packet_size(self, bytes: u32) -> Self {
        Self { max_packet_size: bytes, ..self }
    }

    /// Accept the mosquitto bridge bit (0x80) on a 3.1 or 3.1.1 level byte (0x83, 0x84); on
    /// by default, since real bridges send it. Off, such a level is an unsupported version.
    /// The bit is a 3.x convention: level 0x85 is not 5, so it is an unsupported version either
    /// way [MQTT-3.1.2-2]. (mosquitto 2.0 is no guide there: it takes 0x85 as 5.0 but reads
    /// properties only for a level of exactly 5, and so misreads the rest of the packet.)
    #[must_use = "returns the changed decoder, leaving this one as it was"]
    pub const fn allow_bridge_bit(self, yes: bool) -> Self {
        Self { allow_bridge_bit: yes, ..self }
    }

    /// Refuse 3.1 client ids over 23 characters, as the 3.1 specification says; off by
    /// default, as most brokers take longer ids.
    #[must_use = "returns the changed decoder, leaving this one as it was"]
    pub const fn limit_v3_1_client_id(self, yes: bool) -> Self {
        Self { limit_v3_1_client_id: yes, ..self }
    }

    /// Refuse a will payload announced as UTF-8 that is not (reason code 0x99); off by
    /// default, as the standard lets a server choose.
    #[must_use = "returns the changed decoder, leaving this one as it was"]
    pub const fn check_payload_format(self, yes: bool) -> Self {
        Self { check_payload_format: yes, ..self }
    }

    /// Refuse strings that hold a control character, U+0001..U+001F or U+007F..U+009F, with
    /// [`Error::ControlCharacter`] (reason code 0x81, Malformed Packet); off by default.
    ///
    /// The standard says a sender SHOULD NOT send them and a receiver MAY close the
    /// connection (3.1.1 section 1.5.3, 5.0 section 1.5.4). Brokers differ: mosquitto (2.0)
    /// refuses them in the client id, the user name, the will topic, the will properties and
    /// User Properties, and this option checks those strings. It does not check the CONNECT's
    /// Authentication Method, which mosquitto reads with the same checking string reader and
    /// so refuses too. Other brokers are not known
    /// to refuse them by default (not verified here): check yours before you turn this on
    /// in front of it.
    ///
    /// ```
    /// use mqtt_connect::{Decoder, Error, Field};
    ///
    /// let bell = b"\x10\x0f\x00\x04MQTT\x04\x02\x00\x3c\x00\x03c\x071";
    /// assert!(Decoder::new().decode(bell).is_ok());
    /// let strict = Decoder::new().refuse_control_characters(true);
    /// assert_eq!(strict.decode(bell), Err(Error::ControlCharacter { field: Field::ClientId }));
    /// ```
    #[must_use = "returns the changed decoder, leaving this one as it was"]
    pub const fn refuse_control_characters(self, yes: bool) -> Self {
        Self { refuse_control_characters: yes, ..self }
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
                self.preamble(&mut Reader::new(frame), &header)?;
                let len = header.len + frame.len();
                Ok(Status::Complete { packet: len, len })
            }
            Framed::Partial(needed) => Ok(Status::Incomplete(needed)),
        }
    }

    /// Decodes the CONNECT at the front of `buf`.
    ///
    /// Some errors come before the packet is whole: a wrong first byte at once, a packet over
    /// the cap from its Remaining Length, a wrong protocol name or flags before the rest
    /// arrives; the others once the frame is whole. Inside a complete frame a field cut short
    /// is an error, never `Incomplete`.
    /// Fields are read in the standard's order, and a packet with several faults reports the
    /// first on the wire.
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
        let remaining = rules::within_cap(header.len, header.remaining, self.max_packet_size)?;
        let body = buf.get(header.len..).unwrap_or_default();
        match body.get(..remaining) {
            Some(frame) => Ok(Framed::Whole(header, frame)),
            None => {
                self.partial(body, &header)?;
                let missing = remaining.saturating_sub(body.len());
                Ok(Framed::Partial(NonZeroUsize::new(missing).map_or(Needed::Unknown, Needed::Size)))
            }
        }
    }

    /// Protocol name and level, then the 5.0 rule on the Remaining Length, then the flags.
    #[inline(always)] // two call sites, `frame` and `decode`; inlined, each keeps its own copy
    fn preamble<'a>(&self, r: &mut Reader<'a>, header: &FixedHeader) -> Result<Preamble, Error> {
        let (protocol, bridge) = read_protocol(r, self.allow_bridge_bit)?;
        if protocol.is_v5() {
            rules::variable_byte_integer_is_minimal(header.minimal, Field::RemainingLength)?;
        }
        let flags = ConnectFlags(r.u8(Field::ConnectFlags)?);
        rules::reserved_flag_is_zero(flags)?;
        let qos = rules::will_qos(flags)?;
        rules::will_flags_need_will(flags, qos)?;
        rules::password_needs_user_name(protocol, flags.username(), flags.password())?;
        let keep_alive = r.u16(Field::KeepAlive)?;
        Ok(Preamble { protocol, bridge, flags, qos, keep_alive })
    }

    /// Checks what has arrived of a frame that is not whole yet; running out of it here only
    /// means waiting.
    fn partial(&self, body: &[u8], header: &FixedHeader) -> Result<(), Error> {
        match self.preamble(&mut Reader::new(body), header) {
            Ok(_) | Err(Error::Truncated { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads a complete frame: every byte of it, and nothing past it.
    #[inline]
    fn body<'a>(&self, frame: &'a [u8], header: &FixedHeader) -> Result<Status<Connect<'a>>, Error> {
        let mut r = Reader::new(frame);
        let pre = self.preamble(&mut r, header)?;
        let len = header.len + frame.len();
        // A copy of the reader per version: in the 3.x one, with no properties to fill in
        // memory, the optimiser keeps every field in registers and writes the 296-byte
        // `Connect` once, in place, instead of assembling it by copying from the stack.
        // `bash benches/instructions.sh`, minimal / will+user+password / 5.0 all properties,
        // when it was measured: one shared copy 529 / 830 / 5,625 instructions per decode, a
        // copy per version 454 / 715 / 5,595 (457 / 722 / 5,621 now).
        if pre.protocol.is_v5() {
            self.fields::<true>(r, &pre, len)
        } else {
            self.fields::<false>(r, &pre, len)
        }
    }

    /// The CONNECT properties and the payload, in wire order, up to the end of the frame.
    #[inline(always)] // one copy per version, see `body`
    fn fields<'a, const V5: bool>(
        &self,
        mut r: Reader<'a>,
        pre: &Preamble,
        len: usize,
    ) -> Result<Status<Connect<'a>>, Error> {
        let mut properties = ConnectProperties::default();
        if V5 {
            let control = self.refuse_control_characters;
            let users = block::read(&mut r, Block::Connect, control, |p, v| properties.set(p, v))?;
            properties.user_properties = users;
            properties.check()?;
        }
        // The string right behind the client id, if any: the will topic in 3.x (5.0 puts
        // the will properties between), else the user name; see `with_next`.
        let next = match (V5, pre.flags.will(), pre.flags.username()) {
            (false, true, _) => Some(Field::WillTopic),
            (_, false, true) => Some(Field::Username),
            _ => None,
        };
        let (client_id, mut ahead) = with_next(&mut r, next)?;
        self.text_rules(client_id, Field::ClientId)?;
        rules::client_id(pre.protocol, client_id, pre.flags.clean_start(), self.limit_v3_1_client_id)?;
        let will = match pre.flags.will() {
            true => Some(self.will::<V5>(&mut r, pre.qos, pre.flags.will_retain(), &mut ahead)?),
            false => None,
        };
        let username = match pre.flags.username() {
            true => Some(self.string(&mut r, Field::Username, &mut ahead)?),
            false => None,
        };
        let password = match pre.flags.password() {
            true => Some(r.binary(Field::Password)?),
            false => None,
        };
        if !r.is_empty() {
            return Err(Error::TrailingBytes { count: r.rest().len() });
        }
        let packet = Connect {
            protocol: pre.protocol,
            bridge: pre.bridge,
            clean_start: pre.flags.clean_start(),
            keep_alive: pre.keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        };
        Ok(Status::Complete { packet, len })
    }

    /// The will fields: properties (5.0), topic, payload.
    #[inline(always)] // once per decode, within `fields`
    fn will<'a, const V5: bool>(
        &self,
        r: &mut Reader<'a>,
        qos: QoS,
        retain: bool,
        ahead: &mut Option<&'a str>,
    ) -> Result<Will<'a>, Error> {
        let mut properties = WillProperties::default();
        if V5 {
            let control = self.refuse_control_characters;
            properties.user_properties = block::read(r, Block::Will, control, |p, v| properties.set(p, v))?;
        }
        let topic = self.string(r, Field::WillTopic, ahead)?;
        rules::topic_name(topic, Field::WillTopic)?;
        let payload = r.binary(Field::WillPayload)?;
        if self.check_payload_format {
            rules::will_payload_matches_format(properties.payload_format, payload)?;
        }
        Ok(Will { qos, retain, topic, payload, properties })
    }

    /// A UTF-8 string of the payload, with the control character policy; `ahead` is its
    /// text when [`with_next`] validated it already.
    #[inline(always)] // once per string on the decode path; the UTF-8 check inside is the body
    fn string<'a>(
        &self,
        r: &mut Reader<'a>,
        field: Field,
        ahead: &mut Option<&'a str>,
    ) -> Result<&'a str, Error> {
        let bytes = r.binary(field)?;
        let text = match ahead.take() {
            Some(text) => text,
            None => values::well_formed(bytes, field)?,
        };
        self.text_rules(text, field)?;
        Ok(text)
    }

    /// The rules on a well-formed string: U+0000, and control characters when asked.
    #[inline(always)] // once per string on the decode path; the scan kernel is the body
    fn text_rules(&self, text: &str, field: Field) -> Result<(), Error> {
        rules::no_null_character(text, field)?;
        if self.refuse_control_characters {
            rules::no_control_character(text, field)?;
        }
        Ok(())
    }
}

/// The client id as well-formed text, and, when `next` names the string right behind it and
/// both validate as one run, that string's text too, for [`Decoder::string`] to take.
///
/// When the second string is shorter than 128 bytes its length prefix is two ASCII bytes, so
/// client id, prefix and second string validate as one `from_utf8` call instead of two,
/// which is most of the cost of the short strings CONNECT holds; the prefix is a whole
/// character, so the run splits back on character boundaries. The second string is only
/// peeked: its other rules, and any fault in it, still come in wire order, after the client
/// id's. Measured with `bash benches/instructions.sh`, 3.1.1 will+user+password: 834
/// instructions per decode without it, 715 with it (main before the re-layout: 732).
#[inline(always)] // once per decode; inlined, `next` is known per version
fn with_next<'a>(r: &mut Reader<'a>, next: Option<Field>) -> Result<(&'a str, Option<&'a str>), Error> {
    let start = r.rest();
    let id = r.binary(Field::ClientId)?;
    let fused = next.and_then(|field| {
        let mut peek = *r;
        let second = peek.binary(field).ok().filter(|b| b.len() < 0x80)?;
        let run = core::str::from_utf8(start.get(2..4 + id.len() + second.len())?).ok()?;
        let (id, rest) = run.split_at_checked(id.len())?;
        Some((id, rest.get(2..)?))
    });
    match fused {
        Some((id, second)) => Ok((id, Some(second))),
        None => Ok((values::well_formed(id, Field::ClientId)?, None)),
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
        rules::connect_comes_first(first)?;
        rules::fixed_header_flags_are_zero(first)?;
        Ok(vbi::parse(rest, Field::RemainingLength)?.map(|vbi| Self {
            len: 1 + vbi.len,
            remaining: vbi.value,
            minimal: vbi.minimal,
        }))
    }
}

/// The version the protocol name and level at the front of `frame` announce, a bridge's too;
/// `None` when they are not there, fail, or do not pair. For
/// [`protocol_of`](crate::protocol_of).
pub(crate) fn protocol_in(frame: &[u8]) -> Option<Protocol> {
    read_protocol(&mut Reader::new(frame), true).ok().map(|(protocol, _bridge)| protocol)
}

/// The protocol name, then the level byte: the version they announce and whether the bridge
/// bit is set.
#[inline]
fn read_protocol(r: &mut Reader<'_>, allow_bridge: bool) -> Result<(Protocol, bool), Error> {
    let mqisdp = rules::protocol_name(r.binary(Field::ProtocolName)?)?;
    rules::protocol_level(mqisdp, r.u8(Field::ProtocolLevel)?, allow_bridge)
}

/// A frame cut off the input, or how much more it needs.
enum Framed<'a> {
    /// The fixed header and the frame after it, exactly Remaining Length bytes.
    Whole(FixedHeader, &'a [u8]),
    /// A valid start of a packet.
    Partial(Needed),
}

/// The variable header up to the properties, its rules checked.
struct Preamble {
    protocol: Protocol,
    bridge: bool,
    flags: ConnectFlags,
    /// The will's QoS; `AtMostOnce` when there is no will.
    qos: QoS,
    keep_alive: u16,
}
