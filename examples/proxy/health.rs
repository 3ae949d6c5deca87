//! Passive health: an upstream that refused or timed out a connection is skipped for a while,
//! so the clients behind it stop paying its connect timeout one after another. When the mark
//! expires, one client at a time probes it while the others keep skipping it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::Upstream;

/// The marks on failed upstreams, by address; shared by all connections and kept across
/// reloads.
#[derive(Clone, Debug, Default)]
pub struct Health(Arc<Mutex<Marks>>);

#[derive(Debug, Default)]
struct Marks {
    marks: HashMap<String, Mark>,
    /// When each upstream that was marked was last found up: a connect that began before
    /// then, and fails after, is of the outage it ended, and marks nothing.
    up_since: HashMap<String, Instant>,
}

impl Marks {
    /// Removes the mark on `addr`, found up now; whether there was one.
    fn clear(&mut self, addr: &str) -> bool {
        let cleared = self.marks.remove(addr).is_some();
        if cleared {
            self.up_since.insert(addr.to_owned(), Instant::now());
        }
        cleared
    }
}

#[derive(Clone, Copy, Debug)]
enum Mark {
    /// Skipped until then.
    Down(Instant),
    /// Its down mark expired and one connection is trying it, until then at most.
    Probing(Instant),
    /// Failed its active health checks: skipped until they pass again.
    Held,
}

/// What a connection does with an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Unmarked: try it.
    Try,
    /// Its mark expired and no one else is trying it: this connection is the probe.
    Probe,
    /// Marked down, or being probed by another connection: skip it.
    Skip,
}

impl Health {
    /// Whether to try `upstream`; an expired mark makes this caller the probe, for up to
    /// `probe_for` (its connect timeout), after which another may probe.
    pub fn verdict(&self, upstream: &Upstream, probe_for: Duration) -> Verdict {
        let mut marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mark) = marks.marks.get_mut(&upstream.addr) else { return Verdict::Try };
        let now = Instant::now();
        match *mark {
            Mark::Held => Verdict::Skip,
            Mark::Down(until) | Mark::Probing(until) if now < until => Verdict::Skip,
            _ => {
                *mark = Mark::Probing(now.checked_add(probe_for).unwrap_or(now));
                Verdict::Probe
            }
        }
    }

    /// A connect to `upstream` begun at `began` failed: `Some` if it is marked down, with
    /// whether this is a change (it was not marked before). `None` when it was found up since
    /// the connect began: the failure is of the outage that ended then, as a connect's timeout
    /// can come after the broker is back. A mark held by the health checks stays.
    pub fn mark_down(&self, upstream: &Upstream, down_for: Duration, began: Instant) -> Option<bool> {
        let mut marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if marks.up_since.get(&upstream.addr).is_some_and(|&up| up >= began) {
            return None;
        }
        let now = Instant::now();
        let down = Mark::Down(now.checked_add(down_for).unwrap_or(now));
        Some(match marks.marks.insert(upstream.addr.clone(), down) {
            None => true,
            Some(Mark::Held) => {
                marks.marks.insert(upstream.addr.clone(), Mark::Held);
                false
            }
            Some(_) => false,
        })
    }

    /// Marks the upstream down until [`Health::lift`]; whether this is a change.
    pub fn hold_down(&self, upstream: &Upstream) -> bool {
        let mut marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        marks.marks.insert(upstream.addr.clone(), Mark::Held).is_none()
    }

    /// A connect to `upstream` succeeded: its passive mark goes; whether it had one. Called on
    /// every connect; with no marks, as nearly always, the address is not hashed
    /// (`HashMap::remove` hashes first). A mark held by the health checks stays: a broker that
    /// accepts TCP and never answers MQTT takes connects, and only the checks can tell it works
    /// again.
    pub fn mark_up(&self, upstream: &Upstream) -> bool {
        let mut marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if marks.marks.is_empty() {
            return false;
        }
        match marks.marks.get(&upstream.addr) {
            Some(Mark::Held) | None => false,
            Some(_) => marks.clear(&upstream.addr),
        }
    }

    /// The health checks stopped: their hold goes, a passive mark stays; whether this is a
    /// change.
    pub fn unhold(&self, upstream: &Upstream) -> bool {
        let mut marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match marks.marks.remove(&upstream.addr) {
            Some(Mark::Held) => true,
            Some(passive) => {
                marks.marks.insert(upstream.addr.clone(), passive);
                false
            }
            None => false,
        }
    }

    /// No route names the upstream any more: its marks go, without a word.
    pub fn forget(&self, addr: &str) {
        let mut marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        marks.marks.remove(addr);
        marks.up_since.remove(addr);
    }

    /// The health checks passed: any mark goes, held or passive; whether this is a change.
    pub fn lift(&self, upstream: &Upstream) -> bool {
        let mut marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        marks.clear(&upstream.addr)
    }
}
