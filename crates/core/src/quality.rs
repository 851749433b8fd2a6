//! Detector data quality (数据质量): which detector lanes can be trusted.
//!
//! Every reading is stored per lane; at each tick the rules below are
//! evaluated per lane. A lane whose rule fires is *faulty* and is left out of
//! state estimation until it recovers; each faulty detector station raises
//! one `detector_fault` event for the episode. The rules and their default
//! thresholds (documented in `docs/QUALITY.md`) start from the auto-fail
//! checks of IRIS (MnDOT) — no hits, chatter, locked on, no change — but
//! use minutes instead of IRIS's hours, because a cloud-control centre must
//! stop trusting a bad lane before it drives a speed limit:
//!
//! | rule | fires when | default |
//! |---|---|---|
//! | `missing` | no valid reading for N of the lane's intervals | 3 intervals |
//! | `stuck` | the same non-zero (volume, speed, occupancy) repeated (occupancy below the locked-on level) | ≥ 6 readings and ≥ 180 s |
//! | `zero_flow` | volume 0 and occupancy 0 while the other lanes (or the neighbouring stations) flow ≥ 400 veh/h/lane (smoothed over ~2 min) | 240 s |
//! | `locked_on` | occupancy ≥ 99.5 % with at most one vehicle counted, while another lane of the station is below 50 %; or alone for a long time | 120 s / 1200 s |
//! | `inconsistent` | ≥ 6 of the last 10 readings impossible together (chatter > 37 veh/30 s, speed without vehicles, vehicles without occupancy, implied vehicle length outside 2–35 m, garbage values) | 6/10 |
//!
//! A fault clears once its condition has been false for `recover_s`
//! (60 s for `missing`, 300 s for the others).

use zhilu_road::RoadBook;

use crate::event::{Event, EventDetail, EventKind};
use crate::reading::Obs;

/// A data-quality rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultRule {
    /// 数据缺失: no valid reading.
    Missing = 0,
    /// 数据不变: the same non-zero values repeated.
    Stuck = 1,
    /// 零流量: nothing counted while neighbours flow.
    ZeroFlow = 2,
    /// 占有率锁定: occupancy pinned at 100 %.
    LockedOn = 3,
    /// 量速占不一致: values impossible together.
    Inconsistent = 4,
}

impl FaultRule {
    /// All rules.
    pub const ALL: [FaultRule; 5] = [
        FaultRule::Missing,
        FaultRule::Stuck,
        FaultRule::ZeroFlow,
        FaultRule::LockedOn,
        FaultRule::Inconsistent,
    ];

    /// Name used in events and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultRule::Missing => "missing",
            FaultRule::Stuck => "stuck",
            FaultRule::ZeroFlow => "zero_flow",
            FaultRule::LockedOn => "locked_on",
            FaultRule::Inconsistent => "inconsistent",
        }
    }

    /// Rule name as the `rule` of an event.
    pub fn event_rule(self) -> &'static str {
        match self {
            FaultRule::Missing => "quality.missing",
            FaultRule::Stuck => "quality.stuck",
            FaultRule::ZeroFlow => "quality.zero_flow",
            FaultRule::LockedOn => "quality.locked_on",
            FaultRule::Inconsistent => "quality.inconsistent",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Thresholds of the quality rules.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// `missing`: intervals without a valid reading.
    pub missing_intervals: u16,
    /// `stuck`: minimum identical readings.
    pub stuck_repeats: u16,
    /// `stuck`: minimum duration (s).
    pub stuck_s: u32,
    /// `zero_flow`: duration (s).
    pub zero_s: u32,
    /// `zero_flow`: neighbours' flow that makes a zero count suspicious (veh/h/lane).
    pub neighbour_flow_vph: f32,
    /// `locked_on`: occupancy that counts as pinned (%).
    pub locked_occ_pct: f32,
    /// `locked_on`: duration while another lane of the station moves (s).
    pub locked_s: u32,
    /// `locked_on`: duration when every lane is pinned (a standing queue looks
    /// the same for a while) (s).
    pub locked_alone_s: u32,
    /// `locked_on`: a lane below this occupancy shows traffic still moves (%).
    pub moving_occ_pct: f32,
    /// `inconsistent`: readings in the sliding window.
    pub inconsistent_window: u8,
    /// `inconsistent`: inconsistent readings in the window that fire the rule.
    pub inconsistent_trigger: u8,
    /// Chatter: most vehicles one lane can count in 30 s.
    pub chatter_per_30s: f32,
    /// Plausible effective vehicle length (vehicle + detection zone), m.
    pub vehicle_length_m: (f32, f32),
    /// Minimum volume in an interval for the length and zero-occupancy checks.
    pub min_volume_for_checks: u16,
    /// Seconds of good data that clear a `missing` fault.
    pub recover_missing_s: u32,
    /// Seconds of good data that clear the other faults.
    pub recover_s: u32,
    /// Fraction of all lanes that must report in a tick for silence to count
    /// against a lane (below it, the feed itself is down).
    pub feed_gap_fraction: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            missing_intervals: 3,
            stuck_repeats: 6,
            stuck_s: 180,
            zero_s: 240,
            neighbour_flow_vph: 400.0,
            locked_occ_pct: 99.5,
            locked_s: 120,
            locked_alone_s: 1200,
            moving_occ_pct: 50.0,
            inconsistent_window: 10,
            inconsistent_trigger: 6,
            chatter_per_30s: 37.0,
            vehicle_length_m: (2.0, 35.0),
            min_volume_for_checks: 3,
            recover_missing_s: 60,
            recover_s: 300,
            feed_gap_fraction: 0.5,
        }
    }
}

/// What happened to a reading handed to [`Quality::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored.
    Accepted,
    /// The lane already has a reading for this time: ignored.
    Duplicate,
    /// Older than the lane's latest reading: ignored.
    Stale,
}

/// The latest reading of one lane, as state estimation sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneReading {
    /// End of the interval (epoch ms).
    pub ts_ms: i64,
    /// Interval (ms).
    pub interval_ms: i64,
    /// Vehicles counted.
    pub volume: u16,
    /// Mean speed (km/h), NaN when none.
    pub speed_kmh: f32,
    /// Occupancy (%).
    pub occupancy_pct: f32,
}

impl LaneReading {
    /// Flow (veh/h).
    pub fn flow_vph(&self) -> f32 {
        self.volume as f32 * 3_600_000.0 / self.interval_ms as f32
    }
}

const NEVER: i64 = i64::MIN / 4;

#[derive(Debug, Clone)]
struct Lane {
    reading: LaneReading,
    /// Whether `reading` is valid (an invalid reading still proves the lane talks).
    valid: bool,
    /// A reading arrived since the last tick.
    fresh: bool,
    has_reading: bool,
    last_valid_ts: i64,
    stuck_key: (u16, u32, u32),
    stuck_n: u16,
    stuck_since: i64,
    zero_since: i64,
    /// Smoothed flow beside a zero-counting lane (veh/h/lane), over the streak.
    zero_nb_flow: f32,
    locked_since: i64,
    incons_bits: u16,
    incons_since: i64,
    /// Active faults (bit per rule).
    active: u8,
    /// Per rule: when the condition began (for an active fault).
    cond_start: [i64; 5],
    /// Per rule: since when an active fault's condition has been false.
    clear_since: [i64; 5],
}

impl Lane {
    /// Whether its latest reading may be used at `now_ms`: valid, not
    /// faulty, and no older than two of its intervals.
    fn usable(&self, now_ms: i64) -> bool {
        self.valid
            && self.active == 0
            && self.has_reading
            && now_ms - self.reading.ts_ms < 2 * self.reading.interval_ms
    }

    fn new() -> Lane {
        Lane {
            reading: LaneReading {
                ts_ms: NEVER,
                interval_ms: 0,
                volume: 0,
                speed_kmh: f32::NAN,
                occupancy_pct: 0.0,
            },
            valid: false,
            fresh: false,
            has_reading: false,
            last_valid_ts: NEVER,
            stuck_key: (0, 0, 0),
            stuck_n: 0,
            stuck_since: NEVER,
            zero_since: NEVER,
            zero_nb_flow: 0.0,
            locked_since: NEVER,
            incons_bits: 0,
            incons_since: NEVER,
            active: 0,
            cond_start: [NEVER; 5],
            clear_since: [NEVER; 5],
        }
    }
}

/// An open fault episode of one detector station.
#[derive(Debug, Clone)]
struct Episode {
    event: Event,
}

/// The per-lane quality monitor of a whole corridor.
#[derive(Debug, Clone)]
pub struct Quality {
    cfg: QualityConfig,
    lanes: Vec<Lane>,
    episodes: Vec<Option<Episode>>,
    /// Per detector: flow per usable lane this tick (veh/h/lane), NaN if none.
    station_flow: Vec<f32>,
    first_tick: i64,
    nominal_interval_ms: i64,
    /// Per detector: next to an open incident (a blocked lane counts nothing
    /// downstream of it; that is the incident's evidence, not a fault).
    near_incident: Vec<bool>,
    open_faults: usize,
}

impl Quality {
    /// A monitor for every detector lane of the road book.
    pub fn new(road: &RoadBook, cfg: QualityConfig) -> Quality {
        let n = road.total_lanes() as usize;
        Quality {
            cfg,
            lanes: vec![Lane::new(); n],
            episodes: vec![None; road.detectors().len()],
            station_flow: vec![f32::NAN; road.detectors().len()],
            first_tick: NEVER,
            near_incident: vec![false; road.detectors().len()],
            nominal_interval_ms: 0,
            open_faults: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &QualityConfig {
        &self.cfg
    }

    /// Stores one reading. The caller resolved the lane: `lane_index` is
    /// `detector.first_lane + lane − 1`.
    pub fn record(&mut self, lane_index: usize, obs: &Obs) -> Recorded {
        let lane = &mut self.lanes[lane_index];
        if lane.has_reading {
            if obs.ts_ms == lane.reading.ts_ms {
                return Recorded::Duplicate;
            }
            if obs.ts_ms < lane.reading.ts_ms {
                return Recorded::Stale;
            }
        }
        if self.nominal_interval_ms == 0 {
            self.nominal_interval_ms = obs.interval_s as i64 * 1000;
        }
        lane.reading = LaneReading {
            ts_ms: obs.ts_ms,
            interval_ms: obs.interval_s.max(1) as i64 * 1000,
            volume: obs.volume,
            speed_kmh: obs.speed_kmh.unwrap_or(f32::NAN),
            occupancy_pct: obs.occupancy_pct,
        };
        lane.valid = obs.valid;
        lane.fresh = true;
        lane.has_reading = true;
        Recorded::Accepted
    }

    /// The lane's latest reading if it may be used for state at `now_ms`:
    /// valid, not faulty, and no older than two of its intervals.
    pub fn usable(&self, lane_index: usize, now_ms: i64) -> Option<&LaneReading> {
        let l = &self.lanes[lane_index];
        l.usable(now_ms).then_some(&l.reading)
    }

    /// Whether a lane is currently faulty.
    pub fn is_faulty(&self, lane_index: usize) -> bool {
        self.lanes[lane_index].active != 0
    }

    /// Active faults of a lane.
    pub fn faults(&self, lane_index: usize) -> impl Iterator<Item = FaultRule> + '_ {
        let a = self.lanes[lane_index].active;
        FaultRule::ALL.into_iter().filter(move |r| a & r.bit() != 0)
    }

    /// Marks the detectors next to an open incident: their zero counts are
    /// not held against them.
    pub fn set_near_incident(&mut self, detectors: impl Iterator<Item = u32>) {
        self.near_incident.fill(false);
        for d in detectors {
            if let Some(f) = self.near_incident.get_mut(d as usize) {
                *f = true;
            }
        }
    }

    /// Number of faulty lanes.
    pub fn open_faults(&self) -> usize {
        self.open_faults
    }

    fn is_inconsistent(&self, l: &Lane) -> bool {
        if !l.valid {
            return true;
        }
        let c = &self.cfg;
        let r = &l.reading;
        let interval_s = r.interval_ms as f32 / 1000.0;
        if r.volume as f32 > c.chatter_per_30s * interval_s / 30.0 + 0.5 {
            return true;
        }
        let has_speed = r.speed_kmh.is_finite();
        if r.volume == 0 && has_speed && r.speed_kmh > 0.0 {
            return true;
        }
        if r.volume >= c.min_volume_for_checks {
            if r.occupancy_pct <= 0.0 {
                return true;
            }
            if has_speed && r.speed_kmh > 0.0 {
                // Effective length L = occupancy × speed / flow (m).
                let len = r.occupancy_pct / 100.0 * r.speed_kmh * 1000.0 / r.flow_vph();
                if len < c.vehicle_length_m.0 || len > c.vehicle_length_m.1 {
                    return true;
                }
            }
        }
        false
    }

    /// Evaluates every rule at the end of tick `now_ms` and opens or closes
    /// `detector_fault` events. Newly closed events go to `closed`; `next_seq`
    /// numbers new events.
    pub fn close_tick(
        &mut self,
        road: &RoadBook,
        now_ms: i64,
        next_seq: &mut u64,
        closed: &mut Vec<Event>,
    ) {
        if self.first_tick == NEVER {
            self.first_tick = now_ms;
        }
        let cfg = self.cfg.clone();
        let nominal = if self.nominal_interval_ms > 0 {
            self.nominal_interval_ms
        } else {
            30_000
        };
        let fresh = self.lanes.iter().filter(|l| l.fresh).count();
        let feed_up =
            self.lanes.len() < 4 || fresh as f32 >= cfg.feed_gap_fraction * self.lanes.len() as f32;
        if !feed_up {
            // The feed itself is down (or this tick carried no detector data):
            // no news about any lane, so no fault opens or clears. The few
            // readings that did arrive are used at the next tick.
            return;
        }

        // Pass 1: per-lane reading rules, and each station's flow per usable lane.
        for (di, d) in road.detectors().iter().enumerate() {
            let (mut q, mut n) = (0.0f32, 0u32);
            for li in d.first_lane as usize..(d.first_lane + d.lanes as u32) as usize {
                let incons = { self.lanes[li].fresh && self.is_inconsistent(&self.lanes[li]) };
                let l = &mut self.lanes[li];
                if l.fresh {
                    let r = l.reading;
                    let start = r.ts_ms - r.interval_ms;
                    // Inconsistency window.
                    l.incons_bits = (l.incons_bits << 1) | incons as u16;
                    let mask = if cfg.inconsistent_window >= 16 {
                        u16::MAX
                    } else {
                        (1u16 << cfg.inconsistent_window) - 1
                    };
                    l.incons_bits &= mask;
                    if l.incons_bits == 0 {
                        l.incons_since = NEVER;
                    } else if l.incons_since == NEVER {
                        l.incons_since = start;
                    }
                    if l.valid {
                        l.last_valid_ts = r.ts_ms;
                        let key = (r.volume, r.speed_kmh.to_bits(), r.occupancy_pct.to_bits());
                        if key == l.stuck_key && l.stuck_n > 0 {
                            l.stuck_n = l.stuck_n.saturating_add(1);
                        } else {
                            l.stuck_key = key;
                            l.stuck_n = 1;
                            l.stuck_since = start;
                        }
                        if r.occupancy_pct >= cfg.locked_occ_pct && r.volume <= 1 {
                            if l.locked_since == NEVER {
                                l.locked_since = start;
                            }
                        } else {
                            l.locked_since = NEVER;
                        }
                        if !(r.volume == 0 && r.occupancy_pct < 1.0) {
                            l.zero_since = NEVER;
                        }
                    }
                }
                if l.usable(now_ms) {
                    q += l.reading.flow_vph();
                    n += 1;
                }
            }
            self.station_flow[di] = if n > 0 { q / n as f32 } else { f32::NAN };
        }

        // Pass 2: rules that need the neighbours, then fault transitions.
        for dir in road.directions().iter().copied() {
            let stations = road.stations(dir);
            for (pos, &di) in stations.iter().enumerate() {
                let d = &road.detectors()[di as usize];
                let lanes = d.first_lane as usize..(d.first_lane + d.lanes as u32) as usize;
                let neighbour_flow = {
                    let up = pos
                        .checked_sub(1)
                        .map(|p| self.station_flow[stations[p] as usize]);
                    let down = stations
                        .get(pos + 1)
                        .map(|&s| self.station_flow[s as usize]);
                    match (up, down) {
                        (Some(a), Some(b)) if a.is_finite() && b.is_finite() => a.min(b),
                        (Some(a), None) | (None, Some(a)) if a.is_finite() => a,
                        _ => f32::NAN,
                    }
                };
                // Any lane of the station still moving (for locked_on)?
                let moving = lanes.clone().any(|li| {
                    let l = &self.lanes[li];
                    l.fresh && l.valid && l.reading.occupancy_pct < cfg.moving_occ_pct
                });
                for li in lanes.clone() {
                    // Other lanes' flow per lane at this station.
                    let (mut q, mut n) = (0.0f32, 0u32);
                    for lj in lanes.clone() {
                        if lj == li {
                            continue;
                        }
                        let o = &self.lanes[lj];
                        if o.usable(now_ms) {
                            q += o.reading.flow_vph();
                            n += 1;
                        }
                    }
                    let others = if n > 0 { q / n as f32 } else { f32::NAN };
                    let l = &mut self.lanes[li];
                    if l.fresh && l.valid && l.reading.volume == 0 && l.reading.occupancy_pct < 1.0
                    {
                        // What flows beside this lane: the station's other lanes, or,
                        // when they count nothing too, the neighbouring stations.
                        let beside = if others.is_finite() && others >= 1.0 {
                            others
                        } else if neighbour_flow.is_finite() {
                            neighbour_flow
                        } else {
                            0.0
                        };
                        if self.near_incident[di as usize] {
                            l.zero_since = NEVER;
                        } else if l.zero_since == NEVER {
                            l.zero_since = l.reading.ts_ms - l.reading.interval_ms;
                            l.zero_nb_flow = beside;
                        } else {
                            // Exponential smoothing over about two minutes: one quiet
                            // interval beside the lane must not restart the streak.
                            let alpha = (l.reading.interval_ms as f32 / 120_000.0).min(1.0);
                            l.zero_nb_flow += alpha * (beside - l.zero_nb_flow);
                        }
                    }
                    let interval = if l.has_reading {
                        l.reading.interval_ms
                    } else {
                        nominal
                    };
                    let silence_from = if l.last_valid_ts == NEVER {
                        self.first_tick - interval
                    } else {
                        l.last_valid_ts
                    };
                    let cond = [
                        // Missing.
                        (
                            now_ms - silence_from >= cfg.missing_intervals as i64 * interval,
                            silence_from,
                        ),
                        // Stuck.
                        (
                            l.stuck_n >= cfg.stuck_repeats
                                && now_ms - l.stuck_since >= cfg.stuck_s as i64 * 1000
                                && (l.stuck_key.0 > 0 || f32::from_bits(l.stuck_key.2) > 0.0)
                                // Pinned occupancy is the locked_on rule's, not a frozen value.
                                && f32::from_bits(l.stuck_key.2) < cfg.locked_occ_pct
                                && l.last_valid_ts == l.reading.ts_ms,
                            l.stuck_since,
                        ),
                        // Zero flow.
                        (
                            l.zero_since != NEVER
                                && now_ms - l.zero_since >= cfg.zero_s as i64 * 1000
                                && l.zero_nb_flow >= cfg.neighbour_flow_vph,
                            l.zero_since,
                        ),
                        // Locked on.
                        (
                            l.locked_since != NEVER
                                && ((moving
                                    && now_ms - l.locked_since >= cfg.locked_s as i64 * 1000)
                                    || now_ms - l.locked_since >= cfg.locked_alone_s as i64 * 1000),
                            l.locked_since,
                        ),
                        // Inconsistent.
                        (
                            l.incons_bits.count_ones() >= cfg.inconsistent_trigger as u32,
                            l.incons_since,
                        ),
                    ];
                    // Missing data also means the reading-based conditions hold no news:
                    // keep their state, but a fault on them cannot clear while silent.
                    let silent = now_ms - silence_from >= 2 * interval;
                    for rule in FaultRule::ALL {
                        let (holds, since) = cond[rule as usize];
                        let i = rule as usize;
                        let bit = rule.bit();
                        if l.active & bit == 0 {
                            if holds {
                                l.active |= bit;
                                l.cond_start[i] = since;
                                l.clear_since[i] = NEVER;
                                self.open_faults += 1;
                                let ep = self.episodes[di as usize].get_or_insert_with(|| {
                                    let seq = *next_seq;
                                    *next_seq += 1;
                                    Episode {
                                        event: Event {
                                            seq,
                                            kind: EventKind::DetectorFault,
                                            direction: Some(d.direction),
                                            from_m: d.stake_m,
                                            to_m: d.stake_m,
                                            start_ms: since,
                                            detected_ms: now_ms,
                                            end_ms: None,
                                            severity: 1,
                                            rule: rule.event_rule(),
                                            detectors: vec![di],
                                            detail: EventDetail::DetectorFault {
                                                detector: di,
                                                lanes: Vec::new(),
                                                rules: Vec::new(),
                                            },
                                        },
                                    }
                                });
                                ep.event.start_ms = ep.event.start_ms.min(since);
                                if let EventDetail::DetectorFault { lanes, rules, .. } =
                                    &mut ep.event.detail
                                {
                                    let lane_no = (li - d.first_lane as usize + 1) as u8;
                                    if !lanes.contains(&lane_no) {
                                        lanes.push(lane_no);
                                        lanes.sort_unstable();
                                    }
                                    if !rules.contains(&rule) {
                                        rules.push(rule);
                                    }
                                }
                            }
                        } else if holds || (silent && rule != FaultRule::Missing) {
                            l.clear_since[i] = NEVER;
                        } else {
                            if l.clear_since[i] == NEVER {
                                l.clear_since[i] = if rule == FaultRule::Missing {
                                    l.last_valid_ts - interval
                                } else {
                                    now_ms - interval
                                };
                            }
                            let need = if rule == FaultRule::Missing {
                                cfg.recover_missing_s
                            } else {
                                cfg.recover_s
                            } as i64
                                * 1000;
                            if now_ms - l.clear_since[i] >= need {
                                l.active &= !bit;
                                self.open_faults -= 1;
                            }
                        }
                    }
                }
                // Close the station's episode when every lane is healthy again.
                if self.episodes[di as usize].is_some()
                    && lanes.clone().all(|li| self.lanes[li].active == 0)
                {
                    let end = lanes
                        .clone()
                        .flat_map(|li| self.lanes[li].clear_since)
                        .filter(|&t| t != NEVER)
                        .max()
                        .unwrap_or(now_ms);
                    if let Some(mut ep) = self.episodes[di as usize].take() {
                        ep.event.end_ms = Some(end.max(ep.event.start_ms));
                        closed.push(ep.event);
                    }
                }
            }
        }
        for l in &mut self.lanes {
            l.fresh = false;
        }
    }

    /// Open fault events (for the end of a replay).
    pub fn open_events(&self) -> impl Iterator<Item = &Event> {
        self.episodes.iter().flatten().map(|e| &e.event)
    }
}
