//! The `answer` target: the `ConnectCodec`'s answering side, its three CONNACK encoders held
//! to what the CONNECT it decoded asked.
//!
//! A target of its own, not a part of `codec`'s: that one spends its input on a chunk plan
//! and a stream for six decoders, where this needs a whole CONNECT and a CONNACK made beside
//! it, and the fuzzer's coverage of the encoders' few branches would drown in the decoders'.

use bytes::BytesMut;
use mqtt_connect::codec::{CodecError, ConnectCodec};
use mqtt_connect::{
    Connack, ConnackPacket, Decoder, EncodeError, Error, OwnedConnack, OwnedConnect, Protocol, ReasonCode,
    Status,
};
use tokio_util::codec::{Decoder as _, Encoder};

/// What the codec's buffer holds before it writes: a refusal leaves it so, a CONNACK written
/// follows it.
const BEFORE: &[u8] = b"\xa5\xa5\xa5";

/// What a CONNECT asks of the CONNACK that answers it, read off the decoded CONNECT.
#[derive(Clone, Copy, Debug)]
struct Asked {
    protocol: Protocol,
    clean_start: bool,
    /// The Maximum Packet Size a 5.0 client announced, if any.
    max_packet_size: Option<u32>,
    /// Whether the 5.0 CONNECT named an Authentication Method.
    authentication_method: bool,
}

/// The input is a control byte, a reason code byte, then a stream: a CONNECT decoded by a
/// `ConnectCodec`, and after it the bytes of a CONNACK. Without a whole CONNECT the codec has
/// answered none, and the whole stream is the CONNACK's.
///
/// The control byte's bits 0 and 1 pick the version the CONNACK's bytes are read in (3.1,
/// 3.1.1, 5.0, or the CONNECT's); bit 2 flips Session Present; bits 3 and 4 set the version
/// of the `ConnackPacket` (kept, 3.1, 3.1.1, 5.0), and bits 5 and 6 that of the `Connack`
/// (3.1, 3.1.1, 5.0, or the CONNECT's). A CONNACK's bytes that do not decode give a
/// `ConnackPacket` of the code byte, with no properties.
///
/// Each of the three encoders writes the CONNACK exactly when it holds to what the CONNECT
/// asked: the CONNECT's version, or the refusal of an unsupported version in the other's
/// [MQTT-3.1.2-2]; no Session Present after a Clean Start [MQTT-3.2.2-2]; an Authentication
/// Method only when the CONNECT named one [MQTT-4.12.0-6], and in a success when it did
/// [MQTT-4.12.0-5]; within the client's Maximum Packet Size [MQTT-3.1.2-24]; and an encodable
/// packet. Before a CONNECT, it writes
/// any it can encode. What it writes is the packet's bytes, which decode to the CONNACK given,
/// in the CONNECT's version, or the refusal's; what it refuses, it refuses with a fault the
/// CONNACK has, writing nothing.
pub fn answer(data: &[u8]) {
    let [ctl, code, stream @ ..] = data else { return };
    let mut codec = ConnectCodec::new(Decoder::new().max_packet_size(4096));
    let mut buf = BytesMut::from(stream);
    let asked = match codec.decode(&mut buf) {
        Ok(Some(connect)) => Some(asked(&connect)),
        _ => {
            buf = BytesMut::from(stream);
            None
        }
    };
    let connect = asked.map(|a| a.protocol);
    let version = |bits: u8| match bits & 3 {
        0 => Protocol::V3_1,
        1 => Protocol::V3_1_1,
        2 => Protocol::V5,
        _ => connect.unwrap_or(Protocol::V5),
    };
    let read_in = version(*ctl);
    let code = ReasonCode::try_from(*code).ok();

    let decoded = ConnackPacket::decode(read_in, &buf);
    let packet = match decoded {
        Ok(Status::Complete { packet, .. }) => Some(packet),
        _ => code.map(|code| ConnackPacket::new(read_in, code)),
    };
    if let Some(mut packet) = packet {
        packet.session_present ^= ctl & 4 != 0;
        if (ctl >> 3) & 3 != 0 {
            packet.protocol = version((ctl >> 3) - 1);
        }
        connack_packet(codec, asked, packet);
    }
    if let Some(ack) = code.and_then(|code| version(ctl >> 5).connack(code)) {
        connack(codec, asked, ack);
    }
    if let Ok(Status::Complete { packet, .. }) = OwnedConnack::split_from(read_in, &mut buf.clone()) {
        owned(codec, asked, &packet);
    }
}

fn asked(connect: &OwnedConnect) -> Asked {
    Asked {
        protocol: connect.protocol(),
        clean_start: connect.clean_start(),
        max_packet_size: connect.maximum_packet_size(),
        authentication_method: connect.authentication_method().is_some(),
    }
}

/// What a CONNACK is, for the rules between it and the CONNECT.
#[derive(Clone, Copy, Debug)]
struct Ack {
    /// In 5.0's form, with a property block.
    v5: bool,
    /// In the CONNECT's version (`None` before a CONNECT).
    same_version: Option<bool>,
    code: ReasonCode,
    session_present: bool,
    /// Whether it carries an Authentication Method.
    authentication_method: bool,
    /// Its encoded size, or why it cannot be encoded.
    len: Result<usize, EncodeError>,
}

/// Whether `error` is a fault `ack` has against `asked`; every fault it has, in the list.
fn faults(asked: Option<Asked>, ack: &Ack) -> Vec<CodecError> {
    let mut faults = Vec::new();
    if let Err(e) = ack.len {
        faults.push(CodecError::Encode(e));
    }
    let Some(asked) = asked else { return faults };
    // [MQTT-3.1.2-2] The one CONNACK in the other version: its Unsupported Protocol Version.
    let refusal =
        (asked.protocol == Protocol::V5) != ack.v5 && ack.code == ReasonCode::UnsupportedProtocolVersion;
    if ack.same_version != Some(true) && !refusal {
        faults.push(CodecError::ConnackVersion { connect: asked.protocol });
    }
    if asked.clean_start && ack.session_present {
        faults.push(CodecError::Encode(EncodeError::Invalid(Error::SessionPresentAfterCleanStart)));
    }
    if ack.authentication_method && !asked.authentication_method {
        faults.push(CodecError::Encode(EncodeError::Invalid(Error::UnaskedAuthentication)));
    }
    let success = ack.code == ReasonCode::Success;
    if asked.authentication_method && success && !ack.authentication_method {
        faults.push(CodecError::Encode(EncodeError::Invalid(Error::AuthenticationMethodMissing)));
    }
    if let (Ok(len), Some(limit)) = (ack.len, asked.max_packet_size) {
        let size = u32::try_from(len).unwrap_or(u32::MAX);
        if size > limit {
            faults.push(CodecError::Encode(EncodeError::Invalid(Error::PacketTooLarge { size, limit })));
        }
    }
    faults
}

/// Encodes `item` with a copy of `codec` into a buffer holding [`BEFORE`]: the bytes written,
/// or the refusal, which must be one of `faults` and leave the buffer as it was. A CONNACK
/// with no fault is written, within the client's Maximum Packet Size.
fn write<T>(codec: ConnectCodec, item: T, asked: Option<Asked>, ack: &Ack) -> Option<Vec<u8>>
where
    ConnectCodec: Encoder<T, Error = CodecError>,
{
    let faults = faults(asked, ack);
    let mut dst = BytesMut::from(BEFORE);
    let mut codec = codec;
    match codec.encode(item, &mut dst) {
        Ok(()) => {
            assert!(faults.is_empty(), "{asked:?}: wrote {ack:?} with the faults {faults:?}");
            assert_eq!(&dst[..BEFORE.len()], BEFORE, "the bytes before the CONNACK changed");
            let written = dst[BEFORE.len()..].to_vec();
            assert_eq!(ack.len.as_ref().ok(), Some(&written.len()), "{ack:?}: wrote {written:02x?}");
            Some(written)
        }
        Err(e) => {
            assert!(
                faults.iter().any(|f| same(f, &e)),
                "{asked:?}: refused {ack:?} as {e:?}, not one of its faults {faults:?}"
            );
            assert_eq!(&dst[..], BEFORE, "a refusal wrote bytes");
            None
        }
    }
}

/// `CodecError` has no `PartialEq`: the io error it can carry has none.
fn same(a: &CodecError, b: &CodecError) -> bool {
    match (a, b) {
        (CodecError::ConnackVersion { connect: x }, CodecError::ConnackVersion { connect: y }) => x == y,
        (CodecError::Encode(x), CodecError::Encode(y)) => x == y,
        _ => false,
    }
}

/// The version to read what was written in: the CONNECT's, but for the refusal of an
/// unsupported version, which is in its own; before a CONNECT, the CONNACK's own.
fn read_back_in(asked: Option<Asked>, own: Protocol) -> Protocol {
    match asked {
        Some(asked) if (asked.protocol == Protocol::V5) == (own == Protocol::V5) => asked.protocol,
        _ => own,
    }
}

/// `Encoder<ConnackPacket>`: what it writes decodes to the packet given.
fn connack_packet(codec: ConnectCodec, asked: Option<Asked>, ack: ConnackPacket<'_>) {
    let facts = Ack {
        v5: ack.protocol == Protocol::V5,
        same_version: asked.map(|a| a.protocol == ack.protocol),
        code: ack.reason_code,
        session_present: ack.session_present,
        authentication_method: ack.properties.authentication_method.is_some(),
        len: ack.encoded_len(),
    };
    let Some(written) = write(codec, ack, asked, &facts) else { return };
    let read = ConnackPacket::decode(read_back_in(asked, ack.protocol), &written);
    let mut expected = ack;
    expected.reason_code = as_read(ack.protocol, ack.reason_code);
    assert_eq!(read, Ok(Status::Complete { packet: expected, len: written.len() }), "{written:02x?}");
    client_reads(asked, &written, expected.reason_code);
}

/// The code a CONNACK of `protocol` with `code` reads back with: 3.x has one return code for
/// several 5.0 codes, read as the first of them (3 as Server unavailable, 5 as Not authorized).
fn as_read(protocol: Protocol, code: ReasonCode) -> ReasonCode {
    if protocol == Protocol::V5 {
        return code;
    }
    let Some(ack) = Protocol::V3_1_1.connack(code) else { return code };
    match ConnackPacket::decode(Protocol::V3_1_1, ack.as_bytes()) {
        Ok(Status::Complete { packet, .. }) => packet.reason_code,
        _ => code,
    }
}

/// `Encoder<Connack>`: what it writes is the refusal's bytes, which decode to its code, with
/// no Session Present and no properties.
fn connack(codec: ConnectCodec, asked: Option<Asked>, ack: Connack) {
    let v5 = ack.as_bytes().len() == 5;
    let facts = Ack {
        v5,
        same_version: asked.map(|a| (a.protocol == Protocol::V5) == v5),
        code: ack.reason_code(),
        session_present: false,
        authentication_method: false,
        len: Ok(ack.as_bytes().len()),
    };
    let Some(written) = write(codec, ack, asked, &facts) else { return };
    assert_eq!(written, ack.as_bytes());
    let own = if v5 { Protocol::V5 } else { Protocol::V3_1_1 };
    let Ok(Status::Complete { packet, len }) = ConnackPacket::decode(read_back_in(asked, own), &written)
    else {
        panic!("the refusal {written:02x?} does not decode")
    };
    assert_eq!(len, written.len());
    assert!(!packet.session_present && packet.properties == Default::default(), "{packet:?}");
    let again = packet.protocol.connack(packet.reason_code).expect("a decoded code has a CONNACK");
    assert_eq!(again.as_bytes(), ack.as_bytes(), "the refusal reads back as another");
}

/// `Encoder<&OwnedConnack>`: what it writes is the frame, which decodes to the CONNACK.
fn owned(codec: ConnectCodec, asked: Option<Asked>, ack: &OwnedConnack) {
    let facts = Ack {
        v5: ack.protocol() == Protocol::V5,
        same_version: asked.map(|a| a.protocol == ack.protocol()),
        code: ack.reason_code(),
        session_present: ack.session_present(),
        authentication_method: ack.packet().properties.authentication_method.is_some(),
        len: Ok(ack.frame().len()),
    };
    let Some(written) = write(codec, ack, asked, &facts) else { return };
    assert_eq!(written, &ack.frame()[..], "the CONNACK was not forwarded byte for byte");
    let read = ConnackPacket::decode(read_back_in(asked, ack.protocol()), &written);
    assert_eq!(read, Ok(Status::Complete { packet: ack.packet(), len: written.len() }));
    client_reads(asked, &written, ack.reason_code());
}

/// The client reads a CONNACK written after its CONNECT in the version it sent, the refusal
/// in the other version included.
fn client_reads(asked: Option<Asked>, written: &[u8], code: ReasonCode) {
    let Some(asked) = asked else { return };
    let Ok(Status::Complete { packet, len }) = ConnackPacket::decode(asked.protocol, written) else {
        panic!("a {} client cannot read {written:02x?}", asked.protocol)
    };
    assert_eq!((as_read(packet.protocol, packet.reason_code), len), (code, written.len()));
}
