//! Decoding speed of 0x0200 location reports (the gateway's hot path).
//! Target: ≥ 5 million frames/s on one core.
//!
//! `…/into` is [`Decoder::decode_into`] with one reusable message; the plain
//! name is [`Decoder::decode`]. Wall-clock figures on the shared 2-core
//! development machine swing ±50% with other builds; `examples/decode_rate.rs`
//! also reports frames per second of CPU time: 8–11.5 M/s with `decode_into`,
//! 7–10 M/s with `decode` (contract vector 1 with escapes, and a 2019 frame).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use zhilu_jt808::wire::parse_hex;
use zhilu_jt808::{Body, Decoder};

/// (name, frame): contract vector 1 (escapes in header and body), a 2019 frame
/// with no escapes, and a 2013 frame with typical items (0x01 0x25 0x30 0x31).
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let hex = [
        (
            "0200_2013_escaped",
            "7E 02 00 00 26 12 34 56 78 90 12 00 7D 02 00 00 00 01 00 00 00 02 00 BA 7F 0E 07 E4 F1 1C 00 28 00 3C 00 00 18 10 15 10 10 10 01 04 00 00 00 64 02 02 00 7D 01 13 7E",
        ),
        (
            "0200_2019_plain",
            "7e02004026010000000001391234432900000000006f0000001601dc9a0707456246007b004200032501292233440202006401040000000c417e",
        ),
        (
            "0200_2013_items",
            "7E 02 00 00 32 00 20 02 60 43 23 00 A4 00 02 00 00 00 0C 00 02 01 58 B9 1B 06 CB 70 61 00 46 00 00 00 59 21 09 22 16 37 58 01 04 00 00 00 01 03 02 00 00 25 04 00 00 00 01 30 01 11 31 01 10 00 7E",
        ),
    ];
    hex.iter()
        .map(|(n, h)| {
            let mut w = parse_hex(h).expect("hex");
            // Fix up the checksum of the hand-shortened third frame.
            let last = w.len() - 2;
            w[last] = zhilu_jt808::wire::checksum(&w[1..last]);
            (*n, w)
        })
        .collect()
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, wire) in frames() {
        let mut dec = Decoder::new();
        assert!(matches!(
            dec.decode(&wire).expect("valid frame").body,
            Body::Location(_)
        ));
        let mut msg = dec.decode(&wire).expect("valid frame");
        g.bench_function(format!("{name}/into"), |b| {
            b.iter(|| {
                dec.decode_into(black_box(&wire), &mut msg).expect("valid");
                black_box(&msg);
            })
        });
        g.bench_function(name, |b| {
            b.iter(|| {
                let m = dec.decode(black_box(&wire)).expect("valid");
                black_box(m);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
