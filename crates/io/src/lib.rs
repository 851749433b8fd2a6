//! # zhilu-io — file adapters
//!
//! Owns the replay contract's file formats: streaming readers for OBS,
//! WEATHER, POS and CAM CSV files (constant memory, every bad row counted by
//! kind with its line and column), the EVENTS/ACTIONS JSON-lines writers,
//! and the replay driver that feeds the domain core in time order.
//!
//! Must not: decide anything about traffic. It parses, validates, orders
//! and writes; the meaning lives in `zhilu-core`.

#![forbid(unsafe_code)]

pub mod badrows;
mod csvfile;
mod error;
pub mod jsonl;
pub mod readers;
pub mod replay;

pub use badrows::{BadRowKind, BadRows};
pub use error::IoError;
pub use readers::{CameraReader, Interner, ObsReader, PositionReader, Row, WeatherReader};
pub use replay::{ReplayError, ReplayPaths, ReplaySummary, load_road, replay_files};
pub use zhilu_contract::parse_time;
/// The contract's column lists (from `zhilu-contract`), by the names the readers use.
pub use zhilu_contract::{
    CAM_COLUMNS as CAM_COLS, OBS_COLUMNS as OBS_COLS, POS_COLUMNS as POS_COLS,
    WEATHER_COLUMNS as WEATHER_COLS,
};
