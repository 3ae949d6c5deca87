//! Our CONNECT decode against other Rust MQTT crates' and against two floors, on identical bytes.
//!
//! One criterion group per packet shape; each function is one crate. A crate that cannot read a
//! shape's version has no entry in that group. Before any timing, every entry must decode its
//! shape and report the right client id.

use bytes::BytesMut;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mqtt_connect::{Connect, Protocol, Status};
use mqtt_connect_testkit::shapes;
use std::hint::black_box;

/// A packet size limit above every shape, for the crates that want one.
const MAX_SIZE: usize = 1 << 20;

/// Checks once that `decode` reads `bytes` with the right client id, then times it.
fn bench<'a, T>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    bytes: &'a [u8],
    decode: impl Fn(&'a [u8]) -> T,
    has_client_id: impl Fn(&T, &str) -> bool,
    client_id: &str,
) {
    assert!(has_client_id(&decode(bytes), client_id), "{name} did not decode client id {client_id:?}");
    group.bench_function(name, |b| b.iter(|| decode(black_box(bytes))));
}

/// Times `decode` with its result left where it was built: criterion moves each result into
/// `black_box`, a copy that grows with the result's size, and this shows the decode without it.
fn bench_in_place<'a, T>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    bytes: &'a [u8],
    decode: impl Fn(&'a [u8]) -> T,
) {
    group.bench_function(format!("{name}-in-place"), |b| {
        b.iter(|| {
            let result = decode(black_box(bytes));
            black_box(&result);
        })
    });
}

/// rumqttc's decoders read from a `BytesMut`: a caller holding a `&[u8]` copies first. This
/// times both that and the decode alone on a buffer made outside the timing.
fn bench_rumqttc<T>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    bytes: &[u8],
    read: impl Fn(&mut BytesMut) -> T,
    has_client_id: impl Fn(&T, &str) -> bool,
    client_id: &str,
) {
    bench(group, name, bytes, |b| read(&mut BytesMut::from(b)), &has_client_id, client_id);
    group.bench_function(format!("{name}-premade"), |b| {
        b.iter_batched(|| BytesMut::from(bytes), |mut buf| read(&mut buf), BatchSize::SmallInput)
    });
}

/// embedded-mqtt's `Packet::decode` leaves a CONNECT payload as bytes, so its payload decoder
/// is called on them with the flags from the variable header, as a user of the crate must.
fn embedded_mqtt(bytes: &[u8]) -> Option<embedded_mqtt::payload::connect::Connect<'_>> {
    use embedded_mqtt::codec::Decodable;
    use embedded_mqtt::packet::Packet;
    use embedded_mqtt::payload::{Payload, connect};
    use embedded_mqtt::status::Status;
    use embedded_mqtt::variable_header::VariableHeader;

    let Ok(Status::Complete((end, packet))) = Packet::decode(bytes) else { return None };
    let (Some(VariableHeader::Connect(header)), Payload::Bytes(payload)) =
        (packet.variable_header(), packet.payload())
    else {
        return None;
    };
    let payload = &bytes[end - payload.len()..end];
    match connect::Connect::decode(header.flags(), payload) {
        Ok(Status::Complete((_, connect))) => Some(connect),
        _ => None,
    }
}

/// mqtt-proto's buffer path, the one its packet poller takes once a whole packet is in: the
/// fixed header, then `Connect::decode` on the body.
fn mqtt_proto_v3(bytes: &[u8]) -> Result<mqtt_proto::v3::Connect, mqtt_proto::Error> {
    let header = mqtt_proto::v3::Header::decode(bytes)?;
    let body = &bytes[bytes.len() - header.remaining_len as usize..];
    mqtt_proto::v3::Connect::decode(body, &mut 0)
}

/// As [`mqtt_proto_v3`], for 5.0.
fn mqtt_proto_v5(bytes: &[u8]) -> Result<mqtt_proto::v5::Connect, mqtt_proto::v5::ErrorV5> {
    let header = mqtt_proto::v5::Header::decode(bytes)?;
    let body = &bytes[bytes.len() - header.remaining_len as usize..];
    mqtt_proto::v5::Connect::decode(body, &mut 0, header)
}

/// mqtt5-protocol reads any `bytes::Buf`, a `&[u8]` included: the fixed header, then the body.
fn mqtt5_protocol(mut bytes: &[u8]) -> mqtt5_protocol::Result<mqtt5_protocol::Packet> {
    let header = mqtt5_protocol::FixedHeader::decode(&mut bytes)?;
    let mut body = &bytes[..header.remaining_length as usize];
    mqtt5_protocol::Packet::decode_from_body(header.packet_type, &header, &mut body)
}

fn shape_group(c: &mut Criterion, shape: &shapes::Shape) {
    let bytes = &shape.bytes[..];
    let Ok(Status::Complete { packet: ours, .. }) = mqtt_connect::decode(bytes) else { panic!() };
    let Connect { client_id: id, protocol, username, .. } = ours;
    let longest_name = username.filter(|name| name.len() == usize::from(u16::MAX));

    let mut group = c.benchmark_group(shape.name);
    group.throughput(Throughput::Bytes(bytes.len() as u64));

    bench(
        &mut group,
        "mqtt-connect",
        bytes,
        mqtt_connect::decode,
        |r, id| matches!(r, Ok(Status::Complete { packet, .. }) if packet.client_id == id),
        id,
    );
    bench_in_place(&mut group, "mqtt-connect", bytes, mqtt_connect::decode);
    if protocol == Protocol::V5 {
        use rumqttc::v5::mqttbytes::v5::Packet;
        bench_rumqttc(
            &mut group,
            "rumqttc-v5",
            bytes,
            |buf| Packet::read(buf, None),
            |r, id| matches!(r, Ok(Packet::Connect(c, ..)) if c.client_id == id),
            id,
        );
        bench(
            &mut group,
            "mqtt-proto-v5",
            bytes,
            mqtt_proto_v5,
            |r, id| r.as_ref().is_ok_and(|c| &*c.client_id == id),
            id,
        );
    } else {
        use rumqttc::mqttbytes::v4::Packet;
        bench_rumqttc(
            &mut group,
            "rumqttc-v4",
            bytes,
            |buf| Packet::read(buf, MAX_SIZE),
            |r, id| matches!(r, Ok(Packet::Connect(c)) if c.client_id == id),
            id,
        );
        bench(
            &mut group,
            "mqttrs",
            bytes,
            mqttrs::decode_slice,
            |r, id| matches!(r, Ok(Some(mqttrs::Packet::Connect(c))) if c.client_id == id),
            id,
        );
        bench_in_place(&mut group, "mqttrs", bytes, mqttrs::decode_slice);
        bench(
            &mut group,
            "mqtt-proto-v3",
            bytes,
            mqtt_proto_v3,
            |r, id| r.as_ref().is_ok_and(|c| &*c.client_id == id),
            id,
        );
        // embedded-mqtt computes `2 + len` in u16: a 65,534-byte or longer string wraps it and
        // panics on a slice index, so it has no 64 KiB entry.
        if longest_name.is_none() {
            bench(
                &mut group,
                "embedded-mqtt",
                bytes,
                embedded_mqtt,
                |r, id| r.as_ref().is_some_and(|c| format!("{c:?}").contains(&format!("client_id: {id:?}"))),
                id,
            );
        }
    }
    bench(
        &mut group,
        "mqtt5-protocol",
        bytes,
        mqtt5_protocol,
        |r, id| matches!(r, Ok(mqtt5_protocol::Packet::Connect(c)) if c.client_id == id),
        id,
    );
    bench(
        &mut group,
        "floor-skim",
        bytes,
        mqtt_connect_peers::skim_client_id,
        |r, id| *r == Some(id.as_bytes()),
        id,
    );
    bench(
        &mut group,
        "floor-validating",
        bytes,
        mqtt_connect_peers::validating_floor,
        |r, id| *r == Some(id),
        id,
    );
    if let Some(name) = longest_name {
        let name = name.as_bytes();
        group.bench_function("from_utf8", |b| b.iter(|| core::str::from_utf8(black_box(name))));
        assert!(mqtt_connect_peers::fused_utf8_no_null(name));
        group.bench_function("fused-pass", |b| {
            b.iter(|| mqtt_connect_peers::fused_utf8_no_null(black_box(name)))
        });
    }
    group.finish();
}

fn peers(c: &mut Criterion) {
    for shape in shapes::all() {
        shape_group(c, &shape);
    }
}

criterion_group!(benches, peers);
criterion_main!(benches);
