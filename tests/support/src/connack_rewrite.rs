//! What the `connack_rewrite` fuzz target checks: the proxy example's CONNACK rewrite for
//! sticky client ids (`examples/proxy/sticky/connack.rs`). For any bytes a broker sends first,
//! the client receives the same packet plus exactly one Assigned Client Identifier, the broker's
//! bytes kept as they were, or the original bytes untouched when there is nothing to add to.
//!
//! An example is not a library, so the rewrite is included here as source; it depends on
//! nothing but the crate.

use mqtt_connect::{ConnackPacket, Protocol, ReasonCode, Status};

mod rewrite {
    include!("../../../examples/proxy/sticky/connack.rs");
}

/// The property id of Assigned Client Identifier.
const ASSIGNED: u8 = 0x12;

/// The `connack_rewrite` target: the first byte sets the id's length (0 to 510 bytes, so that
/// the lengths cross a byte of their Variable Byte Integers), the rest is the broker's bytes.
pub fn check(data: &[u8]) {
    let Some((&n, frame)) = data.split_first() else { return };
    let id = "x".repeat(usize::from(n) * 2);
    let original = ConnackPacket::decode(Protocol::V5, frame);
    let takes_an_id = match original {
        Ok(Status::Complete { packet, len }) => {
            len == frame.len()
                && packet.reason_code == ReasonCode::Success
                && packet.properties.assigned_client_identifier.is_none()
        }
        _ => false,
    };
    let Some(sent) = rewrite::add_assigned_id(frame, &id) else {
        assert!(!takes_an_id, "a success CONNACK without an id was left untouched: {frame:x?}");
        return;
    };
    assert!(takes_an_id, "rewrote what takes no id: {frame:x?}");
    let Ok(Status::Complete { packet: before, .. }) = original else { unreachable!("checked above") };
    let Ok(Status::Complete { packet: after, len }) = ConnackPacket::decode(Protocol::V5, &sent) else {
        panic!("the rewrite does not decode: {sent:x?}");
    };
    assert_eq!(len, sent.len(), "one whole packet");
    let mut expected = before;
    expected.properties.assigned_client_identifier = Some(&id);
    assert_eq!(after, expected, "the same packet plus the id (the decoder refuses a second one)");

    // Byte for byte: the broker's property bytes, then the new property, last.
    let mut added = vec![ASSIGNED];
    added.extend_from_slice(&u16::try_from(id.len()).expect("short id").to_be_bytes());
    added.extend_from_slice(id.as_bytes());
    let (flags, properties) = layout(frame);
    let (new_flags, new_properties) = layout(&sent);
    let tail = [&frame[properties..], &added].concat();
    assert!(sent.ends_with(&tail), "the broker's properties as sent, then the id: {frame:x?} -> {sent:x?}");
    assert_eq!(new_properties + tail.len(), sent.len(), "nothing else in the property block");
    assert_eq!(sent[new_flags..][..2], frame[flags..][..2], "flags and code");
}

/// Where a decoded 5.0 CONNACK's flags byte and its properties start: after the type and the
/// Remaining Length, and after the flags, the code and the property length.
fn layout(frame: &[u8]) -> (usize, usize) {
    let varint = |at: usize| frame[at..].iter().position(|b| b & 0x80 == 0).expect("a whole varint") + 1;
    let flags = 1 + varint(1);
    (flags, flags + 2 + varint(flags + 2))
}
