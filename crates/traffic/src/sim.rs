//! The simulator: a cell transmission model (元胞传输模型) per carriageway
//! with on- and off-ramps, lane drops and capacity drop; probe vehicles
//! moving with the local cell speed; detectors, weather stations and
//! tunnel cameras reading it; episodes and device commands acting on it.

use zhilu_road::{Direction, RoadBook};

use crate::SimError;

use crate::fd::{CellFd, FdParams};
use crate::layout::Layout;
use crate::output::{
    CameraEvent, CameraKind, ObsReading, Output, VehicleClass, VehiclePosition, WeatherReading,
};
use crate::scenario::{DemandProfile, Episode, FaultKind, Scenario};
use crate::truth::TruthRecord;
use crate::weather::{SurfaceState, Timed, WeatherField, WeatherSample};
pub use zhilu_contract::{EntryState, FogLightMode};

/// Settings of the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Model time step (s); the intervals below must be multiples of it.
    pub step_s: u32,
    /// Detector interval (s) of OBS readings.
    pub obs_interval_s: u32,
    /// Weather station interval (s).
    pub weather_interval_s: u32,
    /// Probe position report interval (s).
    pub position_interval_s: u32,
    /// Target cell length (m); cells are equal along the road, ≥ free speed × step.
    pub cell_m: f64,
    /// Per-lane fundamental diagram.
    pub fd: FdParams,
    /// Share of drivers who keep to a posted VSL value (the rest keep their free speed).
    pub vsl_compliance: f64,
    /// Farthest a VSL sign governs downstream when no other sign follows (m).
    pub vsl_reach_m: f64,
    /// Inflow of a metered entry (veh/h).
    pub metered_vph: f64,
    /// Most an open entry lets in (veh/h).
    pub ramp_capacity_vph: f64,
    /// Share of vehicles that report positions (probes).
    pub probe_share: f64,
    /// Effective vehicle length for occupancy, vehicle plus detector zone (m).
    pub effective_length_m: f64,
    /// Capacity left per open lane beside an incident (rubbernecking, 围观减速);
    /// 0.72 leaves 48 % of a 3-lane road with one lane blocked (HCM: 49 %).
    pub incident_lane_factor: f64,
    /// Emit camera events from the tunnels (the road book lists no cameras; off by default).
    pub tunnel_cameras: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            step_s: 5,
            obs_interval_s: 20,
            weather_interval_s: 60,
            position_interval_s: 30,
            cell_m: 300.0,
            fd: FdParams::default(),
            vsl_compliance: 0.8,
            vsl_reach_m: 3000.0,
            metered_vph: 600.0,
            ramp_capacity_vph: 1800.0,
            probe_share: 0.03,
            effective_length_m: 6.8,
            incident_lane_factor: 0.72,
            tunnel_cameras: false,
        }
    }
}

impl SimConfig {
    /// Checks steps, intervals and the CFL condition.
    pub fn validate(&self, posted_kmh: u16) -> Result<(), String> {
        self.fd.validate()?;
        if self.step_s == 0 {
            return Err("step_s must be positive".into());
        }
        for (name, v) in [
            ("obs_interval_s", self.obs_interval_s),
            ("weather_interval_s", self.weather_interval_s),
            ("position_interval_s", self.position_interval_s),
        ] {
            if v == 0 || v % self.step_s != 0 || v > u32::from(u16::MAX) {
                return Err(format!(
                    "{name} ({v}) must be a positive multiple of step_s ({})",
                    self.step_s
                ));
            }
        }
        let v_max = self.fd.free_speed_kmh * f64::from(posted_kmh).max(120.0) / 120.0;
        if self.cell_m.is_nan() || self.cell_m < v_max / 3.6 * f64::from(self.step_s) {
            return Err(format!(
                "cell_m ({}) is shorter than free speed × step ({:.0} m): the model would be unstable",
                self.cell_m,
                v_max / 3.6 * f64::from(self.step_s)
            ));
        }
        let shares_ok = (0.0..=1.0).contains(&self.vsl_compliance)
            && (0.0..=1.0).contains(&self.probe_share)
            && (0.0..=1.0).contains(&self.incident_lane_factor);
        let positive = [
            self.vsl_reach_m,
            self.metered_vph,
            self.ramp_capacity_vph,
            self.effective_length_m,
        ]
        .iter()
        .all(|x| x.is_finite() && *x >= 0.0);
        if !shares_ok || !positive || self.effective_length_m <= 0.0 {
            return Err("shares must be in 0…1 and lengths and rates ≥ 0".into());
        }
        Ok(())
    }
}

/// A command to a roadside device; the integration layer translates the platform's actions into these.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Shows a speed limit on a VSL sign (`None` = back to the posted limit).
    SpeedLimit {
        /// VSL sign id.
        device: String,
        /// Limit (km/h).
        kmh: Option<u16>,
    },
    /// Opens, meters or closes an interchange's entry for one direction.
    Entry {
        /// Interchange id.
        interchange: String,
        /// Carriageway the entry feeds.
        direction: Direction,
        /// New state.
        state: EntryState,
    },
    /// Switches a de-icer zone.
    Deicing {
        /// De-icer id.
        device: String,
        /// Spraying.
        on: bool,
    },
    /// Sets a fog-light zone's mode (small effect: drivers see a little farther).
    FogLights {
        /// Fog-light zone id.
        device: String,
        /// Mode.
        mode: FogLightMode,
    },
    /// Shows a message on a VMS (accepted, no effect on traffic).
    Message {
        /// VMS id.
        device: String,
        /// Text (empty = blank).
        text: String,
    },
}

/// The state of one cell, for inspection and ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellState {
    /// Stake where the cell begins, upstream end (m).
    pub from_m: f64,
    /// Stake where the cell ends, downstream end (m).
    pub to_m: f64,
    /// Lanes.
    pub lanes: u8,
    /// Lanes blocked by incidents or stopped vehicles.
    pub blocked: u8,
    /// Density (veh/km/lane).
    pub density: f64,
    /// Mean of in- and outflow (veh/h, all lanes).
    pub flow_vph: f64,
    /// Space-mean speed (km/h).
    pub speed_kmh: f64,
    /// Speed cap in force (km/h): posted limit, VSL, fog, ice.
    pub speed_cap_kmh: f64,
}

#[derive(Debug, Clone)]
struct Cell {
    lanes: u8,
    centre_m: f64,
    sign: Option<u32>,
    tunnel: Option<u32>,
    fog_lights: Option<u32>,
    deicer: Option<u32>,
    posted_free: f64,
    rho: f64,
    fd: CellFd,
    blocked: u8,
    visibility_m: f64,
    icy: bool,
    inflow: f64,
    outflow: f64,
    speed_kmh: f64,
}

#[derive(Debug, Clone)]
struct Ramp {
    interchange: u32,
    boundary: usize,
    queue: f64,
    noise: f64,
    probe_acc: f64,
    state: EntryState,
    flow: f64,
}

#[derive(Debug, Clone)]
struct Carriageway {
    dir: Direction,
    cell_m: f64,
    travel0: f64,
    cells: Vec<Cell>,
    off_split: Vec<f64>,
    on_ramp: Vec<Option<usize>>,
    ramps: Vec<Ramp>,
    origin_queue: f64,
    origin_noise: f64,
    origin_probe_acc: f64,
    day_factor: f64,
    out_up: Vec<f64>,
    in_down: Vec<f64>,
    exits: Vec<(f64, f64)>,
    forbidden: Vec<(f64, f64, u32)>,
}

impl Carriageway {
    fn travel_end(&self) -> f64 {
        self.travel0 + self.cell_m * self.cells.len() as f64
    }
    fn cell_at(&self, travel: f64) -> usize {
        let k = ((travel - self.travel0) / self.cell_m).floor();
        (k.max(0.0) as usize).min(self.cells.len() - 1)
    }
    fn stake(&self, travel: f64) -> f64 {
        self.dir.sign() * travel
    }
    fn boundary_travel(&self, b: usize) -> f64 {
        self.travel0 + self.cell_m * b as f64
    }
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    start_ms: i64,
    end_ms: i64,
    lane: Option<u8>,
    kind: FaultKind,
}

#[derive(Debug, Clone)]
struct DetState {
    cw: usize,
    cell: usize,
    lanes: u8,
    vol: f64,
    speed_vol: f64,
    dens: f64,
    time_s: f64,
    last: Vec<(u32, Option<f32>, f32)>,
    faults: Vec<Fault>,
}

#[derive(Debug, Clone)]
struct IncidentRt {
    start_ms: i64,
    end_ms: i64,
    cw: usize,
    cell: usize,
    lanes_blocked: u8,
    stake_m: f64,
    active: bool,
}

#[derive(Debug, Clone)]
struct StopRt {
    spawn_ms: i64,
    planned_ms: i64,
    duration_ms: i64,
    cw: usize,
    spawn_travel: f64,
    stop_travel: f64,
    vehicle: Option<u32>,
    stopped: Option<(i64, i64)>,
    released: bool,
}

#[derive(Debug, Clone)]
struct SpeedingRt {
    start_ms: i64,
    cw: usize,
    speed_kmh: f64,
    vehicle: Option<u32>,
    fast: Option<(i64, i64, f32)>,
}

#[derive(Debug, Clone)]
struct RestrictedRt {
    vehicle: u32,
    class: VehicleClass,
    cw: usize,
    tunnel: u32,
    first_ms: i64,
    last_ms: i64,
}

#[derive(Debug, Clone)]
struct Probe {
    id: u32,
    class: VehicleClass,
    cw: usize,
    travel: f64,
    exit: f64,
    desired: f64,
    factor: f64,
    speed: f64,
    stop: Option<usize>,
    speeding: Option<usize>,
    restricted: Option<usize>,
}

/// The simulated corridor (仿真路段): owns its copy of the road book.
#[derive(Debug, Clone)]
pub struct Sim {
    road: RoadBook,
    cfg: SimConfig,
    demand: DemandProfile,
    scenario: Scenario,
    rng: fastrand::Rng,
    start_ms: i64,
    now_ms: i64,
    midnight_ms: i64,
    cws: Vec<Carriageway>,
    cw_of: [Option<usize>; 2],
    detectors: Vec<DetState>,
    sign_limit: Vec<Option<u16>>,
    deicer_on: Vec<bool>,
    fog_lights: Vec<FogLightMode>,
    messages: Vec<String>,
    weather: WeatherField,
    incidents: Vec<IncidentRt>,
    stops: Vec<StopRt>,
    speeding: Vec<SpeedingRt>,
    restricted: Vec<RestrictedRt>,
    probes: Vec<Probe>,
    next_vehicle: u32,
    dirty: bool,
    out: Output,
}

fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(1e-12);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson draw of mean `mean` (0 for a mean that is not positive; the
/// normal approximation above 30). Both simulators draw their counts here.
pub(crate) fn poisson(rng: &mut fastrand::Rng, mean: f64) -> u32 {
    if mean.is_nan() || mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        return (mean + normal(rng) * mean.sqrt()).round().max(0.0) as u32;
    }
    let l = (-mean).exp();
    let (mut k, mut p) = (0u32, 1.0);
    loop {
        p *= rng.f64();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

/// Priority merge (Daganzo): mainline demand `dm`, ramp demand `dr`, supply `r`.
pub(crate) fn merge(dm: f64, dr: f64, r: f64, main_share: f64) -> (f64, f64) {
    if dm + dr <= r {
        return (dm, dr);
    }
    let a = r - dr;
    let b = main_share * r;
    // Median of dm, a, b.
    let ym = dm.min(a).max(dm.max(a).min(b)).max(0.0).min(r);
    (ym, (r - ym).max(0.0))
}

const HAZMAT_LIMIT_KMH: f64 = 80.0;

impl Sim {
    /// Builds the corridor from the road book and the scenario, starting at
    /// `start_ms` (epoch ms), with random numbers from `seed`.
    pub fn new(
        road: &RoadBook,
        scenario: &Scenario,
        config: SimConfig,
        start_ms: i64,
        seed: u64,
    ) -> Result<Sim, SimError> {
        config
            .validate(road.speed_limit_kmh())
            .map_err(SimError::Config)?;
        scenario.validate(road).map_err(SimError::Scenario)?;
        let mut rng = fastrand::Rng::with_seed(seed);
        let day_ms = 86_400_000;
        let off = i64::from(road.tz_offset_s()) * 1000;
        let midnight_ms = (start_ms + off).div_euclid(day_ms) * day_ms - off;
        let p = config.fd;
        let g = road.geometry();
        let (a, b) = (g.start_m(), g.end_m());
        let len = b - a;
        let n = ((len / config.cell_m).round() as usize).max(1);
        let cell_m = len / n as f64;
        if cell_m
            < p.free_speed_kmh * f64::from(road.speed_limit_kmh()).max(120.0) / 120.0 / 3.6
                * f64::from(config.step_s)
        {
            return Err(SimError::Config(format!(
                "the road ({len:.0} m) is too short for cells of {:.0} m",
                config.cell_m
            )));
        }
        let posted_free = p.free_speed_kmh * f64::from(road.speed_limit_kmh()) / 120.0;
        let mut cws = Vec::new();
        let mut cw_of = [None, None];
        for &dir in road.directions() {
            let lay = Layout::build(
                road,
                dir,
                (a, b),
                n,
                config.vsl_reach_m,
                scenario.demand.off_ramp_share,
            );
            let travel0 = lay.travel0;
            let cells: Vec<Cell> = (0..n)
                .map(|k| {
                    let centre_m = lay.centre_m(k);
                    let inside = |from: f64, to: f64| centre_m >= from && centre_m <= to;
                    let tunnel = lay.tunnel[k];
                    let fog_lights = road
                        .fog_lights()
                        .iter()
                        .position(|z| inside(z.from_m, z.to_m))
                        .map(|i| i as u32);
                    let deicer = road
                        .deicers()
                        .iter()
                        .position(|z| inside(z.from_m, z.to_m))
                        .map(|i| i as u32);
                    let free = posted_free * if tunnel.is_some() { 0.92 } else { 1.0 };
                    Cell {
                        lanes: lay.lanes[k],
                        centre_m,
                        sign: lay.sign[k],
                        tunnel,
                        fog_lights,
                        deicer,
                        posted_free: free,
                        rho: 0.0,
                        fd: CellFd::new(&p, free, 1.0),
                        blocked: 0,
                        visibility_m: scenario.climate.clear_visibility_m,
                        icy: false,
                        inflow: 0.0,
                        outflow: 0.0,
                        speed_kmh: free,
                    }
                })
                .collect();
            let mut cw = Carriageway {
                dir,
                cell_m,
                travel0,
                cells,
                off_split: lay.off_split.clone(),
                on_ramp: lay.on_ramp.clone(),
                ramps: Vec::new(),
                origin_queue: 0.0,
                origin_noise: 0.0,
                origin_probe_acc: rng.f64(),
                day_factor: (1.0 + 0.04 * normal(&mut rng)).clamp(0.85, 1.15),
                out_up: vec![0.0; n + 1],
                in_down: vec![0.0; n + 1],
                exits: Vec::new(),
                forbidden: Vec::new(),
            };
            for (&ii, &bi) in lay.ramp_ic.iter().zip(&lay.ramp_b) {
                cw.ramps.push(Ramp {
                    interchange: ii,
                    boundary: bi,
                    queue: 0.0,
                    noise: 0.0,
                    probe_acc: rng.f64(),
                    state: EntryState::Open,
                    flow: 0.0,
                });
            }
            cw.exits = (0..=n)
                .filter(|&b| cw.off_split[b] > 0.0)
                .map(|b| (cw.boundary_travel(b), cw.off_split[b]))
                .collect();
            cw.forbidden = road
                .tunnels()
                .iter()
                .enumerate()
                .filter(|(_, t)| t.hazmat_forbidden)
                .map(|(i, t)| {
                    let (x, y) = (dir.travel_m(t.from_m), dir.travel_m(t.to_m));
                    (x.min(y), x.max(y), i as u32)
                })
                .collect();
            cw.forbidden.sort_by(|x, y| x.0.total_cmp(&y.0));
            cw_of[dir.index()] = Some(cws.len());
            cws.push(cw);
        }
        let t_of = |s: u32| midnight_ms + i64::from(s) * 1000;
        let mut detectors: Vec<DetState> = road
            .detectors()
            .iter()
            .map(|d| {
                let cw = cw_of[d.direction.index()].unwrap_or(0);
                let c = &cws[cw];
                DetState {
                    cw,
                    cell: c.cell_at(d.direction.travel_m(d.stake_m)),
                    lanes: d.lanes.max(1),
                    vol: 0.0,
                    speed_vol: 0.0,
                    dens: 0.0,
                    time_s: 0.0,
                    last: vec![(0, None, 0.0); usize::from(d.lanes.max(1))],
                    faults: Vec::new(),
                }
            })
            .collect();
        let mut weather = WeatherField {
            climate: scenario.climate.clone(),
            midnight_ms,
            fog: Vec::new(),
            ice: Vec::new(),
            bridges: road.deicers().iter().map(|z| (z.from_m, z.to_m)).collect(),
        };
        let mut incidents = Vec::new();
        let mut stops = Vec::new();
        let mut speeding = Vec::new();
        for e in &scenario.episodes {
            match e {
                Episode::FogBank(f) => weather.fog.push(Timed {
                    start_ms: t_of(f.start_s),
                    end_ms: t_of(f.start_s.saturating_add(f.duration_s)),
                    ep: f.clone(),
                }),
                Episode::Ice(i) => weather.ice.push(Timed {
                    start_ms: t_of(i.start_s),
                    end_ms: t_of(i.start_s.saturating_add(i.duration_s)),
                    ep: i.clone(),
                }),
                Episode::Incident(x) => {
                    let Some(cw) = cw_of[x.direction.index()] else {
                        continue;
                    };
                    incidents.push(IncidentRt {
                        start_ms: t_of(x.start_s),
                        end_ms: t_of(x.start_s.saturating_add(x.duration_s)),
                        cw,
                        cell: cws[cw].cell_at(x.direction.travel_m(x.stake_m)),
                        lanes_blocked: x.lanes_blocked,
                        stake_m: x.stake_m,
                        active: false,
                    });
                }
                Episode::HazmatStop(x) => {
                    let Some(cwi) = cw_of[x.direction.index()] else {
                        continue;
                    };
                    let cw = &cws[cwi];
                    let stop_travel = x.direction.travel_m(x.stake_m);
                    // Enter at the last entry at least 3 km before the stop, else at the road's start.
                    let spawn_travel = cw
                        .ramps
                        .iter()
                        .map(|r| cw.boundary_travel(r.boundary))
                        .filter(|&t| t <= stop_travel - 3000.0)
                        .fold(cw.travel0, f64::max);
                    let lead_ms = ((stop_travel - spawn_travel) / (75.0 / 3.6) * 1000.0) as i64;
                    let planned_ms = t_of(x.start_s);
                    stops.push(StopRt {
                        spawn_ms: planned_ms - lead_ms,
                        planned_ms,
                        duration_ms: i64::from(x.duration_s) * 1000,
                        cw: cwi,
                        spawn_travel,
                        stop_travel,
                        vehicle: None,
                        stopped: None,
                        released: false,
                    });
                }
                Episode::HazmatSpeeding(x) => {
                    let Some(cw) = cw_of[x.direction.index()] else {
                        continue;
                    };
                    speeding.push(SpeedingRt {
                        start_ms: t_of(x.start_s),
                        cw,
                        speed_kmh: x.speed_kmh,
                        vehicle: None,
                        fast: None,
                    });
                }
                Episode::DetectorFault(f) => {
                    if let Some(i) = road.detector_index(&f.detector) {
                        detectors[i as usize].faults.push(Fault {
                            start_ms: t_of(f.start_s),
                            end_ms: t_of(f.start_s.saturating_add(f.duration_s)),
                            lane: f.lane,
                            kind: f.kind,
                        });
                    }
                }
            }
        }
        let mut sim = Sim {
            road: road.clone(),
            demand: scenario.demand.clone(),
            scenario: scenario.clone(),
            rng,
            start_ms,
            now_ms: start_ms,
            midnight_ms,
            cws,
            cw_of,
            detectors,
            sign_limit: vec![None; road.vsl().len()],
            deicer_on: vec![false; road.deicers().len()],
            fog_lights: vec![FogLightMode::Off; road.fog_lights().len()],
            messages: vec![String::new(); road.vms().len()],
            weather,
            incidents,
            stops,
            speeding,
            restricted: Vec::new(),
            probes: Vec::new(),
            next_vehicle: 1,
            dirty: true,
            out: Output::default(),
            cfg: config,
        };
        sim.warm_start();
        Ok(sim)
    }

    /// Fills the road with the equilibrium density of the starting demand,
    /// so the first readings are not of an empty road.
    fn warm_start(&mut self) {
        let hour = self.hour(self.now_ms);
        self.update_cell_weather(self.now_ms);
        self.refresh_cells();
        let p = self.cfg.fd;
        for cw in &mut self.cws {
            let lanes0 = f64::from(cw.cells[0].lanes);
            let q_total = self.demand.mainline_at(cw.dir, hour) * lanes0 * cw.day_factor;
            for c in &mut cw.cells {
                let q = (q_total / f64::from(c.lanes)).min(c.fd.cap * 0.9);
                // Invert the rising branch by bisection.
                let (mut lo, mut hi) = (0.0, c.fd.rho_star);
                for _ in 0..40 {
                    let mid = 0.5 * (lo + hi);
                    if c.fd.sending(&p, mid) < q {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                c.rho = lo;
                c.speed_kmh = c.fd.free_speed(&p, lo);
            }
        }
    }

    /// The road book the simulator plays.
    pub fn road(&self) -> &RoadBook {
        &self.road
    }

    /// The scenario it runs.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Current simulated time (epoch ms): the end of the last step.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Local midnight of the first day (epoch ms): episode times count from here.
    pub fn midnight_ms(&self) -> i64 {
        self.midnight_ms
    }

    /// The readings of the last step.
    pub fn output(&self) -> &Output {
        &self.out
    }

    fn hour(&self, t_ms: i64) -> f64 {
        (t_ms - self.midnight_ms).rem_euclid(86_400_000) as f64 / 3_600_000.0
    }

    /// The state of the cell covering `stake_m` on carriageway `dir`.
    pub fn cell_state(&self, dir: Direction, stake_m: f64) -> Option<CellState> {
        let cw = &self.cws[self.cw_of[dir.index()]?];
        let i = cw.cell_at(dir.travel_m(stake_m));
        let c = &cw.cells[i];
        let t0 = cw.travel0 + i as f64 * cw.cell_m;
        Some(CellState {
            from_m: cw.stake(t0),
            to_m: cw.stake(t0 + cw.cell_m),
            lanes: c.lanes,
            blocked: c.blocked,
            density: c.rho,
            flow_vph: 0.5 * (c.inflow + c.outflow),
            speed_kmh: c.speed_kmh,
            speed_cap_kmh: c.fd.v_cap,
        })
    }

    /// Vehicles waiting to enter at an interchange's entry (veh), if it has one in `dir`.
    pub fn entry_queue(&self, interchange: &str, dir: Direction) -> Option<f64> {
        let cw = &self.cws[self.cw_of[dir.index()]?];
        cw.ramps
            .iter()
            .find(|r| self.road.interchanges()[r.interchange as usize].id == interchange)
            .map(|r| r.queue)
    }

    /// Inflow of an interchange's entry in the last step (veh/h).
    pub fn entry_flow_vph(&self, interchange: &str, dir: Direction) -> Option<f64> {
        let cw = &self.cws[self.cw_of[dir.index()]?];
        cw.ramps
            .iter()
            .find(|r| self.road.interchanges()[r.interchange as usize].id == interchange)
            .map(|r| r.flow)
    }

    /// The weather now at `stake_m`.
    pub fn weather_at(&self, stake_m: f64) -> WeatherSample {
        self.weather
            .sample(stake_m, self.now_ms, self.deiced(stake_m))
    }

    /// Number of probe vehicles on the road.
    pub fn vehicles_on_road(&self) -> usize {
        self.probes.len()
    }

    /// The message a VMS shows (as commanded).
    pub fn message(&self, vms: &str) -> Option<&str> {
        let i = self.road.vms().iter().position(|m| m.id == vms)?;
        Some(self.messages[i].as_str())
    }

    fn deiced(&self, stake_m: f64) -> bool {
        self.road
            .deicers()
            .iter()
            .zip(&self.deicer_on)
            .any(|(z, &on)| on && stake_m >= z.from_m && stake_m <= z.to_m)
    }

    /// Applies a device command; unknown devices and wrong kinds are errors.
    pub fn apply(&mut self, cmd: &Command) -> Result<(), SimError> {
        let find = |list: Vec<&str>, id: &str| list.iter().position(|x| *x == id);
        match cmd {
            Command::SpeedLimit { device, kmh } => {
                let i = find(
                    self.road.vsl().iter().map(|s| s.id.as_str()).collect(),
                    device,
                )
                .ok_or_else(|| SimError::UnknownDevice(device.clone()))?;
                if kmh.is_some_and(|v| !(5..=200).contains(&v)) {
                    return Err(SimError::BadCommand {
                        device: device.clone(),
                        message: "speed limit must be 5…200 km/h".into(),
                    });
                }
                self.sign_limit[i] = *kmh;
            }
            Command::Entry {
                interchange,
                direction,
                state,
            } => {
                let ii = find(
                    self.road
                        .interchanges()
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect(),
                    interchange,
                )
                .ok_or_else(|| SimError::UnknownDevice(interchange.clone()))?;
                let ramp = self.cw_of[direction.index()].and_then(|cw| {
                    self.cws[cw]
                        .ramps
                        .iter_mut()
                        .find(|r| r.interchange as usize == ii)
                });
                let Some(ramp) = ramp else {
                    return Err(SimError::BadCommand {
                        device: interchange.clone(),
                        message: format!("has no entry to the {} carriageway", direction.as_str()),
                    });
                };
                ramp.state = *state;
            }
            Command::Deicing { device, on } => {
                let i = find(
                    self.road.deicers().iter().map(|s| s.id.as_str()).collect(),
                    device,
                )
                .ok_or_else(|| SimError::UnknownDevice(device.clone()))?;
                self.deicer_on[i] = *on;
                self.update_cell_weather(self.now_ms);
            }
            Command::FogLights { device, mode } => {
                let i = find(
                    self.road
                        .fog_lights()
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect(),
                    device,
                )
                .ok_or_else(|| SimError::UnknownDevice(device.clone()))?;
                self.fog_lights[i] = *mode;
            }
            Command::Message { device, text } => {
                let i = find(
                    self.road.vms().iter().map(|s| s.id.as_str()).collect(),
                    device,
                )
                .ok_or_else(|| SimError::UnknownDevice(device.clone()))?;
                self.messages[i].clone_from(text);
            }
        }
        self.dirty = true;
        Ok(())
    }

    fn update_cell_weather(&mut self, t_ms: i64) {
        let deicers = self.road.deicers();
        for cw in &mut self.cws {
            for c in &mut cw.cells {
                let deiced = c.deicer.is_some_and(|i| self.deicer_on[i as usize])
                    || deicers
                        .iter()
                        .zip(&self.deicer_on)
                        .any(|(z, &on)| on && c.centre_m >= z.from_m && c.centre_m <= z.to_m);
                let s = self.weather.sample(c.centre_m, t_ms, deiced);
                c.visibility_m = s.visibility_m;
                c.icy = s.surface_state == SurfaceState::Ice;
            }
        }
        self.dirty = true;
    }

    /// Recomputes every cell's diagram from caps, weather and blockages.
    fn refresh_cells(&mut self) {
        let p = self.cfg.fd;
        for cw in &mut self.cws {
            for c in &mut cw.cells {
                let mut v = c.posted_free;
                if let Some(lim) = c.sign.and_then(|s| self.sign_limit[s as usize]) {
                    let lim = f64::from(lim);
                    if lim < v {
                        v = lim + (1.0 - self.cfg.vsl_compliance) * (v - lim);
                    }
                }
                let lights = c
                    .fog_lights
                    .is_some_and(|i| self.fog_lights[i as usize] != FogLightMode::Off);
                let vis = c.visibility_m * if lights { 1.25 } else { 1.0 };
                v = v.min(125.0 * (1.0 - (-vis / 150.0).exp()));
                let mut kappa = 1.0;
                if c.icy {
                    v = v.min(60.0);
                    kappa *= 0.85;
                }
                if c.tunnel.is_some() {
                    kappa *= 0.95;
                }
                if c.blocked >= c.lanes {
                    kappa = 0.0;
                } else if c.blocked > 0 {
                    kappa *= f64::from(c.lanes - c.blocked) / f64::from(c.lanes)
                        * self.cfg.incident_lane_factor;
                }
                c.fd = CellFd::new(&p, v, kappa);
            }
        }
        self.dirty = false;
    }

    fn update_episodes(&mut self, t: i64) {
        for inc in &mut self.incidents {
            let active = t >= inc.start_ms && t < inc.end_ms;
            if active != inc.active {
                let c = &mut self.cws[inc.cw].cells[inc.cell];
                if active {
                    c.blocked = c.blocked.saturating_add(inc.lanes_blocked);
                } else {
                    c.blocked = c.blocked.saturating_sub(inc.lanes_blocked);
                }
                inc.active = active;
                self.dirty = true;
            }
        }
    }

    fn spawn(&mut self, cw: usize, travel: f64, class: Option<VehicleClass>) -> usize {
        let rng = &mut self.rng;
        let mut class = class.unwrap_or_else(|| match rng.f64() {
            x if x < 0.45 => VehicleClass::Car,
            x if x < 0.55 => VehicleClass::Bus,
            x if x < 0.88 => VehicleClass::Truck,
            _ => VehicleClass::Hazmat,
        });
        let c = &self.cws[cw];
        let mut exit = c.travel_end();
        for &(t, beta) in &c.exits {
            if t > travel + 1.0 && rng.f64() < beta {
                exit = t;
                break;
            }
        }
        if class == VehicleClass::Hazmat {
            // Hazardous goods keep out of tunnels closed to them: leave before, or drive as a plain truck.
            if let Some(&(from, _, _)) = c.forbidden.iter().find(|f| f.0 > travel && f.0 < exit) {
                match c
                    .exits
                    .iter()
                    .rev()
                    .find(|(t, _)| *t > travel + 1.0 && *t <= from)
                {
                    Some(&(t, _)) => exit = t,
                    None => class = VehicleClass::Truck,
                }
            }
        }
        let (desired, factor) = match class {
            VehicleClass::Car => (105.0 + 20.0 * rng.f64(), 0.98 + 0.14 * rng.f64()),
            VehicleClass::Bus => (88.0 + 10.0 * rng.f64(), 1.0),
            VehicleClass::Truck => (78.0 + 14.0 * rng.f64(), 1.0),
            VehicleClass::Hazmat => (70.0 + 9.0 * rng.f64(), 1.0),
        };
        let id = self.next_vehicle;
        self.next_vehicle += 1;
        self.probes.push(Probe {
            id,
            class,
            cw,
            travel,
            exit,
            desired,
            factor,
            speed: self.cws[cw].cells[self.cws[cw].cell_at(travel)].speed_kmh,
            stop: None,
            speeding: None,
            restricted: None,
        });
        self.probes.len() - 1
    }

    fn spawn_scripted(&mut self, t: i64) {
        for si in 0..self.stops.len() {
            let s = &self.stops[si];
            if s.vehicle.is_none() && t >= s.spawn_ms && t < s.planned_ms + s.duration_ms {
                let (cw, travel) = (s.cw, s.spawn_travel);
                let pi = self.spawn(cw, travel, Some(VehicleClass::Hazmat));
                let p = &mut self.probes[pi];
                p.class = VehicleClass::Hazmat;
                p.exit = self.cws[cw].travel_end();
                p.desired = 76.0;
                p.stop = Some(si);
                self.stops[si].vehicle = Some(p.id);
            }
        }
        for si in 0..self.speeding.len() {
            let s = &self.speeding[si];
            if s.vehicle.is_none() && t >= s.start_ms {
                let (cw, speed) = (s.cw, s.speed_kmh);
                let travel = self.cws[cw].travel0;
                let pi = self.spawn(cw, travel, Some(VehicleClass::Hazmat));
                let c = &self.cws[cw];
                let p = &mut self.probes[pi];
                p.class = VehicleClass::Hazmat;
                // Its trip ends before any tunnel closed to it, or at the end of the road.
                p.exit = c
                    .forbidden
                    .first()
                    .and_then(|f| {
                        c.exits
                            .iter()
                            .rev()
                            .find(|(e, _)| *e <= f.0 && *e > travel + 5000.0)
                    })
                    .map_or(c.travel_end(), |e| e.0);
                p.desired = speed;
                p.speeding = Some(si);
                self.speeding[si].vehicle = Some(p.id);
            }
        }
    }

    fn step_traffic(&mut self, t: i64) {
        let p = self.cfg.fd;
        let dt_h = f64::from(self.cfg.step_s) / 3600.0;
        let hour = self.hour(t);
        let phi = (-f64::from(self.cfg.step_s) / 300.0).exp();
        let sigma = self.demand.noise;
        let drop = p.capacity_drop;
        for cw in &mut self.cws {
            let rng = &mut self.rng;
            let noise = |z: &mut f64, rng: &mut fastrand::Rng| {
                *z = phi * *z + (1.0 - phi * phi).sqrt() * normal(rng);
                (sigma * *z - 0.5 * sigma * sigma).exp()
            };
            let base = self.demand.mainline_at(cw.dir, hour)
                * f64::from(cw.cells[0].lanes)
                * cw.day_factor;
            let f0 = noise(&mut cw.origin_noise, rng);
            cw.origin_queue += f64::from(poisson(rng, base * f0 * dt_h));
            for r in &mut cw.ramps {
                let f = noise(&mut r.noise, rng);
                let arrivals = f64::from(poisson(rng, base * self.demand.on_ramp_share * f * dt_h));
                if r.state != EntryState::Closed && r.queue < 300.0 {
                    r.queue += arrivals;
                }
            }
            let n = cw.cells.len();
            for b in 0..=n {
                let beta = cw.off_split[b];
                let (s_up, cong_up, cap_up, lanes_up) = if b == 0 {
                    (
                        cw.origin_queue / dt_h,
                        0.0,
                        f64::INFINITY,
                        cw.cells[0].lanes,
                    )
                } else {
                    let c = &cw.cells[b - 1];
                    let l = f64::from(c.lanes);
                    (
                        c.fd.sending(&p, c.rho) * l,
                        c.fd.congestion(c.rho),
                        c.fd.cap * l,
                        c.lanes,
                    )
                };
                if b == n {
                    cw.out_up[b] = s_up;
                    continue;
                }
                let d = &cw.cells[b];
                let ld = f64::from(d.lanes);
                let mut r = d.fd.receiving(&p, d.rho) * ld;
                let ramp = cw.on_ramp[b];
                if b > 0 {
                    let throat = if ramp.is_some() {
                        d.fd.cap * ld
                    } else {
                        cap_up.min(d.fd.cap * ld)
                    };
                    r = r.min((1.0 - drop * cong_up) * throat);
                }
                let dm = (1.0 - beta) * s_up;
                let dr = match ramp {
                    Some(ri) => {
                        let rp = &cw.ramps[ri];
                        let rate = match rp.state {
                            EntryState::Open => self.cfg.ramp_capacity_vph,
                            EntryState::Metered => self.cfg.metered_vph,
                            EntryState::Closed => 0.0,
                        };
                        (rp.queue / dt_h).min(rate)
                    }
                    None => 0.0,
                };
                let lu = f64::from(lanes_up);
                let (ym, yr) = merge(dm, dr, r.max(0.0), lu / (lu + 1.0));
                cw.out_up[b] = if beta < 1.0 { ym / (1.0 - beta) } else { 0.0 };
                cw.in_down[b] = ym + yr;
                if let Some(ri) = ramp {
                    let rp = &mut cw.ramps[ri];
                    rp.flow = yr;
                    rp.queue = (rp.queue - yr * dt_h).max(0.0);
                }
            }
            cw.origin_queue = (cw.origin_queue - cw.in_down[0] * dt_h).max(0.0);
            let l_km = cw.cell_m / 1000.0;
            for (i, c) in cw.cells.iter_mut().enumerate() {
                let lanes = f64::from(c.lanes);
                c.inflow = cw.in_down[i];
                c.outflow = cw.out_up[i + 1];
                c.rho = (c.rho + dt_h / (l_km * lanes) * (c.inflow - c.outflow))
                    .clamp(0.0, p.jam_density);
                let vmax = c.fd.free_speed(&p, c.rho);
                c.speed_kmh = if c.rho < 0.5 {
                    vmax
                } else {
                    (0.5 * (c.inflow + c.outflow) / (lanes * c.rho)).min(vmax)
                };
            }
            // Probes enter with the traffic.
            cw.origin_probe_acc += cw.in_down[0] * dt_h * self.cfg.probe_share;
            for r in &mut cw.ramps {
                r.probe_acc += r.flow * dt_h * self.cfg.probe_share;
            }
        }
        for cwi in 0..self.cws.len() {
            while self.cws[cwi].origin_probe_acc >= 1.0 {
                self.cws[cwi].origin_probe_acc -= 1.0;
                let t0 = self.cws[cwi].travel0;
                self.spawn(cwi, t0, None);
            }
            for ri in 0..self.cws[cwi].ramps.len() {
                while self.cws[cwi].ramps[ri].probe_acc >= 1.0 {
                    self.cws[cwi].ramps[ri].probe_acc -= 1.0;
                    let tr = self.cws[cwi].boundary_travel(self.cws[cwi].ramps[ri].boundary);
                    self.spawn(cwi, tr, None);
                }
            }
        }
    }

    fn move_probes(&mut self, t: i64) {
        let dt_s = f64::from(self.cfg.step_s);
        let mut i = 0;
        while i < self.probes.len() {
            let pr = &mut self.probes[i];
            let cw = &mut self.cws[pr.cw];
            let ci = cw.cell_at(pr.travel);
            let v_cell = cw.cells[ci].speed_kmh;
            let mix = ((v_cell - 40.0) / 40.0).clamp(0.0, 1.0);
            let mut v = (v_cell * (1.0 + (pr.factor - 1.0) * mix)).min(pr.desired);
            if let Some(si) = pr.stop {
                let st = &mut self.stops[si];
                match st.stopped {
                    None if pr.travel + v / 3.6 * dt_s >= st.stop_travel => {
                        pr.travel = st.stop_travel;
                        st.stopped = Some((t, t + st.duration_ms));
                        let k = cw.cell_at(st.stop_travel);
                        let c = &mut cw.cells[k];
                        c.blocked = c.blocked.saturating_add(1);
                        self.dirty = true;
                        v = 0.0;
                    }
                    Some((_, end)) if t < end => v = 0.0,
                    Some(_) => {
                        if !st.released {
                            let k = cw.cell_at(st.stop_travel);
                            let c = &mut cw.cells[k];
                            c.blocked = c.blocked.saturating_sub(1);
                            st.released = true;
                            self.dirty = true;
                        }
                        pr.stop = None;
                    }
                    None => {}
                }
            }
            pr.speed = v;
            pr.travel += v / 3.6 * dt_s;
            if pr.travel >= pr.exit {
                self.probes.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn accumulate_detectors(&mut self) {
        let dt_s = f64::from(self.cfg.step_s);
        let dt_h = dt_s / 3600.0;
        for d in &mut self.detectors {
            let c = &self.cws[d.cw].cells[d.cell];
            let q = 0.5 * (c.inflow + c.outflow) * dt_h;
            d.vol += q;
            d.speed_vol += c.speed_kmh * q;
            d.dens += c.rho * dt_s;
            d.time_s += dt_s;
        }
    }

    fn emit_obs(&mut self, t: i64) {
        let cap = self.cfg.fd.capacity_vph;
        let l_eff = self.cfg.effective_length_m;
        let interval = self.cfg.obs_interval_s as u16;
        for (di, d) in self.detectors.iter_mut().enumerate() {
            let n = usize::from(d.lanes);
            let nf = n as f64;
            let hours = (d.time_s / 3600.0).max(1e-9);
            let rho = d.dens / d.time_s.max(1e-9);
            let v = if d.vol > 1e-6 {
                d.speed_vol / d.vol
            } else {
                self.cws[d.cw].cells[d.cell].speed_kmh
            };
            let u = (d.vol / hours / nf / cap).min(1.0);
            let g = ((v - 30.0) / 60.0).clamp(0.0, 1.0);
            let spread = |l: usize| {
                if n > 1 {
                    2.0 * l as f64 / (nf - 1.0) - 1.0
                } else {
                    0.0
                }
            };
            let mut wsum = 0.0;
            for l in 0..n {
                let share = (1.0 + 0.25 * spread(l) * (1.0 - u)) / nf;
                let f = 1.0 - 0.09 * spread(l) * g;
                wsum += share / f;
            }
            for l in 0..n {
                let share = (1.0 + 0.25 * spread(l) * (1.0 - u)) / nf;
                let f = 1.0 - 0.09 * spread(l) * g;
                let count = poisson(&mut self.rng, d.vol * share);
                let speed = (v * f * (1.0 + 0.02 * normal(&mut self.rng))).clamp(1.0, 200.0);
                let rho_l = rho * nf * (share / f) / wsum;
                // Occupancy from density and the effective length; a loop
                // nobody crossed in moving traffic stays empty, while standing
                // vehicles cover it whether or not anyone crossed.
                let moving = ((v - 30.0) / 30.0).clamp(0.0, 1.0);
                let empty = if count == 0 { 1.0 - moving } else { 1.0 };
                let occ = (rho_l * l_eff / 10.0 * empty * (1.0 + 0.03 * normal(&mut self.rng)))
                    .clamp(0.0, 100.0);
                let lane = l as u8 + 1;
                let mut reading = (count, (count > 0).then_some(speed as f32), occ as f32);
                let fault = d.faults.iter().find(|f| {
                    t > f.start_ms && t <= f.end_ms && f.lane.is_none_or(|fl| fl == lane)
                });
                match fault.map(|f| f.kind) {
                    Some(FaultKind::Silent) => continue,
                    Some(FaultKind::Stuck) => reading = d.last[l],
                    Some(FaultKind::Dead) => reading = (0, None, 0.0),
                    Some(FaultKind::LockedOn) => reading = (0, None, 100.0),
                    Some(FaultKind::Chattering) => {
                        reading = (
                            count * 3 + 20 + self.rng.u32(0..10),
                            Some(speed as f32),
                            0.0,
                        );
                    }
                    None => d.last[l] = reading,
                }
                self.out.obs.push(ObsReading {
                    time_ms: t,
                    detector: di as u32,
                    lane,
                    interval_s: interval,
                    volume: reading.0,
                    speed_kmh: reading.1,
                    occupancy_pct: reading.2,
                });
            }
            d.vol = 0.0;
            d.speed_vol = 0.0;
            d.dens = 0.0;
            d.time_s = 0.0;
        }
    }

    fn emit_weather(&mut self, t: i64) {
        for (i, st) in self.road.weather().iter().enumerate() {
            let deiced = self
                .road
                .deicers()
                .iter()
                .zip(&self.deicer_on)
                .any(|(z, &on)| on && st.stake_m >= z.from_m && st.stake_m <= z.to_m);
            let s = self.weather.sample(st.stake_m, t, deiced);
            let r = &mut self.rng;
            self.out.weather.push(WeatherReading {
                time_ms: t,
                station: i as u32,
                visibility_m: (s.visibility_m * (1.0 + 0.04 * normal(r))).max(5.0) as f32,
                surface_temp_c: (s.surface_temp_c + 0.1 * normal(r)) as f32,
                air_temp_c: (s.air_temp_c + 0.1 * normal(r)) as f32,
                humidity_pct: (s.humidity_pct + 0.8 * normal(r)).clamp(5.0, 100.0) as f32,
                surface_state: s.surface_state,
            });
        }
    }

    fn emit_positions(&mut self, t: i64) {
        for pr in &mut self.probes {
            let cw = &self.cws[pr.cw];
            self.out.positions.push(VehiclePosition {
                time_ms: t,
                vehicle: pr.id,
                class: pr.class,
                direction: cw.dir,
                stake_m: cw.stake(pr.travel),
                speed_kmh: pr.speed as f32,
            });
            if let Some(si) = pr.speeding
                && pr.speed > HAZMAT_LIMIT_KMH
            {
                let f = &mut self.speeding[si].fast;
                *f = Some(match *f {
                    None => (t, t, pr.speed as f32),
                    Some((a, _, m)) => (a, t, m.max(pr.speed as f32)),
                });
            }
            if pr.class == VehicleClass::Hazmat
                && let Some(&(_, _, tunnel)) = cw
                    .forbidden
                    .iter()
                    .find(|f| pr.travel >= f.0 && pr.travel <= f.1)
            {
                match pr.restricted {
                    Some(ri) => self.restricted[ri].last_ms = t,
                    None => {
                        pr.restricted = Some(self.restricted.len());
                        self.restricted.push(RestrictedRt {
                            vehicle: pr.id,
                            class: pr.class,
                            cw: pr.cw,
                            tunnel,
                            first_ms: t,
                            last_ms: t,
                        });
                    }
                }
            }
        }
    }

    fn emit_cameras(&mut self, t: i64) {
        for st in &self.stops {
            if let Some((a, b)) = st.stopped
                && t > a
                && t <= b
            {
                let cw = &self.cws[st.cw];
                let c = &cw.cells[cw.cell_at(st.stop_travel)];
                if let Some(tunnel) = c.tunnel {
                    self.out.cameras.push(CameraEvent {
                        time_ms: t,
                        tunnel,
                        kind: CameraKind::StoppedVehicle,
                        direction: cw.dir,
                        stake_m: cw.stake(st.stop_travel),
                        lane: Some(c.lanes),
                        confidence: 0.92,
                    });
                }
            }
        }
        for inc in &self.incidents {
            let cw = &self.cws[inc.cw];
            let c = &cw.cells[inc.cell];
            if inc.active
                && let Some(tunnel) = c.tunnel
            {
                self.out.cameras.push(CameraEvent {
                    time_ms: t,
                    tunnel,
                    kind: CameraKind::StoppedVehicle,
                    direction: cw.dir,
                    stake_m: inc.stake_m,
                    lane: Some(c.lanes),
                    confidence: 0.9,
                });
            }
        }
        if (t - self.start_ms) % 300_000 == 0 {
            for cw in &self.cws {
                for c in &cw.cells {
                    if let Some(tunnel) = c.tunnel
                        && c.speed_kmh < 25.0
                        && c.rho > 30.0
                    {
                        self.out.cameras.push(CameraEvent {
                            time_ms: t,
                            tunnel,
                            kind: CameraKind::Congestion,
                            direction: cw.dir,
                            stake_m: c.centre_m,
                            lane: None,
                            confidence: 0.85,
                        });
                    }
                }
            }
        }
    }

    /// Advances one step (`SimConfig::step_s`) and returns the readings that became due.
    pub fn step(&mut self) -> &Output {
        self.out.clear();
        let t0 = self.now_ms;
        let step_ms = i64::from(self.cfg.step_s) * 1000;
        let t1 = t0 + step_ms;
        let since = t0 - self.start_ms;
        self.update_episodes(t0);
        if since % (i64::from(self.cfg.weather_interval_s) * 1000) == 0 {
            self.update_cell_weather(t0);
        }
        if self.dirty {
            self.refresh_cells();
        }
        self.spawn_scripted(t0);
        self.step_traffic(t0);
        self.move_probes(t0);
        if self.dirty {
            self.refresh_cells();
        }
        self.accumulate_detectors();
        self.now_ms = t1;
        let since = t1 - self.start_ms;
        if since % (i64::from(self.cfg.obs_interval_s) * 1000) == 0 {
            self.emit_obs(t1);
        }
        if since % (i64::from(self.cfg.weather_interval_s) * 1000) == 0 {
            self.emit_weather(t1);
        }
        if since % (i64::from(self.cfg.position_interval_s) * 1000) == 0 {
            self.emit_positions(t1);
            if self.cfg.tunnel_cameras && since % 60_000 == 0 {
                self.emit_cameras(t1);
            }
        }
        &self.out
    }

    /// Runs until `until_ms`, calling `each` with the readings of every step.
    pub fn run_until(&mut self, until_ms: i64, mut each: impl FnMut(&Output)) {
        while self.now_ms < until_ms {
            self.step();
            each(&self.out);
        }
    }

    /// Ground truth so far (后台真值): every episode with its actual times and
    /// place; ones still under way end at their planned end (or now).
    pub fn truth(&self) -> Vec<TruthRecord> {
        let mut out = Vec::new();
        for e in &self.scenario.episodes {
            match e {
                Episode::FogBank(f) => {
                    let start = self.midnight_ms + i64::from(f.start_s) * 1000;
                    out.push(TruthRecord::fog(f, start));
                }
                Episode::Ice(i) => {
                    let start = self.midnight_ms + i64::from(i.start_s) * 1000;
                    out.push(TruthRecord::ice(i, start));
                }
                Episode::DetectorFault(f) => {
                    if let Some(di) = self.road.detector_index(&f.detector) {
                        let d = &self.road.detectors()[di as usize];
                        let start = self.midnight_ms + i64::from(f.start_s) * 1000;
                        out.push(TruthRecord::fault(f, di, d, start));
                    }
                }
                _ => {}
            }
        }
        for inc in &self.incidents {
            let cw = &self.cws[inc.cw];
            out.push(TruthRecord::incident(
                cw.dir,
                inc.stake_m,
                inc.lanes_blocked,
                cw.cells[inc.cell].lanes,
                inc.start_ms,
                inc.end_ms,
            ));
        }
        for st in &self.stops {
            if let (Some(v), Some((a, b))) = (st.vehicle, st.stopped) {
                let cw = &self.cws[st.cw];
                out.push(TruthRecord::hazmat_stopped(
                    v,
                    cw.dir,
                    cw.stake(st.stop_travel),
                    a,
                    b,
                ));
            }
        }
        for sp in &self.speeding {
            if let (Some(v), Some((a, b, max))) = (sp.vehicle, sp.fast) {
                out.push(TruthRecord::hazmat_speeding(
                    v,
                    self.cws[sp.cw].dir,
                    f64::from(max),
                    a,
                    b,
                ));
            }
        }
        for r in &self.restricted {
            let t = &self.road.tunnels()[r.tunnel as usize];
            out.push(TruthRecord::hazmat_restricted(
                r.vehicle,
                r.class,
                self.cws[r.cw].dir,
                r.tunnel,
                t.from_m,
                t.to_m,
                r.first_ms,
                r.last_ms,
            ));
        }
        out.sort_by_key(|r| r.start_ms);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_gives_priority_by_lanes() {
        // Room for everyone.
        assert_eq!(merge(3000.0, 500.0, 6000.0, 0.75), (3000.0, 500.0));
        // Both want more than their share: split 3:1.
        let (m, r) = merge(6000.0, 1800.0, 4000.0, 0.75);
        assert!((m - 3000.0).abs() < 1e-9 && (r - 1000.0).abs() < 1e-9);
        // The ramp wants little: it gets it all, the mainline the rest.
        let (m, r) = merge(6000.0, 300.0, 4000.0, 0.75);
        assert!((m - 3700.0).abs() < 1e-9 && (r - 300.0).abs() < 1e-9);
    }

    #[test]
    fn contract_spellings_parse() {
        assert_eq!(EntryState::parse("metered"), Some(EntryState::Metered));
        assert_eq!(EntryState::parse("shut"), None);
        assert_eq!(
            FogLightMode::parse("tail_marking"),
            Some(FogLightMode::TailMarking)
        );
    }

    #[test]
    fn poisson_mean_is_right() {
        let mut rng = fastrand::Rng::with_seed(3);
        for mean in [0.4, 5.0, 80.0] {
            let n = 20_000;
            let s: u64 = (0..n).map(|_| u64::from(poisson(&mut rng, mean))).sum();
            let m = s as f64 / n as f64;
            assert!((m - mean).abs() < 0.05 * mean + 0.02, "{mean}: {m}");
        }
    }
}
