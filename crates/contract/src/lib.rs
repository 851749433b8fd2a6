//! # zhilu-contract — the words at the doors (契约词汇)
//!
//! Owns the vocabulary that crosses the platform's edges, written once:
//! the replay contract's and the live API's record kinds
//! ([`ReadingKind`], [`OutputKind`]) with their column lists
//! ([`OBS_COLUMNS`] … and the header lines built from them), the spelling
//! of every enum that appears in a CSV or JSON field (`parse` + `as_str`
//! side by side: [`SurfaceState`], [`VehicleClass`], [`CameraKind`],
//! [`EventKind`], [`FaultRule`], [`CommandKind`], [`FogLightMode`],
//! [`EntryState`], [`BadRowKind`]), and the RFC 3339 times of the files
//! ([`format_time`], [`parse_time`]), and the live API's reasons as codes
//! with parameters ([`Reason`], [`ReasonCode`], [`LegalBasis`],
//! [`HealthCode`]) that a console renders in its own language. The
//! contract itself is `shared/contracts/replay-v1.md`; `docs/REPLAY.md` says what zhilu does
//! where it leaves a choice.
//!
//! Every other crate reads these names from here: the readers and writers
//! (`zhilu-io`), the simulated road (`zhilu-traffic`), the store's archives,
//! the server's ingest, and the domain core, which re-exports the enums as
//! its own types. Nothing else spells a column or an enum value.
//!
//! Must not: do I/O, read the clock, be async, or know what a value means
//! (which surface is slippery, which command is stricter — that is the
//! core's). Directions (`up`/`down`) are the road book's (`zhilu-road`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod columns;
#[macro_use]
mod spelling;
mod reason;
mod time;

pub use columns::*;
pub use reason::*;
pub use spelling::*;
pub use time::{
    TimeCache, date_string, format_time, format_time_utc, local_time_ms, midnight_ms, parse_time,
    time_string,
};
