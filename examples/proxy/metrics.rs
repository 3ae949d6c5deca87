//! Prometheus metrics, kept by prometheus-client and served over HTTP by hyper when a metrics
//! address is configured. Every metric is named and explained in examples/proxy/README.md.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use mqtt_connect::ReasonCode;
use nohash_hasher::IntMap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::logfmt;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndLabels {
    /// How it ended: client_closed, upstream_closed, closed_before_connect, deadline, refused,
    /// failed, idle, half_closed, drained.
    pub how: &'static str,
    /// Why it was refused, or `handshake` for a deadline before the CONNECT; else empty. Every
    /// value is in examples/proxy/README.md.
    pub why: &'static str,
    /// The CONNACK code the proxy answered a refusal with, as `0x89`; else empty.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    route: String,
    upstream: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnackLabels {
    upstream: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Everything counted, shared by all connections.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    accepted: Counter,
    active: Gauge,
    ended: Family<EndLabels, Counter>,
    connections: Family<RouteLabels, Counter>,
    bytes: Family<BytesLabels, Counter>,
    connect_read: Histogram,
    upstream_connect: Family<UpstreamLabels, Histogram>,
    connacks: Family<ConnackLabels, Counter>,
    upstream_up: Family<UpstreamLabels, Gauge>,
    health_changes: Family<UpstreamLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    takeovers: Counter,
    /// The ends of nearly every connection, `client_closed` and `upstream_closed`, found in
    /// `ended` at their first count (see [`counter_in`]).
    client_closed: OnceLock<Counter>,
    upstream_closed: OnceLock<Counter>,
    /// Each route's upstreams' counters, by route name, then upstream address.
    relayed: RwLock<HashMap<String, HashMap<String, Arc<Relayed>>>>,
    recent_ids: Mutex<RecentIds>,
    /// The key of [`RecentIds`]'s hash of a client id: random, so that no one can pick ids
    /// whose hashes collide.
    id_keys: RandomState,
    /// When the last takeover was logged, in seconds since `started`.
    takeover_logged: AtomicU64,
    started: Instant,
}

/// One route's upstream's counters, looked up once a connection and bumped by its relay as bytes
/// pass, so that a connection that lasts for days shows its traffic as it goes, not when it ends.
#[derive(Debug)]
pub struct Relayed {
    connections: Counter,
    up: Counter,
    down: Counter,
    /// The upstream's connect times: one histogram, shared by every route to it.
    connect: Histogram,
    upstream: String,
    connacks: Family<ConnackLabels, Counter>,
    /// The upstream's count of CONNACK 0x00, found in `connacks` at its first count.
    success: OnceLock<Counter>,
}

/// The counter of `labels` in `family`, found there once and kept in `slot`. A family lookup
/// builds the labels, hashes them (SipHash) and takes the family's lock, shared by all workers;
/// with the lookups of the connect histogram and the `upstream_up` gauge, now made once per
/// route and upstream, these took 3,200 of the 32,300 instructions a connection cost in user
/// space (callgrind, `benches/README.md`). The series appears at its first count, as before.
fn counter_in<'a, L>(
    slot: &'a OnceLock<Counter>,
    family: &Family<L, Counter>,
    labels: impl FnOnce() -> L,
) -> &'a Counter
where
    L: Clone + Eq + std::hash::Hash,
{
    slot.get_or_init(|| family.get_or_create(&labels()).clone())
}

impl Relayed {
    /// A connect to the upstream that took `took`, the CONNECT handed over.
    pub fn connected(&self, took: Duration) {
        self.connect.observe(took.as_secs_f64());
    }

    /// Bytes relayed: `up` from the client to the broker, `down` back.
    pub fn bytes(&self, up: u64, down: u64) {
        if up > 0 {
            self.up.inc_by(up);
        }
        if down > 0 {
            self.down.inc_by(down);
        }
    }

    /// The broker's CONNACK code, numbered as in 5.0: a 3.x return code counts as the reason
    /// code the crate's decoder names it by (0x05 as 0x87, not authorized).
    pub fn connack(&self, code: ReasonCode) {
        let labels =
            || ConnackLabels { upstream: self.upstream.clone(), code: format!("{:#04x}", u8::from(code)) };
        if code == ReasonCode::Success {
            counter_in(&self.success, &self.connacks, labels).inc();
        } else {
            self.connacks.get_or_create(&labels()).inc();
        }
    }
}

/// Which address each client id last connected from, and when; hashed ids, so that a flood of
/// long ids costs 8 bytes each. Two generations, the older dropped whole when the newer has
/// lasted a window or is full: every connection costs one insert, and memory stays under
/// twice [`RECENT_IDS_MAX`]. (A sweep of one map once it was full cost every connection a walk
/// over all of it while more than that many ids came in one window: 10,000 connections past
/// 100,000 unique ids took 6.5 s; now 150,000 take 30 ms, by an ad-hoc timing.) An id is hashed
/// once, with [`Metrics`]'s random key, and the maps take that hash as their own: hashing it
/// again for each map cost 839 user-space instructions a connection (callgrind).
#[derive(Debug)]
struct RecentIds {
    current: IntMap<u64, (IpAddr, Instant)>,
    previous: IntMap<u64, (IpAddr, Instant)>,
    /// When `current` began.
    since: Instant,
}

impl Default for RecentIds {
    fn default() -> Self {
        Self { current: IntMap::default(), previous: IntMap::default(), since: Instant::now() }
    }
}

impl RecentIds {
    /// Records the id hashed to `key` as seen from `ip` at `now`, and returns where and when it
    /// was seen before, if it still is remembered.
    fn record(&mut self, key: u64, ip: IpAddr, now: Instant) -> Option<(IpAddr, Instant)> {
        if self.current.len() >= RECENT_IDS_MAX || now.duration_since(self.since) >= TAKEOVER_WINDOW {
            self.previous = std::mem::take(&mut self.current);
            self.since = now;
        }
        self.current.insert(key, (ip, now)).or_else(|| self.previous.remove(&key))
    }
}

/// The same client id from a different address within this window is a takeover.
pub const TAKEOVER_WINDOW: Duration = Duration::from_secs(10);
/// At most one takeover log line this often.
const TAKEOVER_LOG_EVERY_S: u64 = 10;
/// Client ids in a generation at most: at more than this many new ids a window, a takeover is
/// found only between the last 100,000 to 200,000 of them.
const RECENT_IDS_MAX: usize = 100_000;

fn seconds_buckets() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("mqtt_proxy"),
            accepted: Counter::default(),
            active: Gauge::default(),
            ended: Family::default(),
            connections: Family::default(),
            bytes: Family::default(),
            connect_read: seconds_buckets(),
            upstream_connect: Family::new_with_constructor(seconds_buckets),
            connacks: Family::default(),
            upstream_up: Family::default(),
            health_changes: Family::default(),
            reloads: Family::default(),
            takeovers: Counter::default(),
            client_closed: OnceLock::new(),
            upstream_closed: OnceLock::new(),
            relayed: RwLock::default(),
            recent_ids: Mutex::default(),
            id_keys: RandomState::new(),
            takeover_logged: AtomicU64::new(0),
            started: Instant::now(),
        };
        let r = &mut metrics.registry;
        r.register("connections_accepted", "Client connections accepted", metrics.accepted.clone());
        r.register("connections_active", "Client connections being proxied now", metrics.active.clone());
        r.register(
            "connections_ended",
            "Client connections ended, by how and, for refusals, why and the CONNACK code sent",
            metrics.ended.clone(),
        );
        r.register(
            "route_connections",
            "Connections relayed, by route and upstream",
            metrics.connections.clone(),
        );
        r.register(
            "route_bytes",
            "Bytes relayed, by route, upstream and direction (up: client to broker), as they pass",
            metrics.bytes.clone(),
        );
        r.register(
            "connect_read_seconds",
            "Time from the accept, or the end of the TLS, WebSocket or PROXY handshake, to a whole CONNECT",
            metrics.connect_read.clone(),
        );
        r.register(
            "upstream_connect_seconds",
            "Time to connect to an upstream and hand it the CONNECT, successful connects only",
            metrics.upstream_connect.clone(),
        );
        r.register(
            "broker_connacks",
            "CONNACK codes brokers answered with, by upstream",
            metrics.connacks.clone(),
        );
        r.register(
            "upstream_up",
            "1 while an upstream is not marked down, 0 while it is",
            metrics.upstream_up.clone(),
        );
        r.register(
            "upstream_health_changes",
            "Times an upstream was marked down or up again",
            metrics.health_changes.clone(),
        );
        r.register("reloads", "Config reloads, by result: ok or refused", metrics.reloads.clone());
        r.register(
            "client_id_takeovers",
            "Connections whose client id connected from another address within 10 s",
            metrics.takeovers.clone(),
        );
        metrics
    }
}

impl Metrics {
    pub fn accepted(&self) {
        self.accepted.inc();
    }

    /// A connection has taken a place under the cap.
    pub fn opened(&self) {
        self.active.inc();
    }

    /// A connection has given its place back.
    pub fn closed(&self) {
        self.active.dec();
    }

    pub fn ended(&self, labels: &EndLabels) {
        let slot = match (labels.how, labels.why, labels.code.as_str()) {
            ("client_closed", "", "") => &self.client_closed,
            ("upstream_closed", "", "") => &self.upstream_closed,
            _ => {
                self.ended.get_or_create(labels).inc();
                return;
            }
        };
        counter_in(slot, &self.ended, || labels.clone()).inc();
    }

    /// A connection reached `upstream` on `route`: counted, and the counters its relay bumps.
    /// The first to reach it on the route marks it up in `upstream_up`; a change after it was
    /// marked down is [`Metrics::health`]'s.
    pub fn relaying(&self, route: &str, upstream: &str) -> Arc<Relayed> {
        let known = self.relayed.read().unwrap_or_else(PoisonError::into_inner);
        let relayed = match known.get(route).and_then(|upstreams| upstreams.get(upstream)) {
            Some(relayed) => relayed.clone(),
            None => {
                drop(known);
                let mut known = self.relayed.write().unwrap_or_else(PoisonError::into_inner);
                let upstreams = known.entry(route.to_owned()).or_default();
                upstreams
                    .entry(upstream.to_owned())
                    .or_insert_with(|| Arc::new(self.counters(route, upstream)))
                    .clone()
            }
        };
        relayed.connections.inc();
        relayed
    }

    /// The counters of `upstream` on `route`, from the families.
    fn counters(&self, route: &str, upstream: &str) -> Relayed {
        let bytes = |direction| {
            let labels = BytesLabels { route: route.to_owned(), upstream: upstream.to_owned(), direction };
            self.bytes.get_or_create(&labels).clone()
        };
        let labels = RouteLabels { route: route.to_owned(), upstream: upstream.to_owned() };
        let upstream_labels = UpstreamLabels { upstream: upstream.to_owned() };
        self.upstream_up.get_or_create(&upstream_labels).set(1);
        Relayed {
            connections: self.connections.get_or_create(&labels).clone(),
            up: bytes("up"),
            down: bytes("down"),
            connect: self.upstream_connect.get_or_create(&upstream_labels).clone(),
            upstream: upstream.to_owned(),
            connacks: self.connacks.clone(),
            success: OnceLock::new(),
        }
    }

    pub fn connect_read(&self, took: Duration) {
        self.connect_read.observe(took.as_secs_f64());
    }

    /// No route names `upstream` any more: its `upstream_up` goes, as a gone target's series do,
    /// rather than keep its last value, which an alert would go on reading. Reached again, it
    /// is marked up again.
    pub fn forget_upstream(&self, upstream: &str) {
        self.upstream_up.remove(&UpstreamLabels { upstream: upstream.to_owned() });
        let mut known = self.relayed.write().unwrap_or_else(PoisonError::into_inner);
        known.values_mut().for_each(|upstreams| drop(upstreams.remove(upstream)));
    }

    /// The upstream's health now; `changed` when this is a change.
    pub fn health(&self, upstream: &str, up: bool, changed: bool) {
        let labels = UpstreamLabels { upstream: upstream.to_owned() };
        self.upstream_up.get_or_create(&labels).set(i64::from(up));
        if changed {
            self.health_changes.get_or_create(&labels).inc();
        }
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "refused" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// A client with this id connected from `ip`; counts a takeover if the id came from
    /// another address within [`TAKEOVER_WINDOW`], and logs one at most every few seconds.
    pub fn client_id(&self, client_id: &str, ip: IpAddr) {
        if client_id.is_empty() {
            return;
        }
        let key = self.id_keys.hash_one(client_id);
        let now = Instant::now();
        let previous = self.recent_ids.lock().unwrap_or_else(PoisonError::into_inner).record(key, ip, now);
        let Some((from, at)) = previous else { return };
        if from == ip || now.duration_since(at) >= TAKEOVER_WINDOW {
            return;
        }
        self.takeovers.inc();
        let elapsed = self.started.elapsed().as_secs();
        let last = self.takeover_logged.load(Ordering::Relaxed);
        let due = last == 0 || elapsed >= last.saturating_add(TAKEOVER_LOG_EVERY_S);
        if due
            && self
                .takeover_logged
                .compare_exchange(last, elapsed.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                client_id = %logfmt::field(client_id),
                from = %from,
                now = %ip,
                "client id takeover: the same id from another address within 10 s (further ones counted, not logged, for 10 s)"
            );
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4), for scrapers and linters
/// that ask for no OpenMetrics: a counter's HELP and TYPE name its `_total` series, and there is
/// no `# EOF`.
fn classic(open_metrics: &str) -> String {
    let counters: Vec<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(open_metrics.len() + 16 * counters.len());
    for line in open_metrics.lines().filter(|&line| line != "# EOF") {
        let meta = ["# HELP ", "# TYPE "].into_iter().find_map(|kind| Some((kind, line.strip_prefix(kind)?)));
        match meta {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let total = if counters.contains(&name) { "_total" } else { "" };
                text.push_str(&format!("{kind}{name}{total} {tail}\n"));
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

/// How long a scraper has, from its connect or its previous response, to send a request's
/// headers; past it the connection is closed. Without it a client that connects and sends
/// nothing, or dribbles, held a task and a descriptor (of the 16 kept for the metrics
/// listener, see `limits.rs`) for ever. A scraper sends its request at once.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a write of a response may wait for the scraper to take it; past it the connection
/// is closed. A client that sends requests and reads no answer held its descriptor for ever,
/// hyper's HTTP/1 server having no timeout of its own on writes.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Scrapes served at once; a connection past them is closed at once, as HAProxy's stats
/// `maxconn` closes it. Each holds a descriptor of the 16 kept for the metrics listener (see
/// `limits.rs`): without a cap, anyone who reaches the metrics port could spend the
/// descriptors the MQTT clients need, and have every one told "busy". A Prometheus server
/// holds one connection to a target.
pub const MAX_SCRAPES: usize = 8;

/// Serves `GET /metrics` (any path, in fact) on `addr` until the process ends: OpenMetrics to
/// scrapers that accept it, as Prometheus does, else the classic text format.
/// Returns the address bound.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics listening");
    let scrapes = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(scrape) = scrapes.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "metrics connection closed: {MAX_SCRAPES} scrapes in progress");
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let _scrape = scrape;
                let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let accept = request.headers().get(hyper::header::ACCEPT);
                    let open_metrics =
                        accept.and_then(|accept| accept.to_str().ok()).is_some_and(accepts_open_metrics);
                    let text = metrics.encode();
                    let (body, kind) = if open_metrics {
                        (text, "application/openmetrics-text; version=1.0.0; charset=utf-8")
                    } else {
                        (classic(&text), "text/plain; version=0.0.4; charset=utf-8")
                    };
                    async move {
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        let kind = hyper::header::HeaderValue::from_static(kind);
                        response.headers_mut().insert(hyper::header::CONTENT_TYPE, kind);
                        Ok::<_, Infallible>(response)
                    }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(Box::pin(bounded(stream))), service);
                // A scraper that hangs up early is its own business.
                let _ = served.await;
            });
        }
    });
    Ok(addr)
}

/// Whether an `Accept` header takes OpenMetrics: a range of it with a weight above 0 (RFC 9110
/// 12.5.1), as Prometheus sends one; `q=0` says "not this".
fn accepts_open_metrics(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let open_metrics =
            parts.next().is_some_and(|kind| kind.eq_ignore_ascii_case("application/openmetrics-text"));
        let weight = parts.find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")));
        open_metrics && weight.is_none_or(|q| q.parse::<f32>().is_ok_and(|q| q > 0.0))
    })
}

/// `stream` with writes that fail once they have waited [`WRITE_TIMEOUT`].
fn bounded(stream: tokio::net::TcpStream) -> tokio_io_timeout::TimeoutStream<tokio::net::TcpStream> {
    let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
    stream.set_write_timeout(Some(WRITE_TIMEOUT));
    stream
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::time::{Duration, Instant};

    use super::{HEADER_READ_TIMEOUT, RECENT_IDS_MAX, RecentIds, TAKEOVER_WINDOW};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// The value of one series in the metrics text, 0 if absent.
    pub(crate) fn series(text: &str, name_and_labels: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// The whole response to one request for `/metrics` on `served`, asked as Prometheus asks
    /// without OpenMetrics, within `patience`.
    pub(crate) async fn scrape(served: SocketAddr, patience: Duration) -> String {
        let mut scrape = TcpStream::connect(served).await.expect("connect to metrics");
        scrape
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n")
            .await
            .expect("ask");
        let mut response = String::new();
        tokio::time::timeout(patience, scrape.read_to_string(&mut response))
            .await
            .expect("answered in time")
            .expect("read");
        response
    }

    /// A client that sends no request, or part of one, is closed once the header-read timeout
    /// has passed, and not before; a whole request is still answered.
    #[tokio::test]
    async fn a_scraper_that_sends_no_whole_request_is_closed_after_the_header_timeout() {
        let served =
            super::serve("127.0.0.1:0".parse().expect("address"), Default::default()).await.expect("serve");
        let silent = TcpStream::connect(served).await.expect("connect");
        let mut dribbling = TcpStream::connect(served).await.expect("connect");
        dribbling.write_all(b"GET /metrics HTTP/1.1\r\nHost: pro").await.expect("send");
        let started = Instant::now();
        for mut stream in [silent, dribbling] {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(HEADER_READ_TIMEOUT * 2, stream.read_to_end(&mut rest)).await;
            assert!(read.is_ok(), "closed within twice the timeout");
            assert!(!String::from_utf8_lossy(&rest).contains("mqtt_proxy_"), "no metrics: {rest:?}");
        }
        assert!(
            started.elapsed() >= HEADER_READ_TIMEOUT - Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        let response = scrape(served, HEADER_READ_TIMEOUT).await;
        assert!(response.starts_with("HTTP/1.1 200") && response.contains("mqtt_proxy_"), "{response}");
    }

    /// A client that sends requests and reads no answer was held for as long as it stayed,
    /// its descriptor with it: hyper's server waits on a write for ever. It is closed once a
    /// write has waited the write timeout, its last answers not sent.
    #[tokio::test]
    async fn a_scraper_that_reads_no_answers_is_closed_after_the_write_timeout() {
        let served =
            super::serve("127.0.0.1:0".parse().expect("address"), Default::default()).await.expect("serve");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("a small receive buffer");
        let mut stream = socket.connect(served).await.expect("connect");
        let requests = b"GET /metrics HTTP/1.1\r\nHost: proxy\r\n\r\n".repeat(2000);
        // The server stops reading them once its answers fill the buffers.
        tokio::time::timeout(Duration::from_secs(1), stream.write_all(&requests)).await.ok();
        tokio::time::sleep(super::WRITE_TIMEOUT + Duration::from_secs(2)).await;
        let mut got = Vec::new();
        // Held, it would answer them all now, and close when the header timeout ends its idle.
        let read = tokio::time::timeout(HEADER_READ_TIMEOUT * 3, stream.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "closed");
        let answers = String::from_utf8_lossy(&got).matches("HTTP/1.1 200").count();
        assert!(answers < 2000, "closed before all its answers were sent: {answers}");
    }

    /// Metrics connections had no cap: anyone who reached the metrics port could hold the
    /// descriptors MQTT clients need (each quiet connection for the header timeout, again and
    /// again), and have every client told "busy". Past [`MAX_SCRAPES`](super::MAX_SCRAPES) at
    /// once, a connection is closed at once; one that ends makes room for a scrape.
    #[tokio::test]
    async fn metrics_connections_past_the_cap_are_closed_at_once() {
        let served =
            super::serve("127.0.0.1:0".parse().expect("address"), Default::default()).await.expect("serve");
        let mut held = Vec::new();
        for _ in 0..super::MAX_SCRAPES {
            let mut stream = TcpStream::connect(served).await.expect("connect");
            stream.write_all(b"G").await.expect("send");
            held.push(stream);
        }
        let mut past = TcpStream::connect(served).await.expect("connect");
        let mut rest = Vec::new();
        // Held, it would be closed only at the header timeout.
        let read = tokio::time::timeout(HEADER_READ_TIMEOUT / 2, past.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "closed at once, unanswered: {read:?} {rest:?}");
        drop(held.pop());
        let deadline = Instant::now() + HEADER_READ_TIMEOUT;
        loop {
            let mut stream = TcpStream::connect(served).await.expect("connect");
            stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").await.ok();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.ok();
            if response.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "a place freed for a scrape: {response:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `Accept: application/openmetrics-text;q=0, text/plain` was answered in OpenMetrics, as
    /// any mention of it was: a weight of 0 is a refusal (RFC 9110 12.5.1).
    #[test]
    fn openmetrics_is_sent_only_to_a_scraper_that_weighs_it_above_0() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;\
                          version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        for (accept, open_metrics) in [
            (prometheus, true),
            ("application/openmetrics-text", true),
            ("Application/OpenMetrics-Text; q=0.1", true),
            ("application/openmetrics-text;q=0, text/plain", false),
            ("application/openmetrics-text; q=0.0", false),
            ("text/plain", false),
            ("", false),
        ] {
            assert_eq!(super::accepts_open_metrics(accept), open_metrics, "{accept}");
        }
    }

    /// Each CONNACK code a broker answers with counts in a series of its own, whichever code
    /// came first: success has a counter kept aside, the others are looked up each time.
    #[test]
    fn each_connack_code_of_an_upstream_counts_in_its_own_series() {
        use mqtt_connect::ReasonCode;
        let metrics = super::Metrics::default();
        let relayed = metrics.relaying("default", "127.0.0.1:1883");
        for code in [
            ReasonCode::NotAuthorized,
            ReasonCode::BadUserNameOrPassword,
            ReasonCode::Success,
            ReasonCode::NotAuthorized,
            ReasonCode::Success,
        ] {
            relayed.connack(code);
        }
        let text = metrics.encode();
        for (code, count) in [("0x87", 2.0), ("0x86", 1.0), ("0x00", 2.0)] {
            let name =
                format!(r#"mqtt_proxy_broker_connacks_total{{upstream="127.0.0.1:1883",code="{code}"}}"#);
            assert_eq!(series(&text, &name), count, "{code}: {text}");
        }
    }

    /// Each reload is counted by its result.
    #[test]
    fn reloads_are_counted_as_ok_or_refused() {
        let metrics = super::Metrics::default();
        for ok in [false, true, false] {
            metrics.reload(ok);
        }
        let text = metrics.encode();
        for (result, count) in [("ok", 1.0), ("refused", 2.0)] {
            let name = format!(r#"mqtt_proxy_reloads_total{{result="{result}"}}"#);
            assert_eq!(series(&text, &name), count, "{result}: {text}");
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_id_is_remembered_across_a_change_of_generation() {
        let t0 = Instant::now();
        let mut recent = RecentIds { since: t0, ..RecentIds::default() };
        let at = t0 + Duration::from_secs(9);
        assert_eq!(recent.record(1, A, at), None);
        // Another id a window after the generation began starts a new one.
        assert_eq!(recent.record(2, B, t0 + TAKEOVER_WINDOW), None);
        assert_eq!(recent.record(1, B, t0 + Duration::from_secs(12)), Some((A, at)));
    }

    #[test]
    fn ids_past_two_generations_are_forgotten_and_memory_stays_bounded() {
        let now = Instant::now();
        let mut recent = RecentIds::default();
        let ids = 3 * RECENT_IDS_MAX as u64;
        for key in 0..ids {
            recent.record(key, A, now);
        }
        let held = recent.current.len() + recent.previous.len();
        assert!(held <= 2 * RECENT_IDS_MAX, "{held} ids held");
        assert_eq!(recent.record(ids - 1, B, now), Some((A, now)), "the newest remembered");
        assert_eq!(recent.record(0, B, now), None, "the oldest forgotten");
    }
}
