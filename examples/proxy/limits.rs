//! What bounds the proxy's memory and descriptors as a whole, shared by all connections: the
//! budget for CONNECT bytes buffered at once, the default connection cap from the descriptor
//! limit, the count of refusals in progress, a spare descriptor for telling a client "busy"
//! when the descriptors are gone, the connection-rate limit in force, and the drain deadline's
//! cut of the connections still live.

use std::fs::File;
use std::future::poll_fn;
use std::io;
use std::net::IpAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use rlimit::Resource;

use bytes::BytesMut;
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::config::{FIRST_CONNECT_BUFFER, Limits};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimit;

/// What all connections share to stay within bounds. Set at start from the limits then in
/// force and the descriptor limit; a reload changes none of it but the connection cap, when it
/// names one.
#[derive(Clone, Debug)]
pub struct Guards {
    pub budget: Budget,
    /// Descriptors left for sessions and health checks.
    free: u64,
    /// The refusals in progress, and the most at once.
    refusing: Arc<Count>,
    max_refusals: usize,
    spare: Spare,
    /// Set at the drain deadline, to cut the connections still live.
    drained: Arc<Drained>,
    rate: Option<Arc<RateLimit>>,
    pub metrics: Arc<Metrics>,
}

impl Guards {
    pub fn new(limits: &Limits) -> Self {
        let descriptors = descriptor_limit();
        let open = open_descriptors();
        let refusals = limits.max_refusals.unwrap_or_else(|| default_refusals(descriptors));
        let free = free_descriptors(descriptors, open, refusals);
        // The cap in force is logged with the config, which may lower it.
        tracing::info!(descriptors, open, max_refusals = refusals, "descriptors");
        if free < 2 {
            tracing::warn!(
                max_refusals = refusals,
                "the refusals take every descriptor the limit leaves: one connection is served at \
                 a time; lower max_refusals or raise the descriptor limit"
            );
        }
        Self {
            budget: Budget::new(limits.connect_buffer_budget),
            free,
            refusing: Arc::default(),
            max_refusals: refusals,
            spare: Spare::open(),
            drained: Arc::default(),
            rate: RateLimit::new(limits).map(Arc::new),
            metrics: Arc::default(),
        }
    }

    /// Whether a new connection from `ip` is within the rate limit, if there is one.
    pub fn admits(&self, ip: IpAddr) -> bool {
        self.rate.as_ref().is_none_or(|rate| rate.admits(ip))
    }

    /// Cuts every connection still live, relaying or on its way to the relay, each with its log
    /// line.
    pub fn cut_all(&self) {
        self.drained.cut.store(true, Ordering::SeqCst);
        self.drained.notify.notify_waiters();
    }

    /// Set when [`Guards::cut_all`] is called.
    pub fn drained(&self) -> &Drained {
        &self.drained
    }

    /// The connection cap in force with `checked` upstreams under active health checks: the
    /// config's, but never more than the descriptors allow. A cap past them would let the
    /// proxy's threads run out of descriptors together, where the spare can answer one client
    /// at a time only if no other thread takes the descriptor it frees; at the cap every client
    /// past it is told "busy", however many threads accept.
    pub fn max_connections(&self, limits: &Limits, checked: usize) -> usize {
        let fits = descriptor_cap(self.free, checked);
        limits.max_connections.map_or(fits, |cap| cap.min(fits))
    }

    /// The config's cap and the one the descriptors allow, when the first is above the second;
    /// logged at start and at each reload.
    pub fn lowered_cap(&self, limits: &Limits, checked: usize) -> Option<(usize, usize)> {
        let fits = descriptor_cap(self.free, checked);
        limits.max_connections.filter(|&cap| cap > fits).map(|cap| (cap, fits))
    }

    /// A place among the refusals in progress, held until the refused client is closed;
    /// `None` when they are all taken, and the client is closed at once.
    pub fn refusal(&self) -> Option<RefusalSlot> {
        self.refusing.take(self.max_refusals).then(|| RefusalSlot(self.refusing.clone()))
    }

    /// Ready when no refusal is in progress: for the drain, once accepting has stopped, so that
    /// none starts meanwhile.
    pub async fn refusals_ended(&self) {
        self.refusing.none_left().await;
    }

    /// The refusals in progress now.
    pub fn refusing(&self) -> usize {
        self.refusing.now()
    }

    /// Closes the spare descriptor, so that one more client can be accepted and told "busy";
    /// it is opened again when the returned guard drops. `None` if it is lent to a refusal in
    /// progress, or was lost, in which case it is opened again now if a descriptor is free.
    pub fn release_spare(&self) -> Option<SpareInUse> {
        let mut spare = self.spare.0.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *spare, SpareState::Lent) {
            SpareState::Held(file) => {
                drop(file);
                Some(SpareInUse(self.spare.clone()))
            }
            SpareState::Lent => None,
            SpareState::Lost => {
                *spare = SpareState::open();
                None
            }
        }
    }
}

/// The drain deadline's signal to the connections still live. Each waits on one `Notified`
/// (64 bytes), where a `watch::Receiver` and its `changed()` future took 136: this sits in
/// every idle connection's task.
#[derive(Debug, Default)]
pub struct Drained {
    cut: AtomicBool,
    notify: Notify,
}

impl Drained {
    /// Ready at a cut that comes after this call; [`Drained::is_cut`] tells of one before.
    pub fn wait(&self) -> Notified<'_> {
        self.notify.notified()
    }

    /// Whether the deadline has passed.
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Whether the deadline has passed, for a task waiting on `cut` (from [`Drained::wait`]).
    /// `cut` is polled once, which leaves the task's waker (the same at every poll) with it;
    /// after that, `polled` set, the flag is read instead, since a poll of a waiting `Notified`
    /// takes the lock that every connection's shares.
    pub fn poll_cut(&self, cut: Pin<&mut Notified<'_>>, polled: &mut bool, cx: &mut Context<'_>) -> bool {
        let notified = !*polled && cut.poll(cx).is_ready();
        *polled = true;
        notified || self.is_cut()
    }

    /// `steps` to their end, or `None` if the deadline cuts them short. The steps are polled
    /// first, so that steps which end as the cut comes end as they would have. They come
    /// pinned by the caller: moved in, they would take their room twice in this future, as the
    /// argument and as the pinned local.
    pub async fn or_cut<F: Future>(&self, mut steps: Pin<&mut F>) -> Option<F::Output> {
        // Taken before the flag is first read, so that no cut falls between the two.
        let mut cut = pin!(self.wait());
        let mut polled = false;
        poll_fn(|cx| match steps.as_mut().poll(cx) {
            Poll::Ready(done) => Poll::Ready(Some(done)),
            Poll::Pending if self.poll_cut(cut.as_mut(), &mut polled, cx) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await
    }
}

/// Raises the soft limit on open descriptors to the hard limit, as HAProxy does; returns the
/// soft limit now in force.
pub fn raise_descriptor_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The soft limit on open descriptors; 1024, the usual default, if it cannot be read.
pub fn descriptor_limit() -> u64 {
    rlimit::getrlimit(Resource::NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Descriptors open now: the listeners (one a worker for each address), the runtimes' event
/// loops, logs, and whatever the process inherited. They grow with the CPUs, so the cap counts
/// them rather than guessing; 16 where `/proc` cannot tell.
pub fn open_descriptors() -> u64 {
    // The count includes the directory's own descriptor.
    std::fs::read_dir("/proc/self/fd")
        .map_or(16, |dir| u64::try_from(dir.count()).unwrap_or(0).saturating_sub(1))
}

/// Descriptors kept for what opens after start, health checks apart: the metrics listener and
/// its scrapes, listeners a reload binds, and the spare.
const RESERVE: u64 = 16;

/// Refusals in progress allowed when the config names no number: a sixteenth of the
/// descriptors, within 8 and 4096.
pub fn default_refusals(descriptors: u64) -> usize {
    usize::try_from((descriptors / 16).clamp(8, 4096)).unwrap_or(4096)
}

/// Descriptors left for sessions and health checks: the limit less those `open` at start, the
/// reserve and the refusals in progress.
pub fn free_descriptors(descriptors: u64, open: u64, refusals: usize) -> u64 {
    let reserved = open.saturating_add(RESERVE).saturating_add(u64::try_from(refusals).unwrap_or(u64::MAX));
    descriptors.saturating_sub(reserved)
}

/// The connection cap `free` descriptors allow, and the cap when the config names none: one
/// for each of the `checked` upstreams, whose health check holds a socket at a time, and two a
/// session (client and upstream); at least 1.
pub fn descriptor_cap(free: u64, checked: usize) -> usize {
    let sessions = free.saturating_sub(u64::try_from(checked).unwrap_or(u64::MAX)) / 2;
    usize::try_from(sessions).unwrap_or(usize::MAX).max(1)
}

/// Whether a failed accept is for want of descriptors.
pub fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Whether a failed upstream connect is this host's fault (descriptors, buffers or local ports
/// exhausted) rather than the broker's, so that the broker's health is not touched.
pub fn is_local(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

/// One open descriptor held back for the moment the others are gone.
#[derive(Clone, Debug)]
struct Spare(Arc<Mutex<SpareState>>);

impl Spare {
    fn open() -> Self {
        Self(Arc::new(Mutex::new(SpareState::open())))
    }
}

#[derive(Debug)]
enum SpareState {
    Held(File),
    /// Closed for a refusal in progress; opened again when it ends.
    Lent,
    /// Not open: another thread took the descriptor that closing it freed before it could be
    /// opened again, or none was free at start. Opened again at the next want of descriptors
    /// that finds one free, rather than lost for good.
    Lost,
}

impl SpareState {
    fn open() -> Self {
        File::open("/dev/null").map_or(Self::Lost, Self::Held)
    }
}

/// The spare descriptor lent to one refusal; opened again on drop.
#[derive(Debug)]
pub struct SpareInUse(Spare);

impl Drop for SpareInUse {
    fn drop(&mut self) {
        let mut spare = self.0.0.lock().unwrap_or_else(PoisonError::into_inner);
        *spare = SpareState::open();
    }
}

/// A count under a cap, which the drain waits on to fall to zero: the connections being
/// proxied, and the refusals in progress. A `watch` channel held the live count before: each
/// connection's take and give-back took the channel's write lock, shared by all workers, and
/// woke its eight notifiers, 850 of the 28,000 instructions a connection cost in user space
/// (callgrind, `benches/README.md`).
#[derive(Debug, Default)]
pub struct Count {
    count: AtomicUsize,
    /// Woken when the count falls to zero.
    none: Notify,
}

impl Count {
    /// One more, if that keeps it within `cap`.
    pub fn take(&self, cap: usize) -> bool {
        self.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < cap).then_some(n + 1)).is_ok()
    }

    pub fn give_back(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.none.notify_waiters();
        }
    }

    pub fn now(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Returns once the count is zero.
    pub async fn none_left(&self) {
        loop {
            // Registered before the count is read, so that a fall to zero between the two wakes it.
            let mut woken = pin!(self.none.notified());
            woken.as_mut().enable();
            if self.now() == 0 {
                return;
            }
            woken.await;
        }
    }
}

/// A place among the refusals in progress, given back on drop.
pub struct RefusalSlot(Arc<Count>);

impl Drop for RefusalSlot {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

/// Bytes of CONNECT buffer the proxy holds at once, over all connections still sending theirs.
/// Each buffer is charged its capacity, which grows with what has arrived, never with what the
/// Remaining Length announces.
#[derive(Clone, Debug)]
pub struct Budget(Arc<Semaphore>);

/// A buffer's share of the [`Budget`], given back on drop.
#[derive(Debug)]
pub struct Charge(Option<OwnedSemaphorePermit>);

impl Budget {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// An empty buffer of a small first capacity, charged to the budget; `None` if spent.
    pub fn buffer(&self) -> Option<(BytesMut, Charge)> {
        let mut charge = Charge(None);
        let buf = BytesMut::with_capacity(FIRST_CONNECT_BUFFER);
        charge.add(self, buf.capacity())?;
        Some((buf, charge))
    }

    /// Makes room in `buf` for more bytes, at most `cap` in all: doubles its capacity (so that
    /// a slow sender costs a few copies, not one per read), charging the growth; `None` if the
    /// budget is spent.
    pub fn grow(&self, buf: &mut BytesMut, charge: &mut Charge, cap: usize) -> Option<()> {
        if buf.len() < buf.capacity() {
            return Some(());
        }
        let before = buf.capacity();
        let want = before.max(1).min(cap.saturating_sub(buf.len()).max(1));
        buf.reserve(want);
        charge.add(self, buf.capacity().saturating_sub(before))
    }
}

impl Charge {
    fn add(&mut self, budget: &Budget, bytes: usize) -> Option<()> {
        let n = u32::try_from(bytes).ok()?;
        let permit = match budget.0.clone().try_acquire_many_owned(n) {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => return None,
        };
        match &mut self.0 {
            Some(held) => held.merge(permit),
            None => self.0 = Some(permit),
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cap holds, and the drain's wait ends when the last place is given back, not before.
    #[tokio::test]
    async fn a_count_holds_the_cap_and_wakes_the_drain_at_zero() {
        let count = Arc::new(Count::default());
        assert!(count.take(2) && count.take(2));
        assert!(!count.take(2), "past the cap");
        let waiting = tokio::spawn({
            let count = count.clone();
            async move { count.none_left().await }
        });
        count.give_back();
        // On this current-thread runtime the waiter runs here, and must find one left.
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one is still live");
        assert!(count.take(2), "a place given back is free again");
        count.give_back();
        // Again the waiter runs, and must still wait: only the fall to zero wakes it for good.
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one is still live");
        count.give_back();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken at zero")
            .expect("joined");
        assert_eq!(count.now(), 0);
    }

    /// A spare whose descriptor another thread took comes back once one is free, instead of
    /// leaving every later client that finds the descriptors gone unanswered.
    #[test]
    fn a_lost_spare_is_opened_again_and_lent_to_one_refusal_at_a_time() {
        let guards = Guards::new(&Limits::default());
        *guards.spare.0.lock().expect("lock") = SpareState::Lost;
        assert!(guards.release_spare().is_none(), "nothing to lend while lost");
        let lent = guards.release_spare().expect("opened again: descriptors are free here");
        assert!(guards.release_spare().is_none(), "lent to one refusal at a time");
        drop(lent);
        assert!(guards.release_spare().is_some(), "back when the refusal ends");
    }

    /// A CONNECT buffer grows only once full, and its growth is charged to the budget, all of
    /// which comes back when the buffer's charge is dropped.
    #[test]
    fn a_buffer_grows_only_when_full_and_its_growth_is_charged() {
        const BUDGET: usize = 1 << 20;
        let budget = Budget::new(BUDGET);
        let left = || budget.0.available_permits();
        let (mut buf, mut charge) = budget.buffer().expect("room in the budget");
        let first = buf.capacity();
        assert_eq!(left(), BUDGET - first);
        buf.extend_from_slice(b"\x10");
        budget.grow(&mut buf, &mut charge, 1 << 16).expect("room in the budget");
        assert_eq!((buf.capacity(), left()), (first, BUDGET - first), "room left: not grown");
        buf.resize(first, 0);
        budget.grow(&mut buf, &mut charge, 1 << 16).expect("room in the budget");
        assert!(buf.capacity() >= 2 * first, "full: doubled, to {}", buf.capacity());
        assert_eq!(left(), BUDGET - buf.capacity(), "the growth is charged");
        drop(charge);
        assert_eq!(left(), BUDGET);
    }

    /// The refusals in progress are counted from none, each while its place is held.
    #[test]
    fn refusing_counts_the_refusals_in_progress_from_none() {
        let guards = Guards::new(&Limits { max_refusals: Some(2), ..Limits::default() });
        assert_eq!(guards.refusing(), 0, "none at start");
        let (first, second) = (guards.refusal().expect("a place"), guards.refusal().expect("a place"));
        assert_eq!(guards.refusing(), 2);
        drop((first, second));
        assert_eq!(guards.refusing(), 0, "none once they end");
    }
}
