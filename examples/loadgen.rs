//! A load generator for MQTT brokers and the proxies in front of them.
//!
//! Each connection does CONNECT → CONNACK, optional QoS 0 publishes closed by a PINGREQ round
//! trip (so every message has been taken in), then DISCONNECT. Targets are run one after the
//! other with the same load, and reported side by side, so a proxy's cost reads as a ratio to
//! the broker behind it.
//!
//! ```sh
//! cargo run --release --example loadgen -- \
//!     --target direct=127.0.0.1:1884 --target proxy=127.0.0.1:9100,$(pgrep -f examples/proxy) \
//!     --connections 5000 --concurrency 50 --protocol 5
//! ```
//!
//! With `,PID` after a target's address, the resident memory of that process is read before
//! and while all connections are held open (`--hold-ms`), and reported per connection, and so is
//! the CPU time it used over the run, user and system apart. A target address `ws://ADDR/PATH` speaks MQTT over
//! WebSocket: one binary frame per write.
//!
//! With `--tls-ca FILE`, every connection is TLS 1.3 (rustls), verified against that CA for the
//! name `--tls-name`, and the time to CONNACK includes the handshake. Session resumption is off,
//! so that each connection is a full handshake.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use mqtt_connect::{Connect, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// Opens MQTT connections against one or more targets and reports rates and latencies.
#[derive(Parser)]
struct Args {
    /// NAME=ADDR or NAME=ADDR,PID; repeat to compare targets in one run.
    #[arg(long = "target", required = true)]
    targets: Vec<Target>,
    /// Connections per target.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Connections open at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// MQTT version: 4 (3.1.1) or 5.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=5))]
    protocol: u8,
    /// QoS 0 publishes per connection.
    #[arg(long, default_value_t = 0)]
    publishes: usize,
    /// Payload bytes per publish.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Time each connection stays open, idle, after its CONNACK.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    hold_ms: u64,
    /// Runs over all targets in turn; each target is reported by its median run.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Speak TLS 1.3, trusting the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The server name to ask for and verify, with --tls-ca.
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    tls_name: String,
    /// With more than one round, also report each target against the target of this name,
    /// round by round: each ratio taken within a round, then the median over the rounds.
    #[arg(long, value_name = "NAME")]
    reference: Option<String>,
}

#[derive(Clone)]
struct Target {
    name: String,
    addr: SocketAddr,
    pid: Option<u32>,
    /// The path of a `ws://` target.
    ws_path: Option<String>,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("target {text:?} is not NAME=ADDR or NAME=ADDR,PID (ADDR or ws://ADDR/PATH)");
        let (name, rest) = text.split_once('=').ok_or_else(bad)?;
        let (addr, pid) = match rest.split_once(',') {
            Some((addr, pid)) => (addr, Some(pid.parse().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let (addr, ws_path) = match addr.strip_prefix("ws://") {
            Some(url) => url.find('/').map(|at| (&url[..at], Some(url[at..].to_owned()))).ok_or_else(bad)?,
            None => (addr, None),
        };
        Ok(Self { name: name.to_owned(), addr: addr.parse().map_err(|_| bad())?, pid, ws_path })
    }
}

/// The load each connection carries.
struct Load {
    protocol: Protocol,
    publishes: Vec<u8>,
    hold: Duration,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// One target's results.
struct Report {
    name: String,
    ok: usize,
    errors: usize,
    took: Duration,
    latencies: Vec<Duration>,
    messages: usize,
    bytes: usize,
    rss_per_connection: Option<f64>,
    /// The target's CPU time over the run, per connection, in µs: user and system.
    cpu_per_connection: Option<(f64, f64)>,
}

/// No step of a connection waits longer than this.
const STEP: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let protocol = if args.protocol == 5 { Protocol::V5 } else { Protocol::V3_1_1 };
    let tls = match args.tls_ca.as_ref().map(|ca| tls(ca, &args.tls_name)).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("--tls-ca: {e}");
            std::process::exit(2);
        }
    };
    let reference =
        args.reference.as_ref().map(|name| match args.targets.iter().position(|t| &t.name == name) {
            Some(at) => (name, at),
            None => {
                eprintln!("--reference: {name:?} is not the name of a target");
                std::process::exit(2);
            }
        });
    let load = Arc::new(Load {
        protocol,
        publishes: publishes(protocol, args.publishes, args.payload),
        hold: Duration::from_millis(args.hold_ms),
        tls,
    });
    // Rounds take the targets in turn, so that a load that comes and goes on the machine falls
    // on all of them alike; each target is reported by its median round. The order changes
    // from round to round (`order`), so that no target always runs right after the same one:
    // a fast one leaves tens of thousands of sockets in TIME_WAIT for the kernel to carry into
    // the next.
    let mut rounds: Vec<Vec<Report>> = args.targets.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        for k in order(args.targets.len(), round) {
            let (Some(target), Some(reports)) = (args.targets.get(k), rounds.get_mut(k)) else { continue };
            let report = run(target, &args, load.clone()).await;
            if args.rounds > 1 {
                println!("round {}: {}", round + 1, report.summary());
            }
            reports.push(report);
        }
    }
    let against = reference.filter(|_| args.rounds > 1).map(|(name, at)| (name, paired(&rounds, at)));
    let medians: Vec<Report> = rounds.into_iter().filter_map(median).collect();
    print_table(&medians, &args);
    if let Some((name, ratios)) = against {
        print_ratios(name, &ratios, args.rounds);
    }
}

/// Runs the whole load against one target.
async fn run(target: &Target, args: &Args, load: Arc<Load>) -> Report {
    let rss_before = target.pid.and_then(rss_kib);
    let cpu_before = target.pid.and_then(cpu_ticks);
    let next = Arc::new(AtomicUsize::new(0));
    let connected = Arc::new(AtomicUsize::new(0));
    let rss_held = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.min(args.connections) {
        let (next, connected, rss_held, load) =
            (next.clone(), connected.clone(), rss_held.clone(), load.clone());
        let (target, total) = (target.clone(), args.connections);
        workers.push(tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let on_connack = || {
                    // The last of all connections to be held open reads the target's memory.
                    if connected.fetch_add(1, Ordering::Relaxed) + 1 == total
                        && let Some(kib) = target.pid.and_then(rss_kib)
                    {
                        rss_held.store(kib, Ordering::Relaxed);
                    }
                };
                let client_id = format!("loadgen-{}-{n}", std::process::id());
                results.push(match &target.ws_path {
                    None => connection(target.addr, &client_id, &load, on_connack).await,
                    Some(path) => {
                        websocket::connection(target.addr, path, &client_id, &load, on_connack).await
                    }
                });
            }
            results
        }));
    }
    let mut report = Report {
        name: target.name.clone(),
        ok: 0,
        errors: 0,
        took: Duration::ZERO,
        latencies: Vec::new(),
        messages: 0,
        bytes: 0,
        rss_per_connection: None,
        cpu_per_connection: None,
    };
    for worker in workers {
        for result in worker.await.unwrap_or_default() {
            match result {
                Ok(latency) => {
                    report.ok += 1;
                    report.latencies.push(latency);
                    report.messages += args.publishes;
                    report.bytes += load.publishes.len();
                }
                Err(e) => {
                    if report.errors < 3 {
                        eprintln!("{}: {e}", target.name);
                    }
                    report.errors += 1;
                }
            }
        }
    }
    report.took = started.elapsed();
    report.latencies.sort();
    if let (Some(before), Some(after)) = (cpu_before, target.pid.and_then(cpu_ticks)) {
        let per_connection = |after: u64, before: u64| {
            after.saturating_sub(before) as f64 * 1e6 / TICKS_PER_SECOND / report.ok.max(1) as f64
        };
        report.cpu_per_connection =
            Some((per_connection(after.0, before.0), per_connection(after.1, before.1)));
    }
    let held = rss_held.load(Ordering::Relaxed);
    if let Some(before) = rss_before
        && held > 0
        && !load.hold.is_zero()
    {
        report.rss_per_connection = Some((held as f64 - before as f64) / args.connections as f64);
    }
    report
}

/// A TLS 1.3 client on ring that trusts `ca` for `name`, without resumption.
fn tls(ca: &std::path::Path, name: &str) -> Result<(TlsConnector, ServerName<'static>), String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    let name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// One connection through its whole life; the time from TCP connect to CONNACK.
async fn connection(
    addr: SocketAddr,
    client_id: &str,
    load: &Load,
    on_connack: impl FnOnce(),
) -> io::Result<Duration> {
    let started = Instant::now();
    let stream = step(TcpStream::connect(addr)).await?;
    stream.set_nodelay(true)?;
    match &load.tls {
        None => mqtt(stream, started, client_id, load, on_connack).await,
        Some((connector, name)) => {
            let stream = step(connector.connect(name.clone(), stream)).await?;
            mqtt(stream, started, client_id, load, on_connack).await
        }
    }
}

/// The MQTT part of a connection, in the clear, over TLS or over WebSocket.
async fn mqtt(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    started: Instant,
    client_id: &str,
    load: &Load,
    on_connack: impl FnOnce(),
) -> io::Result<Duration> {
    send(&mut stream, &connect_packet(load.protocol, client_id)?).await?;
    let connack = step(read_packet(&mut stream)).await?;
    // [0x20, flags, code, ...] in every version.
    if connack.first() != Some(&0x20) || connack.get(2) != Some(&0) {
        return Err(io::Error::other(format!("refused: {connack:02x?}")));
    }
    let latency = started.elapsed();
    on_connack();
    tokio::time::sleep(load.hold).await;
    if !load.publishes.is_empty() {
        send(&mut stream, &load.publishes).await?;
        send(&mut stream, &[0xc0, 0x00]).await?;
        while step(read_packet(&mut stream)).await?.first() != Some(&0xd0) {}
    }
    send(&mut stream, &[0xe0, 0x00]).await?;
    // A TLS stream sends its close_notify, a WebSocket its Close frame; a TCP one closes as it
    // did before.
    step(stream.shutdown()).await.ok();
    Ok(latency)
}

/// One write, flushed: a WebSocket frame goes out only on a flush.
async fn send(stream: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> io::Result<()> {
    step(async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
}

async fn step<T>(work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    timeout(STEP, work).await.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))?
}

fn connect_packet(protocol: Protocol, client_id: &str) -> io::Result<Vec<u8>> {
    let connect = Connect::new(protocol, client_id);
    let mut buf = vec![0; connect.encoded_len().map_err(io::Error::other)?];
    connect.encode(&mut buf).map_err(io::Error::other)?;
    Ok(buf)
}

/// `count` QoS 0 PUBLISH packets of `payload` bytes each, back to back.
fn publishes(protocol: Protocol, count: usize, payload: usize) -> Vec<u8> {
    const TOPIC: &[u8] = b"loadgen/data";
    let properties = usize::from(protocol == Protocol::V5);
    let remaining = 2 + TOPIC.len() + properties + payload;
    let mut packet = vec![0x30];
    let mut left = remaining;
    loop {
        let byte = (left % 128) as u8;
        left /= 128;
        packet.push(if left > 0 { byte | 0x80 } else { byte });
        if left == 0 {
            break;
        }
    }
    packet.extend_from_slice(&(TOPIC.len() as u16).to_be_bytes());
    packet.extend_from_slice(TOPIC);
    packet.resize(packet.len() + properties, 0);
    packet.resize(packet.len() + payload, b'x');
    packet.repeat(count)
}

/// Reads one packet: its first byte, then the body, as `[type, body...]`.
async fn read_packet(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let kind = stream.read_u8().await?;
    let (mut remaining, mut shift) = (0usize, 0);
    loop {
        let byte = stream.read_u8().await?;
        remaining |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
        if shift > 21 {
            return Err(io::Error::other("bad Remaining Length"));
        }
    }
    let mut packet = vec![0; remaining + 1];
    packet[0] = kind;
    stream.read_exact(&mut packet[1..]).await?;
    Ok(packet)
}

/// Clock ticks a second in /proc/PID/stat: USER_HZ, 100 on Linux's supported architectures.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time a process has used, user and system, in clock ticks, from /proc.
fn cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command, which is in parentheses and may hold spaces: utime and stime
    // are the 14th and 15th of the line, the 12th and 13th after it.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user, system))
}

/// Resident memory of a process, from /proc.
fn rss_kib(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The targets' order in `round` (from 0), so that over the rounds each target runs right after
/// each other alike: the rows of a Williams square. The first row is 0, 1, n − 1, 2, n − 2, …,
/// and each next adds one to every place (mod n). With an even count, in n rounds each target
/// follows each other exactly once. With an odd one, each row runs forwards and then backwards,
/// so that any two rounds in a row cover every distance between two targets, and in 2n rounds
/// each follows each other twice. (Moving only the start, each would always follow the same
/// one.)
fn order(count: usize, round: usize) -> impl Iterator<Item = usize> {
    let n = count.max(1);
    let odd = !n.is_multiple_of(2);
    let (row, backwards) = if odd { (round / 2, round % 2 == 1) } else { (round, false) };
    (0..count).map(move |place| {
        let place = if backwards { n - 1 - place } else { place };
        // Odd places climb from 1, even ones fall from n.
        let first = if place % 2 == 1 { place.div_ceil(2) } else { (n - place / 2) % n };
        (first + row) % n
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which target ran right before which, over `rounds` rounds of `count` targets; each
    /// round checked to run every target once.
    fn followers(count: usize, rounds: usize) -> Vec<Vec<usize>> {
        let mut after = vec![vec![0; count]; count];
        for round in 0..rounds {
            let ran: Vec<usize> = order(count, round).collect();
            let mut sorted = ran.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..count).collect::<Vec<_>>(), "round {round} of {count}: {ran:?}");
            for pair in ran.windows(2) {
                after[pair[0]][pair[1]] += 1;
            }
        }
        after
    }

    /// Over `rounds` rounds of `count` targets, each target ran right after each other exactly
    /// `times` times, and never after itself.
    fn assert_each_follows_each_other(count: usize, rounds: usize, times: usize) {
        let after = followers(count, rounds);
        for (a, row) in after.iter().enumerate() {
            for (b, &n) in row.iter().enumerate() {
                assert_eq!(n, times * usize::from(a != b), "{b} after {a}, {count} targets: {after:?}");
            }
        }
    }

    #[test]
    fn each_target_follows_each_other_once_in_as_many_rounds_as_targets_when_even() {
        for count in [2, 4, 6, 8] {
            assert_each_follows_each_other(count, count, 1);
        }
    }

    #[test]
    fn each_target_follows_each_other_twice_in_twice_as_many_rounds_as_targets_when_odd() {
        for count in [3, 5, 7, 9] {
            assert_each_follows_each_other(count, 2 * count, 2);
        }
    }

    #[test]
    fn one_target_runs_alone() {
        assert_eq!(order(1, 0).collect::<Vec<_>>(), [0]);
        assert_eq!(order(1, 3).collect::<Vec<_>>(), [0]);
    }

    /// A round of 1,000 connections at `rate` a second, all with the latency `p50_ms`, costing
    /// `cpu` µs each.
    fn round(name: &str, rate: f64, p50_ms: u64, cpu: Option<f64>) -> Report {
        Report {
            name: name.to_owned(),
            ok: 1000,
            errors: 0,
            took: Duration::from_secs_f64(1000.0 / rate),
            latencies: vec![Duration::from_millis(p50_ms)],
            messages: 0,
            bytes: 0,
            rss_per_connection: None,
            cpu_per_connection: cpu.map(|cpu| (0.0, cpu)),
        }
    }

    fn assert_near(value: Option<f64>, expected: f64) {
        assert!(value.is_some_and(|v| (v - expected).abs() < 1e-9), "{value:?}, not {expected}");
    }

    #[test]
    fn ratios_are_taken_within_each_round() {
        let rounds = vec![
            vec![
                round("proxy", 190.0, 4, Some(95.0)),
                round("proxy", 250.0, 6, Some(120.0)),
                round("proxy", 120.0, 9, None),
            ],
            vec![
                round("base", 100.0, 8, Some(100.0)),
                round("base", 300.0, 4, Some(100.0)),
                round("base", 200.0, 6, Some(150.0)),
            ],
        ];
        let ratios = paired(&rounds, 1);
        assert_eq!(ratios.len(), 1);
        let (name, [rate, p50, cpu]) = &ratios[0];
        assert_eq!(name, "proxy");
        // The rates' ratios are 1.9, 0.833 and 0.6: the middle one is round 2's, where the two
        // median rounds (190 and 200) would give 0.95.
        assert_near(*rate, 250.0 / 300.0);
        // 0.5, 1.5 and 1.5.
        assert_near(*p50, 1.5);
        // Round 3 has no CPU time: the median of 0.95 and 1.2.
        assert_near(*cpu, (0.95 + 1.2) / 2.0);
    }

    #[test]
    fn the_reference_against_itself_is_not_reported() {
        let rounds = vec![vec![round("base", 100.0, 1, None), round("base", 200.0, 1, None)]];
        assert!(paired(&rounds, 0).is_empty());
    }
}

/// The round in the middle, by messages per second when there are messages, else by connections.
fn median(mut reports: Vec<Report>) -> Option<Report> {
    reports.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let middle = reports.len() / 2;
    reports.into_iter().nth(middle)
}

impl Report {
    /// One line: rate, p50 and CPU per connection, so that every round can be read.
    fn summary(&self) -> String {
        let cpu = self.cpu_per_connection.map_or(String::new(), |(user, system)| {
            format!(", CPU/conn {:.1} µs (user {user:.1}, sys {system:.1})", user + system)
        });
        format!(
            "{} {:.0} conn/s, p50 {:.2} ms, {} errors{cpu}",
            self.name,
            self.connection_rate(),
            percentile(&self.latencies, 50).as_secs_f64() * 1e3,
            self.errors
        )
    }

    /// Connections that succeeded, per second.
    fn connection_rate(&self) -> f64 {
        self.ok as f64 / self.took.as_secs_f64()
    }

    fn rate(&self) -> f64 {
        let count = if self.messages > 0 { self.messages } else { self.ok };
        count as f64 / self.took.as_secs_f64()
    }
}

/// Each target's connection rate, p50 and CPU per connection over the reference's in the same
/// round, the median over the rounds. A load on the machine that comes and goes from round to
/// round then weighs on both sides of each ratio, where a target's median round moves with it
/// on its own.
fn paired(rounds: &[Vec<Report>], reference: usize) -> Vec<(String, [Option<f64>; 3])> {
    let measures: [fn(&Report) -> Option<f64>; 3] = [
        |r| Some(r.connection_rate()),
        |r| Some(percentile(&r.latencies, 50).as_secs_f64()),
        |r| r.cpu_per_connection.map(|(user, system)| user + system),
    ];
    let Some(base) = rounds.get(reference) else { return Vec::new() };
    let others = rounds.iter().enumerate().filter(|&(k, _)| k != reference);
    others
        .filter_map(|(_, reports)| {
            let name = reports.first()?.name.clone();
            let ratios = measures.map(|measure| {
                let each = reports.iter().zip(base).filter_map(|(report, base)| {
                    let (value, base) = (measure(report)?, measure(base)?);
                    let ratio = value / base;
                    ratio.is_finite().then_some(ratio)
                });
                middle(each.collect())
            });
            Some((name, ratios))
        })
        .collect()
}

/// The median: the mean of the two in the middle when the count is even.
fn middle(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let half = values.len() / 2;
    if values.len() % 2 == 1 {
        values.get(half).copied()
    } else {
        Some((values.get(half.checked_sub(1)?)? + values.get(half)?) / 2.0)
    }
}

fn print_ratios(reference: &str, ratios: &[(String, [Option<f64>; 3])], rounds: usize) {
    println!(
        "\nAgainst {reference}, round by round: the median over {rounds} rounds of each ratio to {reference} in the same round\n"
    );
    println!("| target | conn/s | CONNACK p50 | CPU/conn |");
    println!("|---|---:|---:|---:|");
    for (name, ratios) in ratios {
        let [rate, p50, cpu] = ratios.map(|ratio| ratio.map_or("-".to_owned(), |r| format!("{r:.3}×")));
        println!("| {name} | {rate} | {p50} | {cpu} |");
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted.get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

fn print_table(reports: &[Report], args: &Args) {
    println!(
        "{} connections per target, {} at a time, MQTT {}{}, {} publishes of {} bytes each, held {} ms, median of {} rounds\n",
        args.connections,
        args.concurrency,
        if args.protocol == 5 { "5.0" } else { "3.1.1" },
        if args.tls_ca.is_some() { " over TLS 1.3" } else { "" },
        args.publishes,
        args.payload,
        args.hold_ms,
        args.rounds
    );
    println!(
        "| target | conn/s | CONNACK p50 | CONNACK p99 | errors | msg/s | MB/s | RSS/conn | CPU/conn | user | sys |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        let secs = r.took.as_secs_f64();
        let rss = r.rss_per_connection.map_or("-".to_owned(), |kib| format!("{kib:.1} KiB"));
        let [cpu, user, system] = match r.cpu_per_connection {
            Some((user, system)) => [user + system, user, system].map(|us| format!("{us:.1} µs")),
            None => ["-", "-", "-"].map(str::to_owned),
        };
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.0} | {:.1} | {} | {} | {} | {} |",
            r.name,
            r.connection_rate(),
            percentile(&r.latencies, 50).as_secs_f64() * 1e3,
            percentile(&r.latencies, 99).as_secs_f64() * 1e3,
            r.errors,
            r.messages as f64 / secs,
            r.bytes as f64 / secs / 1e6,
            rss,
            cpu,
            user,
            system
        );
    }
}

/// The same connection over WebSocket: each write one binary frame.
mod websocket {
    use std::future::ready;
    use std::io;
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_util::io::{CopyToBytes, SinkWriter, StreamReader};

    use super::{Load, mqtt, step};

    /// From TCP connect to CONNACK, the upgrade included.
    pub async fn connection(
        addr: SocketAddr,
        path: &str,
        client_id: &str,
        load: &Load,
        on_connack: impl FnOnce(),
    ) -> io::Result<Duration> {
        let started = Instant::now();
        let stream = step(TcpStream::connect(addr)).await?;
        stream.set_nodelay(true)?;
        let mut request = format!("ws://{addr}{path}").into_client_request().map_err(io::Error::other)?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
        let upgrade =
            async { tokio_tungstenite::client_async(request, stream).await.map_err(io::Error::other) };
        let (ws, _) = step(upgrade).await?;
        // The frames as a byte stream: each write one binary frame, shutdown a Close frame;
        // reads run on across frames, whatever their bounds.
        let (frames_out, frames_in) = ws.split();
        let writer = SinkWriter::new(CopyToBytes::new(
            frames_out
                .sink_map_err(io::Error::other)
                .with(|bytes: Bytes| ready(Ok::<_, io::Error>(Message::Binary(bytes)))),
        ));
        let reader = StreamReader::new(frames_in.filter_map(|message| {
            ready(match message {
                Ok(Message::Binary(bytes)) => Some(Ok(bytes)),
                Ok(_) => None,
                Err(e) => Some(Err(io::Error::other(e))),
            })
        }));
        mqtt(tokio::io::join(reader, writer), started, client_id, load, on_connack).await
    }
}
