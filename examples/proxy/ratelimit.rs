//! The connection-rate limit per source address, off by default: a token bucket per address,
//! as governor's keyed GCRA limiter keeps it (GCRA is a token bucket kept as one timestamp per
//! key). A reconnect storm from one address is refused in the client's version, while other
//! addresses are served.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Limits;

/// Per-address buckets, forgotten once full again.
#[derive(Debug)]
pub struct RateLimit {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

/// Checks between sweeps of the buckets that are full again, which bounds their memory to the
/// addresses seen recently.
const SWEEP_EVERY: u64 = 4096;

impl RateLimit {
    /// The limit `limits` sets, if any.
    pub fn new(limits: &Limits) -> Option<Self> {
        // The config check refuses 0 for either.
        let rate = NonZeroU32::new(limits.max_connects_per_s?)?;
        let burst = limits.connect_burst.and_then(NonZeroU32::new).unwrap_or(rate);
        let buckets = RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst));
        Some(Self { buckets, checks: AtomicU64::new(0) })
    }

    /// Whether a connection from `ip` is within its rate; takes a token if so. An IPv4 client
    /// of a dual-stack listener (`::ffff:a.b.c.d`) takes from the bucket of its IPv4 address,
    /// which it also reaches through an IPv4 listener.
    pub fn admits(&self, ip: IpAddr) -> bool {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
        self.buckets.check_key(&ip.to_canonical()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::{RateLimit, SWEEP_EVERY};
    use crate::config::Limits;

    /// Every `SWEEP_EVERY`th check forgets the buckets that are full again, and only then: the
    /// memory stays bounded by the addresses seen recently, not all those ever seen.
    #[test]
    fn every_4096th_check_forgets_the_buckets_full_again() {
        let limits = Limits { max_connects_per_s: Some(1000), connect_burst: Some(1), ..Limits::default() };
        let limit = RateLimit::new(&limits).expect("a limit");
        let client = |n: u64| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + u32::try_from(n).expect("small")));
        for n in 0..SWEEP_EVERY - 1 {
            assert!(limit.admits(client(n)), "a first connect is admitted");
        }
        assert_eq!(limit.buckets.len(), 4095, "no sweep before the 4096th check");
        // At 1000 a second, a bucket is full again 1 ms after its one connect.
        std::thread::sleep(Duration::from_millis(50));
        assert!(limit.admits(client(SWEEP_EVERY)));
        assert_eq!(limit.buckets.len(), 1, "the 4096th check swept the 4095 full buckets");
    }
}
