//! Live forecasts (issue 8, 交通预测): every detector station's speed 5 to
//! 60 minutes ahead, with a prediction band, for `GET /api/forecast` and the
//! console's forecast band and predicted time–space picture.
//!
//! Two parts:
//!
//! - [`ForecastService`] — synchronous, no I/O: trained from the store's
//!   5-minute station history ([`ForecastService::train`]), fed one completed
//!   5-minute bucket at a time ([`ForecastService::observe`]), read as a
//!   serialisable [`ForecastSnapshot`] ([`ForecastService::snapshot`]).
//! - [`run`] — the async driver: loads the history, trains in
//!   `spawn_blocking`, follows the engine's data clock, reads each completed
//!   bucket from the store, and publishes the snapshot.
//!
//! What is used (the snapshot's `method`):
//!
//! - `"model"` — `zhilu_core::forecast` (profile departures, neighbours
//!   along the road, analogue days, boosted trees), when the stored history
//!   covers at least [`ForecastConfig::min_model_days`] days (default 3: the
//!   model's leave-one-day-out profiles and analogue days need several days
//!   to mean anything; with one or two it is no better than the profile).
//! - `"profile"` — with less history: each station's time-of-day mean
//!   (±10 minutes smoothing), plus the current departure from it decaying by
//!   [`ForecastConfig::profile_decay`] per step; the profile keeps learning
//!   from every observed bucket. Where the profile has no value for a slot,
//!   the last reading is used.
//! - `"persistence"` — with no history at all: the last reading.
//!
//! The band (`lower_kmh` … `upper_kmh`) is an empirical prediction interval:
//! the [`ForecastConfig::band_lower`] and [`ForecastConfig::band_upper`]
//! quantiles (default 10 % and 90 %) of the errors (realised − forecast) the
//! service made for this station at this horizon in the same regime, over
//! its last [`ForecastConfig::band_window`] such errors, added to the
//! forecast. Two regimes: *slow* when the forecast or the reading it starts
//! from is below 80 % of the station's median speed in the history
//! (congestion ahead, in progress or clearing), *free* otherwise. Until a
//! station has [`ForecastConfig::band_min_samples`] errors in a regime and
//! horizon, all stations' errors there are used. Every error is out of
//! sample: first from the held-out last part of the history (the model is
//! trained without it), then from live forecasts as the realised values
//! arrive. About 80 % of realised values fall inside the band on average,
//! not in every situation: within a regime it does not know whether a
//! queue is about to form.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zhilu_core::forecast::{self as core_fc, Forecaster, LiveForecaster, Neighbours, Quantity};
use zhilu_road::RoadBook;
use zhilu_store::{StationBucket, Store};

use crate::engine::Snapshot;

/// Length of one forecast interval (ms): the store's 5-minute buckets.
pub const STEP_MS: i64 = 300_000;
/// Intervals per day.
pub const STEPS_PER_DAY: usize = 288;
/// Horizons forecast: 1..=12 intervals, 5 to 60 minutes.
pub const HORIZONS: usize = 12;
/// Neighbour places per station along the road (upstream, downstream, …).
const NEIGHBOURS: usize = 4;

/// Settings of the live forecasts (a `[forecast]` section of the server
/// configuration). Data time everywhere: in `zhilu demo` it runs faster
/// than wall time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {
    /// Whether the server runs forecasts at all (read by whoever spawns
    /// [`run`]; `run` itself does not look at it).
    pub enabled: bool,
    /// History loaded for training (days before the data clock).
    pub history_days: f64,
    /// Days with readings needed before the model is trained; below, the
    /// time-of-day profile is used.
    pub min_model_days: f64,
    /// The last part of the history held out of training to calibrate the
    /// band (days; at most a quarter of the history for the model, half for
    /// the profile).
    pub calibration_days: f64,
    /// Lower quantile of the forecast errors that makes the band's lower edge.
    pub band_lower: f64,
    /// Upper quantile of the forecast errors that makes the band's upper edge.
    pub band_upper: f64,
    /// Errors kept per regime, station and horizon (576 = two days of
    /// 5-minute steps).
    pub band_window: usize,
    /// Errors a station needs at a horizon before its own band is used
    /// (before, all stations' errors at that horizon).
    pub band_min_samples: usize,
    /// How often the data clock is looked at (wall ms).
    pub poll_ms: u64,
    /// A bucket is read once the data clock is this far past its end (s),
    /// so that readings of its last seconds are stored.
    pub grace_s: f64,
    /// Retraining interval when the model runs (data-time hours; 0 = never).
    pub retrain_hours: f64,
    /// Retraining interval while on the profile or persistence, so that the
    /// model takes over once enough history is stored (data-time hours).
    pub fallback_retrain_hours: f64,
    /// Training reads at most about this many station-intervals (a stride
    /// over origins above it): bounds the training time.
    pub max_train_samples: usize,
    /// Boosted trees per horizon in the model (0 = the ridge alone).
    pub trees: usize,
    /// Profile method: the current departure from the profile is carried
    /// ahead multiplied by this per 5-minute step.
    pub profile_decay: f32,
    /// At most this many buckets are replayed when the clock jumped ahead;
    /// older ones are skipped (counted as missing).
    pub max_catchup_buckets: usize,
}

impl Default for ForecastConfig {
    fn default() -> ForecastConfig {
        ForecastConfig {
            enabled: true,
            history_days: 14.0,
            min_model_days: 3.0,
            calibration_days: 1.0,
            band_lower: 0.1,
            band_upper: 0.9,
            band_window: 576,
            band_min_samples: 30,
            poll_ms: 1000,
            grace_s: 30.0,
            retrain_hours: 24.0,
            fallback_retrain_hours: 1.0,
            max_train_samples: 300_000,
            trees: 30,
            profile_decay: 0.9,
            max_catchup_buckets: 288,
        }
    }
}

/// Why a forecast setting or call was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// A setting out of range.
    #[error("forecast config: {0}")]
    Config(&'static str),
    /// A bucket at or before the last one observed.
    #[error("bucket {bucket_ms} is not after the last observed bucket (ending {issued_ms})")]
    Stale {
        /// Start of the bucket offered.
        bucket_ms: i64,
        /// End of the last bucket observed.
        issued_ms: i64,
    },
}

impl ForecastConfig {
    /// Checks the settings are usable; an error's message starts with the
    /// name of the setting it is about.
    pub fn validate(&self) -> Result<(), ForecastError> {
        let bad = |w| Err(ForecastError::Config(w));
        if !(self.history_days.is_finite() && self.history_days > 0.0) {
            return bad("history_days must be positive");
        }
        if !(self.min_model_days.is_finite() && self.min_model_days >= 1.0) {
            return bad("min_model_days must be at least 1");
        }
        if !(self.calibration_days.is_finite() && self.calibration_days >= 0.0) {
            return bad("calibration_days must not be negative");
        }
        if !(0.0..1.0).contains(&self.band_lower) {
            return bad("band_lower must be within 0..1");
        }
        if !(self.band_upper > self.band_lower && self.band_upper <= 1.0) {
            return bad("band_upper must be above band_lower and at most 1");
        }
        if self.band_window == 0 {
            return bad("band_window must be at least 1");
        }
        if self.band_min_samples == 0 {
            return bad("band_min_samples must be at least 1");
        }
        if self.poll_ms == 0 {
            return bad("poll_ms must be at least 1");
        }
        if !(self.grace_s.is_finite() && self.grace_s >= 0.0) {
            return bad("grace_s must not be negative");
        }
        if !(self.retrain_hours.is_finite() && self.retrain_hours >= 0.0) {
            return bad("retrain_hours must not be negative");
        }
        if !(self.fallback_retrain_hours.is_finite() && self.fallback_retrain_hours >= 0.0) {
            return bad("fallback_retrain_hours must not be negative");
        }
        if self.max_train_samples == 0 {
            return bad("max_train_samples must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.profile_decay) {
            return bad("profile_decay must be within 0..=1");
        }
        Ok(())
    }
}

/// Which forecaster the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The trained `zhilu_core::forecast` model.
    Model,
    /// Time-of-day profile plus a decaying current departure.
    Profile,
    /// The last reading.
    Persistence,
}

impl Method {
    /// `"model"`, `"profile"` or `"persistence"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Model => "model",
            Method::Profile => "profile",
            Method::Persistence => "persistence",
        }
    }
}

/// One station's forecast. Speeds in km/h, rounded to 0.1; `null` where
/// there is none (a station never heard, or no band yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StationForecast {
    /// Detector station id.
    pub detector: String,
    /// `up` / `down`.
    pub direction: String,
    /// Stake (m).
    pub stake_m: f64,
    /// Speed of the last observed bucket (`null`: no reading in it).
    pub last_speed_kmh: Option<f64>,
    /// Forecast per horizon (5, 10, … 60 minutes).
    pub speed_kmh: Vec<Option<f64>>,
    /// Band's lower edge per horizon.
    pub lower_kmh: Vec<Option<f64>>,
    /// Band's upper edge per horizon.
    pub upper_kmh: Vec<Option<f64>>,
}

/// The forecast for the segment between two consecutive stations of a
/// direction: the harmonic mean of its end stations' forecasts (equal halves
/// travelled at each speed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SegmentForecast {
    /// `up` / `down`.
    pub direction: String,
    /// Upstream station id.
    pub from: String,
    /// Downstream station id.
    pub to: String,
    /// Stake of the upstream station (m).
    pub from_stake_m: f64,
    /// Stake of the downstream station (m).
    pub to_stake_m: f64,
    /// Forecast per horizon (km/h).
    pub speed_kmh: Vec<Option<f64>>,
}

/// Everything `GET /api/forecast` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ForecastSnapshot {
    /// End of the last observed 5-minute bucket (data time, epoch ms); the
    /// forecast at horizon `m` minutes is the mean speed over the 5 minutes
    /// ending at `issued_ms + m·60 000`. `null` before any bucket.
    pub issued_ms: Option<i64>,
    /// Length of one forecast interval (300 s).
    pub step_s: u32,
    /// Horizons (minutes): 5, 10, … 60.
    pub horizons: Vec<u32>,
    /// `model`, `profile` or `persistence`.
    pub method: Method,
    /// The history used ended here (data time, epoch ms).
    pub trained_until_ms: i64,
    /// Days of the history that had readings.
    pub history_days: f64,
    /// Lower quantile of the errors behind `lower_kmh`.
    pub band_lower_q: f64,
    /// Upper quantile of the errors behind `upper_kmh`.
    pub band_upper_q: f64,
    /// Every detector station of the road book, in its order.
    pub stations: Vec<StationForecast>,
    /// Segments between consecutive stations of each direction, upstream
    /// first.
    pub segments: Vec<SegmentForecast>,
}

/// The forecaster behind a method.
#[derive(Debug)]
enum Predictor {
    Model(Box<LiveForecaster>),
    Profile(OnlineProfile),
    Persistence,
}

/// Time-of-day profile learned online: sums and counts per station and slot.
#[derive(Debug, Clone)]
struct OnlineProfile {
    sums: Vec<f64>,
    counts: Vec<u32>,
    /// Departure from the profile carried per station.
    departure: Vec<f32>,
    decay: f32,
}

/// Slots either side averaged into a profile value (±10 minutes).
const PROFILE_HALFWIDTH: usize = 2;

impl OnlineProfile {
    fn new(stations: usize, decay: f32) -> OnlineProfile {
        OnlineProfile {
            sums: vec![0.0; stations * STEPS_PER_DAY],
            counts: vec![0; stations * STEPS_PER_DAY],
            departure: vec![0.0; stations],
            decay,
        }
    }

    fn add(&mut self, slot: usize, readings: &[f32]) {
        for (s, &v) in readings.iter().enumerate() {
            if v.is_finite() {
                let i = s * STEPS_PER_DAY + slot % STEPS_PER_DAY;
                self.sums[i] += f64::from(v);
                self.counts[i] += 1;
            }
        }
    }

    /// Smoothed profile value (NaN: no reading near this slot yet).
    fn at(&self, station: usize, slot: usize) -> f32 {
        let base = station * STEPS_PER_DAY;
        let (mut sum, mut cnt) = (0.0f64, 0u32);
        for k in 0..=2 * PROFILE_HALFWIDTH {
            let j = (slot + STEPS_PER_DAY + k - PROFILE_HALFWIDTH) % STEPS_PER_DAY;
            sum += self.sums[base + j];
            cnt += self.counts[base + j];
        }
        if cnt > 0 {
            (sum / f64::from(cnt)) as f32
        } else {
            f32::NAN
        }
    }
}

/// A forecast counts as "slow" — the band's second regime — when it, or the
/// reading it starts from, is below this share of the station's median
/// speed in the history: congestion ahead, in progress or clearing, where
/// errors are larger than in free flow.
const SLOW_SHARE: f32 = 0.8;

/// Band regimes: free flow (0) and slow (1).
const REGIMES: usize = 2;

/// The last `cap` values added, in arrival order (a ring) and sorted, so
/// that quantiles are a look-up: adding costs two binary searches and two
/// moves of at most `cap` values.
#[derive(Debug, Clone)]
struct Window {
    ring: Vec<f32>,
    sorted: Vec<f32>,
    head: usize,
}

impl Window {
    fn new(cap: usize) -> Window {
        Window {
            ring: Vec::with_capacity(cap),
            sorted: Vec::with_capacity(cap),
            head: 0,
        }
    }

    fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Adds a finite value, dropping the oldest once full.
    fn add(&mut self, v: f32, cap: usize) {
        if self.ring.len() < cap {
            self.ring.push(v);
        } else {
            let old = std::mem::replace(&mut self.ring[self.head], v);
            self.head = (self.head + 1) % cap;
            let at = self.sorted.partition_point(|x| x.total_cmp(&old).is_lt());
            if at < self.sorted.len() {
                self.sorted.remove(at);
            }
        }
        let at = self.sorted.partition_point(|x| x.total_cmp(&v).is_le());
        self.sorted.insert(at, v);
    }

    /// The `lo` and `hi` quantiles (nearest rank; NaN when empty).
    fn quantiles(&self, lo: f64, hi: f64) -> (f32, f32) {
        let m = self.sorted.len();
        if m == 0 {
            return (f32::NAN, f32::NAN);
        }
        let rank = |q: f64| ((q * (m - 1) as f64).round() as usize).min(m - 1);
        (self.sorted[rank(lo)], self.sorted[rank(hi)])
    }
}

/// Recent out-of-sample errors per regime, station and horizon, and the
/// band's offsets computed from them.
#[derive(Debug, Clone)]
struct Band {
    stations: usize,
    cap: usize,
    pooled_cap: usize,
    lo_q: f64,
    hi_q: f64,
    min_samples: usize,
    /// regimes × stations × horizons windows of errors.
    cells: Vec<Window>,
    /// Per regime and horizon, all stations' errors.
    pooled: Vec<Window>,
    /// Offsets (regimes × stations × horizons; NaN = no band).
    lower: Vec<f32>,
    upper: Vec<f32>,
}

impl Band {
    fn new(stations: usize, cfg: &ForecastConfig) -> Band {
        let cap = cfg.band_window.max(1);
        let pooled_cap = (cap * 4).max(1024);
        let cells = REGIMES * stations * HORIZONS;
        Band {
            stations,
            cap,
            pooled_cap,
            lo_q: cfg.band_lower,
            hi_q: cfg.band_upper,
            min_samples: cfg.band_min_samples.max(1),
            cells: vec![Window::new(0); cells],
            pooled: vec![Window::new(0); REGIMES * HORIZONS],
            lower: vec![f32::NAN; cells],
            upper: vec![f32::NAN; cells],
        }
    }

    /// Cell of a regime, station and horizon (1-based).
    fn cell(&self, regime: usize, station: usize, h: usize) -> usize {
        (regime * self.stations + station) * HORIZONS + h - 1
    }

    /// Records `realised − forecast` (finite) of `station` at horizon `h`
    /// (1-based) for a forecast of `regime`.
    fn add(&mut self, regime: usize, station: usize, h: usize, err: f32) {
        let c = self.cell(regime, station, h);
        self.cells[c].add(err, self.cap);
        self.pooled[regime * HORIZONS + h - 1].add(err, self.pooled_cap);
    }

    /// Recomputes the offsets: a cell's own errors once it has
    /// `min_samples`, else all stations' of its regime and horizon, else
    /// those of the other regime.
    fn recompute(&mut self) {
        let (lo_q, hi_q, min) = (self.lo_q, self.hi_q, self.min_samples);
        let pooled: Vec<(f32, f32)> = self
            .pooled
            .iter()
            .map(|w| {
                if w.len() >= min {
                    w.quantiles(lo_q, hi_q)
                } else {
                    (f32::NAN, f32::NAN)
                }
            })
            .collect();
        let per_regime = self.stations * HORIZONS;
        for (c, w) in self.cells.iter().enumerate() {
            let (lo, hi) = if w.len() >= min {
                w.quantiles(lo_q, hi_q)
            } else {
                let (r, h) = (c / per_regime, c % HORIZONS);
                let own = pooled[r * HORIZONS + h];
                if own.0.is_nan() {
                    pooled[(1 - r) * HORIZONS + h]
                } else {
                    own
                }
            };
            self.lower[c] = lo;
            self.upper[c] = hi;
        }
    }
}

/// Forecasts issued after one bucket, awaiting their realised values.
#[derive(Debug, Clone, Default)]
struct Issued {
    bucket_ms: i64,
    forecasts: Vec<f32>,
    regimes: Vec<u8>,
}

/// Live forecasts for every detector station of a road book: trained from
/// stored history, fed one completed 5-minute bucket at a time.
#[derive(Debug)]
pub struct ForecastService {
    method: Method,
    predictor: Predictor,
    ids: Vec<String>,
    directions: Vec<&'static str>,
    stakes: Vec<f64>,
    index: HashMap<String, usize>,
    /// Consecutive station pairs per direction.
    segments: Vec<(usize, usize)>,
    tz_ms: i64,
    band_q: (f64, f64),
    trained_until_ms: i64,
    history_days: f64,
    /// Wall time training took (ms).
    train_wall_ms: u64,
    /// Start of the last observed bucket.
    last_bucket_ms: Option<i64>,
    /// Reading of the last observed bucket per station (NaN: none).
    current: Vec<f32>,
    /// Last usable reading per station (NaN: none yet).
    last: Vec<f32>,
    /// Whether a station has ever had a reading (in the history or live).
    heard: Vec<bool>,
    /// Forecasts, stations × horizons (NaN: none).
    forecasts: Vec<f32>,
    /// Forecasts issued after each of the last `HORIZONS` buckets, awaiting
    /// their realised values: (bucket start, stations × horizons).
    /// (bucket start, stations × horizons forecasts, their band regimes).
    issued: VecDeque<Issued>,
    /// Median speed per station in the training history (NaN: none).
    free_speed: Vec<f32>,
    band: Band,
    readings: Vec<f32>,
    usable: Vec<bool>,
}

impl ForecastService {
    /// Trains on the stored 5-minute `history` (any order; buckets of
    /// [`STEP_MS`]) up to data time `now_ms`: buckets ending after `now_ms`
    /// or starting more than [`ForecastConfig::history_days`] before it are
    /// ignored, as are detectors not in the road book.
    ///
    /// With at least [`ForecastConfig::min_model_days`] days that have
    /// readings, the model is trained on all but the last
    /// [`ForecastConfig::calibration_days`] (at most a quarter), which are
    /// then replayed to calibrate the band and warm the forecaster up to
    /// `now_ms`. With less, a time-of-day profile is built the same way;
    /// with none, the service runs on persistence. If training fails, the
    /// profile is used (logged). An invalid `cfg` is replaced by the defaults
    /// (logged).
    pub fn train(
        road: &RoadBook,
        history: &[StationBucket],
        now_ms: i64,
        cfg: &ForecastConfig,
    ) -> ForecastService {
        let started = Instant::now();
        let cfg = match cfg.validate() {
            Ok(()) => cfg.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "forecast: invalid settings, using the defaults");
                ForecastConfig::default()
            }
        };
        let dets = road.detectors();
        let n = dets.len();
        let index: HashMap<String, usize> = dets
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        let mut segments = Vec::new();
        let mut chains = Vec::new();
        for dir in zhilu_road::Direction::ALL {
            let chain: Vec<usize> = road.stations(dir).iter().map(|&i| i as usize).collect();
            segments.extend(chain.windows(2).map(|w| (w[0], w[1])));
            chains.push(chain);
        }
        let mut svc = ForecastService {
            method: Method::Persistence,
            predictor: Predictor::Persistence,
            ids: dets.iter().map(|d| d.id.clone()).collect(),
            directions: dets.iter().map(|d| d.direction.as_str()).collect(),
            stakes: dets.iter().map(|d| d.stake_m).collect(),
            index,
            segments,
            tz_ms: i64::from(road.tz_offset_s()) * 1000,
            band_q: (cfg.band_lower, cfg.band_upper),
            trained_until_ms: now_ms.div_euclid(STEP_MS) * STEP_MS,
            history_days: 0.0,
            train_wall_ms: 0,
            last_bucket_ms: None,
            current: vec![f32::NAN; n],
            last: vec![f32::NAN; n],
            heard: vec![false; n],
            forecasts: vec![f32::NAN; n * HORIZONS],
            issued: VecDeque::with_capacity(HORIZONS + 1),
            free_speed: vec![f32::NAN; n],
            band: Band::new(n, &cfg),
            readings: vec![f32::NAN; n],
            usable: vec![false; n],
        };
        if n == 0 {
            return svc;
        }

        // The wide table: rows of 5-minute buckets up to `end`, NaN = missing.
        let end = svc.trained_until_ms;
        let window_rows = ((cfg.history_days * STEPS_PER_DAY as f64).ceil() as i64).max(1);
        let earliest = history
            .iter()
            .map(|b| b.bucket_ms.div_euclid(STEP_MS) * STEP_MS)
            .filter(|&b| b < end)
            .min()
            .unwrap_or(end);
        let start = earliest.max(end - window_rows * STEP_MS);
        let rows = ((end - start) / STEP_MS).max(0) as usize;
        let mut table = vec![f32::NAN; rows * n];
        for b in history {
            let bucket = b.bucket_ms.div_euclid(STEP_MS) * STEP_MS;
            if bucket < start || bucket >= end {
                continue;
            }
            let (Some(&s), Some(v)) = (svc.index.get(&b.detector), b.speed_kmh) else {
                continue;
            };
            let v = v as f32;
            if Quantity::Speed.plausible(v) {
                table[((bucket - start) / STEP_MS) as usize * n + s] = v;
            }
        }
        let covered = (0..rows)
            .filter(|&r| table[r * n..(r + 1) * n].iter().any(|v| v.is_finite()))
            .count();
        svc.history_days = covered as f64 / STEPS_PER_DAY as f64;
        for r in 0..rows {
            for (s, v) in table[r * n..(r + 1) * n].iter().enumerate() {
                svc.heard[s] |= v.is_finite();
            }
        }
        if covered == 0 {
            svc.train_wall_ms = started.elapsed().as_millis() as u64;
            return svc;
        }
        let mut col = Vec::with_capacity(rows);
        for s in 0..n {
            col.clear();
            col.extend(
                (0..rows)
                    .map(|r| table[r * n + s])
                    .filter(|v| v.is_finite()),
            );
            if !col.is_empty() {
                let mid = col.len() / 2;
                let (_, &mut m, _) = col.select_nth_unstable_by(mid, f32::total_cmp);
                svc.free_speed[s] = m;
            }
        }
        let cal_rows = (cfg.calibration_days * STEPS_PER_DAY as f64).round() as usize;
        let slot0 = core_fc::slot_of(start, STEP_MS, svc.tz_ms, STEPS_PER_DAY);

        if svc.history_days >= cfg.min_model_days {
            let cal_start = rows - cal_rows.min(rows / 4);
            let stride = (n * cal_start).div_ceil(cfg.max_train_samples).max(1);
            let mcfg = core_fc::ForecastConfig {
                train_stride: stride,
                boost_trees: cfg.trees,
                max_horizon: HORIZONS,
                steps_per_day: STEPS_PER_DAY,
                ..core_fc::ForecastConfig::default()
            };
            let warm = mcfg.history;
            let nb = Neighbours::along_road(n, &chains, NEIGHBOURS);
            let trained = core_fc::Series::new(n, table.clone(), slot0 as u32, Quantity::Speed)
                .and_then(|series| Forecaster::train(&series, cal_start, nb, mcfg));
            match trained {
                Ok(model) => {
                    svc.method = Method::Model;
                    svc.predictor = Predictor::Model(Box::new(LiveForecaster::new(model)));
                    let from = cal_start.saturating_sub(warm);
                    svc.replay(&table, start, from, rows, cal_start);
                    tracing::info!(
                        stations = n,
                        days = svc.history_days,
                        train_rows = cal_start,
                        stride,
                        "forecast: model trained"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "forecast: training failed, using the profile");
                }
            }
        }
        if svc.method != Method::Model {
            let cal_start = rows - cal_rows.min(rows / 2);
            let mut profile = OnlineProfile::new(n, cfg.profile_decay);
            for r in 0..cal_start {
                let slot = core_fc::slot_of(start + r as i64 * STEP_MS, STEP_MS, svc.tz_ms, 288);
                profile.add(slot, &table[r * n..(r + 1) * n]);
            }
            svc.method = Method::Profile;
            svc.predictor = Predictor::Profile(profile);
            svc.replay(&table, start, cal_start, rows, cal_start);
        }
        svc.band.recompute();
        svc.train_wall_ms = started.elapsed().as_millis() as u64;
        svc
    }

    /// Feeds rows `from..to` of the wide table; errors are recorded for
    /// realised values in rows from `record_from` on.
    fn replay(&mut self, table: &[f32], start: i64, from: usize, to: usize, record_from: usize) {
        let n = self.ids.len();
        for r in from..to {
            self.readings.copy_from_slice(&table[r * n..(r + 1) * n]);
            self.step(start + r as i64 * STEP_MS, r >= record_from, false);
        }
    }

    /// Takes the completed 5-minute bucket starting at `bucket_ms` (rows of
    /// other buckets and of unknown detectors are ignored; a station without
    /// a row, or without a plausible speed, counts as missing) and updates
    /// every forecast and band. Buckets must come in time order; skipped
    /// buckets count as missing.
    pub fn observe(&mut self, bucket_ms: i64, rows: &[StationBucket]) -> Result<(), ForecastError> {
        let bucket = bucket_ms.div_euclid(STEP_MS) * STEP_MS;
        if let Some(prev) = self.last_bucket_ms
            && bucket <= prev
        {
            return Err(ForecastError::Stale {
                bucket_ms,
                issued_ms: prev + STEP_MS,
            });
        }
        self.readings.fill(f32::NAN);
        for r in rows {
            if r.bucket_ms.div_euclid(STEP_MS) * STEP_MS != bucket {
                continue;
            }
            if let (Some(&s), Some(v)) = (self.index.get(&r.detector), r.speed_kmh) {
                self.readings[s] = v as f32;
            }
        }
        self.step(bucket, true, true);
        Ok(())
    }

    /// One bucket: errors of earlier forecasts, the predictor, new forecasts.
    fn step(&mut self, bucket: i64, record: bool, recompute_band: bool) {
        let n = self.ids.len();
        for (v, u) in self.readings.iter_mut().zip(self.usable.iter_mut()) {
            *u = Quantity::Speed.plausible(*v);
            if !*u {
                *v = f32::NAN;
            }
        }
        // Errors of the forecasts that targeted this bucket.
        self.issued
            .retain(|i| bucket - i.bucket_ms <= HORIZONS as i64 * STEP_MS);
        if record {
            for i in &self.issued {
                let h = ((bucket - i.bucket_ms) / STEP_MS) as usize;
                if !(1..=HORIZONS).contains(&h) {
                    continue;
                }
                for s in 0..n {
                    let c = s * HORIZONS + h - 1;
                    let (y, p) = (self.readings[s], i.forecasts[c]);
                    if y.is_finite() && p.is_finite() {
                        self.band.add(usize::from(i.regimes[c]), s, h, y - p);
                    }
                }
            }
        }
        let gap = self
            .last_bucket_ms
            .map_or(1, |p| ((bucket - p) / STEP_MS).max(1)) as i32;
        let slot = core_fc::slot_of(bucket, STEP_MS, self.tz_ms, STEPS_PER_DAY);
        for s in 0..n {
            let v = self.readings[s];
            self.current[s] = v;
            if v.is_finite() {
                self.last[s] = v;
                self.heard[s] = true;
            }
        }
        match &mut self.predictor {
            Predictor::Model(live) => {
                if let Err(e) = live.push_flagged(slot, &self.readings, Some(&self.usable)) {
                    tracing::warn!(error = %e, "forecast: model update failed");
                }
                for s in 0..n {
                    let f = live.forecasts(s);
                    for h in 0..HORIZONS {
                        self.forecasts[s * HORIZONS + h] = if self.heard[s] {
                            f.get(h).copied().unwrap_or(f32::NAN)
                        } else {
                            f32::NAN
                        };
                    }
                }
            }
            Predictor::Profile(p) => {
                let carry = p.decay.powi(gap);
                for s in 0..n {
                    let (v, p0) = (self.readings[s], p.at(s, slot));
                    p.departure[s] = if v.is_finite() && p0.is_finite() {
                        v - p0
                    } else if v.is_finite() {
                        0.0
                    } else {
                        p.departure[s] * carry
                    };
                    let mut k = 1.0f32;
                    for h in 1..=HORIZONS {
                        k *= p.decay;
                        let ph = p.at(s, slot + h);
                        self.forecasts[s * HORIZONS + h - 1] = if ph.is_finite() {
                            Quantity::Speed.clamp(ph + k * p.departure[s])
                        } else {
                            self.last[s]
                        };
                    }
                }
                p.add(slot, &self.readings);
            }
            Predictor::Persistence => {
                for s in 0..n {
                    self.forecasts[s * HORIZONS..(s + 1) * HORIZONS].fill(self.last[s]);
                }
            }
        }
        let mut buf = if self.issued.len() >= HORIZONS {
            self.issued.pop_front().unwrap_or_default()
        } else {
            Issued::default()
        };
        buf.bucket_ms = bucket;
        buf.forecasts.clear();
        buf.forecasts.extend_from_slice(&self.forecasts);
        buf.regimes.clear();
        for s in 0..n {
            for h in 0..HORIZONS {
                let r = self.regime(s, self.forecasts[s * HORIZONS + h]);
                buf.regimes.push(r as u8);
            }
        }
        self.issued.push_back(buf);
        self.last_bucket_ms = Some(bucket);
        if recompute_band {
            self.band.recompute();
        }
    }

    /// Which forecaster runs.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Start of the next bucket to observe (`None` before any).
    pub fn next_bucket_ms(&self) -> Option<i64> {
        self.last_bucket_ms.map(|b| b + STEP_MS)
    }

    /// Data time the training history ended.
    pub fn trained_until_ms(&self) -> i64 {
        self.trained_until_ms
    }

    /// Wall time training took (ms).
    pub fn train_wall_ms(&self) -> u64 {
        self.train_wall_ms
    }

    /// The forecast of station `station` (road-book index) `steps_ahead`
    /// intervals (1..=12) after the last bucket, with the band's edges
    /// (NaN where there is none).
    pub fn forecast(&self, station: usize, steps_ahead: usize) -> (f32, f32, f32) {
        if station >= self.ids.len() || !(1..=HORIZONS).contains(&steps_ahead) {
            return (f32::NAN, f32::NAN, f32::NAN);
        }
        let f = self.forecasts[station * HORIZONS + steps_ahead - 1];
        let c = self
            .band
            .cell(self.regime(station, f), station, steps_ahead);
        (
            f,
            Quantity::Speed.clamp(f + self.band.lower[c]),
            Quantity::Speed.clamp(f + self.band.upper[c]),
        )
    }

    /// Band regime of a forecast `f` of `station`: 1 (slow) when it or the
    /// station's last reading is below [`SLOW_SHARE`] of its median speed.
    fn regime(&self, station: usize, f: f32) -> usize {
        let free = self.free_speed[station];
        usize::from(free.is_finite() && f.min(self.last[station]) < SLOW_SHARE * free)
    }

    /// The current forecasts, ready to serialise.
    pub fn snapshot(&self) -> ForecastSnapshot {
        let kmh = |v: f32| v.is_finite().then(|| (f64::from(v) * 10.0).round() / 10.0);
        let stations = (0..self.ids.len())
            .map(|s| {
                let (mut sp, mut lo, mut hi) = (
                    Vec::with_capacity(HORIZONS),
                    Vec::with_capacity(HORIZONS),
                    Vec::with_capacity(HORIZONS),
                );
                for h in 1..=HORIZONS {
                    let (f, l, u) = self.forecast(s, h);
                    sp.push(kmh(f));
                    lo.push(kmh(l));
                    hi.push(kmh(u));
                }
                StationForecast {
                    detector: self.ids[s].clone(),
                    direction: self.directions[s].to_string(),
                    stake_m: self.stakes[s],
                    last_speed_kmh: kmh(self.current[s]),
                    speed_kmh: sp,
                    lower_kmh: lo,
                    upper_kmh: hi,
                }
            })
            .collect();
        let segments = self
            .segments
            .iter()
            .map(|&(a, b)| SegmentForecast {
                direction: self.directions[a].to_string(),
                from: self.ids[a].clone(),
                to: self.ids[b].clone(),
                from_stake_m: self.stakes[a],
                to_stake_m: self.stakes[b],
                speed_kmh: (0..HORIZONS)
                    .map(|h| {
                        kmh(Quantity::Speed.segment(
                            self.forecasts[a * HORIZONS + h],
                            self.forecasts[b * HORIZONS + h],
                        ))
                    })
                    .collect(),
            })
            .collect();
        ForecastSnapshot {
            issued_ms: self.next_bucket_ms(),
            step_s: (STEP_MS / 1000) as u32,
            horizons: (1..=HORIZONS as u32).map(|h| h * 5).collect(),
            method: self.method,
            trained_until_ms: self.trained_until_ms,
            history_days: (self.history_days * 100.0).round() / 100.0,
            band_lower_q: self.band_q.0,
            band_upper_q: self.band_q.1,
            stations,
            segments,
        }
    }
}

/// Reads the data clock (the engine's last closed tick).
fn data_clock(clock: &RwLock<Snapshot>) -> Option<i64> {
    match clock.read() {
        Ok(s) => s.last_tick_ms,
        Err(p) => p.into_inner().last_tick_ms,
    }
}

fn publish(out: &RwLock<Option<ForecastSnapshot>>, snap: ForecastSnapshot) {
    match out.write() {
        Ok(mut g) => *g = Some(snap),
        Err(p) => *p.into_inner() = Some(snap),
    }
}

/// End of the buckets complete at data time `tick_ms` (a bucket boundary).
fn complete_until(tick_ms: i64, grace_ms: i64) -> i64 {
    (tick_ms - grace_ms).div_euclid(STEP_MS) * STEP_MS
}

/// Loads the history before `until_ms` and trains (in `spawn_blocking`).
/// A failed read trains on nothing (persistence), logged.
async fn load_and_train(
    store: &Store,
    road: Arc<RoadBook>,
    until_ms: i64,
    cfg: &ForecastConfig,
) -> ForecastService {
    let from = until_ms - (cfg.history_days.max(0.0) * 86_400_000.0) as i64;
    let history = match store.station_history(from, until_ms, STEP_MS).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "forecast: reading the station history failed");
            Vec::new()
        }
    };
    let c = cfg.clone();
    let r = road.clone();
    match tokio::task::spawn_blocking(move || ForecastService::train(&r, &history, until_ms, &c))
        .await
    {
        Ok(svc) => svc,
        Err(e) => {
            tracing::error!(error = %e, "forecast: training task failed, using persistence");
            ForecastService::train(&road, &[], until_ms, cfg)
        }
    }
}

/// Feeds `svc` every bucket complete before `until_ms` it has not seen
/// (at most `max_catchup` of the latest), one store read for all of them.
async fn catch_up(
    store: &Store,
    svc: &mut ForecastService,
    until_ms: i64,
    max_catchup: usize,
) -> bool {
    let latest = until_ms - STEP_MS * max_catchup.max(1) as i64;
    let from = svc
        .next_bucket_ms()
        .unwrap_or(until_ms - STEP_MS)
        .max(latest);
    if from >= until_ms {
        return false;
    }
    let rows = match store.station_history(from, until_ms, STEP_MS).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "forecast: reading buckets failed");
            return false;
        }
    };
    let mut i = 0;
    let mut b = from;
    while b < until_ms {
        let j = i + rows[i..].iter().take_while(|r| r.bucket_ms <= b).count();
        if let Err(e) = svc.observe(b, &rows[i..j]) {
            tracing::warn!(error = %e, "forecast: bucket refused");
        }
        i = j;
        b += STEP_MS;
    }
    true
}

/// The forecast task: trains from the stored history once the data clock
/// runs, then follows it, observing each completed 5-minute bucket and
/// publishing the snapshot into `out`; retrains every
/// [`ForecastConfig::retrain_hours`] of data time (every
/// [`ForecastConfig::fallback_retrain_hours`] while on a fallback method)
/// in the background, the old service serving meanwhile. Runs until the
/// task is aborted; never panics on data, logs failures.
pub async fn run(
    store: Store,
    road: Arc<RoadBook>,
    clock: Arc<RwLock<Snapshot>>,
    out: Arc<RwLock<Option<ForecastSnapshot>>>,
    cfg: ForecastConfig,
) {
    let cfg = match cfg.validate() {
        Ok(()) => cfg,
        Err(e) => {
            tracing::warn!(error = %e, "forecast: invalid settings, using the defaults");
            ForecastConfig::default()
        }
    };
    let poll = Duration::from_millis(cfg.poll_ms);
    let grace_ms = (cfg.grace_s * 1000.0) as i64;
    let tick = loop {
        if let Some(t) = data_clock(&clock) {
            break t;
        }
        tokio::time::sleep(poll).await;
    };
    let mut svc = load_and_train(&store, road.clone(), complete_until(tick, grace_ms), &cfg).await;
    tracing::info!(
        method = svc.method().as_str(),
        train_ms = svc.train_wall_ms(),
        "forecast: running"
    );
    publish(&out, svc.snapshot());
    let mut retraining: Option<tokio::task::JoinHandle<ForecastService>> = None;
    loop {
        tokio::time::sleep(poll).await;
        let Some(tick) = data_clock(&clock) else {
            continue;
        };
        let until = complete_until(tick, grace_ms);
        let mut changed = false;
        if let Some(h) = retraining.take_if(|h| h.is_finished()) {
            match h.await {
                Ok(new) => {
                    tracing::info!(
                        method = new.method().as_str(),
                        train_ms = new.train_wall_ms(),
                        "forecast: retrained"
                    );
                    svc = new;
                    changed = true;
                }
                Err(e) => tracing::error!(error = %e, "forecast: retraining failed"),
            }
        }
        // The clock went back more than an hour (a new run on the store):
        // start over from the history.
        let went_back = svc
            .next_bucket_ms()
            .is_some_and(|n| until < n - HORIZONS as i64 * STEP_MS);
        changed |= catch_up(&store, &mut svc, until, cfg.max_catchup_buckets).await;
        if changed {
            publish(&out, svc.snapshot());
        }
        let every_h = if svc.method() == Method::Model {
            cfg.retrain_hours
        } else {
            cfg.fallback_retrain_hours
        };
        let due = every_h > 0.0 && (until - svc.trained_until_ms()) as f64 >= every_h * 3_600_000.0;
        if retraining.is_none() && (due || went_back) {
            let (st, rd, c) = (store.clone(), road.clone(), cfg.clone());
            retraining = Some(tokio::spawn(async move {
                load_and_train(&st, rd, until, &c).await
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhilu_store::{ObsRow, ReadingBatch};

    /// Six stations up (A1 upstream … A6), two down.
    const ROAD: &str = r#"
[road]
id = "T"
name = "test"
tz = "+08:00"
directions = ["up", "down"]
geometry = [[0, 116.0, 39.0], [10000, 116.1, 39.1]]
lanes = 2
speed_limit_kmh = 120

[[detector]]
id = "A1"
direction = "up"
stake_m = 1000

[[detector]]
id = "A2"
direction = "up"
stake_m = 2000

[[detector]]
id = "A3"
direction = "up"
stake_m = 3000

[[detector]]
id = "A4"
direction = "up"
stake_m = 4000

[[detector]]
id = "A5"
direction = "up"
stake_m = 5000

[[detector]]
id = "A6"
direction = "up"
stake_m = 6000

[[detector]]
id = "B1"
direction = "down"
stake_m = 4500

[[detector]]
id = "B2"
direction = "down"
stake_m = 2500
"#;

    /// Local midnight (UTC+8) of 1 Jan 2026, epoch ms.
    const T0: i64 = 1_767_225_600_000 - 8 * 3_600_000;
    const DAY: i64 = 86_400_000;

    fn road() -> RoadBook {
        RoadBook::from_toml(ROAD, "test road").expect("test road book")
    }

    /// xorshift64*: deterministic noise.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.next().max(1e-12), self.next());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// Synthetic speeds, bucket by bucket from `T0` for `days`: free flow
    /// near 100 km/h with AR(1) noise, and every morning a dip to about
    /// 45 km/h from about 07:00 local for 90 minutes — falling over 15
    /// minutes and recovering over 15 — starting at the downstream end of
    /// each direction and spreading upstream a slot per station, its start
    /// varying by ±1 slot from day to day.
    fn synthetic(road: &RoadBook, days: usize, seed: u64) -> Vec<StationBucket> {
        let mut rng = Rng(seed);
        let dets = road.detectors();
        let mut noise = vec![0.0f64; dets.len()];
        let mut out = Vec::new();
        for d in 0..days {
            let shift = (rng.next() * 3.0).floor() as i64 - 1;
            for slot in 0..STEPS_PER_DAY as i64 {
                let bucket = T0 + d as i64 * DAY + slot * STEP_MS;
                for (s, det) in dets.iter().enumerate() {
                    noise[s] = 0.8 * noise[s] + 2.0 * rng.normal();
                    let chain = road.stations(det.direction);
                    let pos = chain.iter().position(|&i| i as usize == s).unwrap_or(0) as i64;
                    let onset = 84 + shift + (chain.len() as i64 - 1 - pos);
                    // 0 → 1 over 3 slots, 1 for 12, back to 0 over 3.
                    let k = slot - onset;
                    let depth = match k {
                        0..=2 => (k + 1) as f64 / 4.0,
                        3..=14 => 1.0,
                        15..=17 => (18 - k) as f64 / 4.0,
                        _ => 0.0,
                    };
                    let dip = 55.0 * depth;
                    out.push(StationBucket {
                        bucket_ms: bucket,
                        detector: det.id.clone(),
                        volume: 50,
                        speed_kmh: Some((100.0 - dip + noise[s]).clamp(5.0, 130.0)),
                        occupancy_pct: None,
                        samples: 1,
                    });
                }
            }
        }
        out
    }

    /// Stores buckets as one raw reading each, in the middle of the bucket.
    async fn store_with(buckets: &[StationBucket]) -> Store {
        let store = Store::open("sqlite::memory:")
            .await
            .expect("in-memory store");
        for (k, chunk) in buckets.chunks(5000).enumerate() {
            let obs = chunk
                .iter()
                .enumerate()
                .map(|(i, b)| ObsRow {
                    seq: (k * 5000 + i + 1) as i64,
                    ts_ms: b.bucket_ms + STEP_MS / 2,
                    detector: b.detector.clone(),
                    lane: 1,
                    interval_s: 300,
                    volume: b.volume as i32,
                    speed_kmh: b.speed_kmh,
                    occupancy_pct: None,
                })
                .collect();
            let batch = ReadingBatch {
                obs,
                ..ReadingBatch::default()
            };
            store.append_readings(&batch).await.expect("append");
        }
        store
    }

    /// Groups buckets by start time, in order.
    fn by_bucket(buckets: &[StationBucket]) -> Vec<(i64, Vec<StationBucket>)> {
        let mut out: Vec<(i64, Vec<StationBucket>)> = Vec::new();
        for b in buckets {
            match out.last_mut() {
                Some((t, v)) if *t == b.bucket_ms => v.push(b.clone()),
                _ => out.push((b.bucket_ms, vec![b.clone()])),
            }
        }
        out
    }

    fn quick() -> ForecastConfig {
        ForecastConfig {
            trees: 0,
            ..ForecastConfig::default()
        }
    }

    #[tokio::test]
    async fn the_model_trained_from_the_store_foresees_the_morning_dip() {
        let road = road();
        let all = synthetic(&road, 8, 7);
        let split = T0 + 7 * DAY;
        let (train, test): (Vec<_>, Vec<_>) = all.into_iter().partition(|b| b.bucket_ms < split);
        let store = store_with(&train).await;
        let history = store
            .station_history(split - 14 * DAY, split, STEP_MS)
            .await
            .expect("history");
        let mut svc = ForecastService::train(&road, &history, split, &ForecastConfig::default());
        assert_eq!(svc.method(), Method::Model);
        assert_eq!(svc.next_bucket_ms(), Some(split));

        // Day 6, 06:00–09:30 local: forecasts 15 and 30 minutes ahead
        // against the realised speeds, model and persistence.
        let n = road.detectors().len();
        let buckets = by_bucket(&test);
        let mut issued: Vec<(Vec<f32>, Vec<f32>)> = Vec::new(); // (forecasts h=3,6 per station, last)
        let (mut err_model, mut err_per, mut count) = ([0.0f64; 2], [0.0f64; 2], 0usize);
        let (mut inside, mut scored) = (0usize, 0usize);
        let (mut dinside, mut dscored, mut dwidth, mut fwidth) = (0usize, 0usize, 0.0f64, 0.0f64);
        let mut bands: Vec<Vec<(f32, f32)>> = Vec::new();
        for (i, (b, rows)) in buckets.iter().enumerate() {
            svc.observe(*b, rows).expect("in order");
            let actual: Vec<f32> = (0..n)
                .map(|s| rows[s].speed_kmh.unwrap_or(f64::NAN) as f32)
                .collect();
            let slot = i as i64;
            for (k, h) in [3usize, 6].into_iter().enumerate() {
                if i >= h && (72..=114).contains(&(slot - h as i64)) {
                    let (f, last) = &issued[i - h];
                    for s in 0..n {
                        err_model[k] += f64::from((f[s * 2 + k] - actual[s]).abs());
                        err_per[k] += f64::from((last[s] - actual[s]).abs());
                    }
                    if k == 0 {
                        count += n;
                    }
                }
            }
            if i >= 3 {
                for (s, &(lo, hi)) in bands[i - 3].iter().enumerate() {
                    scored += 1;
                    inside += usize::from(actual[s] >= lo && actual[s] <= hi);
                    if (72..=114).contains(&(slot - 3)) {
                        dscored += 1;
                        dinside += usize::from(actual[s] >= lo && actual[s] <= hi);
                        dwidth += f64::from(hi - lo);
                    } else {
                        fwidth += f64::from(hi - lo);
                    }
                }
            }
            let f: Vec<f32> = (0..n)
                .flat_map(|s| [svc.forecast(s, 3).0, svc.forecast(s, 6).0])
                .collect();
            issued.push((f, actual));
            bands.push(
                (0..n)
                    .map(|s| {
                        let (_, lo, hi) = svc.forecast(s, 3);
                        (lo, hi)
                    })
                    .collect(),
            );
        }
        assert!(count > 300);
        for k in 0..2 {
            let (m, p) = (err_model[k] / count as f64, err_per[k] / count as f64);
            eprintln!("horizon {k}: model MAE {m:.2} vs persistence {p:.2}");
            assert!(
                m < 0.7 * p,
                "horizon {k}: model MAE {m:.2} vs persistence {p:.2}"
            );
        }
        // The 10–90 % band (15 minutes ahead) holds about 80 % of realised
        // values, and widens around the dip.
        let share = inside as f64 / scored as f64;
        let (dip_share, dip_width, free_width) = (
            dinside as f64 / dscored as f64,
            dwidth / dscored as f64,
            fwidth / (scored - dscored) as f64,
        );
        eprintln!(
            "band coverage {share:.3}; 06:00–09:30 {dip_share:.3}, mean width {dip_width:.1} \
             km/h against {free_width:.1} elsewhere"
        );
        assert!((0.65..=0.95).contains(&share), "band coverage {share:.3}");
        assert!(dip_share > 0.6, "coverage around the dip {dip_share:.3}");
        assert!(
            dip_width > 1.1 * free_width,
            "{dip_width:.1} vs {free_width:.1}"
        );
    }

    #[test]
    fn fallbacks_follow_the_history_there_is() {
        let road = road();
        let none = ForecastService::train(&road, &[], T0, &quick());
        assert_eq!(none.method(), Method::Persistence);
        assert_eq!(none.next_bucket_ms(), None);
        let snap = none.snapshot();
        assert_eq!(snap.issued_ms, None);
        assert_eq!(snap.stations.len(), 8);
        assert!(snap.stations[0].speed_kmh.iter().all(Option::is_none));

        // A day and a half: the profile.
        let hist = synthetic(&road, 2, 3);
        let end = T0 + 36 * 3_600_000;
        let part = ForecastService::train(&road, &hist, end, &quick());
        assert_eq!(part.method(), Method::Profile);
        assert_eq!(part.next_bucket_ms(), Some(end));
        // It forecasts the dip: at 06:30 (after a day with one), the
        // profile says slower an hour ahead than now.
        let day2 = synthetic(&road, 3, 3);
        let mut svc = ForecastService::train(&road, &hist, T0 + DAY, &quick());
        for (b, rows) in by_bucket(&day2)
            .into_iter()
            .filter(|(b, _)| *b >= T0 + DAY && *b < T0 + DAY + 78 * STEP_MS)
        {
            svc.observe(b, &rows).expect("in order");
        }
        let a6 = 5;
        let (now, _, _) = svc.forecast(a6, 1);
        let (ahead, lo, hi) = svc.forecast(a6, 12);
        assert!(ahead < now - 20.0, "profile ahead {ahead} vs now {now}");
        assert!(lo <= ahead && ahead <= hi);

        // Three days: the model (with `min_model_days` = 3).
        let hist = synthetic(&road, 3, 5);
        let full = ForecastService::train(&road, &hist, T0 + 3 * DAY, &quick());
        assert_eq!(full.method(), Method::Model);
        // Five days but `min_model_days` = 6: the profile.
        let cfg = ForecastConfig {
            min_model_days: 6.0,
            ..quick()
        };
        let hist = synthetic(&road, 5, 5);
        let svc = ForecastService::train(&road, &hist, T0 + 5 * DAY, &cfg);
        assert_eq!(svc.method(), Method::Profile);
    }

    #[test]
    fn the_profile_beats_persistence_an_hour_ahead() {
        // Two days stored (below `min_model_days`): the profile. Scored on
        // the third day, 06:00–09:30, 30 and 60 minutes ahead.
        let road = road();
        let all = synthetic(&road, 3, 21);
        let split = T0 + 2 * DAY;
        let (hist, test): (Vec<_>, Vec<_>) = all.into_iter().partition(|b| b.bucket_ms < split);
        let mut svc = ForecastService::train(&road, &hist, split, &quick());
        assert_eq!(svc.method(), Method::Profile);
        let n = road.detectors().len();
        let mut issued: Vec<Vec<f32>> = Vec::new();
        let mut last: Vec<Vec<f32>> = Vec::new();
        let (mut em, mut ep, mut count) = ([0.0f64; 2], [0.0f64; 2], 0usize);
        for (i, (b, rows)) in by_bucket(&test).into_iter().enumerate() {
            svc.observe(b, &rows).expect("in order");
            let actual: Vec<f32> = (0..n)
                .map(|s| rows[s].speed_kmh.unwrap_or(f64::NAN) as f32)
                .collect();
            for (k, h) in [6usize, 12].into_iter().enumerate() {
                if i >= h && (72..=114).contains(&(i - h)) {
                    for s in 0..n {
                        em[k] += f64::from((issued[i - h][s * 2 + k] - actual[s]).abs());
                        ep[k] += f64::from((last[i - h][s] - actual[s]).abs());
                    }
                    count += usize::from(k == 0) * n;
                }
            }
            issued.push(
                (0..n)
                    .flat_map(|s| [svc.forecast(s, 6).0, svc.forecast(s, 12).0])
                    .collect(),
            );
            last.push(actual);
        }
        for k in 0..2 {
            let (m, p) = (em[k] / count as f64, ep[k] / count as f64);
            eprintln!(
                "profile, horizon {}: MAE {m:.2} vs persistence {p:.2}",
                [30, 60][k]
            );
            assert!(m < 0.8 * p, "profile MAE {m:.2} vs persistence {p:.2}");
        }
    }

    #[test]
    fn persistence_forecasts_the_last_reading() {
        let road = road();
        let mut svc = ForecastService::train(&road, &[], T0, &quick());
        let rows = synthetic(&road, 1, 1);
        let first: Vec<StationBucket> = rows.iter().take(8).cloned().collect();
        svc.observe(T0, &first).expect("first bucket");
        let snap = svc.snapshot();
        assert_eq!(snap.issued_ms, Some(T0 + STEP_MS));
        let want = first[0].speed_kmh.map(|v| (v * 10.0).round() / 10.0);
        assert_eq!(snap.stations[0].speed_kmh[11], want);
        assert_eq!(snap.stations[0].last_speed_kmh, want);
    }

    #[test]
    fn missing_and_unknown_stations_and_stale_buckets() {
        let road = road();
        let hist = synthetic(&road, 4, 11);
        let end = T0 + 3 * DAY;
        let train: Vec<StationBucket> =
            hist.iter().filter(|b| b.bucket_ms < end).cloned().collect();
        let mut svc = ForecastService::train(&road, &train, end, &quick());
        assert_eq!(svc.method(), Method::Model);
        for (b, mut rows) in by_bucket(&hist)
            .into_iter()
            .filter(|(b, _)| *b >= end)
            .take(24)
        {
            // A3 silent, B1 implausible, an unknown detector, a row of another bucket.
            rows.retain(|r| r.detector != "A3");
            for r in &mut rows {
                if r.detector == "B1" {
                    r.speed_kmh = Some(900.0);
                }
            }
            rows.push(StationBucket {
                bucket_ms: b,
                detector: "ZZZ".into(),
                volume: 1,
                speed_kmh: Some(10.0),
                occupancy_pct: None,
                samples: 1,
            });
            rows.push(StationBucket {
                bucket_ms: b + STEP_MS,
                detector: "A1".into(),
                volume: 1,
                speed_kmh: Some(1.0),
                occupancy_pct: None,
                samples: 1,
            });
            svc.observe(b, &rows).expect("in order");
        }
        let snap = svc.snapshot();
        let st = |id: &str| {
            snap.stations
                .iter()
                .find(|s| s.detector == id)
                .expect("station")
        };
        assert_eq!(st("A3").last_speed_kmh, None);
        assert_eq!(st("B1").last_speed_kmh, None);
        assert!(st("A1").last_speed_kmh.is_some_and(|v| v > 50.0));
        for s in &snap.stations {
            assert_eq!(s.speed_kmh.len(), 12);
            assert!(
                s.speed_kmh
                    .iter()
                    .all(|v| v.is_some_and(|v| v > 30.0 && v < 140.0))
            );
            assert!(s.lower_kmh.iter().zip(&s.upper_kmh).all(|(l, u)| l <= u));
        }
        assert_eq!(snap.segments.len(), 6);
        assert!(
            snap.segments
                .iter()
                .all(|g| g.speed_kmh.iter().all(Option::is_some))
        );
        // Stale and repeated buckets are refused.
        let last = snap.issued_ms.expect("issued") - STEP_MS;
        assert!(matches!(
            svc.observe(last, &[]),
            Err(ForecastError::Stale { .. })
        ));
        // A gap of two hours counts as missing; forecasts stay defined.
        svc.observe(last + 25 * STEP_MS, &[]).expect("later bucket");
        assert!(svc.forecast(0, 6).0.is_finite());
        let json = serde_json::to_value(svc.snapshot()).expect("json");
        let back: ForecastSnapshot = serde_json::from_value(json.clone()).expect("read back");
        assert_eq!(back, svc.snapshot());
        assert_eq!(json["method"], "model");
        assert_eq!(
            json["stations"][2]["last_speed_kmh"],
            serde_json::Value::Null
        );
        assert_eq!(json["horizons"][11], 60);
    }

    #[test]
    fn a_station_never_heard_has_no_forecast() {
        let road = road();
        let hist: Vec<StationBucket> = synthetic(&road, 1, 2)
            .into_iter()
            .filter(|b| b.detector != "B2")
            .collect();
        let svc = ForecastService::train(&road, &hist, T0 + DAY, &quick());
        let snap = svc.snapshot();
        let b2 = snap
            .stations
            .iter()
            .find(|s| s.detector == "B2")
            .expect("B2");
        assert!(b2.speed_kmh.iter().all(Option::is_none));
        assert!(snap.stations[0].speed_kmh.iter().all(Option::is_some));
    }

    #[test]
    fn the_error_window_keeps_the_last_values_sorted() {
        let cap = 5;
        let mut w = Window::new(cap);
        let mut rng = Rng(17);
        let mut all = Vec::new();
        for _ in 0..40 {
            let v = (rng.next() * 10.0).round() as f32 - 5.0; // with repeats
            w.add(v, cap);
            all.push(v);
            let mut want: Vec<f32> = all.iter().rev().take(cap).copied().collect();
            want.sort_by(f32::total_cmp);
            assert_eq!(w.sorted, want);
        }
        let (lo, hi) = w.quantiles(0.0, 1.0);
        assert_eq!((lo, hi), (w.sorted[0], w.sorted[cap - 1]));
        assert!(Window::new(3).quantiles(0.1, 0.9).0.is_nan());
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(ForecastConfig::default().validate(), Ok(()));
        let bad = ForecastConfig {
            band_lower: 0.9,
            band_upper: 0.1,
            ..ForecastConfig::default()
        };
        assert_eq!(
            bad.validate(),
            Err(ForecastError::Config(
                "band_upper must be above band_lower and at most 1"
            ))
        );
        let parsed: ForecastConfig =
            serde_json::from_str(r#"{"history_days": 7, "trees": 0}"#).expect("parse");
        assert_eq!(parsed.history_days, 7.0);
        assert_eq!(parsed.min_model_days, 3.0);
        assert!(serde_json::from_str::<ForecastConfig>(r#"{"histroy_days": 7}"#).is_err());
        // As a TOML section of the server configuration would give it.
        let from_toml: ForecastConfig =
            toml::from_str("history_days = 7\nband_lower = 0.05\nenabled = false").expect("toml");
        assert_eq!(from_toml.history_days, 7.0);
        assert!(!from_toml.enabled);
        assert!(toml::from_str::<ForecastConfig>("bogus = 1").is_err());
    }

    #[tokio::test]
    async fn run_publishes_after_the_clock_passes_a_bucket() {
        let road = Arc::new(road());
        let hist = synthetic(&road, 1, 4);
        let store = store_with(&hist).await;
        let clock = Arc::new(RwLock::new(Snapshot::default()));
        let out = Arc::new(RwLock::new(None));
        let cfg = ForecastConfig {
            poll_ms: 5,
            ..quick()
        };
        let task = tokio::spawn(run(
            store.clone(),
            road.clone(),
            clock.clone(),
            out.clone(),
            cfg,
        ));
        let set_clock = |t: i64| {
            if let Ok(mut c) = clock.write() {
                c.last_tick_ms = Some(t);
            }
        };
        let wait_for = |want: i64| {
            let out = out.clone();
            async move {
                for _ in 0..6000 {
                    let got = out
                        .read()
                        .ok()
                        .and_then(|o| o.as_ref().map(|s| (s.issued_ms, s.clone())));
                    if let Some((Some(t), snap)) = got
                        && t == want
                    {
                        return snap;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("no snapshot issued at {want}");
            }
        };
        // Nothing before the clock runs.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(out.read().map(|o| o.is_none()).unwrap_or(false));
        let end = T0 + DAY;
        set_clock(end + 20_000); // inside the grace: the last bucket is not complete
        let snap = wait_for(end - STEP_MS).await;
        assert_eq!(snap.method, Method::Profile);
        // A new bucket arrives and the clock passes it.
        let mut next = synthetic(&road, 2, 4);
        next.retain(|b| b.bucket_ms >= end - STEP_MS && b.bucket_ms < end + STEP_MS);
        let fresh: Vec<StationBucket> = next
            .into_iter()
            .map(|mut b| {
                b.speed_kmh = Some(if b.bucket_ms >= end { 33.0 } else { 80.0 });
                b
            })
            .collect();
        let extra = ReadingBatch {
            obs: fresh
                .iter()
                .enumerate()
                .map(|(i, b)| ObsRow {
                    seq: 1_000_000 + i as i64,
                    ts_ms: b.bucket_ms + 240_000,
                    detector: b.detector.clone(),
                    lane: 2,
                    interval_s: 300,
                    volume: 10,
                    speed_kmh: b.speed_kmh,
                    occupancy_pct: None,
                })
                .collect(),
            ..ReadingBatch::default()
        };
        store.append_readings(&extra).await.expect("append");
        set_clock(end + STEP_MS + 31_000);
        let snap = wait_for(end + STEP_MS).await;
        assert_eq!(snap.stations[0].last_speed_kmh, Some(33.0));
        task.abort();
    }

    #[tokio::test]
    async fn run_retrains_in_the_background_and_after_the_clock_went_back() {
        let road = Arc::new(road());
        let all = synthetic(&road, 2, 6);
        let end = T0 + DAY;
        let later = end + 4 * STEP_MS;
        let (first, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|b| b.bucket_ms < end);
        let store = store_with(&first).await;
        let clock = Arc::new(RwLock::new(Snapshot::default()));
        let out: Arc<RwLock<Option<ForecastSnapshot>>> = Arc::new(RwLock::new(None));
        let cfg = ForecastConfig {
            poll_ms: 5,
            fallback_retrain_hours: 0.25,
            ..quick()
        };
        let task = tokio::spawn(run(
            store.clone(),
            road.clone(),
            clock.clone(),
            out.clone(),
            cfg,
        ));
        let set_clock = |t: i64| {
            if let Ok(mut c) = clock.write() {
                c.last_tick_ms = Some(t);
            }
        };
        // Waits for a snapshot issued at `issued` from a service trained up to `trained`.
        let wait_for = |issued: i64, trained: i64| {
            let out = out.clone();
            async move {
                for _ in 0..6000 {
                    let got = out.read().ok().and_then(|o| o.clone());
                    if let Some(s) = got
                        && s.issued_ms == Some(issued)
                        && s.trained_until_ms == trained
                    {
                        return s;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("no snapshot issued at {issued}, trained until {trained}");
            }
        };
        set_clock(end + 31_000);
        wait_for(end, end).await;
        // 20 minutes more data: observed at once, and past the 15-minute
        // fallback interval a retrain on the longer history is swapped in.
        let more: Vec<StationBucket> = rest.into_iter().filter(|b| b.bucket_ms < later).collect();
        let offset = first.len();
        let batch = ReadingBatch {
            obs: more
                .iter()
                .enumerate()
                .map(|(i, b)| ObsRow {
                    seq: (offset + i + 1) as i64,
                    ts_ms: b.bucket_ms + STEP_MS / 2,
                    detector: b.detector.clone(),
                    lane: 1,
                    interval_s: 300,
                    volume: 50,
                    speed_kmh: b.speed_kmh,
                    occupancy_pct: None,
                })
                .collect(),
            ..ReadingBatch::default()
        };
        store.append_readings(&batch).await.expect("append");
        set_clock(later + 31_000);
        let snap = wait_for(later, later).await;
        assert_eq!(snap.method, Method::Profile);
        // The clock goes back half a day (a new run on the same store):
        // retrained on the history before it.
        let back = T0 + DAY / 2;
        set_clock(back + 31_000);
        let snap = wait_for(back, back).await;
        assert!(snap.history_days < 0.6, "{}", snap.history_days);
        task.abort();
    }

    /// Time this thread has run (ms), from the Linux scheduler's
    /// statistics; 0 where they are not available.
    fn thread_cpu_ms() -> f64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |ns| ns / 1e6)
    }

    /// Cost on the demo corridor (119 stations): store read, training and
    /// one update, for 3, 7 and 14 days of history. Run in release:
    /// `cargo test --release -p zhilu-server --lib forecast::tests::cost -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "measurement; run in release"]
    async fn cost_on_the_demo_corridor() {
        let road = RoadBook::from_toml(include_str!("../../../examples/demo/ROAD.toml"), "demo")
            .expect("demo road book");
        for days in [3usize, 7, 14] {
            let all = synthetic(&road, days + 1, 42);
            let split = T0 + days as i64 * DAY;
            let (train, test): (Vec<_>, Vec<_>) =
                all.into_iter().partition(|b| b.bucket_ms < split);
            let store = store_with(&train).await;
            let t = Instant::now();
            let history = store
                .station_history(split - 14 * DAY, split, STEP_MS)
                .await
                .expect("history");
            let read_ms = t.elapsed().as_secs_f64() * 1e3;
            let (t, cpu) = (Instant::now(), thread_cpu_ms());
            let mut svc =
                ForecastService::train(&road, &history, split, &ForecastConfig::default());
            let train_s = t.elapsed().as_secs_f64();
            let train_cpu_s = (thread_cpu_ms() - cpu) / 1e3;
            // Per call: wall time (the scheduler's run time is only updated
            // at ticks, so on-CPU is taken over the whole loop: a mean).
            let buckets = by_bucket(&test);
            let (mut obs, mut snap) = (Vec::new(), Vec::new());
            let cpu = thread_cpu_ms();
            for (b, rows) in &buckets {
                let t = Instant::now();
                svc.observe(*b, rows).expect("in order");
                obs.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                let _ = svc.snapshot();
                snap.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let loop_cpu = (thread_cpu_ms() - cpu) / buckets.len() as f64;
            // The model's own update, without the band.
            let mut push = Vec::new();
            let mut push_cpu = f64::NAN;
            if let Predictor::Model(live) = &svc.predictor {
                let mut live = live.clone();
                let cpu = thread_cpu_ms();
                for (i, (_, rows)) in buckets.iter().enumerate() {
                    let v: Vec<f32> = rows
                        .iter()
                        .map(|r| r.speed_kmh.unwrap_or(f64::NAN) as f32)
                        .collect();
                    let t = Instant::now();
                    live.push(i % STEPS_PER_DAY, &v).expect("push");
                    push.push(t.elapsed().as_secs_f64() * 1e3);
                }
                push_cpu = (thread_cpu_ms() - cpu) / buckets.len() as f64;
            }
            push.sort_by(f64::total_cmp);
            obs.sort_by(f64::total_cmp);
            snap.sort_by(f64::total_cmp);
            eprintln!(
                "observe median {:.2} ms wall, max {:.2} ms; observe + snapshot mean {loop_cpu:.2} ms \
                 on-CPU; the model's update alone median {:.3} ms wall, mean {push_cpu:.3} ms on-CPU",
                obs[obs.len() / 2],
                obs[obs.len() - 1],
                push.get(push.len() / 2).copied().unwrap_or(f64::NAN),
            );
            let json = serde_json::to_string(&svc.snapshot()).expect("json");
            eprintln!(
                "{} stations, {days} days ({} buckets read in {read_ms:.0} ms): method {}, \
                 training {train_s:.1} s wall, {train_cpu_s:.1} s on-CPU; snapshot median \
                 {:.2} ms, JSON {} bytes",
                road.detectors().len(),
                history.len(),
                svc.method().as_str(),
                snap[snap.len() / 2],
                json.len()
            );
        }
    }
}
