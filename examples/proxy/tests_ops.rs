//! The proxy example in operation, over loopback TCP: quiet connections are cut, memory and
//! descriptors are bounded, local errors spare health, and logs cannot be forged. The brokers
//! here are scripted stand-ins that misbehave on purpose.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mqtt_connect::{Connect, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, Limits};
use crate::health::{Health, Verdict};
use crate::healthcheck::tests::{checked_route, until_verdict};
use crate::metrics::tests::{scrape, series};
use crate::server::{Handle, Proxy};
use crate::workers::Workers;
use crate::{config, healthcheck, idle, limits, logfmt, metrics};

const V5_OK: &[u8] = &[0x20, 0x03, 0x00, 0x00, 0x00];
const V311_OK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
/// No test should wait longer than this for anything.
const PATIENCE: Duration = Duration::from_secs(5);

/// What a scripted broker does once it has read a CONNECT's first bytes.
#[derive(Clone, Copy)]
enum Script {
    /// Never answers, never closes: a black hole.
    Silent,
    /// Sends these bytes, then stays silent and keeps the socket open.
    Answer(&'static [u8]),
    /// Sends these bytes, then closes.
    AnswerAndClose(&'static [u8]),
    /// Sends these bytes, then echoes everything.
    AnswerAndEcho(&'static [u8]),
}

/// A broker stand-in following `script` for every connection; its sockets live as long as it.
struct Scripted {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Scripted {
    async fn start(script: Script) -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.expect("bind broker"), script)
    }

    fn on(listener: TcpListener, script: Script) -> Self {
        let addr = listener.local_addr().expect("broker address");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut first = [0; 64];
                if matches!(script, Script::Silent) {
                    held.push(stream);
                    continue;
                }
                // Whatever part of the CONNECT has come; the script does not depend on it.
                let _ = stream.read(&mut first).await;
                match script {
                    Script::Silent => {}
                    Script::Answer(bytes) => {
                        stream.write_all(bytes).await.ok();
                        held.push(stream);
                    }
                    Script::AnswerAndClose(bytes) => {
                        stream.write_all(bytes).await.ok();
                    }
                    Script::AnswerAndEcho(bytes) => {
                        tokio::spawn(async move {
                            stream.write_all(bytes).await.ok();
                            let (mut rx, mut tx) = stream.split();
                            tokio::io::copy(&mut rx, &mut tx).await.ok();
                        });
                    }
                }
            }
        });
        Self { addr, task }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Running {
    addr: SocketAddr,
    handle: Handle,
}

async fn start(broker: &Scripted, limits: &str) -> Running {
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n[limits]\n{limits}\n[[route]]\nupstreams = [\"{}\"]\n",
        broker.addr
    );
    let proxy = Proxy::start(Config::parse(&text).expect("test config is valid"), Workers::current())
        .expect("bind proxy");
    let addr = proxy.local_addrs()[0];
    let handle = proxy.handle();
    tokio::spawn(proxy.run());
    Running { addr, handle }
}

fn connect_packet(protocol: Protocol, client_id: &str, keep_alive: u16) -> Vec<u8> {
    let mut connect = Connect::new(protocol, client_id);
    connect.keep_alive = keep_alive;
    let mut buf = vec![0; connect.encoded_len().expect("encodable")];
    connect.encode(&mut buf).expect("encodes");
    buf
}

/// Sends a CONNECT through the proxy; returns the stream.
async fn send_connect(proxy: SocketAddr, protocol: Protocol, keep_alive: u16) -> TcpStream {
    let mut stream = TcpStream::connect(proxy).await.expect("connect to proxy");
    stream.write_all(&connect_packet(protocol, "quiet", keep_alive)).await.expect("send CONNECT");
    stream
}

async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut got)).await.expect("in time").expect("read");
    got
}

/// Waits until the proxy holds no connection; how long that took.
async fn until_none_live(proxy: &Running, within: Duration) -> Duration {
    let started = Instant::now();
    while proxy.handle.live() > 0 {
        assert!(started.elapsed() < within, "still {} live after {within:?}", proxy.handle.live());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// How long until the proxy closes `stream`, reading and dropping what comes.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut sink = [0; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut sink)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("not closed within {within:?}"),
        }
    }
}

// Defect 5.1: a session never ended when one side went quiet without closing.

#[tokio::test]
async fn a_client_that_left_a_silent_broker_is_freed_after_the_half_closed_timeout() {
    let broker = Scripted::start(Script::Silent).await;
    let proxy = start(&broker, "half_closed_timeout_ms = 300").await;
    let mut client = send_connect(proxy.addr, Protocol::V5, 60).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(proxy.handle.live(), 1);
    client.shutdown().await.expect("half-close");
    drop(client);
    until_none_live(&proxy, PATIENCE).await;
}

#[tokio::test]
async fn a_client_left_silent_after_the_broker_closed_is_freed_after_the_half_closed_timeout() {
    let broker = Scripted::start(Script::AnswerAndClose(V311_OK)).await;
    let proxy = start(&broker, "half_closed_timeout_ms = 300").await;
    let mut client = send_connect(proxy.addr, Protocol::V3_1_1, 60).await;
    assert_eq!(read_exactly(&mut client, 4).await, V311_OK);
    // The client neither sends nor closes; the proxy must not hold it for good.
    until_none_live(&proxy, PATIENCE).await;
}

#[tokio::test]
async fn mqtt_3_1_2_24_a_client_silent_for_one_and_a_half_keep_alives_is_closed() {
    let broker = Scripted::start(Script::Answer(V311_OK)).await;
    let proxy = start(&broker, "").await;
    let mut client = send_connect(proxy.addr, Protocol::V3_1_1, 1).await;
    assert_eq!(read_exactly(&mut client, 4).await, V311_OK);
    let took = until_closed(&mut client, PATIENCE).await;
    assert!(took >= Duration::from_millis(1300), "not before 1.5 s of quiet: {took:?}");
    until_none_live(&proxy, PATIENCE).await;
}

#[tokio::test]
async fn a_client_that_pings_within_its_keep_alive_stays() {
    let broker = Scripted::start(Script::AnswerAndEcho(V311_OK)).await;
    let proxy = start(&broker, "").await;
    let mut client = send_connect(proxy.addr, Protocol::V3_1_1, 1).await;
    assert_eq!(read_exactly(&mut client, 4).await, V311_OK);
    // PINGREQ every 0.7 s for 3 s: twice the 1.5 s limit, never quiet that long.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        client.write_all(&[0xC0, 0x00]).await.expect("ping");
        assert_eq!(read_exactly(&mut client, 2).await, [0xC0, 0x00], "echoed");
    }
    assert_eq!(proxy.handle.live(), 1);
}

/// A 5.0 CONNACK carrying Server Keep Alive 1 (property 0x13), after a Receive Maximum.
const V5_OK_SERVER_KEEP_ALIVE_1: &[u8] = &[0x20, 0x09, 0x00, 0x00, 0x06, 0x21, 0x00, 0x0A, 0x13, 0x00, 0x01];

#[tokio::test]
async fn mqtt_3_2_2_21_the_brokers_server_keep_alive_replaces_the_clients() {
    let broker = Scripted::start(Script::Answer(V5_OK_SERVER_KEEP_ALIVE_1)).await;
    let proxy = start(&broker, "").await;
    let mut client = send_connect(proxy.addr, Protocol::V5, 600).await;
    let ack = read_exactly(&mut client, V5_OK_SERVER_KEEP_ALIVE_1.len()).await;
    assert_eq!(ack, V5_OK_SERVER_KEEP_ALIVE_1, "relayed byte for byte");
    let took = until_closed(&mut client, PATIENCE).await;
    assert!(took >= Duration::from_millis(1300), "held for 1.5 s: {took:?}");
}

#[tokio::test]
async fn a_sticky_client_gets_the_server_keep_alive_and_its_connack_is_counted() {
    let broker = Scripted::start(Script::Answer(V5_OK_SERVER_KEEP_ALIVE_1)).await;
    let proxy = start(&broker, "").await;
    // An empty client id: the proxy assigns one and rewrites the CONNACK before the relay.
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect to proxy");
    client.write_all(&connect_packet(Protocol::V5, "", 600)).await.expect("send CONNECT");
    let mut ack = vec![0; 2];
    tokio::time::timeout(PATIENCE, client.read_exact(&mut ack)).await.expect("in time").expect("read");
    let mut rest = vec![0; usize::from(ack[1])];
    tokio::time::timeout(PATIENCE, client.read_exact(&mut rest)).await.expect("in time").expect("read");
    assert!(rest.windows(2).any(|w| w == [0x12, 0x00]), "an Assigned Client Identifier: {rest:x?}");
    assert!(
        rest.windows(3).any(|w| w == [0x13, 0x00, 0x01]),
        "the broker's Server Keep Alive kept: {rest:x?}"
    );
    let took = until_closed(&mut client, PATIENCE).await;
    assert!(took >= Duration::from_millis(1300), "held for 1.5 s of the broker's keep alive: {took:?}");
    let counted = format!("upstream=\"{}\",code=\"0x00\"", broker.addr);
    let metrics = proxy.handle.metrics();
    let started = Instant::now();
    while !metrics.encode().contains(&counted) {
        assert!(started.elapsed() < PATIENCE, "the broker's CONNACK counted: {}", metrics.encode());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn keep_alive_zero_or_above_the_maximum_gets_the_idle_cap() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let proxy = start(&broker, "max_keep_alive_s = 100\nidle_timeout_ms = 400").await;
    for keep_alive in [0, 101] {
        let mut client = send_connect(proxy.addr, Protocol::V5, keep_alive).await;
        assert_eq!(read_exactly(&mut client, 5).await, V5_OK);
        let took = until_closed(&mut client, PATIENCE).await;
        assert!(took < Duration::from_secs(3), "keep alive {keep_alive}: the cap, not 1.5× it: {took:?}");
    }
}

#[test]
fn the_idle_limit_is_one_and_a_half_keep_alives_up_to_the_maximum() {
    let limits = Limits { max_keep_alive_s: 100, idle_timeout_ms: 7_000, ..Limits::default() };
    let quiet = idle::Quiet::new(&limits);
    assert_eq!(quiet.limit(2), Duration::from_secs(3));
    assert_eq!(quiet.limit(100), Duration::from_secs(150));
    assert_eq!(quiet.limit(0), Duration::from_secs(7));
    assert_eq!(quiet.limit(101), Duration::from_secs(7));
}

/// Once one side has closed, the connection is cut at the shorter of its idle limit and the
/// half-closed timeout, and named for the half-close only when that is the shorter: a long
/// half-closed timeout does not stretch the idle limit.
#[test]
fn a_half_closed_connection_is_cut_at_the_shorter_of_its_limits() {
    let idle = Duration::from_secs(3);
    for (half_closed_timeout_ms, cut) in [
        (5_000, idle::Cut::Idle(idle)),
        (3_000, idle::Cut::Idle(idle)),
        (1_000, idle::Cut::HalfClosed(Duration::from_secs(1))),
    ] {
        let limits = Limits { half_closed_timeout_ms, ..Limits::default() };
        let mut activity = idle::Activity::new(idle::Quiet::new(&limits), 2);
        let last = Instant::now();
        activity.touch(last);
        assert_eq!(activity.deadline(), (Some(last + idle), idle::Cut::Idle(idle)), "both open");
        activity.half_close();
        let limit = idle.min(Duration::from_millis(half_closed_timeout_ms));
        assert_eq!(activity.deadline(), (Some(last + limit), cut), "{half_closed_timeout_ms} ms");
    }
}

#[test]
fn the_brokers_connack_is_read_across_reads_and_only_once() {
    use crate::broker_connack::{BrokerConnack, Sniff};
    use mqtt_connect::ReasonCode;
    let accepted = |server_keep_alive| Some(BrokerConnack { code: ReasonCode::Success, server_keep_alive });
    let mut sniff = Sniff::new(Protocol::V5);
    let (head, tail) = V5_OK_SERVER_KEEP_ALIVE_1.split_at(6);
    assert_eq!(sniff.feed(head), None);
    assert_eq!(sniff.feed(tail), accepted(Some(1)));
    assert_eq!(sniff.feed(V5_OK_SERVER_KEEP_ALIVE_1), None, "the first packet only");

    // A 3.1.1 return code by its 5.0 name, as the crate's decoder gives it.
    let refused = [0x20, 0x02, 0x00, 0x05];
    let not_authorized = Some(BrokerConnack { code: ReasonCode::NotAuthorized, server_keep_alive: None });
    assert_eq!(Sniff::new(Protocol::V3_1_1).feed(&refused), not_authorized);
    // Properties of every shape before 0x13: Reason String, User Property, Maximum Packet
    // Size, Session Expiry Interval.
    let props: &[u8] = &[
        0x1F, 0x00, 0x02, b'o', b'k', 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', 0x27, 0, 0, 1, 0, 0x11, 0, 0,
        0, 9, 0x13, 0x00, 0x2A,
    ];
    let mut ack = vec![0x20, 3 + props.len() as u8, 0x00, 0x00, props.len() as u8];
    ack.extend_from_slice(props);
    assert_eq!(Sniff::new(Protocol::V5).feed(&ack), accepted(Some(42)));
    assert_eq!(
        Sniff::new(Protocol::V3_1_1).feed(V5_OK_SERVER_KEEP_ALIVE_1),
        None,
        "read in the client's version"
    );
    assert_eq!(Sniff::new(Protocol::V5).feed(b"\x30\x02ab"), None, "not a CONNACK");
    assert_eq!(Sniff::new(Protocol::V5).feed(&[0x20, 0xFF, 0xFF, 0xFF, 0xFF]), None, "bad length");
}

#[test]
fn the_brokers_connack_is_read_the_same_wherever_its_reads_split_it() {
    use crate::broker_connack::{BrokerConnack, Sniff};
    use mqtt_connect::ReasonCode;
    // Whole in one read, it is decoded in place; in parts, from what was kept of the first.
    let accepted = Some(BrokerConnack { code: ReasonCode::Success, server_keep_alive: Some(1) });
    // A PUBLISH after it in the same bytes changes nothing.
    let mut stream = V5_OK_SERVER_KEEP_ALIVE_1.to_vec();
    stream.extend_from_slice(b"\x30\x03\x00\x01t");
    let whole = V5_OK_SERVER_KEEP_ALIVE_1.len();
    for first in 0..=stream.len() {
        for second in first..=stream.len() {
            let mut sniff = Sniff::new(Protocol::V5);
            let reads = [&stream[..first], &stream[first..second], &stream[second..]];
            let answers = reads.map(|read| sniff.feed(read));
            let done_at = if first >= whole {
                0
            } else if second >= whole {
                1
            } else {
                2
            };
            for (i, answer) in answers.into_iter().enumerate() {
                let expected = if i == done_at { accepted } else { None };
                assert_eq!(answer, expected, "reads split at {first} and {second}, read {i}");
            }
        }
    }
}

// Defect 5.2: memory through CONNECT buffering.

/// The first bytes of a 5.0 CONNECT announcing `remaining` bytes: fixed header, protocol name
/// and level, flags, Keep Alive, and the start of its properties.
fn connect_start(remaining: u32) -> Vec<u8> {
    let mut bytes = vec![0x10];
    let mut n = remaining;
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        bytes.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            break;
        }
    }
    bytes.extend_from_slice(b"\x00\x04MQTT\x05\x02\x00\x3c");
    bytes
}

/// A 5.0 CONNECT of about `len` bytes in all, most of them its client id.
fn big_connect(len: usize) -> Vec<u8> {
    connect_packet(Protocol::V5, &"x".repeat(len.saturating_sub(20)), 60)
}

#[tokio::test]
async fn connect_bytes_buffered_at_once_are_bounded_by_a_budget() {
    let broker = Scripted::start(Script::AnswerAndEcho(V5_OK)).await;
    let proxy = start(&broker, "connect_buffer_budget = 12288\nmax_connect_size = 16384").await;
    // One client parks 5000 of the 10000 bytes it announces; its buffer holds what arrived,
    // 8192 bytes at most.
    let mut parked = TcpStream::connect(proxy.addr).await.expect("connect");
    let mut start_of = connect_start(10_000);
    start_of.resize(5_000, 0);
    parked.write_all(&start_of).await.expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A second doing the same would take the buffered bytes past the budget: it is told the
    // server is busy, in its version.
    let mut second = TcpStream::connect(proxy.addr).await.expect("connect");
    second.write_all(&start_of).await.expect("send");
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, second.read_to_end(&mut got)).await.expect("answered in time").ok();
    assert_eq!(got, [0x20, 0x03, 0x00, 0x89, 0x00]);
    // A small CONNECT still fits beside the parked one.
    let mut small = send_connect(proxy.addr, Protocol::V5, 60).await;
    assert_eq!(read_exactly(&mut small, 5).await, V5_OK);
}

#[tokio::test]
async fn a_connect_buffer_grows_with_what_arrived_not_with_what_is_announced() {
    let broker = Scripted::start(Script::AnswerAndEcho(V5_OK)).await;
    let proxy = start(&broker, "connect_buffer_budget = 2048\nmax_connect_size = 16384").await;
    // Three clients each announce 16000 bytes and send 20: together far less than the budget.
    let mut parked = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
        stream.write_all(&connect_start(16_000)).await.expect("send");
        parked.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut small = send_connect(proxy.addr, Protocol::V5, 60).await;
    assert_eq!(read_exactly(&mut small, 5).await, V5_OK);
}

#[tokio::test]
async fn over_the_cap_only_the_bytes_that_give_the_version_are_awaited() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let proxy = start(&broker, "max_connections = 1").await;
    let mut first = send_connect(proxy.addr, Protocol::V5, 60).await;
    assert_eq!(read_exactly(&mut first, 5).await, V5_OK);
    // The rest of this CONNECT never comes; the version is in its first 14 bytes.
    let mut busy = TcpStream::connect(proxy.addr).await.expect("connect");
    busy.write_all(&connect_start(10_000)).await.expect("send");
    assert_eq!(read_exactly(&mut busy, 5).await, [0x20, 0x03, 0x00, 0x89, 0x00]);
}

#[tokio::test]
async fn the_default_size_cap_is_16_kib_as_haproxy_s_buffer() {
    assert_eq!(Limits::default().max_connect_size, 16 * 1024);
    let broker = Scripted::start(Script::AnswerAndEcho(V5_OK)).await;
    let proxy = start(&broker, "").await;
    let mut fits = TcpStream::connect(proxy.addr).await.expect("connect");
    fits.write_all(&big_connect(16_000)).await.expect("send");
    assert_eq!(read_exactly(&mut fits, 5).await, V5_OK);
    let mut over = TcpStream::connect(proxy.addr).await.expect("connect");
    over.write_all(&connect_start(17_000)).await.expect("send");
    assert_eq!(read_exactly(&mut over, 5).await, [0x20, 0x03, 0x00, 0x95, 0x00], "packet too large");
}

// Defect 5.3: descriptors ran out before the cap, and refusals were counted against nothing.

#[tokio::test]
async fn refusals_in_progress_are_counted_against_their_own_limit() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let proxy = start(&broker, "max_connections = 1\nmax_refusals = 1\nbusy_deadline_ms = 4000").await;
    let mut first = send_connect(proxy.addr, Protocol::V5, 60).await;
    assert_eq!(read_exactly(&mut first, 5).await, V5_OK);
    // A silent client past the cap takes the one place among the refusals in progress...
    let _silent = TcpStream::connect(proxy.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so the next is closed at once, unanswered, rather than hold a descriptor too.
    let mut next = send_connect(proxy.addr, Protocol::V5, 60).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), next.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "closed before the busy deadline");
    assert_eq!(got, b"");
}

/// A client refused as busy that sent nothing by the busy deadline, or closed, was counted as
/// late or as closed before its CONNECT: the refusals went uncounted just as the cap was hit.
/// It is refused as busy, unanswered. And a client told busy was logged with `version=-`,
/// though its version was read for the answer.
#[tokio::test]
async fn a_busy_client_that_stays_quiet_or_leaves_is_counted_as_refused_busy() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let proxy = start(&broker, "max_connections = 1\nbusy_deadline_ms = 200").await;
    let mut first = send_connect(proxy.addr, Protocol::V5, 60).await;
    assert_eq!(read_exactly(&mut first, 5).await, V5_OK);
    let _silent = TcpStream::connect(proxy.addr).await.expect("connect");
    drop(TcpStream::connect(proxy.addr).await.expect("connect"));
    // Its version, read for the answer, is in the log line too.
    let (logs, _in_force) = Captured::in_force();
    let mut told = send_connect(proxy.addr, Protocol::V5, 60).await;
    assert_eq!(read_exactly(&mut told, 5).await, [0x20, 0x03, 0x00, 0x89, 0x00]);
    let unanswered = r#"mqtt_proxy_connections_ended_total{how="refused",why="busy",code=""}"#;
    metrics_when(&proxy.handle.metrics(), "both unanswered", |text| series(text, unanswered) >= 2.0).await;
    drop(told);
    let told = r#"mqtt_proxy_connections_ended_total{how="refused",why="busy",code="0x89"}"#;
    metrics_when(&proxy.handle.metrics(), "the told one", |text| series(text, told) >= 1.0).await;
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    let line = text.lines().find(|line| line.contains("CONNACK 0x89")).expect("logged");
    assert!(line.contains(" version=5.0 "), "{line}");
}

/// The descriptors open at start grow with the workers and with what was inherited; the cap
/// counts them.
#[test]
fn the_descriptors_open_are_counted() {
    let held: Vec<std::fs::File> = (0..50).map(|_| std::fs::File::open("/dev/null").expect("open")).collect();
    // Stdin, stdout and stderr, and the 50; other tests' descriptors can only add to it.
    assert!(limits::open_descriptors() >= 53, "{}", limits::open_descriptors());
    drop(held);
}

#[test]
fn the_default_cap_is_two_descriptors_a_session_after_those_open_a_reserve_and_the_health_checks() {
    let cap = |descriptors, open, refusals, checked| {
        limits::descriptor_cap(limits::free_descriptors(descriptors, open, refusals), checked)
    };
    assert_eq!(limits::default_refusals(1024), 64);
    assert_eq!(cap(1024, 20, 64, 0), (1024 - 20 - 16 - 64) / 2);
    assert_eq!(cap(1024, 20, 64, 10), (1024 - 20 - 16 - 64 - 10) / 2, "a socket for each checked upstream");
    assert_eq!(limits::default_refusals(1 << 20), 4096);
    assert_eq!(cap(1 << 20, 300, 4096, 0), ((1 << 20) - 300 - 16 - 4096) / 2);
    assert_eq!(cap(64, 60, 8, 0), 1, "never 0");
    assert_eq!(cap(64, 20, 8, 100), 1, "never 0");
}

/// A configured cap past what the descriptors allow would let them run out under load; the
/// descriptors' cap is in force instead, and a cap within them is kept as configured.
#[test]
fn a_configured_cap_past_the_descriptors_is_lowered_to_fit_them() {
    let guards = limits::Guards::new(&Limits::default());
    let fits = guards.max_connections(&Limits::default(), 0);
    let past = Limits { max_connections: Some(fits + 1), ..Limits::default() };
    assert_eq!(guards.max_connections(&past, 0), fits);
    assert_eq!(guards.lowered_cap(&past, 0), Some((fits + 1, fits)));

    let within = Limits { max_connections: Some(fits), ..Limits::default() };
    assert_eq!(guards.max_connections(&within, 0), fits);
    assert_eq!(guards.lowered_cap(&within, 0), None);
    // Health checks of 4 upstreams hold 4 descriptors: two sessions' worth.
    assert_eq!(guards.max_connections(&within, 4), fits - 2);
    assert_eq!(guards.lowered_cap(&within, 4), Some((fits, fits - 2)));
    let below = Limits { max_connections: Some(1), ..Limits::default() };
    assert_eq!(guards.max_connections(&below, 0), 1);
}

/// The start's log named the cap the descriptors allow as `max_connections`, not the one in
/// force: a configured cap of 1 was logged as thousands. The cap in force is logged, and
/// refusals that leave no descriptor for a connection are warned of.
#[tokio::test]
async fn the_cap_logged_is_the_cap_in_force() {
    let (logs, _in_force) = Captured::in_force();
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let _proxy = start(&broker, "max_connections = 1").await;
    let all = Limits { max_refusals: Some(usize::MAX), ..Limits::default() };
    let _guards = limits::Guards::new(&all);
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    let caps: Vec<&str> = text.lines().filter(|line| line.contains("max_connections=")).collect();
    assert_eq!(caps.len(), 1, "{text}");
    assert!(caps[0].ends_with("connection cap max_connections=1"), "{text}");
    let warned = text.lines().filter(|line| line.contains("WARN") && line.contains("lower max_refusals"));
    assert_eq!(warned.count(), 1, "{text}");
}

/// A bind that fails names the address, so that the operator knows which of several is taken.
#[tokio::test]
async fn a_listen_address_that_cannot_be_bound_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = taken.local_addr().expect("its address");
    let text = format!("listen = [\"127.0.0.1:0\", \"{addr}\"]\n[[route]]\nupstreams = [\"127.0.0.1:1\"]");
    // `SO_REUSEPORT` lets the proxy share a port only with sockets that set it too.
    let error = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).err().expect("taken");
    assert_eq!(error.to_string(), format!("{addr}: Address already in use (os error 98)"));
}

#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
    let raised = limits::raise_descriptor_limit().expect("raised");
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("read");
    assert_eq!((raised, soft), (hard, hard));
}

// Defect 5.4: a local error on an upstream connect was taken for the broker's failure.

#[test]
fn local_errors_are_told_from_the_brokers() {
    for local in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM, libc::EADDRNOTAVAIL] {
        assert!(limits::is_local(&std::io::Error::from_raw_os_error(local)), "errno {local}");
    }
    for broker in [libc::ECONNREFUSED, libc::ECONNRESET, libc::EHOSTUNREACH, libc::ETIMEDOUT] {
        assert!(!limits::is_local(&std::io::Error::from_raw_os_error(broker)), "errno {broker}");
    }
    assert!(limits::out_of_descriptors(&std::io::Error::from_raw_os_error(libc::EMFILE)));
    assert!(!limits::out_of_descriptors(&std::io::Error::from_raw_os_error(libc::ECONNABORTED)));
}

// Defect 5.5: log injection through the client id.

/// Log output, captured.
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// The capture in force on this thread, if any.
    static CAPTURING: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

impl Captured {
    /// Captures this thread's log lines, as text without colours, while the guard lives.
    ///
    /// One subscriber serves the whole test binary and writes each line to the capture of the
    /// thread that logged it. A subscriber per test (`set_default`) lost lines: while only one
    /// is set, tracing takes a callsite's interest from the thread that logs there first, so a
    /// test without a capture could switch the callsite off for the test with one.
    pub(crate) fn in_force() -> (Self, InForce) {
        static SUBSCRIBER: std::sync::Once = std::sync::Once::new();
        SUBSCRIBER.call_once(|| tracing_subscriber::fmt().with_writer(ThisThread).with_ansi(false).init());
        let logs = Self::default();
        CAPTURING.with(|capturing| capturing.replace(Some(logs.clone())));
        (logs, InForce)
    }
}

/// Ends this thread's capture when dropped.
pub(crate) struct InForce;

impl Drop for InForce {
    fn drop(&mut self) {
        CAPTURING.with(|capturing| capturing.take());
    }
}

/// The writer of the test binary's subscriber: the logging thread's capture, or nowhere.
struct ThisThread;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThisThread {
    type Writer = ThisThreads;

    fn make_writer(&'a self) -> ThisThreads {
        ThisThreads(CAPTURING.with(|capturing| capturing.borrow().clone()))
    }
}

/// One log line's way to the capture of the thread that logged it, if it has one.
struct ThisThreads(Option<Captured>);

impl std::io::Write for ThisThreads {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Some(captured) => captured.write(bytes),
            None => Ok(bytes.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_client_id_cannot_forge_a_log_line_reach_a_terminal_or_flood_a_line() {
    let (logs, _in_force) = Captured::in_force();
    let broker = Scripted::start(Script::AnswerAndClose(V311_OK)).await;
    let proxy = start(&broker, "max_connect_size = 65536").await;
    let forged = "evil\n2099-01-01T00:00:00.000000Z  INFO peer=6.6.6.6 end=client closed\x1b[2J\u{202E}";
    let client_id = format!("{forged}{}", "A".repeat(60_000));
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    client.write_all(&connect_packet(Protocol::V3_1_1, &client_id, 60)).await.expect("send");
    assert_eq!(read_exactly(&mut client, 4).await, V311_OK);
    drop(client);
    until_none_live(&proxy, PATIENCE).await;

    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    let lines: Vec<&str> = text.lines().filter(|line| line.contains("client_id=")).collect();
    assert_eq!(lines.len(), 1, "one line for one connection: {text}");
    let line = lines[0];
    assert!(!line.contains('\x1b') && !line.contains('\u{202E}'), "no raw ESC or bidi control: {line}");
    assert!(line.contains(r"evil\n2099-01-01T00:00:00.000000Z  INFO peer=6.6.6.6"), "escaped: {line}");
    assert!(line.contains(r"\u{1b}[2J\u{202e}"), "escaped: {line}");
    assert!(line.len() < 1024, "cut: {} bytes", line.len());
    let kept = client_id.char_indices().nth(logfmt::MAX_CHARS).expect("longer").0;
    assert!(line.contains(&format!("AAA…(+{} bytes)", client_id.len() - kept)), "marked: {line}");
}

#[test]
fn a_logged_field_is_escaped_and_cut_with_a_marker() {
    assert_eq!(logfmt::field("plain-id_1"), "plain-id_1");
    assert_eq!(logfmt::field("a\"b\\c\td\re"), r#"a\"b\\c\td\re"#);
    assert_eq!(logfmt::field("\u{7}\u{9b}"), r"\u{7}\u{9b}");
    let long = "é".repeat(200);
    let cut = logfmt::field(&long);
    assert_eq!(cut, format!("{}…(+{} bytes)", "é".repeat(logfmt::MAX_CHARS), 2 * (200 - logfmt::MAX_CHARS)));
}

/// Set when this test binary runs as the child of the test below, for that test alone.
const JSON_LINES_CHILD: &str = "PROXY_TEST_JSON_LINES_CHILD";

/// In JSON lines the writer escapes, so a field is only cut: escaped as well, it would read
/// `a\\\"b` to a consumer. JSON is set once for the whole process, so the test runs in a child
/// (this test binary, for this test alone), away from the tests of text lines.
#[test]
fn in_json_lines_a_field_is_cut_but_not_escaped() {
    if std::env::var_os(JSON_LINES_CHILD).is_some() {
        logfmt::leave_escaping_to_json();
        assert_eq!(logfmt::field("a\"b\\c\nd\u{1b}\u{202E}"), "a\"b\\c\nd\u{1b}\u{202E}");
        let long = "\n".repeat(200);
        assert_eq!(
            logfmt::field(&long),
            format!("{}…(+{} bytes)", &long[..logfmt::MAX_CHARS], 200 - logfmt::MAX_CHARS)
        );
        return;
    }
    let name = "tests_ops::in_json_lines_a_field_is_cut_but_not_escaped";
    let child = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", name, "--nocapture"])
        .env(JSON_LINES_CHILD, "1")
        .output()
        .expect("the child runs");
    let out = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "{out}{}", String::from_utf8_lossy(&child.stderr));
    assert!(out.contains("1 passed"), "the child ran the test: {out}");
}

/// `EnvFilter` takes a word alone for a target: `--log-level warning` let through nothing, the
/// error that the proxy could not listen included. A level, a filter and a target with its
/// level are taken.
#[test]
fn a_log_level_that_is_no_level_is_refused_not_taken_for_a_target() {
    for wrong in ["warning", "warnn", "info,warning", "proxy"] {
        let refused = crate::log_filter(wrong).expect_err(wrong);
        assert!(refused.contains("is not a level"), "{wrong}: {refused}");
    }
    for right in ["warn", "WARN", "2", "info,proxy::session=warn", "rustls=trace", "proxy::relay", "off"] {
        crate::log_filter(right).unwrap_or_else(|e| panic!("{right}: {e}"));
    }
}

// Defect 5.6: sessions cut at the drain deadline went unlogged.

#[tokio::test]
async fn connections_cut_at_the_drain_deadline_are_closed_and_logged() {
    let (logs, _in_force) = Captured::in_force();
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n[limits]\ndrain_ms = 300\n[[route]]\nupstreams = [\"{}\"]\n",
        broker.addr
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let (addr, handle) = (proxy.local_addrs()[0], proxy.handle());
    let running = tokio::spawn(proxy.run());
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = send_connect(addr, Protocol::V5, 60).await;
        assert_eq!(read_exactly(&mut client, 5).await, V5_OK);
        clients.push(client);
    }
    handle.shutdown();
    tokio::time::timeout(PATIENCE, running).await.expect("ended in time").expect("ran");
    for client in &mut clients {
        until_closed(client, PATIENCE).await;
    }
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    assert_eq!(text.matches("end=cut at the drain deadline").count(), 3, "{text}");
}

/// Connections not yet relaying at the drain deadline are cut as relays are: closed, logged
/// and counted `drained`, and the shutdown does not wait on them. They were left running
/// unlogged while `run` waited its moment for log lines, then dropped as the process exited. A
/// refused client still lingering is over and logged as refused, its linger cut short.
#[tokio::test]
async fn connections_before_their_relay_are_cut_logged_and_counted_at_the_drain_deadline() {
    let (logs, _in_force) = Captured::in_force();
    let (hole, _listener, _filler) = black_hole().await;
    let silent = Scripted::start(Script::Silent).await;
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n\
         [[listener]]\naddr = \"127.0.0.2:0\"\nproxy_protocol_from = [\"127.0.0.0/8\"]\n\
         [[listener]]\naddr = \"127.0.0.3:0\"\nwebsocket = \"/mqtt\"\n\
         [limits]\ndrain_ms = 300\nupstream_timeout_ms = 60000\n\
         connect_deadline_ms = 60000\nhandshake_deadline_ms = 60000\n\
         [[route]]\nprotocol_level = 4\nupstreams = [\"{hole}\"]\n\
         [[route]]\nupstreams = [\"{}\"]\n",
        silent.addr
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let (plain, proxied, ws) = (proxy.local_addrs()[0], proxy.local_addrs()[1], proxy.local_addrs()[2]);
    let handle = proxy.handle();
    let metrics = handle.metrics();
    let running = tokio::spawn(proxy.run());

    let cut = "end=cut at the drain deadline";
    let refused = "end=refused (Connect Flags: reserved bit is set): CONNACK 0x81";
    let invalid = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00".to_vec();
    let steps: [(&str, SocketAddr, Vec<u8>, &str); 6] = [
        ("reading a PROXY header", proxied, b"PROXY TCP4 10.1.2.3".to_vec(), cut),
        ("upgrading to WebSocket", ws, b"GET /mqtt HTTP/1.1\r\n".to_vec(), cut),
        ("reading its CONNECT", plain, connect_packet(Protocol::V5, "partial", 60)[..9].to_vec(), cut),
        ("dialling a broker", plain, connect_packet(Protocol::V3_1_1, "dialling", 60), cut),
        ("waiting for the broker's CONNACK", plain, connect_packet(Protocol::V5, "", 60), cut),
        ("lingering after its refusal", plain, invalid, refused),
    ];
    let mut clients = Vec::new();
    for (step, addr, bytes, end) in steps {
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client.write_all(&bytes).await.expect("send");
        // Its transport is the listener's, though it was cut before it arrived.
        let transport = if addr == ws { "transport=ws " } else { "transport=tcp " };
        clients.push((step, client, transport, end));
    }
    let accepting = Instant::now();
    while handle.live() < clients.len() {
        assert!(accepting.elapsed() < PATIENCE, "{} of {} accepted", handle.live(), clients.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Each reaches its step.
    tokio::time::sleep(Duration::from_millis(100)).await;

    handle.shutdown();
    tokio::time::timeout(PATIENCE, running).await.expect("ended in time").expect("ran");
    // Each gave its place back before `run` stopped waiting for log lines: none was left to be
    // dropped at exit. (Before, all six were still live then.)
    assert_eq!(handle.live(), 0, "every connection ended at the cut");
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    for (step, client, transport, end) in &mut clients {
        let peer = format!("peer={} {transport}", client.local_addr().expect("address"));
        let line = text.lines().find(|line| line.contains(&peer));
        assert!(line.is_some_and(|l| l.ends_with(*end)), "{step}: {text}");
        until_closed(client, PATIENCE).await;
    }
    let counted = metrics.encode();
    let drained = r#"mqtt_proxy_connections_ended_total{how="drained",why="",code=""}"#;
    assert_eq!(series(&counted, drained), 5.0, "{counted}");
    let invalid = r#"mqtt_proxy_connections_ended_total{how="refused",why="invalid",code="0x81"}"#;
    assert_eq!(series(&counted, invalid), 1.0, "{counted}");
}

// Defect 5.7: a black-holed broker cost every client the full connect timeout.

/// A listener whose one-place backlog is full, so that connecting to it times out: a broker
/// that drops SYNs.
async fn black_hole() -> (SocketAddr, TcpListener, std::net::TcpStream) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("address");
    let filler = std::net::TcpStream::connect(addr).expect("fills the backlog");
    (addr, listener, filler)
}

/// A 5.0 CONNECT with this id through the proxy: the answer, and how long it took.
async fn timed_connect(proxy: SocketAddr, id: String) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy).await.expect("connect");
    stream.write_all(&connect_packet(Protocol::V5, &id, 60)).await.expect("send");
    (read_exactly(&mut stream, 5).await, started.elapsed())
}

#[tokio::test]
async fn one_probe_at_a_time_tries_an_upstream_whose_down_mark_expired() {
    let (hole, _listener, _filler) = black_hole().await;
    let good = Scripted::start(Script::AnswerAndEcho(V5_OK)).await;
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n[limits]\nupstream_timeout_ms = 1000\ndown_for_ms = 1\n\
         [[route]]\nupstreams = [\"{hole}\", \"{}\"]\n",
        good.addr
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let addr = proxy.local_addrs()[0];
    tokio::spawn(proxy.run());
    // Ids whose first choice is the black hole.
    let upstreams: Vec<config::Upstream> =
        [hole.to_string(), good.addr.to_string()].iter().map(|a| a.parse().expect("upstream")).collect();
    let ids: Vec<String> = (0..200)
        .map(|i| format!("id{i}"))
        .filter(|id| mqtt_connect::routing::rank(id.as_bytes(), &upstreams).next() == Some(0))
        .take(6)
        .collect();
    // The first pays the timeout and marks the hole down, for 1 ms only.
    let (ack, took) = timed_connect(addr, ids[0].clone()).await;
    assert_eq!((ack.as_slice(), took >= Duration::from_millis(1000)), (V5_OK, true));
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The mark has expired: five arrive at once; one probes, the others go straight on.
    let tasks: Vec<_> = ids[1..].iter().map(|id| tokio::spawn(timed_connect(addr, id.clone()))).collect();
    let mut times = Vec::new();
    for task in tasks {
        let (ack, took) = task.await.expect("ran");
        assert_eq!(ack, V5_OK);
        times.push(took);
    }
    times.sort();
    assert!(times[3] < Duration::from_millis(500), "four did not wait: {times:?}");
    assert!(times[4] >= Duration::from_millis(1000), "one probed: {times:?}");
}

/// A passive mark that a client's connect cleared was not logged: the logs showed a broker go
/// down and never come back.
#[tokio::test]
async fn a_broker_a_clients_connect_finds_up_again_is_logged_as_marked_up() {
    let (logs, _in_force) = Captured::in_force();
    let nothing = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let broker = nothing.local_addr().expect("its address");
    drop(nothing);
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n[limits]\ndown_for_ms = 1\n[[route]]\nupstreams = [\"{broker}\"]\n"
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let addr = proxy.local_addrs()[0];
    tokio::spawn(proxy.run());
    assert_eq!(timed_connect(addr, "early".into()).await.0, [0x20, 0x03, 0x00, 0x88, 0x00]);
    let _back = Scripted::on(
        TcpListener::bind(broker).await.expect("the broker's port again"),
        Script::Answer(V5_OK),
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(timed_connect(addr, "later".into()).await.0, V5_OK);
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    let health: Vec<&str> = text.lines().filter(|line| line.contains("upstream connect")).collect();
    assert_eq!(health.len(), 2, "{text}");
    assert!(health[0].contains("upstream connect failed; marked down"), "{text}");
    assert!(
        health[1].contains("INFO") && health[1].contains("upstream connect succeeded; marked up"),
        "{text}"
    );
}

#[tokio::test]
async fn when_every_upstream_is_down_the_client_is_answered_at_once() {
    let (hole, _listener, _filler) = black_hole().await;
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n[limits]\nupstream_timeout_ms = 1000\ndown_for_ms = 60000\n\
         [[route]]\nupstreams = [\"{hole}\"]\n"
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let addr = proxy.local_addrs()[0];
    tokio::spawn(proxy.run());
    let unavailable = [0x20, 0x03, 0x00, 0x88, 0x00];
    let (ack, took) = timed_connect(addr, "first".into()).await;
    assert_eq!((ack.as_slice(), took >= Duration::from_millis(1000)), (&unavailable[..], true));
    let (ack, took) = timed_connect(addr, "second".into()).await;
    assert_eq!(ack, unavailable);
    assert!(took < Duration::from_millis(500), "answered at once: {took:?}");
}

// Item 4: the connection-rate limit per source address.

/// A CONNECT from `source` through the proxy: what it answers, up to 5 bytes or its close.
async fn connect_from(source: &str, proxy: SocketAddr, protocol: Protocol) -> Vec<u8> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(format!("{source}:0").parse().expect("address")).expect("bind source");
    let mut stream = socket.connect(proxy).await.expect("connect");
    stream.write_all(&connect_packet(protocol, "storm", 60)).await.expect("send");
    let want = if protocol == Protocol::V5 { 5 } else { 4 };
    let mut got = Vec::new();
    let mut chunk = [0; 8];
    while got.len() < want {
        match tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await.expect("in time") {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    got
}

#[tokio::test]
async fn over_its_rate_an_address_is_refused_in_its_version_while_others_are_served() {
    let broker = Scripted::start(Script::AnswerAndEcho(V5_OK)).await;
    let proxy = start(&broker, "max_connects_per_s = 1\nconnect_burst = 3").await;
    for _ in 0..3 {
        assert_eq!(connect_from("127.0.0.1", proxy.addr, Protocol::V5).await, V5_OK, "within the burst");
    }
    assert_eq!(connect_from("127.0.0.1", proxy.addr, Protocol::V5).await, [0x20, 0x03, 0x00, 0x9F, 0x00]);
    assert_eq!(connect_from("127.0.0.1", proxy.addr, Protocol::V3_1_1).await, [0x20, 0x02, 0x00, 0x03]);
    assert_eq!(connect_from("127.0.0.2", proxy.addr, Protocol::V5).await, V5_OK, "another address");
}

// Item 1: Prometheus metrics.

/// The metrics text once `done` holds of it, read again every 20 ms: a connection is counted
/// as it ends, a moment after its client has the answer. Fails, with `what` and the last text,
/// after [`PATIENCE`].
pub(crate) async fn metrics_when(
    metrics: &metrics::Metrics,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = metrics.encode();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what}: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A 5.0 client without an id, given one by the proxy, whose broker sent no CONNACK in time to
/// carry it, was closed unanswered and left to its own timeout: it is told "server
/// unavailable" (0x88), as when no broker is reachable, and comes back.
#[tokio::test]
async fn a_client_given_an_id_whose_broker_sends_no_connack_in_time_is_told_unavailable() {
    let broker = Scripted::start(Script::Silent).await;
    let proxy = start(&broker, "connect_deadline_ms = 300").await;
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    client.write_all(&connect_packet(Protocol::V5, "", 60)).await.expect("send");
    assert_eq!(read_exactly(&mut client, 5).await, [0x20, 0x03, 0x00, 0x88, 0x00]);
    let told = r#"mqtt_proxy_connections_ended_total{how="refused",why="unavailable",code="0x88"}"#;
    metrics_when(&proxy.handle.metrics(), "counted", |text| series(text, told) == 1.0).await;
}

/// An id refused from one address (no route for it) and then served from another was counted
/// and logged as a takeover: a refused attempt takes over nothing.
#[tokio::test]
async fn a_refused_connection_takes_over_no_client_id() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n[[route]]\nremote_addr = \"127.0.0.2\"\nupstreams = [\"{}\"]\n",
        broker.addr
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let (addr, handle) = (proxy.local_addrs()[0], proxy.handle());
    tokio::spawn(proxy.run());
    assert_eq!(connect_from("127.0.0.3", addr, Protocol::V5).await, b"", "no route: closed");
    assert_eq!(connect_from("127.0.0.2", addr, Protocol::V5).await, V5_OK);
    assert_eq!(connect_from("127.0.0.2", addr, Protocol::V5).await, V5_OK);
    assert_eq!(series(&handle.metrics().encode(), "mqtt_proxy_client_id_takeovers_total"), 0.0);
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let broker = Scripted::start(Script::AnswerAndEcho(V5_OK)).await;
    let proxy = start(&broker, "").await;
    let metrics = proxy.handle.metrics();
    for source in ["127.0.0.1", "127.0.0.2"] {
        // The same id from two addresses at once: a takeover.
        assert_eq!(connect_from(source, proxy.addr, Protocol::V5).await, V5_OK);
    }
    let bad = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00";
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    client.write_all(bad).await.expect("send");
    assert_eq!(read_exactly(&mut client, 5).await, [0x20, 0x03, 0x00, 0x81, 0x00]);
    drop(client);
    until_none_live(&proxy, PATIENCE).await;
    // The refusal is counted as it ends, a moment after the client has its answer.
    metrics_when(&metrics, "the refusal counted", |text| text.contains(r#"why="invalid""#)).await;

    // Scraped as Prometheus does without OpenMetrics: the classic text format.
    let served = metrics::serve("127.0.0.1:0".parse().expect("address"), metrics).await.expect("serve");
    let response = scrape(served, PATIENCE).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("content-type: text/plain; version=0.0.4"), "{response}");
    let text = response.split_once("\r\n\r\n").expect("a body").1;
    assert!(text.contains("# TYPE mqtt_proxy_connections_accepted_total counter\n"), "{text}");
    assert!(!text.contains("# EOF"), "{text}");
    let upstream = broker.addr.to_string();
    assert_eq!(series(text, "mqtt_proxy_connections_accepted_total"), 3.0, "{text}");
    assert_eq!(series(text, "mqtt_proxy_connections_active"), 0.0);
    assert_eq!(
        series(text, r#"mqtt_proxy_connections_ended_total{how="refused",why="invalid",code="0x81"}"#),
        1.0
    );
    assert_eq!(
        series(text, r#"mqtt_proxy_connections_ended_total{how="client_closed",why="",code=""}"#),
        2.0
    );
    let route = format!(r#"{{route="default",upstream="{upstream}"}}"#);
    assert_eq!(series(text, &format!("mqtt_proxy_route_connections_total{route}")), 2.0);
    let up =
        format!(r#"mqtt_proxy_route_bytes_total{{route="default",upstream="{upstream}",direction="up"}}"#);
    assert_eq!(series(text, &up), 2.0 * connect_packet(Protocol::V5, "storm", 60).len() as f64);
    let connacks = format!(r#"mqtt_proxy_broker_connacks_total{{upstream="{upstream}",code="0x00"}}"#);
    assert_eq!(series(text, &connacks), 2.0);
    // The two whole CONNECTs: what is refused may be no CONNECT at all (a port scan, say).
    assert_eq!(series(text, "mqtt_proxy_connect_read_seconds_count"), 2.0);
    assert_eq!(
        series(text, &format!(r#"mqtt_proxy_upstream_connect_seconds_count{{upstream="{upstream}"}}"#)),
        2.0
    );
    assert_eq!(series(text, &format!(r#"mqtt_proxy_upstream_up{{upstream="{upstream}"}}"#)), 1.0);
    assert_eq!(series(text, "mqtt_proxy_client_id_takeovers_total"), 1.0);
}

/// A connection that lasts shows its traffic and its broker's CONNACK in the metrics as they
/// pass, not when it ends.
#[tokio::test]
async fn relayed_bytes_and_the_brokers_connack_are_counted_while_the_connection_lasts() {
    let broker = Scripted::start(Script::AnswerAndEcho(V5_OK)).await;
    let proxy = start(&broker, "").await;
    let metrics = proxy.handle.metrics();
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    let connect = connect_packet(Protocol::V5, "long-lived", 60);
    client.write_all(&connect).await.expect("send");
    assert_eq!(read_exactly(&mut client, 5).await, V5_OK);
    client.write_all(b"ping").await.expect("send");
    assert_eq!(read_exactly(&mut client, 4).await, b"ping", "echoed");

    let upstream = broker.addr.to_string();
    let bytes = |text: &str, direction: &str| {
        let labels = format!(r#"{{route="default",upstream="{upstream}",direction="{direction}"}}"#);
        series(text, &format!("mqtt_proxy_route_bytes_total{labels}"))
    };
    let connacks = format!(r#"mqtt_proxy_broker_connacks_total{{upstream="{upstream}",code="0x00"}}"#);
    let want_up = (connect.len() + 4) as f64;
    let want_down = (V5_OK.len() + 4) as f64;
    // The echo can reach the client a moment before its relay has counted it.
    let text = metrics_when(&metrics, "the echo counted", |text| bytes(text, "down") == want_down).await;
    assert_eq!(bytes(&text, "up"), want_up, "{text}");
    assert_eq!(bytes(&text, "down"), want_down, "{text}");
    assert_eq!(series(&text, &connacks), 1.0, "{text}");
    assert_eq!(proxy.handle.live(), 1, "still open");
}

// Item 2: active MQTT health checks.

#[tokio::test]
async fn a_broker_that_accepts_tcp_but_never_answers_is_marked_down_by_the_health_check() {
    let silent = Scripted::start(Script::Silent).await;
    // The check speaks 3.1.1, and so do the clients here.
    let checked_good = Scripted::start(Script::AnswerAndEcho(V311_OK)).await;
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n[[route]]\nupstreams = [\"{}\", \"{}\"]\n\
         [route.health_check]\ninterval_ms = 100\ntimeout_ms = 200\nfall = 2\nrise = 1\n",
        silent.addr, checked_good.addr
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let (addr, handle) = (proxy.local_addrs()[0], proxy.handle());
    tokio::spawn(proxy.run());
    let upstreams: Vec<config::Upstream> =
        [silent.addr, checked_good.addr].iter().map(|a| a.to_string().parse().expect("upstream")).collect();
    let id = (0..100)
        .map(|i| format!("id{i}"))
        .find(|id| mqtt_connect::routing::rank(id.as_bytes(), &upstreams).next() == Some(0))
        .expect("an id placed on the silent broker");
    let silent_up = format!("mqtt_proxy_upstream_up{{upstream=\"{}\"}} 0", silent.addr);
    metrics_when(&handle.metrics(), "marked down by the health check", |text| text.contains(&silent_up))
        .await;
    // Before any client was sent there: its clients now go to the next broker.
    let mut client = TcpStream::connect(addr).await.expect("connect");
    client.write_all(&connect_packet(Protocol::V3_1_1, &id, 60)).await.expect("send");
    assert_eq!(read_exactly(&mut client, 4).await, V311_OK);
    let good_up = format!("mqtt_proxy_upstream_up{{upstream=\"{}\"}} 1", checked_good.addr);
    assert!(handle.metrics().encode().contains(&good_up));
}

/// The cap sets a descriptor aside for each upstream whose checks run, once however many
/// routes check it: one task checks each address.
#[test]
fn each_upstream_under_health_checks_is_counted_once() {
    let text = "[[route]]\nname = \"a\"\nupstreams = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n[route.health_check]\n\
                [[route]]\nname = \"b\"\nupstreams = [\"127.0.0.1:2\", \"127.0.0.1:3\"]\n[route.health_check]\n\
                [[route]]\nname = \"c\"\nupstreams = [\"127.0.0.1:4\"]\n";
    let config = Config::parse(text).expect("valid");
    let mut checked: Vec<String> = healthcheck::checked(&config).into_keys().collect();
    checked.sort();
    assert_eq!(checked, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
}

#[test]
fn a_health_check_is_off_unless_asked_for_and_checked() {
    let route = |table: &str| format!("[[route]]\nupstreams = [\"127.0.0.1:1\"]\n{table}");
    let config = Config::parse(&route("")).expect("valid");
    assert_eq!(config.routes[0].health_check, None);
    let config = Config::parse(&route("[route.health_check]\n")).expect("valid");
    assert_eq!(config.routes[0].health_check, Some(config::HealthCheck::default()));
    let error = Config::parse(&route("[route.health_check]\nfall = 0\n")).expect_err("refused");
    assert!(error.contains("fall"), "{error}");
}

/// A broker that fails its health checks is held down until they pass again, whatever a
/// client's connect finds: a frozen broker's kernel still accepts TCP, so a connect that was
/// under way when the hold began succeeds, and must not lift it. (Once lifted, the checks,
/// which hold at the `fall`-th failure in a row only, never held it again: clients went on
/// reaching a broker that never answers.)
#[test]
fn a_clients_connect_does_not_lift_a_health_check_hold() {
    let health = Health::default();
    let upstream: config::Upstream = "127.0.0.1:1".parse().expect("upstream");
    assert!(health.hold_down(&upstream), "held by the checks");
    assert!(!health.mark_up(&upstream), "a client's connect changes nothing");
    assert_eq!(health.verdict(&upstream, Duration::from_secs(1)), Verdict::Skip, "still skipped");
    assert_eq!(health.mark_down(&upstream, Duration::from_millis(1), Instant::now()), Some(false));
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(health.verdict(&upstream, Duration::from_secs(1)), Verdict::Skip, "nor a passive mark");
}

/// A connect that began while a broker was down and timed out after it was back marked it
/// down again, for `down_for`, while other clients were reaching it: only a connect begun
/// after the broker was last found up marks it down.
#[test]
fn a_connect_begun_before_a_broker_was_found_up_does_not_mark_it_down() {
    let health = Health::default();
    let upstream: config::Upstream = "127.0.0.1:1".parse().expect("upstream");
    let long = Duration::from_secs(60);
    assert_eq!(health.mark_down(&upstream, Duration::ZERO, Instant::now()), Some(true));
    let stale = Instant::now();
    assert_eq!(health.verdict(&upstream, long), Verdict::Probe);
    assert!(health.mark_up(&upstream), "the probe found it up");
    assert_eq!(health.mark_down(&upstream, long, stale), None, "the older connect's timeout");
    assert_eq!(health.verdict(&upstream, long), Verdict::Try);
    let newer = Instant::now() + Duration::from_millis(1);
    assert_eq!(health.mark_down(&upstream, long, newer), Some(true), "a newer connect's");
    assert_eq!(health.verdict(&upstream, long), Verdict::Skip);
    // The same after the health checks find it up.
    let stale = Instant::now();
    assert!(health.lift(&upstream));
    assert_eq!(health.mark_down(&upstream, long, stale), None);
}

/// A broker that reads what it is sent and answers a 3.1.1 CONNACK only while `answering` is
/// set; otherwise it holds the connection, silent.
async fn switchable() -> (SocketAddr, Arc<AtomicBool>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind broker");
    let addr = listener.local_addr().expect("broker address");
    let answering = Arc::new(AtomicBool::new(false));
    let on = answering.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.read(&mut [0; 64]).await;
            if on.load(Ordering::SeqCst) {
                stream.write_all(V311_OK).await.ok();
            }
            held.push(stream);
        }
    });
    (addr, answering, task)
}

#[tokio::test]
async fn the_health_checks_lift_their_own_hold_once_they_pass() {
    let (addr, answering, _broker) = switchable().await;
    let upstream: config::Upstream = addr.to_string().parse().expect("upstream");
    let (_config, watched) = watch::channel(checked_route(&[addr], "fall = 1\nrise = 2"));
    let health = Health::default();
    healthcheck::supervise(watched, health.clone(), Arc::default());
    until_verdict(&health, &upstream, Verdict::Skip, "held down by the failing checks").await;
    answering.store(true, Ordering::SeqCst);
    until_verdict(&health, &upstream, Verdict::Try, "lifted once they pass").await;
}

/// A broker a client's failed connect had marked down (logged so, and counted) was logged
/// "marked down" again by the health check, which changed nothing the metrics counted: one
/// outage, two warnings. The check says it holds the mark.
#[tokio::test]
async fn a_health_check_that_fails_on_a_broker_already_marked_down_says_it_holds_the_mark() {
    let (logs, _in_force) = Captured::in_force();
    let (addr, _answering, _broker) = switchable().await;
    let upstream: config::Upstream = addr.to_string().parse().expect("upstream");
    let health = Health::default();
    assert_eq!(health.mark_down(&upstream, Duration::from_secs(60), Instant::now()), Some(true));
    let (_config, watched) = watch::channel(checked_route(&[addr], "fall = 1\nrise = 1"));
    healthcheck::supervise(watched, health.clone(), Arc::default());
    let started = Instant::now();
    let text = loop {
        let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
        if text.contains("health check failed") {
            break text;
        }
        assert!(started.elapsed() < PATIENCE, "the check failed: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let line = text.lines().find(|line| line.contains("health check failed")).expect("logged");
    assert!(
        line.contains(" INFO ") && line.contains("already marked down, now held until checks pass"),
        "{line}"
    );
    assert_eq!(health.verdict(&upstream, Duration::from_secs(1)), Verdict::Skip);
}

/// A broker that takes clients only with a login refuses the check's anonymous CONNECT: the
/// checks held it down, and every client of its route, logged in or not, was told
/// "unavailable". A refusal of the check's client for who it is shows the broker serving
/// MQTT, and passes; one that says the broker takes no clients fails.
#[tokio::test]
async fn a_broker_that_refuses_the_checks_client_for_who_it_is_passes_the_check() {
    for (refusal, passes) in [
        (&[0x20, 0x02, 0x00, 0x05][..], true),
        (&[0x20, 0x02, 0x00, 0x04], true),
        (&[0x20, 0x02, 0x00, 0x02], true),
        (&[0x20, 0x02, 0x00, 0x03], false),
    ] {
        let broker = Scripted::start(Script::AnswerAndClose(refusal)).await;
        let upstream: config::Upstream = broker.addr.to_string().parse().expect("upstream");
        let (_config, watched) = watch::channel(checked_route(&[broker.addr], "fall = 1\nrise = 1"));
        let health = Health::default();
        if passes {
            health.hold_down(&upstream);
        }
        healthcheck::supervise(watched, health.clone(), Arc::default());
        let (verdict, what) = if passes { (Verdict::Try, "lifted") } else { (Verdict::Skip, "held down") };
        until_verdict(&health, &upstream, verdict, &format!("{refusal:02x?}: {what}")).await;
    }
}

/// A route that sends its brokers a PROXY header has brokers that may require one: the check
/// sent none, was cut by each, and held every one of them down. It sends the LOCAL command,
/// which the PROXY protocol has for a balancer's own connections.
#[tokio::test]
async fn the_health_check_of_a_route_that_sends_proxy_headers_sends_one_too() {
    const LOCAL: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind broker");
    let addr = listener.local_addr().expect("broker address");
    let _broker = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut header = [0; 16];
            if stream.read_exact(&mut header).await.is_ok() && header == LOCAL {
                let _ = stream.read(&mut [0; 64]).await;
                stream.write_all(V311_OK).await.ok();
            }
        }
    });
    let upstream: config::Upstream = addr.to_string().parse().expect("upstream");
    let text = format!(
        "[[route]]\nupstreams = [\"{addr}\"]\nproxy_protocol = true\n\
         [route.health_check]\ninterval_ms = 50\ntimeout_ms = 100\nfall = 1\nrise = 1\n"
    );
    let (_config, watched) = watch::channel(Arc::new(Config::parse(&text).expect("valid")));
    let health = Health::default();
    health.hold_down(&upstream);
    healthcheck::supervise(watched, health.clone(), Arc::default());
    until_verdict(&health, &upstream, Verdict::Try, "lifted by checks the broker answered").await;
}

/// A reload that stops an upstream's health checks (the table taken out of its route, or the
/// upstream out of every checked route) lifts the hold they left: nothing else would, and the
/// upstream would be skipped for good, its clients sent elsewhere or told "unavailable".
#[tokio::test]
async fn a_reload_that_stops_the_health_checks_lifts_their_hold() {
    let (addr, _never_answering, _broker) = switchable().await;
    let upstream: config::Upstream = addr.to_string().parse().expect("upstream");
    let (config, watched) = watch::channel(checked_route(&[addr], "fall = 1"));
    let health = Health::default();
    healthcheck::supervise(watched, health.clone(), Arc::default());
    until_verdict(&health, &upstream, Verdict::Skip, "held down by the failing checks").await;
    let unchecked = format!("[[route]]\nupstreams = [\"{addr}\"]\n");
    config.send_replace(Arc::new(Config::parse(&unchecked).expect("valid")));
    until_verdict(&health, &upstream, Verdict::Try, "lifted when the checks stop").await;
}

/// An upstream a reload left no route naming kept its `upstream_up` at its last value until
/// the restart, so an alert on 0 fired on for a broker no longer configured; and one whose
/// checks stopped that way was set to 1, counted as a change and logged as marked up. Its
/// series goes, and its marks with it.
#[tokio::test]
async fn an_upstream_a_reload_drops_leaves_no_upstream_up_behind() {
    let (addr, _never_answering, _broker) = switchable().await;
    let upstream: config::Upstream = addr.to_string().parse().expect("upstream");
    let (config, watched) = watch::channel(checked_route(&[addr], "fall = 1"));
    let (health, metrics) = (Health::default(), Arc::new(metrics::Metrics::default()));
    healthcheck::supervise(watched, health.clone(), metrics.clone());
    until_verdict(&health, &upstream, Verdict::Skip, "held down by the failing checks").await;
    let gauge = format!(r#"mqtt_proxy_upstream_up{{upstream="{addr}"}}"#);
    let changes = format!(r#"mqtt_proxy_upstream_health_changes_total{{upstream="{addr}"}}"#);
    assert_eq!(series(&metrics.encode(), &gauge), 0.0);
    let other = "[[route]]\nupstreams = [\"127.0.0.1:1\"]\n";
    config.send_replace(Arc::new(Config::parse(other).expect("valid")));
    metrics_when(&metrics, "the series of an upstream no route names is gone", |text| !text.contains(&gauge))
        .await;
    assert_eq!(series(&metrics.encode(), &changes), 1.0, "not counted as marked up");
    assert_eq!(health.verdict(&upstream, Duration::from_secs(1)), Verdict::Try, "no mark left");
}

/// A health check's client id that no CONNECT can carry (U+0000 [MQTT-1.5.4-2]) failed every
/// check, so every upstream of the route was held down and its clients told "unavailable";
/// it is refused with the config instead.
#[test]
fn mqtt_1_5_4_2_a_health_check_client_id_with_u0000_is_refused() {
    let text =
        "[[route]]\nupstreams = [\"127.0.0.1:1\"]\n[route.health_check]\nclient_id = \"probe\\u0000\"\n";
    let error = Config::parse(text).expect_err("refused");
    assert!(error.contains("client_id"), "{error}");
}

// Mutation testing of session.rs, edge.rs, sticky/connack.rs and dial.rs.

/// What a client sends after its CONNECT, before any answer (here a PINGREQ in the same
/// write), goes up with the CONNECT and is counted with it, byte for byte.
#[tokio::test]
async fn bytes_pipelined_after_the_connect_are_counted_up_with_it() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let proxy = start(&broker, "").await;
    let metrics = proxy.handle.metrics();
    let mut sent = connect_packet(Protocol::V5, "pipelining", 60);
    let connect_len = sent.len();
    sent.extend_from_slice(&[0xC0, 0x00]);
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    client.write_all(&sent).await.expect("send CONNECT and PINGREQ at once");
    assert_eq!(read_exactly(&mut client, 5).await, V5_OK);
    let up = format!(
        r#"mqtt_proxy_route_bytes_total{{route="default",upstream="{}",direction="up"}}"#,
        broker.addr
    );
    // Had the PINGREQ come in a read of its own, the relay would count it, a moment later.
    let want = (connect_len + 2) as f64;
    metrics_when(&metrics, "the CONNECT and the PINGREQ counted", |text| series(text, &up) == want).await;
}

/// A TLS ClientHello sent to a plain listener is refused unanswered and counted as TLS on a
/// plain port, not as a malformed CONNECT.
#[tokio::test]
async fn a_tls_client_hello_on_a_plain_listener_is_counted_as_tls_on_plain() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let proxy = start(&broker, "").await;
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    client.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]).await.expect("send");
    until_closed(&mut client, PATIENCE).await;
    let tls_on_plain = r#"mqtt_proxy_connections_ended_total{how="refused",why="tls_on_plain",code=""}"#;
    let text = metrics_when(&proxy.handle.metrics(), "the refusal counted", |text| {
        text.contains("mqtt_proxy_connections_ended_total{")
    })
    .await;
    assert_eq!(series(&text, tls_on_plain), 1.0, "{text}");
}

/// A direct client of a plain listener that takes PROXY headers from other addresses is told
/// what is wrong with a malformed CONNECT, as on any listener; and on a listener that takes no
/// headers, a malformed CONNECT that starts as a PROXY header would is refused as malformed.
#[tokio::test]
async fn a_malformed_connect_is_answered_on_a_listener_that_trusts_others_for_headers() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\n\
         [[listener]]\naddr = \"127.0.0.2:0\"\nproxy_protocol_from = [\"192.0.2.0/24\"]\n\
         [[route]]\nupstreams = [\"{}\"]\n",
        broker.addr
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let (plain, trusting_others, handle) = (proxy.local_addrs()[0], proxy.local_addrs()[1], proxy.handle());
    tokio::spawn(proxy.run());
    // A 5.0 CONNECT with the reserved Connect Flags bit set: malformed (0x81).
    let bad = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00";
    let mut client = TcpStream::connect(trusting_others).await.expect("connect");
    client.write_all(bad).await.expect("send");
    assert_eq!(read_exactly(&mut client, 5).await, [0x20, 0x03, 0x00, 0x81, 0x00]);

    let mut client = TcpStream::connect(plain).await.expect("connect");
    client.write_all(b"PROXY TCP4 203.0.113.9 198.51.100.1 40001 1883\r\n").await.expect("send");
    until_closed(&mut client, PATIENCE).await;
    let invalid = r#"mqtt_proxy_connections_ended_total{how="refused",why="invalid",code=""}"#;
    let text =
        metrics_when(&handle.metrics(), "the refusal counted", |text| series(text, invalid) == 1.0).await;
    assert!(!text.contains("proxy_header_untrusted"), "{text}");
}

/// A client closed at once, because the refusals in progress are at their limit, is counted
/// as refused busy, unanswered.
#[tokio::test]
async fn a_client_closed_at_once_past_the_refusal_limit_is_counted_as_refused_busy() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    // The silent one's refusal, also busy, lasts past any wait here.
    let proxy = start(&broker, "max_connections = 1\nmax_refusals = 1\nbusy_deadline_ms = 60000").await;
    let metrics = proxy.handle.metrics();
    let mut first = send_connect(proxy.addr, Protocol::V5, 60).await;
    assert_eq!(read_exactly(&mut first, 5).await, V5_OK);
    // A silent client past the cap takes the one place among the refusals in progress...
    let _silent = TcpStream::connect(proxy.addr).await.expect("connect");
    let accepted = "mqtt_proxy_connections_accepted_total";
    metrics_when(&metrics, "the silent one accepted", |text| series(text, accepted) == 2.0).await;
    // ...so the next is closed at once, and counted as busy while the silent one is not yet.
    let mut next = send_connect(proxy.addr, Protocol::V5, 60).await;
    until_closed(&mut next, PATIENCE).await;
    let busy = r#"mqtt_proxy_connections_ended_total{how="refused",why="busy",code=""}"#;
    metrics_when(&metrics, "the one closed at once counted as busy", |text| series(text, busy) == 1.0).await;
}

/// A 3.1 client (protocol name `MQIsdp`) whose CONNECT announces a Remaining Length of four
/// bytes needs all 14 of the bytes read for the version before it: refused as busy, it is
/// told so in its version (0x03).
#[tokio::test]
async fn a_busy_3_1_client_with_a_four_byte_remaining_length_is_told_in_its_version() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let proxy = start(&broker, "max_connections = 1").await;
    let mut first = send_connect(proxy.addr, Protocol::V5, 60).await;
    assert_eq!(read_exactly(&mut first, 5).await, V5_OK);
    let head = b"\x10\x80\x80\x80\x01\x00\x06MQIsdp\x03";
    assert_eq!(head.len(), 14);
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    client.write_all(head).await.expect("send");
    assert_eq!(read_exactly(&mut client, 4).await, [0x20, 0x02, 0x00, 0x03]);
}

/// After a refusal the proxy reads and drops what the client still sends, for a moment, rather
/// than close on unread input: a close then answers with a reset, which can lose the CONNACK
/// on its way. Here the client keeps sending after it has the answer and the proxy's FIN, and
/// is not reset.
#[tokio::test]
async fn after_a_refusal_the_clients_further_bytes_are_taken_not_reset() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let proxy = start(&broker, "").await;
    // A 5.0 CONNECT with the reserved Connect Flags bit set: malformed (0x81).
    let bad = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00";
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    client.write_all(bad).await.expect("send");
    assert_eq!(read_exactly(&mut client, 5).await, [0x20, 0x03, 0x00, 0x81, 0x00]);
    let mut rest = [0; 8];
    let eof = tokio::time::timeout(PATIENCE, client.read(&mut rest)).await.expect("in time");
    assert_eq!(eof.expect("the proxy's FIN"), 0);
    for _ in 0..5 {
        // Each write gives a closed socket time to answer the one before with a reset.
        client.write_all(b"\xc0\x00").await.expect("taken, not reset");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Set in the process that [`out_of_descriptors_at_the_upstream_connect`] runs in.
const OUT_OF_DESCRIPTORS: &str = "PROXY_TEST_OUT_OF_DESCRIPTORS";

/// A local error on the upstream connect (here EMFILE: no descriptor for the socket) is this
/// host's, not the broker's: the client is told "server busy" (0x89), and the broker is not
/// marked down, so the next client is served. Run in a process of its own, whose descriptor
/// limit it lowers.
#[test]
fn a_local_error_on_the_upstream_connect_is_answered_busy_and_marks_no_broker_down() {
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", "tests_ops::out_of_descriptors_at_the_upstream_connect", "--ignored"])
        .env(OUT_OF_DESCRIPTORS, "1")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[tokio::test]
#[ignore = "run in a process of its own by a_local_error_on_the_upstream_connect_is_answered_busy_and_marks_no_broker_down"]
async fn out_of_descriptors_at_the_upstream_connect() {
    use std::os::fd::AsRawFd;
    // Only in the process started for it: it lowers that process's descriptor limit.
    if std::env::var_os(OUT_OF_DESCRIPTORS).is_none() {
        return;
    }
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let proxy = start(&broker, "").await;
    let metrics = proxy.handle.metrics();
    let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
    let accepted = "mqtt_proxy_connections_accepted_total";
    metrics_when(&metrics, "the client accepted", |text| series(text, accepted) == 1.0).await;
    // The limit at the lowest free descriptor: the next one opened fails with EMFILE.
    let lowest = std::fs::File::open("/dev/null").expect("open").as_raw_fd();
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("read");
    rlimit::setrlimit(rlimit::Resource::NOFILE, lowest as u64, hard).expect("lower");
    client.write_all(&connect_packet(Protocol::V5, "local", 60)).await.expect("send");
    assert_eq!(read_exactly(&mut client, 5).await, [0x20, 0x03, 0x00, 0x89, 0x00], "server busy");
    rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard).expect("restore");
    let mut next = send_connect(proxy.addr, Protocol::V5, 60).await;
    assert_eq!(read_exactly(&mut next, 5).await, V5_OK, "the broker was not marked down");
}

/// A broker's CONNACK whose Remaining Length takes two bytes and whose Property Length one
/// (properties of 125 bytes) keeps its properties whole when the proxy adds the id it assigned.
#[test]
fn a_connack_with_a_two_byte_remaining_length_keeps_its_properties_when_the_id_is_added() {
    let reason = "r".repeat(122);
    let mut broker = vec![0x20, 0x80, 0x01, 0x00, 0x00, 125, 0x1F, 0x00, 122];
    broker.extend_from_slice(reason.as_bytes());
    assert_eq!(broker.len(), 3 + 128);
    let got = crate::sticky::add_assigned_id(&broker, "px-1").expect("rewritten");
    let mut expected = vec![0x20, 0x88, 0x01, 0x00, 0x00, 0x84, 0x01];
    expected.extend_from_slice(&broker[6..]);
    expected.extend_from_slice(&[0x12, 0x00, 0x04, b'p', b'x', b'-', b'1']);
    assert_eq!(got, expected);
}

/// A PROXY v2 header that has not all come when the proxy looks is read to its end as it
/// comes, its fixed part first and then the addresses it announces, and names the client.
#[tokio::test]
async fn a_proxy_v2_header_in_pieces_is_read_to_its_announced_end() {
    let broker = Scripted::start(Script::Answer(V5_OK)).await;
    let text = format!(
        "listen = []\n[[listener]]\naddr = \"127.0.0.1:0\"\nproxy_protocol_from = [\"127.0.0.1\"]\n\
         [[route]]\nupstreams = [\"{}\"]\n",
        broker.addr
    );
    let proxy = Proxy::start(Config::parse(&text).expect("valid"), Workers::current()).expect("bind proxy");
    let addr = proxy.local_addrs()[0];
    tokio::spawn(proxy.run());
    let client: SocketAddr = "203.0.113.7:40000".parse().expect("address");
    let frontend: SocketAddr = "198.51.100.1:1883".parse().expect("address");
    let command = ppp::v2::Version::Two | ppp::v2::Command::Proxy;
    let v2 = ppp::v2::Builder::with_addresses(command, ppp::v2::Protocol::Stream, (client, frontend))
        .build()
        .expect("header");
    let connect = connect_packet(Protocol::V5, "in-pieces", 60);
    // Within the fixed 16 bytes, and just past them.
    for cut in [10, 17] {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(&v2[..cut]).await.expect("send");
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.write_all(&[&v2[cut..], &connect[..]].concat()).await.expect("send");
        assert_eq!(read_exactly(&mut stream, 5).await, V5_OK, "cut at {cut}");
    }
}

/// Each takeover is counted, and the first logged; one within the next ten seconds is counted
/// only, so that a client flapping between two addresses cannot flood the log.
#[test]
fn the_first_takeover_is_logged_and_the_next_within_the_interval_only_counted() {
    let (a, b) = ("127.0.0.1".parse().expect("an address"), "127.0.0.2".parse().expect("an address"));
    let (logs, _in_force) = Captured::in_force();
    let metrics = metrics::Metrics::default();
    for ip in [a, b, a] {
        metrics.client_id("roamer", ip);
    }
    assert_eq!(series(&metrics.encode(), "mqtt_proxy_client_id_takeovers_total"), 2.0);
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8");
    assert_eq!(text.matches("client id takeover").count(), 1, "{text}");
}
