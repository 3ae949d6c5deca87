//! Active MQTT health checks, per route, off unless a route asks for them: every interval each
//! of the route's upstreams gets a TCP connect, a CONNECT, an expected CONNACK within a
//! timeout, and a DISCONNECT. `fall` failures in a row mark it down, held so until `rise`
//! successes in a row mark it up. Passive marks go on beside them.
//!
//! A broker that accepts TCP but never answers MQTT (frozen, overloaded, black-holed behind a
//! load balancer) passes every passive check, since the connect succeeds; only this notices it.
//! A broker that refuses the check's client for who it is (its id, no credentials, not
//! authorized) answers MQTT, and passes: one that takes clients only with a login would
//! otherwise fail every check, and have every client of its route refused.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use mqtt_connect::{ConnackPacket, Protocol, ReasonCode, Status};
use ppp::v2;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::config::{Config, HealthCheck, Upstream};
use crate::health::Health;
use crate::metrics::Metrics;

/// An upstream's check, as its route asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    check: HealthCheck,
    /// The route sends its brokers a PROXY header first, which they may require: the check's
    /// connection starts with one too, of the LOCAL command, which the PROXY protocol has for
    /// a balancer's own connections, health checks among them.
    proxy_protocol: bool,
}

impl Checked {
    /// What the check sends first: the PROXY header, where the route sends one, and the
    /// CONNECT. The same at every check, so made once.
    fn first_bytes(&self) -> Result<Vec<u8>, String> {
        let (packet, len) = self.check.connect().map_err(|e| e.to_string())?;
        let mut first = if self.proxy_protocol {
            let local = v2::Version::Two | v2::Command::Local;
            v2::Builder::with_addresses(local, v2::Protocol::Unspecified, v2::Addresses::Unspecified)
                .build()
                .map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        first.extend_from_slice(packet.get(..len).unwrap_or_default());
        Ok(first)
    }
}

/// The upstreams under active health checks, by address, each with its check; each holds a
/// socket at a time while its check runs.
pub fn checked(config: &Config) -> HashMap<String, Checked> {
    let checked = config.routes.iter().filter_map(|r| {
        let check = Checked { check: r.health_check.clone()?, proxy_protocol: r.proxy_protocol };
        Some((check, &r.upstreams))
    });
    checked.flat_map(|(check, ups)| ups.iter().map(move |u| (u.addr.clone(), check.clone()))).collect()
}

/// Keeps one checking task per upstream that some route checks, following the config through
/// reloads, until the proxy ends; and forgets the health of an upstream a reload leaves no
/// route naming, so that its `upstream_up` does not stay, stale, until the restart.
pub fn supervise(mut config: watch::Receiver<Arc<Config>>, health: Health, metrics: Arc<Metrics>) {
    tokio::spawn(async move {
        let mut running: HashMap<String, (Checked, JoinHandle<()>)> = HashMap::new();
        let mut named = HashSet::new();
        loop {
            let (wanted, now_named) = {
                let config = config.borrow_and_update();
                let upstreams = config.routes.iter().flat_map(|r| r.upstreams.iter().map(|u| u.addr.clone()));
                (checked(&config), upstreams.collect::<HashSet<_>>())
            };
            for gone in named.difference(&now_named) {
                health.forget(gone);
                metrics.forget_upstream(gone);
            }
            named = now_named;
            // No check left to lift its hold: the upstream would be skipped for good. A check
            // that only changed goes on from the hold, and lifts it when it passes. In this form
            // (and `Health::unhold`'s `remove` then `insert`) the release build's code for a
            // connection stays as it was; a `get` in `unhold`, or this in `retain`'s closure,
            // moved the compiler to stop inlining `tokio::time::timeout` into `session::open`:
            // 26,440 -> 26,830 instructions a connection (`benches/proxy.sh instructions`).
            let stopped = running.keys().filter(|addr| !wanted.contains_key(*addr) && named.contains(*addr));
            let lifted = stopped.filter(|addr| health.unhold(&Upstream { addr: (*addr).clone(), weight: 1 }));
            lifted.for_each(|addr| {
                tracing::info!(upstream = %addr, "health checks stopped; marked up");
                metrics.health(addr, true, true);
            });
            running.retain(|addr, (check, task)| {
                let keep = wanted.get(addr) == Some(check);
                if !keep {
                    task.abort();
                }
                keep
            });
            for (addr, check) in wanted {
                if running.contains_key(&addr) {
                    continue;
                }
                let upstream = Upstream { addr: addr.clone(), weight: 1 };
                let task = tokio::spawn(watch_one(upstream, check.clone(), health.clone(), metrics.clone()));
                running.insert(addr, (check, task));
            }
            if config.changed().await.is_err() {
                break;
            }
        }
        running.into_values().for_each(|(_, task)| task.abort());
    });
}

/// Checks one upstream forever, marking it as the counts say.
async fn watch_one(upstream: Upstream, checked: Checked, health: Health, metrics: Arc<Metrics>) {
    let check = &checked.check;
    let first = checked.first_bytes();
    let mut interval = tokio::time::interval(Duration::from_millis(check.interval_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut failures, mut successes) = (0u32, 0u32);
    loop {
        interval.tick().await;
        let outcome = match &first {
            Ok(first) => check_once(&upstream.addr, first, Duration::from_millis(check.timeout_ms)).await,
            Err(e) => Err(e.clone()),
        };
        match outcome {
            Ok(()) => {
                failures = 0;
                successes = successes.saturating_add(1);
                if successes == check.rise {
                    let changed = health.lift(&upstream);
                    if changed {
                        tracing::info!(upstream = %upstream, "health check passed; marked up");
                    }
                    metrics.health(&upstream.addr, true, changed);
                }
            }
            Err(why) => {
                successes = 0;
                failures = failures.saturating_add(1);
                if failures == check.fall {
                    let changed = health.hold_down(&upstream);
                    if changed {
                        tracing::warn!(upstream = %upstream, error = %why, "health check failed; marked down");
                    } else {
                        // Marked by a client's failed connect, already logged and counted.
                        tracing::info!(
                            upstream = %upstream,
                            error = %why,
                            "health check failed; already marked down, now held until checks pass"
                        );
                    }
                    metrics.health(&upstream.addr, false, changed);
                }
            }
        }
    }
}

/// Whether a broker that answers the check's CONNECT with `code` serves MQTT: it accepts, or
/// refuses the check's client for who it is, which says nothing of the broker's health.
fn serves(code: ReasonCode) -> bool {
    matches!(
        code,
        ReasonCode::Success
            | ReasonCode::ClientIdentifierNotValid
            | ReasonCode::BadUserNameOrPassword
            | ReasonCode::NotAuthorized
    )
}

/// One check: connect, `first` ([`Checked::first_bytes`]), a CONNACK from a broker that
/// [`serves`], DISCONNECT after an accept, all within `timeout_in`.
async fn check_once(addr: &str, first: &[u8], timeout_in: Duration) -> Result<(), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(first).await?;
        // A 3.1.1 CONNACK is four bytes.
        let mut ack = [0; 4];
        stream.read_exact(&mut ack).await?;
        match ConnackPacket::decode(Protocol::V3_1_1, &ack) {
            Ok(Status::Complete { packet, .. }) if packet.reason_code == ReasonCode::Success => {}
            // The broker closes after a refusal.
            Ok(Status::Complete { packet, .. }) if serves(packet.reason_code) => return Ok(()),
            Ok(Status::Complete { packet, .. }) => {
                return Err(std::io::Error::other(format!("CONNACK {}", packet.reason_code)));
            }
            _ => return Err(std::io::Error::other(format!("no CONNACK: {ack:02x?}"))),
        }
        // DISCONNECT, so that the broker logs a clean goodbye.
        stream.write_all(&[0xE0, 0x00]).await?;
        stream.shutdown().await
    };
    match timeout(timeout_in, exchange).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no CONNACK within the timeout".into()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::watch;

    use super::{Checked, check_once, supervise};
    use crate::config::{Config, HealthCheck, Upstream};
    use crate::health::{Health, Verdict};
    use crate::metrics::Metrics;

    /// Guards against a hang only.
    const PATIENCE: Duration = Duration::from_secs(5);

    /// The check's first bytes, without a PROXY header.
    fn first() -> Vec<u8> {
        Checked { check: HealthCheck::default(), proxy_protocol: false }.first_bytes().expect("a CONNECT")
    }

    /// A broker that reads a CONNECT of `len` bytes, answers `ack`, and hands back all it is
    /// sent after it until the check closes.
    async fn broker(len: usize, ack: [u8; 4]) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind broker");
        let addr = listener.local_addr().expect("broker address").to_string();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("the check connects");
            let mut connect = vec![0; len];
            stream.read_exact(&mut connect).await.expect("the CONNECT");
            stream.write_all(&ack).await.expect("answer");
            let mut after = Vec::new();
            stream.read_to_end(&mut after).await.ok();
            after
        });
        (addr, task)
    }

    /// A check the broker accepts ends with a DISCONNECT, so that the broker logs a clean
    /// goodbye rather than a lost client; a refusal, after which the broker closes, with none.
    #[tokio::test]
    async fn an_accepted_check_says_disconnect_and_a_refused_one_nothing() {
        let first = first();
        for (ack, after) in [([0x20, 0x02, 0x00, 0x00], &[0xE0, 0x00][..]), ([0x20, 0x02, 0x00, 0x05], &[])] {
            let (addr, broker) = broker(first.len(), ack).await;
            assert_eq!(check_once(&addr, &first, PATIENCE).await, Ok(()), "{ack:02x?} passes");
            let sent = tokio::time::timeout(PATIENCE, broker).await.expect("closed").expect("broker");
            assert_eq!(sent, after, "{ack:02x?}");
        }
    }

    /// A broker that says it takes no clients fails the check with its CONNACK's code, which
    /// the log line gives as the reason, not as a packet that was no CONNACK.
    #[tokio::test]
    async fn a_check_refused_as_unavailable_fails_naming_the_connack() {
        let first = first();
        let (addr, _broker) = broker(first.len(), [0x20, 0x02, 0x00, 0x03]).await;
        let error = check_once(&addr, &first, PATIENCE).await.expect_err("fails");
        assert_eq!(error, format!("CONNACK {}", mqtt_connect::ReasonCode::ServerUnavailable));
    }

    /// What a checked broker was sent: the first read of each connection, in order.
    type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

    /// A broker that answers the `n`th connection (from 0) with a 3.1.1 CONNACK 0x00 where
    /// `answers(n)`, and otherwise holds it, silent; it records what each connection sent first.
    async fn scripted(answers: fn(usize) -> bool) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind broker");
        let addr = listener.local_addr().expect("broker address").to_string();
        let seen = Seen::default();
        let record = seen.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut first = [0; 64];
                let read = stream.read(&mut first).await.unwrap_or(0);
                let n = {
                    let mut seen = record.lock().expect("lock");
                    seen.push(first[..read].to_vec());
                    seen.len() - 1
                };
                if answers(n) {
                    stream.write_all(&[0x20, 0x02, 0x00, 0x00]).await.ok();
                }
                held.push(stream);
            }
        });
        (addr, seen)
    }

    /// A config of one route of `upstreams`, whose checks (`check`, TOML for
    /// `[route.health_check]`) come every 50 ms.
    pub(crate) fn checked_route(upstreams: &[impl fmt::Display], check: &str) -> Arc<Config> {
        let upstreams = upstreams.iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", ");
        let text = format!(
            "[[route]]\nupstreams = [{upstreams}]\n[route.health_check]\ninterval_ms = 50\ntimeout_ms = 100\n{check}\n"
        );
        Arc::new(Config::parse(&text).expect("valid"))
    }

    /// Waits until `upstream` gets `verdict` from `health`.
    pub(crate) async fn until_verdict(health: &Health, upstream: &Upstream, verdict: Verdict, what: &str) {
        let started = Instant::now();
        while health.verdict(upstream, Duration::from_secs(1)) != verdict {
            assert!(started.elapsed() < PATIENCE, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `done` holds of what the broker was sent.
    async fn until_seen(seen: &Seen, what: &str, done: impl Fn(&[Vec<u8>]) -> bool) {
        let started = Instant::now();
        while !done(&seen.lock().expect("lock")) {
            assert!(started.elapsed() < PATIENCE, "{what}: {:02x?}", seen.lock().expect("lock"));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn upstream(addr: &str) -> Upstream {
        addr.parse().expect("upstream")
    }

    /// `rise = 2`: one passed check lifts no hold, however the checks go on.
    #[tokio::test]
    async fn one_passed_check_of_the_two_that_rise_asks_lifts_no_hold() {
        let (addr, seen) = scripted(|n| n == 0).await;
        let health = Health::default();
        health.hold_down(&upstream(&addr));
        let (_config, watched) = watch::channel(checked_route(&[&addr], "fall = 100\nrise = 2"));
        supervise(watched, health.clone(), Arc::default());
        // The first check's outcome is taken before the next check connects.
        until_seen(&seen, "a second check", |seen| seen.len() >= 2).await;
        assert_eq!(health.verdict(&upstream(&addr), Duration::from_secs(60)), Verdict::Skip);
    }

    /// `fall = 2`: one failed check marks nothing down, however the checks go on.
    #[tokio::test]
    async fn one_failed_check_of_the_two_that_fall_asks_marks_nothing_down() {
        let (addr, seen) = scripted(|n| n != 0).await;
        let health = Health::default();
        let (_config, watched) = watch::channel(checked_route(&[&addr], "fall = 2\nrise = 100"));
        supervise(watched, health.clone(), Arc::default());
        until_seen(&seen, "a second check", |seen| seen.len() >= 2).await;
        assert_eq!(health.verdict(&upstream(&addr), Duration::from_secs(60)), Verdict::Try);
    }

    /// A reload that changes an upstream's check puts the new one in force, and stops the old
    /// one: the broker is sent no more of the old check's CONNECTs.
    #[tokio::test]
    async fn a_reload_that_changes_a_check_stops_the_old_one_and_starts_the_new() {
        let (addr, seen) = scripted(|_| true).await;
        let (config_in_force, watched) = watch::channel(checked_route(&[&addr], "client_id = \"check-a\""));
        supervise(watched, Health::default(), Arc::default());
        let from = |id: &'static [u8]| move |first: &Vec<u8>| first.windows(id.len()).any(|w| w == id);
        until_seen(&seen, "the first check", |seen| seen.iter().any(from(b"check-a"))).await;
        config_in_force.send_replace(checked_route(&[&addr], "client_id = \"check-b\""));
        until_seen(&seen, "the new check", |seen| seen.iter().any(from(b"check-b"))).await;
        let since = seen.lock().expect("lock").iter().position(from(b"check-b")).expect("the new check");
        until_seen(&seen, "three more checks", |seen| seen.len() >= since + 4).await;
        let seen = seen.lock().expect("lock");
        assert!(!seen[since..].iter().any(from(b"check-a")), "the old check stopped: {seen:02x?}");
    }

    /// A reload that keeps an upstream's check (here, it drops another route's upstream) leaves
    /// the hold of its failing checks: only checks that stop lift theirs.
    #[tokio::test]
    async fn a_reload_that_keeps_a_check_keeps_its_hold() {
        let (addr, _seen) = scripted(|_| false).await;
        let (health, metrics) = (Health::default(), Arc::new(Metrics::default()));
        let other = "127.0.0.1:1";
        let (config_in_force, watched) = watch::channel(checked_route(&[&addr, other], "fall = 1"));
        supervise(watched, health.clone(), metrics.clone());
        until_verdict(&health, &upstream(&addr), Verdict::Skip, "held down by the failing checks").await;
        let started = Instant::now();
        metrics.health(other, true, false);
        let gauge = format!(r#"mqtt_proxy_upstream_up{{upstream="{other}"}}"#);
        assert!(metrics.encode().contains(&gauge));
        config_in_force.send_replace(checked_route(&[&addr], "fall = 1"));
        // The reload is taken whole, its forgetting and its lifting, before the task waits again.
        while metrics.encode().contains(&gauge) {
            assert!(started.elapsed() < PATIENCE, "the reload taken");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(health.verdict(&upstream(&addr), Duration::from_secs(60)), Verdict::Skip);
    }
}
