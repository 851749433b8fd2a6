//! The historical-average profile: mean reading per station and
//! time-of-day slot, smoothed over the slots either side.

use super::series::Series;

/// Mean reading per station and time-of-day slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    steps: usize,
    values: Vec<f32>,
}

impl Profile {
    /// Slots per day.
    pub fn steps_per_day(&self) -> usize {
        self.steps
    }

    /// The profile's value for `station` at time-of-day `slot`.
    pub fn at(&self, station: usize, slot: usize) -> f32 {
        self.values[station * self.steps + slot % self.steps]
    }

    /// The whole day for one station.
    pub fn day(&self, station: usize) -> &[f32] {
        &self.values[station * self.steps..(station + 1) * self.steps]
    }
}

/// Per station and slot: sums and counts of the readings present, from
/// which profiles are built — also with one day's rows left out, so that
/// training targets are not measured against a profile that contains them.
#[derive(Debug, Clone)]
pub(crate) struct ProfileSums {
    steps: usize,
    stations: usize,
    sum: Vec<f64>,
    cnt: Vec<u32>,
    station_mean: Vec<f32>,
    overall_mean: f32,
}

impl ProfileSums {
    /// Sums over rows `0..end` of `series`.
    pub(crate) fn new(series: &Series, end: usize, steps: usize) -> ProfileSums {
        let n = series.stations();
        let mut sum = vec![0.0; n * steps];
        let mut cnt = vec![0u32; n * steps];
        for r in 0..end {
            let slot = slot_of_row(series, r, steps);
            for (s, &v) in series.row(r).iter().enumerate() {
                if !v.is_nan() {
                    sum[s * steps + slot] += f64::from(v);
                    cnt[s * steps + slot] += 1;
                }
            }
        }
        let mut station_mean = vec![f32::NAN; n];
        let (mut all_sum, mut all_cnt) = (0.0, 0u64);
        for s in 0..n {
            let ss: f64 = sum[s * steps..(s + 1) * steps].iter().sum();
            let cc: u64 = cnt[s * steps..(s + 1) * steps]
                .iter()
                .map(|&c| u64::from(c))
                .sum();
            if cc > 0 {
                station_mean[s] = (ss / cc as f64) as f32;
            }
            all_sum += ss;
            all_cnt += cc;
        }
        let overall_mean = if all_cnt > 0 {
            (all_sum / all_cnt as f64) as f32
        } else {
            0.0
        };
        ProfileSums {
            steps,
            stations: n,
            sum,
            cnt,
            station_mean,
            overall_mean,
        }
    }

    /// The profile, smoothed over `halfwidth` slots either side, leaving out
    /// the readings of `series` rows in `exclude`.
    pub(crate) fn profile(
        &self,
        halfwidth: usize,
        exclude: Option<(&Series, std::ops::Range<usize>)>,
    ) -> Profile {
        let steps = self.steps;
        let (mut sum, mut cnt) = (self.sum.clone(), self.cnt.clone());
        if let Some((series, rows)) = exclude {
            for r in rows {
                let slot = slot_of_row(series, r, steps);
                for (s, &v) in series.row(r).iter().enumerate() {
                    if !v.is_nan() {
                        sum[s * steps + slot] -= f64::from(v);
                        cnt[s * steps + slot] -= 1;
                    }
                }
            }
        }
        let hw = halfwidth.min(steps / 2);
        let mut values = vec![0.0f32; self.stations * steps];
        for s in 0..self.stations {
            let fallback = if self.station_mean[s].is_nan() {
                self.overall_mean
            } else {
                self.station_mean[s]
            };
            let (srow, crow) = (
                &sum[s * steps..(s + 1) * steps],
                &cnt[s * steps..(s + 1) * steps],
            );
            for slot in 0..steps {
                let (mut ws, mut wc) = (0.0, 0u32);
                for k in 0..=2 * hw {
                    let j = (slot + steps + k - hw) % steps;
                    ws += srow[j];
                    wc += crow[j];
                }
                values[s * steps + slot] = if wc > 0 {
                    (ws / f64::from(wc)) as f32
                } else {
                    fallback
                };
            }
        }
        Profile { steps, values }
    }
}

/// Time-of-day slot of a row.
pub(crate) fn slot_of_row(series: &Series, row: usize, steps: usize) -> usize {
    (series.first_slot() as usize + row) % steps
}

/// Day index (counted from the series' first day) of a row.
pub(crate) fn day_of_row(series: &Series, row: usize, steps: usize) -> usize {
    (series.first_slot() as usize + row) / steps
}
