//! Request bodies → validated rows. The contract's CSV goes through the
//! same streaming readers as `zhilu replay` (so a row is judged the same
//! way live and on a recorded day); JSON rows are laid out as the same CSV
//! first. Every problem is answered with its kind, row and column.

use serde::Serialize;
use serde_json::Value;
use zhilu_io::{
    BadRowKind, BadRows, CameraReader, IoError, ObsReader, PositionReader, WeatherReader,
};
use zhilu_road::RoadBook;
use zhilu_store::{CameraRow, ObsRow, PositionRow, ReadingBatch, WeatherRow};

/// The four kinds of reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingKind {
    /// OBS
    Obs,
    /// WEATHER
    Weather,
    /// POS
    Positions,
    /// CAM
    Camera,
}

impl ReadingKind {
    /// The contract's columns.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            ReadingKind::Obs => &zhilu_io::OBS_COLS,
            ReadingKind::Weather => &zhilu_io::WEATHER_COLS,
            ReadingKind::Positions => &zhilu_io::POS_COLS,
            ReadingKind::Camera => &zhilu_io::CAM_COLS,
        }
    }

    /// Name used in answers and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadingKind::Obs => "observations",
            ReadingKind::Weather => "weather",
            ReadingKind::Positions => "positions",
            ReadingKind::Camera => "camera-events",
        }
    }
}

/// Body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The contract's CSV (header line first).
    Csv,
    /// A JSON array of row objects (or `{"rows": [...]}`), keys = the CSV columns.
    Json,
}

/// One kind of problem in a body, with its first places.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `out_of_range`, `unknown_device`, `bad_time`, …
    pub kind: String,
    /// Rows with this problem.
    pub count: u64,
    /// First places: `line 7 (speed_kmh)` for CSV, `row 6 (speed_kmh)` for JSON.
    pub first: Vec<String>,
}

/// A body parsed into rows.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Rows to store (valid, or flagged invalid detector rows that name a
    /// real lane and time: the lane reported garbage, which quality needs
    /// to know).
    pub batch: ReadingBatch,
    /// Rows skipped because they cannot be attributed (unknown device,
    /// bad time, …).
    pub rejected: u64,
    /// Rows stored but flagged as not trustworthy.
    pub flagged: u64,
    /// What was wrong, by kind.
    pub problems: Vec<Problem>,
}

impl Format {
    /// The format of a body that came without a content type: JSON when it
    /// starts with `[` or `{`, else CSV.
    pub fn sniff(body: &[u8]) -> Format {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') | Some(b'{') => Format::Json,
            _ => Format::Csv,
        }
    }
}

/// A body that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// CSV header or encoding problem.
    #[error("{0}")]
    Csv(#[from] IoError),
    /// JSON not an array of objects.
    #[error("JSON body: {0}")]
    Json(String),
}

/// Parses a request body of `kind`.
pub fn parse(
    kind: ReadingKind,
    format: Format,
    body: &[u8],
    road: &RoadBook,
) -> Result<Parsed, BodyError> {
    match format {
        Format::Csv => parse_csv(kind, body, road, false),
        Format::Json => {
            let csv = json_to_csv(kind, body)?;
            parse_csv(kind, csv.as_bytes(), road, true)
        }
    }
}

fn parse_csv(
    kind: ReadingKind,
    body: &[u8],
    road: &RoadBook,
    json: bool,
) -> Result<Parsed, BodyError> {
    let name = if json {
        "request body (JSON)"
    } else {
        "request body"
    };
    let mut p = Parsed::default();
    let bad = match kind {
        ReadingKind::Obs => {
            let mut r = ObsReader::new(body, name, road)?;
            while let Some(row) = r.next_row()? {
                let o = row.value;
                let d = &road.detectors()[o.detector as usize];
                if !o.valid {
                    p.flagged += 1;
                }
                p.batch.obs.push(ObsRow {
                    seq: 0,
                    ts_ms: o.ts_ms,
                    detector: d.id.clone(),
                    lane: o.lane as i16,
                    interval_s: o.interval_s as i32,
                    volume: o.volume as i32,
                    speed_kmh: o.speed_kmh.map(f64::from),
                    // An untrustworthy row is stored without its occupancy,
                    // which is how it is recognised again on replay.
                    occupancy_pct: o.valid.then_some(o.occupancy_pct as f64),
                });
            }
            r.bad().clone()
        }
        ReadingKind::Weather => {
            let mut r = WeatherReader::new(body, name, road)?;
            while let Some(row) = r.next_row()? {
                let w = row.value;
                p.batch.weather.push(WeatherRow {
                    seq: 0,
                    ts_ms: w.ts_ms,
                    station: road.weather()[w.station as usize].id.clone(),
                    visibility_m: w.visibility_m.map(f64::from),
                    surface_temp_c: w.surface_temp_c.map(f64::from),
                    air_temp_c: w.air_temp_c.map(f64::from),
                    humidity_pct: w.humidity_pct.map(f64::from),
                    surface_state: surface_str(w.surface_state).into(),
                });
            }
            r.bad().clone()
        }
        ReadingKind::Positions => {
            let mut r = PositionReader::new(body, name)?;
            while let Some(row) = r.next_row()? {
                let v = row.value;
                p.batch.positions.push(PositionRow {
                    seq: 0,
                    ts_ms: v.ts_ms,
                    vehicle: r.vehicles.name(v.vehicle).to_string(),
                    class: class_str(v.class).into(),
                    lat: v.lat,
                    lon: v.lon,
                    speed_kmh: Some(v.speed_kmh as f64),
                    heading_deg: Some(v.heading_deg as f64),
                });
            }
            r.bad().clone()
        }
        ReadingKind::Camera => {
            let mut r = CameraReader::new(body, name, road)?;
            while let Some(row) = r.next_row()? {
                let c = row.value;
                p.batch.camera.push(CameraRow {
                    seq: 0,
                    ts_ms: c.ts_ms,
                    camera: r.cameras.name(c.camera).to_string(),
                    kind: camera_str(c.kind).into(),
                    direction: c.direction.as_str().into(),
                    stake_m: c.stake_m,
                    lane: c.lane.map(i16::from),
                    confidence: c.confidence as f64,
                });
            }
            r.bad().clone()
        }
    };
    p.rejected = bad.total() - p.flagged;
    p.problems = problems(&bad, json);
    Ok(p)
}

fn problems(bad: &BadRows, json: bool) -> Vec<Problem> {
    BadRowKind::ALL
        .into_iter()
        .filter(|&k| bad.count(k) > 0)
        .map(|k| Problem {
            kind: k.as_str().to_string(),
            count: bad.count(k),
            first: bad
                .first(k)
                .map(|pl| {
                    let at = if json {
                        format!("row {}", pl.line.saturating_sub(1))
                    } else {
                        format!("line {}", pl.line)
                    };
                    match pl.column {
                        Some(c) => format!("{at} ({c})"),
                        None => at,
                    }
                })
                .collect(),
        })
        .collect()
}

/// Lays JSON rows out as the contract's CSV. A value that cannot be a CSV
/// field (a comma, quote or line break in it; an object) fails the body,
/// naming the row and key; a key the contract does not have is an error too.
pub fn json_to_csv(kind: ReadingKind, body: &[u8]) -> Result<String, BodyError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    let rows = match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("rows") {
            Some(Value::Array(a)) if o.is_empty() => a,
            _ => {
                return Err(BodyError::Json(
                    "expected an array of rows or {\"rows\": [...]}".into(),
                ));
            }
        },
        _ => {
            return Err(BodyError::Json(
                "expected an array of rows or {\"rows\": [...]}".into(),
            ));
        }
    };
    let cols = kind.columns();
    let mut out = String::with_capacity(rows.len() * 64 + 80);
    out.push_str(&cols.join(","));
    out.push('\n');
    for (i, row) in rows.iter().enumerate() {
        let n = i + 1;
        let Value::Object(o) = row else {
            return Err(BodyError::Json(format!("row {n}: not an object")));
        };
        if let Some(k) = o.keys().find(|k| !cols.contains(&k.as_str())) {
            return Err(BodyError::Json(format!(
                "row {n}: unknown key {k:?} (expected {})",
                cols.join(", ")
            )));
        }
        for (j, c) in cols.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            match o.get(*c) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => {
                    if s.contains([',', '"', '\n', '\r']) {
                        return Err(BodyError::Json(format!(
                            "row {n}: {c}: a comma, quote or line break is not allowed in a value"
                        )));
                    }
                    out.push_str(s);
                }
                Some(Value::Number(x)) => out.push_str(&x.to_string()),
                Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                Some(_) => {
                    return Err(BodyError::Json(format!(
                        "row {n}: {c}: expected a string or number"
                    )));
                }
            }
        }
        out.push('\n');
    }
    Ok(out)
}

/// Contract spelling of a surface state.
pub fn surface_str(s: zhilu_core::SurfaceState) -> &'static str {
    use zhilu_core::SurfaceState::*;
    match s {
        Dry => "dry",
        Moist => "moist",
        Wet => "wet",
        Ice => "ice",
        Snow => "snow",
        Unknown => "",
    }
}

/// Contract spelling of a vehicle class.
pub fn class_str(c: zhilu_core::VehicleClass) -> &'static str {
    use zhilu_core::VehicleClass::*;
    match c {
        Car => "car",
        Bus => "bus",
        Truck => "truck",
        Hazmat => "hazmat",
    }
}

/// Contract spelling of a camera event kind.
pub fn camera_str(k: zhilu_core::CameraKind) -> &'static str {
    use zhilu_core::CameraKind::*;
    match k {
        StoppedVehicle => "stopped_vehicle",
        Pedestrian => "pedestrian",
        Debris => "debris",
        WrongWay => "wrong_way",
        Congestion => "congestion",
        Fire => "fire",
        Smoke => "smoke",
        PavementDistress => "pavement_distress",
    }
}
