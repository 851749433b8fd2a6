//! Any bytes as an ingest request body, for every reading kind, as CSV and
//! as JSON: rows with their problems or a clear error, never a panic.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zhilu_server::ingest::{Format, ReadingKind, parse};

const ROAD: &str = include_str!("../../examples/demo/ROAD.toml");

fn road() -> &'static zhilu_road::RoadBook {
    static R: OnceLock<zhilu_road::RoadBook> = OnceLock::new();
    R.get_or_init(|| zhilu_road::RoadBook::from_toml(ROAD, "ROAD.toml").expect("demo road"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let kind = match first % 4 {
        0 => ReadingKind::Obs,
        1 => ReadingKind::Weather,
        2 => ReadingKind::Positions,
        _ => ReadingKind::Camera,
    };
    let format = if first & 4 == 0 { Format::Csv } else { Format::Json };
    let _ = parse(kind, format, body, road());
});
