//! When a relayed connection has gone quiet for too long, and is cut; and [`Cut`], why the
//! proxy cut one, the drain's deadline among the reasons.
//!
//! - A server closes a client that sends nothing for one and a half times its Keep Alive
//!   [MQTT-3.1.2-24]. The proxy does the same, counting bytes either way as activity. When the
//!   broker's 5.0 CONNACK carries a Server Keep Alive, that is the Keep Alive in force.
//! - A Keep Alive of 0 (none), or one above `max_keep_alive_s`, gets the idle cap instead: many
//!   connections holding huge keep-alives is the SlowITe attack (CVE-2020-13849).
//! - Activity is bytes the relay reads or writes. A slow reader still taking bytes the kernel
//!   buffers after the relay's last write is out of its sight, as it is out of HAProxy's.
//! - Once one side has closed its sending direction, the other has `half_closed_timeout_ms` of
//!   quiet to finish (its idle limit, if that is shorter: a half-close never buys more time), as
//!   HAProxy's `timeout client-fin` / `server-fin`: a peer that left while the other went
//!   silent would otherwise hold both sockets for good.

use std::time::{Duration, Instant};

use crate::config::Limits;

/// How long a connection may be quiet, as the limits and the client's Keep Alive set it; read
/// from the limits in force, which the relay borrows for its life rather than copy (8 bytes in
/// each idle connection's task, not 40).
#[derive(Clone, Copy, Debug)]
pub struct Quiet<'l>(&'l Limits);

impl<'l> Quiet<'l> {
    pub fn new(limits: &'l Limits) -> Self {
        Self(limits)
    }

    /// The idle limit for a Keep Alive of `seconds`: the idle cap for 0 (none) or one above
    /// the longest honoured.
    pub fn limit(self, seconds: u16) -> Duration {
        if seconds == 0 || seconds > self.0.max_keep_alive_s {
            return self.0.idle_timeout();
        }
        Duration::from_millis(u64::from(seconds) * 1500)
    }

    /// After one side has closed.
    fn half_closed(self) -> Duration {
        self.0.half_closed_timeout()
    }
}

/// Why the proxy cut a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Nothing either way for this long.
    Idle(Duration),
    /// One side had closed, and the other sent nothing for this long.
    HalfClosed(Duration),
    /// The shutdown's drain deadline passed.
    Drained,
}

/// The last time bytes moved, and the limit in force: the relay's own, which runs both
/// directions in one poll, so it needs no atomics, nor a wake-up when the limit changes.
#[derive(Debug)]
pub struct Activity<'l> {
    quiet: Quiet<'l>,
    /// When bytes last moved, or the relay began.
    last: Instant,
    /// The Keep Alive in force, in seconds: the client's, or the broker's Server Keep Alive.
    keep_alive: u16,
    half_closed: bool,
}

impl<'l> Activity<'l> {
    /// Starts the clock with the client's Keep Alive.
    pub fn new(quiet: Quiet<'l>, keep_alive: u16) -> Self {
        Self { quiet, last: Instant::now(), keep_alive, half_closed: false }
    }

    /// Bytes moved at `now`.
    pub fn touch(&mut self, now: Instant) {
        self.last = now;
    }

    /// One direction has ended.
    pub fn half_close(&mut self) {
        self.half_closed = true;
    }

    /// The broker's Server Keep Alive replaces the client's.
    pub fn server_keep_alive(&mut self, seconds: u16) {
        self.keep_alive = seconds;
    }

    /// When the connection is cut if nothing moves before (`None`: past what an `Instant`
    /// holds, so never), and why.
    pub fn deadline(&self) -> (Option<Instant>, Cut) {
        let idle = self.quiet.limit(self.keep_alive);
        let half_closed = self.quiet.half_closed();
        let (limit, cut) = match self.half_closed {
            true if half_closed < idle => (half_closed, Cut::HalfClosed(half_closed)),
            _ => (idle, Cut::Idle(idle)),
        };
        (self.last.checked_add(limit), cut)
    }
}
