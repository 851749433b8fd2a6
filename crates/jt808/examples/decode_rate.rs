//! Decodes contract vector 1 (a 0x0200 with escapes) N times on one thread
//! and prints frames per second: `cargo run --release --example decode_rate [N]`.

use std::time::Instant;
use zhilu_jt808::Decoder;
use zhilu_jt808::wire::parse_hex;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000_000);
    let frames = [
        "7E 02 00 00 26 12 34 56 78 90 12 00 7D 02 00 00 00 01 00 00 00 02 00 BA 7F 0E 07 E4 F1 1C 00 28 00 3C 00 00 18 10 15 10 10 10 01 04 00 00 00 64 02 02 00 7D 01 13 7E",
        "7e02004026010000000001391234432900000000006f0000001601dc9a0707456246007b004200032501292233440202006401040000000c417e",
    ];
    for hex in frames {
        let wire = parse_hex(hex).expect("hex");
        let mut dec = Decoder::new();
        let t = Instant::now();
        let mut lat = 0u64;
        for _ in 0..n {
            match dec.decode(std::hint::black_box(&wire)) {
                Ok(m) => {
                    if let zhilu_jt808::Body::Location(l) = m.body {
                        lat += u64::from(l.lat);
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{}…: {n} frames in {s:.2} s = {:.2} M frames/s ({:.0} ns/frame) [{lat}]",
            &hex[..12],
            n as f64 / s / 1e6,
            s * 1e9 / n as f64
        );
    }
}
