//! The digital twin (数字孪生): a short-horizon what-if on the same cell
//! transmission model as [`crate::Sim`], started from the road as the state
//! estimator sees it now, run for several device plans over an ensemble of
//! demand draws (`docs/TWIN.md`).
//!
//! Shared with the simulator: the fundamental diagram and its speed cap
//! (`fd.rs`: [`FdParams`], the capped cell diagram, capacity drop through
//! the cell's congestion), the priority merge at entries, the compliance
//! rule for a posted limit and the capacity left beside a blocked lane.
//! What differs: no probes, detectors or weather field; flat arrays per
//! carriageway; fluid (deterministic) arrivals; device states and the
//! initial state come from the caller; one run is a few milliseconds.
//!
//! Pure: no clock, no I/O, deterministic for the same input and seed
//! (threads only share out independent runs).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use zhilu_road::{Direction, RoadBook};

use crate::fd::{CellFd, FdParams, QeTable};
use crate::layout::Layout;
use crate::sim::{EntryState, merge};

/// The twin's tables: every number it uses that is not read from the road
/// book, the state or the plan. Defaults are stated, not calibrated
/// (`docs/TWIN.md` says which will be calibrated from stored history).
#[derive(Debug, Clone, PartialEq)]
pub struct TwinConfig {
    /// Model time step (s).
    pub step_s: u32,
    /// Target cell length (m); must be ≥ free speed × step.
    pub cell_m: f64,
    /// Per-lane fundamental diagram, capacity drop included (default: the simulator's).
    pub fd: FdParams,
    /// Share of drivers who keep to a posted limit below their free speed;
    /// the rest keep their free speed (the simulator's rule: the cell's free
    /// speed becomes `limit + (1 − compliance)·(free − limit)`).
    pub compliance: f64,
    /// Farthest a speed-limit sign governs downstream when no other sign follows (m).
    pub vsl_reach_m: f64,
    /// Inflow of a metered entry (veh/h).
    pub metered_vph: f64,
    /// Most an open entry lets in (veh/h).
    pub ramp_capacity_vph: f64,
    /// Capacity left per open lane beside a blocked lane (rubbernecking);
    /// 0.72 leaves 48 % of a 3-lane road with one lane blocked (HCM: 49 %).
    pub incident_lane_factor: f64,
    /// Share of the passing traffic that leaves at each interchange (分流比).
    pub off_ramp_share: f64,
    /// Entry demand as a share of the mainline flow where the state cannot
    /// show it (no station upstream of the interchange).
    pub on_ramp_share: f64,
    /// Perception–reaction time of the stopping sight distance (s).
    pub sight_reaction_s: f64,
    /// Deceleration of the stopping sight distance (m/s²).
    pub sight_decel_mps2: f64,
    /// How much of the gap between their free speed and the speed their
    /// sight distance allows drivers close by themselves in fog (0 = none,
    /// 1 = all): drivers slow too little in fog.
    pub fog_self_slowing: f64,
    /// Extra time a vehicle turned away at a closed entry spends on its
    /// detour (h), counted in total travel time and delay so a closure
    /// does not look free.
    pub detour_h: f64,
    /// A cell slower than this, denser than its critical density, is queued (km/h).
    pub queue_speed_kmh: f64,
    /// Standard deviation of the log demand multiplier of one ensemble member.
    pub demand_sigma: f64,
    /// Correlation time of a member's demand multiplier (s).
    pub demand_corr_s: f64,
    /// Members of the demand ensemble (member 0 is the central forecast).
    pub members: usize,
    /// Seed of the ensemble's draws (the same draws for every plan).
    pub seed: u64,
    /// Time step of the time–space grid and the queue series (s).
    pub grid_step_s: u32,
    /// Space bin of the time–space grid (m).
    pub grid_cell_m: f64,
}

impl Default for TwinConfig {
    fn default() -> Self {
        TwinConfig {
            step_s: 5,
            cell_m: 300.0,
            fd: FdParams::default(),
            compliance: 0.8,
            vsl_reach_m: 3000.0,
            metered_vph: 600.0,
            ramp_capacity_vph: 1800.0,
            incident_lane_factor: 0.72,
            off_ramp_share: 0.10,
            on_ramp_share: 0.11,
            sight_reaction_s: 2.5,
            sight_decel_mps2: 3.4,
            fog_self_slowing: 0.3,
            detour_h: 0.25,
            queue_speed_kmh: 40.0,
            demand_sigma: 0.10,
            demand_corr_s: 900.0,
            members: 10,
            seed: 18,
            grid_step_s: 300,
            grid_cell_m: 1000.0,
        }
    }
}

impl TwinConfig {
    /// The speed (km/h) at which a driver can stop within `visibility_m`:
    /// `v·t_r + v²/(2a) = d`.
    pub fn sight_speed_kmh(&self, visibility_m: f64) -> f64 {
        let (t, a) = (self.sight_reaction_s, self.sight_decel_mps2);
        let d = visibility_m.max(0.0);
        let v = -a * t + ((a * t).powi(2) + 2.0 * a * d).sqrt();
        v * 3.6
    }

    fn validate(&self, posted_kmh: u16) -> Result<(), String> {
        self.fd.validate()?;
        let v_max = self.fd.free_speed_kmh * f64::from(posted_kmh).max(120.0) / 120.0;
        if self.step_s == 0
            || self.cell_m.is_nan()
            || self.cell_m < v_max / 3.6 * f64::from(self.step_s)
        {
            return Err(format!(
                "cell_m ({}) must be ≥ free speed × step ({:.0} m)",
                self.cell_m,
                v_max / 3.6 * f64::from(self.step_s)
            ));
        }
        let shares = [
            self.compliance,
            self.incident_lane_factor,
            self.off_ramp_share,
            self.on_ramp_share,
            self.fog_self_slowing,
        ];
        if !shares.iter().all(|s| (0.0..=1.0).contains(s)) {
            return Err("shares must be in 0…1".into());
        }
        if self.members == 0
            || self.grid_step_s == 0
            || !self.grid_step_s.is_multiple_of(self.step_s)
        {
            return Err("members ≥ 1; grid_step_s a positive multiple of step_s".into());
        }
        if !(self.grid_cell_m > 0.0
            && self.demand_sigma >= 0.0
            && self.demand_corr_s > 0.0
            && self.detour_h >= 0.0)
        {
            return Err("grid_cell_m, demand_corr_s > 0; demand_sigma, detour_h ≥ 0".into());
        }
        Ok(())
    }
}

/// The estimated state of one stretch of a carriageway (from the state
/// estimator: `zhilu_core::state::CorridorState`'s segments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentEstimate {
    /// Carriageway.
    pub direction: Direction,
    /// Lower stake (m).
    pub from_m: f64,
    /// Higher stake (m).
    pub to_m: f64,
    /// Flow, all lanes (veh/h).
    pub flow_vph: f64,
    /// Density, all lanes (veh/km).
    pub density_vpkm: f64,
}

/// Lanes closed over a stretch (an open incident, a lane closure).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneBlock {
    /// Carriageway.
    pub direction: Direction,
    /// Lower stake (m).
    pub from_m: f64,
    /// Higher stake (m).
    pub to_m: f64,
    /// Lanes closed (all lanes when ≥ the cell's lanes).
    pub lanes: u8,
    /// Seconds after the start when the lanes reopen (`None`: not within
    /// the horizon).
    pub until_s: Option<u32>,
}

/// Low visibility over a stretch (an open fog event).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FogZone {
    /// Carriageway, or `None` for both.
    pub direction: Option<Direction>,
    /// Lower stake (m).
    pub from_m: f64,
    /// Higher stake (m).
    pub to_m: f64,
    /// Visibility (m).
    pub visibility_m: f64,
}

/// Where the twin starts: the road as it is now. Events and fog are taken
/// to last the whole horizon.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TwinStart {
    /// The estimated state per stretch (empty: an empty road).
    pub segments: Vec<SegmentEstimate>,
    /// Lanes blocked by open events.
    pub blocks: Vec<LaneBlock>,
    /// Fog now.
    pub fog: Vec<FogZone>,
}

/// A set of device states to try. Devices not named keep no limit (posted
/// limit) and open entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TwinPlan {
    /// Name shown with the results.
    pub name: String,
    /// Speed-limit signs: id → limit (`None` = dark, the posted limit).
    pub limits: Vec<(String, Option<u16>)>,
    /// Entries: interchange id, carriageway (`None` = every one it feeds), state.
    pub entries: Vec<(String, Option<Direction>, EntryState)>,
    /// Lanes the plan closes.
    pub closures: Vec<LaneBlock>,
}

/// What a plan does in one run (one demand member).
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// Total time spent by all vehicles, waiting at entries and the detours
    /// of those turned away (`TwinConfig::detour_h` each) included (veh·h).
    pub total_travel_time_veh_h: f64,
    /// Total time minus the time the same vehicle-km take at free speed (veh·h).
    pub delay_veh_h: f64,
    /// Longest queue seen (m), either carriageway.
    pub max_queue_m: f64,
    /// Seconds after the start when the last queue cleared: `Some(0)` when
    /// there never was one, `None` when one is left at the horizon.
    pub clear_after_s: Option<u32>,
    /// Vehicle-weighted variance of speed over the run ((km/h)²).
    pub speed_variance: f64,
    /// Vehicles entering fog over the run.
    pub fog_entering_veh: f64,
    /// Share of them arriving faster than the fog's sight distance allows.
    pub fog_too_fast_share: f64,
    /// Vehicles turned away at closed entries.
    pub turned_away_veh: f64,
    /// Vehicles still waiting at entries at the horizon.
    pub entry_queue_veh: f64,
}

/// One queue sample: the longest queue of a carriageway at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueSample {
    /// Seconds after the start.
    pub t_s: u32,
    /// Carriageway.
    pub direction: Direction,
    /// Stake of the queue's tail (upstream end), `None` without a queue.
    pub tail_m: Option<f64>,
    /// Length (m).
    pub length_m: f64,
}

/// Speeds of one carriageway on a grid (the central member).
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSpace {
    /// Carriageway.
    pub direction: Direction,
    /// Stake where each column starts, in the direction of travel (m).
    pub stakes_m: Vec<f64>,
    /// `speed_kmh[row][col]`, a row every `TwinConfig::grid_step_s` from the start (row 0 = now).
    pub speed_kmh: Vec<Vec<f32>>,
}

/// 10th, 50th and 90th percentiles over the ensemble.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl Band {
    fn of(mut v: Vec<f64>) -> Band {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if v.is_empty() {
                return f64::NAN;
            }
            let x = p * (v.len() - 1) as f64;
            let (i, f) = (x.floor() as usize, x - x.floor());
            let j = (i + 1).min(v.len() - 1);
            v[i] + f * (v[j] - v[i])
        };
        Band {
            p10: q(0.1),
            p50: q(0.5),
            p90: q(0.9),
        }
    }
}

/// A plan's outcome: the central member's figures, the ensemble's bands,
/// the queue's tail over time and the time–space grid (central member).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOutcome {
    /// The plan's name.
    pub name: String,
    /// Central member (demand as forecast).
    pub central: RunFigures,
    /// Band of total travel time (veh·h).
    pub total_travel_time_band: Band,
    /// Band of delay (veh·h).
    pub delay_band: Band,
    /// Band of the longest queue (m).
    pub max_queue_band: Band,
    /// Band of the share arriving too fast at fog.
    pub fog_too_fast_band: Band,
    /// Members whose queue had not cleared at the horizon.
    pub members_not_cleared: usize,
    /// Entries the plan closes (interchange id, carriageway).
    pub entries_closed: Vec<(String, Direction)>,
    /// Queue samples of the central member, every `grid_step_s`.
    pub queue: Vec<QueueSample>,
    /// Time–space grids of the central member, one per carriageway.
    pub timespace: Vec<TimeSpace>,
}

/// Why a twin could not be built or a plan not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwinError {
    /// The configuration is unusable.
    #[error("twin config: {0}")]
    Config(String),
    /// A plan names a device the road book does not have (of that kind).
    #[error("plan `{plan}`: {message}")]
    Plan {
        /// Plan name.
        plan: String,
        /// What is wrong.
        message: String,
    },
}

impl Layout {
    fn cell_of_stake(&self, stake_m: f64) -> usize {
        let k = ((self.dir.travel_m(stake_m) - self.travel0) / self.cell_m).floor();
        (k.max(0.0) as usize).min(self.n() - 1)
    }
    /// Cells overlapping the stake range [a, b].
    fn cells_in(&self, a: f64, b: f64) -> std::ops::RangeInclusive<usize> {
        let (x, y) = (self.cell_of_stake(a), self.cell_of_stake(b));
        x.min(y)..=x.max(y)
    }
    fn stake_of_boundary(&self, b: usize) -> f64 {
        self.dir.sign() * (self.travel0 + self.cell_m * b as f64)
    }
}

/// Initial conditions and demand, resolved on the cells.
#[derive(Debug, Clone)]
struct Prepared {
    /// Per carriageway: density per cell (veh/km/lane).
    rho: Vec<Vec<f64>>,
    /// Lanes blocked by events.
    blocks: Vec<LaneBlock>,
    /// Visibility per cell (m; infinite when clear).
    visibility: Vec<Vec<f64>>,
    /// Mainline demand at the upstream end (veh/h).
    origin_vph: Vec<f64>,
    /// Demand per entry (veh/h).
    ramp_vph: Vec<Vec<f64>>,
}

/// A plan resolved on the cells.
#[derive(Debug, Clone)]
struct Resolved {
    name: String,
    /// Per carriageway: each cell's diagram under the plan at the start.
    fd: Vec<Vec<CellFd>>,
    /// The diagrams from a time on (s after the start), as blocked lanes reopen.
    later: Vec<(u32, Vec<Vec<CellFd>>)>,
    /// Free speed with no plan (the delay's reference, km/h).
    free_ref: Vec<Vec<f64>>,
    /// Sight-distance speed per cell (km/h; infinite when clear).
    sight: Vec<Vec<f64>>,
    /// Speed the compliant drivers keep in free flow (km/h).
    kept: Vec<Vec<f64>>,
    /// Entry rates (veh/h) per carriageway and entry; 0 = closed.
    ramp_rate: Vec<Vec<f64>>,
    entries_closed: Vec<(String, Direction)>,
}

/// The twin of a corridor: its cells, built once from the road book.
#[derive(Debug, Clone)]
pub struct Twin {
    road: RoadBook,
    cfg: TwinConfig,
    cws: Vec<Layout>,
    posted_free: f64,
    qe: QeTable,
}

fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(1e-12);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Twin {
    /// Builds the cells of every carriageway (the simulator's layout: cell
    /// lanes from the nearest station, signs governing downstream to the
    /// next sign or `vsl_reach_m`, exits 400 m before and entries 400 m
    /// after each interchange).
    pub fn new(road: &RoadBook, cfg: TwinConfig) -> Result<Twin, TwinError> {
        cfg.validate(road.speed_limit_kmh())
            .map_err(TwinError::Config)?;
        let g = road.geometry();
        let (a, b) = (g.start_m(), g.end_m());
        let len = b - a;
        let n = ((len / cfg.cell_m).round() as usize).max(2);
        let cell_m = len / n as f64;
        let posted_free = cfg.fd.free_speed_kmh * f64::from(road.speed_limit_kmh()) / 120.0;
        if cell_m < posted_free.max(cfg.fd.free_speed_kmh) / 3.6 * f64::from(cfg.step_s) {
            return Err(TwinError::Config(format!(
                "the road ({len:.0} m) is too short for cells of {:.0} m",
                cfg.cell_m
            )));
        }
        let cws = road
            .directions()
            .iter()
            .map(|&dir| Layout::build(road, dir, (a, b), n, cfg.vsl_reach_m, cfg.off_ramp_share))
            .collect();
        Ok(Twin {
            road: road.clone(),
            qe: QeTable::new(&cfg.fd, 4096),
            cfg,
            cws,
            posted_free,
        })
    }

    /// The tables in use.
    pub fn config(&self) -> &TwinConfig {
        &self.cfg
    }

    /// Cells per carriageway.
    pub fn cells(&self) -> usize {
        self.cws.first().map_or(0, Layout::n)
    }

    fn prepare(&self, start: &TwinStart) -> Prepared {
        let p = self.cfg.fd;
        let mut out = Prepared {
            rho: Vec::new(),
            blocks: start.blocks.clone(),
            visibility: Vec::new(),
            origin_vph: Vec::new(),
            ramp_vph: Vec::new(),
        };
        for lay in &self.cws {
            let n = lay.n();
            let mut segs: Vec<&SegmentEstimate> = start
                .segments
                .iter()
                .filter(|s| s.direction == lay.dir)
                .collect();
            segs.sort_by(|x, y| {
                lay.dir
                    .travel_m(x.from_m.min(x.to_m))
                    .total_cmp(&lay.dir.travel_m(y.from_m.min(y.to_m)))
            });
            // The segment covering a stake, else the nearest one.
            let seg_at = |stake: f64| -> Option<&SegmentEstimate> {
                segs.iter().copied().min_by(|x, y| {
                    let d = |s: &SegmentEstimate| {
                        let (a, b) = (s.from_m.min(s.to_m), s.from_m.max(s.to_m));
                        if stake < a {
                            a - stake
                        } else if stake > b {
                            stake - b
                        } else {
                            0.0
                        }
                    };
                    d(x).total_cmp(&d(y))
                })
            };
            let mut rho = vec![0.0; n];
            for (k, r) in rho.iter_mut().enumerate() {
                let centre = lay.dir.sign() * (lay.travel0 + (k as f64 + 0.5) * lay.cell_m);
                if let Some(s) = seg_at(centre) {
                    *r = (s.density_vpkm.max(0.0) / f64::from(lay.lanes[k])).min(p.jam_density);
                }
            }
            let mut vis = vec![f64::INFINITY; n];
            for f in start
                .fog
                .iter()
                .filter(|f| f.direction.is_none_or(|d| d == lay.dir))
            {
                for k in lay.cells_in(f.from_m, f.to_m) {
                    vis[k] = vis[k].min(f.visibility_m.max(1.0));
                }
            }
            // Demand: persistence of the flows now (the speed forecast is
            // not a flow forecast): at the upstream end the first stretch's
            // flow; at each entry the flow the stretch after it gains over
            // the stretch before it, less the exit share.
            let first = lay.stake_of_boundary(0);
            let origin = seg_at(first).map_or(0.0, |s| s.flow_vph.max(0.0));
            let mut ramps = Vec::new();
            for &ii in &lay.ramp_ic {
                let t = lay
                    .dir
                    .travel_m(self.road.interchanges()[ii as usize].stake_m);
                let covers_before = segs
                    .iter()
                    .any(|s| lay.dir.travel_m(s.from_m).min(lay.dir.travel_m(s.to_m)) < t - 600.0);
                let before = seg_at(lay.dir.sign() * (t - 600.0));
                let after = seg_at(lay.dir.sign() * (t + 600.0));
                let q = match (before, after, covers_before) {
                    (Some(u), Some(d), true) if !std::ptr::eq(u, d) => {
                        d.flow_vph - (1.0 - self.cfg.off_ramp_share) * u.flow_vph
                    }
                    _ => self.cfg.on_ramp_share * origin,
                };
                ramps.push(q.clamp(0.0, self.cfg.ramp_capacity_vph));
            }
            out.rho.push(rho);
            out.visibility.push(vis);
            out.origin_vph.push(origin);
            out.ramp_vph.push(ramps);
        }
        out
    }

    fn resolve(&self, pre: &Prepared, plan: &TwinPlan) -> Result<Resolved, TwinError> {
        let cfg = &self.cfg;
        let p = cfg.fd;
        let err = |m: String| TwinError::Plan {
            plan: plan.name.clone(),
            message: m,
        };
        let mut sign_limit: Vec<Option<u16>> = vec![None; self.road.vsl().len()];
        for (id, lim) in &plan.limits {
            let i = self
                .road
                .vsl()
                .iter()
                .position(|s| &s.id == id)
                .ok_or_else(|| err(format!("no speed-limit sign `{id}`")))?;
            if lim.is_some_and(|v| !(5..=200).contains(&v)) {
                return Err(err(format!("{id}: a limit must be 5…200 km/h")));
            }
            sign_limit[i] = *lim;
        }
        let mut ramp_rate: Vec<Vec<f64>> = self
            .cws
            .iter()
            .map(|l| vec![cfg.ramp_capacity_vph; l.ramp_ic.len()])
            .collect();
        let mut entries_closed = Vec::new();
        for (id, dir, state) in &plan.entries {
            let ii = self
                .road
                .interchanges()
                .iter()
                .position(|x| &x.id == id)
                .ok_or_else(|| err(format!("no interchange `{id}`")))?;
            let mut found = false;
            for (ci, lay) in self.cws.iter().enumerate() {
                if dir.is_some_and(|d| d != lay.dir) {
                    continue;
                }
                if let Some(ri) = lay.ramp_ic.iter().position(|&x| x as usize == ii) {
                    found = true;
                    ramp_rate[ci][ri] = match state {
                        EntryState::Open => cfg.ramp_capacity_vph,
                        EntryState::Metered => cfg.metered_vph,
                        EntryState::Closed => 0.0,
                    };
                    if *state == EntryState::Closed {
                        entries_closed.push((id.clone(), lay.dir));
                    }
                }
            }
            if !found {
                return Err(err(format!(
                    "interchange `{id}` has no entry{}",
                    dir.map_or(String::new(), |d| format!(
                        " to the {} carriageway",
                        d.as_str()
                    ))
                )));
            }
        }
        let mut speed = Vec::new();
        let mut kappa0 = Vec::new();
        let mut free_ref = Vec::new();
        let mut sight = Vec::new();
        let mut kept = Vec::new();
        for (ci, lay) in self.cws.iter().enumerate() {
            let n = lay.n();
            let mut v_ = Vec::with_capacity(n);
            let mut k_ = Vec::with_capacity(n);
            let mut r = Vec::with_capacity(n);
            let mut s = Vec::with_capacity(n);
            let mut kp = Vec::with_capacity(n);
            for k in 0..n {
                let free = self.posted_free * if lay.tunnel[k].is_some() { 0.92 } else { 1.0 };
                let vis = pre.visibility[ci][k];
                let vs = if vis.is_finite() {
                    cfg.sight_speed_kmh(vis)
                } else {
                    f64::INFINITY
                };
                // Everyone slows a little in fog by themselves; the
                // compliant share then keeps to a lower limit, the rest
                // keeps its own speed.
                let mut own = free;
                if vs < own {
                    own -= cfg.fog_self_slowing * (own - vs);
                }
                let mut kept = own;
                if let Some(lim) = lay.sign[k].and_then(|i| sign_limit[i as usize]) {
                    kept = kept.min(f64::from(lim));
                }
                v_.push(kept + (1.0 - cfg.compliance) * (own - kept));
                k_.push(if lay.tunnel[k].is_some() { 0.95 } else { 1.0 });
                r.push(free);
                s.push(vs);
                kp.push(kept);
            }
            speed.push(v_);
            kappa0.push(k_);
            free_ref.push(r);
            sight.push(s);
            kept.push(kp);
        }
        // The diagrams with the blocks in force at `t_s`.
        let blocks: Vec<&LaneBlock> = pre.blocks.iter().chain(&plan.closures).collect();
        let diagrams = |t_s: u32| -> Vec<Vec<CellFd>> {
            self.cws
                .iter()
                .enumerate()
                .map(|(ci, lay)| {
                    let mut blocked = vec![0u8; lay.n()];
                    for b in blocks
                        .iter()
                        .filter(|b| b.direction == lay.dir && b.until_s.is_none_or(|u| u > t_s))
                    {
                        for k in lay.cells_in(b.from_m, b.to_m) {
                            blocked[k] = blocked[k].saturating_add(b.lanes).min(lay.lanes[k]);
                        }
                    }
                    (0..lay.n())
                        .map(|k| {
                            let lanes = lay.lanes[k];
                            let mut kappa = kappa0[ci][k];
                            if blocked[k] >= lanes {
                                kappa = 0.0;
                            } else if blocked[k] > 0 {
                                kappa *= f64::from(lanes - blocked[k]) / f64::from(lanes)
                                    * cfg.incident_lane_factor;
                            }
                            CellFd::new(&p, speed[ci][k], kappa)
                        })
                        .collect()
                })
                .collect()
        };
        let fd = diagrams(0);
        let mut times: Vec<u32> = blocks
            .iter()
            .filter_map(|b| b.until_s)
            .filter(|&u| u > 0)
            .collect();
        times.sort_unstable();
        times.dedup();
        let later = times.iter().map(|&t| (t, diagrams(t))).collect();
        Ok(Resolved {
            name: plan.name.clone(),
            fd,
            later,
            free_ref,
            sight,
            kept,
            ramp_rate,
            entries_closed,
        })
    }

    /// Runs every plan over the ensemble for `horizon_s` seconds from
    /// `start`, sharing the runs out over `threads` threads (≥ 1). The
    /// same demand draws serve every plan (common random numbers), so the
    /// plans' differences are the plans'.
    pub fn compare(
        &self,
        start: &TwinStart,
        plans: &[TwinPlan],
        horizon_s: u32,
        threads: usize,
    ) -> Result<Vec<PlanOutcome>, TwinError> {
        let pre = self.prepare(start);
        let resolved: Vec<Resolved> = plans
            .iter()
            .map(|p| self.resolve(&pre, p))
            .collect::<Result<_, _>>()?;
        let m = self.cfg.members;
        let jobs = resolved.len() * m;
        let results: Vec<Mutex<Option<RunOut>>> = (0..jobs).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let work = || {
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= jobs {
                    break;
                }
                let (pi, member) = (j / m, j % m);
                let out = self.run(&pre, &resolved[pi], member, horizon_s);
                if let Ok(mut slot) = results[j].lock() {
                    *slot = Some(out);
                }
            }
        };
        let threads = threads.clamp(1, jobs.max(1));
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        let mut runs: Vec<RunOut> = results
            .into_iter()
            .map(|r| {
                r.into_inner()
                    .ok()
                    .flatten()
                    .expect("every run finished (a panicking run would have ended the scope)")
            })
            .collect();
        let mut out = Vec::with_capacity(resolved.len());
        for (pi, res) in resolved.iter().enumerate().rev() {
            let mine: Vec<RunOut> = runs.drain(pi * m..).collect();
            let band = |f: &dyn Fn(&RunFigures) -> f64| {
                Band::of(mine.iter().map(|r| f(&r.figures)).collect())
            };
            let central = &mine[0];
            out.push(PlanOutcome {
                name: res.name.clone(),
                central: central.figures.clone(),
                total_travel_time_band: band(&|f| f.total_travel_time_veh_h),
                delay_band: band(&|f| f.delay_veh_h),
                max_queue_band: band(&|f| f.max_queue_m),
                fog_too_fast_band: band(&|f| f.fog_too_fast_share),
                members_not_cleared: mine
                    .iter()
                    .filter(|r| r.figures.clear_after_s.is_none())
                    .count(),
                entries_closed: res.entries_closed.clone(),
                queue: central.queue.clone(),
                timespace: central.timespace.clone(),
            });
        }
        out.reverse();
        Ok(out)
    }

    /// One plan, one member.
    fn run(&self, pre: &Prepared, plan: &Resolved, member: usize, horizon_s: u32) -> RunOut {
        let cfg = &self.cfg;
        let p = cfg.fd;
        let qe = |r: f64| self.qe.eval(r);
        let dt_s = f64::from(cfg.step_s);
        let dt_h = dt_s / 3600.0;
        let steps = horizon_s.div_ceil(cfg.step_s);
        let grid_every = cfg.grid_step_s / cfg.step_s;
        let drop = p.capacity_drop;
        let mut rng = fastrand::Rng::with_seed(
            cfg.seed ^ (member as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let sigma = if member == 0 { 0.0 } else { cfg.demand_sigma };
        let phi = (-dt_s / cfg.demand_corr_s).exp();
        let innov = (1.0 - phi * phi).sqrt();
        let mut fig = RunFigures {
            total_travel_time_veh_h: 0.0,
            delay_veh_h: 0.0,
            max_queue_m: 0.0,
            clear_after_s: Some(0),
            speed_variance: 0.0,
            fog_entering_veh: 0.0,
            fog_too_fast_share: 0.0,
            turned_away_veh: 0.0,
            entry_queue_veh: 0.0,
        };
        let (mut sw, mut swv, mut swv2) = (0.0, 0.0, 0.0);
        let mut too_fast = 0.0;
        let mut free_time = 0.0;
        let mut last_queue_s: Option<u32> = None;
        let mut queue = Vec::new();
        let mut timespace: Vec<TimeSpace> = Vec::new();
        let keep = member == 0;
        struct PerCell {
            dt_per_veh: f64,
            inv_lanes: f64,
            veh_per_rho: f64,
            free_h_per_q: f64,
            v_empty: f64,
            v_star: f64,
        }
        let per_cell: Vec<Vec<PerCell>> = self
            .cws
            .iter()
            .enumerate()
            .map(|(ci, lay)| {
                let l_km = lay.cell_m / 1000.0;
                (0..lay.n())
                    .map(|k| {
                        let lanes = f64::from(lay.lanes[k]);
                        let f = &plan.fd[ci][k];
                        PerCell {
                            dt_per_veh: dt_h / (l_km * lanes),
                            inv_lanes: 1.0 / lanes,
                            veh_per_rho: lanes * l_km,
                            free_h_per_q: dt_h * l_km / plan.free_ref[ci][k],
                            v_empty: f.free_speed_with(&p, qe, 0.0),
                            v_star: f.free_speed_with(&p, qe, f.rho_star),
                        }
                    })
                    .collect()
            })
            .collect();
        struct Cw {
            rho: Vec<f64>,
            speed: Vec<f64>,
            inflow: Vec<f64>,
            out_up: Vec<f64>,
            in_down: Vec<f64>,
            origin_queue: f64,
            ramp_queue: Vec<f64>,
            z: Vec<f64>,
        }
        let mut st: Vec<Cw> = self
            .cws
            .iter()
            .enumerate()
            .map(|(ci, lay)| {
                let n = lay.n();
                let rho = pre.rho[ci].clone();
                let speed = (0..n)
                    .map(|k| {
                        let (f, r) = (&plan.fd[ci][k], rho[k]);
                        if r < 0.5 {
                            f.free_speed_with(&p, qe, r)
                        } else {
                            (f.sending_with(&p, qe, r).min(f.receiving(&p, r)) / r)
                                .min(f.free_speed_with(&p, qe, r))
                        }
                    })
                    .collect();
                Cw {
                    rho,
                    speed,
                    inflow: vec![0.0; n],
                    out_up: vec![0.0; n + 1],
                    in_down: vec![0.0; n + 1],
                    origin_queue: 0.0,
                    ramp_queue: vec![0.0; lay.ramp_ic.len()],
                    z: (0..=lay.ramp_ic.len()).map(|_| normal(&mut rng)).collect(),
                }
            })
            .collect();
        if keep {
            for lay in &self.cws {
                let bins = ((lay.n() as f64 * lay.cell_m) / cfg.grid_cell_m).ceil() as usize;
                timespace.push(TimeSpace {
                    direction: lay.dir,
                    stakes_m: (0..bins)
                        .map(|i| lay.dir.sign() * (lay.travel0 + i as f64 * cfg.grid_cell_m))
                        .collect(),
                    speed_kmh: Vec::new(),
                });
            }
        }
        let mut fd_now = &plan.fd;
        let mut next_phase = 0;
        for step in 0..=steps {
            // Blocked lanes reopening.
            while next_phase < plan.later.len() && plan.later[next_phase].0 <= step * cfg.step_s {
                fd_now = &plan.later[next_phase].1;
                next_phase += 1;
            }
            // Queues and the grid at this time (before the step).
            if step % grid_every == 0 || step == steps {
                let t_s = step * cfg.step_s;
                let mut any = false;
                for (ci, lay) in self.cws.iter().enumerate() {
                    let c = &st[ci];
                    let (mut best, mut best_tail, mut run, mut run_tail) =
                        (0usize, 0usize, 0usize, 0usize);
                    for k in 0..lay.n() {
                        if c.speed[k] < cfg.queue_speed_kmh && c.rho[k] > plan.fd[ci][k].rho_star {
                            if run == 0 {
                                run_tail = k;
                            }
                            run += 1;
                            if run > best {
                                best = run;
                                best_tail = run_tail;
                            }
                        } else {
                            run = 0;
                        }
                    }
                    let length = best as f64 * lay.cell_m;
                    any |= best > 0;
                    fig.max_queue_m = fig.max_queue_m.max(length);
                    if keep {
                        queue.push(QueueSample {
                            t_s,
                            direction: lay.dir,
                            tail_m: (best > 0).then(|| lay.stake_of_boundary(best_tail)),
                            length_m: length,
                        });
                        if step % grid_every == 0 {
                            let ts = &mut timespace[ci];
                            let bins = ts.stakes_m.len();
                            let mut sum = vec![0.0; bins];
                            let mut cnt = vec![0.0; bins];
                            for k in 0..lay.n() {
                                let x = (k as f64 + 0.5) * lay.cell_m / cfg.grid_cell_m;
                                let i = (x as usize).min(bins - 1);
                                sum[i] += c.speed[k];
                                cnt[i] += 1.0;
                            }
                            ts.speed_kmh.push(
                                sum.iter()
                                    .zip(&cnt)
                                    .map(|(s, n)| {
                                        if *n > 0.0 {
                                            (s / n * 10.0).round() as f32 / 10.0
                                        } else {
                                            f32::NAN
                                        }
                                    })
                                    .collect(),
                            );
                        }
                    }
                }
                if any {
                    last_queue_s = Some(t_s);
                }
            }
            if step == steps {
                break;
            }
            for (ci, lay) in self.cws.iter().enumerate() {
                let c = &mut st[ci];
                let fd = &fd_now[ci];
                let n = lay.n();
                // Demand this step: AR(1) log-normal multipliers per source.
                let mut mult = |i: usize, rng: &mut fastrand::Rng| {
                    if sigma == 0.0 {
                        return 1.0;
                    }
                    c.z[i] = phi * c.z[i] + innov * normal(rng);
                    (sigma * c.z[i] - 0.5 * sigma * sigma).exp()
                };
                let f0 = mult(0, &mut rng);
                let fr: Vec<f64> = (0..lay.ramp_ic.len())
                    .map(|i| mult(i + 1, &mut rng))
                    .collect();
                c.origin_queue += pre.origin_vph[ci] * f0 * dt_h;
                for (ri, q) in c.ramp_queue.iter_mut().enumerate() {
                    let arrivals = pre.ramp_vph[ci][ri] * fr[ri] * dt_h;
                    if plan.ramp_rate[ci][ri] > 0.0 {
                        *q += arrivals;
                    } else {
                        fig.turned_away_veh += arrivals;
                    }
                }
                for b in 0..=n {
                    let beta = lay.off_split[b];
                    let (s_up, cong_up, cap_up, lanes_up) = if b == 0 {
                        (c.origin_queue / dt_h, 0.0, f64::INFINITY, lay.lanes[0])
                    } else {
                        let l = f64::from(lay.lanes[b - 1]);
                        let f = &fd[b - 1];
                        let r = c.rho[b - 1];
                        (
                            f.sending_with(&p, qe, r) * l,
                            f.congestion(r),
                            f.cap * l,
                            lay.lanes[b - 1],
                        )
                    };
                    if b == n {
                        c.out_up[b] = s_up;
                        continue;
                    }
                    let ld = f64::from(lay.lanes[b]);
                    let mut r = fd[b].receiving(&p, c.rho[b]) * ld;
                    let ramp = lay.on_ramp[b];
                    if b > 0 {
                        let throat = if ramp.is_some() {
                            fd[b].cap * ld
                        } else {
                            cap_up.min(fd[b].cap * ld)
                        };
                        r = r.min((1.0 - drop * cong_up) * throat);
                    }
                    let dm = (1.0 - beta) * s_up;
                    let dr = ramp.map_or(0.0, |ri| {
                        (c.ramp_queue[ri] / dt_h).min(plan.ramp_rate[ci][ri])
                    });
                    let lu = f64::from(lanes_up);
                    let (ym, yr) = merge(dm, dr, r.max(0.0), lu / (lu + 1.0));
                    c.out_up[b] = if beta < 1.0 { ym / (1.0 - beta) } else { 0.0 };
                    c.in_down[b] = ym + yr;
                    if let Some(ri) = ramp {
                        c.ramp_queue[ri] = (c.ramp_queue[ri] - yr * dt_h).max(0.0);
                    }
                    // Vehicles crossing into fog: too fast when they arrive
                    // faster than the fog's sight distance allows. The cell's
                    // mean speed splits into the compliant drivers' (at most
                    // the speed they keep) and the others'.
                    let vs = plan.sight[ci][b];
                    if b > 0 && vs.is_finite() && vs < plan.sight[ci][b - 1] - 1.0 {
                        let veh = c.in_down[b] * dt_h;
                        fig.fog_entering_veh += veh;
                        let v = c.speed[b - 1];
                        let kept = plan.kept[ci][b - 1];
                        let comp = cfg.compliance;
                        let (vc, vn) = if v > kept && comp < 1.0 {
                            (kept, (v - comp * kept) / (1.0 - comp))
                        } else {
                            (v, v)
                        };
                        let share = comp * f64::from(u8::from(vc > vs))
                            + (1.0 - comp) * f64::from(u8::from(vn > vs));
                        too_fast += veh * share;
                    }
                }
                c.origin_queue = (c.origin_queue - c.in_down[0] * dt_h).max(0.0);
                let mut veh_cells = 0.0;
                let k_cw = &per_cell[ci];
                for k in 0..n {
                    let pc = &k_cw[k];
                    let (qin, qout) = (c.in_down[k], c.out_up[k + 1]);
                    c.inflow[k] = qin;
                    let rho = (c.rho[k] + pc.dt_per_veh * (qin - qout)).clamp(0.0, p.jam_density);
                    c.rho[k] = rho;
                    let q = 0.5 * (qin + qout);
                    // min(q / (lanes·ρ), free speed at ρ) with one division:
                    // the free speed times ρ is the rising branch below ρ*
                    // and v(ρ*)·ρ above it.
                    let v = if rho < 0.5 {
                        pc.v_empty
                    } else {
                        let m = if rho <= fd[k].rho_star {
                            fd[k].rising(&p, qe, rho)
                        } else {
                            pc.v_star * rho
                        };
                        (q * pc.inv_lanes).min(m) / rho
                    };
                    c.speed[k] = v;
                    let veh = rho * pc.veh_per_rho;
                    veh_cells += veh;
                    sw += veh;
                    swv += veh * v;
                    swv2 += veh * v * v;
                    free_time += q * pc.free_h_per_q;
                }
                let waiting = c.origin_queue + c.ramp_queue.iter().sum::<f64>();
                fig.total_travel_time_veh_h += (veh_cells + waiting) * dt_h;
            }
        }
        let detour = fig.turned_away_veh * cfg.detour_h;
        fig.total_travel_time_veh_h += detour;
        fig.delay_veh_h = (fig.total_travel_time_veh_h - free_time).max(0.0);
        fig.clear_after_s = match last_queue_s {
            None => Some(0),
            Some(t) if t >= steps * cfg.step_s => None,
            Some(t) => Some(t + cfg.grid_step_s),
        };
        if sw > 0.0 {
            let mean = swv / sw;
            fig.speed_variance = (swv2 / sw - mean * mean).max(0.0);
        }
        fig.fog_too_fast_share = if fig.fog_entering_veh > 0.0 {
            too_fast / fig.fog_entering_veh
        } else {
            0.0
        };
        fig.entry_queue_veh = st.iter().map(|c| c.ramp_queue.iter().sum::<f64>()).sum();
        RunOut {
            figures: fig,
            queue,
            timespace,
        }
    }
}

#[derive(Debug, Clone)]
struct RunOut {
    figures: RunFigures,
    queue: Vec<QueueSample>,
    timespace: Vec<TimeSpace>,
}
