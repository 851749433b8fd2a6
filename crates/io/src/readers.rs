//! Streaming readers for the contract's input files. Each keeps one record
//! buffer and constant state whatever the file size (the POS and CAM
//! readers intern vehicle and camera ids: memory grows with the number of
//! distinct vehicles, never with rows). Bad rows are counted by kind with
//! their first places and never passed on as trusted data.

use std::collections::HashMap;
use std::io::Read;

use zhilu_contract::{
    CAM_COLUMNS as CAM_COLS, OBS_COLUMNS as OBS_COLS, POS_COLUMNS as POS_COLS, TimeCache,
    WEATHER_COLUMNS as WEATHER_COLS,
};
use zhilu_core::{CameraKind, CameraObs, Obs, PositionObs, SurfaceState, VehicleClass, WeatherObs};
use zhilu_road::{Direction, RoadBook, parse_stake};

use crate::badrows::{BadRowKind, BadRows};
use crate::csvfile::{CsvFile, TimeOrder, parse_f64, parse_int_signed, parse_uint};
use crate::error::IoError;

/// Interns ids the road book does not list (vehicles, cameras).
#[derive(Debug, Default, Clone)]
pub struct Interner {
    map: HashMap<Box<[u8]>, u32>,
    names: Vec<String>,
}

impl Interner {
    /// The number for an id, assigning the next one on first sight.
    pub fn intern(&mut self, id: &[u8]) -> u32 {
        if let Some(&n) = self.map.get(id) {
            return n;
        }
        let n = self.names.len() as u32;
        self.names.push(String::from_utf8_lossy(id).into_owned());
        self.map.insert(id.into(), n);
        n
    }

    /// The id of a number.
    pub fn name(&self, n: u32) -> &str {
        self.names.get(n as usize).map_or("?", String::as_str)
    }

    /// Distinct ids seen.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether none was seen.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Tolerance for rows that arrive out of order in files without an interval column (ms).
const LATE_TOLERANCE_MS: i64 = 30_000;

/// A row that passed or was distrusted, with its line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<T> {
    /// The reading.
    pub value: T,
    /// Its line in the file.
    pub line: u64,
}

/// Reader of OBS.csv.
pub struct ObsReader<R: Read> {
    csv: CsvFile<R>,
    time: TimeCache,
    ids: HashMap<Box<[u8]>, (u32, u8)>,
    last_id: Vec<u8>,
    last_det: (u32, u8),
    order: TimeOrder,
}

impl<R: Read> ObsReader<R> {
    /// Opens the stream; fails if the header lacks a column.
    pub fn new(inner: R, file: &str, road: &RoadBook) -> Result<Self, IoError> {
        let ids = road
            .detectors()
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.as_bytes().into(), (i as u32, d.lanes)))
            .collect();
        Ok(ObsReader {
            csv: CsvFile::new(inner, file, &OBS_COLS)?,
            time: TimeCache::new(),
            ids,
            last_id: Vec::with_capacity(16),
            last_det: (0, 0),
            order: TimeOrder::new(),
        })
    }

    /// Bad rows so far.
    pub fn bad(&self) -> &BadRows {
        &self.csv.bad
    }

    /// Mutable bad-row log (the pipeline adds duplicates and stale rows).
    pub fn bad_mut(&mut self) -> &mut BadRows {
        &mut self.csv.bad
    }

    /// Data rows read (good and bad).
    pub fn rows(&self) -> u64 {
        self.csv.rows
    }

    /// The next reading: valid, or flagged invalid when it names a real lane
    /// and time but its values cannot be trusted. Rows that cannot be
    /// attributed to a lane and time are counted and skipped.
    pub fn next_row(&mut self) -> Result<Option<Row<Obs>>, IoError> {
        'rows: while self.csv.next_record()? {
            let line = self.csv.line;
            macro_rules! bad {
                ($kind:expr, $col:expr) => {{
                    self.csv.bad.add($kind, line, Some(OBS_COLS[$col]));
                    continue 'rows;
                }};
            }
            let t = self.csv.field(0);
            if t.is_empty() {
                bad!(BadRowKind::MissingField, 0);
            }
            let Some(ts_ms) = self.time.parse(t) else {
                bad!(BadRowKind::BadTime, 0)
            };
            let id = self.csv.field(1);
            if id.is_empty() {
                bad!(BadRowKind::MissingField, 1);
            }
            let (detector, lanes) = if id == self.last_id.as_slice() {
                self.last_det
            } else {
                match self.ids.get(id) {
                    Some(&d) => {
                        self.last_id.clear();
                        self.last_id.extend_from_slice(id);
                        self.last_det = d;
                        d
                    }
                    None => bad!(BadRowKind::UnknownDevice, 1),
                }
            };
            let lane = self.csv.field(2);
            let lane = match parse_uint(lane) {
                _ if lane.is_empty() => bad!(BadRowKind::MissingField, 2),
                Some(l) if l >= 1 && l <= lanes as u64 => l as u8,
                Some(_) => bad!(BadRowKind::UnknownLane, 2),
                None => bad!(BadRowKind::BadNumber, 2),
            };
            let iv = self.csv.field(3);
            let interval_s = match parse_uint(iv) {
                _ if iv.is_empty() => bad!(BadRowKind::MissingField, 3),
                Some(i) if (1..=3600).contains(&i) => i as u16,
                Some(_) => bad!(BadRowKind::OutOfRange, 3),
                None => bad!(BadRowKind::BadNumber, 3),
            };
            if let Err(kind) = self.order.check(ts_ms, interval_s as i64 * 1000) {
                bad!(kind, 0);
            }

            // From here the row names a real lane and time: a problem makes it
            // an invalid reading (the lane talks, but talks garbage).
            let mut obs = Obs {
                ts_ms,
                detector,
                lane,
                interval_s,
                volume: 0,
                speed_kmh: None,
                occupancy_pct: 0.0,
                valid: true,
            };
            let flag = |kind: BadRowKind, col: usize, obs: &mut Obs, bad: &mut BadRows| {
                if obs.valid {
                    bad.add(kind, line, Some(OBS_COLS[col]));
                    obs.valid = false;
                }
            };
            let v = self.csv.field(4);
            if v.is_empty() {
                flag(BadRowKind::MissingField, 4, &mut obs, &mut self.csv.bad);
            } else {
                match parse_int_signed(v) {
                    Ok(n) if (0..=u16::MAX as i64).contains(&n) => obs.volume = n as u16,
                    Ok(_) => flag(BadRowKind::OutOfRange, 4, &mut obs, &mut self.csv.bad),
                    Err(k) => flag(k, 4, &mut obs, &mut self.csv.bad),
                }
            }
            let s = self.csv.field(5);
            if s.is_empty() {
                if obs.volume > 0 {
                    flag(BadRowKind::MissingField, 5, &mut obs, &mut self.csv.bad);
                }
            } else {
                match parse_f64(s) {
                    Some(x) if (0.0..=250.0).contains(&x) => obs.speed_kmh = Some(x as f32),
                    Some(_) => flag(BadRowKind::OutOfRange, 5, &mut obs, &mut self.csv.bad),
                    None => flag(BadRowKind::BadNumber, 5, &mut obs, &mut self.csv.bad),
                }
            }
            let o = self.csv.field(6);
            if o.is_empty() {
                flag(BadRowKind::MissingField, 6, &mut obs, &mut self.csv.bad);
            } else {
                match parse_f64(o) {
                    Some(x) if (0.0..=100.0).contains(&x) => obs.occupancy_pct = x as f32,
                    Some(_) => flag(BadRowKind::OutOfRange, 6, &mut obs, &mut self.csv.bad),
                    None => flag(BadRowKind::BadNumber, 6, &mut obs, &mut self.csv.bad),
                }
            }
            return Ok(Some(Row { value: obs, line }));
        }
        Ok(None)
    }
}

/// Reader of WEATHER.csv.
pub struct WeatherReader<R: Read> {
    csv: CsvFile<R>,
    time: TimeCache,
    ids: HashMap<Box<[u8]>, u32>,
    order: TimeOrder,
}

impl<R: Read> WeatherReader<R> {
    /// Opens the stream; fails if the header lacks a column.
    pub fn new(inner: R, file: &str, road: &RoadBook) -> Result<Self, IoError> {
        let ids = road
            .weather()
            .iter()
            .enumerate()
            .map(|(i, w)| (w.id.as_bytes().into(), i as u32))
            .collect();
        Ok(WeatherReader {
            csv: CsvFile::new(inner, file, &WEATHER_COLS)?,
            time: TimeCache::new(),
            ids,
            order: TimeOrder::new(),
        })
    }

    /// Bad rows so far.
    pub fn bad(&self) -> &BadRows {
        &self.csv.bad
    }

    /// Data rows read.
    pub fn rows(&self) -> u64 {
        self.csv.rows
    }

    /// The next reading. Empty measurement fields mean "not measured"; an
    /// impossible value is counted as a bad row and that field dropped.
    pub fn next_row(&mut self) -> Result<Option<Row<WeatherObs>>, IoError> {
        'rows: while self.csv.next_record()? {
            let line = self.csv.line;
            macro_rules! bad {
                ($kind:expr, $col:expr) => {{
                    self.csv.bad.add($kind, line, Some(WEATHER_COLS[$col]));
                    continue 'rows;
                }};
            }
            let t = self.csv.field(0);
            if t.is_empty() {
                bad!(BadRowKind::MissingField, 0);
            }
            let Some(ts_ms) = self.time.parse(t) else {
                bad!(BadRowKind::BadTime, 0)
            };
            let id = self.csv.field(1);
            if id.is_empty() {
                bad!(BadRowKind::MissingField, 1);
            }
            let Some(&station) = self.ids.get(id) else {
                bad!(BadRowKind::UnknownDevice, 1)
            };
            if let Err(kind) = self.order.check(ts_ms, LATE_TOLERANCE_MS * 2) {
                bad!(kind, 0);
            }
            let ranges: [(f64, f64); 4] =
                [(0.0, 100_000.0), (-60.0, 90.0), (-60.0, 60.0), (0.0, 100.0)];
            let mut vals = [None; 4];
            let mut flagged = false;
            for (k, (lo, hi)) in ranges.iter().enumerate() {
                let f = self.csv.field(2 + k);
                if f.is_empty() {
                    continue;
                }
                match parse_f64(f) {
                    Some(x) if x >= *lo && x <= *hi => vals[k] = Some(x as f32),
                    other => {
                        if !flagged {
                            let kind = if other.is_some() {
                                BadRowKind::OutOfRange
                            } else {
                                BadRowKind::BadNumber
                            };
                            self.csv.bad.add(kind, line, Some(WEATHER_COLS[2 + k]));
                            flagged = true;
                        }
                    }
                }
            }
            let st = self.csv.field(6);
            let surface_state = match std::str::from_utf8(st).ok().and_then(SurfaceState::parse) {
                Some(s) => s,
                None => {
                    if !flagged {
                        self.csv
                            .bad
                            .add(BadRowKind::BadValue, line, Some(WEATHER_COLS[6]));
                    }
                    SurfaceState::Unknown
                }
            };
            let value = WeatherObs {
                ts_ms,
                station,
                visibility_m: vals[0],
                surface_temp_c: vals[1],
                air_temp_c: vals[2],
                humidity_pct: vals[3],
                surface_state,
            };
            return Ok(Some(Row { value, line }));
        }
        Ok(None)
    }
}

/// Reader of POS.csv.
pub struct PositionReader<R: Read> {
    csv: CsvFile<R>,
    time: TimeCache,
    /// Vehicle ids seen.
    pub vehicles: Interner,
    order: TimeOrder,
}

impl<R: Read> PositionReader<R> {
    /// Opens the stream; fails if the header lacks a column.
    pub fn new(inner: R, file: &str) -> Result<Self, IoError> {
        Ok(PositionReader {
            csv: CsvFile::new(inner, file, &POS_COLS)?,
            time: TimeCache::new(),
            vehicles: Interner::default(),
            order: TimeOrder::new(),
        })
    }

    /// Bad rows so far.
    pub fn bad(&self) -> &BadRows {
        &self.csv.bad
    }

    /// Data rows read.
    pub fn rows(&self) -> u64 {
        self.csv.rows
    }

    /// The next valid position; bad rows are counted and skipped.
    pub fn next_row(&mut self) -> Result<Option<Row<PositionObs>>, IoError> {
        'rows: while self.csv.next_record()? {
            let line = self.csv.line;
            macro_rules! bad {
                ($kind:expr, $col:expr) => {{
                    self.csv.bad.add($kind, line, Some(POS_COLS[$col]));
                    continue 'rows;
                }};
            }
            for c in 0..7 {
                if self.csv.field(c).is_empty() {
                    bad!(BadRowKind::MissingField, c);
                }
            }
            let Some(ts_ms) = self.time.parse(self.csv.field(0)) else {
                bad!(BadRowKind::BadTime, 0)
            };
            let Some(class) = std::str::from_utf8(self.csv.field(2))
                .ok()
                .and_then(VehicleClass::parse)
            else {
                bad!(BadRowKind::BadValue, 2)
            };
            let mut num = [0.0f64; 4];
            let ranges = [(-90.0, 90.0), (-180.0, 180.0), (0.0, 250.0), (0.0, 360.0)];
            for k in 0..4 {
                match parse_f64(self.csv.field(3 + k)) {
                    Some(x) if x >= ranges[k].0 && x <= ranges[k].1 => num[k] = x,
                    Some(_) => bad!(BadRowKind::OutOfRange, 3 + k),
                    None => bad!(BadRowKind::BadNumber, 3 + k),
                }
            }
            if let Err(kind) = self.order.check(ts_ms, LATE_TOLERANCE_MS) {
                bad!(kind, 0);
            }
            let vehicle = self.vehicles.intern(self.csv.field(1));
            let value = PositionObs {
                ts_ms,
                vehicle,
                class,
                lat: num[0],
                lon: num[1],
                speed_kmh: num[2] as f32,
                heading_deg: (num[3] % 360.0) as f32,
            };
            return Ok(Some(Row { value, line }));
        }
        Ok(None)
    }
}

/// Reader of CAM.csv.
pub struct CameraReader<R: Read> {
    csv: CsvFile<R>,
    time: TimeCache,
    /// Camera ids seen.
    pub cameras: Interner,
    order: TimeOrder,
    road_start_m: f64,
    road_end_m: f64,
}

impl<R: Read> CameraReader<R> {
    /// Opens the stream; fails if the header lacks a column.
    pub fn new(inner: R, file: &str, road: &RoadBook) -> Result<Self, IoError> {
        Ok(CameraReader {
            csv: CsvFile::new(inner, file, &CAM_COLS)?,
            time: TimeCache::new(),
            cameras: Interner::default(),
            order: TimeOrder::new(),
            road_start_m: road.geometry().start_m(),
            road_end_m: road.geometry().end_m(),
        })
    }

    /// Bad rows so far.
    pub fn bad(&self) -> &BadRows {
        &self.csv.bad
    }

    /// Data rows read.
    pub fn rows(&self) -> u64 {
        self.csv.rows
    }

    /// The next valid camera event; bad rows are counted and skipped.
    pub fn next_row(&mut self) -> Result<Option<Row<CameraObs>>, IoError> {
        'rows: while self.csv.next_record()? {
            let line = self.csv.line;
            macro_rules! bad {
                ($kind:expr, $col:expr) => {{
                    self.csv.bad.add($kind, line, Some(CAM_COLS[$col]));
                    continue 'rows;
                }};
            }
            for c in [0, 1, 2, 3, 4, 6] {
                if self.csv.field(c).is_empty() {
                    bad!(BadRowKind::MissingField, c);
                }
            }
            let Some(ts_ms) = self.time.parse(self.csv.field(0)) else {
                bad!(BadRowKind::BadTime, 0)
            };
            let Some(kind) = std::str::from_utf8(self.csv.field(2))
                .ok()
                .and_then(CameraKind::parse)
            else {
                bad!(BadRowKind::BadValue, 2)
            };
            let Some(direction) = std::str::from_utf8(self.csv.field(3))
                .ok()
                .and_then(Direction::parse)
            else {
                bad!(BadRowKind::BadValue, 3)
            };
            let stake_m = match std::str::from_utf8(self.csv.field(4)).ok().map(parse_stake) {
                Some(Ok(s)) if s >= self.road_start_m && s <= self.road_end_m => s,
                Some(Ok(_)) => bad!(BadRowKind::OutOfRange, 4),
                _ => bad!(BadRowKind::BadNumber, 4),
            };
            let lane_f = self.csv.field(5);
            let lane = if lane_f.is_empty() {
                None
            } else {
                match parse_uint(lane_f) {
                    Some(l) if (1..=8).contains(&l) => Some(l as u8),
                    Some(_) => bad!(BadRowKind::UnknownLane, 5),
                    None => bad!(BadRowKind::BadNumber, 5),
                }
            };
            let confidence = match parse_f64(self.csv.field(6)) {
                Some(c) if (0.0..=1.0).contains(&c) => c as f32,
                Some(_) => bad!(BadRowKind::OutOfRange, 6),
                None => bad!(BadRowKind::BadNumber, 6),
            };
            if let Err(kind) = self.order.check(ts_ms, LATE_TOLERANCE_MS) {
                bad!(kind, 0);
            }
            let camera = self.cameras.intern(self.csv.field(1));
            let value = CameraObs {
                ts_ms,
                camera,
                kind,
                direction,
                stake_m,
                lane,
                confidence,
            };
            return Ok(Some(Row { value, line }));
        }
        Ok(None)
    }
}
