//! Proof that routing allocates nothing: a counting allocator around the system one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mqtt_connect::routing::{self, ClientId, RoutingKey, Upstream, UserProperty, Username};
use mqtt_connect::{Connect, Protocol, Status, UserProperties};

struct Counting;

thread_local! {
    /// Per thread, so the test harness's own allocations on other threads don't count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers to `System`, only counting on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    (value, ALLOCATIONS.with(Cell::get) - before)
}

const NODES: [Upstream<'static>; 4] = [
    Upstream::new(b"10.0.0.1:1883", 1),
    Upstream::new(b"10.0.0.2:1883", 2),
    Upstream::new(b"10.0.0.3:1883", 0),
    Upstream::new(b"10.0.0.4:1883", 1),
];

#[test]
fn keys_pick_and_rank_allocate_nothing() {
    let pairs = [("region", "eu"), ("tenant", "acme")];
    let mut connect = Connect::new(Protocol::V5, "sensor-17");
    connect.username = Some("bob");
    connect.properties.user_properties = UserProperties::new(&pairs);
    let mut buf = [0u8; 128];
    let len = connect.encode(&mut buf).expect("encodes");

    let (picked, n) = allocations(|| {
        let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(&buf[..len]) else { return None };
        let tenant = UserProperty("tenant").routing_key(&packet)?;
        let key = ClientId.or(Username).routing_key(&packet)?;
        let closure = routing::from_fn(|c| c.client_id.as_bytes().get(..6));
        let prefix = closure.routing_key(&packet)?;
        let ranked = routing::rank(key, &NODES).count();
        Some((
            routing::pick(key, &NODES),
            routing::pick(tenant, &NODES),
            routing::pick(prefix, &NODES),
            ranked,
        ))
    });
    assert_eq!(n, 0, "routing allocated {n} times");
    let (first, tenant, prefix, ranked) = picked.expect("keys found");
    assert!(first.is_some() && tenant.is_some() && prefix.is_some());
    assert_eq!(ranked, 3);
}

#[test]
fn the_counter_counts() {
    let (_, n) = allocations(|| Box::new(1));
    assert_eq!(n, 1);
}
