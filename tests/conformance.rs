//! One test per rule of the standards, named after the rule id: each shows an accepted and a
//! refused example, checks the reason code and, where the rule binds a sender, that the
//! encoder will not write the fault. 3.1.1 ids come first where 5.0 numbers the same rule
//! differently; the doc comment gives both.
//!
//! # Coverage
//!
//! The numbered rules of MQTT 3.1.1 sections 1.5.3, 2.2, 3.1, 3.2 and of 5.0 sections 1.5.4,
//! 1.5.5, 1.5.7, 2.1.3, 2.2.2, 3.1, 3.2, with the topic name rules of 4.7 for the will and
//! 5.0's 4.12.0-5 and 4.12.0-6 on authentication, which the codecs hold to. `3:` is a 3.1.1 id, `5:` a 5.0
//! one, `3/5:` the same number in both; `connack::` a test in tests/connack.rs, `codec::` one
//! in tests/codec.rs.
//!
//! | id | rule | test |
//! |---|---|---|
//! | 3: 1.5.3-1, 5: 1.5.4-1 | strings are well-formed UTF-8 | `mqtt_1_5_3_1_*`, `connack::mqtt_1_5_4_1_*` |
//! | 3: 1.5.3-2, 5: 1.5.4-2 | no U+0000 in a string | `mqtt_1_5_3_2_*`, `connack::mqtt_1_5_4_2_*` |
//! | 3: 1.5.3-3, 5: 1.5.4-3 | U+FEFF is kept | `mqtt_1_5_3_3_*` |
//! | 5: 1.5.5-1 | shortest Variable Byte Integer | `mqtt_1_5_5_1_*`, `connack::mqtt_1_5_5_1_*` |
//! | 5: 1.5.7-1 | a pair is two UTF-8 strings | `mqtt_1_5_7_1_*`, `mqtt_1_5_4_2_user_*` |
//! | 3: 2.2.2-1, 5: 2.1.3-1 | reserved header flags as listed | `mqtt_2_2_2_2_*`, `connack::mqtt_2_1_3_1_*` |
//! | 3: 2.2.2-2 | invalid flags: close | `mqtt_2_2_2_2_*` (malformed, no CONNACK) |
//! | 5: 2.2.2-1 | no properties: Property Length 0 | `mqtt_2_2_2_1_*`, `connack::mqtt_2_2_2_1_*` |
//! | 3/5: 3.1.0-1 | CONNECT comes first | `mqtt_3_1_0_1_*` |
//! | 3/5: 3.1.0-2 | a second CONNECT refused (the `ConnectCodec`) | `codec::mqtt_3_1_0_2_*` |
//! | 3/5: 3.1.2-1 | protocol name | `mqtt_3_1_2_1_*` |
//! | 3/5: 3.1.2-2 | unsupported level; its refusal read in the server's version | `mqtt_3_1_2_2_*`, `connack::mqtt_3_1_2_2_*`, `codec::mqtt_3_1_2_2_*` |
//! | 3/5: 3.1.2-3 | reserved Connect Flag is 0 | `mqtt_3_1_2_3_*` |
//! | 3/5: 3.1.2-9 | will flag 1: will fields present | `mqtt_3_1_2_9_and_3_1_2_11_*` |
//! | 3: 3.1.2-11 | will flag 0: no will bits, no fields | the same, `mqtt_3_1_2_13_*`, `mqtt_3_1_2_15_*` |
//! | 3: 3.1.2-13, 5: 3.1.2-11 | will flag 0: will QoS 0 | `mqtt_3_1_2_13_*` |
//! | 3: 3.1.2-14, 5: 3.1.2-12 | will QoS is not 3 | `mqtt_3_1_2_14_*` |
//! | 3: 3.1.2-15, 5: 3.1.2-13 | will flag 0: will retain 0 | `mqtt_3_1_2_15_*` |
//! | 3: 3.1.2-18..21, 5: -16..19 | user name, password as flagged | `mqtt_3_1_2_18_*` to `mqtt_3_1_2_21_*` |
//! | 3: 3.1.2-22 | password needs a user name | `mqtt_3_1_2_22_*` |
//! | 5: 3.1.2-24 | nothing over the client's Maximum Packet Size (the codecs, both ways) | `codec::mqtt_3_1_2_24_*` |
//! | 3/5: 3.1.3-1 | payload field order | `mqtt_3_1_3_1_*` |
//! | 3/5: 3.1.3-3 | client id present and first | `mqtt_3_1_3_3_*` |
//! | 3/5: 3.1.3-4 | client id is a UTF-8 string | `mqtt_3_1_3_4_*` |
//! | 3/5: 3.1.3-5 | 1 to 23 alphanumerics allowed | `mqtt_3_1_3_5_*` |
//! | 3: 3.1.3-7 | client: empty id, clean session | `mqtt_3_1_3_7_*` |
//! | 3: 3.1.3-8 | empty id, no clean session: 0x02 | `mqtt_3_1_3_8_*` |
//! | 3: 3.1.3-9 | refused id: 0x02 | `mqtt_3_1_3_9_*` |
//! | 3: 3.1.3-10, 5: 3.1.3-11 | will topic is a UTF-8 string | `mqtt_3_1_3_10_will_*` |
//! | 3: 3.1.3-11, 5: 3.1.3-12 | user name is a UTF-8 string | `mqtt_3_1_3_11_*` |
//! | 5: 3.1.3-10 | will User Properties keep order | `mqtt_3_1_3_10_v5_*` |
//! | 3/5: 3.1.4-1 | out of format: close (3.1.1: no CONNACK) | `mqtt_3_1_4_1_*` |
//! | 3: 3.2.0-1 | CONNACK comes first | `connack::mqtt_3_2_0_1_*` |
//! | 5: 3.2.0-2 | one CONNACK on a connection (the `ConnackCodec`) | `codec::mqtt_3_2_0_2_*` |
//! | 5: 3.2.2-1 | ack flags 7..1 are 0 (3.1.1 too, no id) | `connack::mqtt_3_2_2_1_*` |
//! | 3: 3.2.2-1, 5: 3.2.2-2 | clean start: Session Present 0 | `codec::mqtt_3_2_2_2_*` |
//! | 3: 3.2.2-4, 5: 3.2.2-6 | error: Session Present 0 | `connack::mqtt_3_2_2_4_*`, `…_3_2_2_6_v5_*` |
//! | 3: 3.2.2-6 | no return code fits: no CONNACK | `connack::mqtt_3_2_2_6_v3_1_1_*` |
//! | 5: 3.2.2-8 | one of the Connect Reason Codes | `connack::mqtt_3_2_2_8_*` |
//! | 5: 4.7.0-1, 3: 4.7.1-1 | no wildcard in a topic name | `mqtt_4_7_0_1_*` |
//! | 3/5: 4.7.3-1 | topic name not empty | `mqtt_4_7_3_1_*` |
//! | 3/5: 4.7.3-2 | no U+0000 in a topic name | `mqtt_4_7_3_2_*` |
//! | 3/5: 4.7.3-3 | topic name at most 65,535 bytes | `mqtt_4_7_3_3_*` |
//! | 5: 4.12.0-5 | a success carries the CONNECT's Authentication Method (the codecs: that there is one) | `codec::mqtt_4_12_0_5_*` |
//! | 5: 4.12.0-6 | no authentication the CONNECT did not ask for (the codecs) | `codec::mqtt_4_12_0_6_*` |
//!
//! Out of scope: rules that bind a client or server after the decode.
//!
//! | id | why |
//! |---|---|
//! | 3: 3.1.2-4..8, -10, -12, -16, -17; 5: 3.1.2-4..8, -10, -14, -15, -23 | session and will handling |
//! | 3: 3.1.2-23, -24; 5: 3.1.2-20..22 | Keep Alive timers |
//! | 5: 3.1.2-25..30 | what each side sends later |
//! | 3/5: 3.1.3-2, -6; 5: 3.1.3-7, -9 | session identity, id assignment, will delay |
//! | 5: 3.1.3-8 | refusing an id is the server's choice (`Protocol::connack` writes 0x85) |
//! | 3: 3.1.4-2..5; 5: 3.1.4-2..6 | the server's actions once it has decoded |
//! | 5: 3.2.0-1 | the order of the server's packets (AUTH may come first) |
//! | 3: 3.2.2-2, -3; 5: 3.2.2-3..5 | Session Present against session state (5.0 -4's clean start: `codec::`) |
//! | 3: 3.2.2-5; 5: 3.2.2-7 | closing after a refusal |
//! | 5: 3.2.2-9..22 | capabilities and their use (19, 20: the client's limit, not given to the encoder; the `ConnectCodec` holds to it) |
//! | 3/5: 4.7.3-4 | subscription matching |

use mqtt_connect::{
    Connect, Decoder, EncodeError, Error, Field, Needed, PayloadFormat, Property, Protocol, QoS, ReasonCode,
    Status, UserProperties, Will,
};
use mqtt_connect_testkit::wire::*;

const MALFORMED: u8 = 0x81;
const PROTOCOL_ERROR: u8 = 0x82;
const UNSUPPORTED: u8 = 0x84;
const CLIENT_ID: u8 = 0x85;

/// The smallest valid payload: a client id.
fn cid() -> Vec<u8> {
    s(b"c1")
}

/// The rule the encoder refuses `connect` for; `encoded_len` and `encode` refuse alike.
fn refused(connect: &Connect<'_>) -> Error {
    let e = connect.encoded_len().expect_err("the encoder refuses it");
    assert_eq!(connect.encode(&mut [0; 64]), Err(e));
    match e {
        EncodeError::Invalid(e) => e,
        other => panic!("refused for a reason that is no rule: {other}"),
    }
}

// ---- Fixed header ----

/// [MQTT-3.1.0-1] The first packet must be CONNECT; a sniffing proxy can tell from byte one.
#[test]
fn mqtt_3_1_0_1_first_packet_must_be_connect() {
    assert_eq!(ok(&v311(0x02, &cid())).client_id, "c1");
    for first in [0x20, 0x30, 0x82, b'G', 0x00, 0xff] {
        assert_eq!(err(&[first], MALFORMED), Error::NotConnect { byte: first });
    }
    // A TLS ClientHello starts 0x16: type 1, but flags that CONNECT never has.
    assert_eq!(err(&[0x16], MALFORMED), Error::FixedHeaderFlags { flags: 6 });
}

/// [MQTT-2.2.2-2 / 5.0 2.1.3] The CONNECT fixed header flags are reserved as 0.
#[test]
fn mqtt_2_2_2_2_fixed_header_flags_must_be_zero() {
    let good = v311(0x02, &cid());
    ok(&good);
    for flags in 1..=0x0f {
        let mut bad = good.clone();
        bad[0] = 0x10 | flags;
        assert_eq!(err(&bad, MALFORMED), Error::FixedHeaderFlags { flags });
        assert_eq!(err(&bad[..1], MALFORMED), Error::FixedHeaderFlags { flags }, "fails at once");
        // 3.1.1 has no return code for it: the server closes, sending nothing; from the first
        // byte alone, no version is known to answer in.
        let e = Error::FixedHeaderFlags { flags };
        assert_eq!((e.connack(&bad), e.connack(&bad[..1])), (None, None));
    }
}

/// [3.1.1 2.2.3 / 5.0 1.5.5] The Remaining Length takes at most 4 bytes.
#[test]
fn mqtt_2_2_3_remaining_length_at_most_four_bytes() {
    assert_eq!(mqtt_connect::decode(&[0x10, 0xff, 0xff, 0xff]), Ok(Status::Incomplete(Needed::Unknown)));
    let e = err(&[0x10, 0xff, 0xff, 0xff, 0xff], MALFORMED);
    assert_eq!(e, Error::VbiTooLong { field: Field::RemainingLength });
}

/// [3.1.1 2.2.3 / 5.0 1.5.5] So the encoder writes a Remaining Length of at most 268,435,455,
/// the most 4 bytes hold, and a property block no longer, naming the field that is over.
/// Sized only: `encoded_len` needs no buffer of 256 MiB.
#[test]
fn mqtt_2_2_3_encoder_refuses_a_remaining_length_over_four_bytes() {
    let full = "u".repeat(65_535);
    // 16 bytes of header, property length and empty client id, then 2,048 pairs of 5 bytes
    // plus their strings: 268,435,455 in all with a last value of 59,374 bytes.
    let sized = |last: usize, pairs: usize| {
        let last = "u".repeat(last);
        let mut all = vec![(&*full, &*full); pairs - 1];
        all.push((&*full, &*last));
        let mut connect = Connect::new(Protocol::V5, "");
        connect.properties.user_properties = UserProperties::new(&all);
        connect.encoded_len()
    };
    assert_eq!(sized(59_374, 2_048), Ok(1 + 4 + 268_435_455));
    let too_long = |field| Err(EncodeError::TooLong { field });
    assert_eq!(sized(59_375, 2_048), too_long(Field::RemainingLength));
    assert_eq!(sized(65_535, 2_049), too_long(Field::Properties));
}

/// [MQTT-1.5.5-1] 5.0 requires the shortest Variable Byte Integer; 3.1.1 does not say so and
/// mosquitto accepts a longer one there, so this decoder does too.
#[test]
fn mqtt_1_5_5_1_v5_variable_byte_integer_must_be_minimal() {
    let lengthen = |packet: &[u8]| {
        assert!(packet[1] < 0x80);
        cat(&[&[0x10, packet[1] | 0x80, 0x00], &packet[2..]])
    };
    let v3 = lengthen(&v311(0x02, &cid()));
    assert_eq!(ok(&v3).client_id, "c1");

    let v5_ok = v5(0x02, &[], &cid());
    ok(&v5_ok);
    let e = err(&lengthen(&v5_ok), MALFORMED);
    assert_eq!(e, Error::VbiNotMinimal { field: Field::RemainingLength });

    // The property length too: 0 written as 80 00.
    let mut body = s(b"MQTT");
    body.extend([5, 0x02, 0, 60, 0x80, 0x00]);
    body.extend(cid());
    let e = err(&frame(&body), MALFORMED);
    assert_eq!(e, Error::VbiNotMinimal { field: Field::Properties });
    // And the will's.
    let will = cat(&[&cid(), &[0x80, 0x00], &s(b"t"), &s(b"x")]);
    let e = err(&v5(0x06, &[], &will), MALFORMED);
    assert_eq!(e, Error::VbiNotMinimal { field: Field::WillProperties });
}

/// [MQTT-2.2.2-1] (5.0) No properties is a Property Length of 0, never an absent one: the
/// CONNECT block and the will's must stand there, and the encoder writes them.
#[test]
fn mqtt_2_2_2_1_v5_no_properties_is_a_property_length_of_zero() {
    let will = cat(&[&cid(), &props(&[]), &s(b"t"), &s(b"x")]);
    let bytes = v5(0x06, &[], &will);
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.will = Some(Will::new("t", b"x"));
    assert_eq!(encode(&connect), bytes);
    assert_eq!(ok(&bytes), connect);

    let no_block = frame(&cat(&[&s(b"MQTT"), &[5, 0x02, 0, 60]]));
    assert_eq!(err(&no_block, MALFORMED), Error::Truncated { field: Field::Properties });
    let no_will_block = v5(0x06, &[], &cid());
    assert_eq!(err(&no_will_block, MALFORMED), Error::Truncated { field: Field::WillProperties });
}

/// A packet over the cap is refused from its Remaining Length alone, before its bytes arrive.
#[test]
fn max_packet_size_decided_from_remaining_length() {
    let packet = v311(0x02, &cid());
    let exact = Decoder::new().max_packet_size(packet.len() as u32);
    assert!(matches!(exact.decode(&packet), Ok(Status::Complete { .. })));

    let small = Decoder::new().max_packet_size(packet.len() as u32 - 1);
    let e = small.decode(&packet[..2]).unwrap_err();
    assert_eq!(e, Error::PacketTooLarge { size: packet.len() as u32, limit: packet.len() as u32 - 1 });
    assert_eq!(e.reason_code(), ReasonCode::PacketTooLarge);

    // The largest length the standard allows, announced in five bytes.
    let e = Decoder::new().max_packet_size(1 << 20).decode(&[0x10, 0xff, 0xff, 0xff, 0x7f]).unwrap_err();
    assert_eq!(e, Error::PacketTooLarge { size: 268_435_460, limit: 1 << 20 });
}

// ---- Framing ----

/// Inside a complete frame a field cut short is malformed, never "need more": waiting for
/// bytes that the frame does not hold is how such parsers are held open forever.
#[test]
fn field_past_the_frame_is_malformed_not_incomplete() {
    // Remaining Length 12 frames "MQTT", level, flags, keep-alive, and 2 of the client id's
    // announced 4 bytes.
    let mut body = s(b"MQTT");
    body.extend([4, 0x02, 0, 60, 0, 4, b'c', b'1']);
    let e = err(&frame(&body), MALFORMED);
    assert_eq!(e, Error::Truncated { field: Field::ClientId });

    let v5_cut = cat(&[&frame(&cat(&[&s(b"MQTT"), &[5, 0x02, 0, 60, 5, 0x11, 0, 0]]))]);
    assert_eq!(err(&v5_cut, MALFORMED), Error::Truncated { field: Field::Properties });
}

/// Every byte counted by the Remaining Length belongs to a field the flags announce.
#[test]
fn bytes_after_the_last_field_are_malformed() {
    let good = v311(0x02, &cid());
    ok(&good);
    let e = err(&v311(0x02, &cat(&[&cid(), b"xy"])), MALFORMED);
    assert_eq!(e, Error::TrailingBytes { count: 2 });
    // A user name with its flag clear is trailing bytes too.
    let e = err(&v311(0x02, &cat(&[&cid(), &s(b"bob")])), MALFORMED);
    assert_eq!(e, Error::TrailingBytes { count: 5 });
}

/// Bytes after the frame are the next packet, pipelined, and not this decoder's business.
#[test]
fn bytes_after_the_frame_are_left_alone() {
    let packet = v311(0x02, &cid());
    let pipelined = cat(&[&packet, &[0x30, 0x00]]);
    match mqtt_connect::decode(&pipelined) {
        Ok(Status::Complete { len, .. }) => assert_eq!(len, packet.len()),
        other => panic!("{other:?}"),
    }
}

/// Outside the frame, Incomplete is exact once the fixed header is in.
#[test]
fn incomplete_is_exact_once_the_header_is_in() {
    let packet = v5(0x02, &[0x11, 0, 0, 0, 10], &cid());
    assert_eq!(mqtt_connect::decode(&[]), Ok(Status::Incomplete(Needed::Unknown)));
    assert_eq!(mqtt_connect::decode(&packet[..1]), Ok(Status::Incomplete(Needed::Unknown)));
    for cut in 2..packet.len() {
        let needed = (packet.len() - cut).try_into().unwrap();
        assert_eq!(mqtt_connect::decode(&packet[..cut]), Ok(Status::Incomplete(Needed::Size(needed))));
    }
}

// ---- Protocol name and level ----

/// [MQTT-3.1.2-1] The protocol name is `MQTT` (or `MQIsdp` for 3.1), case included.
#[test]
fn mqtt_3_1_2_1_protocol_name() {
    assert_eq!(ok(&packet(b"MQTT", 4, 0x02, None, &cid())).protocol, Protocol::V3_1_1);
    assert_eq!(ok(&packet(b"MQIsdp", 3, 0x02, None, &cid())).protocol, Protocol::V3_1);
    for name in [&b"mqtt"[..], b"MQTX", b"MQ", b"", b"MQTTT"] {
        let bad = packet(name, 4, 0x02, None, &cid());
        assert_eq!(err(&bad, UNSUPPORTED), Error::UnknownProtocolName);
        assert_eq!(
            err(&bad[..bad.len() - 3], UNSUPPORTED),
            Error::UnknownProtocolName,
            "before it all arrives"
        );
        assert_eq!(Error::UnknownProtocolName.connack(&bad), None, "not MQTT: the server just closes");
    }
}

/// [MQTT-3.1.2-2] A level that does not pair with the name is an unsupported version,
/// answered with 3.1.1's return code 0x01.
#[test]
fn mqtt_3_1_2_2_unsupported_protocol_level() {
    assert_eq!(ok(&v5(0x02, &[], &cid())).protocol, Protocol::V5);
    for (name, level) in [(&b"MQTT"[..], 3), (b"MQIsdp", 4), (b"MQTT", 6), (b"MQTT", 0), (b"MQIsdp", 5)] {
        let bad = packet(name, level, 0x02, None, &cid());
        assert_eq!(err(&bad, UNSUPPORTED), Error::UnsupportedProtocolLevel { level });
        let ack = mqtt_connect::decode(&bad).unwrap_err().connack(&bad).unwrap();
        assert_eq!(ack.as_bytes(), [0x20, 0x02, 0x00, 0x01]);
    }
}

/// The bridge bit mosquitto bridges set on the level byte: accepted and reported by default,
/// an unsupported version when the caller asks for strictness.
#[test]
fn bridge_bit_on_the_level_byte() {
    for (name, level, protocol) in [(&b"MQTT"[..], 0x84, Protocol::V3_1_1), (b"MQIsdp", 0x83, Protocol::V3_1)]
    {
        let bridge = packet(name, level, 0x02, None, &cid());
        let c = ok(&bridge);
        assert_eq!((c.protocol, c.bridge), (protocol, true));

        let strict = Decoder::new().allow_bridge_bit(false);
        let e = strict.decode(&bridge).unwrap_err();
        assert_eq!(e, Error::UnsupportedProtocolLevel { level });
        assert_eq!(e.connack(&bridge).unwrap().as_bytes(), [0x20, 0x02, 0x00, 0x01]);
        // Whatever the decoder's option, a refusal is answered in the bridge's version.
        assert_eq!(mqtt_connect::protocol_of(&bridge), Some(protocol));
    }
    assert!(!ok(&v311(0x02, &cid())).bridge);
}

/// [MQTT-3.1.2-2] The bridge bit is mosquitto's convention for 3.1 and 3.1.1 bridges: on
/// 5.0, level 0x85 is not 5, so it is an unsupported version, whatever the option.
#[test]
fn mqtt_3_1_2_2_level_0x85_is_unsupported() {
    let v5_bridge = packet(b"MQTT", 0x85, 0x02, Some(&[]), &cid());
    for decoder in [Decoder::new(), Decoder::new().allow_bridge_bit(false)] {
        let e = decoder.decode(&v5_bridge).unwrap_err();
        assert_eq!(e, Error::UnsupportedProtocolLevel { level: 0x85 });
        assert_eq!(e.reason_code(), ReasonCode::UnsupportedProtocolVersion);
        assert_eq!(e.connack(&v5_bridge).unwrap().as_bytes(), [0x20, 0x02, 0x00, 0x01]);
        assert_eq!(decoder.frame(&v5_bridge[..9]), Err(e), "before the frame is whole");
    }
    assert_eq!(mqtt_connect::protocol_of(&v5_bridge), None);
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.bridge = true;
    assert_eq!(refused(&connect), Error::UnsupportedProtocolLevel { level: 0x85 });
    connect.protocol = Protocol::V3_1_1;
    assert_eq!(encode(&connect), packet(b"MQTT", 0x84, 0x02, None, &cid()));
}

// ---- Connect Flags ----

/// [MQTT-3.1.2-3] The reserved flag must be 0.
#[test]
fn mqtt_3_1_2_3_reserved_flag_must_be_zero() {
    ok(&v311(0x02, &cid()));
    assert_eq!(err(&v311(0x03, &cid()), MALFORMED), Error::ReservedFlag);
    assert_eq!(err(&v5(0x03, &[], &cid()), MALFORMED), Error::ReservedFlag);
}

fn will_payload() -> Vec<u8> {
    cat(&[&cid(), &s(b"t/will"), &s(b"gone")])
}

/// [MQTT-3.1.2-13 / 5.0 MQTT-3.1.2-11] Without the will flag, the will QoS is 0.
#[test]
fn mqtt_3_1_2_13_will_qos_needs_the_will_flag() {
    let c_bytes = v311(0x02 | 0x04 | 0x08, &will_payload());
    let c = ok(&c_bytes);
    assert_eq!(c.will.unwrap().qos, QoS::AtLeastOnce);
    assert_eq!(err(&v311(0x02 | 0x08, &cid()), MALFORMED), Error::WillFlagsWithoutWill);
    assert_eq!(err(&v5(0x02 | 0x10, &[], &cid()), MALFORMED), Error::WillFlagsWithoutWill);
}

/// [MQTT-3.1.2-14 / 5.0 MQTT-3.1.2-12] With the will flag, the will QoS is 0, 1 or 2, never 3.
#[test]
fn mqtt_3_1_2_14_will_qos_3_is_malformed() {
    for (bits, qos) in [(0x00, QoS::AtMostOnce), (0x08, QoS::AtLeastOnce), (0x10, QoS::ExactlyOnce)] {
        assert_eq!(ok(&v311(0x06 | bits, &will_payload())).will.unwrap().qos, qos);
    }
    assert_eq!(err(&v311(0x06 | 0x18, &will_payload()), MALFORMED), Error::InvalidWillQos);
    let v5_will = cat(&[&cid(), &props(&[]), &s(b"t/will"), &s(b"gone")]);
    assert_eq!(ok(&v5(0x06 | 0x10, &[], &v5_will)).will.unwrap().qos, QoS::ExactlyOnce);
    assert_eq!(err(&v5(0x06 | 0x18, &[], &v5_will), MALFORMED), Error::InvalidWillQos);
}

/// [MQTT-3.1.2-15 / 5.0 MQTT-3.1.2-13] Without the will flag, Will Retain is 0.
#[test]
fn mqtt_3_1_2_15_will_retain_needs_the_will_flag() {
    assert!(ok(&v311(0x26, &will_payload())).will.unwrap().retain);
    assert_eq!(err(&v311(0x22, &cid()), MALFORMED), Error::WillFlagsWithoutWill);
    assert_eq!(err(&v5(0x22, &[], &cid()), MALFORMED), Error::WillFlagsWithoutWill);
}

/// [MQTT-3.1.2-9 / 5.0 MQTT-3.1.2-9] With the will flag the will fields (5.0: and the will
/// properties) stand in the payload; [MQTT-3.1.2-11] without it, they must not. (5.0 numbers
/// only the first half; its [MQTT-3.1.2-11] is the will QoS rule above.)
#[test]
fn mqtt_3_1_2_9_and_3_1_2_11_will_fields_follow_the_will_flag() {
    assert!(ok(&v311(0x06, &will_payload())).will.is_some());
    assert_eq!(err(&v311(0x02, &will_payload()), MALFORMED), Error::TrailingBytes { count: 14 });
    assert_eq!(err(&v311(0x06, &cid()), MALFORMED), Error::Truncated { field: Field::WillTopic });
    let v5_will = cat(&[&cid(), &props(&[]), &s(b"t/will"), &s(b"gone")]);
    assert!(ok(&v5(0x06, &[], &v5_will)).will.is_some());
    assert_eq!(err(&v5(0x02, &[], &v5_will), MALFORMED), Error::TrailingBytes { count: 15 });
    let no_topic = cat(&[&cid(), &props(&[])]);
    assert_eq!(err(&v5(0x06, &[], &no_topic), MALFORMED), Error::Truncated { field: Field::WillTopic });
}

/// [MQTT-3.1.2-18 / 5.0 MQTT-3.1.2-16] Without the User Name Flag no user name stands in the
/// payload: bytes where it would stand are left over.
#[test]
fn mqtt_3_1_2_18_no_user_name_without_the_user_name_flag() {
    assert_eq!(ok(&v311(0x02, &cid())).username, None);
    assert_eq!(ok(&v5(0x02, &[], &cid())).username, None);
    let with_name = cat(&[&cid(), &s(b"bob")]);
    assert_eq!(err(&v311(0x02, &with_name), MALFORMED), Error::TrailingBytes { count: 5 });
    let v5_bad = v5(0x02, &[], &with_name);
    assert_eq!(err(&v5_bad, MALFORMED), Error::TrailingBytes { count: 5 });
    assert_eq!(err(&v5_bad, MALFORMED).connack(&v5_bad).unwrap().as_bytes(), [0x20, 3, 0, MALFORMED, 0]);
}

/// [MQTT-3.1.2-19 / 5.0 MQTT-3.1.2-17] With the User Name Flag a user name stands in the
/// payload: a frame that ends before it is malformed.
#[test]
fn mqtt_3_1_2_19_a_user_name_with_the_user_name_flag() {
    let with_name = cat(&[&cid(), &s(b"bob")]);
    assert_eq!(ok(&v311(0x82, &with_name)).username, Some("bob"));
    assert_eq!(ok(&v5(0x82, &[], &with_name)).username, Some("bob"));
    let missing = Error::Truncated { field: Field::Username };
    assert_eq!(err(&v311(0x82, &cid()), MALFORMED), missing);
    assert_eq!(err(&v5(0x82, &[], &cid()), MALFORMED), missing);
}

/// [MQTT-3.1.2-20 / 5.0 MQTT-3.1.2-18] Without the Password Flag no password stands in the
/// payload: bytes where it would stand are left over.
#[test]
fn mqtt_3_1_2_20_no_password_without_the_password_flag() {
    let with_name = cat(&[&cid(), &s(b"bob")]);
    assert_eq!(ok(&v311(0x82, &with_name)).password, None);
    assert_eq!(ok(&v5(0x82, &[], &with_name)).password, None);
    let with_password = cat(&[&with_name, &s(b"pw")]);
    assert_eq!(err(&v311(0x82, &with_password), MALFORMED), Error::TrailingBytes { count: 4 });
    assert_eq!(err(&v5(0x82, &[], &with_password), MALFORMED), Error::TrailingBytes { count: 4 });
    // 5.0 without a user name either: the password's bytes are left over all the same.
    assert_eq!(err(&v5(0x02, &[], &cat(&[&cid(), &s(b"pw")])), MALFORMED), Error::TrailingBytes { count: 4 });
}

/// [MQTT-3.1.2-21 / 5.0 MQTT-3.1.2-19] With the Password Flag a password stands in the
/// payload: a frame that ends before it is malformed.
#[test]
fn mqtt_3_1_2_21_a_password_with_the_password_flag() {
    let with_name = cat(&[&cid(), &s(b"bob")]);
    assert_eq!(ok(&v311(0xc2, &cat(&[&with_name, &s(b"pw")]))).password, Some(&b"pw"[..]));
    assert_eq!(ok(&v5(0x42, &[], &cat(&[&cid(), &s(b"pw")]))).password, Some(&b"pw"[..]));
    let missing = Error::Truncated { field: Field::Password };
    assert_eq!(err(&v311(0xc2, &with_name), MALFORMED), missing);
    assert_eq!(err(&v5(0xc2, &[], &with_name), MALFORMED), missing);
    assert_eq!(err(&v5(0x42, &[], &cid()), MALFORMED), missing);
}

/// [MQTT-3.1.2-22] 3.x forbids a password without a user name; 5.0 allows it.
#[test]
fn mqtt_3_1_2_22_password_needs_a_user_name_in_3x() {
    let both_bytes = v311(0xc2, &cat(&[&cid(), &s(b"bob"), &s(b"pw")]));
    let both = ok(&both_bytes);
    assert_eq!((both.username, both.password), (Some("bob"), Some(&b"pw"[..])));
    assert_eq!(err(&v311(0x42, &cat(&[&cid(), &s(b"pw")])), MALFORMED), Error::PasswordWithoutUsername);
    let v5_pw_bytes = v5(0x42, &[], &cat(&[&cid(), &s(b"pw")]));
    let v5_pw = ok(&v5_pw_bytes);
    assert_eq!((v5_pw.username, v5_pw.password), (None, Some(&b"pw"[..])));
    // The encoder, a client, holds to it too.
    assert_eq!(encode(&v5_pw), v5_pw_bytes);
    for protocol in [Protocol::V3_1_1, Protocol::V3_1] {
        let mut connect = Connect::new(protocol, "c1");
        connect.password = Some(b"pw");
        assert_eq!(refused(&connect), Error::PasswordWithoutUsername);
    }
}

/// (3.1.1 section 3.1.3.5, 5.0 section 3.1.3.6) The password is Binary Data: any bytes, never
/// required to be UTF-8. (Not [MQTT-3.1.3-5], the client id rule below.)
#[test]
fn password_is_binary_data() {
    let c_bytes = v311(0xc2, &cat(&[&cid(), &s(b"bob"), &s(&[0xff, 0x00, 0xc0])]));
    let c = ok(&c_bytes);
    assert_eq!(c.password, Some(&[0xff, 0x00, 0xc0][..]));
    let v5_bytes = v5(0x42, &[], &cat(&[&cid(), &s(&[0xff, 0x00])]));
    assert_eq!(ok(&v5_bytes).password, Some(&[0xff, 0x00][..]));
}

// ---- UTF-8 strings ----

/// [MQTT-1.5.3-1 / 5.0 MQTT-1.5.4-1] Strings are well-formed UTF-8, with no surrogates.
#[test]
fn mqtt_1_5_3_1_strings_must_be_well_formed_utf8() {
    assert_eq!(ok(&v311(0x02, &s("ünï-€-😀".as_bytes()))).client_id, "ünï-€-😀");
    for bad in [&[0xed, 0xa0, 0x80][..], &[0xc0, 0x80], &[0xff], &[b'a', 0xe2, 0x82]] {
        let e = err(&v311(0x02, &s(bad)), MALFORMED);
        assert_eq!(e, Error::InvalidUtf8 { field: Field::ClientId });
    }
    let e = err(&v311(0x82, &cat(&[&cid(), &s(&[0xed, 0xbf, 0xbf])])), MALFORMED);
    assert_eq!(e, Error::InvalidUtf8 { field: Field::Username });
}

/// [MQTT-1.5.3-2 / 5.0 MQTT-1.5.4-2] Strings must not hold U+0000.
#[test]
fn mqtt_1_5_3_2_strings_must_not_hold_null() {
    ok(&v311(0x02, &s(b"a\x01b")));
    assert_eq!(err(&v311(0x02, &s(b"a\0b")), MALFORMED), Error::NullCharacter { field: Field::ClientId });
    // However many there are: two in a string too short for the word test.
    for id in [&b"\0\0"[..], b"a\0\0", b"\0a\0"] {
        assert_eq!(err(&v311(0x02, &s(id)), MALFORMED), Error::NullCharacter { field: Field::ClientId });
    }
    let e = err(&v311(0x06, &cat(&[&cid(), &s(b"t\0"), &s(b"")])), MALFORMED);
    assert_eq!(e, Error::NullCharacter { field: Field::WillTopic });
    let user_property = cat(&[&[0x26], &s(b"k"), &s(b"v\0")]);
    let e = err(&v5(0x02, &user_property, &cid()), MALFORMED);
    assert_eq!(e, Error::NullCharacter { field: Field::Property(Property::UserProperty) });
    // Nor does the encoder write one.
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.username = Some("a\0b");
    assert_eq!(refused(&connect), Error::NullCharacter { field: Field::Username });
    connect.username = None;
    connect.properties.authentication_method = Some("m\0");
    let field = Field::Property(Property::AuthenticationMethod);
    assert_eq!(refused(&connect), Error::NullCharacter { field });
    connect.properties.authentication_method = None;
    let pairs = [("k", "v\0")];
    connect.properties.user_properties = UserProperties::new(&pairs);
    let field = Field::Property(Property::UserProperty);
    assert_eq!(refused(&connect), Error::NullCharacter { field });
}

/// [MQTT-1.5.3-3 / 5.0 MQTT-1.5.4-3] A leading U+FEFF is part of the string, never stripped.
#[test]
fn mqtt_1_5_3_3_byte_order_mark_is_kept() {
    let c_bytes = v311(0x02, &s("\u{feff}c1".as_bytes()));
    let c = ok(&c_bytes);
    assert_eq!(c.client_id, "\u{feff}c1");
    assert_eq!(err(&v311(0x02, &s(&[0xef, 0xbb])), MALFORMED), Error::InvalidUtf8 { field: Field::ClientId });
}

// ---- Client Identifier ----

/// [MQTT-3.1.3-8] 3.1.1: an empty client id needs clean session, else return code 0x02.
#[test]
fn mqtt_3_1_3_8_empty_client_id_needs_clean_session() {
    assert_eq!(ok(&v311(0x02, &s(b""))).client_id, "");
    let bad = v311(0x00, &s(b""));
    assert_eq!(err(&bad, CLIENT_ID), Error::EmptyClientId);
    let ack = mqtt_connect::decode(&bad).unwrap_err().connack(&bad).unwrap();
    assert_eq!(ack.as_bytes(), [0x20, 0x02, 0x00, 0x02]);
    // 5.0 leaves an empty id with clean start 0 to the server.
    assert_eq!(ok(&v5(0x00, &[], &s(b""))).client_id, "");
}

/// [MQTT-3.1.3-7] (3.1.1) A client that sends an empty client id sets Clean Session 1: the
/// encoder refuses one without it. 5.0 has no such rule.
#[test]
fn mqtt_3_1_3_7_encoder_sends_an_empty_client_id_only_with_clean_session() {
    let mut connect = Connect::new(Protocol::V3_1_1, "");
    assert_eq!(encode(&connect), v311(0x02, &s(b"")));
    connect.clean_start = false;
    assert_eq!(refused(&connect), Error::EmptyClientId);
    connect.protocol = Protocol::V5;
    assert_eq!(encode(&connect), v5(0x00, &[], &s(b"")));
}

/// [MQTT-3.1.3-9] (3.1.1) A client id the decoder refuses is answered with return code 0x02,
/// Identifier rejected. (5.0's [MQTT-3.1.3-8] leaves refusing to the server, and the CONNACK,
/// 0x85, to its choice.)
#[test]
fn mqtt_3_1_3_9_a_refused_client_id_is_answered_identifier_rejected() {
    let v31_long = packet(b"MQIsdp", 3, 0x02, None, &s(&[b'c'; 24]));
    let strict = Decoder::new().limit_v3_1_client_id(true);
    for (decoder, bytes) in [(Decoder::new(), v311(0x00, &s(b""))), (strict, v31_long)] {
        let e = decoder.decode(&bytes).unwrap_err();
        assert_eq!(u8::from(e.reason_code()), CLIENT_ID);
        assert_eq!(e.connack(&bytes).unwrap().as_bytes(), [0x20, 0x02, 0x00, 0x02]);
    }
    assert_eq!(Protocol::V5.connack(ReasonCode::ClientIdentifierNotValid).unwrap().as_bytes()[3], CLIENT_ID);
}

/// [MQTT-3.1.3-3] The client id is always present, and the first field of the payload: a
/// payload that ends before it is malformed, and the first string is read as the id.
#[test]
fn mqtt_3_1_3_3_client_id_present_and_first() {
    let no_payload = frame(&cat(&[&s(b"MQTT"), &[4, 0x02, 0, 60]]));
    assert_eq!(err(&no_payload, MALFORMED), Error::Truncated { field: Field::ClientId });
    let v5_no_payload = frame(&cat(&[&s(b"MQTT"), &[5, 0x02, 0, 60, 0]]));
    assert_eq!(err(&v5_no_payload, MALFORMED), Error::Truncated { field: Field::ClientId });
    // A user name alone: it is the client id, and the user name is then missing.
    assert_eq!(err(&v311(0x82, &s(b"bob")), MALFORMED), Error::Truncated { field: Field::Username });
    let mut connect = Connect::new(Protocol::V3_1_1, "c1");
    connect.username = Some("bob");
    assert_eq!(encode(&connect), v311(0x82, &cat(&[&cid(), &s(b"bob")])));
}

/// [MQTT-3.1.3-4] The client id is a UTF-8 string: well-formed, without U+0000, in 3.1.1 and
/// 5.0 alike, and the encoder writes none other.
#[test]
fn mqtt_3_1_3_4_client_id_must_be_a_utf8_string() {
    for (bad, e) in [
        (&b"c\xff"[..], Error::InvalidUtf8 { field: Field::ClientId }),
        (b"\xed\xa0\x80", Error::InvalidUtf8 { field: Field::ClientId }),
        (b"c\0", Error::NullCharacter { field: Field::ClientId }),
    ] {
        assert_eq!(err(&v311(0x02, &s(bad)), MALFORMED), e);
        assert_eq!(err(&v5(0x02, &[], &s(bad)), MALFORMED), e);
    }
    assert_eq!(refused(&Connect::new(Protocol::V5, "c\0")), Error::NullCharacter { field: Field::ClientId });
}

/// [MQTT-3.1.3-5] A server must allow client ids of 1 to 23 bytes of `0-9a-zA-Z`: the decoder
/// takes them, with every option that refuses more turned on.
#[test]
fn mqtt_3_1_3_5_ids_of_1_to_23_alphanumerics_are_allowed() {
    let strict = Decoder::new()
        .limit_v3_1_client_id(true)
        .refuse_control_characters(true)
        .check_payload_format(true)
        .allow_bridge_bit(false);
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for id in [&alphabet[..1], &alphabet[..23], &alphabet[39..], &alphabet[61..]] {
        for bytes in [v311(0x00, &s(id)), v5(0x00, &[], &s(id)), packet(b"MQIsdp", 3, 0x00, None, &s(id))] {
            let Ok(Status::Complete { packet, .. }) = strict.decode(&bytes) else { panic!("{id:?} refused") };
            assert_eq!(packet.client_id.as_bytes(), id);
        }
    }
}

/// [MQTT-3.1.3-1] The payload's fields stand in the order client id, will properties (5.0),
/// will topic, will payload, user name, password: the encoder writes them so, and the decoder
/// reads them so.
#[test]
fn mqtt_3_1_3_1_payload_fields_in_order() {
    let mut connect = Connect::new(Protocol::V3_1_1, "c1");
    connect.will = Some(Will::new("t", b"bye"));
    connect.username = Some("bob");
    connect.password = Some(b"pw");
    let fields = [s(b"c1"), s(b"t"), s(b"bye"), s(b"bob"), s(b"pw")];
    let bytes = v311(0xc6, &fields.concat());
    assert_eq!(encode(&connect), bytes);
    assert_eq!(ok(&bytes), connect);

    connect.protocol = Protocol::V5;
    let mut will = Will::new("t", b"bye");
    will.properties.will_delay_interval = Some(1);
    connect.will = Some(will);
    let will_properties = props(&[0x18, 0, 0, 0, 1]);
    let [id, topic, payload, user, password] = &fields;
    let bytes = v5(0xc6, &[], &cat(&[id, &will_properties, topic, payload, user, password]));
    assert_eq!(encode(&connect), bytes);
    assert_eq!(ok(&bytes), connect);
}

/// [MQTT 3.1, 3.1] A 3.1 client id is 1 to 23 characters; the upper limit is a policy the
/// caller turns on, as most brokers accept longer ids.
#[test]
fn mqtt_3_1_client_id_is_1_to_23_characters() {
    let v31 = |id: &str, flags: u8| packet(b"MQIsdp", 3, flags, None, &s(id.as_bytes()));
    assert_eq!(err(&v31("", 0x02), CLIENT_ID), Error::EmptyClientId);
    let long = "é".repeat(24);
    assert_eq!(ok(&v31(&long, 0x02)).client_id, long);
    let strict = Decoder::new().limit_v3_1_client_id(true);
    assert!(strict.decode(&v31(&"é".repeat(23), 0x02)).is_ok());
    let e = strict.decode(&v31(&long, 0x02)).unwrap_err();
    assert_eq!(e, Error::ClientIdTooLong);
    assert_eq!(e.reason_code(), ReasonCode::ClientIdentifierNotValid);
    assert_eq!(refused(&Connect::new(Protocol::V3_1, "")), Error::EmptyClientId);
}

// ---- Will topic and user name ----

/// The will of a 5.0 CONNECT with Response Topic `response`, as the encoder takes it.
fn v5_will<'a>(topic: &'a str, response: Option<&'a str>) -> Connect<'a> {
    let mut connect = Connect::new(Protocol::V5, "c1");
    let mut will = Will::new(topic, b"x");
    will.properties.response_topic = response;
    connect.will = Some(will);
    connect
}

/// [MQTT-3.1.3-10] (3.1.1; 5.0 [MQTT-3.1.3-11]) The will topic is a UTF-8 string, short or long
/// (3.x validates a short one in one run with the client id).
#[test]
fn mqtt_3_1_3_10_will_topic_must_be_a_utf8_string() {
    let long = "é".repeat(100);
    for topic in [&b"t\xff"[..], b"\xed\xa0\x80", &[long.as_bytes(), b"\xc3"].concat()] {
        let field = Field::WillTopic;
        let e = err(&v311(0x06, &cat(&[&cid(), &s(topic), &s(b"x")])), MALFORMED);
        assert_eq!(e, Error::InvalidUtf8 { field });
        let e = err(&v5(0x06, &[], &cat(&[&cid(), &props(&[]), &s(topic), &s(b"x")])), MALFORMED);
        assert_eq!(e, Error::InvalidUtf8 { field });
    }
    assert_eq!(ok(&v311(0x06, &cat(&[&cid(), &s(long.as_bytes()), &s(b"x")]))).will.unwrap().topic, long);
}

/// [MQTT-3.1.3-11] (3.1.1; 5.0 [MQTT-3.1.3-12]) The user name is a UTF-8 string, right after
/// the client id or after a will.
#[test]
fn mqtt_3_1_3_11_user_name_must_be_a_utf8_string() {
    let field = Field::Username;
    for name in [&b"b\xff"[..], b"\xed\xbf\xbf", b"\xc3"] {
        let e = err(&v311(0x82, &cat(&[&cid(), &s(name)])), MALFORMED);
        assert_eq!(e, Error::InvalidUtf8 { field });
        let e = err(&v311(0x86, &cat(&[&will_payload(), &s(name)])), MALFORMED);
        assert_eq!(e, Error::InvalidUtf8 { field });
        let e = err(&v5(0x82, &[], &cat(&[&cid(), &s(name)])), MALFORMED);
        assert_eq!(e, Error::InvalidUtf8 { field });
    }
}

/// [MQTT-3.1.3-10] (5.0) A server publishes the will's User Properties in their order: the
/// decoder hands them out in wire order, repeats included, and the encoder writes them so.
#[test]
fn mqtt_3_1_3_10_v5_will_user_properties_keep_their_order() {
    let pairs = [("k", "1"), ("a", "2"), ("k", "3")];
    let mut connect = v5_will("t", None);
    let mut will = connect.will.unwrap();
    will.properties.user_properties = UserProperties::new(&pairs);
    connect.will = Some(will);
    let block: Vec<u8> =
        pairs.iter().flat_map(|(k, v)| cat(&[&[0x26], &s(k.as_bytes()), &s(v.as_bytes())])).collect();
    let bytes = v5(0x06, &[], &cat(&[&cid(), &props(&block), &s(b"t"), &s(b"x")]));
    assert_eq!(encode(&connect), bytes);
    let decoded = ok(&bytes).will.unwrap().properties.user_properties;
    assert_eq!(decoded.iter().collect::<Vec<_>>(), pairs);
}

/// [MQTT-4.7.3-1] A topic name has at least one character: the will topic and Response Topic.
#[test]
fn mqtt_4_7_3_1_will_topic_must_not_be_empty() {
    let e = err(&v311(0x06, &cat(&[&cid(), &s(b""), &s(b"x")])), PROTOCOL_ERROR);
    assert_eq!(e, Error::EmptyTopic { field: Field::WillTopic });
    let response = cat(&[&[0x08], &s(b"")]);
    let e = err(&v5(0x06, &[], &cat(&[&cid(), &props(&response), &s(b"t"), &s(b"x")])), PROTOCOL_ERROR);
    assert_eq!(e, Error::EmptyTopic { field: Field::Property(Property::ResponseTopic) });
    assert_eq!(refused(&v5_will("", None)), Error::EmptyTopic { field: Field::WillTopic });
    let field = Field::Property(Property::ResponseTopic);
    assert_eq!(refused(&v5_will("t", Some(""))), Error::EmptyTopic { field });
}

/// [MQTT-4.7.0-1] (5.0; 3.1.1 [MQTT-4.7.1-1], and PUBLISH's [MQTT-3.3.2-2], which the will
/// becomes) A topic name holds no wildcard: the will topic and Response Topic.
#[test]
fn mqtt_4_7_0_1_will_topic_must_not_hold_wildcards() {
    assert_eq!(ok(&v311(0x06, &will_payload())).will.unwrap().topic, "t/will");
    for topic in [&b"a/+"[..], b"#", b"a/#/b"] {
        let e = err(&v311(0x06, &cat(&[&cid(), &s(topic), &s(b"x")])), PROTOCOL_ERROR);
        assert_eq!(e, Error::WildcardInTopic { field: Field::WillTopic });
    }
    let response = cat(&[&[0x08], &s(b"r/+")]);
    let e = err(&v5(0x06, &[], &cat(&[&cid(), &props(&response), &s(b"t"), &s(b"x")])), PROTOCOL_ERROR);
    assert_eq!(e, Error::WildcardInTopic { field: Field::Property(Property::ResponseTopic) });
    assert_eq!(refused(&v5_will("a/+", None)), Error::WildcardInTopic { field: Field::WillTopic });
    let field = Field::Property(Property::ResponseTopic);
    assert_eq!(refused(&v5_will("t", Some("r/#"))), Error::WildcardInTopic { field });
}

/// [MQTT-4.7.3-2] A topic name holds no U+0000: the will topic and Response Topic.
#[test]
fn mqtt_4_7_3_2_topic_names_must_not_hold_null() {
    let field = Field::WillTopic;
    assert_eq!(
        err(&v311(0x06, &cat(&[&cid(), &s(b"t\0"), &s(b"x")])), MALFORMED),
        Error::NullCharacter { field }
    );
    let e = err(&v5(0x06, &[], &cat(&[&cid(), &props(&[]), &s(b"\0t"), &s(b"x")])), MALFORMED);
    assert_eq!(e, Error::NullCharacter { field });
    assert_eq!(refused(&v5_will("t\0", None)), Error::NullCharacter { field });
    let field = Field::Property(Property::ResponseTopic);
    let response = cat(&[&[0x08], &s(b"r\0")]);
    let e = err(&v5(0x06, &[], &cat(&[&cid(), &props(&response), &s(b"t"), &s(b"x")])), MALFORMED);
    assert_eq!(e, Error::NullCharacter { field });
    assert_eq!(refused(&v5_will("t", Some("r\0"))), Error::NullCharacter { field });
}

/// [MQTT-4.7.3-3] A topic name takes at most 65,535 bytes: the wire cannot say more, and the
/// encoder refuses more rather than cut it.
#[test]
fn mqtt_4_7_3_3_topic_names_at_most_65535_bytes() {
    let longest = "t".repeat(65_535);
    let bytes = encode(&v5_will(&longest, Some(&longest)));
    let will = ok(&bytes).will.unwrap();
    assert_eq!((will.topic.len(), will.properties.response_topic.map(str::len)), (65_535, Some(65_535)));
    let over = "t".repeat(65_536);
    let too_long = |field| Err(EncodeError::TooLong { field });
    assert_eq!(v5_will(&over, None).encoded_len(), too_long(Field::WillTopic));
    let response = Field::Property(Property::ResponseTopic);
    assert_eq!(v5_will("t", Some(&over)).encoded_len(), too_long(response));
}

// ---- 5.0 properties ----

fn all_connect_properties() -> Vec<u8> {
    cat(&[
        &[0x11, 0, 0, 0x0e, 0x10],
        &[0x21, 0, 20],
        &[0x27, 0, 1, 0, 0],
        &[0x22, 0, 5],
        &[0x19, 1],
        &[0x17, 0],
        &[0x15],
        &s(b"SCRAM-SHA-1"),
        &[0x16],
        &s(b"\x00\x01"),
        &[0x26],
        &s(b"tenant"),
        &s(b"acme"),
        &[0x26],
        &s(b"tenant"),
        &s(b"other"),
    ])
}

/// [5.0 3.1.2.11] Every CONNECT property is read into its typed field; User Properties keep
/// their order and may repeat.
#[test]
fn v5_3_1_2_11_connect_properties() {
    let bytes = v5(0x02, &all_connect_properties(), &cid());
    let p = ok(&bytes).properties;
    assert_eq!(p.session_expiry_interval, Some(3600));
    assert_eq!(p.receive_maximum, Some(20));
    assert_eq!(p.maximum_packet_size, Some(65536));
    assert_eq!(p.topic_alias_maximum, Some(5));
    assert_eq!(p.request_response_information, Some(true));
    assert_eq!(p.request_problem_information, Some(false));
    assert_eq!(p.authentication_method, Some("SCRAM-SHA-1"));
    assert_eq!(p.authentication_data, Some(&b"\x00\x01"[..]));
    let users: Vec<_> = p.user_properties.iter().collect();
    assert_eq!(users, [("tenant", "acme"), ("tenant", "other")]);
    assert_eq!(p.user_properties.get("tenant"), Some("acme"));
}

/// [5.0 3.1.3.2] Every will property is read into its typed field.
#[test]
fn v5_3_1_3_2_will_properties() {
    let will = cat(&[
        &[0x18, 0, 0, 0, 30],
        &[0x01, 1],
        &[0x02, 0, 0, 0, 60],
        &[0x03],
        &s(b"text/plain"),
        &[0x08],
        &s(b"resp/1"),
        &[0x09],
        &s(b"corr"),
        &[0x26],
        &s(b"k"),
        &s(b"v"),
    ]);
    let bytes = v5(0x06, &[], &cat(&[&cid(), &props(&will), &s(b"t"), &s(b"bye")]));
    let w = ok(&bytes).will.unwrap();
    let p = w.properties;
    assert_eq!(p.will_delay_interval, Some(30));
    assert_eq!(p.payload_format, Some(PayloadFormat::Utf8));
    assert_eq!(p.message_expiry_interval, Some(60));
    assert_eq!(p.content_type, Some("text/plain"));
    assert_eq!(p.response_topic, Some("resp/1"));
    assert_eq!(p.correlation_data, Some(&b"corr"[..]));
    assert_eq!(p.user_properties.iter().collect::<Vec<_>>(), [("k", "v")]);
    assert_eq!((w.topic, w.payload), ("t", &b"bye"[..]));
}

/// [5.0 2.2.2.2] A property id that the packet does not allow is malformed: will properties
/// in the CONNECT block, CONNECT properties in the will block, unknown ids anywhere.
#[test]
fn v5_2_2_2_2_property_not_allowed_is_malformed() {
    let e = err(&v5(0x02, &[0x01, 1], &cid()), MALFORMED);
    assert_eq!(e, Error::PropertyNotAllowed { id: 0x01, field: Field::Properties });
    let will = cat(&[&cid(), &props(&[0x11, 0, 0, 0, 1]), &s(b"t"), &s(b"x")]);
    let e = err(&v5(0x06, &[], &will), MALFORMED);
    assert_eq!(e, Error::PropertyNotAllowed { id: 0x11, field: Field::WillProperties });
    for id in [0x00, 0x1f, 0x7f, 0x80, 0xff] {
        let e = err(&v5(0x02, &[id, 0], &cid()), MALFORMED);
        assert_eq!(e, Error::PropertyNotAllowed { id, field: Field::Properties });
    }
}

/// [5.0 2.2.2.2] The CONNACK's own properties, which share the property table, are not
/// allowed in a CONNECT or its will.
#[test]
fn v5_2_2_2_2_connack_properties_are_not_allowed_in_connect() {
    for id in [0x12, 0x13, 0x1a, 0x1c, 0x1f, 0x24, 0x25, 0x28, 0x29, 0x2a] {
        // A value long enough for any type: a byte, two, or a string of length 0.
        let e = err(&v5(0x02, &[id, 0, 0, 0, 0], &cid()), MALFORMED);
        assert_eq!(e, Error::PropertyNotAllowed { id, field: Field::Properties });
        let will = cat(&[&cid(), &props(&[id, 0, 0, 0, 0]), &s(b"t"), &s(b"x")]);
        let e = err(&v5(0x06, &[], &will), MALFORMED);
        assert_eq!(e, Error::PropertyNotAllowed { id, field: Field::WillProperties });
    }
}

/// [5.0 3.1.2.11] Any property but User Property appearing twice is a protocol error.
#[test]
fn v5_3_1_2_11_duplicate_property_is_a_protocol_error() {
    let twice = [0x21, 0, 1, 0x21, 0, 1];
    let e = err(&v5(0x02, &twice, &cid()), PROTOCOL_ERROR);
    assert_eq!(e, Error::DuplicateProperty { property: Property::ReceiveMaximum });
    let will = cat(&[&cid(), &props(&[0x01, 0, 0x01, 0]), &s(b"t"), &s(b"x")]);
    let e = err(&v5(0x06, &[], &will), PROTOCOL_ERROR);
    assert_eq!(e, Error::DuplicateProperty { property: Property::PayloadFormatIndicator });
}

/// [5.0 3.1.2.11.3 / 3.1.2.11.4] Receive Maximum and Maximum Packet Size are never 0.
#[test]
fn v5_3_1_2_11_receive_maximum_and_maximum_packet_size_not_zero() {
    ok(&v5(0x02, &[0x21, 0, 1, 0x27, 0, 0, 0, 1], &cid()));
    for (bytes, property) in
        [(&[0x21, 0, 0][..], Property::ReceiveMaximum), (&[0x27, 0, 0, 0, 0], Property::MaximumPacketSize)]
    {
        let e = err(&v5(0x02, bytes, &cid()), PROTOCOL_ERROR);
        assert_eq!(e, Error::InvalidPropertyValue { property });
    }
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.properties.receive_maximum = Some(0);
    assert_eq!(refused(&connect), Error::InvalidPropertyValue { property: Property::ReceiveMaximum });
    connect.properties.receive_maximum = None;
    connect.properties.maximum_packet_size = Some(0);
    assert_eq!(refused(&connect), Error::InvalidPropertyValue { property: Property::MaximumPacketSize });
}

/// [5.0 3.1.2.11.6 / 3.1.2.11.7 / 3.1.3.2.3] Request Response Information, Request Problem
/// Information and the Payload Format Indicator are 0 or 1.
#[test]
fn v5_3_1_2_11_byte_properties_are_0_or_1() {
    for (id, property) in
        [(0x19, Property::RequestResponseInformation), (0x17, Property::RequestProblemInformation)]
    {
        ok(&v5(0x02, &[id, 1], &cid()));
        let e = err(&v5(0x02, &[id, 2], &cid()), PROTOCOL_ERROR);
        assert_eq!(e, Error::InvalidPropertyValue { property });
    }
    let will = |pfi: u8| cat(&[&cid(), &props(&[0x01, pfi]), &s(b"t"), &s(b"x")]);
    assert_eq!(
        ok(&v5(0x06, &[], &will(0))).will.unwrap().properties.payload_format,
        Some(PayloadFormat::Bytes)
    );
    let e = err(&v5(0x06, &[], &will(2)), PROTOCOL_ERROR);
    assert_eq!(e, Error::InvalidPropertyValue { property: Property::PayloadFormatIndicator });
}

/// [5.0 3.1.2.11.10] Authentication Data without Authentication Method is a protocol error.
#[test]
fn v5_3_1_2_11_authentication_data_needs_a_method() {
    let data = cat(&[&[0x16], &s(b"x")]);
    ok(&v5(0x02, &cat(&[&data, &[0x15], &s(b"m")]), &cid()));
    assert_eq!(err(&v5(0x02, &data, &cid()), PROTOCOL_ERROR), Error::AuthenticationDataWithoutMethod);
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.properties.authentication_data = Some(b"x");
    assert_eq!(refused(&connect), Error::AuthenticationDataWithoutMethod);
}

/// [5.0 2.2.2] The properties fill exactly the block's length.
#[test]
fn v5_2_2_2_properties_fill_the_block_exactly() {
    // The block says 3 bytes but Session Expiry Interval takes 5.
    let mut body = s(b"MQTT");
    body.extend([5, 0x02, 0, 60, 3, 0x11, 0, 0]);
    body.extend(cid());
    let e = err(&frame(&body), MALFORMED);
    assert_eq!(e, Error::Truncated { field: Field::Property(Property::SessionExpiryInterval) });
}

/// [5.0 3.1.3.2.3] A server MAY check that a payload announced as UTF-8 is; offered, not forced.
#[test]
fn v5_3_1_3_2_3_payload_format_check_is_optional() {
    let bytes = v5(0x06, &[], &cat(&[&cid(), &props(&[0x01, 1]), &s(b"t"), &s(&[0xff])]));
    ok(&bytes);
    let e = Decoder::new().check_payload_format(true).decode(&bytes).unwrap_err();
    assert_eq!((e, e.reason_code()), (Error::InvalidPayloadFormat, ReasonCode::PayloadFormatInvalid));
}

/// [5.0 3.1.3.2.3] With Payload Format Indicator 1 "the UTF-8 data in the Payload MUST be
/// well-formed UTF-8": a client must not send anything else, so the encoder refuses to write
/// it (the decoder's check of it stays optional, a server MAY make it).
#[test]
fn v5_3_1_3_2_3_will_payload_announced_as_utf8_must_be_utf8_to_encode() {
    let mut connect = Connect::new(Protocol::V5, "c1");
    let mut will = Will::new("t", b"\xff");
    will.properties.payload_format = Some(PayloadFormat::Utf8);
    connect.will = Some(will);
    let refused = Err(EncodeError::Invalid(Error::InvalidPayloadFormat));
    assert_eq!(connect.encoded_len(), refused);
    assert_eq!(connect.encode(&mut [0; 64]), refused);

    for (format, payload) in [(PayloadFormat::Utf8, &b"caf\xc3\xa9"[..]), (PayloadFormat::Bytes, b"\xff")] {
        let mut will = Will::new("t", payload);
        will.properties.payload_format = Some(format);
        connect.will = Some(will);
        let mut buf = [0; 64];
        let len = connect.encode(&mut buf).unwrap();
        let strict = Decoder::new().check_payload_format(true);
        assert_eq!(strict.decode(&buf[..len]), Ok(Status::Complete { packet: connect, len }));
    }
}

// ---- Answering ----

/// [MQTT-3.1.4-1] A CONNECT that breaks the format is refused and the connection closed: in
/// 3.1.1 without a CONNACK (but for the version and client id codes that 3.1.2-2 and 3.1.3-8
/// ask for), in 5.0 with at most one of 0x80 or above.
#[test]
fn mqtt_3_1_4_1_a_connect_out_of_format_gets_no_3_1_1_connack() {
    let will = |topic: &[u8]| cat(&[&cid(), &s(topic), &s(b"x")]);
    let faults: [(u8, Vec<u8>); 8] = [
        (0x03, cid()),
        (0x02, s(b"\xff")),
        (0x02, cat(&[&cid(), b"x"])),
        (0x1e, will(b"t")),
        (0x06, will(b"t/#")),
        (0x06, will(b"")),
        (0x42, cat(&[&cid(), &s(b"pw")])),
        (0x82, cid()),
    ];
    for (flags, payload) in faults {
        let v311_bad = v311(flags, &payload);
        let e = mqtt_connect::decode(&v311_bad).expect_err("out of format");
        assert_eq!(e.connack(&v311_bad), None, "{e}");
        if flags == 0x42 {
            continue; // 5.0 allows a password alone
        }
        let v5_payload = match flags & 0x04 {
            0 => payload,
            _ => cat(&[&cid(), &props(&[]), &payload[cid().len()..]]),
        };
        let v5_bad = v5(flags, &[], &v5_payload);
        let e = mqtt_connect::decode(&v5_bad).expect_err("out of format");
        let ack = e.connack(&v5_bad).expect("a 5.0 CONNACK");
        assert!(ack.as_bytes()[3] >= 0x80 && ack.as_bytes()[3] == u8::from(e.reason_code()), "{e}");
    }
}

/// [MQTT-4.13.1-1 / 3.1.1 3.2.2.3] A refused CONNECT is answered in the client's version:
/// 5.0 with its reason code, 3.x with its return code where it has one, else a close.
#[test]
fn mqtt_4_13_1_1_connack_in_the_clients_version() {
    let v5_bad = v5(0x03, &[], &cid());
    let e = err(&v5_bad, MALFORMED);
    assert_eq!(e.connack(&v5_bad).unwrap().as_bytes(), [0x20, 0x03, 0x00, 0x81, 0x00]);
    let v3_bad = v311(0x03, &cid());
    assert_eq!(err(&v3_bad, MALFORMED).connack(&v3_bad), None);
    assert_eq!(mqtt_connect::protocol_of(&v3_bad), Some(Protocol::V3_1_1));
    assert_eq!(mqtt_connect::protocol_of(&[0x10, 0x0c, 0x00]), None);
    let too_big = Decoder::new().max_packet_size(8).decode(&v5_bad).unwrap_err();
    assert_eq!(too_big.connack(&v5_bad).unwrap().as_bytes(), [0x20, 0x03, 0x00, 0x95, 0x00]);
    assert_eq!(Protocol::V3_1.connack(ReasonCode::ServerUnavailable).unwrap().as_bytes(), [0x20, 0x02, 0, 3]);
    assert_eq!(
        Protocol::V5.connack(ReasonCode::ServerUnavailable).unwrap().as_bytes(),
        [0x20, 3, 0, 0x88, 0]
    );
}

/// [MQTT-1.5.4-1 / 1.5.7-1] User Property strings are validated one by one, even where the
/// bytes around a string would complete its characters: here a length prefix.
#[test]
fn mqtt_1_5_7_1_user_property_strings_are_each_well_formed() {
    let field = Field::Property(Property::UserProperty);
    let user = |name: &[u8], value: &[u8]| cat(&[&[0x26], &s(name), &s(value)]);
    let long_ascii = vec![b'v'; 0xA900];
    ok(&v5(0x02, &cat(&[&user(b"k", b"v"), &user("é".as_bytes(), &long_ascii)]), &cid()));

    // A name cut after its lead byte 0xC3, then a length of 0xA900 whose first byte would
    // complete "é".
    let e = err(&v5(0x02, &user(&[0xc3], &long_ascii), &cid()), MALFORMED);
    assert_eq!(e, Error::InvalidUtf8 { field });
    // A value that starts with a continuation byte right after a length byte 0xC3.
    let mut value = vec![b'v'; 0xC3];
    value[0] = 0xa9;
    let e = err(&v5(0x02, &user(b"k", &value), &cid()), MALFORMED);
    assert_eq!(e, Error::InvalidUtf8 { field });
}

/// [MQTT-1.5.7-1] A pair of long strings, whose length prefixes (0x012C, 0x012D) hold no
/// zero byte, is read whole: a prefix is neither taken for U+0000 nor for the strings.
#[test]
fn mqtt_1_5_7_1_a_pair_of_long_strings_is_read() {
    let (name, value) = ("n".repeat(300), "v".repeat(301));
    let bytes = v5(0x02, &cat(&[&[0x26], &s(name.as_bytes()), &s(value.as_bytes())]), &cid());
    let pairs: Vec<_> = ok(&bytes).properties.user_properties.iter().collect();
    assert_eq!(pairs, [(&*name, &*value)]);
}

/// [MQTT-1.5.4-2] U+0000 is refused in every User Property string, however the block is laid
/// out: short strings, empty ones, long ones, and pairs that other properties split apart.
#[test]
fn mqtt_1_5_4_2_user_property_strings_must_not_hold_null() {
    let field = Field::Property(Property::UserProperty);
    let user = |name: &[u8], value: &[u8]| cat(&[&[0x26], &s(name), &s(value)]);
    let session_expiry = [0x11, 0, 0, 0, 0];
    let long = vec![b'v'; 200];
    let mut long_null = long.clone();
    long_null[150] = 0;
    let layouts = |a: &[u8], b: &[u8]| {
        [
            cat(&[&user(b"k", b"v"), &user(a, b)]),
            cat(&[&user(a, b), &user(b"", b"")]),
            cat(&[&user(b"k", b""), &session_expiry, &user(a, b)]),
            cat(&[&user(a, b), &user(b"k", &long)]),
        ]
    };
    for good in [(&b"n"[..], &b"v"[..]), (b"", b""), (b"n", &long), (&long, b"")] {
        for block in layouts(good.0, good.1) {
            let bytes = v5(0x02, &block, &cid());
            let packet = ok(&bytes);
            let pairs = packet.properties.user_properties.iter();
            assert!(pairs.map(|(n, v)| (n.as_bytes(), v.as_bytes())).any(|pair| pair == good));
        }
    }
    for bad in [(&b"\0"[..], &b"v"[..]), (b"n", b"\0"), (b"n\0", b""), (b"n", &long_null), (&long_null, b"")]
    {
        for block in layouts(bad.0, bad.1) {
            assert_eq!(err(&v5(0x02, &block, &cid()), MALFORMED), Error::NullCharacter { field });
        }
    }
}

// ---- Framing without decoding ----

/// `Decoder::frame` agrees with `decode` on every prefix: the same wait, the same early
/// error, and the frame's length once it is whole.
#[test]
fn frame_agrees_with_decode_on_every_prefix() {
    let will = cat(&[&cid(), &props(&[]), &s(b"t/will"), &s(b"gone")]);
    let packets = [
        v311(0x02, &cid()),
        v311(0xc2, &cat(&[&cid(), &s(b"bob"), &s(b"pwd")])),
        v5(0x06, &[0x11, 0, 0, 0, 10], &will),
        all_connect_properties(),
        // Faults the frame check sees early, and ones only the decode sees.
        v311(0x03, &cid()),
        v311(0x42, &cid()),
        packet(b"MQTX", 4, 0x02, None, &cid()),
        packet(b"MQTT", 9, 0x02, None, &cid()),
        v311(0x02, &s(b"c\0")),
        v5(0x02, &[0x11, 0, 0], &cid()),
        cat(&[&v311(0x02, &cid()), &[0x30, 0x00]]),
    ];
    let decoder = Decoder::new().max_packet_size(64);
    for packet in &packets {
        for cut in 0..=packet.len() {
            let buf = &packet[..cut];
            let framed = decoder.frame(buf);
            match decoder.decode(buf) {
                Ok(Status::Incomplete(needed)) => {
                    assert_eq!(framed, Ok(Status::Incomplete(needed)), "{buf:x?}")
                }
                Ok(Status::Complete { len, .. }) => {
                    assert_eq!(framed, Ok(Status::Complete { packet: len, len }), "{buf:x?}")
                }
                // A fault inside a whole frame may be one only the decode finds.
                Err(e) => match framed {
                    Ok(Status::Complete { len, .. }) => assert_eq!(decoder.decode(&buf[..len]), Err(e)),
                    other => assert_eq!(other, Err(e), "{buf:x?}"),
                },
            }
        }
    }
}

/// `frame` refuses from the fixed header alone, before the bytes arrive.
#[test]
fn frame_refuses_before_the_frame_is_whole() {
    let decoder = Decoder::new().max_packet_size(1024);
    assert_eq!(decoder.frame(b"\x20"), Err(Error::NotConnect { byte: 0x20 }));
    assert_eq!(decoder.frame(b"\x10\xff\x7f"), Err(Error::PacketTooLarge { size: 16386, limit: 1024 }));
    let reserved = v311(0x03, &cid());
    assert_eq!(decoder.frame(&reserved[..11]), Err(Error::ReservedFlag));
    assert_eq!(decoder.frame(&reserved[..9]), Ok(Status::Incomplete(Needed::Size(7.try_into().unwrap()))));
}

// ---- Two faults: the first on the wire is the one reported ----

/// [MQTT-3.1.3-8] before a truncated User Name: a 3.1 CONNECT with an empty client id and a
/// user name cut short by the frame answers return code 0x02, not a close.
#[test]
fn mqtt_3_1_3_8_empty_3_1_client_id_reported_before_a_truncated_user_name() {
    let bad = packet(b"MQIsdp", 3, 0x82, None, &cat(&[&s(b""), &[0x00, 0x05, b'b']]));
    assert_eq!(err(&bad, CLIENT_ID), Error::EmptyClientId);
    let ack = mqtt_connect::decode(&bad).unwrap_err().connack(&bad).unwrap();
    assert_eq!(ack.as_bytes(), [0x20, 0x02, 0x00, 0x02]);
    // With a will before the user name, the same.
    let with_will = packet(b"MQIsdp", 3, 0x86, None, &cat(&[&s(b""), &s(b"t"), &[0x00, 0x09]]));
    assert_eq!(err(&with_will, CLIENT_ID), Error::EmptyClientId);
}

/// The client id's faults come before those of the string behind it, which 3.x validates
/// in one run with it: [MQTT-1.5.4-2] and [MQTT-3.1.3-8] before [MQTT-1.5.4-1].
#[test]
fn mqtt_1_5_4_client_id_faults_reported_before_the_next_string() {
    let bad_name = &s(&[0xff]);
    let e = err(&v311(0x82, &cat(&[&s(b"c\0"), bad_name])), MALFORMED);
    assert_eq!(e, Error::NullCharacter { field: Field::ClientId });
    let e = err(&v311(0x86, &cat(&[&s(&[0xc3]), &s(b"t\0"), &s(b"")])), MALFORMED);
    assert_eq!(e, Error::InvalidUtf8 { field: Field::ClientId });
    let e = err(&v5(0x82, &[], &cat(&[&s(b"c\0"), bad_name])), MALFORMED);
    assert_eq!(e, Error::NullCharacter { field: Field::ClientId }, "5.0 alike");
    let v31 = packet(b"MQIsdp", 3, 0x82, None, &cat(&[&s(b""), bad_name]));
    assert_eq!(err(&v31, CLIENT_ID), Error::EmptyClientId);
    let e = err(&v311(0x86, &cat(&[&cid(), &s(b"t\0"), &s(b"")])), MALFORMED);
    assert_eq!(e, Error::NullCharacter { field: Field::WillTopic });
    // A client id cut inside a character: the ASCII length prefix after it must not pass it.
    let e = err(&v311(0x82, &cat(&[&s(&[0xe2, 0x82]), &s(b"x")])), MALFORMED);
    assert_eq!(e, Error::InvalidUtf8 { field: Field::ClientId });
    // Short and long second strings read alike, and each fault names its string.
    let long = "é".repeat(100);
    for name in ["", "b", &long[..126], &long[..128], &long] {
        let c_bytes = v311(0x82, &cat(&[&s("ü".as_bytes()), &s(name.as_bytes())]));
        let c = ok(&c_bytes);
        assert_eq!((c.client_id, c.username), ("ü", Some(name)));
        let bad = v311(0x82, &cat(&[&s(b"c"), &s(&[name.as_bytes(), &[0xc3]].concat())]));
        assert_eq!(err(&bad, MALFORMED), Error::InvalidUtf8 { field: Field::Username });
    }
}

/// [MQTT-3.1.2-3] before [MQTT-1.5.4-1]: the reserved flag comes before the strings.
#[test]
fn mqtt_3_1_2_3_reserved_flag_reported_before_bad_utf8() {
    let bad = v311(0x03, &s(&[0xff, 0xfe]));
    assert_eq!(err(&bad, MALFORMED), Error::ReservedFlag);
    let bad = v5(0x83, &[], &cat(&[&cid(), &s(&[0xc3])]));
    assert_eq!(err(&bad, MALFORMED), Error::ReservedFlag);
}

/// [MQTT-1.5.4-1] in a User Property before a duplicate property later in the block: the
/// string is reported, as it comes first.
#[test]
fn mqtt_1_5_4_1_bad_user_property_reported_before_a_later_duplicate() {
    let block = cat(&[&[0x26], &s(b"k"), &s(&[0xff]), &[0x21, 0, 1, 0x21, 0, 1]]);
    let e = err(&v5(0x02, &block, &cid()), MALFORMED);
    assert_eq!(e, Error::InvalidUtf8 { field: Field::Property(Property::UserProperty) });
    let block = cat(&[&[0x21, 0, 1, 0x21, 0, 1], &[0x26], &s(b"k"), &s(&[0xff])]);
    assert_eq!(
        err(&v5(0x02, &block, &cid()), PROTOCOL_ERROR),
        Error::DuplicateProperty { property: Property::ReceiveMaximum }
    );
}

// ---- Control characters (opt-in) ----

/// [5.0 1.5.4, 3.1.1 1.5.3] Control characters SHOULD NOT be sent and a receiver MAY close:
/// off by default; opted in, refused with 0x81 in the strings mosquitto refuses them in.
#[test]
fn mqtt_1_5_4_control_characters_refused_on_request() {
    let strict = Decoder::new().refuse_control_characters(true);
    let refused = |bytes: &[u8], field: Field| {
        mqtt_connect::decode(bytes).expect("accepted by default");
        let e = strict.decode(bytes).unwrap_err();
        assert_eq!(e, Error::ControlCharacter { field });
        assert_eq!(u8::from(e.reason_code()), MALFORMED);
    };
    for c in ["\u{1}", "\u{1f}", "\u{7f}", "\u{80}", "\u{9f}"] {
        let text = format!("a{c}b");
        let t = text.as_bytes();
        refused(&v311(0x02, &s(t)), Field::ClientId);
        refused(&v311(0x82, &cat(&[&cid(), &s(t)])), Field::Username);
        refused(&v311(0x06, &cat(&[&cid(), &s(t), &s(b"")])), Field::WillTopic);
        let will_props = cat(&[&[0x03], &s(t)]);
        let will = cat(&[&cid(), &props(&will_props), &s(b"w"), &s(b"")]);
        refused(&v5(0x06, &[], &will), Field::Property(Property::ContentType));
        let user = cat(&[&[0x26], &s(b"k"), &s(t)]);
        refused(&v5(0x02, &user, &cid()), Field::Property(Property::UserProperty));
        let will_user = cat(&[&cid(), &props(&user), &s(b"w"), &s(b"")]);
        refused(&v5(0x06, &[], &will_user), Field::Property(Property::UserProperty));
    }
    // Not a control character: accepted even when strict.
    for fine in ["tab\u{a0}é", "\u{2028}", "€"] {
        strict.decode(&v311(0x02, &s(fine.as_bytes()))).expect(fine);
    }
    // Password and will payload are binary: never checked.
    strict.decode(&v311(0xc6, &cat(&[&cid(), &s(b"t"), &s(b"\x01"), &s(b"u"), &s(b"\x07")]))).unwrap();
}

// ---- Output fit for logs ----

#[test]
fn protocol_and_reason_code_display_as_the_standard_names_them() {
    assert_eq!(Protocol::V3_1.to_string(), "3.1");
    assert_eq!(Protocol::V3_1_1.to_string(), "3.1.1");
    assert_eq!(Protocol::V5.to_string(), "5.0");
    assert_eq!(ReasonCode::MalformedPacket.to_string(), "Malformed Packet");
    assert_eq!(ReasonCode::ClientIdentifierNotValid.to_string(), "Client Identifier not valid");
    assert_eq!(ReasonCode::QosNotSupported.to_string(), "QoS not supported");
}

#[test]
fn reason_code_from_every_byte() {
    let mut known = 0;
    for byte in 0..=u8::MAX {
        match ReasonCode::try_from(byte) {
            Ok(code) => {
                assert_eq!(u8::from(code), byte);
                known += 1;
            }
            Err(e) => assert_eq!(e, mqtt_connect::UnknownReasonCode(byte)),
        }
    }
    assert_eq!(known, 22, "every CONNACK reason code of MQTT 5");
    assert_eq!(ReasonCode::try_from(0x9F), Ok(ReasonCode::ConnectionRateExceeded));
}

#[test]
fn debug_redacts_secrets_and_prints_binary_as_hex() {
    let auth = cat(&[&[0x15], &s(b"SCRAM"), &[0x16], &s(b"topsecret")]);
    let will_props = props(&cat(&[&[0x09], &s(&[0xde, 0xad])]));
    let payload = cat(&[&cid(), &will_props, &s(b"t/w"), &s(&[0x01, 0xff]), &s(b"bob"), &s(b"hunter2")]);
    let bytes = v5(0xc6, &auth, &payload);
    let shown = format!("{:?}", ok(&bytes));
    assert!(shown.contains("password: Some(<redacted, 7 bytes>)"), "{shown}");
    assert!(shown.contains("authentication_data: Some(<redacted, 9 bytes>)"), "{shown}");
    assert!(shown.contains("payload: 01ff"), "{shown}");
    assert!(shown.contains("correlation_data: Some(dead)"), "{shown}");
    assert!(shown.contains("username: Some(\"bob\")"), "{shown}");
    for secret in ["hunter2", "104, 117", "topsecret"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[test]
fn summary_is_one_line_without_secrets() {
    let auth = cat(&[&[0x15], &s(b"SCRAM"), &[0x16], &s(b"topsecret")]);
    let payload = cat(&[&s(b"c\n1"), &props(&[]), &s(b"t/w"), &s(b"bye"), &s(b"bob"), &s(b"hunter2")]);
    let bytes = v5(0xee, &auth, &payload);
    let line = ok(&bytes).summary().to_string();
    assert_eq!(
        line,
        r#"MQTT 5.0 client_id="c\n1" clean_start keep_alive=60 username="bob" password auth="SCRAM" will="t/w" will_qos=1 will_retain"#
    );
    assert!(!line.contains('\n'));
}

/// A summary debugs as it displays, so that `{:?}` in a log line shows the same one line.
#[test]
fn summary_debugs_as_it_displays() {
    let connect = Connect::new(Protocol::V5, "c1");
    let summary = connect.summary();
    assert_eq!(format!("{summary:?}"), r#"MQTT 5.0 client_id="c1" clean_start keep_alive=60"#);
    assert_eq!(format!("{summary:?}"), summary.to_string());
}

/// A 3.x CONNECT has no property blocks: the encoder refuses will properties in one, rather
/// than drop them.
#[test]
fn the_encoder_refuses_will_properties_in_a_3_x_connect() {
    let mut connect = Connect::new(Protocol::V3_1_1, "c1");
    let mut will = Will::new("t", b"p");
    will.properties.will_delay_interval = Some(5);
    connect.will = Some(will);
    let e = connect.encoded_len().unwrap_err();
    assert_eq!(e, EncodeError::NotInVersion { field: Field::WillProperties });
    assert_eq!(connect.encode(&mut [0; 64]), Err(e));
}
