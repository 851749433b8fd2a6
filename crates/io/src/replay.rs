//! The `zhilu replay` driver: streams the input files in time order through
//! the [`Brain`] and writes EVENTS.jsonl / ACTIONS.jsonl (and, on request, a
//! state file for time–space diagrams).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zhilu_core::{Brain, BrainConfig, Outputs, Recorded};
use zhilu_road::{RoadBook, RoadError};

use crate::badrows::{BadRowKind, BadRows};
use crate::error::IoError;
use crate::jsonl::{JsonlWriter, action_json, event_json, format_time};
use crate::readers::{CameraReader, ObsReader, PositionReader, WeatherReader};

/// What to replay and where to write.
#[derive(Debug, Clone, Default)]
pub struct ReplayPaths {
    /// ROAD.toml.
    pub road: PathBuf,
    /// OBS.csv.
    pub observations: PathBuf,
    /// WEATHER.csv.
    pub weather: Option<PathBuf>,
    /// POS.csv.
    pub positions: Option<PathBuf>,
    /// CAM.csv.
    pub camera_events: Option<PathBuf>,
    /// EVENTS.jsonl.
    pub events_out: PathBuf,
    /// ACTIONS.jsonl.
    pub actions_out: PathBuf,
    /// Optional STATE.csv (one line per station/segment per tick).
    pub state_out: Option<PathBuf>,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The road book is invalid.
    #[error(transparent)]
    Road(#[from] RoadError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Rows and bad rows of one input file.
#[derive(Debug, Clone)]
pub struct FileSummary {
    /// Data rows read (good and bad).
    pub rows: u64,
    /// The bad rows.
    pub bad: BadRows,
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    /// Road id.
    pub road: String,
    /// Per input file.
    pub files: Vec<FileSummary>,
    /// Events written, by kind.
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// Actions written.
    pub actions: u64,
    /// Ticks closed.
    pub ticks: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl ReplaySummary {
    /// Rows of the observations file.
    pub fn obs_rows(&self) -> u64 {
        self.files.first().map_or(0, |f| f.rows)
    }

    /// Events of all kinds.
    pub fn events(&self) -> u64 {
        self.events_by_kind.values().sum()
    }
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let total_rows: u64 = self.files.iter().map(|x| x.rows).sum();
        write!(f, "replay of {}: read ", self.road)?;
        for (i, x) in self.files.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(
                f,
                "{} rows of {} ({} bad)",
                x.rows,
                x.bad.file,
                x.bad.total()
            )?;
        }
        write!(
            f,
            " in {:.2} s ({:.0} rows/s, {:.0} observation rows/s) over {} ticks; ",
            secs,
            total_rows as f64 / secs,
            self.obs_rows() as f64 / secs,
            self.ticks
        )?;
        if self.events_by_kind.is_empty() {
            f.write_str("no events")?;
        } else {
            f.write_str("events: ")?;
            for (i, (k, n)) in self.events_by_kind.iter().enumerate() {
                write!(f, "{}{k} {n}", if i > 0 { ", " } else { "" })?;
            }
        }
        write!(f, "; {} actions.", self.actions)?;
        for x in &self.files {
            if x.bad.total() > 0 {
                write!(f, " Bad rows in {}.", x.bad)?;
            }
        }
        Ok(())
    }
}

/// Reads and validates a road book file.
pub fn load_road(path: &Path) -> Result<RoadBook, ReplayError> {
    let text = std::fs::read_to_string(path).map_err(|source| IoError::Open {
        path: path.display().to_string(),
        source,
    })?;
    Ok(RoadBook::from_toml(&text, &path.display().to_string())?)
}

fn open(path: &Path) -> Result<File, IoError> {
    File::open(path).map_err(|source| IoError::Open {
        path: path.display().to_string(),
        source,
    })
}

fn create(path: &Path) -> Result<BufWriter<File>, IoError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| IoError::Open {
            path: dir.display().to_string(),
            source,
        })?;
    }
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 16, f))
        .map_err(|source| IoError::Open {
            path: path.display().to_string(),
            source,
        })
}

fn name(path: &Path) -> String {
    path.display().to_string()
}

/// Runs a replay from files.
pub fn replay_files(paths: &ReplayPaths, cfg: BrainConfig) -> Result<ReplaySummary, ReplayError> {
    let road = Arc::new(load_road(&paths.road)?);
    let obs = ObsReader::new(
        open(&paths.observations)?,
        &name(&paths.observations),
        &road,
    )?;
    let weather = match &paths.weather {
        Some(p) => Some(WeatherReader::new(open(p)?, &name(p), &road)?),
        None => None,
    };
    let positions = match &paths.positions {
        Some(p) => Some(PositionReader::new(open(p)?, &name(p))?),
        None => None,
    };
    let cameras = match &paths.camera_events {
        Some(p) => Some(CameraReader::new(open(p)?, &name(p), &road)?),
        None => None,
    };
    let mut events = JsonlWriter::new(create(&paths.events_out)?, &name(&paths.events_out));
    let mut actions = JsonlWriter::new(create(&paths.actions_out)?, &name(&paths.actions_out));
    let mut state = match &paths.state_out {
        Some(p) => Some((create(p)?, name(p))),
        None => None,
    };
    let inputs = Inputs {
        obs,
        weather,
        positions,
        cameras,
    };
    run(
        road,
        cfg,
        inputs,
        &mut events,
        &mut actions,
        state
            .as_mut()
            .map(|(w, n)| (w as &mut dyn Write, n.as_str())),
    )
}

/// The readers of one replay.
pub struct Inputs<O: Read, W: Read, P: Read, C: Read> {
    /// Observations.
    pub obs: ObsReader<O>,
    /// Weather, if given.
    pub weather: Option<WeatherReader<W>>,
    /// Positions, if given.
    pub positions: Option<PositionReader<P>>,
    /// Camera events, if given.
    pub cameras: Option<CameraReader<C>>,
}

/// Runs a replay over any readers and writers (the core loop, used by
/// [`replay_files`] and by tests and benchmarks).
pub fn run<O: Read, W: Read, P: Read, C: Read, E: Write, A: Write>(
    road: Arc<RoadBook>,
    cfg: BrainConfig,
    mut inputs: Inputs<O, W, P, C>,
    events: &mut JsonlWriter<E>,
    actions: &mut JsonlWriter<A>,
    mut state_out: Option<(&mut dyn Write, &str)>,
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let mut brain = Brain::new(road.clone(), cfg);
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    if let Some((w, file)) = state_out.as_mut() {
        writeln!(w, "{}", zhilu_contract::STATE_HEADER).map_err(|source| IoError::Write {
            file: file.to_string(),
            source,
        })?;
    }

    let mut o = inputs.obs.next_row()?;
    let mut w = inputs
        .weather
        .as_mut()
        .map(|r| r.next_row())
        .transpose()?
        .flatten();
    let mut p = inputs
        .positions
        .as_mut()
        .map(|r| r.next_row())
        .transpose()?
        .flatten();
    let mut c = inputs
        .cameras
        .as_mut()
        .map(|r| r.next_row())
        .transpose()?
        .flatten();
    let mut ticks_seen = 0u64;
    loop {
        // The earliest pending row goes first; observations win ties.
        let t_o = o.as_ref().map_or(i64::MAX, |r| r.value.ts_ms);
        let t_w = w.as_ref().map_or(i64::MAX, |r| r.value.ts_ms);
        let t_p = p.as_ref().map_or(i64::MAX, |r| r.value.ts_ms);
        let t_c = c.as_ref().map_or(i64::MAX, |r| r.value.ts_ms);
        let t_min = t_o.min(t_w).min(t_p).min(t_c);
        if t_min == i64::MAX {
            break;
        }
        if t_o == t_min {
            if let Some(row) = o.take() {
                let verdict = brain.observe(&row.value);
                // A row the reader already flagged is counted once.
                if row.value.valid {
                    match verdict {
                        Recorded::Accepted => {}
                        Recorded::Duplicate => {
                            inputs
                                .obs
                                .bad_mut()
                                .add(BadRowKind::Duplicate, row.line, None)
                        }
                        Recorded::Stale => {
                            inputs.obs.bad_mut().add(BadRowKind::Stale, row.line, None)
                        }
                    }
                }
            }
            o = inputs.obs.next_row()?;
        } else if t_w == t_min {
            if let Some(row) = w.take() {
                brain.weather(&row.value);
            }
            w = inputs
                .weather
                .as_mut()
                .map(|r| r.next_row())
                .transpose()?
                .flatten();
        } else if t_p == t_min {
            if let Some(row) = p.take() {
                brain.position(&row.value);
            }
            p = inputs
                .positions
                .as_mut()
                .map(|r| r.next_row())
                .transpose()?
                .flatten();
        } else {
            if let Some(row) = c.take() {
                brain.camera(&row.value);
            }
            c = inputs
                .cameras
                .as_mut()
                .map(|r| r.next_row())
                .transpose()?
                .flatten();
        }
        if brain.stats().ticks != ticks_seen {
            ticks_seen = brain.stats().ticks;
            if let Some((out, file)) = state_out.as_mut() {
                write_state(&brain, *out).map_err(|source| IoError::Write {
                    file: file.to_string(),
                    source,
                })?;
            }
        }
        if brain.has_output() {
            write_outputs(
                &road,
                &|v| names(&inputs, v),
                brain.drain(),
                events,
                actions,
                &mut by_kind,
            )?;
        }
    }
    brain.finish();
    if let Some((out, file)) = state_out.as_mut() {
        let fail = |source| IoError::Write {
            file: file.to_string(),
            source,
        };
        if brain.stats().ticks != ticks_seen {
            write_state(&brain, *out).map_err(fail)?;
        }
        out.flush().map_err(fail)?;
    }
    write_outputs(
        &road,
        &|v| names(&inputs, v),
        brain.drain(),
        events,
        actions,
        &mut by_kind,
    )?;
    events.flush()?;
    actions.flush()?;

    let mut files = vec![FileSummary {
        rows: inputs.obs.rows(),
        bad: inputs.obs.bad().clone(),
    }];
    if let Some(r) = &inputs.weather {
        files.push(FileSummary {
            rows: r.rows(),
            bad: r.bad().clone(),
        });
    }
    if let Some(r) = &inputs.positions {
        files.push(FileSummary {
            rows: r.rows(),
            bad: r.bad().clone(),
        });
    }
    if let Some(r) = &inputs.cameras {
        files.push(FileSummary {
            rows: r.rows(),
            bad: r.bad().clone(),
        });
    }
    Ok(ReplaySummary {
        road: road.id().to_string(),
        files,
        events_by_kind: by_kind,
        actions: actions.lines,
        ticks: brain.stats().ticks,
        elapsed: started.elapsed(),
    })
}

fn write_outputs<E: Write, A: Write>(
    road: &RoadBook,
    vehicle: &dyn Fn(u32) -> String,
    out: Outputs,
    events: &mut JsonlWriter<E>,
    actions: &mut JsonlWriter<A>,
    by_kind: &mut BTreeMap<&'static str, u64>,
) -> Result<(), IoError> {
    for e in &out.events {
        events.line(&event_json(e, road, vehicle))?;
        *by_kind.entry(e.kind.as_str()).or_default() += 1;
    }
    for a in &out.actions {
        actions.line(&action_json(a, road))?;
    }
    Ok(())
}

fn names<O: Read, W: Read, P: Read, C: Read>(inputs: &Inputs<O, W, P, C>, v: u32) -> String {
    inputs
        .positions
        .as_ref()
        .map_or_else(|| format!("#{v}"), |p| p.vehicles.name(v).to_string())
}

fn write_state(brain: &Brain, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(s) = brain.state() else {
        return Ok(());
    };
    let t = format_time(s.ts_ms, brain.road().tz_offset_s());
    for d in &s.directions {
        for (kind, cells) in [("station", &d.stations), ("segment", &d.segments)] {
            for c in cells.iter() {
                writeln!(
                    out,
                    "{t},{},{kind},{},{},{:.1},{:.0},{:.2},{:.2}",
                    d.direction.as_str(),
                    c.from_m,
                    c.to_m,
                    c.speed_kmh,
                    c.flow_vph,
                    c.density_vpkm,
                    c.support
                )?;
            }
        }
    }
    Ok(())
}
