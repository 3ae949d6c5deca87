//! Decodes one shape `ITERATIONS` times with one decoder, for `valgrind --tool=callgrind` to
//! count instructions: a measure that, unlike time, does not move with the machine's load or
//! with where the linker happens to place a hot loop. `instructions.sh` beside this runs it.

use std::hint::black_box;

use mqtt_connect_testkit::shapes;

fn main() {
    let iterations: usize = std::env::var("ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
    let decoder = std::env::var("DECODER").unwrap_or_default();
    let shape = std::env::var("SHAPE").unwrap_or_default();
    let Some(shape) = shapes::all().into_iter().find(|s| s.name == shape) else {
        panic!("SHAPE must name one of the shapes");
    };
    let bytes = &shape.bytes[..];
    for _ in 0..iterations {
        let bytes = black_box(bytes);
        match decoder.as_str() {
            "mqtt-connect" => _ = black_box(mqtt_connect::decode(bytes)),
            "mqttrs" => _ = black_box(mqttrs::decode_slice(bytes)),
            "floor-validating" => _ = black_box(mqtt_connect_peers::validating_floor(bytes)),
            "floor-skim" => _ = black_box(mqtt_connect_peers::skim_client_id(bytes)),
            _ => panic!("DECODER must be mqtt-connect, mqttrs, floor-validating or floor-skim"),
        }
    }
}
