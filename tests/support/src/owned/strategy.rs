//! A proptest strategy for valid CONNECTs.

use mqtt_connect::{PayloadFormat, Protocol, QoS};
use proptest::prelude::*;

use super::{OwnedConnect, OwnedProperties, OwnedWill};

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn topic() -> impl Strategy<Value = String> {
    "[^\u{0}+#]{1,12}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..16)
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((text(), text()), 0..4)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)]
}

fn will() -> impl Strategy<Value = OwnedWill> {
    (
        (qos(), any::<bool>(), topic(), bytes()),
        (
            any::<Option<u32>>(),
            prop::option::of(prop_oneof![Just(PayloadFormat::Bytes), Just(PayloadFormat::Utf8)]),
            any::<Option<u32>>(),
            prop::option::of(text()),
            prop::option::of(topic()),
            prop::option::of(bytes()),
            pairs(),
        ),
    )
        .prop_map(
            |(
                (qos, retain, topic, payload),
                (
                    will_delay_interval,
                    payload_format,
                    message_expiry_interval,
                    content_type,
                    response_topic,
                    correlation_data,
                    user_properties,
                ),
            )| {
                // A payload announced as UTF-8 is UTF-8, or the encoder refuses the packet
                // (5.0 3.1.3.2.3).
                let payload = match payload_format {
                    Some(PayloadFormat::Utf8) => String::from_utf8_lossy(&payload).into_owned().into_bytes(),
                    _ => payload,
                };
                OwnedWill {
                    qos,
                    retain,
                    topic,
                    payload,
                    will_delay_interval,
                    payload_format,
                    message_expiry_interval,
                    content_type,
                    response_topic,
                    correlation_data,
                    user_properties,
                }
            },
        )
}

fn properties() -> impl Strategy<Value = OwnedProperties> {
    (
        any::<Option<u32>>(),
        prop::option::of(1..=u16::MAX),
        prop::option::of(1..=u32::MAX),
        any::<Option<u16>>(),
        any::<Option<bool>>(),
        any::<Option<bool>>(),
        // Authentication Data only with a method.
        prop::option::of((text(), prop::option::of(bytes()))),
        pairs(),
    )
        .prop_map(
            |(
                session_expiry_interval,
                receive_maximum,
                maximum_packet_size,
                topic_alias_maximum,
                request_response_information,
                request_problem_information,
                auth,
                user_properties,
            )| {
                let (authentication_method, authentication_data) =
                    auth.map_or((None, None), |(m, d)| (Some(m), d));
                OwnedProperties {
                    session_expiry_interval,
                    receive_maximum,
                    maximum_packet_size,
                    topic_alias_maximum,
                    request_response_information,
                    request_problem_information,
                    authentication_method,
                    authentication_data,
                    user_properties,
                }
            },
        )
}

/// Any valid CONNECT: generated freely, then bent to the rules of its version.
pub fn valid() -> impl Strategy<Value = OwnedConnect> {
    (
        prop_oneof![Just(Protocol::V3_1), Just(Protocol::V3_1_1), Just(Protocol::V5)],
        any::<bool>(),
        any::<bool>(),
        any::<u16>(),
        text(),
        prop::option::of(will()),
        prop::option::of(text()),
        prop::option::of(bytes()),
        properties(),
    )
        .prop_map(
            |(protocol, bridge, clean_start, keep_alive, client_id, will, username, password, properties)| {
                let mut c = OwnedConnect {
                    protocol,
                    bridge,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                };
                // The bridge bit is a 3.x convention: level 0x85 is refused both ways.
                c.bridge &= protocol != Protocol::V5;
                if protocol != Protocol::V5 {
                    c.properties = OwnedProperties::default();
                    if let Some(w) = &mut c.will {
                        *w = strip(w.clone());
                    }
                    if c.password.is_some() && c.username.is_none() {
                        c.username = Some(String::new());
                    }
                    if c.client_id.is_empty() {
                        c.clean_start |= protocol == Protocol::V3_1_1;
                        if protocol == Protocol::V3_1 {
                            c.client_id.push('x');
                        }
                    }
                }
                c
            },
        )
}

/// A 3.x will: no properties.
fn strip(w: OwnedWill) -> OwnedWill {
    OwnedWill {
        will_delay_interval: None,
        payload_format: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: vec![],
        ..w
    }
}
