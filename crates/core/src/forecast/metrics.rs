//! Forecast error measures: MAE, RMSE and MAPE over the readings present.

/// Running sums of forecast errors; readings that are missing (NaN) or,
/// for MAPE, zero are left out (the METR-LA "masked" convention).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ErrorStats {
    n: u64,
    abs: f64,
    sq: f64,
    ape_n: u64,
    ape: f64,
}

/// Mean errors of one forecaster at one horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// Mean absolute error (unit of the readings).
    pub mae: f64,
    /// Root mean squared error (unit of the readings).
    pub rmse: f64,
    /// Mean absolute percentage error (%), over non-zero actuals.
    pub mape: f64,
    /// Forecast–actual pairs counted.
    pub count: u64,
}

impl ErrorStats {
    /// Counts one forecast against the actual reading (skipped if either is NaN).
    pub fn add(&mut self, forecast: f32, actual: f32) {
        if forecast.is_nan() || actual.is_nan() {
            return;
        }
        let e = f64::from(forecast) - f64::from(actual);
        self.n += 1;
        self.abs += e.abs();
        self.sq += e * e;
        if actual != 0.0 {
            self.ape_n += 1;
            self.ape += (e / f64::from(actual)).abs();
        }
    }

    /// Adds another accumulator's counts.
    pub fn merge(&mut self, other: &ErrorStats) {
        self.n += other.n;
        self.abs += other.abs;
        self.sq += other.sq;
        self.ape_n += other.ape_n;
        self.ape += other.ape;
    }

    /// The means so far (NaN where nothing was counted).
    pub fn metrics(&self) -> Metrics {
        let n = self.n as f64;
        Metrics {
            mae: self.abs / n,
            rmse: (self.sq / n).sqrt(),
            mape: 100.0 * self.ape / self.ape_n as f64,
            count: self.n,
        }
    }
}
