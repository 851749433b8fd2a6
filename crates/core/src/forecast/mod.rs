//! Foresight (交通预测): short-term forecasts of speed — and flow where
//! the data has it — for every detector station, 1 to 12 intervals
//! (5 to 60 minutes at 5-minute steps) ahead.
//!
//! Method (chosen on evidence, see `docs/FORECAST.md`): per station and
//! horizon, a Huber-loss ridge regression of the *departure from the
//! station's time-of-day profile* at the target time on
//!
//! - the station's own departures over the last `history` intervals,
//! - the departures of its spatial neighbours (top-k of an adjacency
//!   matrix, upstream/downstream along the road, or by correlation) over
//!   the last few,
//! - the network-mean departure now and three intervals ago,
//! - the *analogue days*: training days weighted by how closely their same
//!   hour matched the last one across the network, read at the target time,
//! - the profile's change from now to the target, the profile level, their
//!   products with the departures, and time-of-day harmonics;
//!
//! each station's weights shrunk towards one pooled regression. Per
//! horizon, boosted oblivious trees then correct the ridge's residuals.
//! The forecast is `profile(target) + w · features + trees(…)`.
//!
//! Missing and faulty readings (NaN, implausible values, detectors flagged
//! unusable by [`crate::quality`]) never enter as values: a missing
//! departure is carried from the previous interval, decaying towards 0
//! (i.e. towards the profile). Zero speeds are treated as missing (the
//! METR-LA convention: loop detectors report 0 when they have nothing).
//!
//! Training ([`Forecaster::train`]) builds profiles with each training day
//! left out in turn, so that departures in training are as large as on new
//! days; the update path ([`LiveForecaster::push`]) is a ring-buffer write,
//! one dot product and 30 four-comparison trees per station and horizon,
//! with no allocation.
//!
//! [`ForecastService`] (`service`) runs it live for a road book's detector
//! stations: trained from 5-minute history, fed one completed bucket at a
//! time, with a time-of-day profile or the last reading while the history
//! is short, and an empirical prediction band (`band`).
//!
//! Pure: no I/O, no clock; data time comes in as time-of-day slots and
//! bucket times.

mod analog;
mod band;
mod boost;
mod eval;
mod live;
mod metrics;
mod model;
mod neighbours;
mod profile;
mod ridge;
mod series;
pub mod service;

pub use eval::{Evaluation, HorizonReport, evaluate};
pub use live::LiveForecaster;
pub use metrics::{ErrorStats, Metrics};
pub use model::Forecaster;
pub use neighbours::{NONE, Neighbours};
pub use profile::Profile;
pub use series::Series;
pub use service::{
    ForecastService, Method, ServiceConfig, ServiceError, Station, StationSpeed, Training,
};

use std::fmt;

/// What is being forecast; decides which readings are plausible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Speed (any unit): zero, negative or above 250 counts as missing.
    Speed,
    /// Flow (vehicles per interval or per hour): negative or above 100 000 counts as missing; zero is a reading.
    Flow,
}

impl Quantity {
    /// Whether a reading can be used.
    pub fn plausible(self, v: f32) -> bool {
        match self {
            Quantity::Speed => v > 0.0 && v <= 250.0,
            Quantity::Flow => (0.0..=100_000.0).contains(&v),
        }
    }

    /// Keeps a forecast inside the quantity's range.
    pub fn clamp(self, v: f32) -> f32 {
        match self {
            Quantity::Speed => v.clamp(0.0, 250.0),
            Quantity::Flow => v.max(0.0),
        }
    }

    /// The forecast for a segment from the forecasts at its two end
    /// stations: speeds combine harmonically (equal halves of the segment
    /// travelled at each speed), flows arithmetically. NaN if either is.
    pub fn segment(self, a: f32, b: f32) -> f32 {
        match self {
            Quantity::Speed if a > 0.0 && b > 0.0 => 2.0 * a * b / (a + b),
            Quantity::Speed => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    0.0
                }
            }
            Quantity::Flow => 0.5 * (a + b),
        }
    }
}

/// How the weights of different stations relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Each station its own ridge regression, shrunk towards zero.
    PerStation,
    /// One regression for all stations.
    Pooled,
    /// Each station its own, shrunk towards the pooled weights.
    Shrunk,
}

/// Parameters of the forecaster.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastConfig {
    /// What is forecast.
    pub quantity: Quantity,
    /// Intervals per day (288 at 5 minutes).
    pub steps_per_day: usize,
    /// Intervals of history the features read (12 = one hour).
    pub history: usize,
    /// Farthest horizon in intervals (12 = 60 minutes at 5 minutes).
    pub max_horizon: usize,
    /// Recent intervals read from each neighbour.
    pub neighbour_lags: usize,
    /// Profile smoothing: slots either side averaged in.
    pub profile_halfwidth: usize,
    /// Time-of-day harmonics (sin/cos pairs).
    pub harmonics: usize,
    /// Ridge penalty per station, relative to each feature's mean square.
    pub lambda: f64,
    /// How stations share weights.
    pub pooling: Pooling,
    /// Ridge penalty of the pooled regression.
    pub pooled_lambda: f64,
    /// Per missing interval, the carried departure is multiplied by this.
    pub missing_decay: f32,
    /// Analogue days: smoothing of their readings, rows either side.
    pub analog_halfwidth: usize,
    /// Analogue days: how sharply weights fall with dissimilarity.
    pub analog_beta: f32,
    /// Training reads every `train_stride`-th origin (1 = all); for very
    /// large networks.
    pub train_stride: usize,
    /// Boosted trees on the ridge residuals per horizon (0 = none).
    pub boost_trees: usize,
    /// Depth of each tree.
    pub boost_depth: usize,
    /// Shrinkage of each tree's leaves.
    pub boost_rate: f32,
    /// Share of training rows each tree is grown on.
    pub boost_subsample: f32,
    /// Huber loss threshold (unit of the readings); 0 = squared loss.
    pub huber_delta: f64,
    /// Reweighting passes for the Huber loss.
    pub irls_iterations: usize,
}

impl Default for ForecastConfig {
    fn default() -> ForecastConfig {
        ForecastConfig {
            quantity: Quantity::Speed,
            steps_per_day: 288,
            history: 12,
            max_horizon: 12,
            neighbour_lags: 3,
            profile_halfwidth: 2,
            harmonics: 2,
            lambda: 0.1,
            pooling: Pooling::Shrunk,
            pooled_lambda: 0.001,
            missing_decay: 0.9,
            analog_halfwidth: 3,
            analog_beta: 2.0,
            train_stride: 1,
            boost_trees: 30,
            boost_depth: 4,
            boost_rate: 0.3,
            boost_subsample: 0.3,
            huber_delta: 0.5,
            irls_iterations: 2,
        }
    }
}

impl ForecastConfig {
    /// Checks the parameters are usable.
    pub fn validate(&self) -> Result<(), ForecastError> {
        let bad = |what: &'static str| Err(ForecastError::Config(what));
        if self.steps_per_day == 0 {
            return bad("steps_per_day must be at least 1");
        }
        if self.history < 4 {
            return bad("history must be at least 4 intervals");
        }
        if self.neighbour_lags > self.history {
            return bad("neighbour_lags must not exceed history");
        }
        if self.max_horizon == 0 {
            return bad("max_horizon must be at least 1");
        }
        if !(self.lambda >= 0.0 && self.pooled_lambda >= 0.0) {
            return bad("ridge penalties must be non-negative");
        }
        if !(0.0..=1.0).contains(&self.missing_decay) {
            return bad("missing_decay must be within 0..=1");
        }
        Ok(())
    }
}

/// Why a forecaster could not be built or fed.
#[derive(Debug, Clone, PartialEq)]
pub enum ForecastError {
    /// A series needs at least one station.
    NoStations,
    /// The values do not fill whole rows.
    RaggedRows {
        /// Values given.
        values: usize,
        /// Stations per row.
        stations: usize,
    },
    /// The adjacency matrix is not `stations × stations`.
    AdjacencyShape {
        /// Values given.
        values: usize,
        /// Stations.
        stations: usize,
    },
    /// Neighbour lists were built for another number of stations.
    NeighbourCount {
        /// Stations the neighbour lists cover.
        neighbours: usize,
        /// Stations in the series.
        stations: usize,
    },
    /// A pushed row does not have one reading per station.
    ReadingCount {
        /// Readings given.
        readings: usize,
        /// Stations forecast.
        stations: usize,
    },
    /// Not enough rows to train or evaluate.
    TooFewRows {
        /// Rows available.
        rows: usize,
        /// Rows needed at least.
        need: usize,
    },
    /// A horizon outside 1 ..= `max_horizon`.
    Horizon {
        /// Horizon asked for (intervals).
        steps: usize,
        /// The model's farthest horizon.
        max: usize,
    },
    /// A parameter out of range.
    Config(&'static str),
}

impl fmt::Display for ForecastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForecastError::NoStations => write!(f, "no stations"),
            ForecastError::RaggedRows { values, stations } => {
                write!(f, "{values} values do not fill rows of {stations} stations")
            }
            ForecastError::AdjacencyShape { values, stations } => write!(
                f,
                "adjacency has {values} values, expected {stations} × {stations}"
            ),
            ForecastError::NeighbourCount {
                neighbours,
                stations,
            } => write!(
                f,
                "neighbour lists cover {neighbours} stations, the series has {stations}"
            ),
            ForecastError::ReadingCount { readings, stations } => {
                write!(f, "{readings} readings for {stations} stations")
            }
            ForecastError::TooFewRows { rows, need } => {
                write!(f, "{rows} rows, need at least {need}")
            }
            ForecastError::Horizon { steps, max } => {
                write!(f, "horizon {steps} outside 1..={max}")
            }
            ForecastError::Config(what) => write!(f, "forecast config: {what}"),
        }
    }
}

impl std::error::Error for ForecastError {}

/// Time-of-day slot of an interval starting at `ts_ms` (epoch ms), for
/// intervals of `step_ms` and a local offset of `utc_offset_ms`.
pub fn slot_of(ts_ms: i64, step_ms: i64, utc_offset_ms: i64, steps_per_day: usize) -> usize {
    let local = ts_ms + utc_offset_ms;
    (local.div_euclid(step_ms.max(1)) as usize) % steps_per_day.max(1)
}
