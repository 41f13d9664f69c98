//! Plain rate figures for `scripts/bench-openflow.sh`, one JSON line each on stdout, so the
//! script can set them beside os-ken's in the same run. Criterion's statistics live in the
//! `codec` bench; this one only needs a comparable number: operations per second, best of five
//! timed rounds (the same statistic as Python's `min(timeit.repeat(...))`).
//!
//! Run with `cargo bench -p weft-openflow --bench codec_rate`.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use weft_openflow::Message;

const ROUNDS: usize = 5;
const ROUND_TIME: Duration = Duration::from_millis(400);

/// Best rate over [`ROUNDS`] rounds of at least [`ROUND_TIME`] each, calling `op` in batches.
fn rate(mut op: impl FnMut()) -> f64 {
    // Warm up and size a batch to ~1 ms so the clock is read rarely.
    let mut batch = 1u64;
    loop {
        let t = Instant::now();
        (0..batch).for_each(|_| op());
        if t.elapsed() >= Duration::from_millis(1) {
            break;
        }
        batch *= 2;
    }
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < ROUND_TIME {
            (0..batch).for_each(|_| op());
            n += batch;
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    best
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    let msg = Message::FlowMod(common::typical_flow_mod());
    let bytes = msg.to_bytes(1).expect("the benchmark FLOW_MOD encodes");
    println!(
        r#"{{"figure":"flow_mod_bytes","impl":"weft","xid":1,"hex":"{}"}}"#,
        hex(&bytes)
    );

    let mut buf = Vec::with_capacity(256);
    let mut xid = 0u32;
    let encode = rate(|| {
        buf.clear();
        xid = xid.wrapping_add(1);
        let ok = black_box(&msg).emit(xid, &mut buf).is_ok();
        black_box((ok, &buf));
    });
    println!(r#"{{"figure":"flow_mod_encode","impl":"weft","per_sec":{encode:.0}}}"#);

    let build_encode = rate(|| {
        buf.clear();
        let m = Message::FlowMod(black_box(common::typical_flow_mod()));
        let ok = m.emit(1, &mut buf).is_ok();
        black_box((ok, &buf));
    });
    println!(r#"{{"figure":"flow_mod_build_encode","impl":"weft","per_sec":{build_encode:.0}}}"#);

    let decode = rate(|| {
        black_box(Message::parse(black_box(&bytes)).is_ok());
    });
    println!(r#"{{"figure":"flow_mod_decode","impl":"weft","per_sec":{decode:.0}}}"#);
}
