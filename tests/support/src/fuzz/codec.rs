//! The `codec` target: the tokio-util codecs over random chunkings agree with one decode.

use bytes::BytesMut;
use mqtt_connect::codec::{CodecError, ConnackCodec, ConnectCodec};
use mqtt_connect::{
    ConnackPacket, Connect, Decoder, Error, Needed, OwnedConnack, OwnedConnect, Protocol, Status,
};
use tokio_util::codec::{Decoder as _, Encoder as _};

/// The cap of the capped `ConnackCodec`: fuzzed CONNACKs fall on both sides of it.
const CONNACK_CAP: u32 = 64;

/// The first byte of `data` seeds the chunk sizes (1 to 16 bytes); the rest is the stream,
/// fed to a `ConnectCodec` and to a `ConnackCodec` of each version, with and without a cap, and
/// after a CONNECT with Clean Start.
pub fn codec(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else { return };
    connect_codec(seed, stream);
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        connack_codec(seed, stream, protocol);
    }
}

/// Fed chunk by chunk, the `ConnectCodec` yields what one `split_from` of the whole stream
/// yields, as soon as the packet is whole and not before, with the same error, and leaves the
/// same rest, which it refuses when polled again ([`after_handshake`]). A refusal is answered in the version the bytes read so far show: none yet when
/// the fault shows before the level byte (a packet over the cap, from its Remaining Length
/// alone).
fn connect_codec(seed: u8, stream: &[u8]) {
    let decoder = Decoder::new().max_packet_size(4096);
    let mut whole = BytesMut::from(stream);
    let expected = OwnedConnect::split_from(&decoder, &mut whole);

    let mut codec = ConnectCodec::new(decoder);
    let (outcome, fed, buf) = feed(seed, stream, |buf| codec.decode(buf));
    match (expected, outcome) {
        (Ok(Status::Complete { packet, len }), Ok(Some(got))) => {
            assert_eq!(got, packet);
            assert!(fed >= len && fed - len <= 16, "yielded {} bytes after the frame was whole", fed - len);
            assert_eq!(&buf[..], &stream[len..fed], "the bytes after the CONNECT changed");
            let mut rest = buf.clone();
            after_handshake(&mut rest, 1, |buf| codec.decode(buf));
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

/// Fed chunk by chunk, the `ConnackCodec` yields what one `OwnedConnack::split_from` of the
/// whole stream yields, as the `ConnectCodec` does, and both read back what one decode of the
/// frame gives ([`reads_back`]). Capped at [`CONNACK_CAP`], it refuses a CONNACK over the cap
/// from its fixed header, with the packet's whole size, and otherwise answers exactly as
/// without the cap. A 5.0 AUTH is [`auth`]'s.
fn connack_codec(seed: u8, stream: &[u8], protocol: Protocol) {
    if protocol == Protocol::V5 && stream.first().is_some_and(|byte| byte >> 4 == 0xF) {
        return auth(seed, stream);
    }
    let mut whole = BytesMut::from(stream);
    let expected = OwnedConnack::split_from(protocol, &mut whole);

    let mut codec = ConnackCodec::new(protocol);
    let (outcome, fed, buf) = feed(seed, stream, |buf| codec.decode(buf));
    let outcome = match outcome {
        Ok(ack) => Ok(ack),
        Err(CodecError::Connack(e)) => Err(e),
        Err(e) => panic!("a CONNACK decode failed with {e}"),
    };
    match (&expected, &outcome) {
        (Ok(Status::Complete { packet, len }), Ok(Some(got))) => {
            assert_eq!(got, packet);
            reads_back(protocol, &stream[..*len], got, packet);
            assert!(fed >= *len && fed - len <= 16, "yielded {} bytes after the frame was whole", fed - len);
            assert_eq!(&buf[..], &stream[*len..fed], "the bytes after the CONNACK changed");
        }
        (Ok(Status::Incomplete(_)), Ok(None)) => assert_eq!(&buf[..], stream),
        (Err(e), Err(error)) => {
            assert_eq!(error, e);
            assert_eq!(&buf[..], &stream[..fed], "a refusal consumed bytes");
        }
        (expected, outcome) => panic!("{protocol}: one decode gave {expected:?}, the codec {outcome:?}"),
    }

    let mut capped = ConnackCodec::new(protocol).max_packet_size(CONNACK_CAP);
    let (capped_outcome, capped_fed, capped_buf) = feed(seed, stream, |buf| capped.decode(buf));
    match capped_outcome {
        Err(CodecError::Connack(Error::PacketTooLarge { size, limit })) => {
            assert!(limit == CONNACK_CAP && size > limit, "refused {size} bytes as over a cap of {limit}");
            assert_eq!(&capped_buf[..], &stream[..capped_fed], "a refusal consumed bytes");
            // The fixed header takes at most 5 bytes, and the chunk that completes it at most
            // 15 more.
            assert!(capped_fed <= 20, "refused after {capped_fed} bytes, not from the fixed header");
            let size = usize::try_from(size).unwrap();
            match expected {
                Ok(Status::Complete { len, .. }) => assert_eq!(len, size, "the size is not the packet's"),
                Ok(Status::Incomplete(Needed::Size(n))) => {
                    assert_eq!(stream.len() + n.get(), size, "the size is not the one announced")
                }
                _ => {}
            }
        }
        Ok(capped_outcome) => {
            assert_eq!(Ok(capped_outcome), outcome, "{protocol}: a cap of {CONNACK_CAP} changed the answer");
            assert_eq!((capped_fed, &capped_buf[..]), (fed, &buf[..]));
            if let Ok(Status::Complete { len, .. }) = expected {
                assert!(
                    len <= CONNACK_CAP as usize,
                    "a CONNACK of {len} bytes passed a cap of {CONNACK_CAP}"
                );
            }
        }
        Err(CodecError::Connack(e)) => {
            assert_eq!(Err(e), outcome, "{protocol}: a cap of {CONNACK_CAP} changed the answer");
            assert_eq!((capped_fed, &capped_buf[..]), (fed, &buf[..]));
        }
        Err(e) => panic!("a CONNACK decode failed with {e}"),
    }

    clean_start(seed, stream, protocol, &outcome, fed);
}

/// A 5.0 stream that starts with an AUTH: from its first chunk, with nothing consumed, every
/// `ConnackCodec` leaves it to the caller, capped or not, unless the CONNECT it wrote named no
/// Authentication Method, when the AUTH is refused [MQTT-4.12.0-6].
fn auth(seed: u8, stream: &[u8]) {
    let mut unasked = ConnackCodec::new(Protocol::V5);
    unasked.encode(Connect::new(Protocol::V5, "fuzz"), &mut BytesMut::new()).expect("the CONNECT is written");
    let mut codecs = [
        ConnackCodec::new(Protocol::V5),
        ConnackCodec::new(Protocol::V5).max_packet_size(CONNACK_CAP),
        unasked,
    ];
    for (i, codec) in codecs.iter_mut().enumerate() {
        let (outcome, fed, buf) = feed(seed, stream, |buf| codec.decode(buf));
        assert!(fed <= 16, "an AUTH taken as one after {fed} bytes, not from its first");
        assert_eq!(&buf[..], &stream[..fed], "an AUTH consumed bytes");
        match outcome {
            Err(CodecError::Auth) if i < 2 => {}
            Err(CodecError::Connack(Error::UnaskedAuthentication)) if i == 2 => {}
            outcome => panic!("an AUTH to codec {i}: {outcome:?}"),
        }
    }
}

/// After a CONNECT with Clean Start and no Authentication Method, the `ConnackCodec` answers as
/// one that wrote none, but refuses a whole CONNACK with Session Present [MQTT-3.2.2-2], or with
/// an Authentication Method [MQTT-4.12.0-6]; and once it has yielded a CONNACK, it refuses the
/// next from its first byte [MQTT-3.2.0-2], and any other packet after it.
fn clean_start(
    seed: u8,
    stream: &[u8],
    protocol: Protocol,
    plain: &Result<Option<OwnedConnack>, Error>,
    fed: usize,
) {
    let mut connect = Connect::new(protocol, "fuzz");
    connect.clean_start = true;
    let mut codec = ConnackCodec::new(protocol);
    codec.encode(connect, &mut BytesMut::new()).expect("the CONNECT is written");
    let (outcome, clean_fed, mut buf) = feed(seed, stream, |buf| codec.decode(buf));
    assert_eq!(clean_fed, fed, "{protocol}: a clean start changed where the answer came");
    match (plain, outcome) {
        (Ok(Some(ack)), Err(CodecError::Connack(Error::SessionPresentAfterCleanStart))) => {
            assert!(ack.session_present(), "{protocol}: refused a CONNACK without Session Present");
        }
        (Ok(Some(ack)), Err(CodecError::Connack(Error::UnaskedAuthentication))) => {
            assert!(!ack.session_present(), "{protocol}: refused Session Present as authentication");
            assert!(method(ack), "{protocol}: refused a CONNACK without an Authentication Method");
        }
        (Ok(Some(ack)), Ok(Some(got))) => {
            assert!(!ack.session_present(), "{protocol}: took Session Present after a clean start");
            assert!(!method(ack), "{protocol}: took an Authentication Method it did not ask for");
            assert_eq!(&got, ack);
            after_handshake(&mut buf, 2, |buf| codec.decode(buf));
        }
        (plain, Ok(outcome)) => {
            assert_eq!(plain, &Ok(outcome), "{protocol}: a clean start changed the answer")
        }
        (plain, Err(CodecError::Connack(e))) => {
            assert_eq!(plain, &Err(e), "{protocol}: a clean start changed the answer");
        }
        (_, Err(e)) => panic!("{protocol}: a CONNACK decode failed with {e}"),
    }
}

/// A codec polled again after its packet, with `buf` what followed it: a second packet of its
/// `kind` is refused as the standard says, any other as past the handshake, both with nothing
/// taken; nothing waits.
fn after_handshake<T: std::fmt::Debug>(
    buf: &mut BytesMut,
    kind: u8,
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, CodecError>,
) {
    let before = buf.clone();
    let next = decode(buf);
    match buf.first().map(|byte| byte >> 4) {
        None => assert!(matches!(next, Ok(None)), "nothing after the packet: {next:?}"),
        Some(1) if kind == 1 => assert!(matches!(next, Err(CodecError::SecondConnect)), "{next:?}"),
        Some(2) if kind == 2 => assert!(matches!(next, Err(CodecError::SecondConnack)), "{next:?}"),
        Some(_) => assert!(matches!(next, Err(CodecError::AfterHandshake)), "{next:?}"),
    }
    assert_eq!(buf, &before, "a packet after the handshake's was taken");
}

/// An `OwnedConnack` fed in chunks (`chunked`) and one split off the whole stream (`whole`)
/// read back from their frame what one decode of it gives, User Properties included. Their
/// equality compares frames only; this checks the properties each keeps beside its frame.
fn reads_back(protocol: Protocol, frame: &[u8], chunked: &OwnedConnack, whole: &OwnedConnack) {
    let Ok(Status::Complete { packet, .. }) = ConnackPacket::decode(protocol, frame) else {
        panic!("{protocol}: the CONNACK's frame does not decode alone")
    };
    assert_eq!(whole.packet(), packet, "{protocol}: split whole, the CONNACK reads back otherwise");
    assert_eq!(chunked.packet(), packet, "{protocol}: fed in chunks, the CONNACK reads back otherwise");
}

/// Whether the CONNACK carries an Authentication Method.
fn method(ack: &OwnedConnack) -> bool {
    ack.packet().properties.authentication_method.is_some()
}

/// Feeds `stream` to `decode` 1 to 16 bytes at a time, the sizes drawn from `seed`, until it
/// yields, errs, or has the whole stream: that answer, how many bytes it was fed, and what is
/// left in its buffer.
fn feed<T, E>(
    seed: u8,
    stream: &[u8],
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, E>,
) -> (Result<Option<T>, E>, usize, BytesMut) {
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
        match decode(&mut buf) {
            Ok(None) if fed < stream.len() => continue,
            other => break other,
        }
    };
    (outcome, fed, buf)
}
