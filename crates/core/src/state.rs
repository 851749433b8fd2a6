//! Traffic state estimation (交通状态估计) per direction along the road.
//!
//! Input: per tick, one sample per detector station built from its usable
//! lanes (faulty lanes excluded by [`crate::quality`]). Output: speed, flow
//! and density at every station and on every segment between consecutive
//! stations, with gaps (faulty or silent stations) filled.
//!
//! Method: the adaptive smoothing method of Treiber & Helbing (2002), in
//! its causal ("nowcast") form — only data up to the current tick is used:
//!
//! ```text
//! φ(x, t)   = exp(−|x|/σ − |t|/τ)
//! Z_free    = Σ φ(x−x_i, t−t_i − (x−x_i)/c_free) z_i / Σ φ(…)     (z = v, q, k)
//! Z_cong    = Σ φ(x−x_i, t−t_i − (x−x_i)/c_cong) z_i / Σ φ(…)
//! w         = ½ [1 + tanh((V_c − min(V_free, V_cong)) / ΔV)]
//! Z         = w Z_cong + (1 − w) Z_free
//! ```
//!
//! Free-flow information travels downstream at `c_free` (+80 km/h),
//! congested information upstream at `c_cong` (−15 km/h). The kernel weights
//! depend only on station positions and tick offsets, so they are computed
//! once per cell; each tick is a sparse weighted sum with no allocation.
//! Where no station inside the kernel's reach has data, the gap is bridged
//! by linear interpolation between the nearest stations that have data
//! (and the cell's `support` is 0).

use zhilu_road::{Direction, RoadBook};

/// Parameters of the estimator.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// Free-flow characteristic speed (km/h, > 0).
    pub c_free_kmh: f32,
    /// Congested characteristic speed (km/h, < 0).
    pub c_cong_kmh: f32,
    /// Cross-over speed between the two regimes (km/h).
    pub v_crit_kmh: f32,
    /// Width of the cross-over (km/h).
    pub dv_kmh: f32,
    /// Spatial smoothing width σ (m).
    pub sigma_m: f32,
    /// Temporal smoothing width τ (s).
    pub tau_s: f32,
    /// Stations each side of a cell that may contribute.
    pub reach_stations: usize,
    /// Ticks of history kept (≥ 1).
    pub history_ticks: usize,
    /// Effective vehicle length for density from occupancy (m).
    pub vehicle_length_m: f32,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            c_free_kmh: 80.0,
            c_cong_kmh: -15.0,
            v_crit_kmh: 60.0,
            dv_kmh: 20.0,
            sigma_m: 500.0,
            tau_s: 40.0,
            reach_stations: 3,
            history_ticks: 16,
            vehicle_length_m: 6.5,
        }
    }
}

/// What one detector station measured in one tick (all lanes together).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StationSample {
    /// At least one usable lane.
    pub valid: bool,
    /// Usable lanes.
    pub lanes_used: u8,
    /// Flow over the carriageway (veh/h), scaled up for excluded lanes.
    pub flow_vph: f32,
    /// Space-mean speed (km/h).
    pub speed_kmh: f32,
    /// Density over the carriageway (veh/km).
    pub density_vpkm: f32,
    /// Mean lane occupancy (%).
    pub occupancy_pct: f32,
}

impl StationSample {
    /// A station without usable data.
    pub const NONE: StationSample = StationSample {
        valid: false,
        lanes_used: 0,
        flow_vph: 0.0,
        speed_kmh: 0.0,
        density_vpkm: 0.0,
        occupancy_pct: 0.0,
    };
}

/// The estimated state at one place (a station or a segment).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Lower stake (m).
    pub from_m: f64,
    /// Higher stake (m); equal to `from_m` for a station.
    pub to_m: f64,
    /// Speed (km/h).
    pub speed_kmh: f32,
    /// Flow (veh/h, all lanes).
    pub flow_vph: f32,
    /// Density (veh/km, all lanes).
    pub density_vpkm: f32,
    /// Share of the kernel's weight backed by data (0–1); 0 = bridged.
    pub support: f32,
}

/// The state of one direction at one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectionState {
    /// Carriageway.
    pub direction: Direction,
    /// Detector indices in the direction of travel.
    pub station_ids: Vec<u32>,
    /// What each station measured this tick.
    pub samples: Vec<StationSample>,
    /// Estimate at each station, in the direction of travel.
    pub stations: Vec<Cell>,
    /// Estimate on each segment between consecutive stations, in the
    /// direction of travel (`segments[i]` lies between stations `i` and `i+1`).
    pub segments: Vec<Cell>,
}

/// The state of the corridor at one tick: the one state that detection,
/// forecasting and the live map read.
#[derive(Debug, Clone, PartialEq)]
pub struct CorridorState {
    /// Tick (epoch ms); 0 before the first tick.
    pub ts_ms: i64,
    /// One entry per direction of the road book.
    pub directions: Vec<DirectionState>,
}

/// A precomputed kernel term: station `j` seen `h` ticks ago.
#[derive(Debug, Clone, Copy)]
struct Term {
    station: u32,
    ago: u32,
    w_free: f32,
    w_cong: f32,
}

#[derive(Debug, Clone)]
struct DirKernel {
    /// Travel position of each station (m).
    pos: Vec<f64>,
    /// Cells: stations first, then segments; terms[cell_start[c]..cell_start[c+1]].
    cell_start: Vec<u32>,
    terms: Vec<Term>,
    /// Total weight per cell with all data present (free, cong).
    full: Vec<(f32, f32)>,
    /// Ring buffer: history[slot * n + station].
    history: Vec<StationSample>,
}

/// The estimator. Call [`StateEstimator::update`] once per tick.
#[derive(Debug, Clone)]
pub struct StateEstimator {
    cfg: StateConfig,
    step_ms: i64,
    kernels: Vec<DirKernel>,
    /// Tick count, for the ring buffer.
    tick_no: u64,
    last_tick_ms: i64,
    free_speed_kmh: f32,
    state: CorridorState,
    /// Scratch for [`Self::update`]: per tick offset `ago`, where that
    /// tick's samples start in a direction's history (one entry per tick
    /// of history, reused every tick).
    ago_base: Vec<usize>,
}

impl StateEstimator {
    /// An estimator for the road book with ticks every `step_ms`.
    pub fn new(road: &RoadBook, cfg: StateConfig, step_ms: i64) -> StateEstimator {
        let mut kernels = Vec::new();
        let mut directions = Vec::new();
        let c_free = cfg.c_free_kmh as f64 / 3.6;
        let c_cong = cfg.c_cong_kmh as f64 / 3.6;
        let hist = cfg.history_ticks.max(1);
        for &dir in road.directions() {
            let ids = road.stations(dir).to_vec();
            let pos: Vec<f64> = ids
                .iter()
                .map(|&i| dir.travel_m(road.detectors()[i as usize].stake_m))
                .collect();
            let n = ids.len();
            let mut cells: Vec<(f64, usize)> = (0..n).map(|i| (pos[i], i)).collect();
            for i in 0..n.saturating_sub(1) {
                cells.push(((pos[i] + pos[i + 1]) / 2.0, i));
            }
            let mut cell_start = vec![0u32];
            let mut terms = Vec::new();
            let mut full = Vec::new();
            for (c, &(x, near)) in cells.iter().enumerate() {
                // Stations within reach: around the station, or around both ends of the segment.
                let r = cfg.reach_stations;
                let (lo, hi) = if c < n {
                    (near.saturating_sub(r), (near + r).min(n - 1))
                } else {
                    ((near + 1).saturating_sub(r), (near + r).min(n - 1))
                };
                let (mut sf, mut sc) = (0.0f32, 0.0f32);
                for j in lo..=hi {
                    let dx = x - pos[j];
                    let space = (-dx.abs() / cfg.sigma_m as f64).exp();
                    for h in 0..hist {
                        let dt = h as f64 * step_ms as f64 / 1000.0;
                        let wf = space * (-(dt - dx / c_free).abs() / cfg.tau_s as f64).exp();
                        let wc = space * (-(dt - dx / c_cong).abs() / cfg.tau_s as f64).exp();
                        if wf.max(wc) < 1e-4 {
                            continue;
                        }
                        terms.push(Term {
                            station: j as u32,
                            ago: h as u32,
                            w_free: wf as f32,
                            w_cong: wc as f32,
                        });
                        sf += wf as f32;
                        sc += wc as f32;
                    }
                }
                full.push((sf, sc));
                cell_start.push(terms.len() as u32);
            }
            let stake = |x: f64| dir.travel_m(x); // travel_m is its own inverse
            let station_cells: Vec<Cell> = pos
                .iter()
                .map(|&x| Cell {
                    from_m: stake(x),
                    to_m: stake(x),
                    speed_kmh: 0.0,
                    flow_vph: 0.0,
                    density_vpkm: 0.0,
                    support: 0.0,
                })
                .collect();
            let segment_cells: Vec<Cell> = (0..n.saturating_sub(1))
                .map(|i| {
                    let (a, b) = (stake(pos[i]), stake(pos[i + 1]));
                    Cell {
                        from_m: a.min(b),
                        to_m: a.max(b),
                        speed_kmh: 0.0,
                        flow_vph: 0.0,
                        density_vpkm: 0.0,
                        support: 0.0,
                    }
                })
                .collect();
            directions.push(DirectionState {
                direction: dir,
                station_ids: ids,
                samples: vec![StationSample::NONE; n],
                stations: station_cells,
                segments: segment_cells,
            });
            kernels.push(DirKernel {
                pos,
                cell_start,
                terms,
                full,
                history: vec![StationSample::NONE; n * hist],
            });
        }
        StateEstimator {
            cfg,
            step_ms,
            kernels,
            tick_no: 0,
            last_tick_ms: i64::MIN,
            free_speed_kmh: road.speed_limit_kmh() as f32,
            state: CorridorState {
                ts_ms: 0,
                directions,
            },
            ago_base: vec![0; hist],
        }
    }

    /// The latest state.
    pub fn state(&self) -> &CorridorState {
        &self.state
    }

    /// The configuration.
    pub fn config(&self) -> &StateConfig {
        &self.cfg
    }

    /// Mutable access to this tick's station samples of direction `d`
    /// (index into the road's directions); fill them, then call [`Self::update`].
    pub fn samples_mut(&mut self, d: usize) -> &mut [StationSample] {
        &mut self.state.directions[d].samples
    }

    /// Builds a station sample from its usable lane readings, given as
    /// `(volume, interval_ms, speed_kmh or NaN, occupancy_pct)`.
    pub fn aggregate(&self, lanes_total: u8, readings: &[(u16, i64, f32, f32)]) -> StationSample {
        aggregate(&self.cfg, self.free_speed_kmh, lanes_total, readings)
    }

    /// Runs the estimator for tick `ts_ms` on the samples set through
    /// [`Self::samples_mut`].
    pub fn update(&mut self, ts_ms: i64) -> &CorridorState {
        let hist = self.cfg.history_ticks.max(1);
        // Ticks skipped since the last update leave empty history slots.
        let skipped = if self.last_tick_ms == i64::MIN || self.step_ms <= 0 {
            0
        } else {
            ((ts_ms - self.last_tick_ms) / self.step_ms - 1).clamp(0, hist as i64) as u64
        };
        for k in self.kernels.iter_mut() {
            let n = k.pos.len();
            for s in 1..=skipped {
                let slot = ((self.tick_no + s) % hist as u64) as usize;
                k.history[slot * n..(slot + 1) * n].fill(StationSample::NONE);
            }
        }
        self.tick_no += skipped + 1;
        self.last_tick_ms = ts_ms;
        self.state.ts_ms = ts_ms;
        let cfg = &self.cfg;
        for (k, dstate) in self
            .kernels
            .iter_mut()
            .zip(self.state.directions.iter_mut())
        {
            let n = k.pos.len();
            if n == 0 {
                continue;
            }
            let slot = (self.tick_no % hist as u64) as usize;
            k.history[slot * n..(slot + 1) * n].copy_from_slice(&dstate.samples);
            // Where the samples of `ago` ticks back start (no division per term).
            for (ago, base) in self.ago_base.iter_mut().enumerate() {
                *base = ((self.tick_no + hist as u64 - ago as u64) % hist as u64) as usize * n;
            }
            let n_cells = k.cell_start.len() - 1;
            for c in 0..n_cells {
                let (a, b) = (k.cell_start[c] as usize, k.cell_start[c + 1] as usize);
                let mut acc = [0.0f32; 8]; // wf, vf, qf, kf, wc, vc, qc, kc
                for t in &k.terms[a..b] {
                    let s = &k.history[self.ago_base[t.ago as usize] + t.station as usize];
                    if !s.valid {
                        continue;
                    }
                    acc[0] += t.w_free;
                    acc[1] += t.w_free * s.speed_kmh;
                    acc[2] += t.w_free * s.flow_vph;
                    acc[3] += t.w_free * s.density_vpkm;
                    acc[4] += t.w_cong;
                    acc[5] += t.w_cong * s.speed_kmh;
                    acc[6] += t.w_cong * s.flow_vph;
                    acc[7] += t.w_cong * s.density_vpkm;
                }
                let cell = if c < n {
                    &mut dstate.stations[c]
                } else {
                    &mut dstate.segments[c - n]
                };
                if acc[0] > 1e-6 && acc[4] > 1e-6 {
                    let (vf, qf, kf) = (acc[1] / acc[0], acc[2] / acc[0], acc[3] / acc[0]);
                    let (vc, qc, kc) = (acc[5] / acc[4], acc[6] / acc[4], acc[7] / acc[4]);
                    let w = 0.5 * (1.0 + ((cfg.v_crit_kmh - vf.min(vc)) / cfg.dv_kmh).tanh());
                    cell.speed_kmh = w * vc + (1.0 - w) * vf;
                    cell.flow_vph = w * qc + (1.0 - w) * qf;
                    cell.density_vpkm = w * kc + (1.0 - w) * kf;
                    let (ff, fc) = k.full[c];
                    cell.support =
                        ((1.0 - w) * acc[0] / ff.max(1e-6) + w * acc[4] / fc.max(1e-6)).min(1.0);
                } else {
                    cell.support = f32::NAN; // bridged below
                }
            }
            bridge_gaps(&k.pos, &mut dstate.stations, &mut dstate.segments);
        }
        &self.state
    }
}

/// Fills cells the kernel could not reach by linear interpolation (in travel
/// position) between the nearest cells that have an estimate; cells beyond
/// the last estimate copy it. Such cells get `support = 0`.
fn bridge_gaps(pos: &[f64], stations: &mut [Cell], segments: &mut [Cell]) {
    let n = pos.len();
    // Order cells along the road: s0, seg0, s1, seg1, …
    let at = |i: usize| {
        if i.is_multiple_of(2) {
            i / 2
        } else {
            n + i / 2
        }
    };
    let total = n + segments.len();
    let x_of = |i: usize| {
        if i.is_multiple_of(2) {
            pos[i / 2]
        } else {
            (pos[i / 2] + pos[i / 2 + 1]) / 2.0
        }
    };
    let get = |st: &[Cell], sg: &[Cell], i: usize| -> Cell {
        if at(i) < n { st[at(i)] } else { sg[at(i) - n] }
    };
    let mut prev: Option<usize> = None;
    let mut i = 0;
    while i < total {
        if !get(stations, segments, i).support.is_nan() {
            prev = Some(i);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < total && get(stations, segments, j).support.is_nan() {
            j += 1;
        }
        let next = (j < total).then_some(j);
        for g in i..j {
            let fill = match (prev, next) {
                (Some(p), Some(q)) => {
                    let (a, b) = (get(stations, segments, p), get(stations, segments, q));
                    let f = ((x_of(g) - x_of(p)) / (x_of(q) - x_of(p))) as f32;
                    (
                        a.speed_kmh + f * (b.speed_kmh - a.speed_kmh),
                        a.flow_vph + f * (b.flow_vph - a.flow_vph),
                        a.density_vpkm + f * (b.density_vpkm - a.density_vpkm),
                    )
                }
                (Some(p), None) | (None, Some(p)) => {
                    let a = get(stations, segments, p);
                    (a.speed_kmh, a.flow_vph, a.density_vpkm)
                }
                (None, None) => (f32::NAN, f32::NAN, f32::NAN),
            };
            let cell = if at(g) < n {
                &mut stations[at(g)]
            } else {
                &mut segments[at(g) - n]
            };
            cell.speed_kmh = fill.0;
            cell.flow_vph = fill.1;
            cell.density_vpkm = fill.2;
            cell.support = 0.0;
        }
        i = j;
    }
}

fn aggregate(
    cfg: &StateConfig,
    free_speed: f32,
    lanes_total: u8,
    readings: &[(u16, i64, f32, f32)],
) -> StationSample {
    if readings.is_empty() {
        return StationSample::NONE;
    }
    let (mut q, mut q_over_v, mut q_with_v, mut occ) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    for &(vol, interval_ms, v, o) in readings {
        let qi = vol as f32 * 3_600_000.0 / interval_ms.max(1) as f32;
        q += qi;
        if vol > 0 && v.is_finite() && v > 0.0 {
            q_over_v += qi / v.max(1.0);
            q_with_v += qi;
        }
        occ += o;
    }
    let used = readings.len() as f32;
    let scale = lanes_total.max(1) as f32 / used;
    let occ_mean = occ / used;
    let k_occ = occ_mean / 100.0 * 1000.0 / cfg.vehicle_length_m * lanes_total.max(1) as f32;
    let speed = if q_with_v > 0.0 {
        q_with_v / q_over_v
    } else if occ_mean >= 50.0 {
        0.0 // nobody passed and the loops are covered: a standing queue
    } else {
        free_speed // nobody passed on an empty road
    };
    let flow = q * scale;
    let density = if speed >= 20.0 { flow / speed } else { k_occ };
    StationSample {
        valid: true,
        lanes_used: readings.len() as u8,
        flow_vph: flow,
        speed_kmh: speed,
        density_vpkm: density,
        occupancy_pct: occ_mean,
    }
}
