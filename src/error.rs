//! What can be wrong with a CONNECT, where, and what a server answers for it.

use core::fmt;

use crate::spec::{Block, Property};

/// A part of a CONNECT or CONNACK packet, named in errors so that they say where the fault is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The Remaining Length of the fixed header.
    RemainingLength,
    /// The protocol name of the variable header.
    ProtocolName,
    /// The protocol level byte.
    ProtocolLevel,
    /// The Connect Flags byte.
    ConnectFlags,
    /// The Keep Alive interval.
    KeepAlive,
    /// The CONNECT property block (5.0).
    Properties,
    /// The will property block (5.0).
    WillProperties,
    /// One property's value.
    Property(Property),
    /// The Client Identifier.
    ClientId,
    /// The Will Topic.
    WillTopic,
    /// The Will Payload (Will Message in 3.1.1).
    WillPayload,
    /// The User Name.
    Username,
    /// The Password.
    Password,
    /// The CONNACK's Connect Acknowledge Flags byte.
    AcknowledgeFlags,
    /// The CONNACK's reason code, or 3.x return code.
    ReasonCode,
    /// The CONNACK property block (5.0).
    ConnackProperties,
}

impl From<Block> for Field {
    fn from(block: Block) -> Self {
        match block {
            Block::Connect => Self::Properties,
            Block::Will => Self::WillProperties,
            Block::Connack => Self::ConnackProperties,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::RemainingLength => "Remaining Length",
            Self::ProtocolName => "Protocol Name",
            Self::ProtocolLevel => "Protocol Level",
            Self::ConnectFlags => "Connect Flags",
            Self::KeepAlive => "Keep Alive",
            Self::Properties => "CONNECT properties",
            Self::WillProperties => "will properties",
            Self::Property(p) => return write!(f, "property {p}"),
            Self::ClientId => "Client Identifier",
            Self::WillTopic => "Will Topic",
            Self::WillPayload => "Will Payload",
            Self::Username => "User Name",
            Self::Password => "Password",
            Self::AcknowledgeFlags => "Connect Acknowledge Flags",
            Self::ReasonCode => "reason code",
            Self::ConnackProperties => "CONNACK properties",
        };
        f.write_str(name)
    }
}

/// Why a CONNECT was refused, or a CONNACK could not be read.
///
/// Each error maps to the MQTT 5 reason code a server answers with ([`Error::reason_code`]),
/// and [`Error::connack`] writes that answer in the client's own version. The faults of a
/// CONNACK ([`ConnackPacket::decode`](crate::ConnackPacket::decode)) share the variants that
/// mean the same in both packets (a truncated field, a property not allowed, bad UTF-8);
/// the rest are their own, and their reason code is the one a 5.0 client puts in its
/// DISCONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The first byte is not a CONNECT: the peer does not speak MQTT, or skipped CONNECT.
    #[error("first byte {byte:#04x} is not a CONNECT packet")]
    NotConnect {
        /// The byte received.
        byte: u8,
    },
    /// The low nibble of the fixed header, CONNECT's or CONNACK's, must be 0 [MQTT-2.1.3-1].
    #[error("fixed header flags are {flags:#x}, must be 0")]
    FixedHeaderFlags {
        /// The four flag bits received.
        flags: u8,
    },
    /// A Variable Byte Integer runs over 4 bytes.
    #[error("{field}: Variable Byte Integer is longer than 4 bytes")]
    VbiTooLong {
        /// Where the integer stands.
        field: Field,
    },
    /// 5.0 requires the fewest bytes for a Variable Byte Integer [MQTT-1.5.5-1].
    #[error("{field}: Variable Byte Integer is not in its shortest form")]
    VbiNotMinimal {
        /// Where the integer stands.
        field: Field,
    },
    /// The Remaining Length announces a packet over the decoder's cap.
    #[error("packet of {size} bytes is over the limit of {limit} bytes")]
    PacketTooLarge {
        /// The whole packet's size, fixed header included.
        size: u32,
        /// The cap set by [`Decoder::max_packet_size`](crate::Decoder::max_packet_size), or
        /// for a CONNACK by `codec::ConnackCodec::max_packet_size` or the Maximum Packet Size
        /// of the CONNECT that codec wrote.
        limit: u32,
    },
    /// A field runs past the end of the frame that the Remaining Length gave.
    #[error("{field}: runs past the end of the packet")]
    Truncated {
        /// The field cut short.
        field: Field,
    },
    /// Bytes are left in the frame after the last field the flags announce.
    #[error("{count} bytes left over after the last field")]
    TrailingBytes {
        /// How many bytes are left over.
        count: usize,
    },
    /// A UTF-8 string is ill-formed [MQTT-1.5.3-1 / MQTT-1.5.4-1].
    #[error("{field}: not well-formed UTF-8")]
    InvalidUtf8 {
        /// The string.
        field: Field,
    },
    /// A UTF-8 string holds U+0000 [MQTT-1.5.3-2 / MQTT-1.5.4-2].
    #[error("{field}: contains U+0000")]
    NullCharacter {
        /// The string.
        field: Field,
    },
    /// A string holds a control character, U+0001..U+001F or U+007F..U+009F, when
    /// [`Decoder::refuse_control_characters`](crate::Decoder::refuse_control_characters) is
    /// on. The standard says a sender SHOULD NOT send them and a receiver MAY close (3.1.1
    /// section 1.5.3, 5.0 section 1.5.4).
    #[error("{field}: contains a control character")]
    ControlCharacter {
        /// The string.
        field: Field,
    },
    /// The protocol name is neither `MQTT` nor `MQIsdp` [MQTT-3.1.2-1].
    #[error("Protocol Name is not MQTT or MQIsdp")]
    UnknownProtocolName,
    /// The protocol level does not pair with the name as a known version [MQTT-3.1.2-2].
    #[error("protocol level {level:#04x} is not a supported version for this protocol name")]
    UnsupportedProtocolLevel {
        /// The level byte received, bridge bit included.
        level: u8,
    },
    /// The reserved bit 0 of the Connect Flags is set [MQTT-3.1.2-3].
    #[error("Connect Flags: reserved bit is set")]
    ReservedFlag,
    /// Will QoS 3 [MQTT-3.1.2-14 / MQTT-3.1.2-12].
    #[error("Connect Flags: will QoS is 3")]
    InvalidWillQos,
    /// Will QoS or Will Retain set without the will flag [MQTT-3.1.2-13, -15 / MQTT-3.1.2-11, -13].
    #[error("Connect Flags: will QoS or retain set without the will flag")]
    WillFlagsWithoutWill,
    /// 3.x forbids a password without a user name [MQTT-3.1.2-22].
    #[error("Connect Flags: password without user name")]
    PasswordWithoutUsername,
    /// A property id that this block does not allow.
    #[error("{field}: property id {id:#04x} is not allowed here")]
    PropertyNotAllowed {
        /// The identifier received.
        id: u8,
        /// The block it stood in.
        field: Field,
    },
    /// A property other than User Property appears twice.
    #[error("property {property} appears twice")]
    DuplicateProperty {
        /// The repeated property.
        property: Property,
    },
    /// A property value out of its range, such as Receive Maximum 0.
    #[error("property {property}: value out of range")]
    InvalidPropertyValue {
        /// The property.
        property: Property,
    },
    /// Authentication Data without Authentication Method.
    #[error("Authentication Data without Authentication Method")]
    AuthenticationDataWithoutMethod,
    /// A topic name must hold at least one character [MQTT-4.7.3-1].
    #[error("{field}: topic name is empty")]
    EmptyTopic {
        /// The topic.
        field: Field,
    },
    /// A topic name must not hold `+` or `#` [MQTT-3.3.2-2].
    #[error("{field}: topic name holds a wildcard")]
    WildcardInTopic {
        /// The topic.
        field: Field,
    },
    /// An empty client id where the version requires one: 3.1, or 3.1.1 without clean
    /// session [MQTT-3.1.3-8].
    #[error("Client Identifier is empty, which this version and session do not allow")]
    EmptyClientId,
    /// A 3.1 client id over 23 characters, when
    /// [`Decoder::limit_v3_1_client_id`](crate::Decoder::limit_v3_1_client_id) is on.
    #[error("Client Identifier is over 23 characters, the limit of MQTT 3.1")]
    ClientIdTooLong,
    /// The will payload is announced as UTF-8 but is not, when
    /// [`Decoder::check_payload_format`](crate::Decoder::check_payload_format) is on.
    #[error("Will Payload: announced as UTF-8 but is not well-formed UTF-8")]
    InvalidPayloadFormat,
    /// CONNACK: the first byte is not a CONNACK.
    #[error("first byte {byte:#04x} is not a CONNACK packet")]
    NotConnack {
        /// The byte received.
        byte: u8,
    },
    /// CONNACK: a Remaining Length no CONNACK of this version has; 3.x has exactly 2, 5.0
    /// at least 3.
    #[error("Remaining Length {remaining} is not that of a CONNACK of this version")]
    ConnackRemainingLength {
        /// The Remaining Length received.
        remaining: u32,
    },
    /// CONNACK: reserved bits of the Connect Acknowledge Flags are set [MQTT-3.2.2-1]; in
    /// 3.1 the whole byte is reserved.
    #[error("Connect Acknowledge Flags {flags:#04x}: reserved bits are set")]
    ReservedAckFlags {
        /// The byte received.
        flags: u8,
    },
    /// CONNACK: Session Present with a code other than success [MQTT-3.2.2-4 / MQTT-3.2.2-6].
    #[error("Session Present is set with the non-zero code {code:#04x}")]
    SessionPresentWithError {
        /// The code received.
        code: u8,
    },
    /// CONNACK: Session Present answers a CONNECT with Clean Start (3.1.1: Clean Session)
    /// [MQTT-3.2.2-2 / 3.1.1 MQTT-3.2.2-1]; only a reader that knows the CONNECT can tell.
    #[error("Session Present answers a clean start")]
    SessionPresentAfterCleanStart,
    /// CONNACK: the server began enhanced authentication, with an AUTH packet or an
    /// Authentication Method in its CONNACK, that the 5.0 CONNECT did not ask for with an
    /// Authentication Method [MQTT-4.12.0-6]; only a reader that knows the CONNECT can tell.
    #[error("the server began an enhanced authentication the CONNECT did not ask for")]
    UnaskedAuthentication,
    /// CONNACK: a success without the Authentication Method that the 5.0 CONNECT named
    /// [MQTT-4.12.0-5]; only a reader that knows the CONNECT can tell.
    #[error("a successful CONNACK without the Authentication Method the CONNECT named")]
    AuthenticationMethodMissing,
    /// CONNACK: a reason code (5.0) or return code (3.x) that a CONNACK of this version
    /// cannot carry.
    #[error("{code:#04x} is not a CONNACK code of this version")]
    InvalidReasonCode {
        /// The code received.
        code: u8,
    },
}

impl Error {
    /// The MQTT 5 reason code a server answers with for this error; for a CONNACK's fault,
    /// the one a 5.0 client puts in its DISCONNECT (Malformed Packet or Protocol Error).
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::NotConnect { .. }
            | Self::FixedHeaderFlags { .. }
            | Self::VbiTooLong { .. }
            | Self::VbiNotMinimal { .. }
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. }
            | Self::InvalidUtf8 { .. }
            | Self::NullCharacter { .. }
            | Self::ControlCharacter { .. }
            | Self::ReservedFlag
            | Self::InvalidWillQos
            | Self::WillFlagsWithoutWill
            | Self::PasswordWithoutUsername
            | Self::PropertyNotAllowed { .. }
            | Self::NotConnack { .. }
            | Self::ConnackRemainingLength { .. }
            | Self::ReservedAckFlags { .. }
            | Self::InvalidReasonCode { .. } => ReasonCode::MalformedPacket,
            Self::DuplicateProperty { .. }
            | Self::SessionPresentWithError { .. }
            | Self::SessionPresentAfterCleanStart
            | Self::UnaskedAuthentication
            | Self::AuthenticationMethodMissing
            | Self::InvalidPropertyValue { .. }
            | Self::AuthenticationDataWithoutMethod
            | Self::EmptyTopic { .. }
            | Self::WildcardInTopic { .. } => ReasonCode::ProtocolError,
            Self::UnknownProtocolName | Self::UnsupportedProtocolLevel { .. } => {
                ReasonCode::UnsupportedProtocolVersion
            }
            Self::EmptyClientId | Self::ClientIdTooLong => ReasonCode::ClientIdentifierNotValid,
            Self::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            Self::InvalidPayloadFormat => ReasonCode::PayloadFormatInvalid,
        }
    }
}

/// A CONNACK reason code, numbered as in MQTT 5.
///
/// 3.x has fewer codes; [`Protocol::connack`](crate::Protocol::connack) translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ReasonCode {
    /// 0x00, the connection is accepted.
    Success = 0x00,
    /// 0x80, the server does not wish to say why.
    UnspecifiedError = 0x80,
    /// 0x81, the packet could not be parsed.
    MalformedPacket = 0x81,
    /// 0x82, the packet parsed but broke a rule.
    ProtocolError = 0x82,
    /// 0x83, valid, but not accepted by this server.
    ImplementationSpecificError = 0x83,
    /// 0x84, the version is not supported.
    UnsupportedProtocolVersion = 0x84,
    /// 0x85, the client id is valid UTF-8 but not allowed.
    ClientIdentifierNotValid = 0x85,
    /// 0x86, bad user name or password.
    BadUserNameOrPassword = 0x86,
    /// 0x87, not authorized.
    NotAuthorized = 0x87,
    /// 0x88, the server is not available.
    ServerUnavailable = 0x88,
    /// 0x89, the server is busy.
    ServerBusy = 0x89,
    /// 0x8A, the client is banned.
    Banned = 0x8A,
    /// 0x8C, the authentication method is not supported.
    BadAuthenticationMethod = 0x8C,
    /// 0x90, the will topic is not accepted.
    TopicNameInvalid = 0x90,
    /// 0x95, the packet is over the server's limit.
    PacketTooLarge = 0x95,
    /// 0x97, a quota is exceeded.
    QuotaExceeded = 0x97,
    /// 0x99, the will payload does not match its Payload Format Indicator.
    PayloadFormatInvalid = 0x99,
    /// 0x9A, retained wills are not supported.
    RetainNotSupported = 0x9A,
    /// 0x9B, the will QoS is not supported.
    QosNotSupported = 0x9B,
    /// 0x9C, use another server for now.
    UseAnotherServer = 0x9C,
    /// 0x9D, use another server for good.
    ServerMoved = 0x9D,
    /// 0x9F, too many connections too fast.
    ConnectionRateExceeded = 0x9F,
}

impl From<ReasonCode> for u8 {
    fn from(code: ReasonCode) -> Self {
        code as u8
    }
}

impl ReasonCode {
    /// Every code, in numeric order.
    const ALL: [Self; 22] = [
        Self::Success,
        Self::UnspecifiedError,
        Self::MalformedPacket,
        Self::ProtocolError,
        Self::ImplementationSpecificError,
        Self::UnsupportedProtocolVersion,
        Self::ClientIdentifierNotValid,
        Self::BadUserNameOrPassword,
        Self::NotAuthorized,
        Self::ServerUnavailable,
        Self::ServerBusy,
        Self::Banned,
        Self::BadAuthenticationMethod,
        Self::TopicNameInvalid,
        Self::PacketTooLarge,
        Self::QuotaExceeded,
        Self::PayloadFormatInvalid,
        Self::RetainNotSupported,
        Self::QosNotSupported,
        Self::UseAnotherServer,
        Self::ServerMoved,
        Self::ConnectionRateExceeded,
    ];

    /// The name the MQTT 5 standard gives the code (table 3-6 of section 3.2.2.2).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::UnspecifiedError => "Unspecified error",
            Self::MalformedPacket => "Malformed Packet",
            Self::ProtocolError => "Protocol Error",
            Self::ImplementationSpecificError => "Implementation specific error",
            Self::UnsupportedProtocolVersion => "Unsupported Protocol Version",
            Self::ClientIdentifierNotValid => "Client Identifier not valid",
            Self::BadUserNameOrPassword => "Bad User Name or Password",
            Self::NotAuthorized => "Not authorized",
            Self::ServerUnavailable => "Server unavailable",
            Self::ServerBusy => "Server busy",
            Self::Banned => "Banned",
            Self::BadAuthenticationMethod => "Bad authentication method",
            Self::TopicNameInvalid => "Topic Name invalid",
            Self::PacketTooLarge => "Packet too large",
            Self::QuotaExceeded => "Quota exceeded",
            Self::PayloadFormatInvalid => "Payload format invalid",
            Self::RetainNotSupported => "Retain not supported",
            Self::QosNotSupported => "QoS not supported",
            Self::UseAnotherServer => "Use another server",
            Self::ServerMoved => "Server moved",
            Self::ConnectionRateExceeded => "Connection rate exceeded",
        }
    }
}

impl fmt::Display for ReasonCode {
    /// The standard's name: `Malformed Packet`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A byte that is not one of the CONNACK reason codes [`ReasonCode`] knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{0:#04x} is not a CONNACK reason code")]
pub struct UnknownReasonCode(pub u8);

impl TryFrom<u8> for ReasonCode {
    type Error = UnknownReasonCode;

    /// ```
    /// use mqtt_connect::ReasonCode;
    ///
    /// assert_eq!(ReasonCode::try_from(0x87), Ok(ReasonCode::NotAuthorized));
    /// assert_eq!(ReasonCode::NotAuthorized.to_string(), "Not authorized");
    /// assert!(ReasonCode::try_from(0x8B).is_err());
    /// ```
    fn try_from(byte: u8) -> Result<Self, UnknownReasonCode> {
        Self::ALL.into_iter().find(|&code| code as u8 == byte).ok_or(UnknownReasonCode(byte))
    }
}
