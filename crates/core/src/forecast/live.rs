//! The incremental path: push each interval's readings, read forecasts.
//! Fixed ring buffers, no allocation after construction, one dot product
//! per station and horizon.

use super::ForecastError;
use super::model::{Forecaster, History, fill_features, fill_target_features, harmonics_at};

/// A trained [`Forecaster`] running on live data: keeps the last
/// `history` intervals of departures from the profile and, after every
/// [`LiveForecaster::push`], forecasts for every station 1 ..= `max_horizon`
/// intervals ahead.
#[derive(Debug, Clone)]
pub struct LiveForecaster {
    model: Forecaster,
    /// Imputed departures, `history` rows × stations (ring).
    ring: Vec<f32>,
    /// Network mean departure per ring row.
    net: Vec<f32>,
    /// Ring row of the latest interval.
    head: usize,
    /// Time-of-day slot of the latest interval (None before the first).
    slot: Option<usize>,
    /// Last usable reading per station since the reset (NaN: none yet).
    last: Vec<f32>,
    /// Forecasts, stations × max_horizon.
    out: Vec<f32>,
    /// Scratch for one block of stations: features, features with the
    /// ridge output (the trees' input), forecasts, the current reading's share of the reference, leaf indices; and the
    /// harmonics per horizon.
    xb: Vec<f32>,
    xeb: Vec<f32>,
    base: Vec<f32>,
    ratio: Vec<f32>,
    leaf_idx: Vec<u8>,
    harm: Vec<f32>,
    /// Analogue-day weights of the latest interval.
    analog_w: Vec<f32>,
}

/// Stations evaluated together.
const BLOCK: usize = 64;

struct Ring<'a> {
    ring: &'a [f32],
    net: &'a [f32],
    head: usize,
    n: usize,
    len: usize,
}

impl History for Ring<'_> {
    fn anomaly(&self, lag: usize, station: usize) -> f32 {
        let r = (self.head + self.len - lag) % self.len;
        self.ring[r * self.n + station]
    }
    fn network(&self, lag: usize) -> f32 {
        self.net[(self.head + self.len - lag) % self.len]
    }
}

impl LiveForecaster {
    /// Starts with an empty history (every departure 0: the profile).
    pub fn new(model: Forecaster) -> LiveForecaster {
        let n = model.stations;
        let cfg = &model.cfg;
        LiveForecaster {
            ring: vec![0.0; cfg.history * n],
            net: vec![0.0; cfg.history],
            head: 0,
            slot: None,
            last: vec![f32::NAN; n],
            out: vec![f32::NAN; n * cfg.max_horizon],
            xb: vec![0.0; BLOCK * model.layout.len],
            xeb: vec![0.0; BLOCK * (model.layout.len + 2)],
            base: vec![0.0; BLOCK],
            ratio: vec![0.0; BLOCK],
            leaf_idx: vec![0; BLOCK],
            harm: vec![0.0; 2 * cfg.harmonics * cfg.max_horizon],
            analog_w: vec![0.0; model.analogs.days()],
            model,
        }
    }

    /// Forgets the history (as after a long outage).
    pub fn reset(&mut self) {
        self.ring.fill(0.0);
        self.net.fill(0.0);
        self.head = 0;
        self.slot = None;
        self.last.fill(f32::NAN);
        self.out.fill(f32::NAN);
    }

    /// The trained model.
    pub fn model(&self) -> &Forecaster {
        &self.model
    }

    /// Takes the readings of the interval at time-of-day `slot` (one per
    /// station, NaN = missing; implausible values count as missing) and
    /// updates every forecast. Intervals skipped since the previous push
    /// count as missing.
    pub fn push(&mut self, slot: usize, readings: &[f32]) -> Result<(), ForecastError> {
        self.push_flagged(slot, readings, None)
    }

    /// As [`LiveForecaster::push`], with data-quality flags: a reading whose
    /// flag is `false` (a faulty or excluded detector) counts as missing.
    pub fn push_flagged(
        &mut self,
        slot: usize,
        readings: &[f32],
        usable: Option<&[bool]>,
    ) -> Result<(), ForecastError> {
        let n = self.model.stations;
        if readings.len() != n || usable.is_some_and(|u| u.len() != n) {
            return Err(ForecastError::ReadingCount {
                readings: readings.len(),
                stations: n,
            });
        }
        let cfg = &self.model.cfg;
        let steps = cfg.steps_per_day;
        let slot = slot % steps;
        let len = cfg.history;
        let decay = cfg.missing_decay;
        // Skipped intervals: decay the carried departures towards 0.
        if let Some(prev) = self.slot {
            let gap = (slot + steps - prev - 1) % steps;
            for _ in 0..gap.min(len) {
                let from = self.head;
                self.head = (self.head + 1) % len;
                for s in 0..n {
                    self.ring[self.head * n + s] = self.ring[from * n + s] * decay;
                }
                self.net[self.head] = self.net[from] * decay;
            }
        }
        let from = self.head;
        self.head = (self.head + 1) % len;
        let (mut sum, mut cnt) = (0.0f64, 0u32);
        for s in 0..n {
            let v = readings[s];
            let ok = usable.is_none_or(|u| u[s]) && cfg.quantity.plausible(v);
            let a = if ok {
                self.last[s] = v;
                let a = v - self.model.profile.at(s, slot);
                sum += f64::from(a);
                cnt += 1;
                a
            } else if self.slot.is_some() {
                self.ring[from * n + s] * decay
            } else {
                0.0
            };
            self.ring[self.head * n + s] = a;
        }
        self.net[self.head] = if cnt > 0 {
            (sum / f64::from(cnt)) as f32
        } else if self.slot.is_some() {
            self.net[from] * decay
        } else {
            0.0
        };
        self.slot = Some(slot);
        self.forecast_all(slot);
        Ok(())
    }

    fn forecast_all(&mut self, slot: usize) {
        let m = &self.model;
        let cfg = &m.cfg;
        let (n, hmax, steps, nh) = (
            m.stations,
            cfg.max_horizon,
            cfg.steps_per_day,
            2 * cfg.harmonics,
        );
        let lay = &m.layout;
        let p = lay.len;
        for h in 1..=hmax {
            harmonics_at(
                slot + h,
                steps,
                cfg.harmonics,
                &mut self.harm[(h - 1) * nh..h * nh],
            );
        }
        let ring = Ring {
            ring: &self.ring,
            net: &self.net,
            head: self.head,
            n,
            len: cfg.history,
        };
        let profile = &m.profile;
        let current = |lag: usize, st: usize| {
            profile.at(st, (slot + steps - lag % steps) % steps) + ring.anomaly(lag, st)
        };
        m.analogs.weights(slot, None, current, &mut self.analog_w);
        // Stations in blocks: the horizon-independent features once per
        // station, then per horizon a dot product per station and the
        // horizon's trees over the whole block (their nodes stay in cache).
        let boosting = !m.boosters.is_empty();
        for b0 in (0..n).step_by(BLOCK) {
            let count = (n - b0).min(BLOCK);
            for i in 0..count {
                let s = b0 + i;
                let x = &mut self.xb[i * p..(i + 1) * p];
                fill_features(lay, &ring, s, m.neighbours.of(s), x);
                let p0 = m.profile.day(s)[slot];
                self.ratio[i] = (p0 + x[lay.own]) / m.reference[s];
            }
            for h in 1..=hmax {
                for i in 0..count {
                    let s = b0 + i;
                    let day = m.profile.day(s);
                    let (p0, pt) = (day[slot], day[(slot + h) % steps]);
                    let av = m.analogs.value(slot, &self.analog_w, s, h);
                    let x = &mut self.xb[i * p..(i + 1) * p];
                    fill_target_features(
                        lay,
                        p0,
                        pt,
                        av,
                        m.station_mean[s],
                        &self.harm[(h - 1) * nh..h * nh],
                        x,
                    );
                    let k = (s * hmax + h - 1) * p;
                    let dev: f32 = m.weights[k..k + p]
                        .iter()
                        .zip(x.iter())
                        .map(|(a, b)| a * b)
                        .sum();
                    self.base[i] = pt + dev;
                    if boosting {
                        // The trees' input, feature-major.
                        for (f, &v) in x.iter().enumerate() {
                            self.xeb[f * BLOCK + i] = v;
                        }
                        self.xeb[p * BLOCK + i] = dev;
                        self.xeb[(p + 1) * BLOCK + i] = self.ratio[i];
                    }
                }
                if let Some(b) = m.boosters.get(h - 1) {
                    b.add_block(&self.xeb, BLOCK, count, &mut self.leaf_idx, &mut self.base);
                }
                for i in 0..count {
                    self.out[(b0 + i) * hmax + h - 1] = cfg.quantity.clamp(self.base[i]);
                }
            }
        }
    }

    /// The forecast for `station`, `steps_ahead` intervals (1-based) after
    /// the latest push; NaN before the first push or outside the stations
    /// and 1 ..= `max_horizon`.
    pub fn forecast(&self, station: usize, steps_ahead: usize) -> f32 {
        let hmax = self.model.cfg.max_horizon;
        if steps_ahead == 0 || steps_ahead > hmax {
            return f32::NAN;
        }
        self.out
            .get(station * hmax + steps_ahead - 1)
            .copied()
            .unwrap_or(f32::NAN)
    }

    /// The forecasts for `station`, 1 ..= `max_horizon` intervals ahead
    /// (empty for a station outside the model).
    pub fn forecasts(&self, station: usize) -> &[f32] {
        let hmax = self.model.cfg.max_horizon;
        self.out
            .get(station * hmax..(station + 1) * hmax)
            .unwrap_or(&[])
    }

    /// The last usable reading of `station` since the reset (NaN: none, or
    /// no such station): the persistence forecast.
    pub fn last_reading(&self, station: usize) -> f32 {
        self.last.get(station).copied().unwrap_or(f32::NAN)
    }

    /// Time-of-day slot of the latest push.
    pub fn slot(&self) -> Option<usize> {
        self.slot
    }
}
