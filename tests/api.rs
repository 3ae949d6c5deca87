//! The public value types carry the traits a user keys, compares, copies and sends them by.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::num::NonZeroUsize;

use mqtt_connect::{
    Connack, Connect, Decoder, EncodeError, Error, Needed, Property, Protocol, Status, UserProperties,
};

fn value<T: Copy + Eq + Hash + Debug + Send + Sync + 'static>() {}

#[test]
fn statuses_errors_the_decoder_and_a_connack_are_plain_values() {
    value::<Status<usize>>();
    value::<Needed>();
    value::<Error>();
    value::<EncodeError>();
    value::<Decoder>();
    value::<Connack>();
}

/// A server that reads many connections counts how far each partial read got, keyed by the
/// decoder's answer.
#[test]
fn a_frame_status_keys_a_map() {
    let decoder = Decoder::new();
    let mut seen = HashMap::<Status<usize>, usize>::new();
    for input in [&b""[..], b"\x10", b"\x10\x0c", b"\x10\x0c\x00\x04"] {
        *seen.entry(decoder.frame(input).unwrap()).or_default() += 1;
    }
    assert_eq!(seen.get(&Status::Incomplete(Needed::Unknown)), Some(&2));
    assert_eq!(seen.get(&Status::Incomplete(Needed::Size(NonZeroUsize::new(12).unwrap()))), Some(&1));
    assert_eq!(seen.get(&Status::Incomplete(Needed::Size(NonZeroUsize::new(10).unwrap()))), Some(&1));
}

/// A CONNECT 5.0 carrying `pairs` as its User Properties, encoded: decoding it gives them back
/// as the wire form, which reads the block's bytes.
fn v5_with_user_properties(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.properties.session_expiry_interval = Some(5);
    connect.properties.user_properties = UserProperties::new(pairs);
    let mut buf = vec![0; connect.encoded_len().unwrap()];
    connect.encode(&mut buf).unwrap();
    buf
}

fn decoded_user_properties(bytes: &[u8]) -> UserProperties<'_> {
    let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(bytes) else { panic!("decodes") };
    packet.properties.user_properties
}

const PAIRS: [(&str, &str); 3] = [("tenant", "acme"), ("region", "eu"), ("tenant", "other")];

#[test]
fn user_properties_are_empty_exactly_when_they_hold_no_pair() {
    assert!(UserProperties::new(&[]).is_empty());
    assert!(UserProperties::default().is_empty());
    assert!(!UserProperties::new(&PAIRS[..1]).is_empty());
    let none = v5_with_user_properties(&[]);
    assert!(decoded_user_properties(&none).is_empty(), "another property is not a User Property");
    let one = v5_with_user_properties(&PAIRS[..1]);
    assert!(!decoded_user_properties(&one).is_empty());
}

#[test]
fn user_properties_from_a_slice_of_pairs_hold_those_pairs() {
    let props = UserProperties::from(&PAIRS[..]);
    assert_eq!(props.iter().collect::<Vec<_>>(), PAIRS);
}

#[test]
fn user_properties_compare_by_their_pairs_in_order() {
    let bytes = v5_with_user_properties(&PAIRS);
    assert_eq!(decoded_user_properties(&bytes), UserProperties::new(&PAIRS), "wire and pairs alike");
    let reordered = [PAIRS[1], PAIRS[0], PAIRS[2]];
    assert_ne!(UserProperties::new(&PAIRS), UserProperties::new(&reordered), "same length, other order");
    assert_ne!(decoded_user_properties(&bytes), UserProperties::new(&PAIRS[..2]), "a prefix");
}

#[test]
fn user_properties_debug_as_a_list_of_pairs() {
    let want = r#"[("tenant", "acme"), ("region", "eu"), ("tenant", "other")]"#;
    assert_eq!(format!("{:?}", UserProperties::new(&PAIRS)), want);
    let bytes = v5_with_user_properties(&PAIRS);
    assert_eq!(format!("{:?}", decoded_user_properties(&bytes)), want);
}

#[test]
fn a_user_properties_iterator_knows_how_many_pairs_are_left() {
    let bytes = v5_with_user_properties(&PAIRS);
    for props in [UserProperties::new(&PAIRS), decoded_user_properties(&bytes)] {
        let mut it = props.iter();
        assert_eq!(it.len(), 3);
        assert_eq!(it.size_hint(), (3, Some(3)));
        it.next();
        assert_eq!(it.len(), 2);
        it.by_ref().for_each(drop);
        assert_eq!(it.size_hint(), (0, Some(0)));
    }
}

/// Errors and logs name a property as the MQTT 5 standard does (its table in section 2.2.2.2),
/// with its id.
#[test]
fn a_property_is_named_as_the_standard_names_it() {
    let names = [
        (Property::PayloadFormatIndicator, 0x01, "Payload Format Indicator"),
        (Property::MessageExpiryInterval, 0x02, "Message Expiry Interval"),
        (Property::ContentType, 0x03, "Content Type"),
        (Property::ResponseTopic, 0x08, "Response Topic"),
        (Property::CorrelationData, 0x09, "Correlation Data"),
        (Property::SessionExpiryInterval, 0x11, "Session Expiry Interval"),
        (Property::AssignedClientIdentifier, 0x12, "Assigned Client Identifier"),
        (Property::ServerKeepAlive, 0x13, "Server Keep Alive"),
        (Property::AuthenticationMethod, 0x15, "Authentication Method"),
        (Property::AuthenticationData, 0x16, "Authentication Data"),
        (Property::RequestProblemInformation, 0x17, "Request Problem Information"),
        (Property::WillDelayInterval, 0x18, "Will Delay Interval"),
        (Property::RequestResponseInformation, 0x19, "Request Response Information"),
        (Property::ResponseInformation, 0x1A, "Response Information"),
        (Property::ServerReference, 0x1C, "Server Reference"),
        (Property::ReasonString, 0x1F, "Reason String"),
        (Property::ReceiveMaximum, 0x21, "Receive Maximum"),
        (Property::TopicAliasMaximum, 0x22, "Topic Alias Maximum"),
        (Property::MaximumQos, 0x24, "Maximum QoS"),
        (Property::RetainAvailable, 0x25, "Retain Available"),
        (Property::UserProperty, 0x26, "User Property"),
        (Property::MaximumPacketSize, 0x27, "Maximum Packet Size"),
        (Property::WildcardSubscriptionAvailable, 0x28, "Wildcard Subscription Available"),
        (Property::SubscriptionIdentifiersAvailable, 0x29, "Subscription Identifiers Available"),
        (Property::SharedSubscriptionAvailable, 0x2A, "Shared Subscription Available"),
    ];
    for (property, id, name) in names {
        assert_eq!((property.id(), property.name()), (id, name));
    }
    assert_eq!(Property::ReceiveMaximum.to_string(), "Receive Maximum (0x21)");
    let duplicate = Error::DuplicateProperty { property: Property::ReceiveMaximum };
    assert_eq!(duplicate.to_string(), "property Receive Maximum (0x21) appears twice");
}
