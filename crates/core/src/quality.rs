//! Detector data quality (数据质量): which detector lanes can be trusted.
//!
//! Every reading is stored per lane; at each tick every rule is evaluated
//! per lane. A lane whose rule fires is *faulty* and is left out of state
//! estimation until it recovers; each faulty detector station raises one
//! `detector_fault` event for the episode. The rules start from the
//! auto-fail checks of IRIS (MnDOT) — no hits, chatter, locked on, no
//! change — but use minutes instead of IRIS's hours, because a
//! cloud-control centre must stop trusting a bad lane before it drives a
//! speed limit.
//!
//! One function per rule, each with its thresholds in its own sub-table of
//! [`QualityConfig`] (defaults and reasons: `docs/QUALITY.md`):
//!
//! | rule | function | table |
//! |---|---|---|
//! | `missing` — no valid reading for a few of the lane's intervals | `missing_rule` | [`MissingRule`] |
//! | `stuck` — the same non-zero (volume, speed, occupancy) repeated | `stuck_rule` | [`StuckRule`] |
//! | `zero_flow` — nothing counted while the lanes beside it (or the neighbouring stations) flow | `zero_flow_rule` | [`ZeroFlowRule`] |
//! | `locked_on` — occupancy pinned at 100 % with no vehicles | `locked_on_rule` | [`LockedOnRule`] |
//! | `inconsistent` — most recent readings impossible together | `inconsistent_rule` | [`InconsistentRule`] |
//! | `station_zero` — a whole station counts nothing while its neighbours carry the traffic through it | `Quality::station_zero_rule` | [`StationZeroRule`] |
//!
//! A fault clears once its condition has been false for the recovery time
//! of data (`MissingRule::recover_s`, `QualityConfig::recover_s`).

use zhilu_road::{Detector, RoadBook};

use crate::event::{Event, EventDetail, EventKind};
use crate::reading::Obs;

pub use zhilu_contract::FaultRule;

/// Number of rules.
const RULES: usize = FaultRule::ALL.len();

/// The rule's bit in a lane's set of firing rules.
fn bit(rule: FaultRule) -> u8 {
    1 << (rule as u8)
}

/// Thresholds of the quality rules: one sub-table per rule (each can be
/// switched off alone to measure what it contributes), plus what every rule
/// shares. The defaults and why they were chosen are in `docs/QUALITY.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// `missing` (数据缺失).
    pub missing: MissingRule,
    /// `stuck` (数据不变).
    pub stuck: StuckRule,
    /// `zero_flow` (零流量).
    pub zero_flow: ZeroFlowRule,
    /// `locked_on` (占有率锁定).
    pub locked_on: LockedOnRule,
    /// `inconsistent` (量速占不一致).
    pub inconsistent: InconsistentRule,
    /// `station_zero` (整站零流量).
    pub station_zero: StationZeroRule,
    /// What counts as a queue (explains `locked_on` and `zero_flow`).
    pub queue: QueueSigns,
    /// Seconds of good data that clear a fault of any rule but `missing`.
    pub recover_s: u32,
    /// Fraction of all lanes that must report in a tick for silence to count
    /// against a lane (below it, the feed itself is down).
    pub feed_gap_fraction: f32,
}

/// `missing`: a lane that stops talking.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Intervals without a valid reading that fire it (default 3).
    pub intervals: u16,
    /// Seconds of data after the silence that clear it (default 60).
    pub recover_s: u32,
}

/// `stuck`: the same non-zero (volume, speed, occupancy) repeated.
#[derive(Debug, Clone, PartialEq)]
pub struct StuckRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Minimum identical readings (default 6).
    pub repeats: u16,
    /// Minimum duration (s, default 180).
    pub min_s: u32,
}

/// `zero_flow`: nothing counted where something should have been.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeroFlowRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Duration of the zero streak (s, default 240).
    pub min_s: u32,
    /// Flow beside the lane that makes a zero count implausible (veh/h per
    /// lane, default 400).
    pub neighbour_flow_vph: f32,
    /// Time constant of the smoothing of the flow beside the lane (s,
    /// default 120): one quiet interval beside it must not restart the
    /// streak.
    pub smoothing_s: u32,
    /// Below this occupancy an interval without vehicles counts as zero (%,
    /// default 1).
    pub max_occ_pct: f32,
    /// Time constant (s, default 900) of the lane's learnt share beside
    /// its station's other lanes. The flow beside a zero-counting lane is
    /// scaled by that share (at most 1): in light traffic the passing lane
    /// carries a fifth of what the others do, and a few minutes without a
    /// vehicle there is normal (the validation days' light mornings had a
    /// healthy passing lane flagged). A lane's share is not learnt while it
    /// counts nothing for more than a minute, or while it is faulty.
    pub share_s: u32,
}

/// `locked_on`: occupancy pinned at 100 %.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedOnRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Occupancy that counts as pinned (%, default 99.5).
    pub occ_pct: f32,
    /// Most vehicles a pinned interval may count (default 1).
    pub max_volume: u16,
    /// Duration while another lane of the station moves (s, default 120).
    pub beside_moving_s: u32,
    /// Duration when no lane of the station moves (a standing queue looks
    /// the same for a while) (s, default 1200).
    pub alone_s: u32,
    /// A lane below this occupancy shows traffic still moves (%, default 50).
    pub moving_occ_pct: f32,
}

/// Traffic that explains a pinned or an empty lane (`locked_on`,
/// `zero_flow`): a standing queue pins a loop, and starves the same lane
/// below the block. A lane that was already slow or dense just before it
/// pinned, or that is pinned while the station's other lanes crawl, the
/// same lane at the station upstream is in a queue, the same lane at the
/// station downstream is starved, or an incident is open there, is traffic
/// standing over the loop, not a fault: `locked_on` then fires only after
/// `alone_s`, and only once nothing explains it. A lane counting nothing
/// while the same lane upstream queues is the block's shadow: no
/// `zero_flow`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSigns {
    /// Whether queues explain (default true; off: the rules as before).
    pub enabled: bool,
    /// A reading slower than this is in a queue (km/h, default 50).
    pub speed_kmh: f32,
    /// A reading denser than this is in a queue (%, default 40: free
    /// flow runs up to about 25 %).
    pub occ_pct: f32,
    /// The station's other lanes crawl below this mean speed (km/h,
    /// default 70: free lanes run 90–115 km/h; beside a block, and with
    /// drivers slowing to look, they ran 50–57 on the SUMO validation days).
    pub others_speed_kmh: f32,
    /// A lane whose smoothed flow is at most this share of its station's
    /// other lanes' is starved (default 0.4) …
    pub starved_share: f32,
    /// … when those lanes carry at least this (veh/h per lane, default 300).
    pub starved_min_vph: f32,
    /// Time constant of the per-lane flow smoothing (s, default 120).
    pub smoothing_s: u32,
}

/// `station_zero`: a whole station counts nothing while the traffic flows
/// through it — the stations on either side carry it, and the one below
/// carries about what the one above does (flow conservation, ramps
/// between tolerated). A block that stops the traffic above the station
/// starves the station below too; a dead station does not. This rule does
/// not give way to an open incident: a dead station looks like starvation
/// to the incident tests, and the incident it raises must not hide it.
#[derive(Debug, Clone, PartialEq)]
pub struct StationZeroRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Duration of the all-zero streak (s, default 240).
    pub min_s: u32,
    /// Flow per lane at the neighbouring stations that makes an all-zero
    /// station implausible (veh/h, smoothed over `ZeroFlowRule::smoothing_s`,
    /// default 400).
    pub neighbour_flow_vph: f32,
    /// The station below must carry at least this share of the flow per
    /// lane of the station above (default 0.5: on- and off-ramps between
    /// change it by far less).
    pub conserved_share: f32,
}

/// `inconsistent`: values impossible together, most of the time.
#[derive(Debug, Clone, PartialEq)]
pub struct InconsistentRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Readings in the sliding window (default 10, at most 16).
    pub window: u8,
    /// Inconsistent readings in the window that fire the rule (default 6).
    pub trigger: u8,
    /// Chatter: most vehicles one lane can count in 30 s (default 37, IRIS).
    pub chatter_per_30s: f32,
    /// Plausible effective vehicle length (vehicle + detection zone), m
    /// (default 2–35).
    pub vehicle_length_m: (f32, f32),
    /// Minimum volume in an interval for the length and zero-occupancy
    /// checks (default 3).
    pub min_volume_for_checks: u16,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            missing: MissingRule {
                enabled: true,
                intervals: 3,
                recover_s: 60,
            },
            stuck: StuckRule {
                enabled: true,
                repeats: 6,
                min_s: 180,
            },
            zero_flow: ZeroFlowRule {
                enabled: true,
                min_s: 240,
                neighbour_flow_vph: 400.0,
                smoothing_s: 120,
                max_occ_pct: 1.0,
                share_s: 900,
            },
            locked_on: LockedOnRule {
                enabled: true,
                occ_pct: 99.5,
                max_volume: 1,
                beside_moving_s: 120,
                alone_s: 1200,
                moving_occ_pct: 50.0,
            },
            queue: QueueSigns {
                enabled: true,
                speed_kmh: 50.0,
                occ_pct: 40.0,
                others_speed_kmh: 70.0,
                starved_share: 0.4,
                starved_min_vph: 300.0,
                smoothing_s: 120,
            },
            inconsistent: InconsistentRule {
                enabled: true,
                window: 10,
                trigger: 6,
                chatter_per_30s: 37.0,
                vehicle_length_m: (2.0, 35.0),
                min_volume_for_checks: 3,
            },
            station_zero: StationZeroRule {
                enabled: true,
                min_s: 240,
                neighbour_flow_vph: 400.0,
                conserved_share: 0.5,
            },
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
    /// `reading.flow_vph()`, computed once per reading (the rules read it
    /// for every lane beside this one).
    flow: f32,
    /// `chatter_max` for the interval (ms) it was computed for.
    chatter_max: (i64, f32),
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
    /// The previous valid reading was in a queue (slow or dense).
    prev_queue: bool,
    /// The latest valid reading is in a queue (slow, dense or pinned).
    queue_now: bool,
    /// The lane was already in a queue when its occupancy pinned.
    pinned_in_queue: bool,
    /// Smoothed flow (veh/h), NaN before the first valid reading.
    flow_smooth: f32,
    /// What the lane carries beside its station's other lanes (its flow over
    /// their mean), smoothed over `ZeroFlowRule::share_s`; NaN until known.
    share: f32,
    incons_bits: u16,
    incons_since: i64,
    /// Active faults (bit per rule).
    active: u8,
    /// Per rule: when the condition began (for an active fault).
    cond_start: [i64; RULES],
    /// Per rule: since when an active fault's condition has been false.
    clear_since: [i64; RULES],
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
        let reading = LaneReading {
            ts_ms: NEVER,
            interval_ms: 0,
            volume: 0,
            speed_kmh: f32::NAN,
            occupancy_pct: 0.0,
        };
        Lane {
            reading,
            flow: reading.flow_vph(),
            chatter_max: (-1, f32::NAN),
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
            prev_queue: false,
            queue_now: false,
            pinned_in_queue: false,
            flow_smooth: f32::NAN,
            share: f32::NAN,
            incons_bits: 0,
            incons_since: NEVER,
            active: 0,
            cond_start: [NEVER; RULES],
            clear_since: [NEVER; RULES],
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
    /// Per detector: the all-zero streak (start, smoothed flow beside it).
    station_zero: Vec<(i64, f32)>,
    /// Per detector: its first lane index.
    first_lane: Vec<usize>,
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
            station_zero: vec![(NEVER, 0.0); road.detectors().len()],
            first_lane: road
                .detectors()
                .iter()
                .map(|d| d.first_lane as usize)
                .collect(),
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
        lane.flow = lane.reading.flow_vph();
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
        FaultRule::ALL.into_iter().filter(move |r| a & bit(*r) != 0)
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
        if !self.feed_up() {
            // The feed itself is down (or this tick carried no detector data):
            // no news about any lane, so no fault opens or clears. The few
            // readings that did arrive are used at the next tick.
            return;
        }
        // Pass 1: each fresh reading extends or breaks the lane's streaks,
        // and each station's flow per usable lane is known.
        for (di, d) in road.detectors().iter().enumerate() {
            let (mut q, mut n) = (0.0f32, 0u32);
            for li in lane_range(d) {
                let l = &mut self.lanes[li];
                if l.fresh {
                    track_reading(&self.cfg, l);
                }
                if l.usable(now_ms) {
                    q += l.flow;
                    n += 1;
                }
            }
            self.station_flow[di] = if n > 0 { q / n as f32 } else { f32::NAN };
        }
        // Pass 2: the rules, station by station along each carriageway (some
        // look at the neighbours), then the faults' transitions.
        for dir in road.directions().iter().copied() {
            let stations = road.stations(dir);
            for pos in 0..stations.len() {
                self.close_station(road, stations, pos, now_ms, next_seq, closed);
            }
        }
        for l in &mut self.lanes {
            l.fresh = false;
        }
    }

    /// Whether enough lanes reported this tick for silence to mean anything.
    fn feed_up(&self) -> bool {
        let fresh = self.lanes.iter().filter(|l| l.fresh).count();
        self.lanes.len() < 4 || fresh as f32 >= self.cfg.feed_gap_fraction * self.lanes.len() as f32
    }

    /// The rules and fault transitions of one station (`stations[pos]`).
    fn close_station(
        &mut self,
        road: &RoadBook,
        stations: &[u32],
        pos: usize,
        now_ms: i64,
        next_seq: &mut u64,
        closed: &mut Vec<Event>,
    ) {
        let di = stations[pos] as usize;
        let d = &road.detectors()[di];
        let ctx = StationCtx {
            neighbour_flow: self.neighbour_flow(stations, pos),
            moving: self.any_lane_moving(d),
            near_incident: self.near_incident[di],
        };
        let nominal = if self.nominal_interval_ms > 0 {
            self.nominal_interval_ms
        } else {
            30_000
        };
        let station_zero = self.station_zero_rule(stations, pos, now_ms);
        for li in lane_range(d) {
            // Lanes earlier in the station may have just turned faulty: the
            // flow beside this one is what the others still carry.
            let others = self.others_flow(d, li, now_ms);
            // Only a lane counting zero or pinned asks what is around it
            // (`track_zero_streak`, `locked_on_rule`; neither reads it otherwise).
            let cfg = &self.cfg;
            let l = &self.lanes[li];
            let asks = (l.fresh && l.valid && is_zero(&cfg.zero_flow, &l.reading))
                || (cfg.locked_on.enabled && l.locked_since != NEVER);
            let around = if cfg.queue.enabled && asks {
                self.around(road, stations, pos, li, now_ms)
            } else {
                Around::default()
            };
            let cfg = &self.cfg;
            let l = &mut self.lanes[li];
            track_zero_streak(&cfg.zero_flow, l, others, &ctx, &around);
            learn_share(&cfg.zero_flow, l, others, now_ms);
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
            let verdicts = [
                missing_rule(&cfg.missing, now_ms, silence_from, interval),
                stuck_rule(&cfg.stuck, &cfg.locked_on, l, now_ms),
                zero_flow_rule(&cfg.zero_flow, l, now_ms),
                locked_on_rule(&cfg.locked_on, &cfg.queue, l, &ctx, &around, now_ms),
                inconsistent_rule(&cfg.inconsistent, l),
                station_zero,
            ];
            // Missing data also means the reading-based conditions hold no news:
            // keep their state, but a fault on them cannot clear while silent.
            let silent = now_ms - silence_from >= 2 * interval;
            for rule in FaultRule::ALL {
                let v = verdicts[rule as usize];
                match transition(cfg, l, rule, v, silent, interval, now_ms) {
                    Transition::Opened => {
                        self.open_faults += 1;
                        let lane_no = (li - d.first_lane as usize + 1) as u8;
                        open_episode(
                            &mut self.episodes[di],
                            d,
                            di as u32,
                            lane_no,
                            rule,
                            v,
                            now_ms,
                            next_seq,
                        );
                    }
                    Transition::Cleared => self.open_faults -= 1,
                    Transition::None => {}
                }
            }
        }
        // Close the station's episode when every lane is healthy again.
        if self.episodes[di].is_some() && lane_range(d).all(|li| self.lanes[li].active == 0) {
            let end = lane_range(d)
                .flat_map(|li| self.lanes[li].clear_since)
                .filter(|&t| t != NEVER)
                .max()
                .unwrap_or(now_ms);
            if let Some(mut ep) = self.episodes[di].take() {
                ep.event.end_ms = Some(end.max(ep.event.start_ms));
                closed.push(ep.event);
            }
        }
    }

    /// `station_zero`: tracks the station's all-zero streak and judges it
    /// against the flow through the neighbouring stations.
    fn station_zero_rule(&mut self, stations: &[u32], pos: usize, now_ms: i64) -> Verdict {
        let c = &self.cfg.station_zero;
        let di = stations[pos] as usize;
        let d_lanes = {
            let mut any_fresh = false;
            let mut all_zero = true;
            let mut interval = 0;
            for l in self.lanes_of(di) {
                if l.fresh && l.valid {
                    any_fresh = true;
                    interval = interval.max(l.reading.interval_ms);
                    all_zero &= is_zero(&self.cfg.zero_flow, &l.reading);
                } else if l.fresh {
                    all_zero = false;
                }
            }
            (any_fresh, all_zero, interval)
        };
        let (fresh, all_zero, interval) = d_lanes;
        if !fresh {
            // No news (a silent station is `missing`'s): keep the streak.
        } else if !all_zero {
            self.station_zero[di].0 = NEVER;
        } else {
            let up = pos
                .checked_sub(1)
                .map(|p| self.station_flow[stations[p] as usize]);
            let down = stations
                .get(pos + 1)
                .map(|&s| self.station_flow[s as usize]);
            let beside = match (up, down) {
                (Some(a), Some(b)) if a.is_finite() && b.is_finite() => {
                    if b >= c.conserved_share * a {
                        a.min(b)
                    } else {
                        0.0
                    }
                }
                (Some(a), None) | (None, Some(a)) if a.is_finite() => a,
                _ => 0.0,
            };
            let z = &mut self.station_zero[di];
            if z.0 == NEVER {
                *z = (now_ms - interval, beside);
            } else {
                let tau = self.cfg.zero_flow.smoothing_s as f32 * 1000.0;
                z.1 += (interval as f32 / tau).min(1.0) * (beside - z.1);
            }
        }
        let (since, nb) = self.station_zero[di];
        Verdict {
            holds: c.enabled
                && since != NEVER
                && now_ms - since >= c.min_s as i64 * 1000
                && nb >= c.neighbour_flow_vph,
            since,
        }
    }

    fn lanes_of(&self, di: usize) -> &[Lane] {
        // Detectors' lanes are contiguous in `lanes`; the next detector's
        // first lane (or the end) bounds this one's.
        let lo = self.first_lane[di];
        let hi = self
            .first_lane
            .get(di + 1)
            .copied()
            .unwrap_or(self.lanes.len());
        &self.lanes[lo..hi]
    }

    /// The flow per usable lane of the neighbouring stations (the smaller of
    /// the two, or the one there is), NaN if neither has any.
    fn neighbour_flow(&self, stations: &[u32], pos: usize) -> f32 {
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
    }

    /// Whether any lane of the station reported this tick below the
    /// occupancy that shows traffic still moves.
    fn any_lane_moving(&self, d: &Detector) -> bool {
        let moving_occ = self.cfg.locked_on.moving_occ_pct;
        lane_range(d).any(|li| {
            let l = &self.lanes[li];
            l.fresh && l.valid && l.reading.occupancy_pct < moving_occ
        })
    }

    /// Traffic around lane `li` of `stations[pos]`: its station's other
    /// lanes, and the same lane at the stations up- and downstream.
    fn around(
        &self,
        road: &RoadBook,
        stations: &[u32],
        pos: usize,
        li: usize,
        now_ms: i64,
    ) -> Around {
        let c = &self.cfg.queue;
        let dets = road.detectors();
        let d = &dets[stations[pos] as usize];
        let lane_no = li - d.first_lane as usize;
        let recent = |l: &Lane| {
            l.valid && l.has_reading && now_ms - l.reading.ts_ms < 2 * l.reading.interval_ms
        };
        let (mut v, mut n) = (0.0f32, 0u32);
        for lj in lane_range(d) {
            let o = &self.lanes[lj];
            if lj != li && recent(o) && o.reading.speed_kmh.is_finite() {
                v += o.reading.speed_kmh;
                n += 1;
            }
        }
        let others_slow = n > 0 && v / (n as f32) < c.others_speed_kmh;
        let same_lane = |p: usize| {
            let nd = &dets[stations[p] as usize];
            (lane_no < nd.lanes as usize).then(|| (nd, nd.first_lane as usize + lane_no))
        };
        let upstream_queue = pos
            .checked_sub(1)
            .and_then(same_lane)
            .is_some_and(|(_, lu)| recent(&self.lanes[lu]) && self.lanes[lu].queue_now);
        let downstream_starved = stations
            .get(pos + 1)
            .and_then(|_| same_lane(pos + 1))
            .is_some_and(|(nd, ld)| {
                let l = &self.lanes[ld];
                let (mut q, mut k) = (0.0f32, 0u32);
                for lj in lane_range(nd) {
                    let o = &self.lanes[lj];
                    if lj != ld && recent(o) && o.flow_smooth.is_finite() {
                        q += o.flow_smooth;
                        k += 1;
                    }
                }
                let others = if k > 0 { q / k as f32 } else { 0.0 };
                recent(l)
                    && l.flow_smooth.is_finite()
                    && others >= c.starved_min_vph
                    && l.flow_smooth <= c.starved_share * others
            });
        Around {
            others_slow,
            upstream_queue,
            downstream_starved,
        }
    }

    /// Flow per usable lane of the station's other lanes, NaN if none.
    fn others_flow(&self, d: &Detector, li: usize, now_ms: i64) -> f32 {
        let (mut q, mut n) = (0.0f32, 0u32);
        for lj in lane_range(d) {
            if lj == li {
                continue;
            }
            let o = &self.lanes[lj];
            if o.usable(now_ms) {
                q += o.flow;
                n += 1;
            }
        }
        if n > 0 { q / n as f32 } else { f32::NAN }
    }

    /// Open fault events (for the end of a replay).
    pub fn open_events(&self) -> impl Iterator<Item = &Event> {
        self.episodes.iter().flatten().map(|e| &e.event)
    }
}

/// The lane indices of a detector station.
fn lane_range(d: &Detector) -> std::ops::Range<usize> {
    d.first_lane as usize..(d.first_lane + d.lanes as u32) as usize
}

/// What the rules of one lane may know about its station and surroundings.
#[derive(Debug, Clone, Copy)]
struct StationCtx {
    /// Flow per usable lane at the neighbouring stations (veh/h), NaN if unknown.
    neighbour_flow: f32,
    /// Some lane of the station reported an occupancy that shows traffic moves.
    moving: bool,
    /// The station is next to an open incident.
    near_incident: bool,
}

/// Traffic around one lane that explains it standing or empty.
#[derive(Debug, Clone, Copy, Default)]
struct Around {
    /// The station's other lanes crawl.
    others_slow: bool,
    /// The same lane at the station upstream is in a queue.
    upstream_queue: bool,
    /// The same lane at the station downstream is starved.
    downstream_starved: bool,
}

/// What one rule says about one lane at one tick.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    /// The bad condition holds (long enough to be a fault).
    holds: bool,
    /// When the condition began.
    since: i64,
}

const NO: Verdict = Verdict {
    holds: false,
    since: NEVER,
};

/// The most vehicles a loop can count in an interval of `interval_ms`
/// (`InconsistentRule::chatter_per_30s`, rounded to the nearest count).
fn chatter_max(c: &InconsistentRule, interval_ms: i64) -> f32 {
    let interval_s = interval_ms as f32 / 1000.0;
    c.chatter_per_30s * interval_s / 30.0 + 0.5
}

/// Whether a reading is impossible in itself (`inconsistent`'s checks; the
/// lane's `chatter_max` is that of its reading's interval).
fn is_inconsistent(c: &InconsistentRule, l: &Lane) -> bool {
    if !l.valid {
        return true;
    }
    let r = &l.reading;
    if r.volume as f32 > l.chatter_max.1 {
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
            let len = r.occupancy_pct / 100.0 * r.speed_kmh * 1000.0 / l.flow;
            if len < c.vehicle_length_m.0 || len > c.vehicle_length_m.1 {
                return true;
            }
        }
    }
    false
}

/// A fresh reading extends or breaks the lane's streaks: the inconsistency
/// window, the repeated triple, pinned occupancy, and (breaking only; the
/// streak starts in [`track_zero_streak`]) the zero count.
fn track_reading(cfg: &QualityConfig, l: &mut Lane) {
    if l.chatter_max.0 != l.reading.interval_ms {
        let ms = l.reading.interval_ms;
        l.chatter_max = (ms, chatter_max(&cfg.inconsistent, ms));
    }
    let incons = is_inconsistent(&cfg.inconsistent, l);
    let r = l.reading;
    let start = r.ts_ms - r.interval_ms;
    l.incons_bits = (l.incons_bits << 1) | incons as u16;
    let mask = if cfg.inconsistent.window >= 16 {
        u16::MAX
    } else {
        (1u16 << cfg.inconsistent.window) - 1
    };
    l.incons_bits &= mask;
    if l.incons_bits == 0 {
        l.incons_since = NEVER;
    } else if l.incons_since == NEVER {
        l.incons_since = start;
    }
    if !l.valid {
        return;
    }
    l.last_valid_ts = r.ts_ms;
    let key = (r.volume, r.speed_kmh.to_bits(), r.occupancy_pct.to_bits());
    if key == l.stuck_key && l.stuck_n > 0 {
        l.stuck_n = l.stuck_n.saturating_add(1);
    } else {
        l.stuck_key = key;
        l.stuck_n = 1;
        l.stuck_since = start;
    }
    if r.occupancy_pct >= cfg.locked_on.occ_pct && r.volume <= cfg.locked_on.max_volume {
        if l.locked_since == NEVER {
            l.locked_since = start;
            l.pinned_in_queue = l.prev_queue;
        }
    } else {
        l.locked_since = NEVER;
    }
    l.queue_now = in_queue(&cfg.queue, &r);
    // Something stood over the loop for part of the interval: occupancy
    // too long for the vehicles counted at their speed (a vehicle braking
    // to a stop on the loop; the SUMO validation days had one at 38 %
    // occupancy and 96 km/h the interval before it pinned the loop).
    let stood = r.volume > 0
        && r.speed_kmh.is_finite()
        && r.occupancy_pct / 100.0 * r.speed_kmh * 1000.0 / l.flow
            > cfg.inconsistent.vehicle_length_m.1;
    l.prev_queue = l.queue_now || stood;
    let alpha = (r.interval_ms as f32 / (cfg.queue.smoothing_s as f32 * 1000.0)).min(1.0);
    l.flow_smooth = if l.flow_smooth.is_finite() {
        l.flow_smooth + alpha * (l.flow - l.flow_smooth)
    } else {
        l.flow
    };
    if !is_zero(&cfg.zero_flow, &r) {
        l.zero_since = NEVER;
    }
}

/// A reading of traffic in a queue: slow, or dense (pinned included).
fn in_queue(c: &QueueSigns, r: &LaneReading) -> bool {
    (r.speed_kmh.is_finite() && r.speed_kmh < c.speed_kmh) || r.occupancy_pct >= c.occ_pct
}

/// Nothing counted and (almost) nothing over the loop.
fn is_zero(c: &ZeroFlowRule, r: &LaneReading) -> bool {
    r.volume == 0 && r.occupancy_pct < c.max_occ_pct
}

/// Starts or extends a zero streak and smooths the flow beside it: the
/// station's other lanes, or, when they count nothing too, the neighbouring
/// stations. Next to an open incident a zero count is the incident's
/// evidence (a blocked lane counts nothing downstream of it): no streak.
fn track_zero_streak(
    c: &ZeroFlowRule,
    l: &mut Lane,
    others: f32,
    ctx: &StationCtx,
    around: &Around,
) {
    if !(l.fresh && l.valid && is_zero(c, &l.reading)) {
        return;
    }
    let beside = if others.is_finite() && others >= 1.0 {
        others
            * if l.share.is_finite() {
                l.share.min(1.0)
            } else {
                1.0
            }
    } else if ctx.neighbour_flow.is_finite() {
        ctx.neighbour_flow
    } else {
        0.0
    };
    if ctx.near_incident || around.upstream_queue {
        l.zero_since = NEVER;
    } else if l.zero_since == NEVER {
        l.zero_since = l.reading.ts_ms - l.reading.interval_ms;
        l.zero_nb_flow = beside;
    } else {
        let alpha = (l.reading.interval_ms as f32 / (c.smoothing_s as f32 * 1000.0)).min(1.0);
        l.zero_nb_flow += alpha * (beside - l.zero_nb_flow);
    }
}

/// Learns what the lane carries beside its station's other lanes (see
/// `ZeroFlowRule::share_s`).
fn learn_share(c: &ZeroFlowRule, l: &mut Lane, others: f32, now_ms: i64) {
    let zero_long = l.zero_since != NEVER && now_ms - l.zero_since > 60_000;
    if !(l.fresh && l.valid && l.active == 0 && others.is_finite() && others >= 1.0) || zero_long {
        return;
    }
    let ratio = (l.flow / others).min(3.0);
    l.share = if l.share.is_finite() {
        let alpha = (l.reading.interval_ms as f32 / (c.share_s as f32 * 1000.0)).min(1.0);
        l.share + alpha * (ratio - l.share)
    } else {
        ratio
    };
}

/// `missing`: no valid reading for `intervals` of the lane's intervals.
fn missing_rule(c: &MissingRule, now_ms: i64, silence_from: i64, interval_ms: i64) -> Verdict {
    Verdict {
        holds: c.enabled && now_ms - silence_from >= c.intervals as i64 * interval_ms,
        since: silence_from,
    }
}

/// `stuck`: the same non-zero triple, below pinned occupancy (that is
/// `locked_on`'s), repeated long enough, and still being reported.
fn stuck_rule(c: &StuckRule, locked: &LockedOnRule, l: &Lane, now_ms: i64) -> Verdict {
    let occ = f32::from_bits(l.stuck_key.2);
    Verdict {
        holds: c.enabled
            && l.stuck_n >= c.repeats
            && now_ms - l.stuck_since >= c.min_s as i64 * 1000
            && (l.stuck_key.0 > 0 || occ > 0.0)
            && occ < locked.occ_pct
            && l.last_valid_ts == l.reading.ts_ms,
        since: l.stuck_since,
    }
}

/// `zero_flow`: a zero streak long enough while what flows beside it is
/// enough that a working lane would have counted vehicles.
fn zero_flow_rule(c: &ZeroFlowRule, l: &Lane, now_ms: i64) -> Verdict {
    Verdict {
        holds: c.enabled
            && l.zero_since != NEVER
            && now_ms - l.zero_since >= c.min_s as i64 * 1000
            && l.zero_nb_flow >= c.neighbour_flow_vph,
        since: l.zero_since,
    }
}

/// `locked_on`: pinned occupancy for `beside_moving_s` while another lane
/// of the station moves, or for `alone_s` regardless — unless a queue
/// explains it ([`QueueSigns`]): traffic around it now holds the rule off;
/// a lane that was already in a queue when it pinned waits `alone_s`.
fn locked_on_rule(
    c: &LockedOnRule,
    q: &QueueSigns,
    l: &Lane,
    ctx: &StationCtx,
    around: &Around,
    now_ms: i64,
) -> Verdict {
    if !c.enabled || l.locked_since == NEVER {
        return NO;
    }
    let explained = q.enabled
        && (ctx.near_incident
            || around.others_slow
            || around.upstream_queue
            || around.downstream_starved);
    let queued_onset = q.enabled && l.pinned_in_queue;
    let pinned_ms = now_ms - l.locked_since;
    Verdict {
        holds: !explained
            && ((ctx.moving && !queued_onset && pinned_ms >= c.beside_moving_s as i64 * 1000)
                || pinned_ms >= c.alone_s as i64 * 1000),
        since: l.locked_since,
    }
}

/// `inconsistent`: at least `trigger` impossible readings in the window.
fn inconsistent_rule(c: &InconsistentRule, l: &Lane) -> Verdict {
    Verdict {
        holds: c.enabled && l.incons_bits.count_ones() >= c.trigger as u32,
        since: l.incons_since,
    }
}

/// What a rule's verdict did to the lane's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transition {
    None,
    Opened,
    Cleared,
}

/// Opens a fault when its condition holds; clears it once the condition has
/// been false for the rule's recovery time of data (a silent lane's
/// reading-based faults wait for data).
fn transition(
    cfg: &QualityConfig,
    l: &mut Lane,
    rule: FaultRule,
    v: Verdict,
    silent: bool,
    interval_ms: i64,
    now_ms: i64,
) -> Transition {
    let i = rule as usize;
    let bit = bit(rule);
    if l.active & bit == 0 {
        if !v.holds {
            return Transition::None;
        }
        l.active |= bit;
        l.cond_start[i] = v.since;
        l.clear_since[i] = NEVER;
        return Transition::Opened;
    }
    if v.holds || (silent && rule != FaultRule::Missing) {
        l.clear_since[i] = NEVER;
        return Transition::None;
    }
    if l.clear_since[i] == NEVER {
        l.clear_since[i] = if rule == FaultRule::Missing {
            l.last_valid_ts - interval_ms
        } else {
            now_ms - interval_ms
        };
    }
    let need = if rule == FaultRule::Missing {
        cfg.missing.recover_s
    } else {
        cfg.recover_s
    } as i64
        * 1000;
    if now_ms - l.clear_since[i] >= need {
        l.active &= !bit;
        Transition::Cleared
    } else {
        Transition::None
    }
}

/// Adds a newly faulty lane to its station's episode, opening the
/// `detector_fault` event if the station had none.
#[allow(clippy::too_many_arguments)]
fn open_episode(
    slot: &mut Option<Episode>,
    d: &Detector,
    di: u32,
    lane_no: u8,
    rule: FaultRule,
    v: Verdict,
    now_ms: i64,
    next_seq: &mut u64,
) {
    let ep = slot.get_or_insert_with(|| {
        let seq = *next_seq;
        *next_seq += 1;
        Episode {
            event: Event {
                seq,
                kind: EventKind::DetectorFault,
                direction: Some(d.direction),
                from_m: d.stake_m,
                to_m: d.stake_m,
                start_ms: v.since,
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
    ep.event.start_ms = ep.event.start_ms.min(v.since);
    if let EventDetail::DetectorFault { lanes, rules, .. } = &mut ep.event.detail {
        if !lanes.contains(&lane_no) {
            lanes.push(lane_no);
            lanes.sort_unstable();
        }
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
}
