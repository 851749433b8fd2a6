//! The prediction band of the live forecasts: recent out-of-sample errors
//! (realised − forecast) per regime, station and horizon, and the band's
//! edges as their quantiles.

/// Band regimes: free flow (0) and slow (1).
pub(super) const REGIMES: usize = 2;

/// The last `cap` values added, in arrival order (a ring) and sorted, so
/// that quantiles are a look-up: adding costs two binary searches and two
/// moves of at most `cap` values.
#[derive(Debug, Clone)]
pub(super) struct Window {
    ring: Vec<f32>,
    sorted: Vec<f32>,
    head: usize,
}

impl Window {
    pub(super) fn new(cap: usize) -> Window {
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
    pub(super) fn add(&mut self, v: f32, cap: usize) {
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
    pub(super) fn quantiles(&self, lo: f64, hi: f64) -> (f32, f32) {
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
pub(super) struct Band {
    stations: usize,
    horizons: usize,
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
    pub(super) lower: Vec<f32>,
    pub(super) upper: Vec<f32>,
}

impl Band {
    /// A band of the `lo_q` … `hi_q` quantiles over the last `window`
    /// errors of a cell, pooled until a cell has `min_samples`.
    pub(super) fn new(
        stations: usize,
        horizons: usize,
        (lo_q, hi_q): (f64, f64),
        window: usize,
        min_samples: usize,
    ) -> Band {
        let cap = window.max(1);
        let pooled_cap = (cap * 4).max(1024);
        let cells = REGIMES * stations * horizons;
        Band {
            stations,
            horizons,
            cap,
            pooled_cap,
            lo_q,
            hi_q,
            min_samples: min_samples.max(1),
            cells: vec![Window::new(0); cells],
            pooled: vec![Window::new(0); REGIMES * horizons],
            lower: vec![f32::NAN; cells],
            upper: vec![f32::NAN; cells],
        }
    }

    /// Cell of a regime, station and horizon (1-based).
    pub(super) fn cell(&self, regime: usize, station: usize, h: usize) -> usize {
        (regime * self.stations + station) * self.horizons + h - 1
    }

    /// Records `realised − forecast` (finite) of `station` at horizon `h`
    /// (1-based) for a forecast of `regime`.
    pub(super) fn add(&mut self, regime: usize, station: usize, h: usize, err: f32) {
        let c = self.cell(regime, station, h);
        self.cells[c].add(err, self.cap);
        self.pooled[regime * self.horizons + h - 1].add(err, self.pooled_cap);
    }

    /// Recomputes the offsets: a cell's own errors once it has
    /// `min_samples`, else all stations' of its regime and horizon, else
    /// those of the other regime.
    pub(super) fn recompute(&mut self) {
        let (lo_q, hi_q, min, hz) = (self.lo_q, self.hi_q, self.min_samples, self.horizons);
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
        let per_regime = self.stations * hz;
        for (c, w) in self.cells.iter().enumerate() {
            let (lo, hi) = if w.len() >= min {
                w.quantiles(lo_q, hi_q)
            } else {
                let (r, h) = (c / per_regime, c % hz);
                let own = pooled[r * hz + h];
                if own.0.is_nan() {
                    pooled[(1 - r) * hz + h]
                } else {
                    own
                }
            };
            self.lower[c] = lo;
            self.upper[c] = hi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_window_keeps_the_last_values_sorted() {
        let cap = 5;
        let mut w = Window::new(cap);
        // xorshift64: deterministic values with repeats.
        let mut x = 17u64;
        let mut all = Vec::new();
        for _ in 0..40 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x % 11) as f32 - 5.0;
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
    fn a_cell_uses_its_own_errors_once_it_has_enough_else_the_pool() {
        // 2 stations, 1 horizon, the 0 … 1 quantiles, 2 errors needed.
        let mut band = Band::new(2, 1, (0.0, 1.0), 10, 2);
        band.recompute();
        assert!(band.lower.iter().all(|v| v.is_nan()), "no errors: no band");
        // Station 0, free regime: -3 and 5. Station 1 has none: the pool.
        band.add(0, 0, 1, -3.0);
        band.add(0, 0, 1, 5.0);
        band.recompute();
        let (s0, s1) = (band.cell(0, 0, 1), band.cell(0, 1, 1));
        assert_eq!((band.lower[s0], band.upper[s0]), (-3.0, 5.0));
        assert_eq!((band.lower[s1], band.upper[s1]), (-3.0, 5.0));
        // Station 1's own: 1 and 2 — now its own band.
        band.add(0, 1, 1, 1.0);
        band.add(0, 1, 1, 2.0);
        band.recompute();
        assert_eq!((band.lower[s1], band.upper[s1]), (1.0, 2.0));
        // The slow regime has no errors: the free regime's pool.
        let slow = band.cell(1, 0, 1);
        assert_eq!((band.lower[slow], band.upper[slow]), (-3.0, 5.0));
    }
}
