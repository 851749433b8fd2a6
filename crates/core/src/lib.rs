//! # zhilu-core — the domain core
//!
//! Owns what the platform *knows and decides*: detector data quality,
//! traffic state estimation, event detection and (from the next issue on)
//! control decisions, joined into one time-driven pipeline, [`Brain`], that
//! both `zhilu replay` and the live server run.
//!
//! Must not: read files or sockets, spawn tasks, read the wall clock, or
//! define serialized formats. Data time comes in with the readings; results
//! go out as plain values for the adapters to write.

#![forbid(unsafe_code)]

pub mod brain;
pub mod congestion;
pub mod decide;
pub mod event;
pub mod forecast;
pub mod incident;
pub mod kpi;
pub mod plans;
pub mod quality;
pub mod reading;
pub mod state;
pub mod vehicles;
pub mod weather;

pub use brain::{Brain, BrainConfig, Outputs};
pub use event::{
    Action, Command, EntryState, Event, EventDetail, EventKind, FogLightMode, LegalBasis, Reason,
    ReasonCode,
};
pub use quality::{FaultRule, Quality, QualityConfig, Recorded};
pub use reading::{
    CameraKind, CameraObs, Obs, PositionObs, SurfaceState, VehicleClass, WeatherObs,
};
pub use state::{Cell, CorridorState, DirectionState, StateConfig, StateEstimator, StationSample};
pub use zhilu_road as road;
