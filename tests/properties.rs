//! Properties over generated packets: round trips, prefixes, and arbitrary bytes.

mod common;

use common::{cat, s, v5};
use mqtt_connect::{
    Connect, ConnectProperties, Error, Field, Needed, PayloadFormat, Property, Protocol, QoS, Status,
    UserProperties, Will, WillProperties,
};
use proptest::prelude::*;

/// A `Connect` as owned values, from which a borrowed one is made.
#[derive(Debug, Clone)]
struct Owned {
    protocol: Protocol,
    bridge: bool,
    clean_start: bool,
    keep_alive: u16,
    client_id: String,
    will: Option<OwnedWill>,
    username: Option<String>,
    password: Option<Vec<u8>>,
    props: OwnedProps,
}

#[derive(Debug, Clone)]
struct OwnedWill {
    qos: QoS,
    retain: bool,
    topic: String,
    payload: Vec<u8>,
    delay: Option<u32>,
    format: Option<PayloadFormat>,
    expiry: Option<u32>,
    content_type: Option<String>,
    response_topic: Option<String>,
    correlation: Option<Vec<u8>>,
    users: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
struct OwnedProps {
    session_expiry: Option<u32>,
    receive_maximum: Option<u16>,
    maximum_packet_size: Option<u32>,
    topic_alias_maximum: Option<u16>,
    request_response: Option<bool>,
    request_problem: Option<bool>,
    auth: Option<(String, Option<Vec<u8>>)>,
    users: Vec<(String, String)>,
}

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
                (delay, format, expiry, content_type, response_topic, correlation, users),
            )| {
                OwnedWill {
                    qos,
                    retain,
                    topic,
                    payload,
                    delay,
                    format,
                    expiry,
                    content_type,
                    response_topic,
                    correlation,
                    users,
                }
            },
        )
}

fn props() -> impl Strategy<Value = OwnedProps> {
    (
        any::<Option<u32>>(),
        prop::option::of(1..=u16::MAX),
        prop::option::of(1..=u32::MAX),
        any::<Option<u16>>(),
        any::<Option<bool>>(),
        any::<Option<bool>>(),
        prop::option::of((text(), prop::option::of(bytes()))),
        pairs(),
    )
        .prop_map(
            |(
                session_expiry,
                receive_maximum,
                maximum_packet_size,
                topic_alias_maximum,
                request_response,
                request_problem,
                auth,
                users,
            )| {
                OwnedProps {
                    session_expiry,
                    receive_maximum,
                    maximum_packet_size,
                    topic_alias_maximum,
                    request_response,
                    request_problem,
                    auth,
                    users,
                }
            },
        )
}

/// Any valid CONNECT: generated freely, then bent to the rules of its version.
fn owned() -> impl Strategy<Value = Owned> {
    (
        prop_oneof![Just(Protocol::V3_1), Just(Protocol::V3_1_1), Just(Protocol::V5)],
        any::<bool>(),
        any::<bool>(),
        any::<u16>(),
        text(),
        prop::option::of(will()),
        prop::option::of(text()),
        prop::option::of(bytes()),
        props(),
    )
        .prop_map(
            |(protocol, bridge, clean_start, keep_alive, client_id, will, username, password, props)| {
                let mut c = Owned {
                    protocol,
                    bridge,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    props,
                };
                // The bridge bit is a 3.x convention: level 0x85 is refused both ways.
                c.bridge &= protocol != Protocol::V5;
                if protocol != Protocol::V5 {
                    c.props = OwnedProps::default();
                    if let Some(w) = &mut c.will {
                        *w = OwnedWill { users: vec![], ..strip(w.clone()) };
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

fn strip(w: OwnedWill) -> OwnedWill {
    OwnedWill {
        delay: None,
        format: None,
        expiry: None,
        content_type: None,
        response_topic: None,
        correlation: None,
        ..w
    }
}

fn borrowed<'a>(
    o: &'a Owned,
    users: &'a [(&'a str, &'a str)],
    will_users: &'a [(&'a str, &'a str)],
) -> Connect<'a> {
    let mut c = Connect::new(o.protocol, &o.client_id);
    c.bridge = o.bridge;
    c.clean_start = o.clean_start;
    c.keep_alive = o.keep_alive;
    c.username = o.username.as_deref();
    c.password = o.password.as_deref();
    c.will = o.will.as_ref().map(|w| {
        let mut will = Will::new(&w.topic, &w.payload);
        will.qos = w.qos;
        will.retain = w.retain;
        let mut p = WillProperties::default();
        p.will_delay_interval = w.delay;
        p.payload_format = w.format;
        p.message_expiry_interval = w.expiry;
        p.content_type = w.content_type.as_deref();
        p.response_topic = w.response_topic.as_deref();
        p.correlation_data = w.correlation.as_deref();
        p.user_properties = UserProperties::new(will_users);
        will.properties = p;
        will
    });
    let mut p = ConnectProperties::default();
    p.session_expiry_interval = o.props.session_expiry;
    p.receive_maximum = o.props.receive_maximum;
    p.maximum_packet_size = o.props.maximum_packet_size;
    p.topic_alias_maximum = o.props.topic_alias_maximum;
    p.request_response_information = o.props.request_response;
    p.request_problem_information = o.props.request_problem;
    p.authentication_method = o.props.auth.as_ref().map(|(m, _)| m.as_str());
    p.authentication_data = o.props.auth.as_ref().and_then(|(_, d)| d.as_deref());
    p.user_properties = UserProperties::new(users);
    c.properties = p;
    c
}

fn as_refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn encode(c: &Connect<'_>) -> Vec<u8> {
    let len = c.encoded_len().expect("a valid packet encodes");
    let mut buf = vec![0; len];
    assert_eq!(c.encode(&mut buf), Ok(len));
    buf
}

/// Runs `check` on a generated packet and its encoding.
fn with_packet(o: &Owned, check: impl FnOnce(&Connect<'_>, &[u8])) {
    let users = as_refs(&o.props.users);
    let will_users = o.will.as_ref().map(|w| as_refs(&w.users)).unwrap_or_default();
    let c = borrowed(o, &users, &will_users);
    let bytes = encode(&c);
    check(&c, &bytes);
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_same_connect(o in owned()) {
        with_packet(&o, |c, bytes| {
            assert_eq!(mqtt_connect::decode(bytes), Ok(Status::Complete { packet: *c, len: bytes.len() }));
        });
    }

    #[test]
    fn decode_then_encode_gives_the_same_bytes(o in owned()) {
        with_packet(&o, |_, bytes| {
            let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(bytes) else { panic!("decodes") };
            assert_eq!(encode(&packet), bytes);
        });
    }

    #[test]
    fn every_strict_prefix_is_incomplete(o in owned()) {
        with_packet(&o, |_, bytes| {
            let header = 1 + bytes[1..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
            for cut in 0..bytes.len() {
                let expected = if cut < header {
                    Needed::Unknown
                } else {
                    Needed::Size((bytes.len() - cut).try_into().unwrap())
                };
                assert_eq!(mqtt_connect::decode(&bytes[..cut]), Ok(Status::Incomplete(expected)), "cut at {cut}");
            }
        });
    }

    #[test]
    fn a_changed_byte_never_panics_and_never_overreads(o in owned(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        with_packet(&o, |_, bytes| {
            let mut bytes = bytes.to_vec();
            *at.get_mut(&mut bytes) = byte;
            if let Ok(Status::Complete { len, .. }) = mqtt_connect::decode(&bytes) {
                assert!(len <= bytes.len());
            }
        });
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = mqtt_connect::decode(&bytes);
        let _ = mqtt_connect::protocol_of(&bytes);
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(level in 3u8..=5, body in prop::collection::vec(any::<u8>(), 0..256)) {
        let name: &[u8] = if level == 3 { b"\x00\x06MQIsdp" } else { b"\x00\x04MQTT" };
        let mut rest = name.to_vec();
        rest.push(level);
        rest.extend(body);
        let mut bytes = vec![0x10];
        let mut n = rest.len();
        loop {
            let b = (n % 128) as u8;
            n /= 128;
            bytes.push(if n > 0 { b | 0x80 } else { b });
            if n == 0 { break; }
        }
        bytes.extend(rest);
        if let Err(e) = mqtt_connect::decode(&bytes) {
            let _ = e.connack(&bytes);
        }
    }
}

/// A User Property string: mostly short text, at times long, with U+0000, or not UTF-8.
fn user_string() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[a-zé€]{0,6}".prop_map(String::into_bytes),
        1 => "[a-z]{120,140}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..8),
        1 => ("[a-z]{0,4}", "[a-z]{0,4}").prop_map(|(a, b)| format!("{a}\0{b}").into_bytes()),
        // A length byte 0xC2 to 0xDF that a leading continuation byte would complete.
        1 => (0xC2..0xE0usize).prop_map(|len| [&[0xA9][..], &vec![b'v'; len - 1]].concat()),
    ]
}

proptest! {
    /// [MQTT-1.5.4-1] [MQTT-1.5.4-2] A block of User Properties decodes exactly when each of
    /// its strings is well-formed UTF-8 without U+0000, whether the block is checked whole or
    /// string by string (another property among them, or a string of 128 bytes or more).
    #[test]
    fn mqtt_1_5_4_user_properties_decode_exactly_when_every_string_is_clean(
        pairs in prop::collection::vec((user_string(), user_string()), 1..6),
        between in any::<Option<prop::sample::Index>>(),
    ) {
        let mut block = Vec::new();
        for (i, (name, value)) in pairs.iter().enumerate() {
            if between.is_some_and(|at| at.index(pairs.len()) == i) {
                block.extend([0x11, 0, 0, 0, 1]);
            }
            block.extend(cat(&[&[0x26], &s(name), &s(value)]));
        }
        let bytes = v5(0x02, &block, &s(b"c1"));
        let clean = |b: &[u8]| std::str::from_utf8(b).is_ok_and(|t| !t.contains('\0'));
        let field = Field::Property(Property::UserProperty);
        match mqtt_connect::decode(&bytes) {
            Ok(Status::Complete { packet, .. }) => {
                prop_assert!(pairs.iter().all(|(n, v)| clean(n) && clean(v)));
                let users = packet.properties.user_properties.iter();
                let decoded: Vec<_> = users.map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
                prop_assert_eq!(decoded, pairs);
            }
            Err(e) => {
                prop_assert!(!pairs.iter().all(|(n, v)| clean(n) && clean(v)));
                prop_assert!(matches!(e, Error::InvalidUtf8 { field: f } | Error::NullCharacter { field: f } if f == field), "{e:?}");
            }
            other => prop_assert!(false, "{other:?}"),
        }
    }
}
