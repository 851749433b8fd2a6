//! `zhilu bench`: end-to-end replay against a bare csv-crate parse of the
//! same file into a row struct, measured in one run.

use std::fs::File;
use std::io::sink;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;
use zhilu_core::BrainConfig;
use zhilu_io::jsonl::JsonlWriter;
use zhilu_io::replay::{Inputs, run as replay_run};
use zhilu_io::{CameraReader, ObsReader, PositionReader, WeatherReader, load_road};

/// The baseline's row: the contract's columns, borrowed from the record.
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawObs<'a> {
    time: &'a str,
    detector: &'a str,
    lane: u8,
    interval_s: u16,
    volume: u32,
    speed_kmh: Option<f32>,
    occupancy_pct: f32,
}

fn bare_parse(path: &Path) -> anyhow::Result<(u64, Duration)> {
    let t = Instant::now();
    let mut rdr = csv::ReaderBuilder::new()
        .buffer_capacity(1 << 16)
        .from_reader(File::open(path)?);
    let headers = rdr.byte_headers()?.clone();
    let mut rec = csv::ByteRecord::new();
    let (mut rows, mut check) = (0u64, 0u64);
    while rdr.read_byte_record(&mut rec)? {
        let r: RawObs = rec
            .deserialize(Some(&headers))
            .with_context(|| format!("row {}", rows + 2))?;
        check = check.wrapping_add(r.volume as u64 + r.lane as u64);
        rows += 1;
    }
    std::hint::black_box(check);
    Ok((rows, t.elapsed()))
}

fn replay(road: &Path, obs: &Path) -> anyhow::Result<(u64, Duration, u64)> {
    let road = Arc::new(load_road(road)?);
    let t = Instant::now();
    let reader = ObsReader::new(File::open(obs)?, &obs.display().to_string(), &road)?;
    let inputs: Inputs<File, File, File, File> = Inputs {
        obs: reader,
        weather: None::<WeatherReader<File>>,
        positions: None::<PositionReader<File>>,
        cameras: None::<CameraReader<File>>,
    };
    let mut ev = JsonlWriter::new(sink(), "events");
    let mut ac = JsonlWriter::new(sink(), "actions");
    let s = replay_run(road, BrainConfig::default(), inputs, &mut ev, &mut ac, None)?;
    Ok((s.obs_rows(), t.elapsed(), s.events()))
}

pub fn run(road: &Path, obs: &Path, repeat: u32) -> anyhow::Result<()> {
    let mut best_parse = Duration::MAX;
    let mut best_replay = Duration::MAX;
    let (mut rows, mut events) = (0, 0);
    for _ in 0..repeat.max(1) {
        let (r, d) = bare_parse(obs)?;
        rows = r;
        best_parse = best_parse.min(d);
        let (r2, d2, e) = replay(road, obs)?;
        anyhow::ensure!(r2 == rows, "replay read {r2} rows, the bare parse {rows}");
        events = e;
        best_replay = best_replay.min(d2);
    }
    let rps = |d: Duration| rows as f64 / d.as_secs_f64();
    println!("rows: {rows}");
    println!(
        "bare csv parse into a row struct: {:.2} s ({:.0} rows/s)",
        best_parse.as_secs_f64(),
        rps(best_parse)
    );
    println!(
        "replay end to end (read → quality → state → write): {:.2} s ({:.0} rows/s), {events} events",
        best_replay.as_secs_f64(),
        rps(best_replay)
    );
    println!(
        "ratio replay / bare parse: {:.2}",
        best_replay.as_secs_f64() / best_parse.as_secs_f64()
    );
    Ok(())
}
