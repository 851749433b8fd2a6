//! Live forecasts for a road book's detector stations (issue 8, 交通预测):
//! every station's speed 5 to 60 minutes ahead with a prediction band,
//! trained from stored 5-minute history and fed one completed 5-minute
//! bucket at a time. The server's forecast task reads the store and the
//! tick clock and calls this; nothing here does I/O or reads a clock.
//!
//! What is used ([`Method`]):
//!
//! - [`Method::Model`] — the forecaster of this module (profile departures,
//!   neighbours along the road, analogue days, boosted trees), when the
//!   history covers at least [`ServiceConfig::min_model_days`] days (default
//!   3: the model's leave-one-day-out profiles and analogue days need
//!   several days to mean anything; with one or two it is no better than
//!   the profile).
//! - [`Method::Profile`] — with less history: each station's time-of-day
//!   mean (±10 minutes smoothing), plus the current departure from it
//!   decaying by [`ServiceConfig::profile_decay`] per step; the profile
//!   keeps learning from every observed bucket. Where the profile has no
//!   value for a slot, the last reading is used.
//! - [`Method::Persistence`] — with no history at all: the last reading.
//!
//! The band is an empirical prediction interval: the
//! [`ServiceConfig::band_lower`] and [`ServiceConfig::band_upper`]
//! quantiles (default 10 % and 90 %) of the errors (realised − forecast)
//! the service made for this station at this horizon in the same regime,
//! over its last [`ServiceConfig::band_window`] such errors, added to the
//! forecast. Two regimes: *slow* when the forecast or the reading it starts
//! from is below [`SLOW_SHARE`] of the station's median speed in the
//! history (congestion ahead, in progress or clearing), *free* otherwise.
//! Until a station has [`ServiceConfig::band_min_samples`] errors in a
//! regime and horizon, all stations' errors there are used. Every error is
//! out of sample: first from the held-out last part of the history (the
//! model is trained without it), then from live forecasts as the realised
//! values arrive. About 80 % of realised values fall inside the band on
//! average, not in every situation: within a regime it does not know
//! whether a queue is about to form.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use zhilu_road::{Direction, RoadBook};

use super::band::Band;
use super::{ForecastConfig, ForecastError, Forecaster, LiveForecaster, Neighbours, Quantity};

/// Length of one forecast interval (ms): 5-minute buckets.
pub const STEP_MS: i64 = 300_000;
/// Intervals per day.
pub const STEPS_PER_DAY: usize = 288;
/// Horizons forecast: 1..=12 intervals, 5 to 60 minutes.
pub const HORIZONS: usize = 12;
/// Neighbour places per station along the road (upstream, downstream, …).
const NEIGHBOURS: usize = 4;
/// Slots either side averaged into a profile value (±10 minutes).
const PROFILE_HALFWIDTH: usize = 2;
/// A forecast counts as "slow" — the band's second regime — when it, or the
/// reading it starts from, is below this share of the station's median
/// speed in the history: congestion ahead, in progress or clearing, where
/// errors are larger than in free flow.
pub const SLOW_SHARE: f32 = 0.8;

/// Settings of the live forecasts that decide what they are (the server's
/// `[forecast]` section adds when they run). Data time everywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// History used for training (days before the data clock).
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
    /// Training reads at most about this many station-intervals (a stride
    /// over origins above it): bounds the training time.
    pub max_train_samples: usize,
    /// Boosted trees per horizon in the model (0 = the ridge alone).
    pub trees: usize,
    /// Profile method: the current departure from the profile is carried
    /// ahead multiplied by this per 5-minute step.
    pub profile_decay: f32,
}

impl Default for ServiceConfig {
    fn default() -> ServiceConfig {
        ServiceConfig {
            history_days: 14.0,
            min_model_days: 3.0,
            calibration_days: 1.0,
            band_lower: 0.1,
            band_upper: 0.9,
            band_window: 576,
            band_min_samples: 30,
            max_train_samples: 300_000,
            trees: 30,
            profile_decay: 0.9,
        }
    }
}

impl ServiceConfig {
    /// Checks the settings are usable; an error's message starts with the
    /// name of the setting it is about.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let bad = |w| Err(ServiceError::Config(w));
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
        if self.max_train_samples == 0 {
            return bad("max_train_samples must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.profile_decay) {
            return bad("profile_decay must be within 0..=1");
        }
        Ok(())
    }
}

/// Why a setting or a bucket was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceError {
    /// A setting out of range.
    Config(&'static str),
    /// A bucket at or before the last one observed.
    Stale {
        /// Start of the bucket offered.
        bucket_ms: i64,
        /// End of the last bucket observed.
        issued_ms: i64,
    },
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Config(m) => write!(f, "forecast config: {m}"),
            ServiceError::Stale {
                bucket_ms,
                issued_ms,
            } => write!(
                f,
                "bucket {bucket_ms} is not after the last observed bucket (ending {issued_ms})"
            ),
        }
    }
}

impl std::error::Error for ServiceError {}

/// One detector station's mean speed over a 5-minute bucket: what the
/// service is fed (the server turns the store's rows into these).
#[derive(Debug, Clone, PartialEq)]
pub struct StationSpeed {
    /// Start of the bucket (epoch ms, data time).
    pub bucket_ms: i64,
    /// Detector station id.
    pub detector: String,
    /// Mean speed (km/h); `None`: no speed in the bucket.
    pub speed_kmh: Option<f64>,
}

/// Which forecaster the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The trained forecaster of this module.
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

/// A station forecast: the road book's detector station.
#[derive(Debug, Clone, PartialEq)]
pub struct Station {
    /// Detector station id.
    pub id: String,
    /// Carriageway.
    pub direction: Direction,
    /// Stake (m).
    pub stake_m: f64,
}

/// What training did, for the caller to report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Training {
    /// History rows (5-minute buckets) the model was trained on (0 unless
    /// the method is [`Method::Model`]).
    pub model_rows: usize,
    /// Every `stride`-th origin was read in training.
    pub stride: usize,
    /// The settings given were invalid and the defaults were used.
    pub invalid_settings: Option<ServiceError>,
    /// Training the model failed and the profile is used instead.
    pub model_failed: Option<ForecastError>,
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
    stations: Vec<Station>,
    index: HashMap<String, usize>,
    /// Consecutive station pairs per direction.
    segments: Vec<(usize, usize)>,
    tz_ms: i64,
    band_q: (f64, f64),
    trained_until_ms: i64,
    history_days: f64,
    training: Training,
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
    /// their realised values.
    issued: VecDeque<Issued>,
    /// Median speed per station in the training history (NaN: none).
    free_speed: Vec<f32>,
    band: Band,
    readings: Vec<f32>,
    usable: Vec<bool>,
    /// The model's last update failure, for the caller to report.
    update_error: Option<ForecastError>,
}

impl ForecastService {
    /// Trains on the 5-minute `history` (any order; buckets of [`STEP_MS`])
    /// up to data time `now_ms`: buckets ending after `now_ms` or starting
    /// more than [`ServiceConfig::history_days`] before it are ignored, as
    /// are detectors not in the road book.
    ///
    /// With at least [`ServiceConfig::min_model_days`] days that have
    /// readings, the model is trained on all but the last
    /// [`ServiceConfig::calibration_days`] (at most a quarter), which are
    /// then replayed to calibrate the band and warm the forecaster up to
    /// `now_ms`. With less, a time-of-day profile is built the same way;
    /// with none, the service runs on persistence. If training fails, the
    /// profile is used; an invalid `cfg` is replaced by the defaults (both
    /// said in [`ForecastService::training`]).
    pub fn train(
        road: &RoadBook,
        history: &[StationSpeed],
        now_ms: i64,
        cfg: &ServiceConfig,
    ) -> ForecastService {
        let mut training = Training::default();
        let cfg = match cfg.validate() {
            Ok(()) => cfg.clone(),
            Err(e) => {
                training.invalid_settings = Some(e);
                ServiceConfig::default()
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
        for dir in Direction::ALL {
            let chain: Vec<usize> = road.stations(dir).iter().map(|&i| i as usize).collect();
            segments.extend(chain.windows(2).map(|w| (w[0], w[1])));
            chains.push(chain);
        }
        let band_q = (cfg.band_lower, cfg.band_upper);
        let mut svc = ForecastService {
            method: Method::Persistence,
            predictor: Predictor::Persistence,
            stations: dets
                .iter()
                .map(|d| Station {
                    id: d.id.clone(),
                    direction: d.direction,
                    stake_m: d.stake_m,
                })
                .collect(),
            index,
            segments,
            tz_ms: i64::from(road.tz_offset_s()) * 1000,
            band_q,
            trained_until_ms: now_ms.div_euclid(STEP_MS) * STEP_MS,
            history_days: 0.0,
            training,
            last_bucket_ms: None,
            current: vec![f32::NAN; n],
            last: vec![f32::NAN; n],
            heard: vec![false; n],
            forecasts: vec![f32::NAN; n * HORIZONS],
            issued: VecDeque::with_capacity(HORIZONS + 1),
            free_speed: vec![f32::NAN; n],
            band: Band::new(n, HORIZONS, band_q, cfg.band_window, cfg.band_min_samples),
            readings: vec![f32::NAN; n],
            usable: vec![false; n],
            update_error: None,
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
        let slot0 = super::slot_of(start, STEP_MS, svc.tz_ms, STEPS_PER_DAY);

        if svc.history_days >= cfg.min_model_days {
            let cal_start = rows - cal_rows.min(rows / 4);
            let stride = (n * cal_start).div_ceil(cfg.max_train_samples).max(1);
            let mcfg = ForecastConfig {
                train_stride: stride,
                boost_trees: cfg.trees,
                max_horizon: HORIZONS,
                steps_per_day: STEPS_PER_DAY,
                ..ForecastConfig::default()
            };
            let warm = mcfg.history;
            let nb = Neighbours::along_road(n, &chains, NEIGHBOURS);
            let trained = super::Series::new(n, table.clone(), slot0 as u32, Quantity::Speed)
                .and_then(|series| Forecaster::train(&series, cal_start, nb, mcfg));
            match trained {
                Ok(model) => {
                    svc.method = Method::Model;
                    svc.predictor = Predictor::Model(Box::new(LiveForecaster::new(model)));
                    svc.training.model_rows = cal_start;
                    svc.training.stride = stride;
                    let from = cal_start.saturating_sub(warm);
                    svc.replay(&table, start, from, rows, cal_start);
                }
                Err(e) => svc.training.model_failed = Some(e),
            }
        }
        if svc.method != Method::Model {
            let cal_start = rows - cal_rows.min(rows / 2);
            let mut profile = OnlineProfile::new(n, cfg.profile_decay);
            for r in 0..cal_start {
                let slot = super::slot_of(
                    start + r as i64 * STEP_MS,
                    STEP_MS,
                    svc.tz_ms,
                    STEPS_PER_DAY,
                );
                profile.add(slot, &table[r * n..(r + 1) * n]);
            }
            svc.method = Method::Profile;
            svc.predictor = Predictor::Profile(profile);
            svc.replay(&table, start, cal_start, rows, cal_start);
        }
        svc.band.recompute();
        svc
    }

    /// Feeds rows `from..to` of the wide table; errors are recorded for
    /// realised values in rows from `record_from` on.
    fn replay(&mut self, table: &[f32], start: i64, from: usize, to: usize, record_from: usize) {
        let n = self.stations.len();
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
    pub fn observe(&mut self, bucket_ms: i64, rows: &[StationSpeed]) -> Result<(), ServiceError> {
        let bucket = bucket_ms.div_euclid(STEP_MS) * STEP_MS;
        if let Some(prev) = self.last_bucket_ms
            && bucket <= prev
        {
            return Err(ServiceError::Stale {
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
        let n = self.stations.len();
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
        let slot = super::slot_of(bucket, STEP_MS, self.tz_ms, STEPS_PER_DAY);
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
                    self.update_error = Some(e);
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

    /// What training did (the caller reports it).
    pub fn training(&self) -> &Training {
        &self.training
    }

    /// The model's last update failure since this was last called (the
    /// forecasts stay defined: the failed bucket counts as missing).
    pub fn take_update_error(&mut self) -> Option<ForecastError> {
        self.update_error.take()
    }

    /// Start of the next bucket to observe (`None` before any).
    pub fn next_bucket_ms(&self) -> Option<i64> {
        self.last_bucket_ms.map(|b| b + STEP_MS)
    }

    /// Data time the training history ended.
    pub fn trained_until_ms(&self) -> i64 {
        self.trained_until_ms
    }

    /// Days of the training history that had readings.
    pub fn history_days(&self) -> f64 {
        self.history_days
    }

    /// The quantiles of the errors behind the band's lower and upper edges.
    pub fn band_quantiles(&self) -> (f64, f64) {
        self.band_q
    }

    /// The stations forecast: the road book's detector stations, in its
    /// order (the index every other call takes).
    pub fn stations(&self) -> &[Station] {
        &self.stations
    }

    /// Consecutive stations of each direction (upstream first), as pairs of
    /// station indices.
    pub fn segments(&self) -> &[(usize, usize)] {
        &self.segments
    }

    /// The speed of the last observed bucket at `station` (NaN: no usable
    /// reading in it).
    pub fn last_reading(&self, station: usize) -> f32 {
        self.current.get(station).copied().unwrap_or(f32::NAN)
    }

    /// The trained model, when the method is [`Method::Model`].
    pub fn live_model(&self) -> Option<&LiveForecaster> {
        match &self.predictor {
            Predictor::Model(live) => Some(live),
            _ => None,
        }
    }

    /// The forecast of station `station` `steps_ahead` intervals (1..=12)
    /// after the last bucket, with the band's edges (NaN where there is
    /// none).
    pub fn forecast(&self, station: usize, steps_ahead: usize) -> (f32, f32, f32) {
        if station >= self.stations.len() || !(1..=HORIZONS).contains(&steps_ahead) {
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

    /// The forecast for segment `segment` (an index of
    /// [`ForecastService::segments`]) `steps_ahead` intervals ahead: the
    /// harmonic mean of its end stations' forecasts (NaN: none).
    pub fn segment_forecast(&self, segment: usize, steps_ahead: usize) -> f32 {
        let (Some(&(a, b)), true) = (
            self.segments.get(segment),
            (1..=HORIZONS).contains(&steps_ahead),
        ) else {
            return f32::NAN;
        };
        let h = steps_ahead - 1;
        Quantity::Speed.segment(
            self.forecasts[a * HORIZONS + h],
            self.forecasts[b * HORIZONS + h],
        )
    }

    /// Band regime of a forecast `f` of `station`: 1 (slow) when it or the
    /// station's last reading is below [`SLOW_SHARE`] of its median speed.
    fn regime(&self, station: usize, f: f32) -> usize {
        let free = self.free_speed[station];
        usize::from(free.is_finite() && f.min(self.last[station]) < SLOW_SHARE * free)
    }
}
