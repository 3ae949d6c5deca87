//! Decodes one packet shape `N` times, for `valgrind --tool=callgrind` to count instructions:
//! a measure that stays the same run after run on a busy machine, where times do not.
//! `benches/instructions.sh` runs it; `cargo bench` alone runs it once per shape as a smoke test.

use std::hint::black_box;

use mqtt_connect_testkit::shapes;

fn main() {
    let iterations: usize = std::env::var("ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
    let only = std::env::var("SHAPE").ok();
    // The reference for the 64 KiB shape: what validating its user name alone costs.
    if only.as_deref() == Some("from_utf8 64 KiB") {
        let name = vec![b'u'; usize::from(u16::MAX)];
        for _ in 0..iterations {
            let _ = black_box(core::str::from_utf8(black_box(&name)));
        }
        return;
    }
    for shape in shapes::all() {
        if only.as_deref().is_some_and(|name| name != shape.name) {
            continue;
        }
        for _ in 0..iterations {
            let _ = black_box(mqtt_connect::decode(black_box(&shape.bytes)));
        }
    }
}
