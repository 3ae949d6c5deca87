//! The whole CONNACK, both ways: a client or proxy reads the server's answer, a server writes
//! one with Session Present and every 5.0 property. As strict as the CONNECT decoder.

use core::fmt;
use core::num::NonZeroUsize;

use crate::{Needed, Protocol, QoS, ReasonCode, Status, varint};

/// The fixed header's first byte: type 2 (CONNACK), flags 0.
const CONNACK_BYTE: u8 = 0x20;

/// A CONNACK packet: decoded from a server, or built to encode.
///
/// The version is not on the wire: a client knows the one it sent in its CONNECT, and hands it
/// to [`ConnackPacket::decode`].
///
/// ```
/// use mqtt_connect::{ConnackPacket, Protocol, ReasonCode, Status};
///
/// // A broker accepts, with a session, and tells the client to ping every 30 s.
/// let mut ack = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
/// ack.session_present = true;
/// ack.properties.server_keep_alive = Some(30);
/// ack.properties.assigned_client_identifier = Some("auto-7f3a");
/// let mut buf = [0u8; 64];
/// let len = ack.encode(&mut buf)?;
///
/// // The client's side.
/// let Status::Complete { packet, .. } = ConnackPacket::decode(Protocol::V5, &buf[..len])? else {
///     unreachable!()
/// };
/// assert_eq!(packet, ack);
/// assert_eq!(packet.properties.server_keep_alive, Some(30));
/// # Ok::<(), mqtt_connect::ConnackError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnackPacket<'a> {
    /// The version of the CONNECT this answers.
    pub protocol: Protocol,
    /// Session Present: the server kept a session for this client. Always `false` with a code
    /// other than success, and in 3.1, which has no such flag.
    pub session_present: bool,
    /// The reason code (5.0) or return code (3.x). 3.x has six codes: decoding maps them to
    /// their 5.0 names (return code 3 is `ServerUnavailable`, 5 is `NotAuthorized`), and
    /// encoding maps back as [`Protocol::connack`] does.
    pub reason_code: ReasonCode,
    /// The 5.0 properties; all `None` and empty for 3.x.
    pub properties: ConnackProperties<'a>,
}

/// The properties of a 5.0 CONNACK.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnackProperties<'a> {
    /// Session Expiry Interval the server uses, when not the client's.
    pub session_expiry_interval: Option<u32>,
    /// QoS 1 and 2 publishes the server takes at once; never 0.
    pub receive_maximum: Option<u16>,
    /// The highest QoS the server supports: `AtMostOnce` or `AtLeastOnce`; absent means all.
    pub maximum_qos: Option<QoS>,
    /// Whether the server supports retained messages; absent means it does.
    pub retain_available: Option<bool>,
    /// The largest packet the server accepts; never 0.
    pub maximum_packet_size: Option<u32>,
    /// The client id the server assigned, when the client sent an empty one.
    pub assigned_client_identifier: Option<&'a str>,
    /// The highest topic alias the server accepts.
    pub topic_alias_maximum: Option<u16>,
    /// A human-readable reason, for diagnostics.
    pub reason_string: Option<&'a str>,
    /// User Properties, in wire order.
    pub user_properties: ConnackUserProperties<'a>,
    /// Whether the server supports wildcard subscriptions; absent means it does.
    pub wildcard_subscription_available: Option<bool>,
    /// Whether the server supports Subscription Identifiers; absent means it does.
    pub subscription_identifiers_available: Option<bool>,
    /// Whether the server supports shared subscriptions; absent means it does.
    pub shared_subscription_available: Option<bool>,
    /// The Keep Alive the client must use instead of its own [MQTT-3.1.2-21].
    pub server_keep_alive: Option<u16>,
    /// The basis for response topics, when the client asked for it.
    pub response_information: Option<&'a str>,
    /// Another server to use, with reason code 0x9C or 0x9D.
    pub server_reference: Option<&'a str>,
    /// The extended authentication method.
    pub authentication_method: Option<&'a str>,
    /// Its data.
    pub authentication_data: Option<&'a [u8]>,
}

/// How a CONNACK property's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A byte that is 0 or 1.
    Bool,
    /// Maximum QoS: a byte that is 0 or 1.
    Qos,
    U16,
    /// A u16 that is never 0.
    NonZeroU16,
    U32,
    /// A u32 that is never 0.
    NonZeroU32,
    Str,
    Bin,
    Pair,
}

/// The property ids a CONNACK allows, with their names and kinds: MQTT 5.0 section 3.2.2.3.
const TABLE: [(u8, &str, Kind); 17] = [
    (0x11, "Session Expiry Interval", Kind::U32),
    (0x12, "Assigned Client Identifier", Kind::Str),
    (0x13, "Server Keep Alive", Kind::U16),
    (0x15, "Authentication Method", Kind::Str),
    (0x16, "Authentication Data", Kind::Bin),
    (0x1A, "Response Information", Kind::Str),
    (0x1C, "Server Reference", Kind::Str),
    (0x1F, "Reason String", Kind::Str),
    (0x21, "Receive Maximum", Kind::NonZeroU16),
    (0x22, "Topic Alias Maximum", Kind::U16),
    (0x24, "Maximum QoS", Kind::Qos),
    (0x25, "Retain Available", Kind::Bool),
    (0x26, "User Property", Kind::Pair),
    (0x27, "Maximum Packet Size", Kind::NonZeroU32),
    (0x28, "Wildcard Subscription Available", Kind::Bool),
    (0x29, "Subscription Identifiers Available", Kind::Bool),
    (0x2A, "Shared Subscription Available", Kind::Bool),
];

const USER_PROPERTY: u8 = 0x26;

fn lookup(id: u8) -> Option<(&'static str, Kind)> {
    TABLE.iter().find(|(i, ..)| *i == id).map(|&(_, name, kind)| (name, kind))
}

/// A part of a CONNACK, named in its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnackField {
    /// The Remaining Length of the fixed header.
    RemainingLength,
    /// The Connect Acknowledge Flags byte.
    AcknowledgeFlags,
    /// The reason code, or 3.x return code.
    ReasonCode,
    /// The property block's length.
    Properties,
    /// One property's value, by its id.
    Property(u8),
}

impl fmt::Display for ConnackField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemainingLength => f.write_str("Remaining Length"),
            Self::AcknowledgeFlags => f.write_str("Connect Acknowledge Flags"),
            Self::ReasonCode => f.write_str("reason code"),
            Self::Properties => f.write_str("CONNACK properties"),
            Self::Property(id) => match lookup(*id) {
                Some((name, _)) => write!(f, "property {name} ({id:#04x})"),
                None => write!(f, "property {id:#04x}"),
            },
        }
    }
}

/// Why a CONNACK could not be decoded or encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnackError {
    /// The first byte is not a CONNACK.
    #[error("first byte {byte:#04x} is not a CONNACK packet")]
    NotConnack {
        /// The byte received.
        byte: u8,
    },
    /// The low nibble of the fixed header must be 0 [MQTT-2.1.3-1 / MQTT-2.2.2-1].
    #[error("CONNACK fixed header flags are {flags:#x}, must be 0")]
    FixedHeaderFlags {
        /// The four flag bits received.
        flags: u8,
    },
    /// A Variable Byte Integer runs over 4 bytes.
    #[error("{field}: Variable Byte Integer is longer than 4 bytes")]
    VbiTooLong {
        /// Where the integer stands.
        field: ConnackField,
    },
    /// 5.0 requires the fewest bytes for a Variable Byte Integer [MQTT-1.5.5-1].
    #[error("{field}: Variable Byte Integer is not in its shortest form")]
    VbiNotMinimal {
        /// Where the integer stands.
        field: ConnackField,
    },
    /// A Remaining Length no CONNACK of this version has: 3.x has exactly 2, 5.0 at least 3.
    #[error("Remaining Length {remaining} is not that of a CONNACK of this version")]
    RemainingLength {
        /// The Remaining Length received.
        remaining: u32,
    },
    /// A field runs past the end of the frame.
    #[error("{field}: runs past the end of the packet")]
    Truncated {
        /// The field cut short.
        field: ConnackField,
    },
    /// Bytes are left in the frame after the property block.
    #[error("{count} bytes left over after the last field")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// Reserved bits of the Connect Acknowledge Flags are set [MQTT-3.2.2-1]; in 3.1 the
    /// whole byte is reserved.
    #[error("Connect Acknowledge Flags {flags:#04x}: reserved bits are set")]
    ReservedAckFlags {
        /// The byte received.
        flags: u8,
    },
    /// Session Present with a code other than success [MQTT-3.2.2-4 / MQTT-3.2.2-6].
    #[error("Session Present is set with the non-zero code {code:#04x}")]
    SessionPresentWithError {
        /// The code received.
        code: u8,
    },
    /// A reason code (5.0) or return code (3.x) that a CONNACK of this version cannot carry.
    #[error("{code:#04x} is not a CONNACK code of this version")]
    InvalidReasonCode {
        /// The code received.
        code: u8,
    },
    /// A property id that a CONNACK does not allow.
    #[error("property id {id:#04x} is not allowed in a CONNACK")]
    PropertyNotAllowed {
        /// The id received.
        id: u8,
    },
    /// A property other than User Property appears twice.
    #[error("{}: appears twice", ConnackField::Property(*id))]
    DuplicateProperty {
        /// The property's id.
        id: u8,
    },
    /// A property value out of its range: Receive Maximum or Maximum Packet Size 0, Maximum
    /// QoS or a boolean other than 0 or 1.
    #[error("{}: value out of range", ConnackField::Property(*id))]
    InvalidPropertyValue {
        /// The property's id.
        id: u8,
    },
    /// A UTF-8 string is ill-formed [MQTT-1.5.4-1].
    #[error("{field}: not well-formed UTF-8")]
    InvalidUtf8 {
        /// The string.
        field: ConnackField,
    },
    /// A UTF-8 string holds U+0000 [MQTT-1.5.4-2].
    #[error("{field}: contains U+0000")]
    NullCharacter {
        /// The string.
        field: ConnackField,
    },
    /// Encoding: the buffer is shorter than the packet.
    #[error("buffer of {len} bytes is too small for a packet of {needed}")]
    BufferTooSmall {
        /// The packet's size.
        needed: usize,
        /// The buffer's size.
        len: usize,
    },
    /// Encoding: a string over 65,535 bytes, or a packet over 268,435,460 bytes.
    #[error("{field}: too long to encode")]
    TooLong {
        /// The field.
        field: ConnackField,
    },
    /// Encoding: what this version cannot carry: properties in 3.x, Session Present in 3.1, or
    /// a 5.0 reason code with no 3.x return code.
    #[error("{field}: not in this protocol version")]
    NotInVersion {
        /// The field.
        field: ConnackField,
    },
}

impl ConnackError {
    /// The reason code a 5.0 client sends in its DISCONNECT for this fault: Malformed Packet
    /// or Protocol Error. (A 3.x client just closes.)
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::DuplicateProperty { .. }
            | Self::InvalidPropertyValue { .. }
            | Self::SessionPresentWithError { .. } => ReasonCode::ProtocolError,
            _ => ReasonCode::MalformedPacket,
        }
    }
}

/// The 5.0 reason code with this number, when a CONNACK may carry it: every [`ReasonCode`] is
/// one, and nothing else is.
pub(crate) const fn reason_code_v5(code: u8) -> Option<ReasonCode> {
    Some(match code {
        0x00 => ReasonCode::Success,
        0x80 => ReasonCode::UnspecifiedError,
        0x81 => ReasonCode::MalformedPacket,
        0x82 => ReasonCode::ProtocolError,
        0x83 => ReasonCode::ImplementationSpecificError,
        0x84 => ReasonCode::UnsupportedProtocolVersion,
        0x85 => ReasonCode::ClientIdentifierNotValid,
        0x86 => ReasonCode::BadUserNameOrPassword,
        0x87 => ReasonCode::NotAuthorized,
        0x88 => ReasonCode::ServerUnavailable,
        0x89 => ReasonCode::ServerBusy,
        0x8A => ReasonCode::Banned,
        0x8C => ReasonCode::BadAuthenticationMethod,
        0x90 => ReasonCode::TopicNameInvalid,
        0x95 => ReasonCode::PacketTooLarge,
        0x97 => ReasonCode::QuotaExceeded,
        0x99 => ReasonCode::PayloadFormatInvalid,
        0x9A => ReasonCode::RetainNotSupported,
        0x9B => ReasonCode::QosNotSupported,
        0x9C => ReasonCode::UseAnotherServer,
        0x9D => ReasonCode::ServerMoved,
        0x9F => ReasonCode::ConnectionRateExceeded,
        _ => return None,
    })
}

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
pub(crate) const fn reason_code_v3(code: u8) -> Option<ReasonCode> {
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

/// The code byte for `code` in `protocol`.
const fn code_byte(protocol: Protocol, code: ReasonCode) -> Option<u8> {
    match protocol {
        Protocol::V5 => Some(code as u8),
        _ => return_code_v3(code),
    }
}

/// A cursor over a complete frame: running out is `Truncated`.
#[derive(Clone)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: ConnackField) -> Result<&'a [u8], ConnackError> {
        let (taken, rest) = self.0.split_at_checked(n).ok_or(ConnackError::Truncated { field })?;
        self.0 = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: ConnackField) -> Result<[u8; N], ConnackError> {
        let (taken, rest) = self.0.split_first_chunk::<N>().ok_or(ConnackError::Truncated { field })?;
        self.0 = rest;
        Ok(*taken)
    }

    fn u8(&mut self, field: ConnackField) -> Result<u8, ConnackError> {
        self.array::<1>(field).map(|[b]| b)
    }

    fn bin(&mut self, field: ConnackField) -> Result<&'a [u8], ConnackError> {
        let len = u16::from_be_bytes(self.array(field)?);
        self.take(usize::from(len), field)
    }

    fn str(&mut self, field: ConnackField) -> Result<&'a str, ConnackError> {
        let text = core::str::from_utf8(self.bin(field)?).map_err(|_| ConnackError::InvalidUtf8 { field })?;
        check_no_null(text, field)?;
        Ok(text)
    }

    /// A 5.0 Variable Byte Integer: there, and in its shortest form.
    fn vbi(&mut self, field: ConnackField) -> Result<u32, ConnackError> {
        let vbi = vbi(self.0, field)?.ok_or(ConnackError::Truncated { field })?;
        if !vbi.minimal {
            return Err(ConnackError::VbiNotMinimal { field });
        }
        self.0 = self.0.get(vbi.len..).unwrap_or_default();
        Ok(vbi.value)
    }
}

fn vbi(input: &[u8], field: ConnackField) -> Result<Option<varint::Vbi>, ConnackError> {
    // The crate's reader names CONNECT's fields in its errors; only "too long" can come back.
    varint::parse(input, crate::Field::RemainingLength).map_err(|_| ConnackError::VbiTooLong { field })
}

/// U+0000 [MQTT-1.5.4-2], in text already well-formed.
fn check_no_null(text: &str, field: ConnackField) -> Result<(), ConnackError> {
    if text.as_bytes().contains(&0) {
        return Err(ConnackError::NullCharacter { field });
    }
    Ok(())
}

/// One property value, as read or to write.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Byte(u8),
    U16(u16),
    U32(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

impl<'a> Value<'a> {
    fn read(r: &mut Reader<'a>, id: u8, kind: Kind) -> Result<Self, ConnackError> {
        let field = ConnackField::Property(id);
        Ok(match kind {
            Kind::Bool | Kind::Qos => Self::Byte(r.u8(field)?),
            Kind::U16 | Kind::NonZeroU16 => Self::U16(u16::from_be_bytes(r.array(field)?)),
            Kind::U32 | Kind::NonZeroU32 => Self::U32(u32::from_be_bytes(r.array(field)?)),
            Kind::Str => Self::Str(r.str(field)?),
            Kind::Bin => Self::Bin(r.bin(field)?),
            Kind::Pair => Self::Pair(r.str(field)?, r.str(field)?),
        })
    }

    /// The value's range rule, the one place each lives, for both directions.
    fn check(self, id: u8, kind: Kind) -> Result<(), ConnackError> {
        match (kind, self) {
            (Kind::Bool | Kind::Qos, Self::Byte(2..))
            | (Kind::NonZeroU16, Self::U16(0))
            | (Kind::NonZeroU32, Self::U32(0)) => Err(ConnackError::InvalidPropertyValue { id }),
            _ => Ok(()),
        }
    }

    /// What a string or binary value must be to encode: what the decoder reads back.
    fn check_encodable(self, id: u8) -> Result<(), ConnackError> {
        let field = ConnackField::Property(id);
        match self {
            Self::Str(s) => check_str(s, field).map(drop),
            Self::Bin(b) => check_len(b, field).map(drop),
            Self::Pair(k, v) => {
                check_str(k, field)?;
                check_str(v, field).map(drop)
            }
            Self::Byte(_) | Self::U16(_) | Self::U32(_) => Ok(()),
        }
    }

    fn len(self) -> usize {
        match self {
            Self::Byte(_) => 1,
            Self::U16(_) => 2,
            Self::U32(_) => 4,
            Self::Str(s) => 2 + s.len(),
            Self::Bin(b) => 2 + b.len(),
            Self::Pair(k, v) => 4 + k.len() + v.len(),
        }
    }
}

fn check_str(text: &str, field: ConnackField) -> Result<usize, ConnackError> {
    check_no_null(text, field)?;
    check_len(text.as_bytes(), field)
}

fn check_len(bytes: &[u8], field: ConnackField) -> Result<usize, ConnackError> {
    if bytes.len() > usize::from(u16::MAX) {
        return Err(ConnackError::TooLong { field });
    }
    Ok(2 + bytes.len())
}

impl<'a> ConnackProperties<'a> {
    fn set(&mut self, id: u8, value: Value<'a>) {
        let flag = |v: u8| Some(v == 1);
        match (id, value) {
            (0x11, Value::U32(v)) => self.session_expiry_interval = Some(v),
            (0x12, Value::Str(v)) => self.assigned_client_identifier = Some(v),
            (0x13, Value::U16(v)) => self.server_keep_alive = Some(v),
            (0x15, Value::Str(v)) => self.authentication_method = Some(v),
            (0x16, Value::Bin(v)) => self.authentication_data = Some(v),
            (0x1A, Value::Str(v)) => self.response_information = Some(v),
            (0x1C, Value::Str(v)) => self.server_reference = Some(v),
            (0x1F, Value::Str(v)) => self.reason_string = Some(v),
            (0x21, Value::U16(v)) => self.receive_maximum = Some(v),
            (0x22, Value::U16(v)) => self.topic_alias_maximum = Some(v),
            (0x24, Value::Byte(v)) => {
                self.maximum_qos = Some(if v == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce });
            }
            (0x25, Value::Byte(v)) => self.retain_available = flag(v),
            (0x27, Value::U32(v)) => self.maximum_packet_size = Some(v),
            (0x28, Value::Byte(v)) => self.wildcard_subscription_available = flag(v),
            (0x29, Value::Byte(v)) => self.subscription_identifiers_available = flag(v),
            (0x2A, Value::Byte(v)) => self.shared_subscription_available = flag(v),
            _ => {}
        }
    }

    /// Every property set but User Property, in id order.
    fn entries(&self) -> impl Iterator<Item = (u8, Value<'a>)> {
        let flag = |v: Option<bool>| v.map(|b| Value::Byte(b.into()));
        [
            (0x11, self.session_expiry_interval.map(Value::U32)),
            (0x12, self.assigned_client_identifier.map(Value::Str)),
            (0x13, self.server_keep_alive.map(Value::U16)),
            (0x15, self.authentication_method.map(Value::Str)),
            (0x16, self.authentication_data.map(Value::Bin)),
            (0x1A, self.response_information.map(Value::Str)),
            (0x1C, self.server_reference.map(Value::Str)),
            (0x1F, self.reason_string.map(Value::Str)),
            (0x21, self.receive_maximum.map(Value::U16)),
            (0x22, self.topic_alias_maximum.map(Value::U16)),
            // QoS 2 is out of range, as on the wire.
            (0x24, self.maximum_qos.map(|q| Value::Byte(q as u8))),
            (0x25, flag(self.retain_available)),
            (0x27, self.maximum_packet_size.map(Value::U32)),
            (0x28, flag(self.wildcard_subscription_available)),
            (0x29, flag(self.subscription_identifiers_available)),
            (0x2A, flag(self.shared_subscription_available)),
        ]
        .into_iter()
        .filter_map(|(id, value)| Some((id, value?)))
    }

    /// Every property, User Properties last, in the order they are written.
    fn all(&self) -> impl Iterator<Item = (u8, Value<'a>)> {
        self.entries().chain(self.user_properties.iter().map(|(k, v)| (USER_PROPERTY, Value::Pair(k, v))))
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Reads a complete block after its length.
    fn read(block: &'a [u8]) -> Result<Self, ConnackError> {
        let mut properties = Self::default();
        let mut r = Reader(block);
        let mut seen = 0u64;
        let mut users = 0usize;
        while let Some((&id, rest)) = r.0.split_first() {
            r.0 = rest;
            let (_, kind) = lookup(id).ok_or(ConnackError::PropertyNotAllowed { id })?;
            let value = Value::read(&mut r, id, kind)?;
            if id == USER_PROPERTY {
                users += 1;
                continue;
            }
            // Every allowed id is below 64, so one bit each.
            let bit = 1u64 << (id & 63);
            if seen & bit != 0 {
                return Err(ConnackError::DuplicateProperty { id });
            }
            seen |= bit;
            value.check(id, kind)?;
            properties.set(id, value);
        }
        if users > 0 {
            properties.user_properties = ConnackUserProperties(Repr::Wire { block, len: users });
        }
        Ok(properties)
    }

    /// The block's size after its length prefix, once every value passes the decoder's rules.
    fn encoded_len(&self) -> Result<usize, ConnackError> {
        self.all().try_fold(0usize, |len, (id, value)| {
            let (_, kind) = lookup(id).ok_or(ConnackError::PropertyNotAllowed { id })?;
            value.check(id, kind)?;
            value.check_encodable(id)?;
            Ok(len.saturating_add(1 + value.len()))
        })
    }
}

/// The User Properties of a CONNACK, in wire order: decoded, the validated property block
/// they stand in; to encode, a slice of pairs.
#[derive(Clone, Copy, Default)]
pub struct ConnackUserProperties<'a>(Repr<'a>);

#[derive(Clone, Copy)]
enum Repr<'a> {
    Wire { block: &'a [u8], len: usize },
    Pairs(&'a [(&'a str, &'a str)]),
}

impl Default for Repr<'_> {
    fn default() -> Self {
        Self::Pairs(&[])
    }
}

impl<'a> ConnackUserProperties<'a> {
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
    pub fn iter(&self) -> ConnackUserPropertiesIter<'a> {
        let (wire, pairs) = match self.0 {
            Repr::Wire { block, .. } => (block, &[][..]),
            Repr::Pairs(pairs) => (&[][..], pairs),
        };
        ConnackUserPropertiesIter { wire: Reader(wire), pairs: pairs.iter(), remaining: self.len() }
    }

    /// The value of the first pair named `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|&(n, _)| n == name).map(|(_, value)| value)
    }
}

impl<'a> IntoIterator for &ConnackUserProperties<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = ConnackUserPropertiesIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// An iterator over the User Properties of a CONNACK, in wire order.
#[derive(Clone)]
pub struct ConnackUserPropertiesIter<'a> {
    /// A validated block: its User Properties, stepping over the other properties.
    wire: Reader<'a>,
    pairs: core::slice::Iter<'a, (&'a str, &'a str)>,
    remaining: usize,
}

impl<'a> Iterator for ConnackUserPropertiesIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.pairs.next().copied().or_else(|| self.next_on_wire());
        self.remaining = self.remaining.saturating_sub(1);
        pair
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for ConnackUserPropertiesIter<'_> {}

impl<'a> ConnackUserPropertiesIter<'a> {
    /// The block was validated when decoded, so nothing here fails; a failure would only end
    /// the iteration early.
    fn next_on_wire(&mut self) -> Option<(&'a str, &'a str)> {
        let r = &mut self.wire;
        while let Some((&id, rest)) = r.0.split_first() {
            r.0 = rest;
            let (_, kind) = lookup(id)?;
            if let Value::Pair(name, value) = Value::read(r, id, kind).ok()? {
                return Some((name, value));
            }
        }
        None
    }
}

impl fmt::Debug for ConnackUserProperties<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for ConnackUserProperties<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for ConnackUserProperties<'_> {}

/// The fixed header of a CONNACK: `None` while it is not all there.
fn fixed_header(buf: &[u8]) -> Result<Option<(usize, varint::Vbi)>, ConnackError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    if first >> 4 != CONNACK_BYTE >> 4 {
        return Err(ConnackError::NotConnack { byte: first });
    }
    if first & 0x0F != 0 {
        return Err(ConnackError::FixedHeaderFlags { flags: first & 0x0F });
    }
    Ok(vbi(rest, ConnackField::RemainingLength)?.map(|v| (1 + v.len, v)))
}

impl<'a> ConnackPacket<'a> {
    /// A CONNACK with no session and no properties.
    pub fn new(protocol: Protocol, reason_code: ReasonCode) -> Self {
        Self { protocol, session_present: false, reason_code, properties: ConnackProperties::default() }
    }

    /// Decodes the CONNACK at the front of `buf`, answering a CONNECT of `protocol`.
    ///
    /// As the CONNECT decoder does, it reports a fault as soon as the bytes show it, and
    /// `Incomplete` with exactly how many bytes are missing; inside a complete frame a field
    /// cut short is an error. 3.x CONNACKs are 4 bytes; a 5.0 one is as long as its
    /// properties, so cap what you buffer for it.
    pub fn decode(protocol: Protocol, buf: &'a [u8]) -> Result<Status<Self>, ConnackError> {
        let Some((header_len, remaining)) = fixed_header(buf)? else {
            return Ok(Status::Incomplete(Needed::Unknown));
        };
        let v5 = protocol == Protocol::V5;
        if v5 && !remaining.minimal {
            return Err(ConnackError::VbiNotMinimal { field: ConnackField::RemainingLength });
        }
        if (!v5 && remaining.value != 2) || (v5 && remaining.value < 3) {
            return Err(ConnackError::RemainingLength { remaining: remaining.value });
        }
        let body = buf.get(header_len..).unwrap_or_default();
        let wanted = usize::try_from(remaining.value).unwrap_or(usize::MAX);
        match body.get(..wanted) {
            Some(frame) => {
                let packet = Self::body(protocol, frame)?;
                Ok(Status::Complete { packet, len: header_len + wanted })
            }
            None => {
                // Check what has arrived; running out of it here only means waiting.
                match Self::body(protocol, body) {
                    Ok(_) | Err(ConnackError::Truncated { .. }) => {}
                    Err(e) => return Err(e),
                }
                let missing = wanted.saturating_sub(body.len());
                Ok(Status::Incomplete(NonZeroUsize::new(missing).map_or(Needed::Unknown, Needed::Size)))
            }
        }
    }

    /// The variable header and properties, in wire order.
    fn body(protocol: Protocol, frame: &'a [u8]) -> Result<Self, ConnackError> {
        let mut r = Reader(frame);
        let flags = r.u8(ConnackField::AcknowledgeFlags)?;
        let reserved = if protocol == Protocol::V3_1 { 0xFF } else { 0xFE };
        if flags & reserved != 0 {
            return Err(ConnackError::ReservedAckFlags { flags });
        }
        let session_present = flags & 1 != 0;
        let code = r.u8(ConnackField::ReasonCode)?;
        let reason_code = match protocol {
            Protocol::V5 => reason_code_v5(code),
            _ => reason_code_v3(code),
        }
        .ok_or(ConnackError::InvalidReasonCode { code })?;
        if session_present && code != 0 {
            return Err(ConnackError::SessionPresentWithError { code });
        }
        let mut properties = ConnackProperties::default();
        if protocol == Protocol::V5 {
            let len = r.vbi(ConnackField::Properties)?;
            let block = r.take(usize::try_from(len).unwrap_or(usize::MAX), ConnackField::Properties)?;
            properties = ConnackProperties::read(block)?;
        }
        if !r.0.is_empty() {
            return Err(ConnackError::TrailingBytes { count: r.0.len() });
        }
        Ok(Self { protocol, session_present, reason_code, properties })
    }

    /// Checks every rule and sizes the packet: (Remaining Length, property block length).
    fn layout(&self) -> Result<(usize, usize), ConnackError> {
        let not_in_version = |field| Err(ConnackError::NotInVersion { field });
        let code = code_byte(self.protocol, self.reason_code);
        let Some(code) = code else { return not_in_version(ConnackField::ReasonCode) };
        if self.session_present && self.protocol == Protocol::V3_1 {
            return not_in_version(ConnackField::AcknowledgeFlags);
        }
        if self.session_present && code != 0 {
            return Err(ConnackError::SessionPresentWithError { code });
        }
        if self.protocol != Protocol::V5 {
            if !self.properties.is_empty() {
                return not_in_version(ConnackField::Properties);
            }
            return Ok((2, 0));
        }
        let block = self.properties.encoded_len()?;
        let remaining = u32::try_from(block)
            .ok()
            .filter(|&n| n <= varint::MAX)
            .map(|n| 2 + varint::len(n) + block)
            .filter(|&n| n <= varint::MAX as usize)
            .ok_or(ConnackError::TooLong { field: ConnackField::RemainingLength })?;
        Ok((remaining, block))
    }

    /// Bytes the encoded packet takes; the same checks as [`ConnackPacket::encode`].
    pub fn encoded_len(&self) -> Result<usize, ConnackError> {
        let (remaining, _) = self.layout()?;
        Ok(1 + varint::len(remaining as u32) + remaining)
    }

    /// Writes the packet to the front of `buf` and returns its length, refusing what the
    /// decoder would refuse. Properties are written in id order, User Properties last.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, ConnackError> {
        let needed = self.encoded_len()?;
        let Some(out) = buf.get_mut(..needed) else {
            return Err(ConnackError::BufferTooSmall { needed, len: buf.len() });
        };
        let mut sink = SliceSink { buf: out, short: false };
        self.write(&mut sink)?;
        if sink.short || !sink.buf.is_empty() {
            // `layout` sized the packet that `write` writes: this would be a bug in this file.
            return Err(ConnackError::BufferTooSmall { needed, len: needed });
        }
        Ok(needed)
    }

    /// Appends the packet to `dst` and returns its length: a `BytesMut` grows to fit, any
    /// other `BufMut` must have the room.
    #[cfg(feature = "bytes")]
    #[cfg_attr(docsrs, doc(cfg(feature = "bytes")))]
    pub fn encode_to<B: bytes::BufMut>(&self, dst: &mut B) -> Result<usize, ConnackError> {
        let needed = self.encoded_len()?;
        if dst.remaining_mut() < needed {
            return Err(ConnackError::BufferTooSmall { needed, len: dst.remaining_mut() });
        }
        self.write(&mut BufSink(dst))?;
        Ok(needed)
    }

    fn write(&self, out: &mut impl Sink) -> Result<(), ConnackError> {
        let (remaining, block) = self.layout()?;
        out.put(&[CONNACK_BYTE]);
        write_vbi(out, remaining as u32);
        let code = code_byte(self.protocol, self.reason_code).unwrap_or_default();
        out.put(&[u8::from(self.session_present), code]);
        if self.protocol == Protocol::V5 {
            write_vbi(out, block as u32);
            for (id, value) in self.properties.all() {
                out.put(&[id]);
                match value {
                    Value::Byte(v) => out.put(&[v]),
                    Value::U16(v) => out.put(&v.to_be_bytes()),
                    Value::U32(v) => out.put(&v.to_be_bytes()),
                    Value::Str(s) => put_bin(out, s.as_bytes()),
                    Value::Bin(b) => put_bin(out, b),
                    Value::Pair(k, v) => {
                        put_bin(out, k.as_bytes());
                        put_bin(out, v.as_bytes());
                    }
                }
            }
        }
        Ok(())
    }
}

/// Where an encoder writes.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

/// A slice sized by `layout`; a write that does not fit is recorded, never dropped silently.
struct SliceSink<'b> {
    buf: &'b mut [u8],
    short: bool,
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        match core::mem::take(&mut self.buf).split_at_mut_checked(bytes.len()) {
            Some((head, tail)) => {
                head.copy_from_slice(bytes);
                self.buf = tail;
            }
            None => self.short = true,
        }
    }
}

#[cfg(feature = "bytes")]
struct BufSink<'b, B>(&'b mut B);

#[cfg(feature = "bytes")]
impl<B: bytes::BufMut> Sink for BufSink<'_, B> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.put_slice(bytes);
    }
}

/// A u16 length, then the bytes; `layout` checked the length fits.
fn put_bin(out: &mut impl Sink, bytes: &[u8]) {
    out.put(&(bytes.len() as u16).to_be_bytes());
    out.put(bytes);
}

/// A Variable Byte Integer in its shortest form; `layout` checked it is at most 4 bytes.
fn write_vbi(out: &mut impl Sink, mut value: u32) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.put(&[byte]);
            return;
        }
        out.put(&[byte | 0x80]);
    }
}
