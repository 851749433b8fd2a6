//! Measures how much faster than real time the simulator runs a day of the
//! demo corridor (60 km, both directions, default scenario, every reading
//! into a buffer): `cargo run --release -p zhilu-traffic --example day_speed`.

use std::time::Instant;

use zhilu_road::RoadBook;
use zhilu_traffic::{Scenario, Sim, SimConfig, local_time_ms};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo/ROAD.toml");
    let text = std::fs::read_to_string(path)?;
    let road = RoadBook::from_toml(&text, path)?;
    let scenario = Scenario::demo_morning(&road);
    let start = local_time_ms(2026, 11, 23, 0, 0, road.tz_offset_s());
    let hours = 24.0;
    let t = Instant::now();
    let mut sim = Sim::new(&road, &scenario, SimConfig::default(), start, 2026)?;
    let (mut obs, mut wx, mut pos, mut cam) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    sim.run_until(start + (hours * 3_600_000.0) as i64, |out| {
        obs.extend_from_slice(out.obs());
        wx.extend_from_slice(out.weather());
        pos.extend_from_slice(out.positions());
        cam.extend_from_slice(out.cameras());
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} h of {} ({} detector lanes, {} weather stations) in {secs:.2} s: {:.0}× real time",
        hours,
        road.id(),
        road.total_lanes(),
        road.weather().len(),
        hours * 3600.0 / secs
    );
    println!(
        "readings: {} obs, {} weather, {} positions, {} camera events; {} truth records",
        obs.len(),
        wx.len(),
        pos.len(),
        cam.len(),
        sim.truth().len()
    );
    Ok(())
}
