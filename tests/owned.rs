//! `OwnedConnect`: split off a `BytesMut`, validated once, every field read as text, as bytes,
//! and as a zero-copy `Bytes` view of the frame.
#![cfg(feature = "bytes")]

use bytes::{Bytes, BytesMut};
use mqtt_connect::{
    Connect, ConnectProperties, Decoder, Error, Needed, OwnedConnect, PayloadFormat, Protocol, QoS, Status,
    UserProperties, Will, WillProperties,
};

const USERS: [(&str, &str); 2] = [("tenant", "acme"), ("region", "eu")];
const WILL_USERS: [(&str, &str); 1] = [("k", "v")];

/// A 5.0 CONNECT with every field and property set.
fn full() -> Vec<u8> {
    let mut connect = Connect::new(Protocol::V5, "sensor-17");
    connect.keep_alive = 30;
    connect.username = Some("alice");
    connect.password = Some(b"secret");
    let mut p = ConnectProperties::default();
    p.session_expiry_interval = Some(3600);
    p.receive_maximum = Some(10);
    p.maximum_packet_size = Some(4096);
    p.topic_alias_maximum = Some(5);
    p.request_response_information = Some(true);
    p.request_problem_information = Some(false);
    p.authentication_method = Some("SCRAM-SHA-1");
    p.authentication_data = Some(b"\x00\x01");
    p.user_properties = UserProperties::new(&USERS);
    connect.properties = p;
    let mut will = Will::new("sensors/17/status", b"offline");
    will.qos = QoS::AtLeastOnce;
    will.retain = true;
    let mut wp = WillProperties::default();
    wp.will_delay_interval = Some(5);
    wp.payload_format = Some(PayloadFormat::Utf8);
    wp.message_expiry_interval = Some(60);
    wp.content_type = Some("text/plain");
    wp.response_topic = Some("replies/17");
    wp.correlation_data = Some(b"id-1");
    wp.user_properties = UserProperties::new(&WILL_USERS);
    will.properties = wp;
    connect.will = Some(will);
    let mut buf = vec![0; connect.encoded_len().unwrap()];
    connect.encode(&mut buf).unwrap();
    buf
}

fn split(bytes: &[u8]) -> (OwnedConnect, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    match OwnedConnect::split_from(&Decoder::new(), &mut buf) {
        Ok(Status::Complete { packet, len }) => {
            assert_eq!(len, packet.frame().len());
            (packet, buf)
        }
        other => panic!("not a whole packet: {other:?}"),
    }
}

/// `part` is a view of `frame`'s memory, not a copy.
fn assert_inside(frame: &Bytes, part: &Bytes, what: &str) {
    let range = frame.as_ptr_range();
    let (start, end) = (part.as_ptr(), part.as_ptr().wrapping_add(part.len()));
    assert!(range.start <= start && end <= range.end, "{what} is not inside the frame");
}

#[test]
fn every_field_reads_as_the_borrowed_decode_does() {
    let bytes = full();
    let (owned, rest) = split(&bytes);
    assert!(rest.is_empty());
    let Ok(Status::Complete { packet: c, .. }) = mqtt_connect::decode(&bytes) else { panic!() };
    assert_eq!(owned.connect(), c);
    assert_eq!(owned.frame(), &bytes[..]);
    assert_eq!(
        (owned.protocol(), owned.bridge(), owned.clean_start()),
        (c.protocol, c.bridge, c.clean_start)
    );
    assert_eq!(owned.keep_alive(), 30);
    assert_eq!(owned.client_id(), "sensor-17");
    assert_eq!(owned.username(), Some("alice"));
    assert_eq!(owned.password(), Some(&b"secret"[..]));
    assert_eq!(owned.session_expiry_interval(), Some(3600));
    assert_eq!(owned.receive_maximum(), Some(10));
    assert_eq!(owned.maximum_packet_size(), Some(4096));
    assert_eq!(owned.topic_alias_maximum(), Some(5));
    assert_eq!(owned.request_response_information(), Some(true));
    assert_eq!(owned.request_problem_information(), Some(false));
    assert_eq!(owned.authentication_method(), Some("SCRAM-SHA-1"));
    assert_eq!(owned.authentication_data(), Some(&b"\x00\x01"[..]));
    assert_eq!(owned.user_properties().collect::<Vec<_>>(), USERS);
    assert_eq!(owned.user_property("region"), Some("eu"));
    assert_eq!(owned.user_property("missing"), None);
    let will = owned.will().unwrap();
    assert_eq!((will.qos(), will.retain()), (QoS::AtLeastOnce, true));
    assert_eq!(will.topic(), "sensors/17/status");
    assert_eq!(will.payload(), b"offline");
    assert_eq!(will.will_delay_interval(), Some(5));
    assert_eq!(will.payload_format(), Some(PayloadFormat::Utf8));
    assert_eq!(will.message_expiry_interval(), Some(60));
    assert_eq!(will.content_type(), Some("text/plain"));
    assert_eq!(will.response_topic(), Some("replies/17"));
    assert_eq!(will.correlation_data(), Some(&b"id-1"[..]));
    assert_eq!(will.user_properties().collect::<Vec<_>>(), WILL_USERS);
}

#[test]
fn bytes_accessors_are_views_of_the_frame_with_the_same_contents() {
    let (owned, _) = split(&full());
    let frame = owned.frame();
    let will = owned.will().unwrap();
    let mut parts = vec![
        ("client id", owned.client_id_bytes(), owned.client_id().as_bytes().to_vec()),
        ("username", owned.username_bytes().unwrap(), b"alice".to_vec()),
        ("password", owned.password_bytes().unwrap(), b"secret".to_vec()),
        ("auth method", owned.authentication_method_bytes().unwrap(), b"SCRAM-SHA-1".to_vec()),
        ("auth data", owned.authentication_data_bytes().unwrap(), b"\x00\x01".to_vec()),
        ("will topic", will.topic_bytes(), b"sensors/17/status".to_vec()),
        ("will payload", will.payload_bytes(), b"offline".to_vec()),
        ("content type", will.content_type_bytes().unwrap(), b"text/plain".to_vec()),
        ("response topic", will.response_topic_bytes().unwrap(), b"replies/17".to_vec()),
        ("correlation", will.correlation_data_bytes().unwrap(), b"id-1".to_vec()),
    ];
    for ((name, value), (n, v)) in owned.user_properties_bytes().zip(USERS) {
        parts.push(("user property name", name, n.as_bytes().to_vec()));
        parts.push(("user property value", value, v.as_bytes().to_vec()));
    }
    for ((name, value), (n, v)) in will.user_properties_bytes().zip(WILL_USERS) {
        parts.push(("will user property name", name, n.as_bytes().to_vec()));
        parts.push(("will user property value", value, v.as_bytes().to_vec()));
    }
    assert_eq!(parts.len(), 16);
    for (what, part, expected) in &parts {
        assert_eq!(&part[..], &expected[..], "{what}");
        assert_inside(frame, part, what);
    }
    // The `&str` accessors read the frame too.
    let range = frame.as_ptr_range();
    assert!(range.contains(&owned.client_id().as_ptr()));
    assert!(range.contains(&will.topic().as_ptr()));
}

#[test]
fn the_frame_is_the_read_buffer_split_not_copied() {
    let bytes = full();
    let mut buf = BytesMut::with_capacity(bytes.len() + 4);
    buf.extend_from_slice(&bytes);
    buf.extend_from_slice(b"\xc0\x00"); // a PINGREQ pipelined behind it
    let start = buf.as_ptr();
    let Ok(Status::Complete { packet, len }) = OwnedConnect::split_from(&Decoder::new(), &mut buf) else {
        panic!()
    };
    assert_eq!(packet.frame().as_ptr(), start);
    assert_eq!(len, bytes.len());
    assert_eq!(&buf[..], b"\xc0\x00");
}

#[test]
fn incomplete_and_errors_leave_the_buffer_as_it_was() {
    let bytes = full();
    let decoder = Decoder::new();
    for cut in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..cut]);
        match OwnedConnect::split_from(&decoder, &mut buf) {
            Ok(Status::Incomplete(needed)) => {
                if let Needed::Size(n) = needed {
                    assert_eq!(cut + n.get(), bytes.len());
                }
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
        assert_eq!(&buf[..], &bytes[..cut]);
    }
    // A 5.0 CONNECT with the reserved flag set: the answer is in the client's version.
    let bad = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00";
    let mut buf = BytesMut::from(&bad[..]);
    let err = OwnedConnect::split_from(&decoder, &mut buf).unwrap_err();
    assert_eq!(err, Error::ReservedFlag);
    assert_eq!(&buf[..], bad);
    assert_eq!(err.connack(&buf).unwrap().as_bytes(), [0x20, 0x03, 0x00, 0x81, 0x00]);
}

#[test]
fn the_decoders_options_apply() {
    let bytes = full();
    let small = Decoder::new().max_packet_size(16);
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(matches!(OwnedConnect::split_from(&small, &mut buf), Err(Error::PacketTooLarge { .. })));
    let frozen = Bytes::from(bytes.clone());
    assert!(matches!(OwnedConnect::decode(&small, &frozen), Err(Error::PacketTooLarge { .. })));
}

#[test]
fn decode_from_bytes_keeps_a_view_of_the_input() {
    let mut bytes = full();
    let len = bytes.len();
    bytes.extend_from_slice(b"tail");
    let input = Bytes::from(bytes);
    let Ok(Status::Complete { packet, len: got }) = OwnedConnect::decode(&Decoder::new(), &input) else {
        panic!()
    };
    assert_eq!(got, len);
    assert_eq!(packet.frame().as_ptr(), input.as_ptr());
    assert_eq!(packet.frame().len(), len);
}

#[test]
fn a_3_1_1_connect_has_no_properties() {
    let (owned, _) = split(b"\x10\x18\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x03bob\x00\x03pwd");
    assert_eq!(owned.protocol(), Protocol::V3_1_1);
    assert_eq!(
        (owned.client_id(), owned.username(), owned.password()),
        ("c1", Some("bob"), Some(&b"pwd"[..]))
    );
    assert!(owned.will().is_none());
    assert_eq!(owned.user_properties().len(), 0);
    assert_eq!(owned.session_expiry_interval(), None);
}

#[test]
fn owned_is_static_send_sync_and_clones_share_the_frame() {
    fn assert_traits<T: Send + Sync + Clone + Eq + std::hash::Hash + std::fmt::Debug + 'static>() {}
    assert_traits::<OwnedConnect>();
    assert_traits::<mqtt_connect::OwnedConnack>();
    let (owned, _) = split(&full());
    let copy = owned.clone();
    assert_eq!(copy.frame().as_ptr(), owned.frame().as_ptr());
    assert_eq!(copy, owned);
    // Moves to another thread and outlives the buffer it came from.
    let id = std::thread::spawn(move || copy.client_id().to_owned()).join().unwrap();
    assert_eq!(id, "sensor-17");
}

/// Wills compare as the borrowed `Will`s they read as: equal in two copies of a CONNECT,
/// unequal when a field differs, whatever else the CONNECTs hold.
#[test]
fn wills_compare_by_what_they_hold() {
    fn assert_traits<T: Copy + Eq + std::fmt::Debug + Send + Sync>() {}
    assert_traits::<mqtt_connect::OwnedWill<'static>>();
    let bytes = full();
    let (a, _) = split(&bytes);
    let (b, _) = split(&bytes);
    assert_eq!(a.will(), b.will());

    let with_will = |client_id, qos| {
        let mut connect = Connect::new(Protocol::V5, client_id);
        let mut will = Will::new("t", b"p");
        will.qos = qos;
        connect.will = Some(will);
        let mut buf = vec![0; connect.encoded_len().unwrap()];
        connect.encode(&mut buf).unwrap();
        split(&buf).0
    };
    let (one, other) = (with_will("one", QoS::AtMostOnce), with_will("other", QoS::AtMostOnce));
    assert_eq!(one.will(), other.will(), "the same will in another client's CONNECT");
    let qos1 = with_will("one", QoS::AtLeastOnce);
    assert_ne!(one.will(), qos1.will());
    assert_ne!(a.will(), one.will());
}

/// A 3.1.1 CONNECT from a bridge (level byte 0x84): the bit read, the frame handed out whole.
#[test]
fn a_bridges_connect_keeps_its_bit_and_gives_up_its_frame() {
    let bytes = b"\x10\x0e\x00\x04MQTT\x84\x02\x00\x3c\x00\x02b1";
    let (owned, _) = split(bytes);
    assert!(owned.bridge());
    assert_eq!(owned.into_frame(), &bytes[..]);
}

/// A 5.0 CONNECT without properties reads each as absent, not as a default value.
#[test]
fn a_5_0_connect_without_properties_reads_each_as_none() {
    let mut buf = vec![0; Connect::new(Protocol::V5, "c1").encoded_len().unwrap()];
    Connect::new(Protocol::V5, "c1").encode(&mut buf).unwrap();
    let (owned, _) = split(&buf);
    assert_eq!(owned.request_response_information(), None);
    assert_eq!(owned.request_problem_information(), None);
}

/// Equality and hashing follow the frame: two copies of one CONNECT are one key in a map, two
/// CONNECTs that differ are two.
#[test]
fn connects_compare_and_hash_by_their_frames() {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = |c: &OwnedConnect| BuildHasherDefault::<DefaultHasher>::default().hash_one(c);
    let bytes = full();
    let (a, b) = (split(&bytes).0, split(&bytes).0);
    assert_eq!((&a, hash(&a)), (&b, hash(&b)));
    let (other, _) = split(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1");
    assert_ne!(a, other);
    assert_ne!(hash(&a), hash(&other));
}

/// `Debug` shows the frame's length and the packet, its password redacted.
#[test]
fn a_connect_debugs_as_its_length_and_packet() {
    let (owned, _) = split(&full());
    let shown = format!("{owned:?}");
    assert!(
        shown.starts_with(&format!("OwnedConnect {{ len: {}, packet: Connect {{", full().len())),
        "{shown}"
    );
    assert!(shown.contains("client_id: \"sensor-17\"") && shown.contains("<redacted, 6 bytes>"), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}

/// A will without Retain reads as not retained.
#[test]
fn a_will_without_retain_is_not_retained() {
    let mut connect = Connect::new(Protocol::V3_1_1, "c1");
    connect.will = Some(Will::new("t", b"p"));
    let mut buf = vec![0; connect.encoded_len().unwrap()];
    connect.encode(&mut buf).unwrap();
    let (owned, _) = split(&buf);
    assert!(!owned.will().unwrap().retain());
}

/// A will's `Debug` names its QoS, Retain and topic, and the payload only by its length.
#[test]
fn a_will_debugs_without_its_payload() {
    let (owned, _) = split(&full());
    let shown = format!("{:?}", owned.will().unwrap());
    assert_eq!(
        shown,
        r#"OwnedWill { qos: AtLeastOnce, retain: true, topic: "sensors/17/status", payload_len: 7, .. }"#
    );
}
