//! Decoding, encoding and answering allocate nothing: the test-support crate's counting
//! allocator proves it.

use mqtt_connect::{
    ConnackPacket, Connect, Decoder, Protocol, QoS, ReasonCode, Status, UserProperties, Will,
};
use mqtt_connect_testkit::allocations;
use mqtt_connect_testkit::wire::*;

#[test]
fn decode_encode_and_connack_allocate_nothing() {
    // Everything is built before counting starts.
    let users = cat(&[&[0x26], &s(b"tenant"), &s(b"acme"), &[0x26], &s(b"k"), &s(b"v")]);
    let will = cat(&[&props(&[0x18, 0, 0, 0, 5, 0x01, 1]), &s(b"will/t"), &s(b"bye")]);
    let full = v5(
        0xc6,
        &cat(&[&[0x11, 0, 0, 0, 9, 0x21, 0, 9], &users]),
        &cat(&[&s(b"c1"), &will, &s(b"u"), &s(b"p")]),
    );
    let bad = v5(0x03, &[], &s(b"c1"));
    let pairs = [("a", "b"), ("c", "d")];
    let mut connect = Connect::new(Protocol::V5, "encoder");
    connect.properties.user_properties = UserProperties::new(&pairs);
    connect.will = Some(Will::new("t", b"x"));
    let mut out = [0u8; 256];
    let decoder = Decoder::new().max_packet_size(1024).check_payload_format(true);

    let ((), count) = allocations(|| {
        for cut in 0..=full.len() {
            let _ = decoder.decode(&full[..cut]);
        }
        let Ok(Status::Complete { packet, .. }) = decoder.decode(&full) else { panic!("decodes") };
        assert_eq!(packet.properties.user_properties.get("k"), Some("v"));
        assert_eq!(packet.properties.user_properties.iter().count(), 2);
        let len = packet.encode(&mut out).expect("encodes");
        assert_eq!(&out[..len], &full[..]);
        assert!(connect.encode(&mut out).is_ok());
        let e = decoder.decode(&bad).expect_err("reserved flag");
        assert!(e.connack(&bad).is_some());
        assert_eq!(mqtt_connect::protocol_of(&bad), Some(Protocol::V5));
    });
    assert_eq!(count, 0, "decode, encode and connack allocated");
}

#[test]
fn connack_decode_and_encode_allocate_nothing() {
    // Everything is built before counting starts.
    let pairs = [("node", "b-3"), ("zone", "eu")];
    let mut ack = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
    ack.session_present = true;
    ack.properties.server_keep_alive = Some(30);
    ack.properties.maximum_qos = Some(QoS::AtLeastOnce);
    ack.properties.assigned_client_identifier = Some("auto-1");
    ack.properties.reason_string = Some("welcome");
    ack.properties.authentication_data = Some(b"\x01");
    ack.properties.user_properties = UserProperties::new(&pairs);
    let mut out = [0u8; 256];
    let mut again = [0u8; 256];

    let ((), count) = allocations(|| {
        let len = ack.encode(&mut out).unwrap();
        let Ok(Status::Complete { packet, .. }) = ConnackPacket::decode(Protocol::V5, &out[..len]) else {
            panic!("the encoded CONNACK decodes")
        };
        assert_eq!(packet.properties.user_properties.get("zone"), Some("eu"));
        assert_eq!(packet.encode(&mut again).unwrap(), len);
        let v3 = ConnackPacket::new(Protocol::V3_1_1, ReasonCode::ServerBusy);
        let len = v3.encode(&mut out).unwrap();
        assert!(ConnackPacket::decode(Protocol::V3_1_1, &out[..len]).is_ok());
        assert!(ConnackPacket::decode(Protocol::V5, b"\x20\x03\x02\x00\x00").is_err());
        assert_eq!(Protocol::V5.connack(ReasonCode::Banned).unwrap().reason_code(), ReasonCode::Banned);
    });
    assert_eq!(count, 0);
}
