//! Automatic incident detection (交通事件检测): a lane blocked by a stopped
//! vehicle or a crash, located between two detector stations.
//!
//! For each pair of consecutive stations (upstream `u`, downstream `d`) on a
//! carriageway, every tick, on occupancy and speed averaged over the last
//! minute and flow over the last 90 s:
//!
//! 1. **A stationary queue** — the California family's spatial occupancy
//!    difference (`occ_u − occ_d ≥ 8 %` and `(occ_u − occ_d)/occ_u ≥ 0.4`), a
//!    slow upstream (`v_u < 65 km/h`) and a free downstream (`v_d ≥ 70`) that
//!    has not itself been slow in the last 5 min (else it is a stop-and-go
//!    wave that came from downstream — California #8's compression test).
//!    Where the road book gives the stretch a reason to jam every day
//!    ([`bottleneck_cause`]: a merge, a tunnel entrance, a lane drop), the
//!    downstream flow (over the last 90 s) must also be at most 75 % of its
//!    own recent normal: below a merge that jams every peak the downstream
//!    station discharges at capacity; below a blocked lane it starves.
//! 2. **Vehicles vanishing** (off by default: not yet good enough) — more
//!    vehicles enter the pair than leave it: `q_u − q_d`, smoothed over about
//!    two minutes, exceeds its own recent normal by at least 20 % of `q_u`
//!    and 500 veh/h, with the same wave and cause gates.
//!
//! 3. **A lane emptied** — at the downstream station one lane's share of the
//!    flow (over ~2 min) falls to ≤ 30 % of its normal share for 90 s while
//!    the station's total stays ≥ 85 % of its neighbours' (the vehicles moved
//!    to other lanes: a blocked lane with no queue; a dead loop would lose
//!    them instead).
//!
//! A pair that shows any of these for two ticks and 60 s in a row raises an
//! incident between its stations; the estimated start is the first tick of
//! the run. Normals (exponential averages over ~5 min) are frozen while a
//! pair is anomalous, so an incident never becomes the normal. A camera
//! report of a stopped vehicle, debris, fire, smoke or a pedestrian with
//! confidence ≥ 0.7 on the carriageway raises or confirms an incident at
//! once, at the camera's stake. An incident ends when its pair has looked
//! normal for `clear_ticks` ticks (or the camera has been silent for 10 min
//! where only a camera raised it); for 10 min after, neither its pair nor
//! the next ones raise a new alarm (the queue dissolves front first).

use zhilu_road::{Direction, RoadBook};

use crate::event::{Event, EventDetail, EventKind};
use crate::reading::{CameraKind, CameraObs};
use crate::state::CorridorState;

/// Thresholds of incident detection.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentConfig {
    /// Spatial occupancy difference (percentage points).
    pub occ_diff_pct: f32,
    /// Relative spatial occupancy difference.
    pub occ_rel_diff: f32,
    /// Upstream slower than this (km/h).
    pub up_slow_kmh: f32,
    /// Downstream at least this fast (km/h).
    pub down_free_kmh: f32,
    /// Downstream flow at most this share of its normal.
    pub starve_ratio: f32,
    /// Flow imbalance beyond normal: share of upstream flow.
    pub imbalance_share: f32,
    /// Flow imbalance beyond normal: at least this (veh/h).
    pub imbalance_min_vph: f32,
    /// Upstream flow below which the imbalance test is not used (veh/h, all lanes).
    pub imbalance_min_flow_vph: f32,
    /// Whether the flow-imbalance test runs (off by default: with 20–30 s
    /// counts it needs minutes of data to beat the noise, and it has not yet
    /// been tuned on the scenario suite).
    pub use_imbalance: bool,
    /// Ticks in a row before an alarm (at least `persist_s` of data).
    pub persist_ticks: u32,
    /// Seconds of consecutive anomaly before an alarm.
    pub persist_s: u32,
    /// Normal ticks in a row before an incident ends.
    pub clear_ticks: u32,
    /// Time constant of the normals (s).
    pub normal_s: f32,
    /// Ticks of normals needed before alarms are allowed.
    pub warmup_ticks: u32,
    /// Minimum camera confidence.
    pub camera_confidence: f32,
    /// Lane path: a lane's share of its station's flow at most this fraction of its normal share.
    pub lane_share_ratio: f32,
    /// Lane path: the station's total flow at least this share of its
    /// neighbours' (the vehicles moved to other lanes; a dead loop would lose them).
    pub lane_total_ratio: f32,
    /// Lane path: least station flow for the test (veh/h).
    pub lane_min_flow_vph: f32,
    /// A downstream station congested this recently (s) means the slow
    /// traffic upstream is a wave that came from downstream, not an incident.
    pub wave_memory_s: u32,
    /// No new alarm on a pair for this long (s) after an incident on it or
    /// next to it cleared.
    pub holdoff_s: u32,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            occ_diff_pct: 8.0,
            occ_rel_diff: 0.4,
            up_slow_kmh: 65.0,
            down_free_kmh: 70.0,
            starve_ratio: 0.75,
            imbalance_share: 0.2,
            imbalance_min_vph: 500.0,
            imbalance_min_flow_vph: 900.0,
            use_imbalance: false,
            persist_ticks: 2,
            persist_s: 60,
            clear_ticks: 6,
            normal_s: 300.0,
            warmup_ticks: 20,
            camera_confidence: 0.7,
            lane_share_ratio: 0.3,
            lane_total_ratio: 0.85,
            lane_min_flow_vph: 1500.0,
            wave_memory_s: 300,
            holdoff_s: 600,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct StationMem {
    /// This tick's flow (veh/h), NaN when the station had no valid sample.
    last_flow: f32,
    /// Last tick the station looked congested (speed < 60 km/h or occupancy > 25 %).
    last_congested: i64,
    /// Recent valid samples (tick, occ, speed, flow), newest last, at most 8.
    recent: Vec<(i64, f32, f32, f32)>,
    /// Flow smoothed over about 90 s (short counts are noisy).
    short_flow: f32,
    /// Consecutive ticks with a lane emptied.
    lane_run: u32,
    normal_flow: f32,
    n_normal: u32,
}

#[derive(Debug, Clone, Default)]
struct PairMem {
    /// Imbalance smoothed over about two minutes, minus its normal.
    residual: f32,
    normal_imbalance: f32,
    n_normal: u32,
    run: u32,
    run_start: i64,
    calm: u32,
    open: Option<Event>,
    /// Whether the road gives this stretch a reason to jam every day: an
    /// on-ramp merge, a tunnel portal or fewer lanes downstream.
    has_cause: Option<bool>,
}

/// The incident detector of a corridor.
#[derive(Debug, Clone)]
pub struct IncidentWatch {
    cfg: IncidentConfig,
    /// Per direction (as in the state): stations, pairs.
    stations: Vec<Vec<StationMem>>,
    pairs: Vec<Vec<PairMem>>,
    /// Incidents raised by a camera alone: (event, last sighting).
    camera_only: Vec<(Event, i64)>,
    pending_cameras: Vec<CameraObs>,
    last_tick_ms: i64,
    /// Per corridor lane: (flow over ~2 min, normal share of its station's flow, samples).
    lanes: Vec<(f32, f32, u32)>,
    /// Per direction, per pair: when its last incident cleared.
    closed_at: Vec<Vec<i64>>,
}

impl IncidentWatch {
    /// A detector with the given thresholds.
    pub fn new(cfg: IncidentConfig) -> IncidentWatch {
        IncidentWatch {
            cfg,
            stations: Vec::new(),
            pairs: Vec::new(),
            camera_only: Vec::new(),
            pending_cameras: Vec::new(),
            last_tick_ms: i64::MIN,
            lanes: Vec::new(),
            closed_at: Vec::new(),
        }
    }

    /// A camera report (used at the next tick).
    pub fn camera(&mut self, c: &CameraObs) {
        let relevant = matches!(
            c.kind,
            CameraKind::StoppedVehicle
                | CameraKind::Debris
                | CameraKind::Fire
                | CameraKind::Smoke
                | CameraKind::Pedestrian
        );
        if relevant && c.confidence >= self.cfg.camera_confidence {
            self.pending_cameras.push(*c);
        }
    }

    /// Incidents open now.
    pub fn open(&self) -> impl Iterator<Item = &Event> {
        self.pairs
            .iter()
            .flatten()
            .filter_map(|p| p.open.as_ref())
            .chain(self.camera_only.iter().map(|(e, _)| e))
    }

    /// Runs detection on this tick's state. `lane_flow` gives each corridor
    /// lane's flow this tick (veh/h; NaN where the lane is not usable).
    pub fn close_tick(
        &mut self,
        road: &RoadBook,
        state: &CorridorState,
        lane_flow: &[f32],
        next_seq: &mut u64,
        closed: &mut Vec<Event>,
    ) {
        let now = state.ts_ms;
        let cfg = self.cfg.clone();
        if self.stations.len() != state.directions.len() {
            self.stations = state
                .directions
                .iter()
                .map(|d| vec![StationMem::default(); d.samples.len()])
                .collect();
            self.pairs = state
                .directions
                .iter()
                .map(|d| vec![PairMem::default(); d.samples.len().saturating_sub(1)])
                .collect();
            self.closed_at = state
                .directions
                .iter()
                .map(|d| vec![i64::MIN / 4; d.samples.len().saturating_sub(1)])
                .collect();
        }
        let step = if self.last_tick_ms == i64::MIN {
            30_000
        } else {
            (now - self.last_tick_ms).clamp(1_000, 300_000)
        };
        self.last_tick_ms = now;
        let alpha = (step as f32 / 1000.0 / cfg.normal_s).min(1.0);
        for (di, d) in state.directions.iter().enumerate() {
            let mems = &mut self.stations[di];
            for (k, s) in d.samples.iter().enumerate() {
                let m = &mut mems[k];
                m.last_flow = if s.valid { s.flow_vph } else { f32::NAN };
                if s.valid {
                    if s.speed_kmh < 60.0 || s.occupancy_pct > 25.0 {
                        m.last_congested = now;
                    }
                    m.recent
                        .push((now, s.occupancy_pct, s.speed_kmh, s.flow_vph));
                    if m.recent.len() > 8 {
                        m.recent.remove(0);
                    }
                    let g = (step as f32 / 120_000.0).min(1.0);
                    m.short_flow = if m.short_flow == 0.0 {
                        s.flow_vph
                    } else {
                        m.short_flow + g * (s.flow_vph - m.short_flow)
                    };
                }
            }
            // Occupancy and speed over the last ~60 s, flow over ~90 s: counts
            // of 20–30 s intervals are noisy (±√n), so flows need the longer window.
            let smooth = |m: &StationMem| -> Option<(f32, f32, f32)> {
                if m.last_flow.is_nan() {
                    return None;
                }
                let mean = |win: i64, f: fn(&(i64, f32, f32, f32)) -> f32| {
                    let (mut sum, mut n) = (0.0f32, 0u32);
                    for r in m.recent.iter().filter(|r| now - r.0 < win) {
                        sum += f(r);
                        n += 1;
                    }
                    sum / n.max(1) as f32
                };
                let occ_win = step.max(60_000 - step + 1);
                Some((
                    mean(occ_win, |r| r.1),
                    mean(occ_win, |r| r.2),
                    mean(90_000.max(step * 2), |r| r.3),
                ))
            };
            let mut anomalous_station = vec![false; mems.len()];
            // 3. A lane emptied while its station's traffic goes on in the other lanes.
            if self.lanes.len() != lane_flow.len() {
                self.lanes = vec![(f32::NAN, 0.0, 0); lane_flow.len()];
            }
            let g_short = (step as f32 / 120_000.0).min(1.0);
            let lane_anom: Vec<bool> = d
                .station_ids
                .iter()
                .enumerate()
                .map(|(k, &det)| {
                    let dd = &road.detectors()[det as usize];
                    let range = dd.first_lane as usize..(dd.first_lane + dd.lanes as u32) as usize;
                    if dd.lanes < 2
                        || range
                            .clone()
                            .any(|l| !lane_flow.get(l).is_some_and(|f| f.is_finite()))
                    {
                        return false;
                    }
                    for l in range.clone() {
                        let m = &mut self.lanes[l];
                        m.0 = if m.0.is_nan() {
                            lane_flow[l]
                        } else {
                            m.0 + g_short * (lane_flow[l] - m.0)
                        };
                    }
                    let total: f32 = range.clone().map(|l| self.lanes[l].0).sum();
                    // Compare with the neighbours now (not with a lagging normal):
                    // a dead loop loses its lane's vehicles, a blocked lane moves them.
                    let nb: Vec<f32> = [k.checked_sub(1), Some(k + 1)]
                        .into_iter()
                        .flatten()
                        .filter_map(|j| mems.get(j))
                        .map(|m| m.short_flow)
                        .filter(|f| *f > 0.0)
                        .collect();
                    let normal_total = if nb.is_empty() {
                        mems[k].normal_flow
                    } else {
                        nb.iter().sum::<f32>() / nb.len() as f32
                    };
                    let warm = range.clone().all(|l| self.lanes[l].2 >= cfg.warmup_ticks);
                    let anomalous = warm
                        && total >= cfg.lane_min_flow_vph
                        && total >= cfg.lane_total_ratio * normal_total
                        && range.clone().any(|l| {
                            let base = self.lanes[l].1;
                            base >= 0.15 && self.lanes[l].0 / total <= cfg.lane_share_ratio * base
                        });
                    if !anomalous && total >= cfg.lane_min_flow_vph {
                        for l in range {
                            let share = self.lanes[l].0 / total;
                            let m = &mut self.lanes[l];
                            m.1 = if m.2 == 0 {
                                share
                            } else {
                                m.1 + alpha * (share - m.1)
                            };
                            m.2 += 1;
                        }
                    }
                    // Lane shares of small counts are noisy: hold for 90 s.
                    let m = &mut mems[k];
                    m.lane_run = if anomalous { m.lane_run + 1 } else { 0 };
                    (m.lane_run as i64) * step >= 90_000
                })
                .collect();
            for p in 0..self.pairs[di].len() {
                let (mu, md) = (&mems[p], &mems[p + 1]);
                let (Some(u), Some(dn)) = (smooth(mu), smooth(md)) else {
                    continue;
                };
                let warm = md.n_normal >= cfg.warmup_ticks;
                let pair = &mut self.pairs[di][p];
                // 1. Queue upstream, starvation downstream.
                let occ_diff = u.0 - dn.0;
                // Where the road itself makes a bottleneck (a merge, a portal, a
                // lane drop), a queue with free flow below it is the daily jam
                // unless the downstream flow starves; elsewhere a stationary
                // queue needs no further proof — unless it is a wave that came
                // from downstream (the downstream station was slow minutes ago).
                let (ids, dir) = (&d.station_ids, d.direction);
                let has_cause = *pair
                    .has_cause
                    .get_or_insert_with(|| bottleneck_cause(road, dir, ids[p], ids[p + 1]));
                let wave = md.last_congested != 0
                    && now - md.last_congested <= cfg.wave_memory_s as i64 * 1000;
                let queue = occ_diff >= cfg.occ_diff_pct
                    && occ_diff / u.0.max(1e-3) >= cfg.occ_rel_diff
                    && u.1 < cfg.up_slow_kmh
                    && dn.1 >= cfg.down_free_kmh
                    && warm
                    && !wave
                    && (!has_cause || dn.2 <= cfg.starve_ratio * md.normal_flow);
                // 2. Vehicles vanishing between the stations.
                // Counts in short intervals are noisy (±√n): the imbalance is
                // smoothed over about two minutes before it is trusted.
                let imbalance = u.2 - dn.2;
                let beta = (step as f32 / 120_000.0).min(1.0);
                pair.residual += beta * ((imbalance - pair.normal_imbalance) - pair.residual);
                let vanishing = cfg.use_imbalance
                    && pair.n_normal >= cfg.warmup_ticks
                    && u.2 >= cfg.imbalance_min_flow_vph
                    && pair.residual >= (cfg.imbalance_share * u.2).max(cfg.imbalance_min_vph)
                    && md.short_flow <= 0.85 * md.normal_flow
                    && dn.1 >= cfg.down_free_kmh * 0.8
                    && !wave
                    && (!has_cause || dn.2 <= cfg.starve_ratio * md.normal_flow);
                // A lane emptied at the downstream station: the block is upstream of it.
                let lane_blocked = lane_anom[p + 1];
                let anomaly = queue || vanishing || lane_blocked;
                if anomaly {
                    if pair.run == 0 {
                        // The first anomalous tick averages two intervals: start one before it.
                        pair.run_start = now - 2 * step;
                    }
                    pair.run += 1;
                    pair.calm = 0;
                    anomalous_station[p] = true;
                    anomalous_station[p + 1] = true;
                } else {
                    if pair.open.is_some() {
                        anomalous_station[p] = true;
                        anomalous_station[p + 1] = true;
                    }
                    pair.run = 0;
                    pair.calm += 1;
                    // Learn the pair's normal imbalance only in calm times (not
                    // while an imbalance is building up towards the threshold).
                    let building = pair.residual
                        > 0.3 * (cfg.imbalance_share * u.2).max(cfg.imbalance_min_vph);
                    if pair.open.is_none() && !building {
                        // A plain mean while warming up, then an exponential one.
                        let w = alpha.max(1.0 / (pair.n_normal + 1) as f32);
                        pair.normal_imbalance += w * (imbalance - pair.normal_imbalance);
                        pair.n_normal += 1;
                    }
                }
                let (su, sd) = (
                    road.detectors()[d.station_ids[p] as usize].stake_m,
                    road.detectors()[d.station_ids[p + 1] as usize].stake_m,
                );
                let persisted = pair.run >= cfg.persist_ticks
                    && (pair.run as i64) * step >= cfg.persist_s as i64 * 1000;
                // After an incident here or next door clears, its queue dissolves
                // front first and looks like a new one for a while: hold off.
                let held = (p.saturating_sub(1)..=(p + 1).min(self.closed_at[di].len() - 1))
                    .any(|q| now - self.closed_at[di][q] < cfg.holdoff_s as i64 * 1000);
                if pair.open.is_none() && persisted && !held {
                    let seq = *next_seq;
                    *next_seq += 1;
                    pair.open = Some(Event {
                        seq,
                        kind: EventKind::Incident,
                        direction: Some(d.direction),
                        from_m: su.min(sd),
                        to_m: su.max(sd),
                        start_ms: pair.run_start,
                        detected_ms: now,
                        end_ms: None,
                        severity: 3,
                        rule: if queue {
                            "incident.queue_starvation"
                        } else if lane_blocked {
                            "incident.lane_blocked"
                        } else {
                            "incident.vehicles_vanishing"
                        },
                        detectors: vec![d.station_ids[p], d.station_ids[p + 1]],
                        detail: EventDetail::None,
                    });
                    // A camera saw it first: one incident, one event — the camera's
                    // number and times, the detectors' extent and evidence.
                    let (lo, hi) = (su.min(sd) - 500.0, su.max(sd) + 500.0);
                    if let Some(k) = self.camera_only.iter().position(|(e, _)| {
                        e.direction == Some(d.direction) && e.from_m >= lo && e.to_m <= hi
                    }) && let Some(e) = pair.open.as_mut()
                    {
                        let (cam, _) = self.camera_only.remove(k);
                        *next_seq -= 1;
                        e.seq = cam.seq;
                        e.start_ms = e.start_ms.min(cam.start_ms);
                        e.detected_ms = cam.detected_ms;
                        e.severity = e.severity.max(cam.severity);
                    }
                } else if pair.open.is_some()
                    && pair.calm >= cfg.clear_ticks
                    && let Some(mut e) = pair.open.take()
                {
                    e.end_ms = Some(now - (cfg.clear_ticks as i64 - 1) * step);
                    self.closed_at[di][p] = now;
                    closed.push(e);
                }
            }
            // Station normals, frozen where something is wrong.
            for (k, m) in mems.iter_mut().enumerate() {
                let f = m.last_flow;
                if f.is_finite() && !anomalous_station[k] {
                    let w = alpha.max(1.0 / (m.n_normal + 1) as f32);
                    m.normal_flow += w * (f - m.normal_flow);
                    m.n_normal += 1;
                }
            }
        }
        // Cameras: confirm an open incident nearby, or raise one.
        for c in std::mem::take(&mut self.pending_cameras) {
            let near = |e: &Event| {
                e.direction == Some(c.direction)
                    && c.stake_m >= e.from_m - 500.0
                    && c.stake_m <= e.to_m + 500.0
            };
            let mut confirmed = false;
            for p in self.pairs.iter_mut().flatten() {
                if let Some(e) = p.open.as_mut().filter(|e| near(e)) {
                    e.severity = e.severity.max(4);
                    confirmed = true;
                }
            }
            if let Some((e, last)) = self.camera_only.iter_mut().find(|(e, _)| near(e)) {
                e.from_m = e.from_m.min(c.stake_m);
                e.to_m = e.to_m.max(c.stake_m);
                *last = c.ts_ms;
                confirmed = true;
            }
            if !confirmed {
                let seq = *next_seq;
                *next_seq += 1;
                let fire = matches!(c.kind, CameraKind::Fire | CameraKind::Smoke);
                self.camera_only.push((
                    Event {
                        seq,
                        kind: EventKind::Incident,
                        direction: Some(c.direction),
                        from_m: c.stake_m,
                        to_m: c.stake_m,
                        start_ms: c.ts_ms,
                        detected_ms: now.max(c.ts_ms),
                        end_ms: None,
                        severity: if fire { 5 } else { 4 },
                        rule: if fire {
                            "incident.camera_fire"
                        } else {
                            "incident.camera"
                        },
                        detectors: Vec::new(),
                        detail: EventDetail::None,
                    },
                    c.ts_ms,
                ));
            }
        }
        crate::event::end_quiet_alarms(&mut self.camera_only, now, 600_000, closed);
    }
}

/// Whether the stretch from detector `a` to detector `b` (in the direction
/// of travel) has a reason for a daily bottleneck: an interchange (on-ramp
/// merge) from 300 m before `a` to 500 m past `b`, a tunnel entrance after `a`
/// and up to 500 m past `b`, or fewer
/// lanes at `b` than at `a`.
pub fn bottleneck_cause(road: &RoadBook, dir: Direction, a: u32, b: u32) -> bool {
    let (da, db) = (&road.detectors()[a as usize], &road.detectors()[b as usize]);
    // An on-ramp at a station merges downstream of it: look from 300 m before
    // the upstream station to 500 m past the downstream one.
    let (xa, xb) = (
        dir.travel_m(da.stake_m) - 300.0,
        dir.travel_m(db.stake_m) + 500.0,
    );
    let within = |stake: f64| {
        let x = dir.travel_m(stake);
        x > xa && x <= xb
    };
    db.lanes < da.lanes
        || road
            .interchanges()
            .iter()
            .any(|i| i.directions.contains(&dir) && within(i.stake_m))
        || road.tunnels().iter().any(|t| {
            // Only the entrance portal in the direction of travel slows traffic,
            // and only one downstream of the upstream station (a portal at the
            // station queues traffic into the stretch before it).
            let portal = dir.travel_m(if dir == Direction::Up {
                t.from_m
            } else {
                t.to_m
            });
            portal > xa + 300.0 && portal <= xb
        })
}

/// Whether an incident lies in a tunnel: the tunnel index.
pub fn tunnel_of(road: &RoadBook, e: &Event) -> Option<usize> {
    road.tunnels()
        .iter()
        .position(|t| e.from_m <= t.to_m && e.to_m >= t.from_m)
}

/// Direction helper for plans.
pub fn upstream_edge(dir: Direction, e: &Event) -> f64 {
    match dir {
        Direction::Up => e.from_m,
        Direction::Down => e.to_m,
    }
}
