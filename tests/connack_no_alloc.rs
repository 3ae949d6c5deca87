//! Decoding and encoding a CONNACK allocate nothing: a counting global allocator, counting
//! this thread's allocations only, proves it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mqtt_connect::{ConnackPacket, ConnackUserProperties, Protocol, QoS, ReasonCode, Status};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down has no counter left, and is not the one measured.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations this thread makes while `f` runs.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_sees_an_allocation() {
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8]))), 1);
}

#[test]
fn connack_decode_and_encode_allocate_nothing() {
    // Everything is built before counting starts.
    let pairs = [("node", "b-3"), ("zone", "eu")];
    let mut ack = ConnackPacket::new(Protocol::V5, ReasonCode::Success);
    ack.session_present = true;
    ack.properties.server_keep_alive = Some(30);
    ack.properties.maximum_qos = Some(QoS::AtLeastOnce);
    ack.properties.assigned_client_identifier = Some("auto-1");
    ack.properties.reason_string = Some("welcome");
    ack.properties.authentication_data = Some(b"\x01");
    ack.properties.user_properties = ConnackUserProperties::new(&pairs);
    let mut out = [0u8; 256];
    let mut again = [0u8; 256];

    let count = allocations(|| {
        let len = ack.encode(&mut out).unwrap();
        let Ok(Status::Complete { packet, .. }) = ConnackPacket::decode(Protocol::V5, &out[..len]) else {
            panic!("the encoded CONNACK decodes")
        };
        assert_eq!(packet.properties.user_properties.get("zone"), Some("eu"));
        assert_eq!(packet.encode(&mut again).unwrap(), len);
        let v3 = ConnackPacket::new(Protocol::V3_1_1, ReasonCode::ServerBusy);
        let len = v3.encode(&mut out).unwrap();
        assert!(ConnackPacket::decode(Protocol::V3_1_1, &out[..len]).is_ok());
        assert!(ConnackPacket::decode(Protocol::V5, b"\x20\x03\x02\x00\x00").is_err());
        assert_eq!(Protocol::V5.connack(ReasonCode::Banned).unwrap().reason_code(), ReasonCode::Banned);
    });
    assert_eq!(count, 0);
}
