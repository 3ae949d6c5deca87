//! The CONNECT packet and its will.

use super::{ConnectProperties, WillProperties};
use crate::spec::{Protocol, QoS};

/// A CONNECT packet. Strings and binary fields borrow from the decoded bytes.
///
/// Build one to encode with [`Connect::new`], then set its fields:
///
/// ```
/// use mqtt_connect::{Connect, Protocol, QoS, Will};
///
/// let mut connect = Connect::new(Protocol::V5, "sensor-17");
/// connect.username = Some("alice");
/// connect.password = Some(b"secret");
/// let mut will = Will::new("sensors/17/status", b"offline");
/// will.qos = QoS::AtLeastOnce;
/// connect.will = Some(will);
///
/// let mut buf = [0u8; 128];
/// let len = connect.encode(&mut buf)?;
/// assert_eq!(len, connect.encoded_len()?);
///
/// let decoded = mqtt_connect::decode(&buf[..len])?;
/// assert_eq!(decoded, mqtt_connect::Status::Complete { packet: connect, len });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Connect<'a> {
    /// The version, from the protocol name and level.
    pub protocol: Protocol,
    /// The level byte had the bridge bit (0x80) that mosquitto bridges set.
    pub bridge: bool,
    /// Clean Start in 5.0, Clean Session in 3.x.
    pub clean_start: bool,
    /// Seconds between control packets; 0 turns keep-alive off.
    pub keep_alive: u16,
    /// The Client Identifier; empty asks the server to assign one.
    pub client_id: &'a str,
    /// The will, when the will flag is set.
    pub will: Option<Will<'a>>,
    /// The User Name, when its flag is set.
    pub username: Option<&'a str>,
    /// The Password, when its flag is set: binary, never required to be UTF-8.
    pub password: Option<&'a [u8]>,
    /// The CONNECT properties; all `None` and empty for 3.x.
    pub properties: ConnectProperties<'a>,
}

impl<'a> Connect<'a> {
    /// A CONNECT with clean start, keep-alive 60 s (what common clients send), and nothing else.
    pub fn new(protocol: Protocol, client_id: &'a str) -> Self {
        Self {
            protocol,
            bridge: false,
            clean_start: true,
            keep_alive: 60,
            client_id,
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        }
    }
}

/// The will message, which the server publishes if the client goes away uncleanly.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Will<'a> {
    /// The QoS to publish it with.
    pub qos: QoS,
    /// Whether to publish it retained.
    pub retain: bool,
    /// A topic name: not empty, no wildcards.
    pub topic: &'a str,
    /// The message, raw bytes.
    pub payload: &'a [u8],
    /// The will properties; all `None` and empty for 3.x.
    pub properties: WillProperties<'a>,
}

impl<'a> Will<'a> {
    /// A will at QoS 0, not retained, with no properties.
    pub fn new(topic: &'a str, payload: &'a [u8]) -> Self {
        Self { qos: QoS::AtMostOnce, retain: false, topic, payload, properties: WillProperties::default() }
    }
}
