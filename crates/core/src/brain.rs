//! The pipeline: senses → quality → state → events → decisions, driven by
//! data time. `zhilu replay` feeds it from files; the live server will feed
//! it from the network. Both see exactly the same behaviour.
//!
//! Time advances in ticks of `step` (the detectors' interval unless
//! configured): a row belongs to the tick that ends at or after its time,
//! and a tick is closed — quality rules, state, detection — as soon as a
//! row of a later tick arrives. A late row (older than the open tick, within
//! its interval) is still used: it lands in its lane and counts at the next
//! tick.

use std::sync::Arc;

use zhilu_road::{DeviceKind, DeviceRef, RoadBook};

use crate::congestion::{CongestionConfig, CongestionWatch};
use crate::decide::Board;
use crate::event::{Action, Event};
use crate::incident::{IncidentConfig, IncidentWatch, ProbeObs};
use crate::plans;
use crate::quality::{Quality, QualityConfig, Recorded};
use crate::reading::{CameraObs, Obs, PositionObs, WeatherObs};
use crate::state::{CorridorState, StateConfig, StateEstimator};
use crate::vehicles::{VehicleConfig, VehicleWatch};
use crate::weather::{WeatherConfig, WeatherWatch};

/// Everything configurable in the pipeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrainConfig {
    /// Data-quality rules.
    pub quality: QualityConfig,
    /// State estimation.
    pub state: StateConfig,
    /// Fog and ice.
    pub weather: WeatherConfig,
    /// Hazardous goods and wrong way.
    pub vehicles: VehicleConfig,
    /// Congestion.
    pub congestion: CongestionConfig,
    /// Incidents.
    pub incident: IncidentConfig,
    /// Tick length (s); default: the interval of the first observation.
    pub step_s: Option<u16>,
}

/// What the pipeline produced since the last drain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    /// Events that ended (or, after [`Brain::finish`], all still open).
    pub events: Vec<Event>,
    /// Device commands, in time order.
    pub actions: Vec<Action>,
}

impl Outputs {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.actions.is_empty()
    }
}

/// Counters for the run summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrainStats {
    /// Ticks closed.
    pub ticks: u64,
}

/// The cloud-control brain of one corridor.
#[derive(Debug)]
pub struct Brain {
    road: Arc<RoadBook>,
    cfg: BrainConfig,
    quality: Quality,
    state: Option<StateEstimator>,
    step_ms: i64,
    tick_ms: Option<i64>,
    closed_ms: Option<i64>,
    next_seq: u64,
    out: Outputs,
    stats: BrainStats,
    lane_buf: Vec<(u16, i64, f32, f32)>,
    lane_flow: Vec<f32>,
    /// Per corridor lane: the last raw reading (time, vehicles, occupancy
    /// %), whatever data quality makes of it — the incident test reads a
    /// lane standing still over its loop.
    lane_raw: Vec<(i64, u16, f32)>,
    weather: WeatherWatch,
    vehicles: VehicleWatch,
    congestion: CongestionWatch,
    incidents: IncidentWatch,
    board: Board,
    /// Per direction and station: the speed-limit signs up to 2.5 km
    /// upstream (about one gantry spacing: drivers keep a lowered limit
    /// until the next sign and for a while after it).
    station_vsl: Vec<Vec<Vec<DeviceRef>>>,
    /// The limit in force at each station (km/h), rebuilt every tick.
    station_limit: Vec<Vec<f32>>,
    /// Speed-limit signs commanded below the posted limit (sign, km/h).
    active_limits: Vec<(u32, u16)>,
    /// Whether `station_limit` holds the posted limit everywhere and the
    /// incident test has it.
    limits_posted: bool,
}

impl Brain {
    /// A brain for the corridor.
    pub fn new(road: Arc<RoadBook>, cfg: BrainConfig) -> Brain {
        let quality = Quality::new(&road, cfg.quality.clone());
        let weather = WeatherWatch::new(&road, cfg.weather.clone());
        let road_lanes = road.total_lanes() as usize;
        let vehicles = VehicleWatch::new(cfg.vehicles.clone());
        let cfg_congestion = cfg.congestion.clone();
        let cfg_incident = cfg.incident.clone();
        let station_vsl: Vec<Vec<Vec<DeviceRef>>> = road
            .directions()
            .iter()
            .map(|&dir| {
                road.stations(dir)
                    .iter()
                    .map(|&det| {
                        let stake = road.detectors()[det as usize].stake_m;
                        road.upstream(dir, stake, 2500.0, &[DeviceKind::Vsl])
                            .iter()
                            .map(|u| u.device)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let station_limit = station_vsl
            .iter()
            .map(|v| vec![road.speed_limit_kmh() as f32; v.len()])
            .collect();
        Brain {
            road,
            cfg,
            quality,
            state: None,
            step_ms: 0,
            tick_ms: None,
            closed_ms: None,
            next_seq: 1,
            out: Outputs::default(),
            stats: BrainStats::default(),
            lane_buf: Vec::with_capacity(8),
            lane_flow: vec![f32::NAN; road_lanes],
            lane_raw: vec![(i64::MIN, 0, f32::NAN); road_lanes],
            weather,
            vehicles,
            congestion: CongestionWatch::new(cfg_congestion),
            incidents: IncidentWatch::new(cfg_incident),
            board: Board::new(),
            station_vsl,
            station_limit,
            active_limits: Vec::new(),
            // Not yet handed over: the first tick does.
            limits_posted: false,
        }
    }

    /// The road book.
    pub fn road(&self) -> &RoadBook {
        &self.road
    }

    /// The data-quality monitor.
    pub fn quality(&self) -> &Quality {
        &self.quality
    }

    /// The latest corridor state (`None` before the first tick).
    pub fn state(&self) -> Option<&CorridorState> {
        self.state
            .as_ref()
            .map(|s| s.state())
            .filter(|s| s.ts_ms != 0)
    }

    /// Run counters.
    pub fn stats(&self) -> &BrainStats {
        &self.stats
    }

    /// Tick length (ms), 0 until known.
    pub fn step_ms(&self) -> i64 {
        self.step_ms
    }

    /// Takes what was produced so far.
    pub fn drain(&mut self) -> Outputs {
        std::mem::take(&mut self.out)
    }

    /// Whether anything waits to be drained.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// One detector reading. `obs.lane` must be within the detector's lanes
    /// (the adapters check it).
    #[inline]
    pub fn observe(&mut self, obs: &Obs) -> Recorded {
        self.advance(obs.ts_ms, Some(obs.interval_s));
        let d = &self.road.detectors()[obs.detector as usize];
        debug_assert!(obs.lane >= 1 && obs.lane <= d.lanes);
        let lane = d.first_lane as usize + (obs.lane.clamp(1, d.lanes) as usize - 1);
        if obs.valid {
            self.lane_raw[lane] = (obs.ts_ms, obs.volume, obs.occupancy_pct);
        }
        self.quality.record(lane, obs)
    }

    /// One weather reading. A reading that changes a station's fog band
    /// takes effect at once — the zones and plans are rerun at the
    /// reading's time, not at the end of its tick (the law from the first
    /// reading: weather rows come every minute, each station at its own
    /// second, detector ticks every 20–60 s, and a row between two ticks
    /// would wait for the next; a release likewise).
    pub fn weather(&mut self, w: &WeatherObs) {
        self.advance(w.ts_ms, None);
        if self.weather.observe(w) {
            let at = self.closed_ms.map_or(w.ts_ms, |c| w.ts_ms.max(c));
            self.weather
                .close_tick(at, &mut self.next_seq, &mut self.out.events);
            self.decide(at);
        }
    }

    /// One vehicle position.
    pub fn position(&mut self, p: &PositionObs) {
        self.advance(p.ts_ms, None);
        if let Some((direction, stake_m, offset_m)) =
            self.vehicles
                .observe(&self.road, p, &mut self.next_seq, &mut self.out.events)
        {
            self.incidents.probe(&ProbeObs {
                ts_ms: p.ts_ms,
                vehicle: p.vehicle,
                direction,
                stake_m,
                offset_m,
                speed_kmh: p.speed_kmh,
            });
        }
    }

    /// One camera event.
    pub fn camera(&mut self, c: &CameraObs) {
        self.advance(c.ts_ms, None);
        self.vehicles.camera(c, &mut self.next_seq);
        self.incidents.camera(c);
    }

    /// Ends the run: closes the open tick and hands over every still-open
    /// event (with `end_ms = None`).
    pub fn finish(&mut self) {
        self.close_open_tick();
        let mut open: Vec<Event> = self.open_events().cloned().collect();
        open.sort_by_key(|e| e.seq);
        self.out.events.extend(open);
    }

    /// Every event still open, in no particular order (the live server
    /// diffs this after each tick to publish openings and updates).
    pub fn open_events(&self) -> impl Iterator<Item = &Event> {
        self.quality
            .open_events()
            .chain(self.weather.open_events())
            .chain(self.vehicles.open_events())
            .chain(self.congestion.open_events())
            .chain(self.incidents.open())
    }

    /// The open tick's end (data time), if a tick is open.
    pub fn open_tick_ms(&self) -> Option<i64> {
        self.tick_ms
    }

    /// Closes the open tick now instead of waiting for a row of a later
    /// one. The live server calls this when every lane has reported or
    /// when its clock is past the tick's end plus a grace time. Rows that
    /// still arrive for a closed tick are late rows: they land in their
    /// lane and count at the next tick. Returns whether a tick was closed.
    pub fn close_open_tick(&mut self) -> bool {
        match self.tick_ms.take() {
            Some(t) => {
                self.close_tick(t);
                self.closed_ms = Some(t);
                true
            }
            None => false,
        }
    }

    fn advance(&mut self, ts_ms: i64, interval_s: Option<u16>) {
        if self.step_ms == 0 {
            // Weather or positions before any detector row: tick every 30 s.
            let i = self.cfg.step_s.or(interval_s).unwrap_or(30);
            self.step_ms = i.max(1) as i64 * 1000;
            self.state = Some(StateEstimator::new(
                &self.road,
                self.cfg.state.clone(),
                self.step_ms,
            ));
        }
        let t = (ts_ms + self.step_ms - 1).div_euclid(self.step_ms) * self.step_ms;
        if self.closed_ms.is_some_and(|c| t <= c) {
            // A late row for a tick closed early: no tick to open.
            return;
        }
        match self.tick_ms {
            None => self.tick_ms = Some(t),
            Some(cur) if t > cur => {
                self.close_tick(cur);
                self.tick_ms = Some(t);
            }
            Some(_) => {}
        }
    }

    fn close_tick(&mut self, t: i64) {
        self.stats.ticks += 1;
        // 1. Which lanes can be trusted.
        self.quality
            .close_tick(&self.road, t, &mut self.next_seq, &mut self.out.events);
        // 2. The state of the corridor from the trusted lanes.
        if let Some(state) = self.state.as_mut() {
            for (di, &dir) in self.road.directions().iter().enumerate() {
                for (k, &det) in self.road.stations(dir).iter().enumerate() {
                    let d = &self.road.detectors()[det as usize];
                    self.lane_buf.clear();
                    for li in d.first_lane as usize..(d.first_lane + d.lanes as u32) as usize {
                        self.lane_flow[li] = f32::NAN;
                        if let Some(r) = self.quality.usable(li, t) {
                            self.lane_flow[li] = r.flow_vph();
                            self.lane_buf.push((
                                r.volume,
                                r.interval_ms,
                                r.speed_kmh,
                                r.occupancy_pct,
                            ));
                        }
                    }
                    let sample = state.aggregate(d.lanes, &self.lane_buf);
                    state.samples_mut(di)[k] = sample;
                }
            }
            let corridor = state.update(t);
            self.congestion
                .close_tick(corridor, &mut self.next_seq, &mut self.out.events);
            self.incidents.set_weather(
                self.weather
                    .fog_zones()
                    .iter()
                    .chain(self.weather.ice_zones())
                    .map(|z| &z.event),
            );
            // The limits in force at the stations, handed to the incident
            // test when they change (usually none is lowered: nothing to do).
            let posted = self.road.speed_limit_kmh() as f32;
            self.active_limits.clear();
            self.active_limits.extend(self.board.speed_limits());
            if !(self.active_limits.is_empty() && self.limits_posted) {
                for (signs, limits) in self.station_vsl.iter().zip(&mut self.station_limit) {
                    for (near, limit) in signs.iter().zip(limits.iter_mut()) {
                        *limit = near
                            .iter()
                            .filter_map(|s| {
                                self.active_limits
                                    .iter()
                                    .find(|(i, _)| *i == s.index)
                                    .map(|&(_, v)| v as f32)
                            })
                            .fold(posted, f32::min);
                    }
                }
                self.limits_posted = self.active_limits.is_empty();
                self.incidents.set_limits(&self.station_limit);
            }
            self.incidents.set_lane_raw(&self.lane_raw);
            self.incidents.close_tick(
                &self.road,
                corridor,
                &self.lane_flow,
                &mut self.next_seq,
                &mut self.out.events,
            );
            // A blocked lane counts nothing downstream of it: that is the
            // incident's evidence, not a detector fault.
            let near: Vec<u32> = self
                .incidents
                .open()
                .flat_map(|e| e.detectors.iter().copied())
                .collect();
            self.quality.set_near_incident(near.into_iter());
        }
        // 3. Events.
        self.weather
            .close_tick(t, &mut self.next_seq, &mut self.out.events);
        self.vehicles.close_tick(t, &mut self.out.events);
        // 4. Decisions.
        self.decide(t);
    }

    /// Runs every plan on the open events and settles the device board.
    fn decide(&mut self, t: i64) {
        for z in self.weather.fog_zones() {
            plans::fog_plan(&mut self.board, &self.road, z);
        }
        for z in self.weather.ice_zones() {
            plans::ice_plan(&mut self.board, &self.road, z);
        }
        for e in self.incidents.open() {
            plans::incident_plan(&mut self.board, &self.road, e);
            if let Some(t) = crate::incident::tunnel_of(&self.road, e) {
                plans::tunnel_plan(&mut self.board, &self.road, e, t);
            }
        }
        for (dir, j) in self.congestion.jams() {
            plans::congestion_plan(&mut self.board, &self.road, dir, j);
        }
        self.board.settle(&self.road, t, &mut self.out.actions);
    }

    /// The device board (what every device is commanded to do).
    pub fn board(&self) -> &Board {
        &self.board
    }

    /// Fog and ice zones.
    pub fn weather_watch(&self) -> &WeatherWatch {
        &self.weather
    }
}
