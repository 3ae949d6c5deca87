//! A `#![no_std]` staticlib with its own panic handler and no allocator that uses the crate.
#![no_std]

use mqtt_connect::{Connect, Protocol, Status};

/// Encodes a CONNECT and decodes the caller's bytes, so both paths are linked.
#[unsafe(no_mangle)]
pub extern "C" fn mqtt_connect_check(buf: &[u8; 64]) -> usize {
    let mut out = [0u8; 64];
    let encoded = Connect::new(Protocol::V5, "no-std").encode(&mut out).unwrap_or(0);
    match mqtt_connect::decode(buf) {
        Ok(Status::Complete { len, .. }) => len + encoded,
        _ => encoded,
    }
}

/// Places a key on one of two upstreams, so routing (and libm and xxh3 under it) is linked.
#[cfg(feature = "routing")]
#[unsafe(no_mangle)]
pub extern "C" fn mqtt_connect_route(key: &[u8; 16]) -> usize {
    use mqtt_connect::routing::{Upstream, pick};
    pick(key, &[Upstream::new(b"a:1883", 1), Upstream::new(b"b:1883", 2)]).unwrap_or(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
