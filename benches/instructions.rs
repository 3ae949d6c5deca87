//! Decodes one packet shape `N` times, for `valgrind --tool=callgrind` to count instructions:
//! a measure that stays the same run after run on a busy machine, where times do not.
//! `benches/instructions.sh` runs it; `cargo bench` alone runs it once per shape as a smoke test.

use std::hint::black_box;

use mqtt_connect::Protocol;
use mqtt_connect_testkit::shapes;

/// The 5.0 CONNACKs a proxy reads from its brokers: mosquitto 2's (Topic Alias Maximum 10,
/// Receive Maximum 20), and one with eight User Properties.
fn connack(name: &str) -> Option<Vec<u8>> {
    match name {
        "5.0 CONNACK, mosquitto's" => Some(b"\x20\x09\x00\x00\x06\x22\x00\x0a\x21\x00\x14".to_vec()),
        "5.0 CONNACK, 8 User Properties" => {
            let users = (0..8u8)
                .flat_map(|i| [0x26, 0, 4, b'n', b'a', b'm', b'0' + i, 0, 5, b'v', b'a', b'l', b'u', b'e']);
            let properties: Vec<u8> = users.collect();
            let mut bytes = vec![0x20, 0, 0x00, 0x00, u8::try_from(properties.len()).ok()?];
            bytes.extend(properties);
            bytes[1] = u8::try_from(bytes.len() - 2).ok()?;
            Some(bytes)
        }
        _ => None,
    }
}

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
    if let Some(bytes) = only.as_deref().and_then(connack) {
        let decoded = mqtt_connect::ConnackPacket::decode(Protocol::V5, &bytes);
        assert!(matches!(decoded, Ok(mqtt_connect::Status::Complete { .. })), "{decoded:?}");
        for _ in 0..iterations {
            let _ = black_box(mqtt_connect::ConnackPacket::decode(Protocol::V5, black_box(&bytes)));
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
