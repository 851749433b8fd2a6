//! Writes a simulated day of the demo corridor as replay-contract files —
//! what `zhilu sim` will do:
//! `cargo run --release -p zhilu-traffic --example demo_day -- OUT_DIR [HOURS] [SEED] [random]`.

use std::path::PathBuf;

use zhilu_road::RoadBook;
use zhilu_traffic::{Scenario, local_time_ms, write_day};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "out/demo".into()));
    let hours: f64 = args.next().map_or(Ok(24.0), |h| h.parse())?;
    let seed: u64 = args.next().map_or(Ok(2026), |s| s.parse())?;
    let random = args.next().as_deref() == Some("random");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo/ROAD.toml");
    let text = std::fs::read_to_string(path)?;
    let road = RoadBook::from_toml(&text, path)?;
    let scenario = if random {
        Scenario::random(&road, seed)
    } else {
        Scenario::demo_morning(&road)
    };
    let from = local_time_ms(2026, 11, 23, 0, 0, road.tz_offset_s());
    let t = std::time::Instant::now();
    let s = write_day(&road, &scenario, from, hours, seed, &out)?;
    std::fs::write(out.join("ROAD.toml"), &text)?;
    println!(
        "{s:?} in {:.1} s → {}",
        t.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
