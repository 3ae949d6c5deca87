//! The standard's vocabulary, both directions alike: versions, QoS, the Connect Flags bits and
//! the property table. Plain data; the rules that refuse values live one layer up, in `rules`.

use core::fmt;

/// The fixed header's first byte: type 1 (CONNECT), flags 0 [MQTT-2.1.3-1].
pub(crate) const CONNECT_BYTE: u8 = 0x10;

/// The fixed header's first byte: type 2 (CONNACK), flags 0.
pub(crate) const CONNACK_BYTE: u8 = 0x20;

/// The fixed header's first byte: type 15 (AUTH, 5.0 only), flags 0.
#[cfg(feature = "tokio-util")]
pub(crate) const AUTH_BYTE: u8 = 0xF0;

/// The bridge bit mosquitto's 3.1 and 3.1.1 bridges set on the level byte.
pub(crate) const BRIDGE_BIT: u8 = 0x80;

/// An MQTT version, as the protocol name and level announce it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// MQTT 3.1: name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5.0: name `MQTT`, level 5.
    V5,
}

impl Protocol {
    /// The level byte, bridge bit excluded.
    pub const fn level(self) -> u8 {
        match self {
            Self::V3_1 => 3,
            Self::V3_1_1 => 4,
            Self::V5 => 5,
        }
    }

    /// The protocol name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Self::V3_1 => "MQIsdp",
            Self::V3_1_1 | Self::V5 => "MQTT",
        }
    }

    /// Whether this version has properties.
    pub(crate) const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }
}

impl fmt::Display for Protocol {
    /// The version number as people write it: `3.1`, `3.1.1`, `5.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V3_1 => "3.1",
            Self::V3_1_1 => "3.1.1",
            Self::V5 => "5.0",
        })
    }
}

/// A quality of service level, here the will's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum QoS {
    /// At most once: fire and forget.
    #[default]
    AtMostOnce = 0,
    /// At least once: acknowledged, may repeat.
    AtLeastOnce = 1,
    /// Exactly once: a four-way handshake.
    ExactlyOnce = 2,
}

/// What the Payload Format Indicator says of the will payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PayloadFormat {
    /// 0: unspecified bytes.
    Bytes = 0,
    /// 1: UTF-8 text.
    Utf8 = 1,
}

/// The Connect Flags byte, bit by bit, as both directions read and write it (3.1.2.3 in
/// 3.1.1, 3.1.2.3 in 5.0). Holds any byte: `rules` says which are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnectFlags(pub(crate) u8);

impl ConnectFlags {
    /// Bit 7: a User Name follows.
    pub(crate) const USER_NAME: u8 = 1 << 7;
    /// Bit 6: a Password follows.
    pub(crate) const PASSWORD: u8 = 1 << 6;
    /// Bit 5: publish the will retained.
    pub(crate) const WILL_RETAIN: u8 = 1 << 5;
    /// Bits 4 and 3: the will's QoS.
    pub(crate) const WILL_QOS_SHIFT: u8 = 3;
    /// Bit 2: a will follows.
    pub(crate) const WILL: u8 = 1 << 2;
    /// Bit 1: Clean Session (3.x), Clean Start (5.0).
    pub(crate) const CLEAN_START: u8 = 1 << 1;
    /// Bit 0: reserved, must be 0 [MQTT-3.1.2-3].
    pub(crate) const RESERVED: u8 = 1;

    const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub(crate) const fn username(self) -> bool {
        self.has(Self::USER_NAME)
    }

    pub(crate) const fn password(self) -> bool {
        self.has(Self::PASSWORD)
    }

    pub(crate) const fn will_retain(self) -> bool {
        self.has(Self::WILL_RETAIN)
    }

    /// The two will QoS bits, 0 to 3.
    pub(crate) const fn will_qos_bits(self) -> u8 {
        (self.0 >> Self::WILL_QOS_SHIFT) & 0b11
    }

    pub(crate) const fn will(self) -> bool {
        self.has(Self::WILL)
    }

    pub(crate) const fn clean_start(self) -> bool {
        self.has(Self::CLEAN_START)
    }

    pub(crate) const fn reserved(self) -> bool {
        self.has(Self::RESERVED)
    }

    /// The byte for these fields; the will's `(qos, retain)` when there is one.
    pub(crate) fn new(username: bool, password: bool, will: Option<(QoS, bool)>, clean_start: bool) -> Self {
        let bit = |yes: bool, bit: u8| if yes { bit } else { 0 };
        let will = match will {
            Some((qos, retain)) => {
                Self::WILL | ((qos as u8) << Self::WILL_QOS_SHIFT) | bit(retain, Self::WILL_RETAIN)
            }
            None => 0,
        };
        Self(
            bit(username, Self::USER_NAME)
                | bit(password, Self::PASSWORD)
                | will
                | bit(clean_start, Self::CLEAN_START),
        )
    }
}

/// A property that CONNECT, its will or CONNACK may carry, by its identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Property {
    /// 0x01, will: whether the payload is UTF-8 text.
    PayloadFormatIndicator = 0x01,
    /// 0x02, will: lifetime of the will message, in seconds.
    MessageExpiryInterval = 0x02,
    /// 0x03, will: MIME type of the payload.
    ContentType = 0x03,
    /// 0x08, will: topic for a response.
    ResponseTopic = 0x08,
    /// 0x09, will: data to match a response with its request.
    CorrelationData = 0x09,
    /// 0x11, CONNECT and CONNACK: how long the session outlives the connection, in seconds.
    SessionExpiryInterval = 0x11,
    /// 0x12, CONNACK: the client id the server assigned.
    AssignedClientIdentifier = 0x12,
    /// 0x13, CONNACK: the Keep Alive the client must use.
    ServerKeepAlive = 0x13,
    /// 0x15, CONNECT and CONNACK: name of the extended authentication method.
    AuthenticationMethod = 0x15,
    /// 0x16, CONNECT and CONNACK: data of the extended authentication method.
    AuthenticationData = 0x16,
    /// 0x17, CONNECT: whether the server may send reason strings and user properties.
    RequestProblemInformation = 0x17,
    /// 0x18, will: delay before the will is sent, in seconds.
    WillDelayInterval = 0x18,
    /// 0x19, CONNECT: whether the server may send response information.
    RequestResponseInformation = 0x19,
    /// 0x1A, CONNACK: the basis for response topics.
    ResponseInformation = 0x1A,
    /// 0x1C, CONNACK: another server to use.
    ServerReference = 0x1C,
    /// 0x1F, CONNACK: a human-readable reason.
    ReasonString = 0x1F,
    /// 0x21, CONNECT and CONNACK: how many QoS 1 and 2 publishes the sender takes at once.
    ReceiveMaximum = 0x21,
    /// 0x22, CONNECT and CONNACK: the highest topic alias the sender accepts.
    TopicAliasMaximum = 0x22,
    /// 0x24, CONNACK: the highest QoS the server supports.
    MaximumQos = 0x24,
    /// 0x25, CONNACK: whether the server supports retained messages.
    RetainAvailable = 0x25,
    /// 0x26, all three: a name and value pair; may repeat, order kept.
    UserProperty = 0x26,
    /// 0x27, CONNECT and CONNACK: the largest packet the sender accepts.
    MaximumPacketSize = 0x27,
    /// 0x28, CONNACK: whether the server supports wildcard subscriptions.
    WildcardSubscriptionAvailable = 0x28,
    /// 0x29, CONNACK: whether the server supports Subscription Identifiers.
    SubscriptionIdentifiersAvailable = 0x29,
    /// 0x2A, CONNACK: whether the server supports shared subscriptions.
    SharedSubscriptionAvailable = 0x2A,
}

/// How a property's value is written (5.0 section 2.2.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Byte,
    U16,
    U32,
    Str,
    Bin,
    Pair,
}

/// Which property block: each allows its own set. One bit each, so that the table in
/// [`Property::in_block`] gives each id the set of blocks that allow it as a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Block {
    /// The CONNECT properties (5.0 3.1.2.11).
    Connect = 1,
    /// The will properties (5.0 3.1.3.2).
    Will = 2,
    /// The CONNACK properties (5.0 3.2.2.3).
    Connack = 4,
}

impl Property {
    /// The identifier on the wire.
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The name the standard gives it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PayloadFormatIndicator => "Payload Format Indicator",
            Self::MessageExpiryInterval => "Message Expiry Interval",
            Self::ContentType => "Content Type",
            Self::ResponseTopic => "Response Topic",
            Self::CorrelationData => "Correlation Data",
            Self::SessionExpiryInterval => "Session Expiry Interval",
            Self::AssignedClientIdentifier => "Assigned Client Identifier",
            Self::ServerKeepAlive => "Server Keep Alive",
            Self::AuthenticationMethod => "Authentication Method",
            Self::AuthenticationData => "Authentication Data",
            Self::RequestProblemInformation => "Request Problem Information",
            Self::WillDelayInterval => "Will Delay Interval",
            Self::RequestResponseInformation => "Request Response Information",
            Self::ResponseInformation => "Response Information",
            Self::ServerReference => "Server Reference",
            Self::ReasonString => "Reason String",
            Self::ReceiveMaximum => "Receive Maximum",
            Self::TopicAliasMaximum => "Topic Alias Maximum",
            Self::MaximumQos => "Maximum QoS",
            Self::RetainAvailable => "Retain Available",
            Self::UserProperty => "User Property",
            Self::MaximumPacketSize => "Maximum Packet Size",
            Self::WildcardSubscriptionAvailable => "Wildcard Subscription Available",
            Self::SubscriptionIdentifiersAvailable => "Subscription Identifiers Available",
            Self::SharedSubscriptionAvailable => "Shared Subscription Available",
        }
    }

    /// The property with this id and how its value is written, if `block` allows it: the
    /// standard's table of properties (5.0 section 2.2.2.2) and which block allows which
    /// (sections 3.1.2.11, 3.1.3.2 and 3.2.2.3).
    // The kind in the same table, not a match of its own: the id's lookup gives both, where a
    // second match on the property was a second dispatch for each property read. 5.0 all
    // properties, 5,712 → 5,574 instructions a decode (benches/instructions.sh; 5,717 → 5,625
    // with one codegen unit). Left to the optimiser the table stayed a call: 6,349.
    #[inline(always)]
    pub(crate) const fn in_block(id: u8, block: Block) -> Option<(Self, Kind)> {
        const CONNECT: u8 = Block::Connect as u8;
        const WILL: u8 = Block::Will as u8;
        const CONNACK: u8 = Block::Connack as u8;
        let (property, kind, blocks) = match id {
            0x01 => (Self::PayloadFormatIndicator, Kind::Byte, WILL),
            0x02 => (Self::MessageExpiryInterval, Kind::U32, WILL),
            0x03 => (Self::ContentType, Kind::Str, WILL),
            0x08 => (Self::ResponseTopic, Kind::Str, WILL),
            0x09 => (Self::CorrelationData, Kind::Bin, WILL),
            0x11 => (Self::SessionExpiryInterval, Kind::U32, CONNECT | CONNACK),
            0x12 => (Self::AssignedClientIdentifier, Kind::Str, CONNACK),
            0x13 => (Self::ServerKeepAlive, Kind::U16, CONNACK),
            0x15 => (Self::AuthenticationMethod, Kind::Str, CONNECT | CONNACK),
            0x16 => (Self::AuthenticationData, Kind::Bin, CONNECT | CONNACK),
            0x17 => (Self::RequestProblemInformation, Kind::Byte, CONNECT),
            0x18 => (Self::WillDelayInterval, Kind::U32, WILL),
            0x19 => (Self::RequestResponseInformation, Kind::Byte, CONNECT),
            0x1A => (Self::ResponseInformation, Kind::Str, CONNACK),
            0x1C => (Self::ServerReference, Kind::Str, CONNACK),
            0x1F => (Self::ReasonString, Kind::Str, CONNACK),
            0x21 => (Self::ReceiveMaximum, Kind::U16, CONNECT | CONNACK),
            0x22 => (Self::TopicAliasMaximum, Kind::U16, CONNECT | CONNACK),
            0x24 => (Self::MaximumQos, Kind::Byte, CONNACK),
            0x25 => (Self::RetainAvailable, Kind::Byte, CONNACK),
            0x26 => (Self::UserProperty, Kind::Pair, CONNECT | WILL | CONNACK),
            0x27 => (Self::MaximumPacketSize, Kind::U32, CONNECT | CONNACK),
            0x28 => (Self::WildcardSubscriptionAvailable, Kind::Byte, CONNACK),
            0x29 => (Self::SubscriptionIdentifiersAvailable, Kind::Byte, CONNACK),
            0x2A => (Self::SharedSubscriptionAvailable, Kind::Byte, CONNACK),
            _ => return None,
        };
        if blocks & block as u8 != 0 { Some((property, kind)) } else { None }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), self.id())
    }
}
