//! The `connack` target: CONNACK decode never panics, and what decodes round-trips.

use mqtt_connect::{ConnackPacket, Protocol, Status};

/// Decodes `data` as the CONNACK of each version. What decodes encodes to bytes that decode to
/// the same packet and encode to the same bytes again: as many bytes in 5.0, at most as many in
/// 3.x, whose Remaining Length may come in a longer form; `Incomplete` keeps its promise.
pub fn connack(data: &[u8]) {
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
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
