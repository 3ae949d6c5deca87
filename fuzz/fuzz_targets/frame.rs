#![no_main]

// TEMP until the lead wires fuzz/src/handshake/ into the shared test-support home.
#[path = "../src/handshake/frame.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
