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
pub use csvfile::parse_time;
pub use error::IoError;
pub use readers::{
    CAM_COLS, CameraReader, Interner, OBS_COLS, ObsReader, POS_COLS, PositionReader, Row,
    WEATHER_COLS, WeatherReader,
};
pub use replay::{ReplayError, ReplayPaths, ReplaySummary, load_road, replay_files};
