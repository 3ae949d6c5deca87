//! The CONNACK packet as values: what its decoder hands out and its encoder takes.

use super::UserProperties;
use super::properties::Entry;
use crate::error::ReasonCode;
use crate::spec::{Property, Protocol, QoS};
use crate::values::Value;

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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnackPacket<'a> {
    /// The version it is in: that of the CONNECT it answers, but for a server's refusal of a
    /// version it does not support, in its own [MQTT-3.1.2-2].
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

impl<'a> ConnackPacket<'a> {
    /// A CONNACK with no session and no properties.
    pub fn new(protocol: Protocol, reason_code: ReasonCode) -> Self {
        Self { protocol, session_present: false, reason_code, properties: ConnackProperties::default() }
    }
}

/// The properties of a 5.0 CONNACK. `Debug` shows Authentication Data by its length only.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
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
    pub user_properties: UserProperties<'a>,
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

impl<'a> ConnackProperties<'a> {
    /// Takes a value the decoder checked.
    pub(crate) fn set(&mut self, property: Property, value: Value<'a>) {
        let flag = |v: u8| Some(v == 1);
        match (property, value) {
            (Property::SessionExpiryInterval, Value::U32(v)) => self.session_expiry_interval = Some(v),
            (Property::AssignedClientIdentifier, Value::Str(v)) => self.assigned_client_identifier = Some(v),
            (Property::ServerKeepAlive, Value::U16(v)) => self.server_keep_alive = Some(v),
            (Property::AuthenticationMethod, Value::Str(v)) => self.authentication_method = Some(v),
            (Property::AuthenticationData, Value::Bin(v)) => self.authentication_data = Some(v),
            (Property::ResponseInformation, Value::Str(v)) => self.response_information = Some(v),
            (Property::ServerReference, Value::Str(v)) => self.server_reference = Some(v),
            (Property::ReasonString, Value::Str(v)) => self.reason_string = Some(v),
            (Property::ReceiveMaximum, Value::U16(v)) => self.receive_maximum = Some(v),
            (Property::TopicAliasMaximum, Value::U16(v)) => self.topic_alias_maximum = Some(v),
            (Property::MaximumQos, Value::Byte(v)) => {
                self.maximum_qos = Some(if v == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce });
            }
            (Property::RetainAvailable, Value::Byte(v)) => self.retain_available = flag(v),
            (Property::MaximumPacketSize, Value::U32(v)) => self.maximum_packet_size = Some(v),
            (Property::WildcardSubscriptionAvailable, Value::Byte(v)) => {
                self.wildcard_subscription_available = flag(v);
            }
            (Property::SubscriptionIdentifiersAvailable, Value::Byte(v)) => {
                self.subscription_identifiers_available = flag(v);
            }
            (Property::SharedSubscriptionAvailable, Value::Byte(v)) => {
                self.shared_subscription_available = flag(v)
            }
            _ => {}
        }
    }

    /// Every property set but User Property, in id order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry<'a>> {
        let flag = |v: Option<bool>| v.map(|b| Value::Byte(b.into()));
        [
            (Property::SessionExpiryInterval, self.session_expiry_interval.map(Value::U32)),
            (Property::AssignedClientIdentifier, self.assigned_client_identifier.map(Value::Str)),
            (Property::ServerKeepAlive, self.server_keep_alive.map(Value::U16)),
            (Property::AuthenticationMethod, self.authentication_method.map(Value::Str)),
            (Property::AuthenticationData, self.authentication_data.map(Value::Bin)),
            (Property::ResponseInformation, self.response_information.map(Value::Str)),
            (Property::ServerReference, self.server_reference.map(Value::Str)),
            (Property::ReasonString, self.reason_string.map(Value::Str)),
            (Property::ReceiveMaximum, self.receive_maximum.map(Value::U16)),
            (Property::TopicAliasMaximum, self.topic_alias_maximum.map(Value::U16)),
            // QoS 2 is out of range, as on the wire: the encoder's rules refuse it.
            (Property::MaximumQos, self.maximum_qos.map(|q| Value::Byte(q as u8))),
            (Property::RetainAvailable, flag(self.retain_available)),
            (Property::MaximumPacketSize, self.maximum_packet_size.map(Value::U32)),
            (Property::WildcardSubscriptionAvailable, flag(self.wildcard_subscription_available)),
            (Property::SubscriptionIdentifiersAvailable, flag(self.subscription_identifiers_available)),
            (Property::SharedSubscriptionAvailable, flag(self.shared_subscription_available)),
        ]
        .into_iter()
        .filter_map(|(property, value)| Some((property, value?)))
    }

    /// The numbers and flags alone, everything that borrows from the packet left empty: what
    /// an owned CONNACK keeps as it is, the rest as spans of its frame. Every field is named,
    /// so a new property does not go unnoticed here.
    #[cfg(feature = "bytes")]
    pub(crate) fn numbers(&self) -> ConnackProperties<'static> {
        ConnackProperties {
            session_expiry_interval: self.session_expiry_interval,
            receive_maximum: self.receive_maximum,
            maximum_qos: self.maximum_qos,
            retain_available: self.retain_available,
            maximum_packet_size: self.maximum_packet_size,
            assigned_client_identifier: None,
            topic_alias_maximum: self.topic_alias_maximum,
            reason_string: None,
            user_properties: UserProperties::default(),
            wildcard_subscription_available: self.wildcard_subscription_available,
            subscription_identifiers_available: self.subscription_identifiers_available,
            shared_subscription_available: self.shared_subscription_available,
            server_keep_alive: self.server_keep_alive,
            response_information: None,
            server_reference: None,
            authentication_method: None,
            authentication_data: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
