//! Criterion benchmarks of the OpenFlow codec: encode and decode of a typical FLOW_MOD, and
//! decode of a 100-entry flow-stats reply. Run with `cargo bench -p weft-openflow --bench codec`.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weft_openflow::Message;

fn flow_mod_encode(c: &mut Criterion) {
    let msg = Message::FlowMod(common::typical_flow_mod());
    let mut g = c.benchmark_group("flow_mod_encode");
    g.throughput(Throughput::Elements(1));
    // The controller path: one buffer per connection, cleared and reused.
    g.bench_function("reused_vec", |b| {
        let mut buf = Vec::with_capacity(256);
        let mut xid = 0u32;
        b.iter(|| {
            buf.clear();
            xid = xid.wrapping_add(1);
            black_box(&msg).emit(xid, &mut buf).unwrap();
            black_box(&buf);
        })
    });
    // One fresh allocation per message (`to_bytes`), for comparison.
    g.bench_function("to_bytes", |b| {
        b.iter(|| black_box(black_box(&msg).to_bytes(1).unwrap()))
    });
    g.finish();
}

fn flow_mod_decode(c: &mut Criterion) {
    let bytes = Message::FlowMod(common::typical_flow_mod())
        .to_bytes(1)
        .unwrap();
    let mut g = c.benchmark_group("flow_mod_decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| {
        b.iter(|| black_box(Message::parse(black_box(&bytes)).unwrap()))
    });
    g.finish();
}

fn flow_stats_reply_decode_100(c: &mut Criterion) {
    let bytes = common::flow_stats_reply(100).to_bytes(1).unwrap();
    let mut g = c.benchmark_group("flow_stats_reply_decode_100");
    // Elements are flow entries, so the rate reads as entries per second.
    g.throughput(Throughput::Elements(100));
    g.bench_function("parse", |b| {
        b.iter(|| black_box(Message::parse(black_box(&bytes)).unwrap()))
    });
    g.finish();
}

criterion_group!(
    benches,
    flow_mod_encode,
    flow_mod_decode,
    flow_stats_reply_decode_100
);
criterion_main!(benches);
