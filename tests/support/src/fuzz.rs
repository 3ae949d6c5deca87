//! What the fuzz targets check, in one place: each target in `fuzz/` hands its input to one
//! function here, and `cargo test` replays `fuzz/corpus/` and `fuzz/artifacts/` through the
//! same functions (`tests/fuzz_corpus.rs`), so a crash found once stays fixed.

use arbitrary::{Arbitrary, Unstructured};
use mqtt_connect::routing::{self, Upstream};
use mqtt_connect::{Connect, Decoder, EncodeError, Error, Needed, PayloadFormat, Protocol, Status, Will};

use crate::owned::OwnedConnect;
use crate::wire::encode;

mod answer;
mod codec;
mod connack;
mod connack_faults;
mod frame;
mod nom;

pub use answer::answer;
pub use codec::codec;
pub use connack::connack;
pub use frame::frame;
pub use nom::nom;

/// The check a fuzz target runs on one input; it panics when a property fails.
pub type Check = fn(&[u8]);

/// Each fuzz target by name, with its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("answer", answer),
    ("codec", codec),
    ("connack", connack),
    ("connack_rewrite", crate::connack_rewrite::check),
    ("decode", decode),
    ("decode_stream", decode_stream),
    ("frame", frame),
    ("nom", nom),
    ("proxy_header", crate::proxy_header::check),
    ("roundtrip", roundtrip),
    ("routing", routing),
];

/// What a decode answers, the packet borrowing the decoded bytes.
type Outcome<'a> = Result<Status<Connect<'a>>, Error>;

/// The cap of the small decoder in [`decode`]: fuzzed packets fall on both sides of it.
const SMALL_CAP: u32 = 64;

/// The largest `Needed::Size` whose promise [`decode`] checks by appending that many bytes;
/// a 4-byte header can announce 256 MiB, which is not worth allocating on every run.
const MAX_APPEND: usize = 1 << 16;

/// The `decode` target: arbitrary bytes through the default decoder and a capped one.
///
/// Neither panics; a complete packet lies within the input, decodes the same without the
/// bytes after it, announces its version to `protocol_of`, and re-encodes to bytes that decode
/// to the same packet; `Incomplete` keeps its promise; the cap changes nothing but refusing
/// what is over it.
pub fn decode(data: &[u8]) {
    let plain = Decoder::new();
    let outcome = plain.decode(data);
    check_outcome(plain, data, outcome);

    let small = Decoder::new().max_packet_size(SMALL_CAP);
    let capped = small.decode(data);
    check_outcome(small, data, capped);
    match capped {
        Err(Error::PacketTooLarge { size, limit }) => {
            assert!(limit == SMALL_CAP && size > limit, "refused {size} bytes as over a cap of {limit}")
        }
        _ => assert_eq!(capped, outcome, "a cap of {SMALL_CAP} changed the outcome of a packet within it"),
    }

    if let Ok(Status::Complete { len, .. }) = outcome {
        let size = u32::try_from(len).expect("a packet is under 4 GiB");
        assert_eq!(Decoder::new().max_packet_size(size).decode(data), outcome, "a cap of exactly the size");
        assert_eq!(
            Decoder::new().max_packet_size(size - 1).decode(data),
            Err(Error::PacketTooLarge { size, limit: size - 1 }),
            "a cap one byte under the size"
        );
    }
}

/// The properties of one decoder's answer on `data`.
fn check_outcome(decoder: Decoder, data: &[u8], outcome: Outcome<'_>) {
    match outcome {
        Ok(Status::Complete { packet, len }) => {
            assert!(len <= data.len(), "a packet of {len} bytes in an input of {}", data.len());
            let frame = &data[..len];
            assert_eq!(decoder.decode(frame), outcome, "the bytes after the packet changed it");
            // The version a refusal is answered in comes from `protocol_of`.
            assert_eq!(mqtt_connect::protocol_of(frame), Some(packet.protocol), "protocol_of");
            check_reencode(&packet, frame);
        }
        Ok(Status::Incomplete(Needed::Unknown)) => {
            assert!(data.len() <= 4, "Needed::Unknown after {} bytes, more than a fixed header", data.len());
        }
        Ok(Status::Incomplete(Needed::Size(n))) => {
            let n = n.get();
            if n <= MAX_APPEND {
                let mut longer = data.to_vec();
                longer.extend(data.iter().cycle().take(n));
                match decoder.decode(&longer) {
                    Ok(Status::Incomplete(needed)) => {
                        panic!("Needed::Size({n}) was not enough: {needed:?} once the bytes came")
                    }
                    Ok(Status::Complete { len, .. }) => {
                        assert_eq!(len, longer.len(), "Needed::Size({n}) did not give the packet's end")
                    }
                    Err(_) => {}
                }
            }
        }
        Err(e) => {
            let _ = e.connack(data);
        }
    }
}

/// A decoded packet encodes to bytes that decode to it, and that differ from the frame it
/// came from only where the encoder chooses: the Remaining Length's form (3.x may pad it) and
/// the order of 5.0 properties. The one exception is a will announced as UTF-8 that is not:
/// the decoder takes it unless asked to check (a server MAY, 5.0 3.1.3.2.3), and the encoder
/// refuses it (a client MUST NOT send it).
fn check_reencode(packet: &Connect<'_>, frame: &[u8]) {
    let utf8 = |w: &Will<'_>| w.properties.payload_format == Some(PayloadFormat::Utf8);
    if packet.will.is_some_and(|w| utf8(&w) && std::str::from_utf8(w.payload).is_err()) {
        let refused = Err(EncodeError::Invalid(Error::InvalidPayloadFormat));
        assert_eq!(packet.encoded_len(), refused, "a will announced as UTF-8 that is not encoded");
        return;
    }
    let bytes = encode(packet);
    assert_eq!(
        mqtt_connect::decode(&bytes),
        Ok(Status::Complete { packet: *packet, len: bytes.len() }),
        "the re-encoded packet {bytes:02x?} does not decode to the same packet"
    );
    let (ours, theirs) = (body(&bytes), body(frame));
    if packet.protocol == Protocol::V5 {
        assert_eq!(sorted(ours), sorted(theirs), "re-encoding {frame:02x?} did more than reorder properties");
    } else {
        assert_eq!(ours, theirs, "re-encoding {frame:02x?} changed a 3.x packet past its fixed header");
    }
}

/// The packet after its fixed header: the first byte, then the Remaining Length up to its
/// last byte, the first under 0x80.
fn body(packet: &[u8]) -> &[u8] {
    let header = packet.iter().skip(1).position(|b| b & 0x80 == 0).map_or(packet.len(), |i| i + 2);
    &packet[header..]
}

fn sorted(bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    bytes.sort_unstable();
    bytes
}

/// The `decode_stream` target: bytes arriving in chunks, as a proxy reads them.
///
/// The input is a chunk plan then the stream: its first byte, modulo 16, counts the bytes of
/// the plan after it, each a chunk size less one, used in turn (an empty plan sends the stream
/// whole). Every prefix is decoded up to the first answer that is not `Incomplete`: Unknown
/// comes only before the header is in, the Needed sizes all point at the same end, and a
/// packet completes exactly there. Then the proxy feeds its buffer chunk by chunk, past that
/// answer too, and every answer equals the one for that prefix: once complete or refused, it
/// stays so. The last answer equals a single decode of the whole stream.
pub fn decode_stream(data: &[u8]) {
    let Some((&count, rest)) = data.split_first() else { return };
    let (plan, stream) = rest.split_at(usize::from(count % 16).min(rest.len()));

    let prefixes = prefix_outcomes(stream);
    let expected = |len: usize| prefixes[len.min(prefixes.len() - 1)];

    let mut buffer = Vec::with_capacity(stream.len());
    let mut sizes = plan.iter().map(|&s| usize::from(s) + 1).cycle();
    let mut left = stream;
    while !left.is_empty() {
        let (chunk, tail) = left.split_at(sizes.next().unwrap_or(left.len()).min(left.len()));
        buffer.extend_from_slice(chunk);
        left = tail;
        assert_eq!(
            mqtt_connect::decode(&buffer),
            expected(buffer.len()),
            "after {} bytes fed in chunks of {plan:?}",
            buffer.len()
        );
    }
    assert_eq!(mqtt_connect::decode(&buffer), mqtt_connect::decode(stream), "the whole stream");
}

/// The answers for each prefix of `stream`, up to and including the first that is not
/// `Incomplete`, checked against each other.
fn prefix_outcomes(stream: &[u8]) -> Vec<Outcome<'_>> {
    let mut outcomes = Vec::new();
    let mut end = None;
    for cut in 0..=stream.len() {
        let outcome = mqtt_connect::decode(&stream[..cut]);
        outcomes.push(outcome);
        match outcome {
            Ok(Status::Incomplete(Needed::Unknown)) => {
                assert_eq!(end, None, "Needed::Unknown at {cut} bytes, after a Needed::Size")
            }
            Ok(Status::Incomplete(Needed::Size(n))) => {
                let now = cut + n.get();
                assert!(
                    end.is_none_or(|end| end == now),
                    "at {cut} bytes the end moved from {end:?} to {now}"
                );
                end = Some(now);
            }
            Ok(Status::Complete { len, .. }) => {
                assert_eq!((len, end), (cut, Some(cut)), "a packet completed at {cut} bytes");
                break;
            }
            Err(_) => break,
        }
    }
    outcomes
}

/// The `roundtrip` target: a `Connect` built by `arbitrary` from owned values.
///
/// `encoded_len` and `encode` agree, on success and on refusal. An encodable packet fits its
/// length exactly, writes nothing past it, decodes back equal, and re-encodes to the same
/// bytes; the decoder's options refuse it exactly when their rules say so.
pub fn roundtrip(data: &[u8]) {
    let Ok(owned) = OwnedConnect::arbitrary_take_rest(Unstructured::new(data)) else { return };
    owned.with_borrowed(check_roundtrip);
}

/// The checks of [`roundtrip`] on one packet.
fn check_roundtrip(connect: Connect<'_>) {
    let len = match connect.encoded_len() {
        Ok(len) => len,
        Err(e) => {
            assert_eq!(connect.encode(&mut []), Err(e), "encode and encoded_len refuse differently");
            return;
        }
    };
    let mut buf = vec![0xA5; len + 1];
    assert_eq!(connect.encode(&mut buf), Ok(len), "encode and encoded_len disagree");
    assert_eq!(buf[len], 0xA5, "encode wrote past the packet");
    assert_eq!(
        connect.encode(&mut buf[..len - 1]),
        Err(EncodeError::BufferTooSmall { needed: len, len: len - 1 }),
        "a buffer one byte short"
    );
    let bytes = &buf[..len];
    assert_eq!(
        mqtt_connect::decode(bytes),
        Ok(Status::Complete { packet: connect, len }),
        "{bytes:02x?} does not decode back"
    );
    assert_eq!(encode(&connect), bytes, "re-encoding changed the bytes");

    let strict = Decoder::new().allow_bridge_bit(false).limit_v3_1_client_id(true).check_payload_format(true);
    let expected = if connect.bridge {
        Err(Error::UnsupportedProtocolLevel { level: connect.protocol.level() | 0x80 })
    } else if connect.protocol == Protocol::V3_1 && connect.client_id.chars().count() > 23 {
        Err(Error::ClientIdTooLong)
    } else {
        Ok(Status::Complete { packet: connect, len })
    };
    assert_eq!(strict.decode(bytes), expected, "the strict decoder on {bytes:02x?}");
}

/// The most nodes [`routing`] takes from an input; every check over them is quadratic or
/// worse, and MQTT clusters run tens of brokers.
const MAX_NODES: usize = 16;

/// The input of [`routing`]: a key and the nodes, identity and weight each.
#[derive(Arbitrary, Debug)]
struct Placement {
    key: Vec<u8>,
    nodes: Vec<(Vec<u8>, u32)>,
}

/// The `routing` target: a key and a node set, from `arbitrary`, through selection.
///
/// `pick` and `rank` are deterministic and never panic, the empty and all-zero sets included;
/// a node scores 0 exactly when its weight is 0, and a positive finite score otherwise; the
/// failover order is a permutation of the nodes of non-zero weight, led by the pick; and
/// removing any node, or setting its weight to 0, leaves the failover order of the others as
/// it was, so removing a node that was not chosen never changes the choice.
pub fn routing(data: &[u8]) {
    let Ok(mut placement) = Placement::arbitrary_take_rest(Unstructured::new(data)) else { return };
    placement.nodes.truncate(MAX_NODES);
    let key = placement.key.as_slice();
    let nodes: Vec<Upstream<'_>> = placement.nodes.iter().map(|(id, w)| Upstream::new(id, *w)).collect();

    for node in &nodes {
        let score = routing::score(key, node);
        if node.weight == 0 {
            assert_eq!(score, 0.0, "{node:?} of weight 0 scored {score}");
        } else {
            assert!(score > 0.0 && score.is_finite(), "{node:?} scored {score}");
        }
    }

    let order: Vec<usize> = routing::rank(key, &nodes).collect();
    assert_eq!(routing::rank(key, &nodes).collect::<Vec<_>>(), order, "rank is not deterministic");
    let pick = routing::pick(key, &nodes);
    assert_eq!(routing::pick(key, &nodes), pick, "pick is not deterministic");
    assert_eq!(pick, order.first().copied(), "pick is not the head of the failover order");
    let mut sorted = order.clone();
    sorted.sort_unstable();
    let eligible: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].weight > 0).collect();
    assert_eq!(sorted, eligible, "the failover order {order:?} is not a permutation of the weighted nodes");

    for gone in 0..nodes.len() {
        let expected: Vec<usize> =
            order.iter().filter(|&&i| i != gone).map(|&i| if i > gone { i - 1 } else { i }).collect();
        let mut fewer = nodes.clone();
        fewer.remove(gone);
        let after: Vec<usize> = routing::rank(key, &fewer).collect();
        assert_eq!(after, expected, "removing node {gone} reordered the others: {order:?} became {after:?}");

        let mut drained = nodes.clone();
        drained[gone].weight = 0;
        let after: Vec<usize> = routing::rank(key, &drained).collect();
        let expected: Vec<usize> = order.iter().copied().filter(|&i| i != gone).collect();
        assert_eq!(
            after, expected,
            "weight 0 on node {gone} reordered the others: {order:?} became {after:?}"
        );
    }
}
