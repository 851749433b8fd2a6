//! The fundamental diagram (基本图) of one lane and how a cell's operating
//! conditions (speed cap, blocked lanes) reshape it.
//!
//! Free branch: `q_e(ρ) = Q·(1 − (1 − ρ/ρc)^p)` with `p = v_f·ρc/Q`, so the
//! slope at ρ = 0 is the free speed and the flow peaks smoothly at capacity
//! `Q` at the critical density `ρc` (speed there `Q/ρc` ≈ 74 km/h, as on
//! real loops). Congested branch: `w·(ρj − ρ)` with `w = Q/(ρj − ρc)`. A speed
//! cap `v` (posted limit, VSL, fog, ice) truncates the free branch to
//! `min(q_e(ρ), v·ρ)`; below the critical speed it moves the peak to
//! `ρ* = w·ρj/(v + w)` with capacity `v·ρ*`.

/// Parameters of the per-lane fundamental diagram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FdParams {
    /// Mean free-flow speed at a posted limit of 120 km/h (km/h); scaled with the posted limit.
    pub free_speed_kmh: f64,
    /// Capacity per lane (veh/h).
    pub capacity_vph: f64,
    /// Critical density per lane (veh/km): where the flow peaks.
    pub critical_density: f64,
    /// Jam density per lane (veh/km).
    pub jam_density: f64,
    /// Capacity drop (通行能力下降): the share by which the discharge from a queue falls below capacity.
    pub capacity_drop: f64,
}

impl Default for FdParams {
    fn default() -> Self {
        FdParams {
            free_speed_kmh: 110.0,
            capacity_vph: 2000.0,
            critical_density: 27.0,
            jam_density: 120.0,
            capacity_drop: 0.10,
        }
    }
}

impl FdParams {
    /// Backward wave speed of the congested branch (km/h).
    pub fn wave_speed_kmh(&self) -> f64 {
        self.capacity_vph / (self.jam_density - self.critical_density)
    }

    /// Speed at capacity (km/h).
    pub fn critical_speed_kmh(&self) -> f64 {
        self.capacity_vph / self.critical_density
    }

    /// Checks the parameters describe a concave, unimodal diagram.
    pub fn validate(&self) -> Result<(), String> {
        let finite = [
            self.free_speed_kmh,
            self.capacity_vph,
            self.critical_density,
            self.jam_density,
            self.capacity_drop,
        ]
        .iter()
        .all(|x| x.is_finite());
        if !finite || self.capacity_vph <= 0.0 || self.critical_density <= 0.0 {
            return Err("fundamental diagram: values must be finite and positive".into());
        }
        if self.jam_density <= self.critical_density * 1.5 {
            return Err(
                "fundamental diagram: jam density must exceed 1.5 × critical density".into(),
            );
        }
        if self.free_speed_kmh < self.critical_speed_kmh() {
            return Err(format!(
                "fundamental diagram: free speed {} km/h is below the speed at capacity {:.0} km/h",
                self.free_speed_kmh,
                self.critical_speed_kmh()
            ));
        }
        if !(0.0..0.5).contains(&self.capacity_drop) {
            return Err("fundamental diagram: capacity drop must be in 0…0.5".into());
        }
        Ok(())
    }

    /// Equilibrium flow per lane of the uncapped diagram at density `rho` (veh/h).
    pub fn equilibrium_flow(&self, rho: f64) -> f64 {
        if rho <= 0.0 {
            0.0
        } else if rho <= self.critical_density {
            let p = self.free_speed_kmh * self.critical_density / self.capacity_vph;
            self.capacity_vph * (1.0 - (1.0 - rho / self.critical_density).powf(p))
        } else {
            (self.wave_speed_kmh() * (self.jam_density - rho)).max(0.0)
        }
    }
}

/// A cell's diagram under its current speed cap and capacity factor (per lane).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CellFd {
    /// Speed cap (km/h).
    pub v_cap: f64,
    /// Critical density under the cap (veh/km/lane).
    pub rho_star: f64,
    /// Capacity per lane including the capacity factor (veh/h).
    pub cap: f64,
}

impl CellFd {
    /// The diagram under speed cap `v_cap` with capacity multiplied by `kappa`.
    pub fn new(p: &FdParams, v_cap: f64, kappa: f64) -> CellFd {
        let v_cap = v_cap.max(5.0);
        let w = p.wave_speed_kmh();
        let (rho_star, q_star) = if v_cap * p.critical_density >= p.capacity_vph {
            (p.critical_density, p.capacity_vph)
        } else {
            let r = w * p.jam_density / (v_cap + w);
            (r, v_cap * r)
        };
        CellFd {
            v_cap,
            rho_star,
            cap: q_star * kappa.max(0.0),
        }
    }

    /// Increasing part of the diagram (veh/h/lane), valid for ρ ≤ ρ*, with
    /// `qe` the uncapped free branch (exact, or a [`QeTable`]).
    pub(crate) fn rising(&self, p: &FdParams, qe: impl Fn(f64) -> f64, rho: f64) -> f64 {
        let q = if rho < p.critical_density {
            qe(rho)
        } else {
            p.capacity_vph
        };
        q.min(self.v_cap * rho)
    }

    /// Sending function (demand) per lane (veh/h).
    pub fn sending(&self, p: &FdParams, rho: f64) -> f64 {
        self.sending_with(p, |r| p.equilibrium_flow(r), rho)
    }

    /// [`CellFd::sending`] with the free branch from `qe`.
    pub fn sending_with(&self, p: &FdParams, qe: impl Fn(f64) -> f64, rho: f64) -> f64 {
        if rho <= self.rho_star {
            self.rising(p, qe, rho).min(self.cap)
        } else {
            self.cap
        }
    }

    /// Receiving function (supply) per lane (veh/h).
    pub fn receiving(&self, p: &FdParams, rho: f64) -> f64 {
        if rho <= self.rho_star {
            self.cap
        } else {
            (p.wave_speed_kmh() * (p.jam_density - rho))
                .max(0.0)
                .min(self.cap)
        }
    }

    /// How congested the cell is, 0 (free) … 1 (queued): drives the capacity drop.
    pub fn congestion(&self, rho: f64) -> f64 {
        ((rho - self.rho_star) / 5.0).clamp(0.0, 1.0)
    }

    /// Highest speed traffic keeps at density `rho` (km/h).
    pub fn free_speed(&self, p: &FdParams, rho: f64) -> f64 {
        self.free_speed_with(p, |r| p.equilibrium_flow(r), rho)
    }

    /// [`CellFd::free_speed`] with the free branch from `qe`.
    pub fn free_speed_with(&self, p: &FdParams, qe: impl Fn(f64) -> f64, rho: f64) -> f64 {
        if rho < 0.5 {
            self.v_cap.min(p.free_speed_kmh)
        } else {
            let r = rho.min(self.rho_star);
            (self.rising(p, qe, r) / r).min(self.v_cap)
        }
    }
}

/// The free branch `q_e(ρ)` on `[0, ρc]` tabulated for linear
/// interpolation (the twin runs it a hundred million times; `powf` was
/// half its time). Largest error against the exact branch: < 0.01 veh/h
/// with the default 4,096 intervals (checked by a test).
#[derive(Debug, Clone)]
pub(crate) struct QeTable {
    inv_step: f64,
    q: Vec<f64>,
}

impl QeTable {
    /// Tabulates `p`'s free branch.
    pub fn new(p: &FdParams, intervals: usize) -> QeTable {
        let n = intervals.max(1);
        let step = p.critical_density / n as f64;
        QeTable {
            inv_step: 1.0 / step,
            q: (0..=n)
                .map(|i| p.equilibrium_flow(i as f64 * step))
                .collect(),
        }
    }

    /// `q_e(rho)` for `0 ≤ rho ≤ ρc` (clamped outside).
    #[inline]
    pub fn eval(&self, rho: f64) -> f64 {
        let x = (rho.max(0.0) * self.inv_step).min((self.q.len() - 1) as f64);
        let i = (x as usize).min(self.q.len() - 2);
        let f = x - i as f64;
        self.q[i] + f * (self.q[i + 1] - self.q[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_at_the_critical_density() {
        let p = FdParams::default();
        p.validate().unwrap();
        let qc = p.equilibrium_flow(p.critical_density);
        assert!((qc - p.capacity_vph).abs() < 1e-6);
        for r in [5.0, 15.0, 26.0, 28.0, 60.0, 120.0] {
            assert!(p.equilibrium_flow(r) < qc);
        }
        // Slope at zero is the free speed.
        let v0 = p.equilibrium_flow(0.01) / 0.01;
        assert!((v0 - p.free_speed_kmh).abs() < 0.5, "{v0}");
    }

    #[test]
    fn a_low_cap_moves_the_peak_and_lowers_capacity() {
        let p = FdParams::default();
        let free = CellFd::new(&p, 110.0, 1.0);
        assert_eq!(free.rho_star, p.critical_density);
        let capped = CellFd::new(&p, 45.0, 1.0);
        assert!(capped.rho_star > p.critical_density);
        assert!(capped.cap < p.capacity_vph && capped.cap > 1500.0);
        assert!((capped.sending(&p, 10.0) - 450.0).abs() < 1e-9);
    }

    #[test]
    fn the_table_follows_the_free_branch() {
        let p = FdParams::default();
        let t = QeTable::new(&p, 4096);
        let mut worst: f64 = 0.0;
        for i in 0..=27_000 {
            let rho = i as f64 * p.critical_density / 27_000.0;
            worst = worst.max((t.eval(rho) - p.equilibrium_flow(rho)).abs());
        }
        assert!(worst < 0.01, "{worst}");
        let f = CellFd::new(&p, 80.0, 1.0);
        for rho in [0.3, 4.0, 13.0, 26.9, 40.0, 90.0] {
            let a = f.sending(&p, rho);
            let b = f.sending_with(&p, |r| t.eval(r), rho);
            assert!((a - b).abs() < 0.01, "{rho}: {a} {b}");
        }
    }
}
