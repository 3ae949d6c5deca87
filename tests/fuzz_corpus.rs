//! The fuzz targets' checks on stable: every input under `fuzz/corpus/` and `fuzz/artifacts/`
//! is replayed through the check of its target, and the seed corpora are generated here.
//!
//! After changing the seeds below, write them with
//! `FUZZ_SEEDS=write cargo test --test fuzz_corpus`.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use mqtt_connect_testkit::wire::{self, cat, frame, packet, s, v5, v311};
use mqtt_connect_testkit::{fuzz, shapes};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries.map(|e| e.expect("a readable directory").path()).collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_artifact_input_passes_its_target() {
    let mut failures = Vec::new();
    for kind in ["corpus", "artifacts"] {
        for dir in files(&fuzz_dir().join(kind)) {
            let name = dir.file_name().unwrap().to_string_lossy();
            let Some((_, check)) = fuzz::TARGETS.iter().find(|(target, _)| *target == name) else {
                panic!("{} belongs to no fuzz target", dir.display());
            };
            for file in files(&dir) {
                let data = match fs::read(&file) {
                    Ok(data) => data,
                    // A fuzzer running alongside deletes the inputs it has shrunk.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => panic!("{}: {e}", file.display()),
                };
                if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                    failures.push(file.display().to_string());
                }
            }
        }
    }
    assert!(failures.is_empty(), "inputs that fail their target's check: {failures:#?}");
}

#[test]
fn every_target_has_its_seeds_checked_in() {
    let write = std::env::var("FUZZ_SEEDS").is_ok_and(|v| v == "write");
    for (target, seeds) in seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        if write {
            fs::create_dir_all(&dir).unwrap();
            for stale in files(&dir).iter().filter(|f| is_seed(f)) {
                fs::remove_file(stale).unwrap();
            }
            for (name, bytes) in &seeds {
                fs::write(dir.join(name), bytes).unwrap();
            }
        }
        let on_disk: BTreeMap<String, Vec<u8>> = files(&dir)
            .into_iter()
            .filter(|f| is_seed(f))
            .map(|f| (f.file_name().unwrap().to_string_lossy().into_owned(), fs::read(&f).unwrap()))
            .collect();
        assert_eq!(on_disk, seeds, "the seeds of {target} are stale: write them with FUZZ_SEEDS=write");
    }
    let targets: Vec<_> = fuzz::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(seeds().keys().copied().collect::<Vec<_>>(), targets, "every target has seeds");
}

fn is_seed(file: &Path) -> bool {
    file.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
}

/// The seed corpus of each target, by file name.
fn seeds() -> BTreeMap<&'static str, BTreeMap<String, Vec<u8>>> {
    let packets = packets();
    let c1 = s(b"c1");
    let name = |n: &str| format!("seed-{n}");
    let decode: BTreeMap<_, _> = packets.iter().map(|(n, p)| (name(n), p.clone())).collect();
    // Whole, one byte at a time, and in uneven chunks of 4, 1 and 10 bytes.
    let plans: [&[u8]; 3] = [&[0], &[1, 0], &[3, 3, 0, 9]];
    let decode_stream =
        packets.iter().zip(plans.iter().cycle()).map(|((n, p), plan)| (name(n), cat(&[plan, p]))).collect();
    // `arbitrary` reads structure from any bytes; packets make varied seeds, and runs of
    // zeros and of 0xff reach the shortest and the fullest values.
    let roundtrip = packets
        .iter()
        .map(|(n, p)| (name(n), p.clone()))
        .chain([(name("zeros"), vec![0; 64]), (name("ones"), vec![0xff; 256])])
        .collect();
    // The same for a key and its nodes, with broker-like identities and duplicates besides.
    let routing = [
        ("zeros", vec![0; 64]),
        ("ones", vec![0xff; 256]),
        ("brokers", b"sensor-17\x0d10.0.0.1:1883\x01\x00\x00\x00\x0d10.0.0.2:1883\x02\x00\x00\x00".to_vec()),
        ("duplicates", b"k\x01a\x01\x00\x00\x00\x01a\x01\x00\x00\x00\x01b\x00\x00\x00\x00".to_vec()),
        ("v5_full", shapes::v5_all_properties()),
    ]
    .into_iter()
    .map(|(n, bytes)| (name(n), bytes))
    .collect();
    // A CONNACK of each version and shape, valid and not.
    let connack = [
        ("v3_accepted", vec![0x20, 0x02, 0x00, 0x00]),
        ("v3_session_present", vec![0x20, 0x02, 0x01, 0x00]),
        ("v3_refused", vec![0x20, 0x02, 0x00, 0x05]),
        ("v3_padded_length", vec![0x20, 0x82, 0x00, 0x00, 0x00]),
        ("v5_bare", vec![0x20, 0x03, 0x00, 0x00, 0x00]),
        ("v5_refused", vec![0x20, 0x03, 0x00, 0x9c, 0x00]),
        ("v5_reserved_flags", vec![0x20, 0x03, 0x02, 0x00, 0x00]),
        (
            "v5_properties",
            cat(&[
                &[0x20, 0x1b, 0x01, 0x00, 0x18, 0x13, 0x00, 0x1e, 0x24, 0x01, 0x21, 0x00, 0x0a],
                &[0x12],
                &s(b"auto-1"),
                &[0x26],
                &s(b"k"),
                &s(b"v"),
            ]),
        ),
        ("v5_duplicate", vec![0x20, 0x09, 0x00, 0x00, 0x06, 0x13, 0x00, 0x01, 0x13, 0x00, 0x02]),
        ("incomplete", vec![0x20, 0x7f, 0x00]),
        // Several faults each, the first on the wire the one to report: reserved flags before a
        // code 5.0 lacks; a User Property whose name is not UTF-8 and whose value holds U+0000,
        // before a duplicate Receive Maximum of 0; Session Present with a refusal before a
        // property CONNACK does not allow; a padded Remaining Length before the flags.
        ("v5_flags_then_code", vec![0x20, 0x03, 0x02, 0xff, 0x00]),
        (
            "v5_user_property_then_duplicate",
            cat(&[
                &[0x20, 0x12, 0x00, 0x00, 0x0f, 0x26],
                &s(b"\xc3\x28"),
                &s(b"a\0"),
                &[0x21, 0, 1, 0x21, 0, 0],
            ]),
        ),
        ("v5_session_present_refused_then_property", vec![0x20, 0x05, 0x01, 0x87, 0x02, 0x01, 0x01]),
        ("v5_padded_length_then_flags", vec![0x20, 0x83, 0x00, 0xfe, 0x00, 0x00]),
    ]
    .into_iter()
    .map(|(n, bytes)| (name(n), bytes))
    .collect::<BTreeMap<_, _>>();
    // The codec's first byte seeds its chunk sizes; the stream follows: the CONNECTs, the
    // CONNACKs, a 5.0 CONNACK of 88 bytes, over the capped CONNACK codec's 64, and an AUTH
    // (Continue authentication, SCRAM-SHA-1) followed by a CONNACK with the same method.
    let long_reason = cat(&[&[0x1f], &s(&[b'r'; 80])]);
    let over_cap = cat(&[&[0x20, 0x56, 0x00, 0x00, 0x53], &long_reason]);
    let scram = cat(&[&[0x15], &s(b"SCRAM-SHA-1")]);
    let auth = cat(&[&[0xf0, 0x10, 0x18, 0x0e], &scram, &[0x20, 0x11, 0x00, 0x00, 0x0e], &scram]);
    let codec = packets
        .iter()
        .map(|(n, p)| (name(n), p.clone()))
        .chain(connack.iter().map(|(n, p)| (format!("{n}-connack"), p.clone())))
        .chain([(name("connack_over_cap"), over_cap), (name("auth_then_connack"), auth)])
        .enumerate()
        .map(|(i, (n, p))| (n, cat(&[&[i as u8], &p])))
        .collect();
    // A control byte (bits 0-1: the version the CONNACK's bytes are read in, 3 the
    // CONNECT's; bit 2: Session Present flipped; bits 3-4: the packet's version, 0 kept; bits
    // 5-6: the refusal's version, 3 the CONNECT's) and a code, then a CONNECT and the CONNACK
    // that answers it: accepted, with Session Present after a clean start or not, over the
    // client's Maximum Packet Size, in the wrong version, the refusals of an unsupported
    // version, and with an Authentication Method (SCRAM-SHA-1) kept, dropped or unasked; and
    // a CONNACK with no CONNECT before it.
    let theirs = 0x63;
    let accepted = [0x20, 0x02, 0x00, 0x00];
    let session = [0x20, 0x02, 0x01, 0x00];
    let v5_accepted = [0x20, 0x03, 0x00, 0x00, 0x00];
    let small = v5(0x00, b"\x27\x00\x00\x00\x10", &c1);
    let with_method = cat(&[&[0x20, 0x11, 0x00, 0x00, 0x0e], &scram]);
    let answer = [
        ("v3_1_1_accepted", cat(&[&[theirs, 0x00], &v311(0x02, &c1), &accepted])),
        ("v3_1_1_session_after_clean_start", cat(&[&[theirs, 0x00], &v311(0x02, &c1), &session])),
        ("v3_1_1_session_kept", cat(&[&[theirs, 0x00], &v311(0x00, &c1), &session])),
        ("v3_1_accepted", cat(&[&[theirs, 0x00], &packet(b"MQIsdp", 3, 0x02, None, &c1), &accepted])),
        ("v5_accepted", cat(&[&[theirs, 0x00], &v5(0x00, &[], &c1), &v5_accepted])),
        ("v5_session_flipped", cat(&[&[theirs | 4, 0x00], &v5(0x02, &[], &c1), &v5_accepted])),
        ("v5_over_maximum_packet_size", cat(&[&[theirs, 0x00], &small, &connack["seed-v5_properties"]])),
        ("v5_refused_in_3_1_1", cat(&[&[0x21, 0x84], &v5(0x02, &[], &c1), &[0x20, 0x02, 0x00, 0x01]])),
        ("v3_1_1_refused_in_5_0", cat(&[&[0x42, 0x84], &v311(0x02, &c1), &[0x20, 0x03, 0x00, 0x84, 0x00]])),
        ("v5_answered_in_3_1_1", cat(&[&[0x21, 0x00], &v5(0x02, &[], &c1), &accepted])),
        ("v5_method_kept", cat(&[&[theirs, 0x00], &v5(0x02, &scram, &c1), &with_method])),
        ("v5_method_dropped", cat(&[&[theirs, 0x00], &v5(0x02, &scram, &c1), &v5_accepted])),
        ("v5_method_unasked", cat(&[&[theirs, 0x00], &v5(0x02, &[], &c1), &with_method])),
        ("no_connect", cat(&[&[0x01, 0x00], &session])),
    ]
    .into_iter()
    .map(|(n, bytes)| (name(n), bytes))
    .collect();
    // An id length byte, then what a broker sends first: CONNACKs in the broker's property
    // order and the encoder's, ones that take no id, and bytes that are no CONNACK.
    // PROXY headers as balancers send them, v1 and v2, cut short, and with a CONNECT behind.
    let v2_tcp4 =
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x01\x7f\x00\x00\x02\x30\x39\x07\x5b".to_vec();
    let proxy_header = [
        ("v1_tcp4", b"PROXY TCP4 192.0.2.1 198.51.100.2 50000 1883\r\n".to_vec()),
        ("v1_tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 50000 1883\r\n".to_vec()),
        ("v1_unknown", b"PROXY UNKNOWN\r\n".to_vec()),
        ("v1_short", b"PROXY TCP4 192.0.2.1".to_vec()),
        ("v2_tcp4", v2_tcp4.clone()),
        ("v2_tcp4_then_connect", cat(&[&v2_tcp4, &v311(0x02, &s(b"c1"))])),
        ("v2_short", v2_tcp4[..14].to_vec()),
    ]
    .into_iter()
    .map(|(n, bytes)| (name(n), bytes))
    .collect();
    let connack_rewrite = [
        ("v5_success", b"\x10\x20\x03\x00\x00\x00".to_vec()),
        (
            "broker_order",
            b"\x40\x20\x12\x01\x00\x0f\x22\x00\x0a\x26\x00\x01k\x00\x01v\x21\x00\x14\x24\x01".to_vec(),
        ),
        ("broker_assigned", b"\x02\x20\x0b\x00\x00\x08\x12\x00\x05auto1".to_vec()),
        ("refused", b"\x02\x20\x03\x00\x87\x00".to_vec()),
        ("v3_1_1", b"\x02\x20\x02\x00\x00".to_vec()),
        ("publish_first", b"\x02\x30\x05\x00\x01tab".to_vec()),
        ("zeros", vec![0; 64]),
        ("ones", vec![0xff; 256]),
    ]
    .into_iter()
    .map(|(n, bytes)| (name(n), bytes))
    .collect();
    BTreeMap::from([
        ("answer", answer),
        ("codec", codec),
        ("connack", connack),
        ("connack_rewrite", connack_rewrite),
        ("decode", decode.clone()),
        ("decode_stream", decode_stream),
        ("frame", decode.clone()),
        ("nom", decode),
        ("proxy_header", proxy_header),
        ("roundtrip", roundtrip),
        ("routing", routing),
    ])
}

/// CONNECT packets of each version, valid and not, and byte strings around them.
fn packets() -> Vec<(String, Vec<u8>)> {
    let c1 = s(b"c1");
    let will = cat(&[&s(b"status/c1"), &s(b"gone")]);
    let user_pass = cat(&[&s(b"alice"), &s(b"secret")]);
    let v311_full = v311(0xEE, &cat(&[&c1, &will, &user_pass]));
    let v5_full = shapes::v5_all_properties();
    let mut v311_padded_length = v311(0x02, &c1);
    v311_padded_length.splice(1..2, [v311_padded_length[1] | 0x80, 0x00]);
    let mut v5_padded_length = v5(0x02, &[], &c1);
    v5_padded_length.splice(1..2, [v5_padded_length[1] | 0x80, 0x00]);
    let will_props = |props: &[u8]| v5(0x06, &[], &cat(&[&c1, &wire::props(props), &will]));
    // The benches' shapes but the 64 KiB one, too big for a seed.
    let shapes = shapes::all().into_iter().filter(|shape| shape.bytes.len() < 1024).map(|shape| {
        let name: String =
            shape.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        (name, shape.bytes)
    });
    let named = vec![
        ("v3_1", packet(b"MQIsdp", 3, 0x02, None, &c1)),
        ("v3_1_full", packet(b"MQIsdp", 3, 0xEE, None, &cat(&[&c1, &will, &user_pass]))),
        ("v3_1_1", v311(0x02, &c1)),
        ("v3_1_1_full", v311_full.clone()),
        ("v3_1_1_empty_client_id", v311(0x02, &s(b""))),
        ("v3_1_1_bridge", packet(b"MQTT", 0x84, 0x02, None, &c1)),
        ("v3_1_1_padded_length", v311_padded_length),
        ("v5", v5(0x02, &[], &c1)),
        ("v5_password_only", v5(0x42, &[], &cat(&[&c1, &s(b"secret")]))),
        (
            "v5_user_properties",
            v5(0x02, &cat(&[b"\x26", &s(b"k"), &s(b"v"), b"\x26", &s(b"k"), &s(b"w")]), &c1),
        ),
        ("pipelined", cat(&[&v311_full, &v5_full])),
        ("incomplete_v5", v5_full[..v5_full.len() / 2].to_vec()),
        ("incomplete_header", vec![0x10, 0xff]),
        ("not_connect", vec![0x20, 0x02, 0x00, 0x00]),
        ("fixed_header_flags", cat(&[&[0x12], &v311(0x02, &c1)[1..]])),
        ("length_too_long", vec![0x10, 0xff, 0xff, 0xff, 0xff]),
        ("length_max", vec![0x10, 0xff, 0xff, 0xff, 0x7f]),
        ("unknown_name", packet(b"MQTX", 4, 0x02, None, &c1)),
        ("unsupported_level", packet(b"MQTT", 3, 0x02, None, &c1)),
        ("reserved_flag", v311(0x03, &c1)),
        ("will_qos_3", v311(0x1E, &cat(&[&c1, &will]))),
        ("will_flags_without_will", v311(0x22, &c1)),
        ("v3_1_1_password_only", v311(0x42, &cat(&[&c1, &s(b"secret")]))),
        ("v3_1_1_empty_client_id_kept_session", v311(0x00, &s(b""))),
        ("v3_1_empty_client_id", packet(b"MQIsdp", 3, 0x02, None, &s(b""))),
        ("v5_padded_length", v5_padded_length),
        ("v5_duplicate_property", v5(0x02, b"\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02", &c1)),
        ("v5_will_property_in_connect", v5(0x02, b"\x01\x01", &c1)),
        ("v5_receive_maximum_0", v5(0x02, b"\x21\x00\x00", &c1)),
        ("v5_auth_data_without_method", v5(0x02, b"\x16\x00\x01\xaa", &c1)),
        ("v5_payload_format_2", will_props(b"\x01\x02")),
        ("v5_response_topic_wildcard", will_props(&cat(&[b"\x08", &s(b"a/#")]))),
        ("v5_connect_property_in_will", will_props(b"\x11\x00\x00\x00\x01")),
        ("invalid_utf8", v311(0x02, &s(b"\xc3\x28"))),
        ("null_character", v311(0x02, &s(b"a\0b"))),
        ("empty_will_topic", v311(0x06, &cat(&[&c1, &s(b""), &s(b"gone")]))),
        ("will_topic_wildcard", v311(0x06, &cat(&[&c1, &s(b"a/+"), &s(b"gone")]))),
        ("trailing_bytes", v311(0x02, &cat(&[&c1, b"\x00"]))),
        ("truncated_in_frame", frame(&cat(&[&s(b"MQTT"), b"\x04\x02\x00\x3c\x00\x05c1"]))),
        (
            "v5_utf8_will_payload_not_utf8",
            v5(0x06, &[], &cat(&[&c1, &wire::props(b"\x01\x01"), &s(b"t"), &s(b"\xff")])),
        ),
    ];
    named.into_iter().map(|(name, bytes)| (name.to_owned(), bytes)).chain(shapes).collect()
}
