//! A CONNECT as owned values: what a test or a fuzz target generates, then borrows as a
//! [`Connect`] to encode, and what a decoded [`Connect`] converts back to for comparison.
//!
//! With feature `arbitrary`, [`OwnedConnect`] implements `Arbitrary` with every field free, so
//! most draws break some rule and the encoder must refuse those. With feature `proptest`,
//! `valid()` generates only packets that follow the rules of their version.

use mqtt_connect::{
    Connect, ConnectProperties, PayloadFormat, Protocol, QoS, UserProperties, Will, WillProperties,
};

#[cfg(feature = "proptest")]
mod strategy;
#[cfg(feature = "proptest")]
pub use strategy::valid;

/// A [`Connect`] as owned values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OwnedConnect {
    /// [`Connect::protocol`].
    #[cfg_attr(feature = "arbitrary", arbitrary(with = draw::protocol))]
    pub protocol: Protocol,
    /// [`Connect::bridge`].
    pub bridge: bool,
    /// [`Connect::clean_start`].
    pub clean_start: bool,
    /// [`Connect::keep_alive`].
    pub keep_alive: u16,
    /// [`Connect::client_id`].
    pub client_id: String,
    /// [`Connect::will`].
    pub will: Option<OwnedWill>,
    /// [`Connect::username`].
    pub username: Option<String>,
    /// [`Connect::password`].
    pub password: Option<Vec<u8>>,
    /// [`Connect::properties`].
    pub properties: OwnedProperties,
}

/// A [`Will`] as owned values, its properties inline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OwnedWill {
    /// [`Will::qos`].
    #[cfg_attr(feature = "arbitrary", arbitrary(with = draw::qos))]
    pub qos: QoS,
    /// [`Will::retain`].
    pub retain: bool,
    /// [`Will::topic`].
    pub topic: String,
    /// [`Will::payload`].
    pub payload: Vec<u8>,
    /// [`WillProperties::will_delay_interval`].
    pub will_delay_interval: Option<u32>,
    /// [`WillProperties::payload_format`].
    #[cfg_attr(feature = "arbitrary", arbitrary(with = draw::payload_format))]
    pub payload_format: Option<PayloadFormat>,
    /// [`WillProperties::message_expiry_interval`].
    pub message_expiry_interval: Option<u32>,
    /// [`WillProperties::content_type`].
    pub content_type: Option<String>,
    /// [`WillProperties::response_topic`].
    pub response_topic: Option<String>,
    /// [`WillProperties::correlation_data`].
    pub correlation_data: Option<Vec<u8>>,
    /// [`WillProperties::user_properties`], name and value.
    pub user_properties: Vec<(String, String)>,
}

/// [`ConnectProperties`] as owned values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OwnedProperties {
    /// [`ConnectProperties::session_expiry_interval`].
    pub session_expiry_interval: Option<u32>,
    /// [`ConnectProperties::receive_maximum`].
    pub receive_maximum: Option<u16>,
    /// [`ConnectProperties::maximum_packet_size`].
    pub maximum_packet_size: Option<u32>,
    /// [`ConnectProperties::topic_alias_maximum`].
    pub topic_alias_maximum: Option<u16>,
    /// [`ConnectProperties::request_response_information`].
    pub request_response_information: Option<bool>,
    /// [`ConnectProperties::request_problem_information`].
    pub request_problem_information: Option<bool>,
    /// [`ConnectProperties::authentication_method`].
    pub authentication_method: Option<String>,
    /// [`ConnectProperties::authentication_data`].
    pub authentication_data: Option<Vec<u8>>,
    /// [`ConnectProperties::user_properties`], name and value.
    pub user_properties: Vec<(String, String)>,
}

impl OwnedConnect {
    /// Runs `f` on these values borrowed as a [`Connect`], and returns what it returns.
    pub fn with_borrowed<R>(&self, f: impl FnOnce(Connect<'_>) -> R) -> R {
        let users = pairs(&self.properties.user_properties);
        let will_users = self.will.as_ref().map(|w| pairs(&w.user_properties)).unwrap_or_default();
        f(self.borrow(&users, &will_users))
    }

    fn borrow<'a>(
        &'a self,
        users: &'a [(&'a str, &'a str)],
        will_users: &'a [(&'a str, &'a str)],
    ) -> Connect<'a> {
        let mut connect = Connect::new(self.protocol, &self.client_id);
        connect.bridge = self.bridge;
        connect.clean_start = self.clean_start;
        connect.keep_alive = self.keep_alive;
        connect.will = self.will.as_ref().map(|w| w.borrow(will_users));
        connect.username = self.username.as_deref();
        connect.password = self.password.as_deref();
        let p = &self.properties;
        let mut properties = ConnectProperties::default();
        properties.session_expiry_interval = p.session_expiry_interval;
        properties.receive_maximum = p.receive_maximum;
        properties.maximum_packet_size = p.maximum_packet_size;
        properties.topic_alias_maximum = p.topic_alias_maximum;
        properties.request_response_information = p.request_response_information;
        properties.request_problem_information = p.request_problem_information;
        properties.authentication_method = p.authentication_method.as_deref();
        properties.authentication_data = p.authentication_data.as_deref();
        properties.user_properties = UserProperties::new(users);
        connect.properties = properties;
        connect
    }
}

impl OwnedWill {
    fn borrow<'a>(&'a self, users: &'a [(&'a str, &'a str)]) -> Will<'a> {
        let mut will = Will::new(&self.topic, &self.payload);
        will.qos = self.qos;
        will.retain = self.retain;
        let mut properties = WillProperties::default();
        properties.will_delay_interval = self.will_delay_interval;
        properties.payload_format = self.payload_format;
        properties.message_expiry_interval = self.message_expiry_interval;
        properties.content_type = self.content_type.as_deref();
        properties.response_topic = self.response_topic.as_deref();
        properties.correlation_data = self.correlation_data.as_deref();
        properties.user_properties = UserProperties::new(users);
        will.properties = properties;
        will
    }
}

impl From<&Connect<'_>> for OwnedConnect {
    fn from(c: &Connect<'_>) -> Self {
        let p = &c.properties;
        Self {
            protocol: c.protocol,
            bridge: c.bridge,
            clean_start: c.clean_start,
            keep_alive: c.keep_alive,
            client_id: c.client_id.to_owned(),
            will: c.will.as_ref().map(OwnedWill::from),
            username: c.username.map(str::to_owned),
            password: c.password.map(<[u8]>::to_vec),
            properties: OwnedProperties {
                session_expiry_interval: p.session_expiry_interval,
                receive_maximum: p.receive_maximum,
                maximum_packet_size: p.maximum_packet_size,
                topic_alias_maximum: p.topic_alias_maximum,
                request_response_information: p.request_response_information,
                request_problem_information: p.request_problem_information,
                authentication_method: p.authentication_method.map(str::to_owned),
                authentication_data: p.authentication_data.map(<[u8]>::to_vec),
                user_properties: owned_pairs(&p.user_properties),
            },
        }
    }
}

impl From<&Will<'_>> for OwnedWill {
    fn from(w: &Will<'_>) -> Self {
        let p = &w.properties;
        Self {
            qos: w.qos,
            retain: w.retain,
            topic: w.topic.to_owned(),
            payload: w.payload.to_vec(),
            will_delay_interval: p.will_delay_interval,
            payload_format: p.payload_format,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.map(str::to_owned),
            response_topic: p.response_topic.map(str::to_owned),
            correlation_data: p.correlation_data.map(<[u8]>::to_vec),
            user_properties: owned_pairs(&p.user_properties),
        }
    }
}

/// Owned pairs borrowed, as [`UserProperties::new`] takes them.
fn pairs(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn owned_pairs(users: &UserProperties<'_>) -> Vec<(String, String)> {
    users.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// How `Arbitrary` draws the library's enums: through enums of this crate, derived, so that
/// the bytes a fuzz corpus holds map to the same packets as when the fuzz crate drew them.
#[cfg(feature = "arbitrary")]
mod draw {
    use arbitrary::{Arbitrary, Result, Unstructured};
    use mqtt_connect::{PayloadFormat, Protocol, QoS};

    #[derive(Arbitrary)]
    enum Version {
        V3_1,
        V3_1_1,
        V5,
    }

    #[derive(Arbitrary)]
    enum Level {
        Zero,
        One,
        Two,
    }

    pub fn protocol(u: &mut Unstructured<'_>) -> Result<Protocol> {
        Ok(match Version::arbitrary(u)? {
            Version::V3_1 => Protocol::V3_1,
            Version::V3_1_1 => Protocol::V3_1_1,
            Version::V5 => Protocol::V5,
        })
    }

    pub fn qos(u: &mut Unstructured<'_>) -> Result<QoS> {
        Ok(match Level::arbitrary(u)? {
            Level::Zero => QoS::AtMostOnce,
            Level::One => QoS::AtLeastOnce,
            Level::Two => QoS::ExactlyOnce,
        })
    }

    /// `Some(true)` is UTF-8, `Some(false)` bytes.
    pub fn payload_format(u: &mut Unstructured<'_>) -> Result<Option<PayloadFormat>> {
        Ok(Option::<bool>::arbitrary(u)?
            .map(|utf8| if utf8 { PayloadFormat::Utf8 } else { PayloadFormat::Bytes }))
    }
}
