//! A wide table of readings: one row per interval, one column per station.

use super::{ForecastError, Quantity};

/// Readings of every station at every interval; a missing or implausible
/// reading is stored as NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    stations: usize,
    rows: usize,
    first_slot: u32,
    values: Vec<f32>,
}

impl Series {
    /// Builds a series from row-major `values` (`rows × stations`), marking
    /// readings the quantity deems implausible (see [`Quantity::plausible`])
    /// as missing. `first_slot` is the time-of-day slot of row 0 (0 = the
    /// interval starting at midnight).
    pub fn new(
        stations: usize,
        mut values: Vec<f32>,
        first_slot: u32,
        quantity: Quantity,
    ) -> Result<Series, ForecastError> {
        if stations == 0 {
            return Err(ForecastError::NoStations);
        }
        if !values.len().is_multiple_of(stations) {
            return Err(ForecastError::RaggedRows {
                values: values.len(),
                stations,
            });
        }
        for v in &mut values {
            if !quantity.plausible(*v) {
                *v = f32::NAN;
            }
        }
        Ok(Series {
            stations,
            rows: values.len() / stations,
            first_slot,
            values,
        })
    }

    /// Number of stations (columns).
    pub fn stations(&self) -> usize {
        self.stations
    }

    /// Number of intervals (rows).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Time-of-day slot of row 0.
    pub fn first_slot(&self) -> u32 {
        self.first_slot
    }

    /// One row (NaN = missing).
    pub fn row(&self, row: usize) -> &[f32] {
        &self.values[row * self.stations..(row + 1) * self.stations]
    }

    /// One reading (NaN = missing).
    pub fn at(&self, row: usize, station: usize) -> f32 {
        self.values[row * self.stations + station]
    }

    /// Marks one reading missing (used to simulate faults).
    pub fn set_missing(&mut self, row: usize, station: usize) {
        self.values[row * self.stations + station] = f32::NAN;
    }

    /// Share of readings that are missing.
    pub fn missing_share(&self) -> f64 {
        let missing = self.values.iter().filter(|v| v.is_nan()).count();
        missing as f64 / self.values.len().max(1) as f64
    }
}
