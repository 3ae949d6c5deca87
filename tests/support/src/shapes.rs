//! The packet shapes every bench decodes, built once with the crate's encoder so that each
//! bench (ours and the peer comparison) reads identical bytes.

use mqtt_connect::{
    Connect, ConnectProperties, PayloadFormat, Protocol, QoS, UserProperties, Will, WillProperties,
};

use crate::wire::encode;

/// Ten User Properties, as a gateway tagging a device might send.
const USERS: [(&str, &str); 10] = [
    ("tenant", "acme-industries"),
    ("region", "eu-west-1"),
    ("site", "rotterdam-03"),
    ("device-class", "thermostat"),
    ("firmware", "4.2.17"),
    ("hardware", "rev-c"),
    ("owner", "facilities"),
    ("shard", "17"),
    ("trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ("priority", "normal"),
];

/// A named packet shape.
pub struct Shape {
    /// How the benches and the README name it.
    pub name: &'static str,
    /// The whole packet.
    pub bytes: Vec<u8>,
}

/// 3.1.1 with only a client id.
pub fn v311_minimal() -> Vec<u8> {
    encode(&Connect::new(Protocol::V3_1_1, "sensor-000017"))
}

/// 3.1.1 with a will, a user name and a password: about 50 bytes.
pub fn v311_will_user_password() -> Vec<u8> {
    let mut c = Connect::new(Protocol::V3_1_1, "sensor-17");
    let mut will = Will::new("status/17", b"offline");
    will.qos = QoS::AtLeastOnce;
    will.retain = true;
    c.will = Some(will);
    c.username = Some("alice");
    c.password = Some(b"s3cret!");
    encode(&c)
}

/// 5.0 with every CONNECT and will property, and 10 User Properties in each block.
pub fn v5_all_properties() -> Vec<u8> {
    let mut c = Connect::new(Protocol::V5, "sensor-000017");
    let mut p = ConnectProperties::default();
    p.session_expiry_interval = Some(3600);
    p.receive_maximum = Some(32);
    p.maximum_packet_size = Some(256 * 1024);
    p.topic_alias_maximum = Some(16);
    p.request_response_information = Some(true);
    p.request_problem_information = Some(true);
    p.authentication_method = Some("SCRAM-SHA-256");
    p.authentication_data = Some(b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL");
    p.user_properties = UserProperties::new(&USERS);
    c.properties = p;
    let mut will = Will::new("devices/sensor-000017/status", b"{\"online\":false}");
    let mut w = WillProperties::default();
    w.will_delay_interval = Some(30);
    w.payload_format = Some(PayloadFormat::Utf8);
    w.message_expiry_interval = Some(86400);
    w.content_type = Some("application/json");
    w.response_topic = Some("devices/sensor-000017/ack");
    w.correlation_data = Some(b"req-0001");
    w.user_properties = UserProperties::new(&USERS);
    will.properties = w;
    c.will = Some(will);
    c.username = Some("alice");
    c.password = Some(b"s3cret!");
    encode(&c)
}

/// 3.1.1 with a 65,535-byte user name, the longest a string can be.
pub fn v311_64k_username() -> Vec<u8> {
    let name = "u".repeat(usize::from(u16::MAX));
    let mut c = Connect::new(Protocol::V3_1_1, "sensor-17");
    c.username = Some(&name);
    encode(&c)
}

/// Every shape, in the order the README's table lists them.
pub fn all() -> Vec<Shape> {
    vec![
        Shape { name: "3.1.1 minimal", bytes: v311_minimal() },
        Shape { name: "3.1.1 will+user+password", bytes: v311_will_user_password() },
        Shape { name: "5.0 all properties", bytes: v5_all_properties() },
        Shape { name: "3.1.1 64 KiB user name", bytes: v311_64k_username() },
    ]
}
