//! Vehicle watch (车辆监管): hazardous-goods trucks (两客一危's 危) and
//! wrong-way driving, from position reports (JT/T 808 0x0200 or POS.csv)
//! and camera analytics.
//!
//! Each report is matched to the road: the nearest point of the centre
//! line gives the stake and the lateral offset; a report more than 60 m off
//! the centre line is off the expressway (a service road, a parallel
//! street) and is ignored. The heading against the centre line's bearing
//! gives the direction of travel; the side of the centre line gives the
//! carriageway (right-hand traffic: the `up` carriageway lies right of the
//! direction of increasing stake).
//!
//! | event | fires when | default |
//! |---|---|---|
//! | `hazmat_speeding` | a hazmat vehicle above the hazmat limit for longer than `speeding_s` | 80 km/h (expressway limit for dangerous goods), 60 s |
//! | `hazmat_stopped` | a hazmat vehicle below 5 km/h within 100 m for 5 min on the carriageway (within `lanes × 3.75 + 12` m of the centre line), not inside a service area's extent on its carriageway (`from_m…to_m`, or the stake ± 250 m) | 300 s |
//! | `hazmat_restricted_zone` | a hazmat vehicle inside a tunnel marked `hazmat = "forbidden"` | first report inside |
//! | `hazmat_driving_time` | a hazmat vehicle driving more than 4 h without a rest of 20 min | 4 h / 20 min |
//! | `wrong_way` | two reports in a row at ≥ 20 km/h moving against the carriageway they are on; or a camera's `wrong_way` | — |

use std::collections::HashMap;

use zhilu_road::{Direction, RoadBook};

use crate::event::{Event, EventDetail, EventKind};
use crate::reading::{CameraKind, CameraObs, PositionObs, VehicleClass};

/// Thresholds of the vehicle rules.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleConfig {
    /// Speed limit for dangerous goods on expressways (km/h).
    pub hazmat_limit_kmh: f32,
    /// Seconds above the limit before it is a violation.
    pub speeding_s: u32,
    /// Below this a vehicle counts as stopped (km/h).
    pub stop_speed_kmh: f32,
    /// A stopped vehicle may drift this far (m).
    pub stop_radius_m: f64,
    /// Seconds stopped before it is a violation.
    pub stopped_s: u32,
    /// Width of a lane (m): with `carriageway_margin_m`, where the
    /// carriageway ends beside the centre line.
    pub lane_width_m: f64,
    /// Beyond the lanes (`lanes × lane_width_m` from the centre line): half
    /// the median, the hard shoulder (3–3.5 m) and GPS error (m). A stop
    /// further than `lanes × lane_width_m + carriageway_margin_m` from the
    /// centre line is off the carriageway (a lay-by, a car park, a ramp's
    /// verge): allowed.
    pub carriageway_margin_m: f64,
    /// Further than this from the centre line is off the expressway (m).
    pub max_offset_m: f64,
    /// Closer than this to the centre line, the carriageway is unknown (m).
    pub min_side_offset_m: f64,
    /// Longest continuous driving (s).
    pub driving_limit_s: u32,
    /// A rest that resets driving time (s).
    pub rest_s: u32,
    /// Reports in a row against the traffic for wrong-way.
    pub wrong_way_reports: u8,
    /// Minimum speed for a wrong-way report (km/h).
    pub wrong_way_min_kmh: f32,
    /// A vehicle silent this long is forgotten, and its events end (s).
    pub forget_s: u32,
}

impl Default for VehicleConfig {
    fn default() -> Self {
        VehicleConfig {
            hazmat_limit_kmh: 80.0,
            speeding_s: 60,
            stop_speed_kmh: 5.0,
            stop_radius_m: 100.0,
            stopped_s: 300,
            lane_width_m: 3.75,
            carriageway_margin_m: 12.0,
            max_offset_m: 60.0,
            min_side_offset_m: 2.0,
            driving_limit_s: 4 * 3600,
            rest_s: 20 * 60,
            wrong_way_reports: 2,
            wrong_way_min_kmh: 20.0,
            forget_s: 600,
        }
    }
}

const NEVER: i64 = i64::MIN / 4;

#[derive(Debug, Clone)]
struct Track {
    class: VehicleClass,
    last_ts: i64,
    stake_m: f64,
    direction: Option<Direction>,
    speeding_since: i64,
    stop_since: i64,
    stop_anchor_m: f64,
    drive_since: i64,
    wrong_count: u8,
    open: [Option<Event>; 5],
}

const SPEEDING: usize = 0;
const STOPPED: usize = 1;
const ZONE: usize = 2;
const DRIVING: usize = 3;
const WRONG: usize = 4;

fn kind_of(slot: usize) -> EventKind {
    match slot {
        SPEEDING => EventKind::HazmatSpeeding,
        STOPPED => EventKind::HazmatStopped,
        ZONE => EventKind::HazmatRestrictedZone,
        DRIVING => EventKind::HazmatDrivingTime,
        _ => EventKind::WrongWay,
    }
}

fn rule_of(slot: usize) -> &'static str {
    match slot {
        SPEEDING => "vehicle.hazmat_speeding",
        STOPPED => "vehicle.hazmat_stopped",
        ZONE => "vehicle.hazmat_restricted_zone",
        DRIVING => "vehicle.hazmat_driving_time",
        _ => "vehicle.wrong_way",
    }
}

/// The watch over every reporting vehicle.
#[derive(Debug, Clone)]
pub struct VehicleWatch {
    cfg: VehicleConfig,
    tracks: HashMap<u32, Track>,
    /// Camera wrong-way alarms still open: (event, last report).
    camera_wrong_way: Vec<(Event, i64)>,
}

/// Signed smallest difference between two bearings (degrees, −180…180).
fn angle_diff(a: f64, b: f64) -> f64 {
    (a - b + 540.0).rem_euclid(360.0) - 180.0
}

impl VehicleWatch {
    /// An empty watch.
    pub fn new(cfg: VehicleConfig) -> VehicleWatch {
        VehicleWatch {
            cfg,
            tracks: HashMap::new(),
            camera_wrong_way: Vec::new(),
        }
    }

    /// Vehicles tracked now.
    pub fn tracked(&self) -> usize {
        self.tracks.len()
    }

    /// One position report. Returns where it lies on the road (carriageway,
    /// stake, metres right of the centre line) when it is on the expressway
    /// and its direction is known: a probe for the incident detector.
    pub fn observe(
        &mut self,
        road: &RoadBook,
        p: &PositionObs,
        next_seq: &mut u64,
        closed: &mut Vec<Event>,
    ) -> Option<(Direction, f64, f64)> {
        let cfg = &self.cfg;
        let m = road.geometry().locate(p.lon, p.lat);
        let on_road = m.offset_m.abs() <= cfg.max_offset_m;
        let t = p.ts_ms;
        let track = self.tracks.entry(p.vehicle).or_insert(Track {
            class: p.class,
            last_ts: NEVER,
            stake_m: m.stake_m,
            direction: None,
            speeding_since: NEVER,
            stop_since: NEVER,
            stop_anchor_m: m.stake_m,
            drive_since: NEVER,
            wrong_count: 0,
            open: Default::default(),
        });
        if t < track.last_ts {
            return None; // an older report than one already used
        }
        // A long silence: the vehicle left the road (or the terminal slept).
        if track.last_ts != NEVER && t - track.last_ts >= cfg.forget_s as i64 * 1000 {
            end_all(track, track.last_ts, closed);
            track.speeding_since = NEVER;
            track.stop_since = NEVER;
            track.wrong_count = 0;
            if t - track.last_ts >= cfg.rest_s as i64 * 1000 {
                track.drive_since = NEVER;
            }
        }
        track.class = p.class;
        track.last_ts = t;
        if !on_road {
            end_all(track, t, closed);
            track.speeding_since = NEVER;
            track.stop_since = NEVER;
            track.wrong_count = 0;
            return None;
        }
        track.stake_m = m.stake_m;
        let moving = p.speed_kmh >= cfg.stop_speed_kmh;
        if moving {
            let d = angle_diff(p.heading_deg as f64, m.bearing_deg);
            track.direction = Some(if d.abs() < 90.0 {
                Direction::Up
            } else {
                Direction::Down
            });
        }
        let dir = track.direction;
        let speed = p.speed_kmh;
        let hazmat = p.class == VehicleClass::Hazmat;

        // Wrong way: on one carriageway, moving the other way.
        let side = if m.offset_m > cfg.min_side_offset_m {
            Some(Direction::Up)
        } else if m.offset_m < -cfg.min_side_offset_m {
            Some(Direction::Down)
        } else {
            None
        };
        let against =
            matches!((side, dir), (Some(s), Some(d)) if s != d) && speed >= cfg.wrong_way_min_kmh;
        if against {
            track.wrong_count = track.wrong_count.saturating_add(1);
            if track.wrong_count >= cfg.wrong_way_reports {
                open(track, WRONG, p, side, m.stake_m, t, t, next_seq);
            }
        } else if speed >= cfg.wrong_way_min_kmh || side.is_none() {
            track.wrong_count = 0;
            close(track, WRONG, t, closed);
        }

        let probe = dir.map(|d| (d, m.stake_m, m.offset_m));
        if !hazmat {
            return probe;
        }
        // Speeding.
        if speed > cfg.hazmat_limit_kmh {
            if track.speeding_since == NEVER {
                track.speeding_since = t;
            }
            if t - track.speeding_since >= cfg.speeding_s as i64 * 1000 {
                let since = track.speeding_since;
                open(track, SPEEDING, p, dir, m.stake_m, since, t, next_seq);
            }
        } else {
            track.speeding_since = NEVER;
            close(track, SPEEDING, t, closed);
        }
        // Stopped on the carriageway.
        if !moving && !stop_allowed(cfg, road, dir, m.stake_m, m.offset_m) {
            if track.stop_since == NEVER
                || (m.stake_m - track.stop_anchor_m).abs() > cfg.stop_radius_m
            {
                track.stop_since = t;
                track.stop_anchor_m = m.stake_m;
            }
            if t - track.stop_since >= cfg.stopped_s as i64 * 1000 {
                let since = track.stop_since;
                open(track, STOPPED, p, dir, m.stake_m, since, t, next_seq);
            }
        } else {
            track.stop_since = NEVER;
            close(track, STOPPED, t, closed);
        }
        // Restricted zone.
        if road
            .tunnels()
            .iter()
            .any(|z| z.hazmat_forbidden && m.stake_m >= z.from_m && m.stake_m <= z.to_m)
        {
            open(track, ZONE, p, dir, m.stake_m, t, t, next_seq);
        } else {
            close(track, ZONE, t, closed);
        }
        // Driving time: rests of 20 min (stopped, or silent) reset it.
        if moving {
            if track.drive_since == NEVER {
                track.drive_since = t;
            }
            if t - track.drive_since > cfg.driving_limit_s as i64 * 1000 {
                let since = track.drive_since + cfg.driving_limit_s as i64 * 1000;
                open(track, DRIVING, p, dir, m.stake_m, since, t, next_seq);
            }
        } else if track.stop_since != NEVER && t - track.stop_since >= cfg.rest_s as i64 * 1000 {
            track.drive_since = NEVER;
            close(track, DRIVING, t, closed);
        }
        probe
    }

    /// One camera event (wrong-way sightings).
    pub fn camera(&mut self, c: &CameraObs, next_seq: &mut u64) {
        if c.kind != CameraKind::WrongWay {
            return;
        }
        // The same sighting again (within 2 min and 1 km) extends the open alarm.
        if let Some((e, last)) = self.camera_wrong_way.iter_mut().find(|(e, last)| {
            e.direction == Some(c.direction)
                && c.ts_ms - *last <= 120_000
                && (e.from_m - c.stake_m).abs() <= 1000.0
        }) {
            e.from_m = e.from_m.min(c.stake_m);
            e.to_m = e.to_m.max(c.stake_m);
            *last = c.ts_ms;
            return;
        }
        let seq = *next_seq;
        *next_seq += 1;
        let e = Event {
            seq,
            kind: EventKind::WrongWay,
            direction: Some(c.direction),
            from_m: c.stake_m,
            to_m: c.stake_m,
            start_ms: c.ts_ms,
            detected_ms: c.ts_ms,
            end_ms: None,
            severity: 5,
            rule: "camera.wrong_way",
            detectors: Vec::new(),
            detail: EventDetail::None,
        };
        self.camera_wrong_way.push((e, c.ts_ms));
    }

    /// Ends what went quiet by `now_ms` (vehicles not seen for `forget_s`,
    /// camera alarms not repeated for 2 min).
    pub fn close_tick(&mut self, now_ms: i64, closed: &mut Vec<Event>) {
        let forget = self.cfg.forget_s as i64 * 1000;
        self.tracks.retain(|_, t| {
            if now_ms - t.last_ts >= forget {
                end_all(t, t.last_ts, closed);
                false
            } else {
                true
            }
        });
        crate::event::end_quiet_alarms(&mut self.camera_wrong_way, now_ms, 120_000, closed);
    }

    /// Events still open.
    pub fn open_events(&self) -> impl Iterator<Item = &Event> {
        self.tracks
            .values()
            .flat_map(|t| t.open.iter().flatten())
            .chain(self.camera_wrong_way.iter().map(|(e, _)| e))
    }
}

/// Where a hazmat vehicle may stop: inside a service area's extent on its
/// carriageway (the road book's `from_m…to_m`, the stake ± 250 m when only
/// the stake is given), or well off the carriageway.
fn stop_allowed(
    cfg: &VehicleConfig,
    road: &RoadBook,
    dir: Option<Direction>,
    stake_m: f64,
    offset_m: f64,
) -> bool {
    let edge = road.lanes() as f64 * cfg.lane_width_m + cfg.carriageway_margin_m;
    offset_m.abs() > edge || road.service_areas().iter().any(|s| s.covers(dir, stake_m))
}

#[allow(clippy::too_many_arguments)]
fn open(
    track: &mut Track,
    slot: usize,
    p: &PositionObs,
    dir: Option<Direction>,
    stake_m: f64,
    start: i64,
    now: i64,
    next_seq: &mut u64,
) {
    match &mut track.open[slot] {
        Some(e) => {
            e.from_m = e.from_m.min(stake_m);
            e.to_m = e.to_m.max(stake_m);
            if let EventDetail::Vehicle { max_speed_kmh, .. } = &mut e.detail {
                *max_speed_kmh = max_speed_kmh.max(p.speed_kmh);
            }
        }
        slot_ref @ None => {
            let seq = *next_seq;
            *next_seq += 1;
            *slot_ref = Some(Event {
                seq,
                kind: kind_of(slot),
                direction: dir,
                from_m: stake_m,
                to_m: stake_m,
                start_ms: start,
                detected_ms: now,
                end_ms: None,
                severity: if slot == WRONG || slot == ZONE { 5 } else { 3 },
                rule: rule_of(slot),
                detectors: Vec::new(),
                detail: EventDetail::Vehicle {
                    vehicle: p.vehicle,
                    max_speed_kmh: p.speed_kmh,
                },
            });
        }
    }
}

fn close(track: &mut Track, slot: usize, now: i64, closed: &mut Vec<Event>) {
    if let Some(mut e) = track.open[slot].take() {
        e.end_ms = Some(now);
        closed.push(e);
    }
}

fn end_all(track: &mut Track, at: i64, closed: &mut Vec<Event>) {
    for slot in 0..5 {
        close(track, slot, at, closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles() {
        assert_eq!(angle_diff(10.0, 350.0), 20.0);
        assert_eq!(angle_diff(350.0, 10.0), -20.0);
        assert_eq!(angle_diff(180.0, 0.0).abs(), 180.0);
    }
}
