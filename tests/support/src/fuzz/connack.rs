//! The `connack` target: CONNACK decode never panics, reports the first fault on the wire,
//! and what decodes round-trips.

use mqtt_connect::{ConnackPacket, Protocol, Status};

use super::connack_faults::{self, Answer};

/// The cap of the capped decode: fuzzed CONNACKs fall on both sides of it.
const CAP: u32 = 64;

/// Inputs up to this long have each of their prefixes held to the model too.
const MAX_PREFIXED: usize = 64;

/// Decodes `data` as the CONNACK of each version. It answers as the model in
/// `connack_faults` does, capped or not: the first fault on the wire when there are several,
/// and on every prefix as soon as the bytes show it. What decodes encodes to bytes that decode
/// to the same packet and encode to the same bytes again: as many bytes in 5.0, at most as
/// many in 3.x, whose Remaining Length may come in a longer form; `Incomplete` keeps its
/// promise.
pub fn connack(data: &[u8]) {
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        first_fault(protocol, data, u32::MAX);
        first_fault(protocol, data, CAP);
        if data.len() <= MAX_PREFIXED {
            for cut in 0..data.len() {
                first_fault(protocol, &data[..cut], u32::MAX);
            }
        }
        match ConnackPacket::decode(protocol, data) {
            Ok(Status::Complete { packet, len }) => {
                assert!(len <= data.len());
                let mut first = vec![0; packet.encoded_len().expect("a decoded CONNACK encodes")];
                let size = packet.encode(&mut first).expect("a decoded CONNACK encodes");
                assert!(
                    // 3.x's Remaining Length may be padded, in a 3.x refusal of a 5.0 CONNECT too.
                    size == len || (packet.protocol != Protocol::V5 && size < len),
                    "re-encoded to {size} bytes, not {len}"
                );
                let Ok(Status::Complete { packet: again, len: again_len }) =
                    ConnackPacket::decode(protocol, &first)
                else {
                    panic!("the re-encoded CONNACK does not decode")
                };
                assert_eq!((again, again_len), (packet, size));
                let mut second = vec![0; size];
                assert_eq!(again.encode(&mut second), Ok(size));
                assert_eq!(first, second, "encoding is not stable");
                assert_eq!(
                    ConnackPacket::decode(protocol, &data[..len]),
                    Ok(Status::Complete { packet, len })
                );
            }
            Ok(Status::Incomplete(mqtt_connect::Needed::Size(n))) => {
                // The promised bytes complete the frame: any byte values give an answer, never a wait.
                let mut longer = data.to_vec();
                if n.get() <= 1 << 16 {
                    longer.resize(data.len() + n.get(), 0);
                    assert!(!matches!(ConnackPacket::decode(protocol, &longer), Ok(Status::Incomplete(_))));
                }
            }
            Ok(Status::Incomplete(mqtt_connect::Needed::Unknown)) | Err(_) => {}
        }
    }
}

/// `ConnackPacket::decode_within` answers `data` as the model does: the same length, a wait,
/// or the same first fault.
fn first_fault(protocol: Protocol, data: &[u8], cap: u32) {
    let decoded = match ConnackPacket::decode_within(protocol, data, cap) {
        Ok(Status::Complete { len, .. }) => Answer::Complete(len),
        Ok(Status::Incomplete(_)) => Answer::Incomplete,
        Err(e) => Answer::Fault(e),
    };
    let model = connack_faults::connack(protocol, data, cap);
    assert_eq!(decoded, model, "{protocol}, cap {cap}: the decoder and the model on {data:02x?}");
}
