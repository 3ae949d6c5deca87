//! When a relayed connection has gone quiet for too long, and is cut.
//!
//! - A server closes a client that sends nothing for one and a half times its Keep Alive
//!   [MQTT-3.1.2-24]. The proxy does the same, counting bytes either way as activity. When the
//!   broker's 5.0 CONNACK carries a Server Keep Alive, that is the Keep Alive in force.
//! - A Keep Alive of 0 (none), or one above `max_keep_alive_s`, gets the idle cap instead: many
//!   connections holding huge keep-alives is the SlowITe attack (CVE-2020-13849).
//! - Once one side has closed its sending direction, the other has `half_closed_timeout_ms` of
//!   quiet to finish, as HAProxy's `timeout client-fin` / `server-fin`: a peer that left while
//!   the other went silent would otherwise hold both sockets for good.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::config::Limits;

/// How long a connection may be quiet, as the limits and the client's Keep Alive set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quiet {
    /// Longest Keep Alive honoured, in seconds.
    max_keep_alive: u16,
    /// For Keep Alive 0 or above the maximum.
    cap: Duration,
    /// After one side has closed.
    half_closed: Duration,
}

impl Quiet {
    pub fn new(limits: &Limits) -> Self {
        Self {
            max_keep_alive: limits.max_keep_alive_s,
            cap: limits.idle_timeout(),
            half_closed: limits.half_closed_timeout(),
        }
    }

    /// The idle limit for a Keep Alive of `seconds`.
    pub fn limit(&self, seconds: u16) -> Duration {
        if seconds == 0 || seconds > self.max_keep_alive {
            return self.cap;
        }
        Duration::from_millis(u64::from(seconds) * 1500)
    }
}

/// Why a quiet connection was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Nothing either way for this long.
    Idle(Duration),
    /// One side had closed, and the other sent nothing for this long.
    HalfClosed(Duration),
    /// The shutdown's drain deadline passed.
    Drained,
}

/// The last time bytes moved, and the limit in force; shared by the two directions of one
/// relay, which run in one task.
#[derive(Debug)]
pub struct Activity {
    quiet: Quiet,
    start: Instant,
    /// Since `start`.
    last_ms: AtomicU64,
    limit_ms: AtomicU64,
    half_closed: AtomicBool,
    /// A change of limit, which may bring the deadline forward.
    changed: Notify,
    /// Turns true at the drain deadline.
    drained: watch::Receiver<bool>,
}

impl Activity {
    /// Starts the clock with the client's Keep Alive; `drained` cuts the connection when it
    /// turns true.
    pub fn new(quiet: Quiet, keep_alive: u16, drained: watch::Receiver<bool>) -> Self {
        Self {
            quiet,
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            limit_ms: AtomicU64::new(millis(quiet.limit(keep_alive))),
            half_closed: AtomicBool::new(false),
            changed: Notify::new(),
            drained,
        }
    }

    /// Bytes moved.
    pub fn touch(&self) {
        self.last_ms.store(millis(self.start.elapsed()), Ordering::Relaxed);
    }

    /// One direction has ended.
    pub fn half_close(&self) {
        self.half_closed.store(true, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// The broker's Server Keep Alive replaces the client's.
    pub fn server_keep_alive(&self, seconds: u16) {
        self.limit_ms.store(millis(self.quiet.limit(seconds)), Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// Returns once the connection has been quiet past its limit, or at the drain deadline.
    pub async fn expired(&self) -> Cut {
        let mut drained = self.drained.clone();
        loop {
            if *drained.borrow_and_update() {
                return Cut::Drained;
            }
            let idle = Duration::from_millis(self.limit_ms.load(Ordering::Relaxed));
            let half_closed = self.half_closed.load(Ordering::Relaxed);
            let (limit, cut) = match half_closed {
                true if self.quiet.half_closed < idle => {
                    (self.quiet.half_closed, Cut::HalfClosed(self.quiet.half_closed))
                }
                _ => (idle, Cut::Idle(idle)),
            };
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let now = Instant::now();
            let deadline = self.start.checked_add(last.saturating_add(limit));
            if deadline.is_some_and(|deadline| now >= deadline) {
                return cut;
            }
            // Woken at the deadline as it stood, or when the limit changes, then looks again:
            // activity only ever moves the deadline on.
            let sleep = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                () = self.changed.notified() => {}
                // A closed channel: the proxy is gone, and the runtime with it.
                Ok(()) = drained.changed() => {}
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
