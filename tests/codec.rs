//! The tokio-util codecs over real loopback TCP: the CONNECT read once, what follows handed
//! back untouched, refusals answered in the client's version, and the CONNACK both ways.
#![cfg(feature = "tokio-util")]

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use mqtt_connect::codec::{CodecError, ConnackCodec, ConnectCodec};
use mqtt_connect::{ConnackPacket, Connect, Decoder, Error, OwnedConnect, Protocol, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder as _, Framed, FramedRead};

/// A connected pair of loopback sockets: (client, server).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    client.set_nodelay(true).unwrap();
    (client, server)
}

/// Runs a loopback test to its end, or fails it after ten seconds: a packet that never comes
/// would otherwise leave the test waiting for ever, where it should fail.
async fn within<T>(test: impl std::future::Future<Output = T>) -> T {
    let deadline = std::time::Duration::from_secs(10);
    tokio::time::timeout(deadline, test).await.expect("the test hung: a packet never came")
}

/// The module docs' read, word for word.
async fn read_connect(client: TcpStream) -> Result<(OwnedConnect, TcpStream, BytesMut), CodecError> {
    let mut framed = FramedRead::new(client, ConnectCodec::new(Decoder::new().max_packet_size(64 * 1024)));
    let connect = match framed.next().await {
        Some(Ok(connect)) => connect,
        Some(Err(e)) => {
            // Refuse in the client's own version, when it has one, then drop the connection.
            if let Some(ack) = e.connack() {
                framed.get_mut().write_all(ack.as_bytes()).await?;
            }
            return Err(e);
        }
        None => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
    };
    let parts = framed.into_parts(); // the socket, and the bytes pipelined after the CONNECT
    Ok((connect, parts.io, parts.read_buf))
}

fn connect_bytes(client_id: &str) -> Vec<u8> {
    let mut connect = Connect::new(Protocol::V5, client_id);
    connect.username = Some("alice");
    let mut buf = BytesMut::new();
    connect.encode_to(&mut buf).unwrap();
    buf.to_vec()
}

#[tokio::test]
async fn a_connect_in_pieces_then_pipelined_bytes_then_the_rest_of_the_stream() {
    within(async {
        let (mut client, server) = pair().await;
        let connect = connect_bytes("sensor-1");
        let pingreq = [0xc0u8, 0x00];
        let writer = tokio::spawn(async move {
            // The CONNECT in three writes, the last one carrying a pipelined PINGREQ.
            let (a, rest) = connect.split_at(3);
            let (b, c) = rest.split_at(7);
            for part in [a, b] {
                client.write_all(part).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            client.write_all(&[c, &pingreq[..]].concat()).await.unwrap();
            client.write_all(b"later").await.unwrap();
            client.shutdown().await.unwrap();
            connect
        });
        let (owned, mut io, pipelined) = read_connect(server).await.unwrap();
        let sent = writer.await.unwrap();
        assert_eq!(owned.client_id(), "sensor-1");
        assert_eq!(owned.username(), Some("alice"));
        assert_eq!(owned.frame(), &sent[..]);
        // Whatever the codec read past the CONNECT comes back untouched, then the socket goes on.
        let mut rest = pipelined.to_vec();
        io.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, [&pingreq[..], b"later"].concat());
    })
    .await
}

#[tokio::test]
async fn a_refused_connect_is_answered_in_the_clients_version() {
    within(async {
        let (mut client, server) = pair().await;
        // 5.0, reserved flag set.
        client.write_all(b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00").await.unwrap();
        let err = read_connect(server).await.unwrap_err();
        assert!(matches!(err, CodecError::Connect { error: Error::ReservedFlag, .. }), "{err}");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, [0x20, 0x03, 0x00, 0x81, 0x00]);
    })
    .await
}

#[tokio::test]
async fn a_connection_closed_mid_connect_is_an_io_error() {
    within(async {
        let (mut client, server) = pair().await;
        client.write_all(&connect_bytes("c")[..5]).await.unwrap();
        client.shutdown().await.unwrap();
        let err = read_connect(server).await.unwrap_err();
        // tokio-util's own end-of-stream error is of kind `Other`, "bytes remaining on stream".
        assert!(matches!(&err, CodecError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof), "{err}");
        assert_eq!(err.to_string(), "the stream ended inside the CONNECT, after 5 bytes of it");
        assert_eq!(err.connack(), None);
    })
    .await
}

/// A CONNACK the stream ends inside is an `UnexpectedEof` too; a stream that ends between
/// packets, or after the CONNACK, is no error.
#[test]
fn a_connack_the_stream_ends_inside_is_an_unexpected_eof() {
    let connect = Connect::new(Protocol::V3_1_1, "c");
    let mut codec = ConnackCodec::new(Protocol::V3_1_1);
    tokio_util::codec::Encoder::encode(&mut codec, connect, &mut BytesMut::new()).unwrap();
    let mut cut = BytesMut::from(&b"\x20\x02\x00"[..]);
    let err = codec.decode_eof(&mut cut).unwrap_err();
    assert!(matches!(&err, CodecError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof), "{err}");
    assert_eq!(err.to_string(), "the stream ended inside the CONNACK, after 3 bytes of it");
    assert!(codec.decode_eof(&mut BytesMut::new()).unwrap().is_none(), "nothing left: the end of the stream");
    let mut whole = BytesMut::from(&b"\x20\x02\x00\x00"[..]);
    assert!(codec.decode_eof(&mut whole).unwrap().is_some());
    assert!(codec.decode_eof(&mut whole).unwrap().is_none(), "after the CONNACK");
}

#[tokio::test]
async fn a_proxy_forwards_the_connect_and_reads_the_brokers_connack() {
    within(async {
        let (client_side, proxy_in) = pair().await;
        let (proxy_out, broker_side) = pair().await;
        let mut client = client_side;
        client.write_all(&connect_bytes("c7")).await.unwrap();

        // The broker: reads the CONNECT through its codec, accepts with a Server Keep Alive.
        let broker = tokio::spawn(async move {
            let mut framed = Framed::new(broker_side, ConnectCodec::default());
            let connect = framed.next().await.unwrap().unwrap();
            let mut ack = ConnackPacket::new(connect.protocol(), ReasonCode::Success);
            ack.properties.server_keep_alive = Some(20);
            ack.properties.assigned_client_identifier = Some("from-broker");
            framed.send(ack).await.unwrap();
            connect.client_id().to_owned()
        });

        // The proxy: reads the CONNECT, forwards its frame, reads the CONNACK back.
        let (connect, _client_io, _) = read_connect(proxy_in).await.unwrap();
        let mut upstream = Framed::new(proxy_out, ConnackCodec::new(connect.protocol()));
        upstream.send(&connect).await.unwrap();
        let ack = upstream.next().await.unwrap().unwrap();
        assert_eq!(broker.await.unwrap(), "c7");
        assert_eq!(ack.reason_code(), ReasonCode::Success);
        assert!(!ack.session_present());
        assert_eq!(ack.packet().properties.server_keep_alive, Some(20));
        assert_eq!(ack.packet().properties.assigned_client_identifier, Some("from-broker"));
    })
    .await
}

#[test]
fn a_packet_over_the_cap_is_refused_before_its_version_is_known() {
    // A 5.0 CONNECT announcing 10,879 bytes to a 4 KiB cap: refused from the Remaining Length.
    let stream = b"\x10\xff\x54\x00\x04MQTT\x05\x04\x0a";
    let mut codec = ConnectCodec::new(Decoder::new().max_packet_size(4096));
    let mut buf = BytesMut::from(&stream[..3]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        CodecError::Connect { error: Error::PacketTooLarge { size: 10_882, limit: 4096 }, .. }
    ));
    // Nothing says which version to answer in yet, so the server just closes...
    assert_eq!(err.connack(), None);
    assert_eq!(&buf[..], &stream[..3]);
    // ...where with the level byte read it answers 0x95 in 5.0.
    let mut buf = BytesMut::from(&stream[..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert_eq!(err.connack().unwrap().as_bytes(), [0x20, 0x03, 0x00, 0x95, 0x00]);
}

#[test]
fn the_decoder_reserves_what_the_packet_still_needs() {
    let bytes = connect_bytes("reserve");
    let mut codec = ConnectCodec::default();
    let mut buf = BytesMut::from(&bytes[..4]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() >= bytes.len());
    assert_eq!(&buf[..], &bytes[..4]);
}

/// A Remaining Length is only a claim: five bytes announcing 256 MiB must not make either codec
/// allocate 256 MiB (here with no cap on either, their default). What is reserved ahead is
/// bounded; past it the buffer grows with the bytes that arrive.
#[test]
fn the_codecs_reserve_ahead_no_more_than_a_bound_whatever_the_length_announced() {
    const BOUND: usize = 64 * 1024;
    let mut buf = BytesMut::from(&b"\x10\xff\xff\xff\x7f"[..]);
    assert!(ConnectCodec::default().decode(&mut buf).unwrap().is_none());
    let ahead = buf.capacity() - buf.len();
    assert!(ahead <= BOUND, "reserved {ahead} bytes ahead for a CONNECT's announcement");
    let mut buf = BytesMut::from(&b"\x20\xff\xff\xff\x7f\x00\x00"[..]);
    assert!(ConnackCodec::new(Protocol::V5).decode(&mut buf).unwrap().is_none());
    let ahead = buf.capacity() - buf.len();
    assert!(ahead <= BOUND, "reserved {ahead} bytes ahead for a CONNACK's announcement");
}

#[test]
fn the_connack_codec_refuses_a_bad_connack() {
    let mut codec = ConnackCodec::new(Protocol::V3_1_1);
    let mut buf = BytesMut::from(&b"\x20\x02\x01\x05"[..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Connack(mqtt_connect::Error::SessionPresentWithError { code: 5 })));
}

#[test]
fn the_connect_codec_encodes_a_refusal() {
    use tokio_util::codec::Encoder;
    let mut buf = BytesMut::new();
    let ack = Protocol::V3_1_1.connack(ReasonCode::NotAuthorized).unwrap();
    ConnectCodec::default().encode(ack, &mut buf).unwrap();
    assert_eq!(&buf[..], [0x20, 0x02, 0x00, 0x05]);
    let mut codec = ConnackCodec::new(Protocol::V3_1_1);
    let ack = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(ack.reason_code(), ReasonCode::NotAuthorized);
    assert!(buf.is_empty());
}

/// A 5.0 CONNACK of `size` bytes in all, 8 to 129: the flags, the code, and a Reason String
/// that fills the rest.
fn connack_of_size(size: usize) -> Vec<u8> {
    let mut ack = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
    let reason = "r".repeat(size - 8);
    ack.properties.reason_string = Some(&reason);
    let mut buf = BytesMut::new();
    ack.encode_to(&mut buf).unwrap();
    assert_eq!(buf.len(), size);
    buf.to_vec()
}

/// [MQTT-3.1.2-24] A server must not send a packet over the Maximum Packet Size the client
/// announced; the client takes one as a Packet too large (0x95). The `ConnackCodec`'s cap
/// counts the whole packet, fixed header included, as the CONNECT decoder's does, and refuses
/// from the fixed header alone, before the body arrives.
#[test]
fn mqtt_3_1_2_24_a_connack_over_the_codecs_cap_is_refused_from_its_header() {
    let mut codec = ConnackCodec::new(Protocol::V5).max_packet_size(64);
    let mut buf = BytesMut::from(&connack_of_size(64)[..]);
    // On a copy: the codec takes one CONNACK a connection.
    assert!({ codec }.decode(&mut buf).unwrap().is_some(), "a CONNACK of exactly the cap");
    let over = connack_of_size(65);
    let mut buf = BytesMut::from(&over[..2]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Connack(Error::PacketTooLarge { size: 65, limit: 64 })), "{err}");
    if let CodecError::Connack(e) = err {
        assert_eq!(e.reason_code(), ReasonCode::PacketTooLarge);
    }
    assert_eq!(&buf[..], &over[..2], "a refusal consumes nothing");
    // 256 MiB announced: refused at once, nothing reserved for it.
    let mut buf = BytesMut::from(&b"\x20\xff\xff\xff\x7f"[..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Connack(Error::PacketTooLarge { size: 268_435_460, limit: 64 })));
    // 3.x too: a cap below a 3.x CONNACK's 4 bytes refuses it.
    let mut buf = BytesMut::from(&b"\x20\x02\x00\x00"[..]);
    let err = ConnackCodec::new(Protocol::V3_1_1).max_packet_size(3).decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Connack(Error::PacketTooLarge { size: 4, limit: 3 })));
}

/// [MQTT-3.1.2-24] The `ConnackCodec` that writes a 5.0 CONNECT announcing a Maximum Packet
/// Size holds the CONNACK to it, unless a lower cap was set; the CONNECT as a `Connect` or
/// forwarded as an `OwnedConnect`.
#[test]
fn mqtt_3_1_2_24_the_connack_codec_caps_at_the_maximum_packet_size_its_connect_announced() {
    use tokio_util::codec::Encoder;
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.properties.maximum_packet_size = Some(64);
    let mut wire = BytesMut::new();
    connect.encode_to(&mut wire).unwrap();
    let Ok(mqtt_connect::Status::Complete { packet: owned, .. }) =
        OwnedConnect::decode(&Decoder::new(), &wire.clone().freeze())
    else {
        panic!("the CONNECT decodes")
    };
    let over = connack_of_size(65);

    // Uncapped, or capped higher: the CONNECT's 64 becomes the cap.
    for codec in [ConnackCodec::new(Protocol::V5), ConnackCodec::new(Protocol::V5).max_packet_size(4096)] {
        let mut by_value = codec;
        by_value.encode(connect, &mut BytesMut::new()).unwrap();
        let mut forwarded = codec;
        forwarded.encode(&owned, &mut BytesMut::new()).unwrap();
        for mut codec in [by_value, forwarded] {
            let mut buf = BytesMut::from(&connack_of_size(64)[..]);
            // On a copy: the codec takes one CONNACK a connection.
            assert!({ codec }.decode(&mut buf).unwrap().is_some());
            let mut buf = BytesMut::from(&over[..]);
            let err = codec.decode(&mut buf).unwrap_err();
            assert!(
                matches!(err, CodecError::Connack(Error::PacketTooLarge { size: 65, limit: 64 })),
                "{err}"
            );
        }
    }
    // Capped lower: the lower cap stays.
    let mut codec = ConnackCodec::new(Protocol::V5).max_packet_size(32);
    codec.encode(connect, &mut BytesMut::new()).unwrap();
    let mut buf = BytesMut::from(&connack_of_size(64)[..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Connack(Error::PacketTooLarge { size: 64, limit: 32 })), "{err}");
    // A CONNECT without the property leaves the codec uncapped.
    let mut codec = ConnackCodec::new(Protocol::V5);
    codec.encode(Connect::new(Protocol::V5, "c2"), &mut BytesMut::new()).unwrap();
    let mut buf = BytesMut::from(&b"\x20\xff\xff\xff\x7f"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
}

/// The codec reads the CONNACK that answers the CONNECT it wrote, in that CONNECT's version,
/// whatever version it was made with: a 5.0 CONNACK is three bytes of body where 3.1.1's is
/// exactly two, so read in the wrong version a good answer is refused, or a bad one taken.
#[test]
fn the_connack_codec_reads_the_connack_in_the_version_of_the_connect_it_wrote() {
    use tokio_util::codec::Encoder;
    let v5 = Connect::new(Protocol::V5, "c1");
    let mut wire = BytesMut::new();
    v5.encode_to(&mut wire).unwrap();
    let Ok(mqtt_connect::Status::Complete { packet: owned, .. }) =
        OwnedConnect::decode(&Decoder::new(), &wire.freeze())
    else {
        panic!("the CONNECT decodes")
    };
    let mut by_value = ConnackCodec::new(Protocol::V3_1_1);
    by_value.encode(v5, &mut BytesMut::new()).unwrap();
    let mut forwarded = ConnackCodec::new(Protocol::V3_1_1);
    forwarded.encode(&owned, &mut BytesMut::new()).unwrap();
    for mut codec in [by_value, forwarded] {
        let mut buf = BytesMut::from(&b"\x20\x03\x00\x00\x00"[..]);
        let ack = codec.decode(&mut buf).unwrap().expect("a whole 5.0 CONNACK");
        assert_eq!(ack.packet().reason_code, ReasonCode::Success);
        assert!(buf.is_empty());
    }
}

/// The `ConnectCodec` encodes CONNACKs: its encode error must not say a CONNECT failed.
#[test]
fn an_encode_error_names_no_packet_it_was_not_encoding() {
    use tokio_util::codec::Encoder;
    let mut ack = ConnackPacket::new(Protocol::V3_1_1, ReasonCode::Success);
    ack.properties.server_keep_alive = Some(20); // a property, which 3.1.1 cannot carry
    let mut buf = BytesMut::new();
    let err = ConnectCodec::default().encode(ack, &mut buf).unwrap_err();
    assert_eq!(err.to_string(), "packet not encoded: CONNACK properties: not in this protocol version");
    assert!(buf.is_empty());
}

/// A proxy forwards what it read as it was read: the client's CONNECT upstream through the
/// `ConnackCodec`, the broker's CONNACK back through the `ConnectCodec`; each by value (as
/// `framed.send(packet)` takes it) or by reference, byte for byte.
#[test]
fn the_codecs_forward_owned_packets_by_value_and_by_reference() {
    use tokio_util::codec::Encoder;
    let wire = connect_bytes("c9");
    let Ok(mqtt_connect::Status::Complete { packet: connect, .. }) =
        OwnedConnect::decode(&Decoder::new(), &bytes::Bytes::from(wire.clone()))
    else {
        panic!("the CONNECT decodes")
    };
    let mut upstream = ConnackCodec::new(Protocol::V3_1_1);
    let mut out = BytesMut::new();
    upstream.encode(&connect, &mut out).unwrap();
    upstream.encode(connect, &mut out).unwrap();
    assert_eq!(&out[..], [&wire[..], &wire[..]].concat());

    // The broker's 5.0 answer, read in the version of the CONNECT forwarded.
    let answer = connack_of_size(12);
    let ack = upstream.decode(&mut BytesMut::from(&answer[..])).unwrap().unwrap();
    let mut downstream = ConnectCodec::default();
    let mut out = BytesMut::new();
    downstream.encode(&ack, &mut out).unwrap();
    downstream.encode(ack, &mut out).unwrap();
    assert_eq!(&out[..], [&answer[..], &answer[..]].concat());
}

/// Code that speaks `io::Result` takes a `CodecError` with `?`, as it takes tokio-util's own
/// codecs' errors: the socket's error as it was, a packet's fault as `InvalidData` that still
/// carries the `CodecError`, and with it the CONNACK to send.
#[test]
fn a_codec_error_converts_to_an_io_error() {
    fn read(buf: &mut BytesMut) -> std::io::Result<Option<OwnedConnect>> {
        Ok(ConnectCodec::default().decode(buf)?)
    }
    let mut buf = BytesMut::from(&b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00"[..]);
    let err = read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(err.to_string(), "invalid CONNECT: Connect Flags: reserved bit is set");
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<CodecError>()).unwrap();
    assert_eq!(inner.connack().unwrap().as_bytes(), [0x20, 0x03, 0x00, 0x81, 0x00]);

    let closed = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    let err = std::io::Error::from(CodecError::from(closed));
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(err.get_ref().is_none(), "the socket's error comes back as it was, not wrapped");
}

/// The codecs and their error go where tokio takes them: into spawned tasks, and the error
/// into `Box<dyn Error + Send + Sync>` (and so `io::Error` and `anyhow`); the codecs copy.
#[test]
fn the_codecs_and_their_error_are_send_sync_and_static() {
    fn codec<T: Copy + std::fmt::Debug + Send + Sync + 'static>() {}
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    codec::<ConnectCodec>();
    codec::<ConnackCodec>();
    error::<CodecError>();
}

/// [MQTT-3.1.0-2] A second CONNECT from the client is a Protocol Error, on which the server
/// closes: the `ConnectCodec` that yielded a CONNECT refuses the next, with nothing consumed
/// and no CONNACK to send (the first was answered already), at the end of the stream too.
#[test]
fn mqtt_3_1_0_2_a_second_connect_is_refused() {
    let connect = connect_bytes("twice");
    let mut buf = BytesMut::from(&[&connect[..], &connect[..]].concat()[..]);
    let mut codec = ConnectCodec::default();
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap().client_id(), "twice");
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::SecondConnect), "{err}");
    assert_eq!(err.connack(), None);
    assert_eq!(&buf[..], &connect[..]);
    // From its first byte, before the rest arrives, and at the end of the stream.
    let mut buf = BytesMut::from(&connect[..1]);
    assert!(matches!(codec.decode(&mut buf), Err(CodecError::SecondConnect)));
    assert!(matches!(codec.decode_eof(&mut buf), Err(CodecError::SecondConnect)));
    // A fresh codec takes it: the refusal is the connection's, not the packet's.
    assert!(ConnectCodec::default().decode(&mut BytesMut::from(&connect[..])).unwrap().is_some());
}

/// [MQTT-3.2.2-2] (3.1.1 [MQTT-3.2.2-1]) A server that accepts a Clean Start (3.1.1: Clean
/// Session) sets Session Present to 0; a client, which has thrown its session state away, closes
/// on a 1 (5.0 [MQTT-3.2.2-4]). The `ConnackCodec` knows the CONNECT it wrote, so it refuses such
/// a CONNACK; without a clean start, or before it has written a CONNECT, Session Present is the
/// broker's to say.
#[test]
fn mqtt_3_2_2_2_session_present_answering_a_clean_start_is_refused() {
    use tokio_util::codec::Encoder;
    for (protocol, present) in
        [(Protocol::V3_1_1, &b"\x20\x02\x01\x00"[..]), (Protocol::V5, &b"\x20\x03\x01\x00\x00"[..])]
    {
        let mut clean = Connect::new(protocol, "c1");
        clean.clean_start = true;
        let mut codec = ConnackCodec::new(protocol);
        codec.encode(clean, &mut BytesMut::new()).unwrap();
        let err = codec.decode(&mut BytesMut::from(present)).unwrap_err();
        assert!(
            matches!(err, CodecError::Connack(Error::SessionPresentAfterCleanStart)),
            "{protocol}: {err}"
        );
        assert_eq!(err.to_string(), "invalid CONNACK: Session Present answers a clean start", "{protocol}");

        let mut resumed = Connect::new(protocol, "c1");
        resumed.clean_start = false;
        let mut codec = ConnackCodec::new(protocol);
        codec.encode(resumed, &mut BytesMut::new()).unwrap();
        let ack = codec.decode(&mut BytesMut::from(present)).unwrap().expect("whole");
        assert!(ack.packet().session_present, "{protocol}: a session resumed");

        let unknown = ConnackCodec::new(protocol).decode(&mut BytesMut::from(present));
        assert!(unknown.unwrap().is_some(), "{protocol}: no CONNECT written, nothing to hold it to");
    }
}

/// Polled again after its packet, a codec leaves the next packet to the caller, and says so:
/// a client's PUBLISH was refused as an invalid CONNECT, a server's as an invalid CONNACK.
#[test]
fn a_codec_polled_past_its_packet_refuses_the_next_and_leaves_it() {
    let publish = b"\x30\x05\x00\x01tab";
    let mut buf = BytesMut::from(&[&connect_bytes("eager")[..], &publish[..]].concat()[..]);
    let mut codec = ConnectCodec::default();
    assert!(codec.decode(&mut buf).unwrap().is_some());
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::AfterHandshake), "{err}");
    assert_eq!((err.connack(), &buf[..]), (None, &publish[..]), "nothing to answer, nothing taken");
    let mut buf = BytesMut::from(&[&b"\x20\x03\x00\x00\x00"[..], &publish[..]].concat()[..]);
    let mut codec = ConnackCodec::new(Protocol::V5);
    assert!(codec.decode(&mut buf).unwrap().is_some());
    assert!(matches!(codec.decode(&mut buf), Err(CodecError::AfterHandshake)));
    assert_eq!(&buf[..], &publish[..]);
    // An empty buffer waits, as before a packet.
    assert!(codec.decode(&mut BytesMut::new()).unwrap().is_none());
}

/// [MQTT-3.2.0-2] A server sends one CONNACK on a connection: the `ConnackCodec` that yielded
/// one refuses the next, from its first byte, with nothing consumed.
#[test]
fn mqtt_3_2_0_2_a_second_connack_is_refused() {
    let connack = b"\x20\x03\x00\x00\x00";
    let mut buf = BytesMut::from(&[&connack[..], &connack[..]].concat()[..]);
    let mut codec = ConnackCodec::new(Protocol::V5);
    assert!(codec.decode(&mut buf).unwrap().is_some());
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::SecondConnack), "{err}");
    assert_eq!(err.to_string(), "a second CONNACK on the connection");
    assert_eq!(&buf[..], &connack[..]);
    let mut buf = BytesMut::from(&connack[..1]);
    assert!(matches!(codec.decode(&mut buf), Err(CodecError::SecondConnack)));
    // A fresh codec takes it: the refusal is the connection's, not the packet's.
    assert!(ConnackCodec::new(Protocol::V5).decode(&mut BytesMut::from(&connack[..])).unwrap().is_some());
}

/// An Authentication Method property, "SCRAM-SHA-1", as a 5.0 property block holds it.
const SCRAM: &[u8] = b"\x15\x00\x0bSCRAM-SHA-1";

/// A 5.0 packet: `first`, the Remaining Length, `head`, then the property block `props`.
fn v5_packet(first: u8, head: &[u8], props: &[u8]) -> Vec<u8> {
    let body = [head, &[props.len() as u8], props].concat();
    [&[first, body.len() as u8][..], &body].concat()
}

/// A `ConnackCodec` that has written a 5.0 CONNECT, with `SCRAM` as its Authentication Method
/// or with none.
fn wrote_connect(method: bool) -> ConnackCodec {
    use tokio_util::codec::Encoder;
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.properties.authentication_method = method.then_some("SCRAM-SHA-1");
    let mut codec = ConnackCodec::new(Protocol::V5);
    codec.encode(connect, &mut BytesMut::new()).unwrap();
    codec
}

/// [MQTT-4.12.0-6] A server that was sent no Authentication Method begins no enhanced
/// authentication: it sends no AUTH packet, and no Authentication Method in its CONNACK. The
/// `ConnackCodec` that wrote such a CONNECT refuses either, a Protocol Error, the AUTH from its
/// first byte with nothing consumed; after a CONNECT with a method, both are the server's to
/// send. In 3.x, type 15 is no packet at all.
#[test]
fn mqtt_4_12_0_6_no_authentication_the_connect_did_not_ask_for() {
    let auth = v5_packet(0xF0, &[0x18], SCRAM);
    for bytes in [&auth[..], &auth[..1]] {
        let mut buf = BytesMut::from(bytes);
        let err = wrote_connect(false).decode(&mut buf).unwrap_err();
        assert!(matches!(err, CodecError::Connack(Error::UnaskedAuthentication)), "{err}");
        assert_eq!(
            err.to_string(),
            "invalid CONNACK: the server began an enhanced authentication the CONNECT did not ask for"
        );
        assert_eq!(&buf[..], bytes);
    }
    assert_eq!(Error::UnaskedAuthentication.reason_code(), ReasonCode::ProtocolError);

    let ack = v5_packet(0x20, &[0x00, 0x00], SCRAM);
    let mut buf = BytesMut::from(&[&ack[..], b"\x30"].concat()[..]);
    let err = wrote_connect(false).decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Connack(Error::UnaskedAuthentication)), "{err}");
    assert_eq!(&buf[..], b"\x30", "a whole CONNACK refused is taken off the buffer");
    // Asked for, the AUTH is the caller's, left in the buffer.
    let mut buf = BytesMut::from(&auth[..]);
    assert!(matches!(wrote_connect(true).decode(&mut buf), Err(CodecError::Auth)));
    assert_eq!(&buf[..], &auth[..]);
    let taken = wrote_connect(true).decode(&mut BytesMut::from(&ack[..])).unwrap().expect("whole");
    assert_eq!(taken.packet().properties.authentication_method, Some("SCRAM-SHA-1"));
    // A CONNACK without a method answers a CONNECT without one.
    let plain = v5_packet(0x20, &[0x00, 0x00], &[]);
    assert!(wrote_connect(false).decode(&mut BytesMut::from(&plain[..])).unwrap().is_some());

    let err = ConnackCodec::new(Protocol::V3_1_1).decode(&mut BytesMut::from(&auth[..])).unwrap_err();
    assert!(matches!(err, CodecError::Connack(Error::NotConnack { byte: 0xF0 })), "{err}");
}

/// [MQTT-4.12.0-5] A successful CONNACK to a CONNECT that named an Authentication Method
/// carries it: the `ConnackCodec` that wrote one refuses a success without, a Protocol Error,
/// taken off the buffer. A refusal needs none, and a codec that wrote a CONNECT without a method,
/// or none, takes a success without.
#[test]
fn mqtt_4_12_0_5_a_successful_connack_carries_the_authentication_method_the_connect_named() {
    let bare = v5_packet(0x20, &[0x00, 0x00], &[]);
    let mut buf = BytesMut::from(&[&bare[..], b"\x30"].concat()[..]);
    let err = wrote_connect(true).decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Connack(Error::AuthenticationMethodMissing)), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid CONNACK: a successful CONNACK without the Authentication Method the CONNECT named"
    );
    assert_eq!(&buf[..], b"\x30", "a whole CONNACK refused is taken off the buffer");
    assert_eq!(Error::AuthenticationMethodMissing.reason_code(), ReasonCode::ProtocolError);

    let with = v5_packet(0x20, &[0x00, 0x00], SCRAM);
    assert!(wrote_connect(true).decode(&mut BytesMut::from(&with[..])).unwrap().is_some());
    // Bad authentication method (0x8C): a refusal, which carries none.
    let refusal = v5_packet(0x20, &[0x00, 0x8C], &[]);
    let ack = wrote_connect(true).decode(&mut BytesMut::from(&refusal[..])).unwrap().expect("whole");
    assert_eq!(ack.reason_code(), ReasonCode::BadAuthenticationMethod);
    assert!(wrote_connect(false).decode(&mut BytesMut::from(&bare[..])).unwrap().is_some());
    let unknown = ConnackCodec::new(Protocol::V5).decode(&mut BytesMut::from(&bare[..]));
    assert!(unknown.unwrap().is_some(), "no CONNECT written, nothing to hold it to");
}

/// An AUTH before the CONNACK, after a CONNECT that named an Authentication Method (or from a
/// codec that wrote no CONNECT, and cannot tell), is `CodecError::Auth` from its first byte,
/// and stays whole in the read buffer: the caller answers it and reads the CONNACK with a new
/// codec, here over loopback TCP.
#[tokio::test]
async fn an_auth_before_the_connack_is_left_in_the_buffer_for_the_caller() {
    within(async {
        let auth = v5_packet(0xF0, &[0x18], SCRAM);
        let mut buf = BytesMut::from(&auth[..1]);
        assert!(matches!(ConnackCodec::new(Protocol::V5).decode(&mut buf), Err(CodecError::Auth)));
        assert_eq!(&buf[..], &auth[..1]);

        let (client, mut server) = pair().await;
        let mut framed = Framed::new(client, ConnackCodec::new(Protocol::V5));
        let mut connect = Connect::new(Protocol::V5, "c1");
        connect.properties.authentication_method = Some("SCRAM-SHA-1");
        framed.send(connect).await.unwrap();
        let ack = v5_packet(0x20, &[0x00, 0x00], SCRAM);
        let mut got = BytesMut::new();
        let connect = loop {
            server.read_buf(&mut got).await.unwrap();
            if let mqtt_connect::Status::Complete { packet, .. } = mqtt_connect::decode(&got).unwrap() {
                break packet;
            }
        };
        assert_eq!(connect.properties.authentication_method, Some("SCRAM-SHA-1"));
        server.write_all(&auth).await.unwrap();

        let err = framed.next().await.unwrap().unwrap_err();
        assert!(matches!(err, CodecError::Auth), "{err}");
        assert_eq!(
            err.to_string(),
            "an AUTH packet before the CONNACK: enhanced authentication is the caller's"
        );
        let mut parts = framed.into_parts();
        while parts.read_buf.len() < auth.len() {
            parts.io.read_buf(&mut parts.read_buf).await.unwrap();
        }
        assert_eq!(&parts.read_buf.split_to(auth.len())[..], &auth[..]);

        // The caller answers the AUTH, the server accepts: the CONNACK, read by the codec resumed
        // from its parts.
        parts.io.write_all(&auth).await.unwrap();
        server.write_all(&ack).await.unwrap();
        let mut framed = Framed::from_parts(parts);
        let connack = framed.next().await.unwrap().unwrap();
        assert_eq!(connack.packet().properties.authentication_method, Some("SCRAM-SHA-1"));
    })
    .await
}

/// The codec an AUTH stopped is as it was: resumed once the caller has taken the AUTH off the
/// buffer, it still holds the CONNACK to the CONNECT it wrote, here its Clean Start.
#[test]
fn a_codec_resumed_after_an_auth_still_holds_the_connack_to_its_connect() {
    let auth = v5_packet(0xF0, &[0x18], SCRAM);
    let present = v5_packet(0x20, &[0x01, 0x00], SCRAM);
    let mut codec = wrote_connect(true);
    let mut buf = BytesMut::from(&[&auth[..], &present[..]].concat()[..]);
    assert!(matches!(codec.decode(&mut buf), Err(CodecError::Auth)));
    let _ = buf.split_to(auth.len());
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Connack(Error::SessionPresentAfterCleanStart)), "{err}");
}

/// Once the `ConnectCodec` has yielded a CONNECT, it writes the CONNACK only in that CONNECT's
/// version, which its client reads it in, whatever form the CONNACK takes: a packet, a refusal,
/// a broker's owned answer. Unsupported Protocol Version may come in 5.0's form too
/// [MQTT-3.1.2-2]; before a CONNECT, any refusal goes.
#[test]
fn the_connect_codec_writes_the_connack_in_the_version_of_the_connect() {
    use tokio_util::codec::Encoder;
    let v311 = b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1";
    let mut codec = ConnectCodec::default();
    assert!(codec.decode(&mut BytesMut::from(&v311[..])).unwrap().is_some());
    let mut out = BytesMut::new();

    let v5_ack = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
    let err = codec.encode(v5_ack, &mut out).unwrap_err();
    assert!(matches!(err, CodecError::ConnackVersion { connect: Protocol::V3_1_1 }), "{err}");
    assert_eq!(err.to_string(), "a CONNACK in another version than the CONNECT's, 3.1.1");
    let err = codec.encode(ConnackPacket::new(Protocol::V3_1, ReasonCode::Success), &mut out).unwrap_err();
    assert!(matches!(err, CodecError::ConnackVersion { .. }), "{err}");
    let err = codec.encode(Protocol::V5.connack(ReasonCode::NotAuthorized).unwrap(), &mut out).unwrap_err();
    assert!(matches!(err, CodecError::ConnackVersion { .. }), "{err}");
    let Ok(mqtt_connect::Status::Complete { packet: owned, .. }) = mqtt_connect::OwnedConnack::split_from(
        Protocol::V5,
        &mut BytesMut::from(&b"\x20\x03\x00\x00\x00"[..]),
    ) else {
        panic!("the CONNACK decodes")
    };
    assert!(matches!(codec.encode(&owned, &mut out), Err(CodecError::ConnackVersion { .. })));
    assert!(out.is_empty(), "a refused CONNACK was written");

    codec.encode(ConnackPacket::new(Protocol::V3_1_1, ReasonCode::Success), &mut out).unwrap();
    codec.encode(Protocol::V3_1.connack(ReasonCode::NotAuthorized).unwrap(), &mut out).unwrap();
    codec.encode(Protocol::V5.connack(ReasonCode::UnsupportedProtocolVersion).unwrap(), &mut out).unwrap();
    assert_eq!(&out[..], b"\x20\x02\x00\x00\x20\x02\x00\x05\x20\x03\x00\x84\x00");

    // And the other way: a 3.1.1 server refuses a 5.0 client's version in 3.1.1's form
    // [MQTT-3.1.2-2], and so does a proxy that forwards its answer; no other 3.x code.
    let v5 = b"\x10\x0d\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x00";
    let mut codec = ConnectCodec::default();
    assert!(codec.decode(&mut BytesMut::from(&v5[..])).unwrap().is_some());
    let not_authorized_v3 = Protocol::V3_1_1.connack(ReasonCode::NotAuthorized).unwrap();
    let err = codec.encode(not_authorized_v3, &mut BytesMut::new()).unwrap_err();
    assert!(matches!(err, CodecError::ConnackVersion { connect: Protocol::V5 }), "{err}");
    let mut refusal = BytesMut::new();
    let unsupported_v3 = Protocol::V3_1_1.connack(ReasonCode::UnsupportedProtocolVersion).unwrap();
    codec.encode(unsupported_v3, &mut refusal).unwrap();
    let Ok(mqtt_connect::Status::Complete { packet: brokers, .. }) =
        mqtt_connect::OwnedConnack::split_from(Protocol::V5, &mut BytesMut::from(&b"\x20\x02\x00\x01"[..]))
    else {
        panic!("a 3.1.1 broker's refusal of a 5.0 CONNECT decodes")
    };
    codec.encode(&brokers, &mut refusal).unwrap();
    assert_eq!(&refusal[..], b"\x20\x02\x00\x01\x20\x02\x00\x01");

    let mut fresh = ConnectCodec::default();
    fresh.encode(Protocol::V5.connack(ReasonCode::MalformedPacket).unwrap(), &mut out).unwrap();
    fresh.encode(&owned, &mut out).unwrap();
}

/// [MQTT-3.1.2-2] (3.1.1) A 3.1.1 broker refuses a 5.0 CONNECT in 3.1.1's form: the client's
/// codec yields that refusal, in 3.1.1, where it failed as malformed.
#[test]
fn mqtt_3_1_2_2_the_connack_codec_yields_a_3_1_1_brokers_refusal_of_a_5_0_connect() {
    use tokio_util::codec::Encoder;
    let mut codec = ConnackCodec::new(Protocol::V5);
    codec.encode(mqtt_connect::Connect::new(Protocol::V5, "c1"), &mut BytesMut::new()).unwrap();
    let ack = codec.decode(&mut BytesMut::from(&b"\x20\x02\x00\x01"[..])).unwrap().expect("whole");
    assert_eq!(
        (ack.protocol(), ack.reason_code()),
        (Protocol::V3_1_1, ReasonCode::UnsupportedProtocolVersion)
    );
}

/// A `ConnectCodec` that has yielded `connect`.
fn server_after(connect: Connect<'_>) -> ConnectCodec {
    let mut bytes = BytesMut::new();
    connect.encode_to(&mut bytes).unwrap();
    let mut codec = ConnectCodec::default();
    assert!(codec.decode(&mut bytes).unwrap().is_some());
    codec
}

/// The CONNACK a `ConnectCodec` refuses to write after `connect`, in its three forms: the
/// fault, the same for each, with nothing written.
fn refused_in_every_form(connect: Connect<'_>, ack: ConnackPacket<'_>) -> Error {
    use tokio_util::codec::Encoder;
    let mut out = BytesMut::new();
    let invalid = |err: CodecError| match err {
        CodecError::Encode(mqtt_connect::EncodeError::Invalid(e)) => e,
        err => panic!("{err}"),
    };
    let fault = invalid(server_after(connect).encode(ack, &mut out).unwrap_err());
    let mut bytes = BytesMut::new();
    ack.encode_to(&mut bytes).unwrap();
    let Ok(mqtt_connect::Status::Complete { packet: owned, .. }) =
        mqtt_connect::OwnedConnack::split_from(ack.protocol, &mut bytes)
    else {
        panic!("the CONNACK decodes");
    };
    assert_eq!(invalid(server_after(connect).encode(&owned, &mut out).unwrap_err()), fault, "forwarded");
    // `Connack` has no properties: it stands for a packet that has none.
    if let Some(refusal) = ack
        .protocol
        .connack(ack.reason_code)
        .filter(|_| ack == ConnackPacket::new(ack.protocol, ack.reason_code))
    {
        assert_eq!(invalid(server_after(connect).encode(refusal, &mut out).unwrap_err()), fault, "refusal");
    }
    assert!(out.is_empty(), "nothing written");
    fault
}

/// [MQTT-3.2.2-2] (3.1.1 [MQTT-3.2.2-1]) A server that accepts a Clean Start sets Session
/// Present to 0: the `ConnectCodec` wrote a 1, which its own `ConnackCodec` refuses on the
/// other side; it refuses to write it, in every form.
#[test]
fn mqtt_3_2_2_2_the_connect_codec_writes_no_session_present_after_a_clean_start() {
    use tokio_util::codec::Encoder;
    for protocol in [Protocol::V3_1_1, Protocol::V5] {
        let mut connect = Connect::new(protocol, "c1");
        connect.clean_start = true;
        let mut resumed = ConnackPacket::new(protocol, ReasonCode::Success);
        resumed.session_present = true;
        let fault = refused_in_every_form(connect, resumed);
        assert_eq!(fault, Error::SessionPresentAfterCleanStart, "{protocol}");
        // Without a Clean Start, the session may be there.
        let mut out = BytesMut::new();
        connect.clean_start = false;
        server_after(connect).encode(resumed, &mut out).unwrap();
        assert!(!out.is_empty());
    }
}

/// [MQTT-3.1.2-24] A server sends no packet over the Maximum Packet Size the client announced:
/// the `ConnectCodec` wrote one, which its own `ConnackCodec` refuses on the other side.
#[test]
fn mqtt_3_1_2_24_the_connect_codec_writes_no_connack_over_the_clients_maximum_packet_size() {
    use tokio_util::codec::Encoder;
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.properties.maximum_packet_size = Some(16);
    let mut ack = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
    ack.properties.reason_string = Some("a reason string far over sixteen bytes");
    assert_eq!(refused_in_every_form(connect, ack), Error::PacketTooLarge { size: 46, limit: 16 });
    // Sixteen bytes fit.
    let mut out = BytesMut::new();
    ack.properties.reason_string = Some("8 bytes.");
    assert_eq!(ack.encoded_len().unwrap(), 16);
    server_after(connect).encode(ack, &mut out).unwrap();
    assert_eq!(out.len(), 16);
}

/// [MQTT-4.12.0-5] A server's successful CONNACK to a CONNECT that named an Authentication
/// Method carries one: the `ConnectCodec` refuses to write a success without, in every form,
/// and writes a refusal without, or a success with.
#[test]
fn mqtt_4_12_0_5_the_connect_codec_writes_no_success_without_the_connects_authentication_method() {
    use tokio_util::codec::Encoder;
    let mut connect = Connect::new(Protocol::V5, "c1");
    connect.properties.authentication_method = Some("SCRAM-SHA-1");
    let mut ack = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
    assert_eq!(refused_in_every_form(connect, ack), Error::AuthenticationMethodMissing);
    let mut out = BytesMut::new();
    let refusal = Protocol::V5.connack(ReasonCode::BadAuthenticationMethod).unwrap();
    server_after(connect).encode(refusal, &mut out).unwrap();
    assert_eq!(&out[..], refusal.as_bytes());
    ack.properties.authentication_method = Some("SCRAM-SHA-1");
    out.clear();
    server_after(connect).encode(ack, &mut out).unwrap();
    assert_eq!(out.len(), ack.encoded_len().unwrap());
}

/// [MQTT-4.12.0-6] A server sends no Authentication Method in its CONNACK to a CONNECT that
/// named none: the `ConnectCodec` refuses to write one, in every form, whatever the code.
#[test]
fn mqtt_4_12_0_6_the_connect_codec_writes_no_authentication_method_the_connect_did_not_name() {
    use tokio_util::codec::Encoder;
    let connect = Connect::new(Protocol::V5, "c1");
    for code in [ReasonCode::Success, ReasonCode::NotAuthorized] {
        let mut ack = ConnackPacket::new(Protocol::V5, code);
        ack.properties.authentication_method = Some("SCRAM-SHA-1");
        assert_eq!(refused_in_every_form(connect, ack), Error::UnaskedAuthentication, "{code:?}");
        let mut out = BytesMut::new();
        ack.properties.authentication_method = None;
        server_after(connect).encode(ack, &mut out).unwrap();
        assert_eq!(out.len(), ack.encoded_len().unwrap(), "{code:?}: without one, written");
    }
}

/// Under the bound, what a packet still needs is reserved whole, whatever its size: one read
/// can then take it all.
#[test]
fn the_codecs_reserve_the_whole_of_a_packet_under_the_bound() {
    let bytes = connect_bytes(&"c".repeat(10_000));
    let mut buf = BytesMut::from(&bytes[..4]);
    assert!(ConnectCodec::default().decode(&mut buf).unwrap().is_none());
    assert!(
        buf.capacity() >= bytes.len(),
        "reserved {} of a CONNECT's {} bytes",
        buf.capacity(),
        bytes.len()
    );
    // A 5.0 CONNACK whose Remaining Length announces 10,000 bytes.
    let mut buf = BytesMut::from(&b"\x20\x90\x4e"[..]);
    assert!(ConnackCodec::new(Protocol::V5).decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() >= 10_003, "reserved {} of a CONNACK's 10,003 bytes", buf.capacity());
}
