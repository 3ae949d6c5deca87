//! The `codec` target: the tokio-util codec over random chunkings agrees with one decode.

use bytes::BytesMut;
use mqtt_connect::codec::{CodecError, ConnectCodec};
use mqtt_connect::{Decoder, OwnedConnect, Status};
use tokio_util::codec::Decoder as _;

/// The first byte of `data` seeds the chunk sizes (1 to 16 bytes); the rest is the stream.
/// Fed chunk by chunk, the codec yields what one `split_from` of the whole stream yields, as
/// soon as the packet is whole and not before, with the same error, and leaves the same rest.
/// A refusal is answered in the version the bytes read so far show: none yet when the fault
/// shows before the level byte (a packet over the cap, from its Remaining Length alone).
pub fn codec(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else { return };
    let decoder = Decoder::new().max_packet_size(4096);
    let mut whole = BytesMut::from(stream);
    let expected = OwnedConnect::split_from(&decoder, &mut whole);

    let mut codec = ConnectCodec::new(decoder);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut state = seed;
    let outcome = loop {
        // A small xorshift over the seed: chunk sizes differ from run to run of the same stream.
        state ^= state << 3;
        state ^= state >> 5;
        let size = usize::from(state % 16) + 1;
        let chunk = &stream[fed..stream.len().min(fed + size)];
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        match codec.decode(&mut buf) {
            Ok(None) if fed < stream.len() => continue,
            other => break other,
        }
    };
    match (expected, outcome) {
        (Ok(Status::Complete { packet, len }), Ok(Some(got))) => {
            assert_eq!(got, packet);
            assert!(fed >= len && fed - len <= 16, "yielded {} bytes after the frame was whole", fed - len);
            assert_eq!(&buf[..], &stream[len..fed], "the bytes after the CONNECT changed");
        }
        (Ok(Status::Incomplete(_)), Ok(None)) => assert_eq!(&buf[..], stream),
        (Err(e), Err(CodecError::Connect { error, connack })) => {
            assert_eq!(error, e);
            assert_eq!(&buf[..], &stream[..fed], "a refusal consumed bytes");
            assert_eq!(connack, e.connack(&buf), "the answer is not the one for the bytes read");
            if connack.is_some() {
                assert_eq!(connack, e.connack(stream), "the answer differs from the whole stream's");
            }
        }
        (expected, outcome) => panic!("one decode gave {expected:?}, the codec {outcome:?}"),
    }
}
