//! Properties over generated packets: round trips, prefixes, and arbitrary bytes.

use mqtt_connect::{Connect, Error, Field, Needed, Property, Status};
use mqtt_connect_testkit::owned::{self, OwnedConnect};
use mqtt_connect_testkit::wire::{cat, encode, frame, s, v5};
use proptest::prelude::*;

/// Runs `check` on a generated packet and its encoding.
fn with_packet(o: &OwnedConnect, check: impl FnOnce(&Connect<'_>, &[u8])) {
    o.with_borrowed(|c| {
        let bytes = encode(&c);
        check(&c, &bytes);
    });
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_same_connect(o in owned::valid()) {
        with_packet(&o, |c, bytes| {
            assert_eq!(mqtt_connect::decode(bytes), Ok(Status::Complete { packet: *c, len: bytes.len() }));
            assert_eq!(OwnedConnect::from(c), o, "the decoded packet as owned values");
        });
    }

    #[test]
    fn decode_then_encode_gives_the_same_bytes(o in owned::valid()) {
        with_packet(&o, |_, bytes| {
            let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(bytes) else { panic!("decodes") };
            assert_eq!(encode(&packet), bytes);
        });
    }

    #[test]
    fn every_strict_prefix_is_incomplete(o in owned::valid()) {
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
    fn a_changed_byte_never_panics_and_never_overreads(o in owned::valid(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
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
        let bytes = frame(&cat(&[name, &[level], &body]));
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
