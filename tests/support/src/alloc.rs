//! Counting allocations, on this thread only: the test harness and other tests run on other
//! threads, and what they allocate meanwhile must not count.

/// Runs `f` and returns its value with the number of allocations (reallocations included)
/// that this thread made meanwhile.
///
/// `allocation-counter` wraps the system allocator as the global one, keeping its counts in
/// thread-locals; it holds the `unsafe` that a global allocator needs, so this crate has none.
pub fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let mut value = None;
    let info = allocation_counter::measure(|| value = Some(f()));
    (value.expect("the closure ran"), info.count_total)
}
