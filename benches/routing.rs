//! Routing costs: one pick over cluster sizes, and taking a key from a decoded CONNECT.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mqtt_connect::routing::{self, ClientId, RoutingKey, Upstream, UserProperty, Username};
use mqtt_connect::{Connect, Protocol, Status, UserProperties};

fn pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick");
    for n in [3, 16, 64] {
        let ids: Vec<String> = (1..=n).map(|i| format!("10.0.{}.{}:1883", i / 256, i % 256)).collect();
        let nodes: Vec<Upstream<'_>> = ids.iter().map(|id| Upstream::new(id.as_bytes(), 1)).collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &nodes, |b, nodes| {
            b.iter(|| routing::pick(black_box(b"sensor-17"), black_box(nodes)))
        });
    }
    group.finish();
}

fn key(c: &mut Criterion) {
    let pairs = [("region", "eu"), ("site", "berlin"), ("tenant", "acme")];
    let mut connect = Connect::new(Protocol::V5, "sensor-17");
    connect.username = Some("bob");
    connect.properties.user_properties = UserProperties::new(&pairs);
    let mut buf = [0u8; 128];
    let len = connect.encode(&mut buf).expect("encodes");
    let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(&buf[..len]) else {
        panic!("does not decode")
    };
    let mut anonymous = packet;
    anonymous.client_id = "";

    let mut group = c.benchmark_group("key");
    group.bench_function("client_id", |b| b.iter(|| ClientId.routing_key(black_box(&packet))));
    group.bench_function("user_property", |b| {
        b.iter(|| UserProperty("tenant").routing_key(black_box(&packet)))
    });
    group.bench_function("client_id_or_username", |b| {
        b.iter(|| ClientId.or(Username).routing_key(black_box(&anonymous)))
    });
    group.finish();
}

criterion_group!(benches, pick, key);
criterion_main!(benches);
