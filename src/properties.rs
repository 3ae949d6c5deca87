//! MQTT 5 properties: the one table of ids, types and blocks, shared by decoder and encoder.

use core::fmt;

use crate::encode::{self, EncodeError, Writer};
use crate::error::{Error, Field};
use crate::user_properties::{UserProperties, UserPropertiesBuilder};
use crate::{PayloadFormat, Res, numbers, strings, varint};

/// A property that CONNECT or its will may carry, by its identifier.
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
    /// 0x11, CONNECT: how long the session outlives the connection, in seconds.
    SessionExpiryInterval = 0x11,
    /// 0x15, CONNECT: name of the extended authentication method.
    AuthenticationMethod = 0x15,
    /// 0x16, CONNECT: data of the extended authentication method.
    AuthenticationData = 0x16,
    /// 0x17, CONNECT: whether the server may send reason strings and user properties.
    RequestProblemInformation = 0x17,
    /// 0x18, will: delay before the will is sent, in seconds.
    WillDelayInterval = 0x18,
    /// 0x19, CONNECT: whether the server may send response information.
    RequestResponseInformation = 0x19,
    /// 0x21, CONNECT: how many QoS 1 and 2 publishes the client takes at once.
    ReceiveMaximum = 0x21,
    /// 0x22, CONNECT: the highest topic alias the client accepts.
    TopicAliasMaximum = 0x22,
    /// 0x26, both: a name and value pair; may repeat, order kept.
    UserProperty = 0x26,
    /// 0x27, CONNECT: the largest packet the client accepts.
    MaximumPacketSize = 0x27,
}

/// How a property's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Byte,
    U16,
    U32,
    Str,
    Bin,
    Pair,
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
            Self::AuthenticationMethod => "Authentication Method",
            Self::AuthenticationData => "Authentication Data",
            Self::RequestProblemInformation => "Request Problem Information",
            Self::WillDelayInterval => "Will Delay Interval",
            Self::RequestResponseInformation => "Request Response Information",
            Self::ReceiveMaximum => "Receive Maximum",
            Self::TopicAliasMaximum => "Topic Alias Maximum",
            Self::UserProperty => "User Property",
            Self::MaximumPacketSize => "Maximum Packet Size",
        }
    }

    const fn kind(self) -> Kind {
        match self {
            Self::PayloadFormatIndicator
            | Self::RequestProblemInformation
            | Self::RequestResponseInformation => Kind::Byte,
            Self::ReceiveMaximum | Self::TopicAliasMaximum => Kind::U16,
            Self::MessageExpiryInterval
            | Self::SessionExpiryInterval
            | Self::WillDelayInterval
            | Self::MaximumPacketSize => Kind::U32,
            Self::ContentType | Self::ResponseTopic | Self::AuthenticationMethod => Kind::Str,
            Self::CorrelationData | Self::AuthenticationData => Kind::Bin,
            Self::UserProperty => Kind::Pair,
        }
    }

    /// The property with this id, in whichever block.
    pub(crate) const fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0x01 => Self::PayloadFormatIndicator,
            0x02 => Self::MessageExpiryInterval,
            0x03 => Self::ContentType,
            0x08 => Self::ResponseTopic,
            0x09 => Self::CorrelationData,
            0x11 => Self::SessionExpiryInterval,
            0x15 => Self::AuthenticationMethod,
            0x16 => Self::AuthenticationData,
            0x17 => Self::RequestProblemInformation,
            0x18 => Self::WillDelayInterval,
            0x19 => Self::RequestResponseInformation,
            0x21 => Self::ReceiveMaximum,
            0x22 => Self::TopicAliasMaximum,
            0x26 => Self::UserProperty,
            0x27 => Self::MaximumPacketSize,
            _ => return None,
        })
    }

    /// The property with this id, if `block` allows it.
    const fn in_block(id: u8, block: Block) -> Option<Self> {
        let Some(property) = Self::from_id(id) else {
            return None;
        };
        if matches!(property, Self::UserProperty) {
            return Some(property);
        }
        let in_will = matches!(
            property,
            Self::PayloadFormatIndicator
                | Self::MessageExpiryInterval
                | Self::ContentType
                | Self::ResponseTopic
                | Self::CorrelationData
                | Self::WillDelayInterval
        );
        if in_will == matches!(block, Block::Will) { Some(property) } else { None }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), self.id())
    }
}

/// Which property block is being read: each allows its own set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Block {
    Connect,
    Will,
}

impl Block {
    const fn field(self) -> Field {
        match self {
            Self::Connect => Field::Properties,
            Self::Will => Field::WillProperties,
        }
    }
}

/// One property value as it stands on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Byte(u8),
    U16(u16),
    U32(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

impl<'a> Value<'a> {
    /// Reads the value of `property` from the front of `input`.
    #[inline(always)]
    pub(crate) fn read(input: &'a [u8], property: Property) -> Res<'a, Self> {
        let field = Field::Property(property);
        Ok(match property.kind() {
            Kind::Byte => {
                let (rest, v) = numbers::u8(input, field)?;
                (rest, Self::Byte(v))
            }
            Kind::U16 => {
                let (rest, v) = numbers::u16(input, field)?;
                (rest, Self::U16(v))
            }
            Kind::U32 => {
                let (rest, v) = numbers::u32(input, field)?;
                (rest, Self::U32(v))
            }
            Kind::Str => {
                let (rest, v) = strings::utf8(input, field)?;
                (rest, Self::Str(v))
            }
            Kind::Bin => {
                let (rest, v) = strings::binary(input, field)?;
                (rest, Self::Bin(v))
            }
            Kind::Pair => {
                let (rest, (name, value)) = strings::two(input, field, field)?;
                (rest, Self::Pair(name, value))
            }
        })
    }

    /// The value's rules beyond its type; the one place each range rule lives.
    fn check(self, property: Property) -> Result<(), Error> {
        let invalid = Error::InvalidPropertyValue { property };
        match (property, self) {
            (Property::ReceiveMaximum, Self::U16(0)) | (Property::MaximumPacketSize, Self::U32(0)) => {
                Err(invalid)
            }
            (
                Property::RequestResponseInformation
                | Property::RequestProblemInformation
                | Property::PayloadFormatIndicator,
                Self::Byte(2..),
            ) => Err(invalid),
            (Property::ResponseTopic, Self::Str(topic)) => {
                strings::check_topic(topic, Field::Property(property))
            }
            _ => Ok(()),
        }
    }

    /// Bytes taken on the wire, id excluded.
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

/// Reads a property block of a complete 5.0 frame, handing each property but User Property
/// to `set` once checked, and keeping User Properties as validated bytes.
pub(crate) fn parse_block<'a>(
    input: &'a [u8],
    block: Block,
    mut set: impl FnMut(Property, Value<'a>),
) -> Res<'a, UserProperties<'a>> {
    let field = block.field();
    let (rest, len) = varint::parse_v5(input, field)?;
    let len = usize::try_from(len).map_err(|_| Error::Truncated { field })?;
    let (rest, all) = numbers::take(rest, len, field)?;
    let mut seen = 0u64;
    let mut users = UserPropertiesBuilder::new(all);
    let mut props = all;
    while let [id, tail @ ..] = props {
        let property = Property::in_block(*id, block).ok_or(Error::PropertyNotAllowed { id: *id, field })?;
        if property == Property::UserProperty {
            // Framed here; `finish` validates all their strings together.
            let field = Field::Property(property);
            let (after, name) = strings::binary(tail, field)?;
            let (after, value) = strings::binary(after, field)?;
            users.push(props, after, [name.len(), value.len()]);
            props = after;
            continue;
        }
        let (tail, value) = Value::read(tail, property)?;
        // Every allowed id is below 64, so one bit each.
        let bit = 1u64 << (id & 63);
        if seen & bit != 0 {
            return Err(Error::DuplicateProperty { property });
        }
        seen |= bit;
        value.check(property)?;
        set(property, value);
        props = tail;
    }
    Ok((rest, users.finish()?))
}

/// A property for the encoder: checked by the same rules the decoder applies.
pub(crate) type Entry<'a> = (Property, Value<'a>);

/// Bytes a block of `entries` and `users` takes after its length prefix, once every value
/// passed the rules the decoder applies.
pub(crate) fn block_len<'a>(
    entries: impl Iterator<Item = Entry<'a>>,
    users: &UserProperties<'a>,
) -> Result<usize, EncodeError> {
    let users = users.iter().map(|(name, value)| (Property::UserProperty, Value::Pair(name, value)));
    let mut len = 0usize;
    for (property, value) in entries.chain(users) {
        let field = Field::Property(property);
        value.check(property)?;
        match value {
            Value::Str(s) => _ = encode::check_str(s, field)?,
            Value::Bin(b) => _ = encode::check_bin(b, field)?,
            Value::Pair(k, v) => {
                encode::check_str(k, field)?;
                encode::check_str(v, field)?;
            }
            Value::Byte(_) | Value::U16(_) | Value::U32(_) => {}
        }
        len = len.saturating_add(1 + value.len());
    }
    Ok(len)
}

/// Writes a block checked by [`block_len`], length prefix included.
pub(crate) fn write_block<'a>(
    w: &mut Writer<'_>,
    len: usize,
    entries: impl Iterator<Item = Entry<'a>>,
    users: &UserProperties<'a>,
) {
    varint::write(w, len as u32);
    for (property, value) in entries {
        w.u8(property.id());
        write_value(w, value);
    }
    for (name, value) in users.iter() {
        w.u8(Property::UserProperty.id());
        write_value(w, Value::Pair(name, value));
    }
}

fn write_value(w: &mut Writer<'_>, value: Value<'_>) {
    match value {
        Value::Byte(v) => w.u8(v),
        Value::U16(v) => w.u16(v),
        Value::U32(v) => w.u32(v),
        Value::Str(s) => w.binary(s.as_bytes()),
        Value::Bin(b) => w.binary(b),
        Value::Pair(k, v) => {
            w.binary(k.as_bytes());
            w.binary(v.as_bytes());
        }
    }
}

/// The properties of a 5.0 CONNECT; all `None` and empty for 3.x.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectProperties<'a> {
    /// Seconds the session outlives the connection; absent means 0.
    pub session_expiry_interval: Option<u32>,
    /// QoS 1 and 2 publishes the client takes at once; never 0.
    pub receive_maximum: Option<u16>,
    /// The largest packet the client accepts; never 0.
    pub maximum_packet_size: Option<u32>,
    /// The highest topic alias the client accepts.
    pub topic_alias_maximum: Option<u16>,
    /// Whether the server may send Response Information.
    pub request_response_information: Option<bool>,
    /// Whether the server may send reason strings and user properties on failures.
    pub request_problem_information: Option<bool>,
    /// The extended authentication method.
    pub authentication_method: Option<&'a str>,
    /// Its data; only with a method.
    pub authentication_data: Option<&'a [u8]>,
    /// User Properties, in wire order.
    pub user_properties: UserProperties<'a>,
}

impl<'a> ConnectProperties<'a> {
    /// Takes a value that [`parse_block`] checked.
    pub(crate) fn set(&mut self, property: Property, value: Value<'a>) {
        match (property, value) {
            (Property::SessionExpiryInterval, Value::U32(v)) => self.session_expiry_interval = Some(v),
            (Property::ReceiveMaximum, Value::U16(v)) => self.receive_maximum = Some(v),
            (Property::MaximumPacketSize, Value::U32(v)) => self.maximum_packet_size = Some(v),
            (Property::TopicAliasMaximum, Value::U16(v)) => self.topic_alias_maximum = Some(v),
            (Property::RequestResponseInformation, Value::Byte(v)) => {
                self.request_response_information = Some(v == 1);
            }
            (Property::RequestProblemInformation, Value::Byte(v)) => {
                self.request_problem_information = Some(v == 1);
            }
            (Property::AuthenticationMethod, Value::Str(v)) => self.authentication_method = Some(v),
            (Property::AuthenticationData, Value::Bin(v)) => self.authentication_data = Some(v),
            _ => {}
        }
    }

    /// Rules that span properties, checked once the block is read.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(Error::AuthenticationDataWithoutMethod);
        }
        Ok(())
    }

    /// Every property set but User Property, in the encoder's order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry<'a>> {
        [
            self.session_expiry_interval.map(|v| (Property::SessionExpiryInterval, Value::U32(v))),
            self.receive_maximum.map(|v| (Property::ReceiveMaximum, Value::U16(v))),
            self.maximum_packet_size.map(|v| (Property::MaximumPacketSize, Value::U32(v))),
            self.topic_alias_maximum.map(|v| (Property::TopicAliasMaximum, Value::U16(v))),
            self.request_response_information
                .map(|v| (Property::RequestResponseInformation, Value::Byte(v.into()))),
            self.request_problem_information
                .map(|v| (Property::RequestProblemInformation, Value::Byte(v.into()))),
            self.authentication_method.map(|v| (Property::AuthenticationMethod, Value::Str(v))),
            self.authentication_data.map(|v| (Property::AuthenticationData, Value::Bin(v))),
        ]
        .into_iter()
        .flatten()
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The properties of a 5.0 will; all `None` and empty for 3.x.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WillProperties<'a> {
    /// Seconds the server waits before it publishes the will.
    pub will_delay_interval: Option<u32>,
    /// Whether the payload is announced as UTF-8 text.
    pub payload_format: Option<PayloadFormat>,
    /// Lifetime of the will message, in seconds.
    pub message_expiry_interval: Option<u32>,
    /// MIME type of the payload.
    pub content_type: Option<&'a str>,
    /// Topic for a response; a topic name, without wildcards.
    pub response_topic: Option<&'a str>,
    /// Data to match a response with its request.
    pub correlation_data: Option<&'a [u8]>,
    /// User Properties, in wire order.
    pub user_properties: UserProperties<'a>,
}

impl<'a> WillProperties<'a> {
    /// Takes a value that [`parse_block`] checked.
    pub(crate) fn set(&mut self, property: Property, value: Value<'a>) {
        match (property, value) {
            (Property::WillDelayInterval, Value::U32(v)) => self.will_delay_interval = Some(v),
            (Property::PayloadFormatIndicator, Value::Byte(v)) => {
                self.payload_format = Some(if v == 1 { PayloadFormat::Utf8 } else { PayloadFormat::Bytes });
            }
            (Property::MessageExpiryInterval, Value::U32(v)) => self.message_expiry_interval = Some(v),
            (Property::ContentType, Value::Str(v)) => self.content_type = Some(v),
            (Property::ResponseTopic, Value::Str(v)) => self.response_topic = Some(v),
            (Property::CorrelationData, Value::Bin(v)) => self.correlation_data = Some(v),
            _ => {}
        }
    }

    /// Every property set but User Property, in the encoder's order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry<'a>> {
        [
            self.will_delay_interval.map(|v| (Property::WillDelayInterval, Value::U32(v))),
            self.payload_format.map(|v| (Property::PayloadFormatIndicator, Value::Byte(v as u8))),
            self.message_expiry_interval.map(|v| (Property::MessageExpiryInterval, Value::U32(v))),
            self.content_type.map(|v| (Property::ContentType, Value::Str(v))),
            self.response_topic.map(|v| (Property::ResponseTopic, Value::Str(v))),
            self.correlation_data.map(|v| (Property::CorrelationData, Value::Bin(v))),
        ]
        .into_iter()
        .flatten()
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
