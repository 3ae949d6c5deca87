// The CONNACK rewrite, with no dependency but the crate: the test-support crate includes this
// file to fuzz it (tests/support/src/connack_rewrite.rs), as an example is not a library.

use mqtt_connect::{ConnackPacket, Protocol, ReasonCode, Status};

/// The property id of Assigned Client Identifier.
const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;

/// The broker's 5.0 CONNACK in `frame` with `id` added as its Assigned Client Identifier, or
/// `None` when it is to be forwarded untouched: not one whole, valid CONNACK, a refusal, or one
/// that assigns an id itself.
///
/// Everything else stays byte for byte: the crate's encoder writes the fixed header, flags,
/// code and the two lengths, the broker's properties follow in its own order, and the new
/// property comes last. (Encoding the whole packet would put the properties in id order, which
/// is not the broker's.)
pub fn add_assigned_id(frame: &[u8], id: &str) -> Option<Vec<u8>> {
    let Ok(Status::Complete { packet, len }) = ConnackPacket::decode(Protocol::V5, frame) else {
        return None;
    };
    if len != frame.len()
        || packet.reason_code != ReasonCode::Success
        || packet.properties.assigned_client_identifier.is_some()
    {
        return None;
    }
    let mut assigned = packet;
    assigned.properties.assigned_client_identifier = Some(id);
    let mut out = vec![0; assigned.encoded_len().ok()?];
    assigned.encode(&mut out).ok()?;

    let kept = properties(frame)?;
    let id_len = u16::try_from(id.len()).ok()?;
    let header = out.len().checked_sub(kept.len() + 3 + id.len())?;
    out.truncate(header);
    out.extend_from_slice(kept);
    out.push(ASSIGNED_CLIENT_IDENTIFIER);
    out.extend_from_slice(&id_len.to_be_bytes());
    out.extend_from_slice(id.as_bytes());

    // The same packet as the encoder's, or nothing is changed.
    match ConnackPacket::decode(Protocol::V5, &out) {
        Ok(Status::Complete { packet, len }) if packet == assigned && len == out.len() => Some(out),
        _ => None,
    }
}

/// The property bytes of a 5.0 CONNACK the decoder took: what follows the fixed header, the
/// flags, the code and the property length. Both lengths end at their first byte below 0x80.
fn properties(frame: &[u8]) -> Option<&[u8]> {
    let varint_end = |from: usize| Some(from + frame.get(from..)?.iter().position(|b| b & 0x80 == 0)? + 1);
    let flags = varint_end(1)?;
    frame.get(varint_end(flags + 2)?..)
}
