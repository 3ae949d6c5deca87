//! Passive health: an upstream that refused or timed out a connection is skipped for a while,
//! so the clients behind it stop paying its connect timeout one after another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::Upstream;

/// Until when each failed upstream is out, by address; shared by all connections and kept
/// across reloads.
#[derive(Clone, Debug, Default)]
pub struct Health(Arc<Mutex<HashMap<String, Instant>>>);

impl Health {
    pub fn is_down(&self, upstream: &Upstream) -> bool {
        let down = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        down.get(&upstream.addr).is_some_and(|&until| Instant::now() < until)
    }

    pub fn mark_down(&self, upstream: &Upstream, down_for: Duration) {
        let mut down = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        down.insert(upstream.addr.clone(), Instant::now() + down_for);
    }

    pub fn mark_up(&self, upstream: &Upstream) {
        let mut down = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        down.remove(&upstream.addr);
    }
}
