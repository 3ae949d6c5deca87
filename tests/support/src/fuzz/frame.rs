//! The `frame` target: `Decoder::frame` agrees with `Decoder::decode` on every input.

use mqtt_connect::{Decoder, Status};

/// Frames and decodes `data` with the default decoder and a capped one: the same `Incomplete`,
/// the same length, and the same error wherever decode errs before the frame is whole.
pub fn frame(data: &[u8]) {
    for decoder in [Decoder::new(), Decoder::new().max_packet_size(64)] {
        let framed = decoder.frame(data);
        let decoded = decoder.decode(data);
        match (framed, decoded) {
            (Ok(Status::Complete { packet, len }), Ok(Status::Complete { len: decoded_len, .. })) => {
                assert_eq!(
                    (packet, len),
                    (decoded_len, decoded_len),
                    "frame and decode disagree on the length"
                );
            }
            // A fault inside a whole frame: only decode reads that far. The frame alone says the same.
            (Ok(Status::Complete { len, .. }), Err(e)) => {
                assert_eq!(decoder.frame(&data[..len]), Ok(Status::Complete { packet: len, len }));
                assert_eq!(decoder.decode(&data[..len]).map(|_| ()), Err(e), "the fault is inside the frame");
            }
            (Ok(Status::Incomplete(needed)), decoded) => {
                assert_eq!(decoded, Ok(Status::Incomplete(needed)), "frame waits, decode does not");
            }
            (Err(e), decoded) => assert_eq!(decoded.map(|_| ()), Err(e), "frame errs, decode differs"),
            (Ok(Status::Complete { .. }), Ok(Status::Incomplete(_))) => panic!("frame whole, decode waits"),
        }
    }
}
