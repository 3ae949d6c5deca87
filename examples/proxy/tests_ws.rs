//! MQTT over WebSocket and sticky client ids: `sticky.rs` on its own, then the proxy end to end
//! over loopback with a real WebSocket client (tokio-tungstenite) in front of the fake brokers
//! of `tests.rs`.

use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use mqtt_connect::{ConnackPacket, Connect, Decoder, Protocol, QoS, ReasonCode, Status, Will};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::config::Config;
use crate::server::Proxy;
use crate::sticky::{self, add_assigned_id, pass_connack};
use crate::tests::{Broker, PATIENCE, V5_OK, V311_OK, connect_packet};
use crate::workers::Workers;

// --- sticky.rs ------------------------------------------------------------------------------

/// The one route of `text`.
fn route(text: &str) -> crate::config::Route {
    let config =
        Config::parse(&format!("[[route]]\nupstreams = [\"127.0.0.1:1883\"]\n{text}")).expect("valid");
    config.routes.into_iter().next().expect("one route")
}

fn decoded(bytes: &[u8]) -> (Connect<'_>, usize) {
    match Decoder::new().decode(bytes) {
        Ok(Status::Complete { packet, len }) => (packet, len),
        other => panic!("not a whole CONNECT: {other:?}"),
    }
}

#[test]
fn a_5_0_client_without_an_id_gets_a_random_one_with_the_routes_prefix() {
    let route = route("client_id_prefix = \"edge-\"");
    let bytes = connect_packet(Protocol::V5, "");
    let (connect, _) = decoded(&bytes);
    let first = sticky::assign(&route, &connect).expect("assigned");
    let second = sticky::assign(&route, &connect).expect("assigned");
    let random = first.id.strip_prefix("edge-").expect("the prefix");
    assert_eq!(random.len(), 32, "128 bits in hex: {random}");
    assert!(random.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{random}");
    assert_ne!(first.id, second.id, "each assignment is random");
    let (placed, len) = decoded(&first.packet);
    assert_eq!((placed.client_id, len), (first.id.as_str(), first.packet.len()));
}

#[test]
fn the_assigned_connect_is_canonical_and_keeps_every_other_field() {
    let mut connect = Connect::new(Protocol::V5, "");
    connect.clean_start = false;
    connect.keep_alive = 45;
    connect.username = Some("user");
    connect.password = Some(b"secret");
    connect.properties.session_expiry_interval = Some(300);
    connect.properties.receive_maximum = Some(10);
    let mut will = Will::new("last/will", b"gone");
    will.qos = QoS::AtLeastOnce;
    connect.will = Some(will);
    let mut bytes = vec![0; connect.encoded_len().expect("encodable")];
    connect.encode(&mut bytes).expect("encodes");

    let (sent, _) = decoded(&bytes);
    let assigned = sticky::assign(&route(""), &sent).expect("assigned");
    let (got, got_len) = decoded(&assigned.packet);
    let mut expected = connect;
    expected.client_id = &assigned.id;
    assert_eq!(got, expected, "only the client id changed");
    let mut canonical = vec![0; expected.encoded_len().expect("encodable")];
    expected.encode(&mut canonical).expect("encodes");
    assert_eq!(
        (&assigned.packet[..], got_len),
        (&canonical[..], canonical.len()),
        "the crate's canonical encoding"
    );
}

#[tokio::test]
async fn bytes_pipelined_after_a_connect_given_an_id_follow_it_as_sent() {
    let broker = Broker::start().await;
    let config =
        Config::parse(&format!("listen = [\"127.0.0.1:0\"]\n[[route]]\nupstreams = [{}]", broker.upstream()))
            .expect("valid");
    let proxy = Proxy::start(config, Workers::current()).expect("bind proxy");
    let addr = proxy.local_addrs()[0];
    tokio::spawn(proxy.run());
    let pipelined: &[u8] = b"\x82\x0b\x00\x01\x00\x06whoami\x00";
    let mut client = TcpStream::connect(addr).await.expect("connect");
    client.write_all(&[connect_packet(Protocol::V5, ""), pipelined.to_vec()].concat()).await.expect("send");
    let mut head = [0; 2];
    timeout(PATIENCE, client.read_exact(&mut head)).await.expect("in time").expect("CONNACK");
    let mut got = vec![0; usize::from(head[1]) + pipelined.len()];
    timeout(PATIENCE, client.read_exact(&mut got)).await.expect("in time").expect("echo");
    let ids = broker.client_ids();
    let id = ids.first().expect("the broker saw the CONNECT");
    assert!(id.starts_with("proxy-"), "{id}");
    let expected = add_assigned_id(V5_OK, id).expect("rewritten");
    assert_eq!([&head[..], &got].concat(), [&expected[..], pipelined].concat(), "the CONNACK, then the echo");
}

#[test]
fn no_id_is_assigned_to_3_1_1_to_a_client_with_an_id_or_where_the_route_says_not_to() {
    let cases = [
        (Protocol::V3_1_1, "", ""),
        (Protocol::V5, "mine", ""),
        (Protocol::V5, "", "assign_client_id = false"),
    ];
    for (protocol, id, options) in cases {
        let bytes = connect_packet(protocol, id);
        let (connect, _) = decoded(&bytes);
        assert!(sticky::assign(&route(options), &connect).is_none(), "{protocol:?} {id:?} {options}");
    }
}

/// The one CONNECT that decodes but will not re-encode, a will announced as UTF-8 that is
/// not (the encoder holds a client to 5.0 3.1.3.2.3), goes as it came: the broker assigns the
/// id, and its CONNACK names it.
#[test]
fn a_connect_the_encoder_will_not_write_keeps_its_empty_id() {
    // 5.0, clean start and a will: an empty client id, will properties {Payload Format
    // Indicator: 1}, will topic "t", will payload 0xFF.
    let bytes = b"\x10\x16\x00\x04MQTT\x05\x06\x00\x3c\x00\x00\x00\x02\x01\x01\x00\x01t\x00\x01\xff";
    let (connect, _) = decoded(bytes);
    assert!(sticky::assign(&route(""), &connect).is_none());
}

/// A success CONNACK whose properties are in the broker's order, not the encoder's: Topic
/// Alias Maximum (0x22), a User Property (0x26), Receive Maximum (0x21), Maximum QoS (0x24).
const BROKER_ORDER: &[u8] = &[
    0x20, 0x12, 0x01, 0x00, 0x0f, //
    0x22, 0x00, 0x0a, //
    0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', //
    0x21, 0x00, 0x14, //
    0x24, 0x01,
];

#[test]
fn mqtt_3_1_3_7_v5_the_connack_carries_the_assigned_id_and_keeps_the_rest_byte_for_byte() {
    let got = add_assigned_id(BROKER_ORDER, "px-1").expect("rewritten");
    let mut expected = vec![0x20, 0x12 + 7, 0x01, 0x00, 0x0f + 7];
    expected.extend_from_slice(&BROKER_ORDER[5..]);
    expected.extend_from_slice(&[0x12, 0x00, 0x04, b'p', b'x', b'-', b'1']);
    assert_eq!(got, expected);
    let Ok(Status::Complete { packet, .. }) = ConnackPacket::decode(Protocol::V5, &got) else { panic!() };
    assert_eq!(packet.properties.assigned_client_identifier, Some("px-1"));
    assert!(packet.session_present);

    assert_eq!(add_assigned_id(V5_OK, "a").expect("rewritten"), [0x20, 0x07, 0, 0, 0x04, 0x12, 0, 1, b'a']);
}

#[test]
fn the_connack_rewrite_grows_the_lengths_past_one_byte() {
    // Remaining Length 3 + 4 + 120 = 127 fits one byte; 129 + 3 + id does not.
    let id = "i".repeat(150);
    let got = add_assigned_id(V5_OK, &id).expect("rewritten");
    assert_eq!(got[..3], [0x20, 0x9d, 0x01], "Remaining Length 157 in two bytes");
    let Ok(Status::Complete { packet, len }) = ConnackPacket::decode(Protocol::V5, &got) else { panic!() };
    assert_eq!((packet.properties.assigned_client_identifier, len), (Some(id.as_str()), got.len()));
}

#[test]
fn a_refusal_a_broker_assigned_id_or_no_whole_connack_is_left_untouched() {
    let mut assigned = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
    assigned.properties.assigned_client_identifier = Some("auto-1");
    let refused = ConnackPacket::new(Protocol::V5, ReasonCode::NotAuthorized);
    for packet in [assigned, refused] {
        let mut bytes = vec![0; packet.encoded_len().expect("encodable")];
        packet.encode(&mut bytes).expect("encodes");
        assert_eq!(add_assigned_id(&bytes, "px-1"), None, "{packet:?}");
    }
    for bytes in
        [&V5_OK[..4], &[0x20, 0x03, 0x02, 0x00, 0x00], &[0x30, 0x00], V311_OK, &[0x20, 0x02, 0, 0, 0, 9]]
    {
        assert_eq!(add_assigned_id(bytes, "px-1"), None, "{bytes:x?}");
    }
}

#[tokio::test]
async fn pass_connack_rewrites_the_first_packet_only_however_it_arrives() {
    let publish = b"\x30\x05\x00\x01tab";
    for split in [1, 3, BROKER_ORDER.len(), BROKER_ORDER.len() + 2] {
        let (mut broker, mut upstream) = tokio::io::duplex(1024);
        let mut sent = BROKER_ORDER.to_vec();
        sent.extend_from_slice(publish);
        let (first, rest) = sent.split_at(split);
        broker.write_all(first).await.expect("write");
        let (rest, first_len) = (rest.to_vec(), first.len());
        let writer = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            broker.write_all(&rest).await.expect("write");
            broker
        });
        let mut client = Vec::new();
        let passed = pass_connack(&mut upstream, &mut client, "px-1", PATIENCE).await.expect("passed");
        let mut expected = add_assigned_id(BROKER_ORDER, "px-1").expect("rewritten");
        // What came with the CONNACK's last byte goes on at once; the rest in the relay.
        let read = first_len.max(BROKER_ORDER.len());
        expected.extend_from_slice(&sent[BROKER_ORDER.len()..read]);
        assert!(client.starts_with(&expected), "split at {split}: {client:x?}");
        assert_eq!(passed, client, "it returns what it sent");
        let mut after = client[expected.len()..].to_vec();
        drop(writer.await.expect("writer"));
        upstream.read_to_end(&mut after).await.expect("read");
        assert_eq!(after, sent[read..], "the bytes after the CONNACK, untouched");
    }
}

/// The relay reads the CONNACK the sticky step passed on (its code for the log, its Server Keep
/// Alive for the idle limit) up to the same size as that step rewrites one: the two read the
/// broker's first packet under one cap. A 5 KB CONNACK was given the id and then not read.
#[tokio::test]
async fn a_connack_given_the_assigned_id_is_read_by_the_relay_too() {
    use crate::broker_connack::{BrokerConnack, Sniff};
    let reason = "r".repeat(5_000);
    let mut large = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
    large.properties.reason_string = Some(&reason);
    large.properties.server_keep_alive = Some(42);
    let mut sent = vec![0; large.encoded_len().expect("encodable")];
    large.encode(&mut sent).expect("encodes");
    let (mut broker, mut upstream) = tokio::io::duplex(16 * 1024);
    broker.write_all(&sent).await.expect("write");
    let mut client = Vec::new();
    let passed = pass_connack(&mut upstream, &mut client, "px-1", PATIENCE).await.expect("passed");
    assert_ne!(passed, sent, "given the id");
    let read = Sniff::new(Protocol::V5).feed(&passed);
    assert_eq!(read, Some(BrokerConnack { code: ReasonCode::Success, server_keep_alive: Some(42) }));
}

/// A CONNACK declared over the cap is forwarded as it came from its fixed header, where the
/// sticky step waited for 64 KiB of it, and a broker that sent no more had its client told
/// "server unavailable" at the deadline.
#[tokio::test]
async fn a_connack_declared_over_the_cap_is_forwarded_at_once() {
    // Remaining Length 65,536: the fixed header alone is over 64 KiB.
    let sent = [0x20, 0x80, 0x80, 0x04, 0x00];
    let (mut broker, mut upstream) = tokio::io::duplex(1024);
    broker.write_all(&sent).await.expect("write");
    let mut client = Vec::new();
    let passing = pass_connack(&mut upstream, &mut client, "px-1", PATIENCE);
    let passed = timeout(PATIENCE / 2, passing).await.expect("not held to the deadline").expect("passed");
    assert_eq!((passed.as_slice(), client.as_slice()), (&sent[..], &sent[..]));
    drop(broker);
}

#[tokio::test]
async fn pass_connack_forwards_what_is_not_a_connack_and_an_early_close_as_they_came() {
    for sent in [&b"\x30\x02\x00\x00"[..], &V5_OK[..3], b""] {
        let (mut broker, mut upstream) = tokio::io::duplex(64);
        broker.write_all(sent).await.expect("write");
        drop(broker);
        let mut client = Vec::new();
        pass_connack(&mut upstream, &mut client, "px-1", PATIENCE).await.expect("passed");
        assert_eq!(client, sent);
    }
}

/// A client that does not take its CONNACK within the deadline is given up on, as one whose
/// broker sends none in time is: the write of it waited for good. And a CONNACK that had not
/// come within the deadline was passed on when it came, without the assigned id, so that the
/// client never learnt the id its session was under: that connection is given up on too.
#[tokio::test]
async fn pass_connack_gives_up_on_a_client_that_does_not_take_it_in_time() {
    let (mut broker, mut upstream) = tokio::io::duplex(1024);
    broker.write_all(BROKER_ORDER).await.expect("write");
    // Four bytes of room, and nobody reading them.
    let (mut client, _unread) = tokio::io::duplex(4);
    let passing = pass_connack(&mut upstream, &mut client, "px-1", std::time::Duration::from_millis(100));
    let passed = timeout(PATIENCE, passing).await.expect("given up within the deadline");
    assert!(
        matches!(&passed, Err(sticky::Unpassed::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut),
        "{passed:?}"
    );

    for late in [&b""[..], &BROKER_ORDER[..3]] {
        let (mut broker, mut upstream) = tokio::io::duplex(1024);
        broker.write_all(late).await.expect("write");
        let mut client = Vec::new();
        let passing = pass_connack(&mut upstream, &mut client, "px-1", std::time::Duration::from_millis(100));
        let passed = timeout(PATIENCE, passing).await.expect("given up within the deadline");
        assert!(matches!(passed, Err(sticky::Unpassed::Silent)), "{late:x?}: {passed:?}");
        assert_eq!(client, b"", "nothing of a CONNACK without the id");
        drop(broker);
    }
}

// --- the proxy over WebSocket ---------------------------------------------------------------

type Ws = WebSocketStream<TcpStream>;

/// A proxy with a WebSocket listener at `/mqtt` (and a TCP one), over `brokers`.
async fn start(brokers: &[&Broker], route_options: &str) -> (SocketAddr, SocketAddr) {
    let upstreams: Vec<String> = brokers.iter().map(|b| b.upstream()).collect();
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n[[listener]]\naddr = \"127.0.0.2:0\"\nwebsocket = \"/mqtt\"\n[[route]]\nupstreams = [{}]\n{route_options}",
        upstreams.join(", ")
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let addrs = (proxy.local_addrs()[0], proxy.local_addrs()[1]);
    tokio::spawn(proxy.run());
    addrs
}

/// A WebSocket client at `path`, offering `protocol` if any.
async fn ws_connect(proxy: SocketAddr, path: &str, protocol: Option<&str>) -> Result<Ws, WsError> {
    let mut request = format!("ws://{proxy}{path}").into_client_request()?;
    if let Some(protocol) = protocol {
        request.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().expect("header value"));
    }
    let stream = TcpStream::connect(proxy).await?;
    let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
    Ok(ws)
}

async fn mqtt_ws(proxy: SocketAddr) -> Ws {
    ws_connect(proxy, "/mqtt", Some("mqtt")).await.expect("upgrade")
}

/// A WebSocket client through the proxy, past its 3.1.1 CONNECT as `client_id` and the CONNACK.
async fn connected_ws(proxy: SocketAddr, client_id: &str) -> Ws {
    let mut ws = mqtt_ws(proxy).await;
    send(&mut ws, &connect_packet(Protocol::V3_1_1, client_id)).await;
    assert_eq!(receive(&mut ws, V311_OK.len()).await, V311_OK);
    ws
}

async fn send(ws: &mut Ws, bytes: &[u8]) {
    ws.send(Message::Binary(Bytes::copy_from_slice(bytes))).await.expect("send");
}

/// The payloads of binary frames until `len` bytes have come; panics on anything else.
async fn receive(ws: &mut Ws, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        match timeout(PATIENCE, ws.next()).await.expect("in time") {
            Some(Ok(Message::Binary(bytes))) => got.extend_from_slice(&bytes),
            other => panic!("after {got:x?}: {other:?}"),
        }
    }
    got
}

/// The close code that ends the connection, after any binary frames, which are returned.
async fn closed(ws: &mut Ws) -> (Vec<u8>, Option<CloseCode>) {
    let mut got = Vec::new();
    loop {
        match timeout(PATIENCE, ws.next()).await.expect("in time") {
            Some(Ok(Message::Binary(bytes))) => got.extend_from_slice(&bytes),
            Some(Ok(Message::Close(frame))) => return (got, frame.map(|f| f.code)),
            other => panic!("after {got:x?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn mqtt_6_0_0_2_a_connect_split_over_three_frames_is_read_whole() {
    let broker = Broker::start().await;
    let (_, proxy) = start(&[&broker], "").await;
    let mut ws = mqtt_ws(proxy).await;
    let connect = connect_packet(Protocol::V3_1_1, "split-id");
    for part in [&connect[..3], &connect[3..11], &connect[11..]] {
        send(&mut ws, part).await;
    }
    assert_eq!(receive(&mut ws, V311_OK.len()).await, V311_OK);
    assert_eq!(broker.client_ids(), ["split-id"]);
}

#[tokio::test]
async fn mqtt_6_0_0_2_a_connect_sharing_a_frame_with_a_subscribe_and_the_relay_both_ways() {
    let broker = Broker::start().await;
    let (_, proxy) = start(&[&broker], "").await;
    let mut ws = mqtt_ws(proxy).await;
    let subscribe = b"\x82\x0b\x00\x01\x00\x06whoami\x00";
    let mut frame = connect_packet(Protocol::V3_1_1, "shared-id");
    frame.extend_from_slice(subscribe);
    send(&mut ws, &frame).await;
    // The fake broker echoes what follows the CONNECT.
    let mut expected = V311_OK.to_vec();
    expected.extend_from_slice(subscribe);
    assert_eq!(receive(&mut ws, expected.len()).await, expected);
    send(&mut ws, b"\xc0").await;
    send(&mut ws, b"\x00").await;
    assert_eq!(receive(&mut ws, 2).await, b"\xc0\x00", "PINGREQ in two frames, echoed");
    assert_eq!(broker.client_ids(), ["shared-id"]);
}

#[tokio::test]
async fn a_websocket_ping_gets_a_pong_and_a_close_is_answered() {
    let broker = Broker::start().await;
    let (_, proxy) = start(&[&broker], "").await;
    let mut ws = mqtt_ws(proxy).await;
    ws.send(Message::Ping(Bytes::from_static(b"before"))).await.expect("ping");
    send(&mut ws, &connect_packet(Protocol::V3_1_1, "pinger")).await;
    let next = timeout(PATIENCE, ws.next()).await.expect("in time");
    assert!(matches!(next, Some(Ok(Message::Pong(ref p))) if p == "before"), "{next:?}");
    assert_eq!(receive(&mut ws, V311_OK.len()).await, V311_OK);
    ws.send(Message::Ping(Bytes::from_static(b"after"))).await.expect("ping");
    let next = timeout(PATIENCE, ws.next()).await.expect("in time");
    assert!(matches!(next, Some(Ok(Message::Pong(ref p))) if p == "after"), "{next:?}");
    ws.close(Some(CloseFrame { code: CloseCode::Away, reason: "".into() })).await.expect("close");
    let (_, code) = closed(&mut ws).await;
    assert_eq!(code, Some(CloseCode::Away), "the close is answered");
}

#[tokio::test]
async fn mqtt_6_0_0_1_a_text_frame_is_refused_with_1003_before_or_after_the_connect() {
    let broker = Broker::start().await;
    let (_, proxy) = start(&[&broker], "").await;
    let mut ws = mqtt_ws(proxy).await;
    ws.send(Message::text("\u{10}\u{c}")).await.expect("send");
    assert_eq!(closed(&mut ws).await, (Vec::new(), Some(CloseCode::Unsupported)));
    assert!(broker.client_ids().is_empty(), "nothing reached the broker");

    let mut ws = connected_ws(proxy, "talker").await;
    ws.send(Message::text("hello")).await.expect("send");
    assert_eq!(closed(&mut ws).await, (Vec::new(), Some(CloseCode::Unsupported)));
}

#[tokio::test]
async fn a_refused_connect_gets_its_connack_in_a_binary_frame_then_a_close() {
    let broker = Broker::start().await;
    let (_, proxy) = start(&[&broker], "").await;
    let mut ws = mqtt_ws(proxy).await;
    // 5.0, the reserved flag set [MQTT-3.1.2-3]: Malformed Packet.
    send(&mut ws, b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00").await;
    assert_eq!(closed(&mut ws).await, (vec![0x20, 0x03, 0x00, 0x81, 0x00], Some(CloseCode::Normal)));

    let mut ws = mqtt_ws(proxy).await;
    send(&mut ws, b"\x00garbage").await;
    assert_eq!(closed(&mut ws).await, (Vec::new(), Some(CloseCode::Normal)), "no version, no CONNACK");
    assert!(broker.client_ids().is_empty(), "nothing refused is forwarded");
}

#[tokio::test]
async fn mqtt_6_0_0_3_the_upgrade_needs_an_mqtt_subprotocol_and_the_path() {
    let broker = Broker::start().await;
    let (_, proxy) = start(&[&broker], "").await;
    for (path, protocol, status) in
        [("/mqtt", None, 400), ("/mqtt", Some("wamp"), 400), ("/", Some("mqtt"), 404)]
    {
        match ws_connect(proxy, path, protocol).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), status, "{path} {protocol:?}"),
            other => panic!("{path} {protocol:?}: {:?}", other.map(|_| "upgraded")),
        }
    }
    let listed = ws_connect(proxy, "/mqtt", Some("wamp, mqtt")).await;
    assert!(listed.is_ok(), "mqtt among others is taken");

    // A 3.1 client (Paho's JavaScript client, say) offers `mqttv3.1`, which mosquitto takes; the
    // answer must name it, or the client's side of the handshake fails.
    let mut ws = ws_connect(proxy, "/mqtt", Some("mqttv3.1")).await.expect("mqttv3.1 is taken");
    send(&mut ws, &connect_packet(Protocol::V3_1, "old")).await;
    assert_eq!(receive(&mut ws, 4).await, [0x20, 0x02, 0x00, 0x00]);
}

/// With `websocket_origins`, a browser's upgrade from a page of another origin gets 403, so that
/// another site cannot reach the brokers through its visitors' browsers (RFC 6455 10.2); the
/// listed origins pass whatever their case, and a client that names no origin is no browser
/// and passes too. Without it any origin passes, as before.
#[tokio::test]
async fn websocket_origins_keep_other_sites_pages_out() {
    let broker = Broker::start().await;
    let text = format!(
        "listen = []\n\
         [[listener]]\naddr = \"127.0.0.1:0\"\nwebsocket = \"/mqtt\"\n\
         websocket_origins = [\"https://app.example.com\", \"http://localhost:8080\"]\n\
         [[listener]]\naddr = \"127.0.0.2:0\"\nwebsocket = \"/mqtt\"\n\
         [[route]]\nupstreams = [{}]",
        broker.upstream()
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let (guarded, open) = (proxy.local_addrs()[0], proxy.local_addrs()[1]);
    tokio::spawn(proxy.run());
    let from = |addr: SocketAddr, origin: Option<&'static str>| async move {
        let mut request = format!("ws://{addr}/mqtt").into_client_request().expect("request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", "mqtt".parse().expect("value"));
        if let Some(origin) = origin {
            request.headers_mut().insert("Origin", origin.parse().expect("value"));
        }
        let stream = TcpStream::connect(addr).await.expect("connect");
        tokio_tungstenite::client_async(request, stream).await.map(|(ws, _)| ws)
    };
    for origin in ["https://evil.example", "https://app.example.com.evil.example", "null"] {
        match from(guarded, Some(origin)).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "{origin}"),
            other => panic!("{origin}: {:?}", other.map(|_| "upgraded")),
        }
        assert!(from(open, Some(origin)).await.is_ok(), "{origin}: any origin without the list");
    }
    for origin in [Some("https://app.example.com"), Some("HTTPS://App.Example.com"), None] {
        let mut ws = from(guarded, origin).await.unwrap_or_else(|e| panic!("{origin:?}: {e}"));
        send(&mut ws, &connect_packet(Protocol::V5, "allowed")).await;
        assert_eq!(receive(&mut ws, 5).await, V5_OK, "{origin:?}");
    }
    let refused = "[[listener]]\naddr = \"127.0.0.1:0\"\nwebsocket_origins = [\"https://a.example\"]\n\
                   [[route]]\nupstreams = [\"127.0.0.1:1883\"]";
    let e = Config::parse(refused).expect_err("origins without websocket");
    assert!(e.contains("websocket_origins without websocket"), "{e}");
    // A browser never sends a path, not even `/`: an origin copied from an address bar with
    // one matched no browser, without a word.
    for origin in ["https://app.example.com/", "app.example.com", "https://", "wss://app.example.com"] {
        let text = format!(
            "[[listener]]\naddr = \"127.0.0.1:0\"\nwebsocket = \"/mqtt\"\nwebsocket_origins = [{origin:?}]\n\
             [[route]]\nupstreams = [\"127.0.0.1:1883\"]"
        );
        let e = Config::parse(&text).expect_err(origin);
        assert!(e.contains("is not scheme://host[:port]"), "{origin}: {e}");
    }
}

#[tokio::test]
async fn sticky_ids_place_the_reconnect_on_the_broker_that_holds_the_session() {
    let brokers = [Broker::start().await, Broker::start().await, Broker::start().await];
    let (tcp, ws_addr) = start(&[&brokers[0], &brokers[1], &brokers[2]], "client_id_prefix = \"t-\"").await;
    for round in 0..6 {
        let mut ws = mqtt_ws(ws_addr).await;
        send(&mut ws, &connect_packet(Protocol::V5, "")).await;
        let mut ack = receive(&mut ws, 2).await;
        let len = usize::from(ack[1]) + 2;
        ack.extend(receive(&mut ws, len - ack.len()).await);
        let Ok(Status::Complete { packet, .. }) = ConnackPacket::decode(Protocol::V5, &ack) else {
            panic!("{ack:x?}")
        };
        let id = packet.properties.assigned_client_identifier.expect("the proxy's id").to_owned();
        assert!(id.starts_with("t-"), "{id}");

        let home = brokers.iter().position(|b| b.client_ids().contains(&id)).expect("the broker got the id");
        let mut again = TcpStream::connect(tcp).await.expect("connect");
        again.write_all(&connect_packet(Protocol::V5, &id)).await.expect("send");
        let mut ok = [0; 5];
        timeout(PATIENCE, again.read_exact(&mut ok)).await.expect("in time").expect("CONNACK");
        assert_eq!(ok, V5_OK, "a client with an id gets the broker's CONNACK untouched");
        let ids = brokers[home].client_ids();
        assert_eq!(
            ids.iter().filter(|i| **i == id).count(),
            2,
            "round {round}: {id} came back to broker {home}"
        );
    }
}

#[test]
fn websocket_and_sticky_config_defaults_and_what_is_refused() {
    let config = Config::parse(
        "[[listener]]\naddr = \"127.0.0.1:9101\"\nwebsocket = \"/mqtt\"\n[[route]]\nupstreams = [\"127.0.0.1:1883\"]",
    )
    .expect("valid");
    assert_eq!(config.listeners[0].websocket.as_deref(), Some("/mqtt"));
    assert_eq!(config.addrs().len(), 2, "the default TCP listener and the WebSocket one");
    assert!(config.routes[0].assign_client_id);
    assert_eq!(config.routes[0].client_id_prefix, None, "proxy- unless set");
    assert_eq!(config.limits.max_ws_message, 1 << 20);

    let refused = [
        ("listen = [\"127.0.0.1:9101\"]\n[[listener]]\naddr = \"127.0.0.1:9101\"", "given twice"),
        ("[[listener]]\naddr = \"127.0.0.1:9101\"\nwebsocket = \"mqtt\"", "does not start with /"),
        ("listen = []", "no listen address"),
        (
            "[[listener]]\naddr = \"127.0.0.1:9101\"\nwebsocket = \"/mqtt\"\n\
             tls = { cert = \"c.pem\", key = \"k.pem\", alpn = [\"mqtt\"] }",
            "alpn must offer \"http/1.1\"",
        ),
    ];
    for (text, why) in refused {
        let text = format!("{text}\n[[route]]\nupstreams = [\"127.0.0.1:1883\"]");
        let e = Config::parse(&text).expect_err(&text);
        assert!(e.contains(why), "{text}: {e}");
    }
    // With `http/1.1` offered, the check passes, and the next one finds the files missing.
    let text = "[[listener]]\naddr = \"127.0.0.1:9101\"\nwebsocket = \"/mqtt\"\n\
                tls = { cert = \"c.pem\", key = \"k.pem\", alpn = [\"mqtt\", \"http/1.1\"] }\n\
                [[route]]\nupstreams = [\"127.0.0.1:1883\"]";
    let e = Config::parse(text).expect_err("no such files");
    assert!(e.contains("c.pem") && !e.contains("alpn"), "{e}");
    let e = Config::parse("[[route]]\nupstreams = [\"127.0.0.1:1883\"]\nclient_id_prefix = \"a\\u0000\"")
        .expect_err("NUL");
    assert!(e.contains("U+0000"), "{e}");
    // A prefix for ids that are not assigned would do nothing.
    let e = Config::parse(
        "[[route]]\nupstreams = [\"127.0.0.1:1883\"]\nassign_client_id = false\nclient_id_prefix = \"t-\"",
    )
    .expect_err("a prefix for no id");
    assert!(e.contains("client_id_prefix with assign_client_id = false"), "{e}");
    let flags = ["proxy", "--no-assign-client-id", "--client-id-prefix", "t-"];
    assert!(<crate::Args as clap::Parser>::try_parse_from(flags).is_err(), "the same in flags");
}

/// An AUTH packet continuing enhanced authentication by method `X`, either way.
const AUTH_CONTINUE: &[u8] = &[0xF0, 0x06, 0x18, 0x04, 0x15, 0x00, 0x01, b'X'];

/// A 5.0 broker that authenticates by method `X` in one AUTH round trip before its CONNACK,
/// and assigns an id, as a broker must [MQTT-3.2.2-16], to a client that sent none.
async fn authenticating_broker() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind broker");
    let addr = listener.local_addr().expect("broker address");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        let empty_id = loop {
            assert_ne!(stream.read_buf(&mut buf).await.expect("read"), 0, "a CONNECT");
            if let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(&buf) {
                assert_eq!(packet.properties.authentication_method, Some("X"));
                break packet.client_id.is_empty();
            }
        };
        stream.write_all(AUTH_CONTINUE).await.expect("AUTH");
        let mut auth = [0; AUTH_CONTINUE.len()];
        stream.read_exact(&mut auth).await.expect("the client's AUTH");
        let mut ack = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
        ack.properties.assigned_client_identifier = empty_id.then_some("broker-1");
        let mut bytes = vec![0; ack.encoded_len().expect("encodable")];
        ack.encode(&mut bytes).expect("encodes");
        stream.write_all(&bytes).await.expect("CONNACK");
        let _ = stream.read(&mut [0; 1]).await;
    });
    addr
}

/// A 5.0 client without an id that authenticates (an Authentication Method in its CONNECT)
/// hears AUTH from the broker first, and only then the CONNACK, which the proxy does not read
/// for an id to add. So it is given no id of the proxy's: the broker assigns one, and says
/// which in the CONNACK. With the proxy's, the CONNACK named none, and the client could never
/// learn the id its session was kept under [MQTT-3.2.2-16].
#[tokio::test]
async fn mqtt_3_2_2_16_a_client_that_authenticates_learns_the_id_it_was_given() {
    let broker = authenticating_broker().await;
    let text = format!("listen = [\"127.0.0.1:0\"]\n[[route]]\nupstreams = [\"{broker}\"]\n");
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let addr = proxy.local_addrs()[0];
    tokio::spawn(proxy.run());

    let mut connect = Connect::new(Protocol::V5, "");
    connect.properties.authentication_method = Some("X");
    let mut bytes = vec![0; connect.encoded_len().expect("encodable")];
    connect.encode(&mut bytes).expect("encodes");
    let mut client = TcpStream::connect(addr).await.expect("connect");
    client.write_all(&bytes).await.expect("send CONNECT");
    let mut auth = [0; AUTH_CONTINUE.len()];
    timeout(PATIENCE, client.read_exact(&mut auth)).await.expect("in time").expect("AUTH");
    assert_eq!(auth, AUTH_CONTINUE);
    client.write_all(AUTH_CONTINUE).await.expect("send AUTH");
    let mut ack = vec![0; 2];
    timeout(PATIENCE, client.read_exact(&mut ack)).await.expect("in time").expect("CONNACK");
    let mut rest = vec![0; usize::from(ack[1])];
    timeout(PATIENCE, client.read_exact(&mut rest)).await.expect("in time").expect("CONNACK");
    ack.extend(rest);
    let Ok(Status::Complete { packet, .. }) = ConnackPacket::decode(Protocol::V5, &ack) else {
        panic!("{ack:x?}")
    };
    assert_eq!(packet.reason_code, ReasonCode::Success);
    assert!(packet.properties.assigned_client_identifier.is_some(), "the id, in the CONNACK: {ack:x?}");
}

/// A connection refused before its CONNECT is logged with its listener's transport, as one
/// served is: here a bad upgrade, and a client over the connection cap, on a WebSocket
/// listener. Both said `transport=tcp`.
#[tokio::test]
async fn a_connection_refused_before_its_connect_logs_its_listeners_transport() {
    let (logs, _in_force) = crate::tests_ops::Captured::in_force();
    let broker = Broker::start().await;
    let text = format!(
        "listen = []\n[limits]\nmax_connections = 1\n[[listener]]\naddr = \"127.0.0.1:0\"\nwebsocket = \"/mqtt\"\n[[route]]\nupstreams = [{}]",
        broker.upstream()
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let addr = proxy.local_addrs()[0];
    tokio::spawn(proxy.run());

    assert!(matches!(ws_connect(addr, "/", Some("mqtt")).await, Err(WsError::Http(_))), "404");
    let mut live = mqtt_ws(addr).await;
    send(&mut live, &connect_packet(Protocol::V5, "live")).await;
    assert_eq!(receive(&mut live, V5_OK.len()).await, V5_OK);
    let mut busy = mqtt_ws(addr).await;
    send(&mut busy, &connect_packet(Protocol::V5, "busy")).await;
    assert_eq!(receive(&mut busy, 5).await, [0x20, 0x03, 0x00, 0x89, 0x00], "server busy");

    let refused = || {
        let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
        text.lines()
            .filter(|line| line.contains("end=") && line.contains("refused"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + PATIENCE;
    while refused().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let lines = refused();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|line| line.contains("transport=ws")), "{lines:?}");
}

/// A plain HTTP request on a WebSocket listener is answered 426 Upgrade Required, naming the
/// upgrade and the version it needs (RFC 6455 4.2.2, RFC 7231 6.5.15), and a request that is
/// not one a WebSocket server can take, 400 Bad Request (RFC 6455 4.2.1); then the connection
/// is closed. Both were closed unanswered.
#[tokio::test]
async fn a_request_that_is_no_upgrade_is_answered_426_and_a_malformed_one_400() {
    let broker = Broker::start().await;
    let (_, proxy) = start(&[&broker], "").await;
    let answer = |request: &'static [u8]| async move {
        let mut stream = TcpStream::connect(proxy).await.expect("connect");
        stream.write_all(request).await.expect("send");
        let mut got = Vec::new();
        timeout(PATIENCE, stream.read_to_end(&mut got)).await.expect("closed in time").ok();
        String::from_utf8_lossy(&got).into_owned()
    };
    let plain = answer(b"GET /mqtt HTTP/1.1\r\nHost: proxy\r\n\r\n").await;
    assert!(plain.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{plain:?}");
    for header in
        ["\r\nupgrade: websocket\r\n", "\r\nconnection: upgrade", "\r\nsec-websocket-version: 13\r\n"]
    {
        assert!(plain.to_ascii_lowercase().contains(header), "{header:?} in {plain:?}");
    }
    let old_version = answer(
        b"GET /mqtt HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert!(old_version.starts_with("HTTP/1.1 426 "), "{old_version:?}");
    for malformed in [&b"NOT HTTP AT ALL\r\n\r\n"[..], b"POST /mqtt HTTP/1.1\r\nHost: proxy\r\n\r\n"] {
        let got = answer(malformed).await;
        assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{malformed:?}: {got:?}");
    }
    assert!(broker.client_ids().is_empty(), "nothing reached a broker");
}

/// tungstenite holds a frame whole before it hands it on. Before its CONNECT is whole, a
/// WebSocket client may send the CONNECT cap and room for framing, no more, as a TCP client's
/// CONNECT is buffered up to the cap: one that starts a frame far past it is cut as soon as it
/// has sent that much, not kept until the CONNECT deadline while tungstenite buffers the frame.
/// After the CONNECT, a frame of 100 KiB passes.
#[tokio::test]
async fn before_its_connect_a_websocket_client_sends_no_more_than_the_cap_and_its_framing() {
    let broker = Broker::start().await;
    let (_, proxy) =
        start(&[&broker], "[limits]\nconnect_deadline_ms = 600000\nhandshake_deadline_ms = 600000").await;
    let mut ws = mqtt_ws(proxy).await;
    // A masked binary frame of 1 MiB - 1 (the mask is zero, so the bytes are as sent) that
    // starts a CONNECT, and 64 KiB of it: past the default cap of 16 KiB and its 8 KiB of
    // framing, short of the frame's end.
    let mut raw = vec![0x82, 0xff, 0, 0, 0, 0, 0, 0x0f, 0xff, 0xff, 0, 0, 0, 0];
    raw.extend_from_slice(&[0x10, 0xfa, 0xff, 0x3f]);
    raw.resize(64 << 10, 0);
    // The proxy may cut it before it has all been written.
    ws.get_mut().write_all(&raw).await.ok();
    let next = timeout(PATIENCE, ws.next()).await.expect("cut before the CONNECT deadline");
    // Its close frame (1009) may be lost to the reset the unread rest of the frame makes.
    assert!(matches!(next, None | Some(Err(_)) | Some(Ok(Message::Close(_)))), "{next:?}");
    assert!(broker.client_ids().is_empty(), "nothing reached the broker");

    // Exactly as much as it may send, so that the proxy reads it all and closes without a
    // reset: the client is told why with 1009.
    let mut ws = mqtt_ws(proxy).await;
    raw.truncate((16 << 10) + 5 + crate::ws::FRAMING);
    ws.get_mut().write_all(&raw).await.expect("write");
    assert_eq!(closed(&mut ws).await, (Vec::new(), Some(CloseCode::Size)));
    assert!(broker.client_ids().is_empty(), "nothing reached the broker");

    let mut ws = connected_ws(proxy, "big-publisher").await;
    // A payload of 100 KiB after the topic "t" and the fixed header.
    let publish = publish_of((100 << 10) + 7);
    assert_eq!(publish[..7], [0x30, 0x83, 0xa0, 0x06, 0x00, 0x01, b't']);
    send(&mut ws, &publish).await;
    // The fake broker echoes what follows the CONNECT.
    assert_eq!(receive(&mut ws, publish.len()).await, publish);
}

/// What a WebSocket client may send before its CONNECT is the CONNECT cap and its framing, not
/// the framing alone; and frame boundaries carry no meaning [MQTT-6.0.0-2], so a client may
/// split its CONNECT into frames as small as it likes. A CONNECT of the whole default cap of
/// 16 KiB, twice the framing, is taken and reaches the broker in one frame, and in 1024 frames
/// of 16 bytes, 6 KiB of frame headers (6 bytes each, masked).
#[tokio::test]
async fn mqtt_6_0_0_2_a_connect_of_the_whole_cap_is_taken_in_one_frame_or_a_thousand() {
    for frame in [16 << 10, 16] {
        let broker = Broker::start().await;
        let (_, proxy) = start(&[&broker], "").await;
        let mut ws = mqtt_ws(proxy).await;
        let id = "i".repeat(16369);
        let connect = connect_packet(Protocol::V3_1_1, &id);
        assert_eq!(connect.len(), 16 << 10);
        assert!(connect.len() > crate::ws::FRAMING + 1);
        for part in connect.chunks(frame) {
            ws.feed(Message::Binary(Bytes::copy_from_slice(part))).await.expect("send");
        }
        ws.flush().await.expect("send");
        assert_eq!(receive(&mut ws, V311_OK.len()).await, V311_OK, "frames of {frame}");
        assert_eq!(broker.client_ids(), [id], "frames of {frame}");
    }
}

/// A client cut for a frame over the cap of 1 MiB, one that breaks the WebSocket protocol, or
/// text that is not UTF-8, is told why (RFC 6455 7.4.1) before and after its CONNECT: 1009,
/// 1002 and 1007, where a close without a code would leave it to guess.
#[tokio::test]
async fn a_frame_too_big_is_closed_with_1009_a_broken_one_with_1002_bad_text_with_1007() {
    let broker = Broker::start().await;
    let (_, proxy) = start(&[&broker], "").await;
    // The header of a masked binary frame of 2 MiB, refused from its length; an unmasked
    // binary frame, which a client must never send (RFC 6455 5.1); a text frame (masked with
    // zeros) of bytes that are not UTF-8.
    let too_big: &[u8] = &[0x82, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0];
    let unmasked: &[u8] = &[0x82, 0x02, 0xc0, 0x00];
    let not_utf8: &[u8] = &[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe];
    for (frame, code) in
        [(too_big, CloseCode::Size), (unmasked, CloseCode::Protocol), (not_utf8, CloseCode::Invalid)]
    {
        let mut ws = mqtt_ws(proxy).await;
        ws.get_mut().write_all(frame).await.expect("write");
        assert_eq!(closed(&mut ws).await, (Vec::new(), Some(code)), "before the CONNECT");

        let mut ws = connected_ws(proxy, "framer").await;
        ws.get_mut().write_all(frame).await.expect("write");
        assert_eq!(closed(&mut ws).await, (Vec::new(), Some(code)), "after the CONNECT");
    }
    assert_eq!(broker.client_ids(), ["framer", "framer", "framer"]);
}

/// A PUBLISH of `len` bytes in all, on topic `t`.
fn publish_of(len: usize) -> Vec<u8> {
    // The fixed header is 4 bytes (a Remaining Length of 3) from 16 KiB to 2 MiB.
    let mut remaining = len - 4;
    let mut packet = vec![0x30];
    for _ in 0..3 {
        packet.push(u8::try_from(remaining % 128).expect("7 bits") | 0x80);
        remaining /= 128;
    }
    packet[3] &= 0x7f;
    assert_eq!(remaining, 0, "{len} bytes take a Remaining Length of 3");
    packet.extend_from_slice(&[0x00, 0x01, b't']);
    packet.resize(len, b'p');
    packet
}

/// `max_ws_message` caps a WebSocket client's frames and messages, and so its packets: a
/// publish of 64 KiB passes a cap of 64 KiB, and one a byte longer is closed with 1009 without
/// reaching the broker.
#[tokio::test]
async fn max_ws_message_caps_a_websocket_clients_packets() {
    let broker = Broker::start().await;
    let (_, proxy) = start(&[&broker], "[limits]\nmax_ws_message = 65536").await;
    let mut ws = connected_ws(proxy, "capped").await;
    let fits = publish_of(64 << 10);
    send(&mut ws, &fits).await;
    // The fake broker echoes what follows the CONNECT.
    assert_eq!(receive(&mut ws, fits.len()).await, fits);
    send(&mut ws, &publish_of((64 << 10) + 1)).await;
    assert_eq!(closed(&mut ws).await, (Vec::new(), Some(CloseCode::Size)));
}

/// A WebSocket client cut by the proxy, here quiet past the idle timeout, gets a close frame
/// before the connection closes: it was dropped without one, which a client reads as an
/// abnormal closure (1006).
#[tokio::test]
async fn a_websocket_client_cut_for_idling_gets_a_close_frame() {
    let broker = Broker::start().await;
    // Keep Alive 60, above the maximum: the idle timeout applies.
    let (_, proxy) = start(&[&broker], "[limits]\nmax_keep_alive_s = 30\nidle_timeout_ms = 200").await;
    let mut ws = connected_ws(proxy, "idler").await;
    assert_eq!(closed(&mut ws).await, (Vec::new(), Some(CloseCode::Normal)));
}

/// A client that closed before its upgrade request was whole (a balancer's TCP check, a port
/// scan) was counted as a refused upgrade, and one that sent nothing by the handshake deadline
/// too: they are closed before a CONNECT, and late, as on any listener.
#[tokio::test]
async fn a_websocket_client_that_closes_or_stalls_before_its_upgrade_is_not_refused() {
    let text = "[limits]\nhandshake_deadline_ms = 300\n[[listener]]\naddr = \"127.0.0.1:0\"\n\
                websocket = \"/mqtt\"\n[[route]]\nupstreams = [\"127.0.0.1:1\"]";
    let proxy = Proxy::start(Config::parse(text).expect("valid"), Workers::current()).expect("bind proxy");
    let (addr, handle) = (proxy.local_addrs()[1], proxy.handle());
    tokio::spawn(proxy.run());
    drop(TcpStream::connect(addr).await.expect("connect"));
    let mut half = TcpStream::connect(addr).await.expect("connect");
    half.write_all(b"GET /mqtt HTTP/1.1\r\n").await.expect("send");
    drop(half);
    let _silent = TcpStream::connect(addr).await.expect("connect");
    let ended = |how: &str, why: &str| {
        format!(r#"mqtt_proxy_connections_ended_total{{how="{how}",why="{why}",code=""}}"#)
    };
    let text = crate::tests_ops::metrics_when(&handle.metrics(), "three counted", |text| {
        crate::metrics::tests::series(text, &ended("closed_before_connect", ""))
            + crate::metrics::tests::series(text, &ended("deadline", "handshake"))
            >= 3.0
    })
    .await;
    assert_eq!(crate::metrics::tests::series(&text, &ended("closed_before_connect", "")), 2.0, "{text}");
    assert_eq!(crate::metrics::tests::series(&text, &ended("deadline", "handshake")), 1.0, "{text}");
    assert!(!text.contains(r#"why="websocket""#), "{text}");
}

/// A client that resets before its CONNECT (as a balancer's TCP check does, once a second) was
/// logged as an error and counted `failed`, on a plain listener and during an upgrade; and a
/// client cut with a close frame for a frame it sent was counted `failed` too, as if the
/// socket had broken. The first are closed before a CONNECT; the second is refused, its close
/// code logged.
#[tokio::test]
async fn a_reset_before_the_connect_is_a_close_and_a_refused_frame_a_refusal() {
    let (logs, _in_force) = crate::tests_ops::Captured::in_force();
    let broker = Broker::start().await;
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n[[listener]]\naddr = \"127.0.0.2:0\"\nwebsocket = \"/mqtt\"\n\
         [[route]]\nupstreams = [{}]",
        broker.upstream()
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let (plain, ws_addr, handle) = (proxy.local_addrs()[0], proxy.local_addrs()[1], proxy.handle());
    tokio::spawn(proxy.run());
    let reset = |stream: TcpStream| {
        stream.set_zero_linger().expect("linger");
        drop(stream);
    };
    let silent = TcpStream::connect(plain).await.expect("connect");
    let mut started = TcpStream::connect(plain).await.expect("connect");
    started.write_all(&[0x10, 0x20, 0x00]).await.expect("send");
    let mut upgrading = TcpStream::connect(ws_addr).await.expect("connect");
    upgrading.write_all(b"GET /mqtt HTTP/1.1\r\n").await.expect("send");
    // Each read by the proxy before it goes.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    for stream in [silent, started, upgrading] {
        reset(stream);
    }
    let mut ws = ws_connect(ws_addr, "/mqtt", Some("mqtt")).await.expect("upgrade");
    ws.get_mut().write_all(&[0x82, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0]).await.expect("write");
    assert_eq!(closed(&mut ws).await, (Vec::new(), Some(CloseCode::Size)));

    let ended = |how: &str, why: &str| {
        format!(r#"mqtt_proxy_connections_ended_total{{how="{how}",why="{why}",code=""}}"#)
    };
    let text = crate::tests_ops::metrics_when(&handle.metrics(), "four counted", |text| {
        ["closed_before_connect", "failed"]
            .iter()
            .map(|how| crate::metrics::tests::series(text, &ended(how, "")))
            .sum::<f64>()
            + crate::metrics::tests::series(text, &ended("refused", "websocket"))
            >= 4.0
    })
    .await;
    assert_eq!(crate::metrics::tests::series(&text, &ended("closed_before_connect", "")), 3.0, "{text}");
    assert_eq!(crate::metrics::tests::series(&text, &ended("refused", "websocket")), 1.0, "{text}");
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    assert!(!text.contains("end=error"), "{text}");
    let refused = text.lines().find(|line| line.contains("end=refused")).expect("logged");
    assert!(refused.contains("WebSocket close 1009"), "{refused}");
}

/// At the drain deadline a WebSocket client was told 1000 (normal closure), which a web page
/// may take as a close it need not reconnect after: it is told 1001, going away (RFC 6455
/// 7.4.1).
#[tokio::test]
async fn a_websocket_client_cut_at_the_drain_deadline_is_told_the_proxy_is_going_away() {
    let broker = Broker::start().await;
    let text = format!(
        "[limits]\ndrain_ms = 100\n[[listener]]\naddr = \"127.0.0.1:0\"\nwebsocket = \"/mqtt\"\n\
         [[route]]\nupstreams = [{}]",
        broker.upstream()
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let (addr, handle) = (proxy.local_addrs()[1], proxy.handle());
    tokio::spawn(proxy.run());
    let mut ws = connected_ws(addr, "draining").await;
    handle.shutdown();
    assert_eq!(closed(&mut ws).await, (Vec::new(), Some(CloseCode::Away)));
}
