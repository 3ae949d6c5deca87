//! Decode and encode speed over the packet shapes a proxy meets.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mqtt_connect::Status;
use mqtt_connect_testkit::shapes;
use std::hint::black_box;

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for shape in shapes::all() {
        group.throughput(Throughput::Bytes(shape.bytes.len() as u64));
        assert!(matches!(mqtt_connect::decode(&shape.bytes), Ok(Status::Complete { .. })));
        group.bench_function(shape.name, |b| b.iter(|| mqtt_connect::decode(black_box(&shape.bytes))));
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for shape in shapes::all() {
        let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(&shape.bytes) else { panic!() };
        let mut out = vec![0; shape.bytes.len()];
        group.throughput(Throughput::Bytes(shape.bytes.len() as u64));
        group.bench_function(shape.name, |b| b.iter(|| black_box(packet).encode(black_box(&mut out))));
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
