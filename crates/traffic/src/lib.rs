//! # zhilu-traffic — the simulators of the road (仿真路段)
//!
//! Owns a macroscopic traffic simulator for a corridor described by a road
//! book: a cell transmission model (CTM, 元胞传输模型) per carriageway with
//! lane drops, interchange on- and off-ramps and capacity drop (a queue
//! discharges below capacity); stochastic demand with a daily profile;
//! probe vehicles (cars, buses, trucks, hazmat trucks) moving with the local
//! cell speed; weather fields (visibility, temperatures, surface state);
//! scripted or random episodes (incidents, fog banks, ice, hazmat
//! violations, detector faults); and the readings the road's sensors would
//! send — detector lanes, weather stations, positions, tunnel cameras — in
//! the replay contract's shapes. It obeys device commands (VSL limits, entry
//! metering and closure, de-icing, fog lights) through [`Sim::apply`].
//!
//! Also owns [`bulk`], the bulk day generator behind `zhilu gen-day`: a
//! synthetic corridor of any size from closed-form truth, streamed as
//! contract files, for the replay benchmarks and big-day tests. Both
//! simulators share the random helpers (the Poisson draw in `sim`) and
//! write through `zhilu-contract`'s columns, spellings and times.
//!
//! Must not: detect or decide anything (no platform logic — that is
//! zhilu-core's; it does not depend on the core), read the clock, spell a
//! contract column or value itself (they are `zhilu-contract`'s), or do
//! I/O except [`write_day`], which writes a simulated day as contract
//! files, and [`bulk`]'s writers, which write to the writers they are given.
//!
//! ```no_run
//! # use zhilu_traffic::*;
//! # fn demo(road: &zhilu_road::RoadBook, start_ms: i64) -> Result<(), SimError> {
//! let scenario = Scenario::demo_morning(road);
//! let mut sim = Sim::new(road, &scenario, SimConfig::default(), start_ms, 7)?;
//! sim.apply(&Command::SpeedLimit { device: "S020U".into(), kmh: Some(60) })?;
//! let out = sim.step();
//! for r in out.obs() { /* … */ }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bulk;
mod day;
mod fd;
mod layout;
mod output;
mod scenario;
mod sim;
mod truth;
mod twin;
mod weather;

pub use day::{DaySummary, write_day, write_day_with};
pub use fd::FdParams;
pub use output::{
    CAM_HEADER, CameraEvent, CameraKind, CsvFormatter, OBS_HEADER, ObsReading, Output, POS_HEADER,
    Plate, VehicleClass, VehiclePosition, WEATHER_HEADER, WeatherReading, format_time,
    local_time_ms,
};
pub use scenario::{
    Climate, DemandProfile, DetectorFault, Episode, FaultKind, FogBank, HazmatSpeeding, HazmatStop,
    IceSpell, Incident, Scenario,
};
pub use sim::{CellState, Command, EntryState, FogLightMode, Sim, SimConfig};
pub use truth::TruthRecord;
pub use twin::{
    Band, FogZone, LaneBlock, PlanOutcome, QueueSample, RunFigures, SegmentEstimate, TimeSpace,
    Twin, TwinConfig, TwinError, TwinPlan, TwinStart,
};
pub use weather::{SurfaceState, WeatherSample};
pub use zhilu_contract::{EventKind, FaultRule};

/// Why a simulation could not be built, commanded or written.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration is unusable.
    #[error("simulator config: {0}")]
    Config(String),
    /// The scenario does not fit the road.
    #[error("scenario: {0}")]
    Scenario(String),
    /// A command named a device the road book does not have (of that kind).
    #[error("unknown device `{0}`")]
    UnknownDevice(String),
    /// A command the device cannot carry out.
    #[error("device `{device}`: {message}")]
    BadCommand {
        /// Device id.
        device: String,
        /// What is wrong.
        message: String,
    },
    /// Writing an output file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}
