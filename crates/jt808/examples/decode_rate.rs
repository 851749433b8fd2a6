//! Decodes contract vector 1 (a 0x0200 with escapes) N times on one thread
//! (and a 2019 frame without escapes), with `decode_into` (one reusable
//! message) and `decode`, and prints frames per second of wall and of CPU
//! time: `cargo run --release -p zhilu-jt808 --example decode_rate [N]`.

use std::time::Instant;
use zhilu_jt808::Decoder;
use zhilu_jt808::wire::parse_hex;

/// Nanoseconds this thread has run on a CPU (Linux), to discount time lost to other processes.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

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
        // The in-place path: one reusable message.
        let mut msg = dec.decode(&wire).expect("valid");
        let t = Instant::now();
        let c0 = cpu_ns();
        let mut lat_into = 0u64;
        for _ in 0..n {
            match dec.decode_into(std::hint::black_box(&wire), &mut msg) {
                Ok(()) => {
                    if let zhilu_jt808::Body::Location(l) = &msg.body {
                        lat_into += u64::from(l.lat);
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        let s = t.elapsed().as_secs_f64();
        let cpu = match (c0, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => s,
        };
        println!(
            "decode_into {}…: {n} frames in {s:.2} s wall = {:.2} M frames/s; {cpu:.2} s on CPU = {:.2} M frames/s per core ({:.0} ns/frame) [{lat_into}]",
            &hex[..12],
            n as f64 / s / 1e6,
            n as f64 / cpu / 1e6,
            cpu * 1e9 / n as f64
        );
        let t = Instant::now();
        let c0 = cpu_ns();
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
        let cpu = match (c0, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => s,
        };
        println!(
            "decode      {}…: {n} frames in {s:.2} s wall = {:.2} M frames/s; {cpu:.2} s on CPU = {:.2} M frames/s per core ({:.0} ns/frame) [{lat}]",
            &hex[..12],
            n as f64 / s / 1e6,
            n as f64 / cpu / 1e6,
            cpu * 1e9 / n as f64
        );
    }
}
