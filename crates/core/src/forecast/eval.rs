//! Evaluation on held-out rows with sliding windows: the model against
//! persistence and the historical average.

use super::ForecastError;
use super::live::LiveForecaster;
use super::metrics::{ErrorStats, Metrics};
use super::model::Forecaster;
use super::profile::slot_of_row;
use super::series::Series;

/// Errors of the three forecasters at one horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HorizonReport {
    /// Intervals ahead.
    pub steps: usize,
    /// The trained model.
    pub model: Metrics,
    /// The last reading in the window.
    pub persistence: Metrics,
    /// The training rows' time-of-day profile.
    pub historical_average: Metrics,
    /// The model's errors pooled over every step 1 ..= `steps` (how T-GCN
    /// reports a horizon: its "15 min" is the mean over 5, 10 and 15 min).
    pub model_through: Metrics,
    /// Persistence pooled over every step 1 ..= `steps`.
    pub persistence_through: Metrics,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// One report per horizon asked for, in the order asked.
    pub horizons: Vec<HorizonReport>,
    /// Forecast origins (windows) evaluated.
    pub windows: usize,
}

/// Evaluates on rows `test_from..` of `series`, which the model must not
/// have been trained on. Each window is `history` rows, all from the test
/// part, followed by the targets `steps` rows after its last row; the
/// model sees each row only once it is inside a window — it runs exactly
/// as live, row by row. All horizons use the same windows (origins from
/// `test_from + history − 1` to `rows − 1 − max(horizons)`). Targets that
/// are missing are left out of every measure.
pub fn evaluate(
    model: &Forecaster,
    series: &Series,
    test_from: usize,
    horizons: &[usize],
) -> Result<Evaluation, ForecastError> {
    let cfg = model.config();
    if series.stations() != model.stations() {
        return Err(ForecastError::ReadingCount {
            readings: series.stations(),
            stations: model.stations(),
        });
    }
    let hmax = horizons.iter().copied().max().unwrap_or(0);
    if hmax == 0 || hmax > cfg.max_horizon || horizons.contains(&0) {
        return Err(ForecastError::Horizon {
            steps: hmax,
            max: cfg.max_horizon,
        });
    }
    let first_origin = test_from + cfg.history - 1;
    if first_origin + hmax >= series.rows() {
        return Err(ForecastError::TooFewRows {
            rows: series.rows().saturating_sub(test_from),
            need: cfg.history + hmax,
        });
    }
    let steps_per_day = cfg.steps_per_day;
    let mut live = LiveForecaster::new(model.clone());
    let mut acc = vec![[ErrorStats::default(); 3]; horizons.len()];
    // Per step 1 ..= hmax: model and persistence, pooled later per horizon.
    let mut steps = vec![[ErrorStats::default(); 2]; hmax];
    let mut windows = 0;
    for o in test_from..series.rows() - hmax {
        live.push(slot_of_row(series, o, steps_per_day), series.row(o))?;
        if o < first_origin {
            continue;
        }
        windows += 1;
        for (h, st) in (1..=hmax).zip(steps.iter_mut()) {
            let target = series.row(o + h);
            let slot = slot_of_row(series, o + h, steps_per_day);
            for (s, &y) in target.iter().enumerate() {
                let last = live.last_reading(s);
                st[0].add(live.forecast(s, h), y);
                st[1].add(
                    if last.is_nan() {
                        model.profile().at(s, slot)
                    } else {
                        last
                    },
                    y,
                );
            }
        }
        for (hi, &h) in horizons.iter().enumerate() {
            let target = series.row(o + h);
            let slot = slot_of_row(series, o + h, steps_per_day);
            for (s, &y) in target.iter().enumerate() {
                if y.is_nan() {
                    continue;
                }
                let ha = model.profile().at(s, slot);
                let last = live.last_reading(s);
                acc[hi][0].add(live.forecast(s, h), y);
                acc[hi][1].add(if last.is_nan() { ha } else { last }, y);
                acc[hi][2].add(ha, y);
            }
        }
    }
    Ok(Evaluation {
        horizons: horizons
            .iter()
            .zip(&acc)
            .map(|(&h, a)| {
                let mut through = [ErrorStats::default(); 2];
                for st in &steps[..h] {
                    through[0].merge(&st[0]);
                    through[1].merge(&st[1]);
                }
                HorizonReport {
                    steps: h,
                    model: a[0].metrics(),
                    persistence: a[1].metrics(),
                    historical_average: a[2].metrics(),
                    model_through: through[0].metrics(),
                    persistence_through: through[1].metrics(),
                }
            })
            .collect(),
        windows,
    })
}
