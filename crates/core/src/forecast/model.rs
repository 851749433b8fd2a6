//! The forecaster: per station and horizon, a Huber-loss ridge regression
//! of the departure from the time-of-day profile on engineered features,
//! and per horizon boosted trees on its residuals.

use super::analog::Analogs;
use super::boost::{BoostParams, Booster};
use super::neighbours::{NONE, Neighbours};
use super::profile::{Profile, ProfileSums, day_of_row, slot_of_row};
use super::ridge::Normal;
use super::series::Series;
use super::{ForecastConfig, ForecastError, Pooling};

/// Pairwise products of the key features (see [`fill_target_features`]).
const INTERACTIONS: usize = 10;

/// Most training samples the trees of one horizon are grown on.
const BOOST_SAMPLES: usize = 400_000;

/// Where each group of features sits in a feature vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    pub(crate) history: usize,
    pub(crate) k: usize,
    pub(crate) nb_lags: usize,
    pub(crate) harmonics: usize,
    pub(crate) own: usize,
    pub(crate) nb: usize,
    pub(crate) net: usize,
    pub(crate) shape: usize,
    pub(crate) slope: usize,
    pub(crate) analog: usize,
    pub(crate) level: usize,
    pub(crate) inter: usize,
    pub(crate) harm: usize,
    pub(crate) bias: usize,
    pub(crate) len: usize,
}

impl Layout {
    pub(crate) fn new(cfg: &ForecastConfig, k: usize) -> Layout {
        let own = 0;
        let nb = own + cfg.history;
        let net = nb + k * cfg.neighbour_lags;
        let shape = net + 2;
        let slope = shape + 2;
        let analog = slope + 1;
        let level = analog + 1;
        let inter = level + 1;
        let harm = inter + INTERACTIONS;
        let bias = harm + 2 * cfg.harmonics;
        Layout {
            history: cfg.history,
            k,
            nb_lags: cfg.neighbour_lags,
            harmonics: cfg.harmonics,
            own,
            nb,
            net,
            shape,
            slope,
            analog,
            level,
            inter,
            harm,
            bias,
            len: bias + 1,
        }
    }
}

/// Recent departures from the profile, as the features read them.
pub(crate) trait History {
    /// Imputed departure of `station` `lag` intervals before the origin.
    fn anomaly(&self, lag: usize, station: usize) -> f32;
    /// Mean departure over the network `lag` intervals before the origin.
    fn network(&self, lag: usize) -> f32;
}

/// Fills the horizon-independent features of `station` into `x`.
pub(crate) fn fill_features<H: History>(
    lay: &Layout,
    hist: &H,
    station: usize,
    neighbours: &[u32],
    x: &mut [f32],
) {
    for lag in 0..lay.history {
        x[lay.own + lag] = hist.anomaly(lag, station);
    }
    for (place, &j) in neighbours.iter().enumerate() {
        for lag in 0..lay.nb_lags {
            x[lay.nb + place * lay.nb_lags + lag] = if j == NONE {
                0.0
            } else {
                hist.anomaly(lag, j as usize)
            };
        }
    }
    x[lay.net] = hist.network(0);
    x[lay.net + 1] = hist.network(3.min(lay.history - 1));
    let a0 = x[lay.own];
    x[lay.shape] = a0.min(0.0);
    x[lay.shape + 1] = a0.abs() * a0 / 10.0;
    x[lay.bias] = 1.0;
}

/// Fills the features that depend on the target time.
pub(crate) fn fill_target_features(
    lay: &Layout,
    profile_origin: f32,
    profile_target: f32,
    analog_target: f32,
    station_mean: f32,
    harmonics: &[f32],
    x: &mut [f32],
) {
    x[lay.slope] = profile_target - profile_origin;
    x[lay.analog] = if analog_target.is_nan() {
        0.0
    } else {
        analog_target - profile_target
    };
    x[lay.level] = profile_origin - station_mean;
    let a0 = x[lay.own];
    x[lay.inter] = a0 * x[lay.level] / 10.0;
    x[lay.inter + 1] = a0 * x[lay.slope] / 10.0;
    x[lay.inter + 2] = x[lay.analog] * x[lay.level] / 10.0;
    x[lay.inter + 3] = x[lay.slope] * x[lay.level] / 10.0;
    let net = x[lay.net];
    x[lay.inter + 4] = a0 * net / 10.0;
    x[lay.inter + 5] = a0 * x[lay.analog] / 10.0;
    x[lay.inter + 6] = x[lay.level] * net / 10.0;
    x[lay.inter + 7] = net * x[lay.slope] / 10.0;
    x[lay.inter + 8] = x[lay.analog] * x[lay.slope] / 10.0;
    x[lay.inter + 9] = net * x[lay.analog] / 10.0;
    x[lay.harm..lay.harm + 2 * lay.harmonics].copy_from_slice(harmonics);
}

/// `sin, cos` of the first `n` daily harmonics at `slot`.
pub(crate) fn harmonics_at(slot: usize, steps: usize, n: usize, out: &mut [f32]) {
    let phase = std::f64::consts::TAU * slot as f64 / steps as f64;
    for i in 0..n {
        let a = phase * (i + 1) as f64;
        out[2 * i] = a.sin() as f32;
        out[2 * i + 1] = a.cos() as f32;
    }
}

/// A trained forecaster: the profile, the neighbour roles and one weight
/// vector per station and horizon (1 ..= `max_horizon` intervals ahead).
#[derive(Debug, Clone, PartialEq)]
pub struct Forecaster {
    pub(crate) cfg: ForecastConfig,
    pub(crate) stations: usize,
    pub(crate) profile: Profile,
    pub(crate) station_mean: Vec<f32>,
    pub(crate) neighbours: Neighbours,
    pub(crate) layout: Layout,
    pub(crate) weights: Vec<f32>,
    pub(crate) analogs: Analogs,
    /// Per station, the profile's highest value; the trees read the
    /// current reading as a share of it.
    pub(crate) reference: Vec<f32>,
    /// Per horizon, trees fitted to the ridge residuals (empty: none).
    pub(crate) boosters: Vec<Booster>,
}

/// Training matrices: departures from leave-one-day-out profiles.
struct TrainHistory<'a> {
    n: usize,
    anomaly: &'a [f32],
    network: &'a [f32],
    origin: usize,
}

impl History for TrainHistory<'_> {
    fn anomaly(&self, lag: usize, station: usize) -> f32 {
        self.anomaly[(self.origin - lag) * self.n + station]
    }
    fn network(&self, lag: usize) -> f32 {
        self.network[self.origin - lag]
    }
}

impl Forecaster {
    /// Trains on rows `0..end` of `series` only.
    ///
    /// Targets and features are departures from a profile built *without
    /// the target's own day* (leave-one-day-out), so that the regression
    /// sees departures as large as it will meet on new days.
    pub fn train(
        series: &Series,
        end: usize,
        neighbours: Neighbours,
        cfg: ForecastConfig,
    ) -> Result<Forecaster, ForecastError> {
        cfg.validate()?;
        let n = series.stations();
        if let Some(ns) = neighbours.stations()
            && ns != n
        {
            return Err(ForecastError::NeighbourCount {
                neighbours: ns,
                stations: n,
            });
        }
        let need = cfg.history + cfg.max_horizon;
        if end > series.rows() || end < need {
            return Err(ForecastError::TooFewRows {
                rows: end.min(series.rows()),
                need,
            });
        }
        let steps = cfg.steps_per_day;
        let sums = ProfileSums::new(series, end, steps);
        let profile = sums.profile(cfg.profile_halfwidth, None);
        let station_mean: Vec<f32> = (0..n)
            .map(|s| profile.day(s).iter().sum::<f32>() / steps as f32)
            .collect();

        // Departures from the leave-one-day-out profile: `raw` keeps the
        // gaps (targets), `imputed` fills them as the live path does.
        let mut raw = vec![f32::NAN; end * n];
        let mut loo_profile = vec![0.0f32; end * n];
        let (first_day, last_day) = (
            day_of_row(series, 0, steps),
            day_of_row(series, end - 1, steps),
        );
        for day in first_day..=last_day {
            let r0 = (day * steps).saturating_sub(series.first_slot() as usize);
            let r1 = ((day + 1) * steps - series.first_slot() as usize).min(end);
            let p = if last_day > first_day {
                sums.profile(cfg.profile_halfwidth, Some((series, r0..r1)))
            } else {
                profile.clone()
            };
            for r in r0..r1 {
                let slot = slot_of_row(series, r, steps);
                for (s, &v) in series.row(r).iter().enumerate() {
                    let pv = p.at(s, slot);
                    loo_profile[r * n + s] = pv;
                    raw[r * n + s] = v - pv;
                }
            }
        }
        let mut imputed = raw.clone();
        let mut network = vec![0.0f32; end];
        let mut carry = vec![0.0f32; n];
        let mut net_carry = 0.0f32;
        for r in 0..end {
            let (mut sum, mut cnt) = (0.0f64, 0u32);
            for s in 0..n {
                let v = &mut imputed[r * n + s];
                if v.is_nan() {
                    carry[s] *= cfg.missing_decay;
                    *v = carry[s];
                } else {
                    carry[s] = *v;
                    sum += f64::from(*v);
                    cnt += 1;
                }
            }
            net_carry = if cnt > 0 {
                (sum / f64::from(cnt)) as f32
            } else {
                net_carry * cfg.missing_decay
            };
            network[r] = net_carry;
        }

        // Analogue-day weights per origin (the origin's own day excluded).
        let analogs = Analogs::new(
            series,
            end,
            steps,
            cfg.history,
            cfg.analog_halfwidth,
            cfg.analog_beta,
        );
        let nd = analogs.days();
        let mut analog_w = vec![0.0f32; end * nd];
        for o in cfg.history - 1..end {
            let current = |lag: usize, st: usize| {
                let i = (o - lag) * n + st;
                loo_profile[i] + imputed[i]
            };
            analogs.weights(
                slot_of_row(series, o, steps),
                Some(o),
                current,
                &mut analog_w[o * nd..(o + 1) * nd],
            );
        }

        let layout = Layout::new(&cfg, neighbours.k());
        let p = layout.len;
        let hmax = cfg.max_horizon;
        let reference: Vec<f32> = (0..n)
            .map(|s| profile.day(s).iter().copied().fold(f32::MIN, f32::max))
            .collect();
        let mut weights = vec![0.0f32; n * hmax * p];
        let mut x = vec![0.0f32; p];
        let mut harm = vec![0.0f32; 2 * cfg.harmonics];
        let mut normal = Normal::new(p);
        let mut pooled = Normal::new(p);
        let origins = cfg.history - 1..end;
        let mut boosters: Vec<Booster> = Vec::new();
        let mut collected: (Vec<f32>, Vec<f32>) = (Vec::new(), Vec::new());

        // Stations whose samples feed the trees: all, or evenly spread
        // ones so that at most BOOST_SAMPLES samples are kept.
        let boost_stride = (n * end / cfg.train_stride.max(1))
            .div_ceil(BOOST_SAMPLES)
            .max(1);
        // One pass over the samples of station `s` at horizon `h`: adds
        // them to `normal`, weighted for the Huber loss around `current`
        // (iteratively reweighted least squares; unweighted without it);
        // or, given `collect`, keeps the trees' inputs and the residuals of
        // `current`.
        let mut accumulate = |normal: &mut Normal,
                              mut collect: Option<&mut (Vec<f32>, Vec<f32>)>,
                              s: usize,
                              h: usize,
                              current: Option<&[f64]>| {
            for o in origins.clone().step_by(cfg.train_stride.max(1)) {
                if o + h >= end {
                    break;
                }
                let y = raw[(o + h) * n + s];
                if y.is_nan() {
                    continue;
                }
                let hist = TrainHistory {
                    n,
                    anomaly: &imputed,
                    network: &network,
                    origin: o,
                };
                fill_features(&layout, &hist, s, neighbours.of(s), &mut x);
                harmonics_at(
                    slot_of_row(series, o + h, steps),
                    steps,
                    cfg.harmonics,
                    &mut harm,
                );
                let slot = slot_of_row(series, o, steps);
                let av = analogs.value(slot, &analog_w[o * nd..(o + 1) * nd], s, h);
                let p0 = loo_profile[o * n + s];
                fill_target_features(
                    &layout,
                    p0,
                    loo_profile[(o + h) * n + s],
                    av,
                    station_mean[s],
                    &harm,
                    &mut x,
                );
                let fit = current.map(|w| {
                    w.iter()
                        .zip(&x)
                        .map(|(a, b)| a * f64::from(*b))
                        .sum::<f64>()
                });
                if let (Some((xs, ys)), Some(fit)) = (collect.as_deref_mut(), fit) {
                    xs.extend_from_slice(&x);
                    xs.push(fit as f32);
                    xs.push((p0 + x[layout.own]) / reference[s]);
                    ys.push(y - fit as f32);
                    continue;
                }
                let wt = match fit {
                    Some(fit) => {
                        let r = (f64::from(y) - fit).abs();
                        if r <= cfg.huber_delta {
                            1.0
                        } else {
                            cfg.huber_delta / r
                        }
                    }
                    None => 1.0,
                };
                normal.add_weighted(&x, y, wt);
            }
        };

        let iterations = if cfg.huber_delta > 0.0 {
            cfg.irls_iterations
        } else {
            0
        };
        // Singular even with the penalty (no data at all): the prior, or
        // the profile alone (all weights zero).
        let solve = |normal: &Normal, lambda: f64, prior: Option<&[f64]>| -> Vec<f64> {
            normal
                .solve(lambda, layout.bias, prior)
                .unwrap_or_else(|| prior.map_or_else(|| vec![0.0; p], <[f64]>::to_vec))
        };
        for h in 1..=hmax {
            let prior: Option<Vec<f64>> = match cfg.pooling {
                Pooling::PerStation => None,
                Pooling::Pooled | Pooling::Shrunk => {
                    let mut w: Option<Vec<f64>> = None;
                    for _ in 0..=iterations {
                        pooled.clear();
                        for s in 0..n {
                            normal.clear();
                            accumulate(&mut normal, None, s, h, w.as_deref());
                            pooled.merge(&normal);
                        }
                        w = Some(solve(&pooled, cfg.pooled_lambda, None));
                    }
                    w
                }
            };
            for s in 0..n {
                let w = match (cfg.pooling, &prior) {
                    (Pooling::Pooled, Some(w)) => w.clone(),
                    _ => {
                        let mut w = prior.clone();
                        for it in 0..=iterations {
                            normal.clear();
                            let around = if it == 0 {
                                prior.as_deref()
                            } else {
                                w.as_deref()
                            };
                            accumulate(&mut normal, None, s, h, around.filter(|_| iterations > 0));
                            w = Some(solve(&normal, cfg.lambda, prior.as_deref()));
                        }
                        w.unwrap_or_else(|| vec![0.0; p])
                    }
                };
                let i = (s * hmax + h - 1) * p;
                for (d, v) in weights[i..i + p].iter_mut().zip(&w) {
                    *d = *v as f32;
                }
                if cfg.boost_trees > 0 && s % boost_stride == 0 {
                    accumulate(&mut normal, Some(&mut collected), s, h, Some(&w));
                }
            }
            if cfg.boost_trees > 0 {
                let prm = BoostParams {
                    trees: cfg.boost_trees,
                    depth: cfg.boost_depth,
                    rate: cfg.boost_rate,
                    min_leaf: 200,
                    delta: 2.0,
                    subsample: cfg.boost_subsample,
                };
                boosters.push(Booster::fit(&collected.0, p + 2, &collected.1, prm));
                collected.0.clear();
                collected.1.clear();
            }
        }
        Ok(Forecaster {
            cfg,
            stations: n,
            profile,
            station_mean,
            neighbours,
            layout,
            weights,
            analogs,
            reference,
            boosters,
        })
    }

    /// Stations forecast.
    pub fn stations(&self) -> usize {
        self.stations
    }

    /// The configuration trained with.
    pub fn config(&self) -> &ForecastConfig {
        &self.cfg
    }

    /// The historical-average profile learned from the training rows.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The neighbour roles.
    pub fn neighbours(&self) -> &Neighbours {
        &self.neighbours
    }

    /// Features per weight vector.
    pub fn feature_count(&self) -> usize {
        self.layout.len
    }

    /// The ridge weights of `station` for `steps_ahead` (1-based).
    pub fn weights(&self, station: usize, steps_ahead: usize) -> &[f32] {
        let p = self.layout.len;
        let i = station * self.cfg.max_horizon + steps_ahead - 1;
        &self.weights[i * p..(i + 1) * p]
    }
}
