//! Readings from the roadside "senses", already parsed and validated by an
//! adapter. Times are epoch milliseconds (UTC); ids are resolved to indices
//! of the road book (or of an interner for ids the road book does not list).

use zhilu_road::Direction;

pub use zhilu_contract::{CameraKind, SurfaceState, VehicleClass};

/// One detector lane over one interval (a row of OBS.csv).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Obs {
    /// End of the interval (epoch ms).
    pub ts_ms: i64,
    /// Detector index in the road book.
    pub detector: u32,
    /// Lane, 1 = innermost.
    pub lane: u8,
    /// Interval length (s), ≥ 1.
    pub interval_s: u16,
    /// Vehicles counted.
    pub volume: u16,
    /// Mean speed (km/h); `None` when no vehicle passed.
    pub speed_kmh: Option<f32>,
    /// Occupancy (%), 0–100.
    pub occupancy_pct: f32,
    /// False when the row named a real detector lane and time but its values
    /// were missing or impossible: the lane reported, and reported garbage.
    pub valid: bool,
}

/// A road-weather reading (a row of WEATHER.csv).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeatherObs {
    /// Time (epoch ms).
    pub ts_ms: i64,
    /// Weather-station index in the road book.
    pub station: u32,
    /// Visibility (m).
    pub visibility_m: Option<f32>,
    /// Road-surface temperature (°C).
    pub surface_temp_c: Option<f32>,
    /// Air temperature (°C).
    pub air_temp_c: Option<f32>,
    /// Relative humidity (%).
    pub humidity_pct: Option<f32>,
    /// Surface state.
    pub surface_state: SurfaceState,
}

/// A vehicle position report (a row of POS.csv, e.g. a JT/T 808 0x0200).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionObs {
    /// Time (epoch ms).
    pub ts_ms: i64,
    /// Vehicle, interned by the adapter.
    pub vehicle: u32,
    /// Class.
    pub class: VehicleClass,
    /// Latitude (degrees).
    pub lat: f64,
    /// Longitude (degrees).
    pub lon: f64,
    /// Speed (km/h).
    pub speed_kmh: f32,
    /// Heading (degrees clockwise from north).
    pub heading_deg: f32,
}

/// A camera-analytics event (a row of CAM.csv).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraObs {
    /// Time (epoch ms).
    pub ts_ms: i64,
    /// Camera, interned by the adapter.
    pub camera: u32,
    /// What was seen.
    pub kind: CameraKind,
    /// Carriageway.
    pub direction: Direction,
    /// Where (m).
    pub stake_m: f64,
    /// Lane, if the camera gives one.
    pub lane: Option<u8>,
    /// Analytics confidence, 0–1.
    pub confidence: f32,
}
