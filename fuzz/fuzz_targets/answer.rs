#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mqtt_connect_testkit::fuzz::answer(data));
