//! Which stations inform a station's forecast: its spatial neighbours.

use super::ForecastError;
use super::series::Series;

/// Marks an empty neighbour place (e.g. no station upstream of the first).
pub const NONE: u32 = u32::MAX;

/// For each station, `k` neighbour stations in a fixed order of roles
/// (strongest link first, or upstream/downstream alternately along a road);
/// each role gets its own weights in the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    k: usize,
    idx: Vec<u32>,
}

impl Neighbours {
    /// No neighbours: each station is forecast from its own history only.
    pub fn none() -> Neighbours {
        Neighbours {
            k: 0,
            idx: Vec::new(),
        }
    }

    /// The `k` stations with the largest weights in row `i` of a square
    /// adjacency matrix (row-major, `stations × stations`; the diagonal and
    /// zero weights are ignored; ties go to the lower index).
    pub fn from_adjacency(
        stations: usize,
        weights: &[f32],
        k: usize,
    ) -> Result<Neighbours, ForecastError> {
        if weights.len() != stations * stations {
            return Err(ForecastError::AdjacencyShape {
                values: weights.len(),
                stations,
            });
        }
        let mut idx = vec![NONE; stations * k];
        let mut order: Vec<usize> = Vec::with_capacity(stations);
        for i in 0..stations {
            let row = &weights[i * stations..(i + 1) * stations];
            order.clear();
            order.extend((0..stations).filter(|&j| j != i && row[j] > 0.0 && row[j].is_finite()));
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            for (slot, &j) in order.iter().take(k).enumerate() {
                idx[i * k + slot] = j as u32;
            }
        }
        Ok(Neighbours { k, idx })
    }

    /// Neighbours along the road: for each chain of stations listed in the
    /// direction of travel, station `i` gets `[i−1, i+1, i−2, i+2, …]`
    /// (upstream first) up to `k` places. Stations in no chain get none.
    pub fn along_road(stations: usize, chains: &[Vec<usize>], k: usize) -> Neighbours {
        let mut idx = vec![NONE; stations * k];
        for chain in chains {
            for (pos, &s) in chain.iter().enumerate() {
                for place in 0..k {
                    let d = place / 2 + 1;
                    let j = if place % 2 == 0 {
                        pos.checked_sub(d)
                    } else {
                        Some(pos + d).filter(|&j| j < chain.len())
                    };
                    if let Some(j) = j {
                        idx[s * k + place] = chain[j] as u32;
                    }
                }
            }
        }
        Neighbours { k, idx }
    }

    /// When no adjacency is known: the `k` stations whose 5-minute changes
    /// correlate most with the station's own over rows `0..end` (cost
    /// `stations² × end`; meant for hundreds of stations, not thousands).
    pub fn by_correlation(series: &Series, end: usize, k: usize) -> Neighbours {
        let n = series.stations();
        let end = end.min(series.rows());
        // Standardised first differences; a difference touching a missing
        // reading counts as 0.
        let t = end.saturating_sub(1);
        let mut d = vec![0.0f32; n * t];
        for s in 0..n {
            let col = &mut d[s * t..(s + 1) * t];
            for r in 1..end {
                let (a, b) = (series.at(r - 1, s), series.at(r, s));
                col[r - 1] = if a.is_nan() || b.is_nan() { 0.0 } else { b - a };
            }
            let ss: f32 = col.iter().map(|x| x * x).sum::<f32>().sqrt();
            if ss > 0.0 {
                col.iter_mut().for_each(|x| *x /= ss);
            }
        }
        let mut corr = vec![0.0f32; n];
        let mut order: Vec<usize> = Vec::with_capacity(n);
        let mut idx = vec![NONE; n * k];
        for i in 0..n {
            let ci = &d[i * t..(i + 1) * t];
            for (j, c) in corr.iter_mut().enumerate() {
                *c = if j == i {
                    f32::NEG_INFINITY
                } else {
                    ci.iter()
                        .zip(&d[j * t..(j + 1) * t])
                        .map(|(a, b)| a * b)
                        .sum()
                };
            }
            order.clear();
            order.extend((0..n).filter(|&j| j != i && corr[j] > 0.0));
            order.sort_by(|&a, &b| corr[b].total_cmp(&corr[a]).then(a.cmp(&b)));
            for (slot, &j) in order.iter().take(k).enumerate() {
                idx[i * k + slot] = j as u32;
            }
        }
        Neighbours { k, idx }
    }

    /// Places per station.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The neighbours of `station` ([`NONE`] for an empty place).
    pub fn of(&self, station: usize) -> &[u32] {
        &self.idx[station * self.k..(station + 1) * self.k]
    }

    /// Stations covered (None when built by [`Neighbours::none`]).
    pub(crate) fn stations(&self) -> Option<usize> {
        self.idx.len().checked_div(self.k)
    }
}
