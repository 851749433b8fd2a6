//! Analogue days: the training days whose last hour looked most like the
//! current one (across the whole network), and what they did next.
//! A data-driven stand-in for day-type profiles (weekday, weekend,
//! holiday) that needs no calendar.

use super::series::Series;

/// The training rows kept for analogue look-ups.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Analogs {
    n: usize,
    steps: usize,
    first_slot: usize,
    rows: usize,
    /// Readings, rows × stations (NaN = missing).
    raw: Vec<f32>,
    /// Readings smoothed over ±`halfwidth` rows (NaN = none present).
    smooth: Vec<f32>,
    window: usize,
    beta: f32,
    days: usize,
    stride: usize,
}

impl Analogs {
    /// Keeps rows `0..end` of `series`.
    pub(crate) fn new(
        series: &Series,
        end: usize,
        steps: usize,
        window: usize,
        halfwidth: usize,
        beta: f32,
    ) -> Analogs {
        let n = series.stations();
        let raw: Vec<f32> = (0..end)
            .flat_map(|r| series.row(r).iter().copied())
            .collect();
        let mut smooth = vec![f32::NAN; end * n];
        for r in 0..end {
            let (lo, hi) = (r.saturating_sub(halfwidth), (r + halfwidth + 1).min(end));
            for s in 0..n {
                let (mut sum, mut cnt) = (0.0f32, 0u32);
                for rr in lo..hi {
                    let v = raw[rr * n + s];
                    if !v.is_nan() {
                        sum += v;
                        cnt += 1;
                    }
                }
                if cnt > 0 {
                    smooth[r * n + s] = sum / cnt as f32;
                }
            }
        }
        let first_slot = series.first_slot() as usize % steps;
        Analogs {
            n,
            steps,
            first_slot,
            rows: end,
            raw,
            smooth,
            window,
            beta,
            days: (end + first_slot).div_ceil(steps) + 1,
            stride: n.div_ceil(1000).max(1),
        }
    }

    /// Candidate days (some may have no rows at a given slot).
    pub(crate) fn days(&self) -> usize {
        self.days
    }

    /// Row of day `d` at time-of-day `slot` (may lie outside the archive).
    fn row(&self, d: usize, slot: usize) -> isize {
        (d * self.steps + slot) as isize - self.first_slot as isize
    }

    /// Weights of the candidate days for an origin at `slot` whose values
    /// `lag` rows back are `current(lag, station)`; the day whose origin row
    /// is `exclude` (the sample itself, in training) gets none. Weights are
    /// `exp(−β·(d/d_min − 1))` of the mean squared difference `d`.
    pub(crate) fn weights(
        &self,
        slot: usize,
        exclude: Option<usize>,
        current: impl Fn(usize, usize) -> f32,
        w: &mut [f32],
    ) {
        let n = self.n;
        let mut best = f32::INFINITY;
        for (d, wd) in w.iter_mut().enumerate().take(self.days) {
            *wd = f32::NAN;
            let o = self.row(d, slot);
            if o < 0 || o as usize >= self.rows || exclude == Some(o as usize) {
                continue;
            }
            let (mut sum, mut cnt) = (0.0f32, 0u32);
            for lag in 0..self.window {
                let r = o - lag as isize;
                if r < 0 {
                    break;
                }
                let row = &self.raw[r as usize * n..(r as usize + 1) * n];
                for s in (0..n).step_by(self.stride) {
                    let v = row[s];
                    if !v.is_nan() {
                        let e = current(lag, s) - v;
                        sum += e * e;
                        cnt += 1;
                    }
                }
            }
            if cnt * 2 >= (self.window * n.div_ceil(self.stride)) as u32 {
                *wd = sum / cnt as f32;
                best = best.min(*wd);
            }
        }
        for wd in w.iter_mut().take(self.days) {
            *wd = if wd.is_nan() {
                0.0
            } else {
                (-self.beta * (*wd / best.max(1e-6) - 1.0)).exp()
            };
        }
    }

    /// The weighted analogue reading of `station` `ahead` rows after an
    /// origin at `slot` (NaN if no weighted day has it).
    pub(crate) fn value(&self, slot: usize, w: &[f32], station: usize, ahead: usize) -> f32 {
        let (mut sum, mut tot) = (0.0f32, 0.0f32);
        for (d, &wd) in w.iter().enumerate().take(self.days) {
            if wd <= 0.0 {
                continue;
            }
            let r = self.row(d, slot) + ahead as isize;
            if r < 0 || r as usize >= self.rows {
                continue;
            }
            let v = self.smooth[r as usize * self.n + station];
            if !v.is_nan() {
                sum += wd * v;
                tot += wd;
            }
        }
        if tot > 0.0 { sum / tot } else { f32::NAN }
    }
}
