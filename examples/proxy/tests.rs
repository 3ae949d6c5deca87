//! The proxy example end to end over loopback TCP, in front of fake brokers that record which
//! clients reached them and echo what they are sent.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mqtt_connect::{Connect, Protocol, ReasonCode, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::config::{self, Config};
use crate::server::{Handle, Proxy};
use crate::tests_ops;
use crate::workers::Workers;

pub(crate) const V5_OK: &[u8] = &[0x20, 0x03, 0x00, 0x00, 0x00];
pub(crate) const V311_OK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
/// What a fake broker sends when its client half-closes, after echoing everything.
const BYE: &[u8] = b"bye";
/// No test should wait longer than this for anything.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// A broker stand-in: answers CONNECT with a success CONNACK, echoes every byte after it, and
/// when the client half-closes sends [`BYE`] and closes.
pub(crate) struct Broker {
    addr: SocketAddr,
    client_ids: Arc<Mutex<Vec<String>>>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Broker {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind broker");
        let addr = listener.local_addr().expect("broker address");
        let client_ids = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (ids, count) = (client_ids.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_fake(stream, ids.clone()));
            }
        });
        Self { addr, client_ids, accepted, task }
    }

    pub(crate) fn upstream(&self) -> String {
        format!("\"{}\"", self.addr)
    }

    pub(crate) fn client_ids(&self) -> Vec<String> {
        self.client_ids.lock().expect("lock").clone()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listening socket, so that connecting is refused; live connections go on.
    fn stop(&self) {
        self.task.abort();
    }
}

async fn serve_fake(mut stream: TcpStream, ids: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let (protocol, len) = loop {
        if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
        match mqtt_connect::decode(&buf) {
            Ok(Status::Complete { packet, len }) => {
                ids.lock().expect("lock").push(packet.client_id.to_owned());
                break (packet.protocol, len);
            }
            Ok(Status::Incomplete(_)) => {}
            Err(_) => return,
        }
    };
    let Some(ack) = protocol.connack(ReasonCode::Success) else { return };
    let (mut rx, mut tx) = stream.split();
    let echoed = async {
        tx.write_all(ack.as_bytes()).await?;
        tx.write_all(&buf[len..]).await?;
        tokio::io::copy(&mut rx, &mut tx).await?;
        tx.write_all(BYE).await?;
        tx.shutdown().await
    };
    echoed.await.ok();
}

/// A running proxy: where it listens, its handle, and its task.
struct Running {
    addr: SocketAddr,
    handle: Handle,
    task: JoinHandle<()>,
}

async fn start(config: &str) -> Running {
    let config = Config::parse(config).expect("test config is valid");
    let proxy = Proxy::start(config, Workers::current()).expect("bind proxy");
    let addr = proxy.local_addrs()[0];
    let handle = proxy.handle();
    let task = tokio::spawn(proxy.run());
    Running { addr, handle, task }
}

/// A config with one route over `brokers`; `limits` is TOML for the `[limits]` table.
fn config(brokers: &[&Broker], limits: &str) -> String {
    let upstreams: Vec<String> = brokers.iter().map(|b| b.upstream()).collect();
    format!(
        "listen = [\"127.0.0.1:0\"]\n[limits]\n{limits}\n[[route]]\nupstreams = [{}]\n",
        upstreams.join(", ")
    )
}

pub(crate) fn connect_packet(protocol: Protocol, client_id: &str) -> Vec<u8> {
    let connect = Connect::new(protocol, client_id);
    let mut buf = vec![0; connect.encoded_len().expect("encodable")];
    connect.encode(&mut buf).expect("encodes");
    buf
}

/// Connects through the proxy and returns the stream once the CONNACK has come back.
async fn mqtt_connect(proxy: SocketAddr, protocol: Protocol, client_id: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(proxy).await.expect("connect to proxy");
    stream.write_all(&connect_packet(protocol, client_id)).await.expect("send CONNECT");
    let mut ack = vec![0; if protocol == Protocol::V5 { 5 } else { 4 }];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut ack)).await.expect("CONNACK in time").ok();
    (stream, ack)
}

/// Everything the proxy sends until it closes.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got)).await.expect("closed in time");
    // A reset after the answer still counts as closed; what arrived is what matters.
    read.ok();
    got
}

/// What the proxy answers to `bytes`, up to its close.
async fn answer(proxy: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(proxy).await.expect("connect to proxy");
    stream.write_all(bytes).await.expect("send");
    read_to_close(&mut stream).await
}

#[tokio::test]
async fn one_client_id_always_reaches_one_broker_and_ids_spread() {
    let brokers = [Broker::start().await, Broker::start().await, Broker::start().await];
    let proxy = start(&config(&[&brokers[0], &brokers[1], &brokers[2]], "")).await;
    for round in 0..2 {
        for n in 0..30 {
            let protocol = if round == 0 { Protocol::V3_1_1 } else { Protocol::V5 };
            let (_, ack) = mqtt_connect(proxy.addr, protocol, &format!("client-{n}")).await;
            assert!(ack == V311_OK || ack == V5_OK, "{ack:x?}");
        }
    }
    let mut seen = HashSet::new();
    for broker in &brokers {
        let ids = broker.client_ids();
        assert!(!ids.is_empty(), "every broker gets some of 30 ids");
        for id in ids.iter().collect::<HashSet<_>>() {
            assert_eq!(ids.iter().filter(|i| *i == id).count(), 2, "{id} came back to the same broker");
            assert!(seen.insert(id.clone()), "{id} reached two brokers");
        }
    }
    assert_eq!(seen.len(), 30);
}

#[tokio::test]
async fn a_client_without_a_key_is_placed_by_its_address() {
    let brokers = [Broker::start().await, Broker::start().await, Broker::start().await];
    // Without the proxy's sticky ids, which would give each of them a key (tests_ws.rs).
    let config = config(&[&brokers[0], &brokers[1], &brokers[2]], "") + "assign_client_id = false\n";
    let proxy = start(&config).await;
    for _ in 0..6 {
        let (_, ack) = mqtt_connect(proxy.addr, Protocol::V5, "").await;
        assert_eq!(ack, V5_OK);
    }
    let counts: Vec<usize> = brokers.iter().map(|b| b.client_ids().len()).collect();
    assert!(counts.contains(&6), "all from 127.0.0.1 on one broker: {counts:?}");
}

#[tokio::test]
async fn failover_when_an_upstream_is_down_then_server_unavailable() {
    let brokers = [Broker::start().await, Broker::start().await, Broker::start().await];
    let proxy = start(&config(&[&brokers[0], &brokers[1], &brokers[2]], "")).await;
    let (_, ack) = mqtt_connect(proxy.addr, Protocol::V5, "mover").await;
    assert_eq!(ack, V5_OK);
    let home = brokers.iter().position(|b| b.client_ids() == ["mover"]).expect("placed somewhere");

    brokers[home].stop();
    let (_, ack) = mqtt_connect(proxy.addr, Protocol::V5, "mover").await;
    assert_eq!(ack, V5_OK, "the next broker in rank order takes it");
    let elsewhere = brokers.iter().enumerate().filter(|(i, b)| *i != home && b.client_ids() == ["mover"]);
    assert_eq!(elsewhere.count(), 1);

    brokers.iter().for_each(Broker::stop);
    let (_, ack) = mqtt_connect(proxy.addr, Protocol::V5, "mover").await;
    assert_eq!(ack, [0x20, 0x03, 0x00, 0x88, 0x00], "5.0: server unavailable");
    let (_, ack) = mqtt_connect(proxy.addr, Protocol::V3_1_1, "mover").await;
    assert_eq!(ack, [0x20, 0x02, 0x00, 0x03], "3.1.1: server unavailable");
}

#[tokio::test]
async fn bad_input_gets_the_brokers_answer_in_its_version_and_is_never_forwarded() {
    let broker = Broker::start().await;
    let proxy = start(&config(&[&broker], "")).await;
    let cases: [(&str, &[u8], &[u8]); 7] = [
        (
            "5.0 reserved flag: malformed",
            b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00",
            &[0x20, 3, 0, 0x81, 0],
        ),
        (
            "5.0 Session Expiry twice: protocol error",
            b"\x10\x17\x00\x04MQTT\x05\x02\x00\x3c\x0a\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02\x00\x00",
            &[0x20, 3, 0, 0x82, 0],
        ),
        (
            "level 6: unsupported version",
            b"\x10\x0c\x00\x04MQTT\x06\x02\x00\x3c\x00\x00",
            &[0x20, 2, 0, 0x01],
        ),
        ("3.1.1 reserved flag: malformed, closed", b"\x10\x0c\x00\x04MQTT\x04\x03\x00\x3c\x00\x00", b""),
        (
            "3.1.1 empty id, no clean session",
            b"\x10\x0c\x00\x04MQTT\x04\x00\x00\x3c\x00\x00",
            &[0x20, 2, 0, 0x02],
        ),
        ("3.1 empty id", b"\x10\x0e\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x00", &[0x20, 2, 0, 0x02]),
        ("not MQTT at all: closed at once", b"GET / HTTP/1.1\r\n\r\n", b""),
    ];
    for (case, bytes, expected) in cases {
        assert_eq!(answer(proxy.addr, bytes).await, expected, "{case}");
    }
    assert_eq!(broker.accepted(), 0, "nothing refused reaches a broker");
}

#[tokio::test]
async fn routes_match_in_order_and_a_level_mismatch_is_told_so() {
    let (v5, any) = (Broker::start().await, Broker::start().await);
    let proxy = start(&format!(
        "listen = [\"127.0.0.1:0\"]
        [[route]]
        name = \"elsewhere\"
        remote_addr = \"10.0.0.0/8\"
        upstreams = [{any}]
        [[route]]
        name = \"v5\"
        remote_addr = \"127.0.0.1\"
        protocol_name = \"MQTT\"
        protocol_level = 5
        upstreams = [{v5}]",
        any = any.upstream(),
        v5 = v5.upstream(),
    ))
    .await;
    assert_eq!(mqtt_connect(proxy.addr, Protocol::V5, "new").await.1, V5_OK);
    assert_eq!(v5.client_ids(), ["new"]);
    let old = connect_packet(Protocol::V3_1_1, "old");
    assert_eq!(answer(proxy.addr, &old).await, [0x20, 2, 0, 0x01], "3.1.1: unsupported version");
    let older = connect_packet(Protocol::V3_1, "older");
    assert_eq!(answer(proxy.addr, &older).await, b"", "no route takes MQIsdp: closed");
    assert_eq!(any.accepted(), 0);
}

#[tokio::test]
async fn a_client_dribbling_its_connect_is_cut_off_at_the_deadline() {
    let broker = Broker::start().await;
    let proxy = start(&config(&[&broker], "connect_deadline_ms = 300")).await;
    let packet = connect_packet(Protocol::V3_1_1, "slow-client-with-a-long-id");
    let stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let (mut rx, mut tx) = stream.into_split();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        for byte in packet {
            if tx.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, rx.read_to_end(&mut got)).await.expect("cut off").ok();
    let took = started.elapsed();
    assert!(got.is_empty());
    assert!(took >= Duration::from_millis(300), "not before the deadline: {took:?}");
    assert!(!dribble.is_finished(), "cut off while still dribbling, after {took:?}");
    assert_eq!(broker.accepted(), 0);
    dribble.abort();
}

#[tokio::test]
async fn a_connect_over_the_size_cap_is_refused_from_its_length() {
    let broker = Broker::start().await;
    let proxy = start(&config(&[&broker], "max_connect_size = 64")).await;
    // Remaining Length 200, and the start of a variable header: the rest never comes.
    assert_eq!(answer(proxy.addr, b"\x10\xc8\x01\x00\x04MQTT\x05").await, [0x20, 3, 0, 0x95, 0]);
    assert_eq!(answer(proxy.addr, b"\x10\xc8\x01\x00\x04MQTT\x04").await, b"", "3.1.1 has no code: closed");
    // Its fixed header alone first: refused from it, and the version read on for. It was
    // closed without a word.
    let mut split = TcpStream::connect(proxy.addr).await.expect("connect to proxy");
    split.write_all(b"\x10\xc8\x01").await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    split.write_all(b"\x00\x04MQTT\x05").await.expect("send");
    assert_eq!(read_to_close(&mut split).await, [0x20, 3, 0, 0x95, 0], "told in 5.0");
    assert_eq!(broker.accepted(), 0);
    let (_, ack) = mqtt_connect(proxy.addr, Protocol::V5, "small").await;
    assert_eq!(ack, V5_OK, "under the cap goes through");
}

#[tokio::test]
async fn bytes_pipelined_after_connect_are_forwarded_exactly() {
    let broker = Broker::start().await;
    let proxy = start(&config(&[&broker], "")).await;
    let pipelined: &[u8] = b"\x30\x0a\x00\x03a/b\x01\x02\x03\xff\x00\xc0\x00";
    let mut bytes = connect_packet(Protocol::V3_1_1, "eager");
    bytes.extend_from_slice(pipelined);
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream.write_all(&bytes).await.expect("send");
    let mut got = vec![0; V311_OK.len() + pipelined.len()];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut got)).await.expect("echo in time").expect("echo");
    assert_eq!(got, [V311_OK, pipelined].concat());
}

#[tokio::test]
async fn a_half_close_is_passed_on_and_the_other_way_keeps_flowing() {
    let broker = Broker::start().await;
    let proxy = start(&config(&[&broker], "")).await;
    let (mut stream, ack) = mqtt_connect(proxy.addr, Protocol::V5, "leaving").await;
    assert_eq!(ack, V5_OK);
    stream.write_all(b"last words").await.expect("send");
    stream.shutdown().await.expect("half-close");
    // The broker sends BYE only once it has seen the end of the client's stream.
    assert_eq!(read_to_close(&mut stream).await, [&b"last words"[..], BYE].concat());
}

#[tokio::test]
async fn a_route_may_send_a_proxy_protocol_header_before_the_connect() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = start(&format!(
        "listen = [\"127.0.0.1:0\"]\n[[route]]\nproxy_protocol = true\nupstreams = [\"{}\"]",
        upstream.local_addr().expect("address")
    ))
    .await;
    let packet = connect_packet(Protocol::V5, "behind-a-proxy");
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    client.write_all(&packet).await.expect("send");
    client.shutdown().await.expect("half-close");

    let (mut broker, _) = upstream.accept().await.expect("accept");
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, broker.read_to_end(&mut got)).await.expect("in time").expect("read");
    let header = ppp::v2::Header::try_from(got.as_slice()).expect("a PROXY v2 header first");
    let client_addr = client.local_addr().expect("address");
    assert_eq!(header.addresses, (client_addr, proxy.addr).into(), "the client's address, and the proxy's");
    assert_eq!(&got[header.as_bytes().len()..], packet, "then the CONNECT, untouched");
}

/// A config file in the test's own temporary directory.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("mqtt-proxy-test-{}-{name}.toml", std::process::id()));
        let file = Self(path);
        file.write(text);
        file
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).expect("write config file");
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

#[tokio::test]
async fn a_reload_routes_new_connections_and_keeps_live_ones() {
    let (old, new) = (Broker::start().await, Broker::start().await);
    let file = ConfigFile::new("reload", &config(&[&old], ""));
    let proxy = start(&config(&[&old], "")).await;
    let (mut live, ack) = mqtt_connect(proxy.addr, Protocol::V3_1_1, "live").await;
    assert_eq!(ack, V311_OK);

    file.write(&config(&[&new], ""));
    proxy.handle.reload(&file.0).expect("valid config reloads");
    let (_, ack) = mqtt_connect(proxy.addr, Protocol::V3_1_1, "fresh").await;
    assert_eq!(ack, V311_OK);
    assert_eq!((old.client_ids(), new.client_ids()), (vec!["live".to_owned()], vec!["fresh".to_owned()]));

    live.write_all(b"still here").await.expect("send");
    let mut echo = [0; 10];
    tokio::time::timeout(PATIENCE, live.read_exact(&mut echo)).await.expect("echo in time").expect("echo");
    assert_eq!(&echo, b"still here", "the live connection kept its upstream");
}

#[tokio::test]
async fn a_reload_opens_and_closes_listeners() {
    let broker = Broker::start().await;
    let file = ConfigFile::new("listeners", "");
    let proxy = start(&config(&[&broker], "")).await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    file.write(&config(&[&broker], "").replace("\"127.0.0.1:0\"", &format!("\"{free}\"")));
    proxy.handle.reload(&file.0).expect("valid config reloads");

    assert_eq!(mqtt_connect(free, Protocol::V5, "on-the-new-port").await.1, V5_OK);
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(proxy.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "the old listener closes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("address");
    file.write(&config(&[&broker], "").replace("\"127.0.0.1:0\"", &format!("\"{busy}\"")));
    assert!(proxy.handle.reload(&file.0).is_err(), "an address in use is refused");
    assert_eq!(mqtt_connect(free, Protocol::V5, "still-served").await.1, V5_OK);
}

#[tokio::test]
async fn a_bad_config_is_refused_and_the_old_one_stays() {
    let (good, other) = (Broker::start().await, Broker::start().await);
    let file = ConfigFile::new("bad", "");
    let proxy = start(&config(&[&good], "")).await;
    let route = |line: &str| format!("[[route]]\n{line}\n");
    let upstream = format!("upstreams = [{}]", other.upstream());
    let bad = [
        "this is not TOML".to_owned(),
        String::new(),
        format!("[limits]\nmax_connections = 0\n{}", route(&upstream)),
        format!("surprise = 1\n{}", route(&upstream)),
        format!("[limits]\nconnect_burst = 5\n{}", route(&upstream)),
        route("upstreams = []"),
        route("upstreams = [\"127.0.0.1:1883=0\"]"),
        route("upstreams = [\"no-port\"]"),
        route("upstreams = [\"127.0.0.1:99999\"]"),
        route(&format!("key = \"password\"\n{upstream}")),
        route(&format!("remote_addr = \"300.0.0.1\"\n{upstream}")),
        route(&format!("protocol_level = 6\n{upstream}")),
        route(&format!("protocol_name = \"HTTP\"\n{upstream}")),
        // Without `identity` they would do nothing: a route meant to refuse clients without a
        // certificate let them through.
        route(&format!("without_certificate = \"refuse\"\n{upstream}")),
        route(&format!("identity_source = \"san-email\"\n{upstream}")),
    ];
    for text in bad {
        assert!(Config::parse(&text).is_err(), "refused: {text}");
        file.write(&text);
        assert!(proxy.handle.reload(&file.0).is_err(), "reload refused: {text}");
    }
    let (_, ack) = mqtt_connect(proxy.addr, Protocol::V5, "after").await;
    assert_eq!(ack, V5_OK);
    assert_eq!((good.client_ids().len(), other.accepted()), (1, 0), "the old routes are in force");
}

#[tokio::test]
async fn over_the_connection_cap_clients_are_told_the_server_is_busy() {
    let broker = Broker::start().await;
    let proxy = start(&config(&[&broker], "max_connections = 1")).await;
    let (first, ack) = mqtt_connect(proxy.addr, Protocol::V5, "first").await;
    assert_eq!(ack, V5_OK);
    let v5 = connect_packet(Protocol::V5, "second");
    assert_eq!(answer(proxy.addr, &v5).await, [0x20, 3, 0, 0x89, 0]);
    let v311 = connect_packet(Protocol::V3_1_1, "third");
    assert_eq!(answer(proxy.addr, &v311).await, [0x20, 2, 0, 0x03]);
    assert_eq!(broker.accepted(), 1);
    // Counted as each refusal ends, a moment after the client has its answer; by the reason
    // code, which 3.1.1 sends as return code 0x03.
    let counted = "{how=\"refused\",why=\"busy\",code=\"0x89\"} 2\n";
    tests_ops::metrics_when(&proxy.handle.metrics(), "both refusals counted", |text| text.contains(counted))
        .await;
    drop(first);
    let deadline = Instant::now() + PATIENCE;
    while mqtt_connect(proxy.addr, Protocol::V5, "later").await.1 != V5_OK {
        assert!(Instant::now() < deadline, "the slot was given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_and_drains_live_connections() {
    let broker = Broker::start().await;
    let proxy = start(&config(&[&broker], "drain_ms = 5000")).await;
    let (mut live, ack) = mqtt_connect(proxy.addr, Protocol::V3_1_1, "draining").await;
    assert_eq!(ack, V311_OK);
    proxy.handle.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(proxy.addr).await.is_err(), "no longer accepting");
    assert!(!proxy.task.is_finished(), "waits for the live connection");
    assert_eq!(proxy.handle.live(), 1);

    live.write_all(b"ping").await.expect("send");
    live.shutdown().await.expect("half-close");
    assert_eq!(read_to_close(&mut live).await, [&b"ping"[..], BYE].concat());
    tokio::time::timeout(PATIENCE, proxy.task).await.expect("drained in time").expect("ran");
}

/// A client refused at accept, over the cap, is still waited for at shutdown, as a live one is:
/// the drain ended with the last live connection, and the refusal in progress was dropped at
/// exit without its answer, its log line or its count.
#[tokio::test]
async fn shutdown_waits_for_a_refusal_in_progress() {
    let broker = Broker::start().await;
    let proxy = start(&config(
        &[&broker],
        "max_connections = 1
drain_ms = 5000
busy_deadline_ms = 5000",
    ))
    .await;
    let (mut live, ack) = mqtt_connect(proxy.addr, Protocol::V3_1_1, "live").await;
    assert_eq!(ack, V311_OK);
    // Refused at accept, the proxy waits for its CONNECT to answer it in its version.
    let mut refused = TcpStream::connect(proxy.addr).await.expect("connect");
    // Accepted, and so refused, before accepting stops; not left in the listen queue.
    tests_ops::metrics_when(&proxy.handle.metrics(), "accepted", |text| {
        text.contains("connections_accepted_total 2\n")
    })
    .await;
    proxy.handle.shutdown();
    live.shutdown().await.expect("half-close");
    assert_eq!(read_to_close(&mut live).await, BYE);
    let mut task = proxy.task;
    let waited = tokio::time::timeout(Duration::from_millis(300), &mut task).await;
    assert!(waited.is_err(), "no live connection left, but a refusal in progress: {waited:?}");
    assert_eq!((proxy.handle.live(), proxy.handle.refusing()), (0, 1));

    refused.write_all(&connect_packet(Protocol::V5, "refused")).await.expect("send");
    assert_eq!(read_to_close(&mut refused).await, [0x20, 3, 0, 0x89, 0]);
    drop(refused);
    tokio::time::timeout(PATIENCE, task).await.expect("drained in time").expect("ran");
    let counted = "{how=\"refused\",why=\"busy\",code=\"0x89\"} 1\n";
    assert!(proxy.handle.metrics().encode().contains(counted));
}

/// Two worker threads, each accepting on its own socket of the address: every client is served
/// and counted, and shutdown waits for the connections on both.
#[tokio::test]
async fn worker_threads_serve_every_client_and_shutdown_drains_them_all() {
    let broker = Broker::start().await;
    let config = Config::parse(&config(&[&broker], "drain_ms = 5000")).expect("valid");
    let proxy =
        Proxy::start(config, Workers::threads(NonZeroUsize::new(2).expect("two")).expect("worker threads"))
            .expect("bind proxy");
    let (addr, handle) = (proxy.local_addrs()[0], proxy.handle());
    let task = tokio::spawn(proxy.run());
    let mut live = Vec::new();
    for n in 0..40 {
        let (stream, ack) = mqtt_connect(addr, Protocol::V3_1_1, &format!("worker-{n}")).await;
        assert_eq!(ack, V311_OK, "client {n}");
        live.push(stream);
    }
    assert_eq!(handle.live(), 40);

    handle.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "no worker accepts any more");
    assert!(!task.is_finished(), "waits for the live connections");
    for mut stream in live {
        stream.shutdown().await.expect("half-close");
        assert_eq!(read_to_close(&mut stream).await, BYE);
    }
    tokio::time::timeout(PATIENCE, task).await.expect("drained in time").expect("ran");
}

#[test]
fn the_sample_config_is_valid() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/proxy.toml");
    let config = Config::load(&sample).expect("examples/proxy.toml parses and checks");
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.metrics, Some(SocketAddr::from(([127, 0, 0, 1], 9102))));
}

/// Metrics on an address a listener has are refused when the config is read: the listeners
/// bound first, and the proxy exited on the metrics' bind once it had begun to take clients.
/// The sample config did so.
#[test]
fn a_metrics_address_that_a_listener_has_is_refused() {
    let text = "metrics = \"127.0.0.1:9101\"\n[[listener]]\naddr = \"127.0.0.1:9101\"\nwebsocket = \"/mqtt\"\n\
                [[route]]\nupstreams = [\"127.0.0.1:1883\"]";
    let refused = Config::parse(text).map(drop).expect_err("refused");
    assert!(refused.contains("metrics address 127.0.0.1:9101 is also a listen address"), "{refused}");
    let apart = text.replacen("9101", "9102", 1);
    assert!(Config::parse(&apart).is_ok(), "metrics apart from the listeners");
    // A listener on every address takes the metrics' port too, and the other way round.
    for (listen, metrics) in
        [("0.0.0.0:9103", "127.0.0.1:9103"), ("[::1]:9103", "[::]:9103"), ("127.0.0.1:9103", "[::]:9103")]
    {
        let text = format!(
            "listen = [\"{listen}\"]\nmetrics = \"{metrics}\"\n[[route]]\nupstreams = [\"127.0.0.1:1883\"]"
        );
        let refused = Config::parse(&text).map(drop).expect_err(&text);
        assert_eq!(
            refused,
            format!("metrics address {metrics} shares its port with listen address {listen}")
        );
    }
    let text =
        "listen = [\"0.0.0.0:9103\"]\nmetrics = \"[::1]:9103\"\n[[route]]\nupstreams = [\"127.0.0.1:1883\"]";
    assert!(Config::parse(text).is_ok(), "an IPv4 socket takes no IPv6 clients");
}

/// Settings that can never take effect are refused, as `identity_source` without `identity`
/// is: a route's certificate identity or server name without a TLS listener, a protocol name
/// and level no client sends together, a prefix for client ids the route does not assign, and
/// two health checks of one upstream, whose health is one (the last was kept, the first
/// ignored without a word).
#[test]
fn settings_that_can_never_take_effect_are_refused() {
    let route = "[[route]]\nupstreams = [\"127.0.0.1:1883\"]";
    for (setting, why) in [
        ("identity = \"username\"", "route 1 (default): identity without a TLS listener"),
        ("sni = \"a.example\"", "route 1 (default): sni without a TLS listener"),
        (
            "protocol_name = \"MQIsdp\"\nprotocol_level = 5",
            "route 1 (default): protocol_name \"MQIsdp\" is never of protocol_level 5",
        ),
        (
            "protocol_name = \"MQTT\"\nprotocol_level = 3",
            "route 1 (default): protocol_name \"MQTT\" is never of protocol_level 3",
        ),
    ] {
        let refused = Config::parse(&format!("{route}\n{setting}")).map(drop).expect_err(setting);
        assert!(refused.starts_with(why), "{setting}: {refused}");
    }
    for pair in
        ["protocol_name = \"MQIsdp\"\nprotocol_level = 3", "protocol_name = \"MQTT\"\nprotocol_level = 4"]
    {
        assert!(Config::parse(&format!("{route}\n{pair}")).is_ok(), "{pair}");
    }
    let checked = |name: &str, id: &str| {
        format!(
            "[[route]]\nname = \"{name}\"\nupstreams = [\"127.0.0.1:1883\"]\n[route.health_check]\nclient_id = \"{id}\"\n"
        )
    };
    let refused =
        Config::parse(&(checked("a", "check-a") + &checked("b", "check-b"))).map(drop).expect_err("two");
    assert_eq!(
        refused,
        "route 2 (b): health_check of upstream 127.0.0.1:1883 is not route 1's, and an upstream has one"
    );
    assert!(Config::parse(&(checked("a", "check") + &checked("b", "check"))).is_ok(), "the same check twice");
    let headed = |name: &str, header: bool| {
        format!("[[route]]\nname = \"{name}\"\nupstreams = [\"127.0.0.1:1883\"]\nproxy_protocol = {header}\n")
    };
    let refused = Config::parse(&(headed("a", true) + &headed("b", false))).map(drop).expect_err("header");
    assert_eq!(
        refused,
        "route 2 (b): proxy_protocol of upstream 127.0.0.1:1883 is not route 1's, and an upstream has one"
    );
    assert!(Config::parse(&(headed("a", true) + &headed("b", true))).is_ok(), "a header on both");
}

/// More than the socket takes at once: the first write goes straight after `connect(2)`, and
/// the rest once the upstream reads, through the event loop; every byte arrives, in order.
#[tokio::test]
async fn dial_sends_all_of_what_the_socket_would_not_take_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let (head, body, tail) = (vec![1; 3], (0..=255).cycle().take(8 << 20).collect::<Vec<u8>>(), vec![2; 5]);
    let dialing = tokio::spawn({
        let (head, body, tail) = (head.clone(), body.clone(), tail.clone());
        async move { crate::dial::dial(&addr, [&head, &body, &tail]).await.map(drop) }
    });
    let (mut upstream, _) =
        tokio::time::timeout(PATIENCE, listener.accept()).await.expect("in time").expect("accept");
    let mut got = Vec::new();
    let want = head.len() + body.len() + tail.len();
    while got.len() < want {
        let mut buf = vec![0; 64 << 10];
        let n =
            tokio::time::timeout(PATIENCE, upstream.read(&mut buf)).await.expect("in time").expect("read");
        assert_ne!(n, 0, "closed after {} of {want} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    dialing.await.expect("dial task").expect("dial");
    assert_eq!(got, [head, body, tail].concat());
}

/// With the upstream's accept queue full, its kernel drops the SYN, so `connect(2)` returns
/// still under way and the first write would block: the bytes wait for the handshake (the SYN
/// is sent again after a second) and then go.
#[tokio::test]
async fn dial_waits_for_a_handshake_still_under_way() {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("address");
    // Filled, unaccepted, until a connect goes unanswered.
    let mut queued = Vec::new();
    while let Ok(connected) = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await
    {
        queued.push(connected.expect("fill the queue"));
        assert!(queued.len() < 16, "the accept queue never filled");
    }
    let dialing =
        tokio::spawn(async move { crate::dial::dial(&addr.to_string(), [b"CONNECT", b"", b""]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!dialing.is_finished(), "the handshake cannot have completed with the queue full");
    for _ in &queued {
        listener.accept().await.expect("drain the queue");
    }
    drop(queued);
    let mut upstream = loop {
        let (stream, _) =
            tokio::time::timeout(PATIENCE, listener.accept()).await.expect("in time").expect("accept");
        let mut first = [0; 7];
        // The queued connections closed without a byte; the dialled one sends its bytes.
        if stream.peek(&mut first).await.is_ok_and(|n| n > 0) {
            break stream;
        }
    };
    tokio::time::timeout(PATIENCE, dialing).await.expect("in time").expect("dial task").expect("dial");
    let mut got = [0; 7];
    upstream.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"CONNECT");
}

/// A refused connect fails the first write with the connect's own error.
#[tokio::test]
async fn dial_reports_a_refused_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    drop(listener);
    let e = crate::dial::dial(&addr, [b"CONNECT", b"", b""]).await.expect_err("nothing listens");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// With `--config`, the file holds the limits, listeners and routes: a flag for any of them
/// beside it would be ignored without a word, so it is refused. `--metrics` (which overrides
/// the file's), `--workers` and the log flags are the command line's own.
#[test]
fn flags_the_config_file_replaces_are_refused_beside_it() {
    use clap::Parser;
    let with_config = |flag: &[&str]| {
        let args = ["proxy", "--config", "proxy.toml"].iter().chain(flag).copied().collect::<Vec<_>>();
        crate::Args::try_parse_from(args)
    };
    let replaced: [&[&str]; 11] = [
        &["--drain-ms", "60000"],
        &["--max-ws-message", "65536"],
        &["--max-connections", "5"],
        &["--connect-deadline-ms", "1000"],
        &["--handshake-deadline-ms", "1000"],
        &["--tls-cert", "server.pem"],
        &["--tls-alpn", "mqtt"],
        &["--ws-path", "/ws"],
        &["--proxy-protocol-from", "10.0.0.0/8"],
        &["--identity-source", "san-dns"],
        &["--without-certificate", "pass"],
    ];
    for flag in replaced {
        assert!(with_config(flag).is_err(), "{flag:?} beside --config is refused");
    }
    let own = ["--metrics", "127.0.0.1:0", "--workers", "2", "--log-level", "warn", "--log-format", "json"];
    assert!(with_config(&own).is_ok(), "the command line's own flags go with --config");
    // And every flag added later is one or the other.
    let command = <crate::Args as clap::CommandFactory>::command();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        let own = ["config", "metrics", "workers", "log_level", "log_format", "help", "version"];
        assert!(own.contains(&id) ^ crate::REPLACED_BY_CONFIG.contains(&id), "--config and {id}");
    }
}

/// Limits that would fail every client, or every one on some listener, are refused with the
/// key named, as `connect_deadline_ms = 0` is: no time for an upstream's connect or a TLS
/// handshake, no CONNECT small enough (the smallest, 3.1.1 with an empty id, is 14 bytes), nor
/// a WebSocket frame, no buffer for one.
#[test]
fn limits_that_fail_every_client_are_refused_by_name() {
    let route = "[[route]]\nupstreams = [\"127.0.0.1:1883\"]\n";
    for (limit, key) in [
        ("upstream_timeout_ms = 0", "upstream_timeout_ms"),
        ("handshake_deadline_ms = 0", "handshake_deadline_ms"),
        ("busy_deadline_ms = 0", "busy_deadline_ms"),
        ("max_connect_size = 13", "max_connect_size"),
        ("connect_buffer_budget = 255", "connect_buffer_budget"),
        ("max_ws_message = 0", "max_ws_message"),
        ("max_ws_message = 13", "max_ws_message"),
    ] {
        let error = Config::parse(&format!("[limits]\n{limit}\n{route}")).expect_err(limit);
        assert!(error.contains(key), "{limit}: {error}");
    }
    let least = "upstream_timeout_ms = 1\nhandshake_deadline_ms = 1\nbusy_deadline_ms = 1\n\
                 max_connect_size = 14\nconnect_buffer_budget = 256\nmax_ws_message = 14";
    let least = Config::parse(&format!("[limits]\n{least}\n{route}")).expect("the least of each");
    let smallest = connect_packet(Protocol::V3_1_1, "");
    assert_eq!(smallest.len(), 14);
    assert!(matches!(least.limits.decoder().decode(&smallest), Ok(Status::Complete { .. })));
}

/// An error from the checks after parsing, which TOML cannot place on a line, names the one key
/// at fault, and the route by its place as well as its name: routes need no name, and share
/// the default one.
#[test]
fn a_check_error_names_the_key_at_fault_and_the_route_by_place() {
    let route = "[[route]]\nupstreams = [\"127.0.0.1:1883\"]\n";
    for (limit, key, other) in [
        ("max_connections = 0", "max_connections", "connect_deadline_ms"),
        ("connect_deadline_ms = 0", "connect_deadline_ms", "max_connections"),
        ("idle_timeout_ms = 0", "idle_timeout_ms", "half_closed_timeout_ms"),
        ("half_closed_timeout_ms = 0", "half_closed_timeout_ms", "idle_timeout_ms"),
    ] {
        let error = Config::parse(&format!("[limits]\n{limit}\n{route}")).expect_err(limit);
        assert!(error.contains(key) && !error.contains(other), "{limit}: {error}");
    }
    let error = Config::parse(&format!("{route}{route}protocol_level = 6\n")).expect_err("level 6");
    assert!(error.starts_with("route 2 (default): protocol_level 6"), "{error}");
    let check = format!("{route}[route.health_check]\nrise = 0\n");
    let error = Config::parse(&check).expect_err("rise 0");
    assert!(error.contains("rise") && !error.contains("fall"), "{error}");
}

/// A listener on an IPv6 address that takes IPv4 clients too (`[::]:1883`, dual-stack, as
/// Linux binds it by default) sees an IPv4 client's address IPv4-mapped (`::ffff:127.0.0.1`).
/// A route's `remote_addr` and a listener's `proxy_protocol_from` match it as the IPv4 address
/// it is, as HAProxy's and NGINX's address ACLs do; it matched no IPv4 network, so the client
/// had no route and the balancer's PROXY header was refused as untrusted. (Bound here to the
/// mapped loopback address, which only IPv4 loopback clients reach.)
#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_is_in_its_ipv4_networks() {
    let broker = Broker::start().await;
    let config = Config::parse(&format!(
        "listen = [\"[::ffff:127.0.0.1]:0\"]
        [[listener]]
        addr = \"[::ffff:127.0.0.2]:0\"
        proxy_protocol_from = [\"127.0.0.0/8\"]
        [[route]]
        name = \"behind-the-balancer\"
        remote_addr = \"10.0.0.0/8\"
        upstreams = [{upstream}]
        [[route]]
        name = \"loopback\"
        remote_addr = \"127.0.0.0/8\"
        upstreams = [{upstream}]",
        upstream = broker.upstream(),
    ))
    .expect("valid");
    let proxy = Proxy::start(config, Workers::current()).expect("bind proxy");
    let ipv4 = |addr: SocketAddr| match addr.ip() {
        IpAddr::V6(ip) => SocketAddr::new(ip.to_ipv4_mapped().expect("mapped").into(), addr.port()),
        IpAddr::V4(_) => panic!("bound as IPv6: {addr}"),
    };
    let (plain, balanced) = (ipv4(proxy.local_addrs()[0]), ipv4(proxy.local_addrs()[1]));
    tokio::spawn(proxy.run());
    let (_, ack) = mqtt_connect(plain, Protocol::V5, "mapped").await;
    assert_eq!(ack, V5_OK, "the loopback route takes ::ffff:127.0.0.1");

    let mut stream = TcpStream::connect(balanced).await.expect("connect");
    let header = format!("PROXY TCP4 10.1.2.3 127.0.0.1 5555 {}\r\n", balanced.port());
    stream
        .write_all(&[header.as_bytes(), &connect_packet(Protocol::V5, "via-balancer")].concat())
        .await
        .expect("send");
    let mut ack = [0; 5];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut ack)).await.expect("in time").ok();
    assert_eq!(ack, V5_OK, "the header from 127.0.0.0/8 is trusted, and names a client in 10.0.0.0/8");
    assert_eq!(broker.client_ids(), ["mapped", "via-balancer"]);
}

/// The proxy listening on 127.0.0.1 and, dual-stack, on IPv6, each on a port of its own; the
/// two addresses an IPv4 loopback client connects to, the first reaching the IPv4 listener and
/// the second the IPv6 one, which sees the client as `::ffff:127.0.0.1`. The IPv6 socket is
/// bound to the mapped loopback address rather than to `[::]`, so that only loopback clients
/// reach it. `None` where this host has no IPv6 sockets.
async fn both_stacks(route: &str, limits: &str) -> Option<(Running, SocketAddr, SocketAddr)> {
    if let Err(e) = std::net::TcpListener::bind("[::ffff:127.0.0.1]:0") {
        eprintln!("skipped: no IPv6 socket on this host ({e})");
        return None;
    }
    let config = format!(
        "listen = [\"127.0.0.1:0\", \"[::ffff:127.0.0.1]:0\"]\n[limits]\n{limits}\n[[route]]\n{route}\n"
    );
    let proxy = Proxy::start(Config::parse(&config).expect("valid"), Workers::current()).expect("bind proxy");
    let (ipv4, dual) = (proxy.local_addrs()[0], proxy.local_addrs()[1]);
    let handle = proxy.handle();
    let task = tokio::spawn(proxy.run());
    let running = Running { addr: ipv4, handle, task };
    Some((running, ipv4, SocketAddr::new(ipv4.ip(), dual.port())))
}

/// The same IPv4 client is placed by its address on the same broker through a dual-stack
/// listener as through an IPv4 one, and is the same address to the takeover count. The key
/// was the address as the socket spelt it, `::ffff:127.0.0.1` through the dual-stack listener,
/// which hashes apart from `127.0.0.1`.
#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_is_placed_by_its_ipv4_address() {
    // Two brokers that the two spellings of the address place apart, so that the test can fail.
    // The brokers' ports are the kernel's choice, so brokers are started until a pair of them
    // does: the two spellings order n brokers alike with a chance of 1/n!, so with four (1/24)
    // the search would fail now and then; ten are started at most (1 in 3.6 million).
    let first = |pair: &[&Broker], key: &str| {
        let nodes: Vec<config::Upstream> =
            pair.iter().map(|b| b.addr.to_string().parse().expect("upstream")).collect();
        mqtt_connect::routing::rank(key.as_bytes(), &nodes).next()
    };
    let mut brokers = Vec::new();
    let pair = loop {
        assert!(brokers.len() < 10, "some pair of ten brokers places the two spellings apart");
        brokers.push(Broker::start().await);
        let newest = brokers.len() - 1;
        let apart = (0..newest).map(|i| [i, newest]).find(|&[i, j]| {
            first(&[&brokers[i], &brokers[j]], "127.0.0.1")
                != first(&[&brokers[i], &brokers[j]], "::ffff:127.0.0.1")
        });
        if let Some(found) = apart {
            break found;
        }
    };
    let pair = [&brokers[pair[0]], &brokers[pair[1]]];
    let route =
        format!("upstreams = [{}, {}]\nassign_client_id = false", pair[0].upstream(), pair[1].upstream());
    let Some((proxy, ipv4, dual)) = both_stacks(&route, "").await else { return };

    // No client id: placed by address.
    for addr in [ipv4, dual] {
        assert_eq!(mqtt_connect(addr, Protocol::V5, "").await.1, V5_OK);
    }
    let placed: Vec<usize> = pair.iter().map(|b| b.client_ids().len()).collect();
    assert!(placed == [2, 0] || placed == [0, 2], "on one broker through both listeners: {placed:?}");

    let (_first, ack) = mqtt_connect(ipv4, Protocol::V5, "same-client").await;
    assert_eq!(ack, V5_OK);
    let (_second, ack) = mqtt_connect(dual, Protocol::V5, "same-client").await;
    assert_eq!(ack, V5_OK);
    let takeovers = crate::metrics::tests::series(
        &proxy.handle.metrics().encode(),
        "mqtt_proxy_client_id_takeovers_total",
    );
    assert_eq!(takeovers, 0.0, "one address, so no takeover");
}

/// The same IPv4 client takes its connections from one rate bucket through an IPv4 and a
/// dual-stack listener; it had one bucket for each spelling of its address.
#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_shares_its_rate_bucket() {
    let broker = Broker::start().await;
    let route = format!("upstreams = [{}]", broker.upstream());
    let Some((_proxy, ipv4, dual)) = both_stacks(&route, "max_connects_per_s = 1\nconnect_burst = 2").await
    else {
        return;
    };
    assert_eq!(mqtt_connect(ipv4, Protocol::V5, "rate-1").await.1, V5_OK);
    assert_eq!(mqtt_connect(dual, Protocol::V5, "rate-2").await.1, V5_OK);
    let (_, ack) = mqtt_connect(dual, Protocol::V5, "rate-3").await;
    assert_eq!(ack, [0x20, 0x03, 0x00, 0x9F, 0x00], "the burst of 2 is spent, whichever listener took it");
}

/// An upstream whose host can be neither an address nor a name (a typo: a space, a bracket
/// left open, an IPv4 address with a byte over 255) or whose port is 0 is refused with the
/// config, not tried at every connect, failed, and marked down, every client of the route told
/// "server unavailable".
#[test]
fn an_upstream_host_that_is_no_address_or_name_is_refused() {
    for bad in [
        "10.0.0.1 :1883",
        "[::1:1883",
        "::1:1883",
        "broker..example:1883",
        "bro/ker:1883",
        ":1883",
        "127.0.0.300:1883",
        "10.1:1883",
        "127.0.0.1:0",
    ] {
        assert!(bad.parse::<crate::config::Upstream>().is_err(), "{bad:?} refused");
    }
    for good in [
        "10.0.0.1:1883",
        "[::1]:1883",
        "broker-1.example:1883",
        "localhost:1883=2",
        "mqtt_b:1883",
        "1e100.net:1",
    ] {
        assert!(good.parse::<crate::config::Upstream>().is_ok(), "{good:?} taken");
    }
}

/// A listener option given without a listener it applies to would be ignored without a word:
/// `--tls-cert` and the other TLS flags need `--tls-listen` or `--wss-listen`, and `--ws-path`
/// needs `--ws-listen` or `--wss-listen`. They are refused at start, as clap says what is
/// missing. The defaults (`--ws-path /mqtt`) are no flag given.
/// `--identity-source` and `--without-certificate` say how `--identity` works; without it
/// they would do nothing, so they are refused rather than ignored.
#[test]
fn identity_options_without_identity_are_refused() {
    use clap::Parser;
    let parse = |flags: &[&str]| crate::Args::try_parse_from(["proxy"].iter().chain(flags));
    for flags in [&["--identity-source", "san-dns"][..], &["--without-certificate", "pass"]] {
        let error = parse(flags).err().unwrap_or_else(|| panic!("{flags:?} without --identity is refused"));
        assert_eq!(error.kind(), clap::error::ErrorKind::MissingRequiredArgument, "{flags:?}: {error}");
        let with = [&["--identity", "username"][..], flags].concat();
        assert!(parse(&with).is_ok(), "{flags:?} with --identity is taken");
    }
    assert!(parse(&["--identity", "username"]).is_ok(), "their defaults need nothing");
}

#[test]
fn listener_options_without_their_listener_are_refused() {
    use clap::Parser;
    let parse = |flags: &[&str]| crate::Args::try_parse_from(["proxy"].iter().chain(flags));
    let tls = ["--tls-cert", "server.pem", "--tls-key", "server.key"];
    let alone: [&[&str]; 9] = [
        &tls,
        &["--tls-cert", "server.pem"],
        &["--tls-key", "server.key"],
        &["--tls-alpn", "mqtt"],
        &["--tls-client-ca", "ca.pem"],
        &["--tls-client-ca", "ca.pem", "--tls-client-auth", "required"],
        &["--tls-client-ca", "ca.pem", "--tls-crl", "crl.pem"],
        &["--ws-path", "/ws"],
        &["--ws-origin", "https://app.example.com"],
    ];
    for flags in alone {
        let error = parse(flags).err().unwrap_or_else(|| panic!("{flags:?} without its listener is refused"));
        assert_eq!(error.kind(), clap::error::ErrorKind::MissingRequiredArgument, "{flags:?}: {error}");
    }
    let ws_on_tls = ["--ws-listen", "127.0.0.1:0", "--tls-cert", "server.pem", "--tls-key", "server.key"];
    assert!(parse(&ws_on_tls).is_err(), "a plain WebSocket listener takes no TLS flags");
    let with: [&[&str]; 5] = [
        &[&tls[..], &["--tls-listen", "127.0.0.1:0", "--tls-alpn", "mqtt"]].concat(),
        &[&tls[..], &["--wss-listen", "127.0.0.1:0", "--tls-client-ca", "ca.pem", "--tls-crl", "crl.pem"]]
            .concat(),
        &["--ws-listen", "127.0.0.1:0", "--ws-path", "/ws"],
        &[&tls[..], &["--wss-listen", "127.0.0.1:0", "--ws-path", "/ws"]].concat(),
        &["--ws-listen", "127.0.0.1:0"],
    ];
    for flags in with {
        assert!(parse(flags).is_ok(), "{flags:?} with its listener is taken");
    }
    assert!(parse(&[]).is_ok(), "no flag at all");
}

/// `--listen X --ws-listen X` dropped the plain listener without a word, where a file with both
/// is refused: an address typed twice is refused from the flags too. The default address is
/// left to a listener flag that takes it, and stays beside one that does not.
#[test]
fn a_listen_address_given_to_two_listener_flags_is_refused() {
    use clap::Parser;
    let config = |flags: &[&str]| {
        crate::Args::try_parse_from(["proxy"].iter().chain(flags)).expect("flags parse").config()
    };
    let error = config(&["--listen", "127.0.0.1:26011", "--ws-listen", "127.0.0.1:26011"]).err();
    assert_eq!(error.as_deref(), Some("listen address 127.0.0.1:26011 given twice"));
    let default = SocketAddr::from(([127, 0, 0, 1], 9100));
    let taken = config(&["--ws-listen", "127.0.0.1:9100"]).expect("the default address taken");
    assert_eq!((taken.addrs(), taken.listen), (vec![default], vec![]));
    let beside = config(&["--ws-listen", "127.0.0.1:26012"]).expect("another address");
    assert_eq!(beside.listen, vec![default]);
    assert_eq!(config(&[]).expect("no flag").listen, vec![default]);
}

/// An upstream given twice in one route would silently take twice its share, and two routes of
/// one name would count into one series of the metrics: both are refused, the route named by
/// place and name as other check errors name it. Routes left unnamed share `default`, as
/// before.
#[test]
fn a_route_may_name_an_upstream_once_and_routes_may_not_share_a_name() {
    let error = Config::parse("[[route]]\nname = \"a\"\nupstreams = [\"127.0.0.1:1\"]\n[[route]]\nname = \"b\"\nupstreams = [\"127.0.0.1:1\", \"127.0.0.2:1\", \"127.0.0.1:1=3\"]")
        .expect_err("an upstream twice");
    assert_eq!(error, "route 2 (b): upstream 127.0.0.1:1 given twice");
    let error = Config::parse("[[route]]\nname = \"a\"\nupstreams = [\"127.0.0.1:1\"]\n[[route]]\nname = \"b\"\nupstreams = [\"127.0.0.1:2\"]\n[[route]]\nname = \"a\"\nupstreams = [\"127.0.0.1:3\"]")
        .expect_err("a name twice");
    assert_eq!(error, "route 3 (a): name \"a\" is route 1's too");
    let unnamed = "[[route]]\nremote_addr = \"10.0.0.0/8\"\nupstreams = [\"127.0.0.1:1\"]\n[[route]]\nupstreams = [\"127.0.0.1:1\"]";
    assert!(Config::parse(unnamed).is_ok(), "unnamed routes share the default name, and an upstream");
}

/// `max_connects_per_s = 0` turned the rate limit off and `connect_burst = 0` fell back to the
/// rate, neither documented: both are refused by name, as NGINX refuses a zero rate.
#[test]
fn a_connection_rate_or_burst_of_0_is_refused_by_name() {
    let route = "[[route]]\nupstreams = [\"127.0.0.1:1883\"]\n";
    for (limit, key) in [
        ("max_connects_per_s = 0", "limits: max_connects_per_s must be above 0"),
        ("max_connects_per_s = 5\nconnect_burst = 0", "limits: connect_burst must be above 0"),
    ] {
        let error = Config::parse(&format!("[limits]\n{limit}\n{route}")).expect_err(limit);
        assert_eq!(error, key, "{limit}");
    }
    let least = Config::parse(&format!("[limits]\nmax_connects_per_s = 1\nconnect_burst = 1\n{route}"));
    assert!(least.is_ok(), "1 is the least of each");
}

/// A reload cannot change what is read only at start; each such setting the file changes is
/// named in a warning of its own, which says it takes effect at restart, and the reload goes on
/// as before. Compared with the value in force, so that the warning comes at every reload until
/// the restart, and not for a setting put back.
#[tokio::test]
async fn a_reload_warns_of_each_setting_it_cannot_change() {
    let (logs, _in_force) = crate::tests_ops::Captured::in_force();
    let broker = Broker::start().await;
    let file = ConfigFile::new("start-only", "");
    let proxy = start(&config(&[&broker], "")).await;
    let warnings = || {
        let text = String::from_utf8(std::mem::take(&mut *logs.0.lock().expect("lock"))).expect("UTF-8");
        text.lines().filter(|line| line.contains("WARN")).map(str::to_owned).collect::<Vec<_>>()
    };
    let changed =
        "connect_buffer_budget = 1048576\nmax_refusals = 8\nmax_connects_per_s = 5\nconnect_burst = 9";
    file.write(&format!("metrics = \"127.0.0.1:1\"\n{}", config(&[&broker], changed)));
    proxy.handle.reload(&file.0).expect("valid config reloads");
    let lines = warnings();
    for setting in ["connect_buffer_budget", "max_refusals", "max_connects_per_s", "connect_burst", "metrics"]
    {
        let named: Vec<_> =
            lines.iter().filter(|line| line.contains(&format!("setting={setting}"))).collect();
        assert_eq!(named.len(), 1, "one warning for {setting}: {lines:?}");
        assert!(named[0].contains("takes effect at restart"), "{named:?}");
    }
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(mqtt_connect(proxy.addr, Protocol::V5, "after").await.1, V5_OK, "the reload went on");

    file.write(&config(&[&broker], "busy_deadline_ms = 1000"));
    proxy.handle.reload(&file.0).expect("valid config reloads");
    assert_eq!(warnings(), Vec::<String>::new(), "the values in force, and a setting a reload changes");

    // `--metrics` wins over the file's at restart too: its change takes effect never.
    proxy.handle.metrics_by_flag();
    file.write(&format!("metrics = \"127.0.0.1:1\"\n{}", config(&[&broker], "")));
    proxy.handle.reload(&file.0).expect("valid config reloads");
    assert_eq!(warnings(), Vec::<String>::new(), "the file's metrics, overridden by the flag");
}
