//! Shared helpers of the integration tests.
#![allow(dead_code)]

use zhilu_road::RoadBook;
use zhilu_traffic::{ObsReading, local_time_ms};

/// The demo corridor shipped in examples/demo.
pub fn demo_road() -> RoadBook {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo/ROAD.toml");
    let text = std::fs::read_to_string(path).expect("examples/demo/ROAD.toml");
    RoadBook::from_toml(&text, path).expect("the demo road book loads")
}

/// Epoch ms of a local time on 2026-11-23 on `road`.
pub fn at(road: &RoadBook, hour: u32, minute: u32) -> i64 {
    local_time_ms(2026, 11, 23, hour, minute, road.tz_offset_s())
}

/// Volume-weighted mean speed of a detector's readings within `[from, to]`.
pub fn mean_speed(obs: &[ObsReading], detector: u32, from: i64, to: i64) -> f64 {
    let (mut sv, mut n) = (0.0, 0.0);
    for r in obs {
        if r.detector == detector
            && r.time_ms > from
            && r.time_ms <= to
            && let Some(v) = r.speed_kmh
        {
            sv += f64::from(v) * f64::from(r.volume);
            n += f64::from(r.volume);
        }
    }
    if n > 0.0 { sv / n } else { f64::NAN }
}

/// Total volume of a detector (all lanes) within `[from, to]`.
pub fn volume(obs: &[ObsReading], detector: u32, from: i64, to: i64) -> u32 {
    obs.iter()
        .filter(|r| r.detector == detector && r.time_ms > from && r.time_ms <= to)
        .map(|r| r.volume)
        .sum()
}
