//! Writing a simulated day as replay-contract files — the one place this crate does I/O.

use std::io::Write;
use std::path::Path;

use zhilu_road::RoadBook;

use crate::SimError;
use crate::output::{CAM_HEADER, CsvFormatter, OBS_HEADER, POS_HEADER, WEATHER_HEADER};
use crate::scenario::Scenario;
use crate::sim::{Sim, SimConfig};

/// What `write_day` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaySummary {
    /// Model steps run.
    pub steps: u64,
    /// Rows of OBS.csv.
    pub obs_rows: u64,
    /// Rows of WEATHER.csv.
    pub weather_rows: u64,
    /// Rows of POS.csv.
    pub position_rows: u64,
    /// Rows of CAM.csv.
    pub camera_rows: u64,
    /// Lines of TRUTH.jsonl.
    pub truth_records: u64,
}

struct File {
    path: std::path::PathBuf,
    w: std::io::BufWriter<std::fs::File>,
    buf: String,
}

impl File {
    fn create(dir: &Path, name: &str, header: Option<&str>) -> Result<File, SimError> {
        let path = dir.join(name);
        let f = std::fs::File::create(&path).map_err(|source| SimError::Io {
            path: path.clone(),
            source,
        })?;
        let mut buf = String::with_capacity(1 << 16);
        if let Some(h) = header {
            buf.push_str(h);
            buf.push('\n');
        }
        Ok(File {
            path,
            w: std::io::BufWriter::with_capacity(1 << 16, f),
            buf,
        })
    }

    fn flush_if_full(&mut self) -> Result<(), SimError> {
        if self.buf.len() >= 1 << 15 {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<(), SimError> {
        let r = self.w.write_all(self.buf.as_bytes());
        self.buf.clear();
        r.map_err(|source| SimError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn finish(mut self) -> Result<(), SimError> {
        self.flush_buf()?;
        self.w.flush().map_err(|source| SimError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Simulates `hours` from `from_ms` (epoch ms) with the default configuration
/// and writes OBS.csv, WEATHER.csv, POS.csv, CAM.csv and TRUTH.jsonl into
/// `out_dir` (created if missing) — the `zhilu sim` command. ROAD.toml is the caller's.
pub fn write_day(
    road: &RoadBook,
    scenario: &Scenario,
    from_ms: i64,
    hours: f64,
    seed: u64,
    out_dir: &Path,
) -> Result<DaySummary, SimError> {
    write_day_with(
        road,
        scenario,
        SimConfig::default(),
        from_ms,
        hours,
        seed,
        out_dir,
    )
}

/// [`write_day`] with an explicit configuration.
pub fn write_day_with(
    road: &RoadBook,
    scenario: &Scenario,
    config: SimConfig,
    from_ms: i64,
    hours: f64,
    seed: u64,
    out_dir: &Path,
) -> Result<DaySummary, SimError> {
    if !(hours > 0.0 && hours <= 24.0 * 366.0) {
        return Err(SimError::Config(format!(
            "hours ({hours}) must be in 0…8784"
        )));
    }
    std::fs::create_dir_all(out_dir).map_err(|source| SimError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut sim = Sim::new(road, scenario, config, from_ms, seed)?;
    let until = from_ms + (hours * 3_600_000.0).round() as i64;
    let mut obs = File::create(out_dir, "OBS.csv", Some(OBS_HEADER))?;
    let mut wx = File::create(out_dir, "WEATHER.csv", Some(WEATHER_HEADER))?;
    let mut pos = File::create(out_dir, "POS.csv", Some(POS_HEADER))?;
    let mut cam = File::create(out_dir, "CAM.csv", Some(CAM_HEADER))?;
    let mut fmt = CsvFormatter::new(road);
    let mut s = DaySummary::default();
    while sim.now_ms() < until {
        let out = sim.step();
        s.steps += 1;
        for r in out.obs() {
            fmt.obs(r, &mut obs.buf);
        }
        for r in out.weather() {
            fmt.weather(r, &mut wx.buf);
        }
        for r in out.positions() {
            fmt.position(r, &mut pos.buf);
        }
        for r in out.cameras() {
            fmt.camera(r, &mut cam.buf);
        }
        s.obs_rows += out.obs().len() as u64;
        s.weather_rows += out.weather().len() as u64;
        s.position_rows += out.positions().len() as u64;
        s.camera_rows += out.cameras().len() as u64;
        obs.flush_if_full()?;
        wx.flush_if_full()?;
        pos.flush_if_full()?;
        cam.flush_if_full()?;
    }
    obs.finish()?;
    wx.finish()?;
    pos.finish()?;
    cam.finish()?;
    let mut truth = File::create(out_dir, "TRUTH.jsonl", None)?;
    for r in sim.truth() {
        // Episodes wholly outside the simulated span are not part of the day.
        if r.end_ms <= from_ms || r.start_ms >= until {
            continue;
        }
        r.write_json(road, &mut truth.buf);
        s.truth_records += 1;
    }
    truth.finish()?;
    Ok(s)
}
