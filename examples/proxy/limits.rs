//! What bounds the proxy's memory and descriptors as a whole, shared by all connections: the
//! budget for CONNECT bytes buffered at once, and the count of refusals in progress.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::config::Limits;

/// What all connections share to stay within bounds.
#[derive(Clone, Debug)]
pub struct Guards {
    pub budget: Budget,
}

impl Guards {
    pub fn new(limits: &Limits) -> Self {
        Self { budget: Budget::new(limits.connect_buffer_budget) }
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

/// A CONNECT buffer starts this large: most CONNECTs are a few dozen bytes.
const FIRST: usize = 256;

impl Budget {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// An empty buffer of a small first capacity, charged to the budget; `None` if spent.
    pub fn buffer(&self) -> Option<(BytesMut, Charge)> {
        let mut charge = Charge(None);
        let buf = BytesMut::with_capacity(FIRST);
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
