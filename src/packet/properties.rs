//! The 5.0 property blocks of a CONNECT and of its will, as typed fields.

use super::UserProperties;
use crate::error::Error;
use crate::rules;
use crate::spec::{PayloadFormat, Property};
use crate::values::Value;

/// A property for the encoder: checked by the same rules the decoder applies.
pub(crate) type Entry<'a> = (Property, Value<'a>);

/// The properties of a 5.0 CONNECT; all `None` and empty for 3.x.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
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
    /// Takes a value the decoder checked.
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
    pub(crate) const fn check(&self) -> Result<(), Error> {
        rules::authentication_data_needs_method(
            self.authentication_method.is_some(),
            self.authentication_data.is_some(),
        )
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
#[derive(Clone, Copy, Default, PartialEq, Eq)]
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
    /// Takes a value the decoder checked.
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
