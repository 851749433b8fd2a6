//! Key figures at a glance (运行指标): what a duty officer reads before
//! anything else — travel time and delay between consecutive interchanges
//! per direction, congestion mileage (拥堵里程) per direction, open events
//! by severity, devices offline or faulty, decisions pending.
//!
//! Pure: the caller passes the speeds (from the live [`CorridorState`] or
//! from stored station speeds, see [`DirectionSpeeds`]), the open events'
//! severities and the devices' health; nothing here reads a clock or a
//! store, so the live figures and their history come from the same
//! functions.
//!
//! Travel time over a link is the integral of pace (1 / speed) along it:
//! each stretch of known speed contributes its overlap with the link
//! divided by its speed (speeds below [`KpiConfig::min_speed_kmh`] count
//! as that floor, so a standing queue gives a long but finite time). A
//! part of the link no stretch covers is travelled at the mean pace of
//! the covered part, and the share covered is reported with the figure;
//! a link nothing covers has no travel time. Free-flow time is the link's
//! length at the posted limit of the road book; delay is travel time minus
//! free-flow time, never below zero.

use zhilu_road::{Direction, RoadBook};

use crate::event::Severity;
use crate::state::{CorridorState, DirectionState};

/// Thresholds of the key figures.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiConfig {
    /// A stretch slower than this is congested (km/h). 40 km/h: the
    /// congestion detector's own entry speed
    /// (`CongestionConfig::enter_kmh`), so that the mileage and the
    /// congestion events speak of the same queues.
    pub congested_below_kmh: f32,
    /// Slowest speed used for travel time (km/h, > 0): a queue at 0 km/h
    /// would otherwise give an infinite time.
    pub min_speed_kmh: f32,
}

impl Default for KpiConfig {
    fn default() -> Self {
        KpiConfig {
            congested_below_kmh: 40.0,
            min_speed_kmh: 5.0,
        }
    }
}

/// A stretch of one carriageway at one speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    /// Lower stake (m).
    pub from_m: f64,
    /// Higher stake (m).
    pub to_m: f64,
    /// Speed (km/h).
    pub speed_kmh: f32,
}

/// The known speeds along one carriageway.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectionSpeeds {
    /// Carriageway.
    pub direction: Direction,
    /// Stretches of known speed (any order, not overlapping).
    pub stretches: Vec<Stretch>,
}

impl DirectionSpeeds {
    /// The segments of the live state (a segment without a finite speed
    /// is left out).
    pub fn from_state(d: &DirectionState) -> DirectionSpeeds {
        DirectionSpeeds {
            direction: d.direction,
            stretches: d
                .segments
                .iter()
                .filter(|c| c.speed_kmh.is_finite())
                .map(|c| Stretch {
                    from_m: c.from_m.min(c.to_m),
                    to_m: c.from_m.max(c.to_m),
                    speed_kmh: c.speed_kmh,
                })
                .collect(),
        }
    }

    /// Stretches between consecutive stations that have a speed, from
    /// point speeds `(stake m, speed km/h)` (stations without a speed are
    /// bridged). Each stretch's speed is the harmonic mean of its two ends
    /// — pace varying linearly between the stations — so its travel time
    /// is the trapezoidal integral of pace.
    pub fn from_stations(direction: Direction, points: &[(f64, Option<f32>)]) -> DirectionSpeeds {
        let mut known: Vec<(f64, f32)> = points
            .iter()
            .filter_map(|&(s, v)| v.filter(|v| v.is_finite() && *v > 0.0).map(|v| (s, v)))
            .collect();
        known.sort_by(|a, b| a.0.total_cmp(&b.0));
        let stretches = known
            .windows(2)
            .filter(|w| w[1].0 > w[0].0)
            .map(|w| Stretch {
                from_m: w[0].0,
                to_m: w[1].0,
                speed_kmh: 2.0 / (1.0 / w[0].1 + 1.0 / w[1].1),
            })
            .collect();
        DirectionSpeeds {
            direction,
            stretches,
        }
    }
}

/// Travel time between two consecutive interchanges in one direction.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkTime {
    /// Carriageway.
    pub direction: Direction,
    /// Upstream interchange (index in the road book).
    pub from: usize,
    /// Downstream interchange (index in the road book).
    pub to: usize,
    /// Length (m).
    pub length_m: f64,
    /// Time at the posted limit (s).
    pub free_flow_s: f64,
    /// Time at the current speeds (s); `None` when no speed covers the link.
    pub travel_s: Option<f64>,
    /// `travel_s − free_flow_s`, at least 0 (s).
    pub delay_s: Option<f64>,
    /// Share of the link's length covered by known speeds (0–1).
    pub coverage: f64,
}

impl LinkTime {
    /// Mean speed over the link (km/h).
    pub fn mean_speed_kmh(&self) -> Option<f64> {
        self.travel_s
            .filter(|t| *t > 0.0)
            .map(|t| self.length_m / t * 3.6)
    }
}

/// The interchanges in the order a driver in `dir` passes them (only those
/// whose entries feed `dir`; one per stake), as road-book indices.
pub fn interchanges_in_travel_order(road: &RoadBook, dir: Direction) -> Vec<usize> {
    let mut v: Vec<usize> = road
        .interchanges()
        .iter()
        .enumerate()
        .filter(|(_, ic)| ic.directions.contains(&dir))
        .map(|(i, _)| i)
        .collect();
    let ics = road.interchanges();
    v.sort_by(|&a, &b| {
        dir.travel_m(ics[a].stake_m)
            .total_cmp(&dir.travel_m(ics[b].stake_m))
    });
    v.dedup_by(|a, b| ics[*a].stake_m == ics[*b].stake_m);
    v
}

/// Travel time over `[lo, hi]` (m) at the speeds given, and the share of
/// it covered: `(time s, coverage)`, time `None` when nothing covers it.
pub fn travel_time(stretches: &[Stretch], lo: f64, hi: f64, cfg: &KpiConfig) -> (Option<f64>, f64) {
    let length = hi - lo;
    if length <= 0.0 {
        return (Some(0.0), 1.0);
    }
    let floor = f64::from(cfg.min_speed_kmh.max(0.1));
    let mut covered = 0.0;
    let mut time = 0.0;
    for s in stretches {
        let overlap = s.to_m.min(hi) - s.from_m.max(lo);
        if overlap <= 0.0 {
            continue;
        }
        let v = f64::from(s.speed_kmh).max(floor) / 3.6;
        covered += overlap;
        time += overlap / v;
    }
    let coverage = (covered / length).min(1.0);
    if covered <= 0.0 {
        return (None, 0.0);
    }
    // Uncovered parts at the covered part's mean pace.
    (Some(time * length / covered.min(length)), coverage)
}

/// Travel time and delay between consecutive interchanges, per direction
/// of `speeds`, in travel order.
pub fn link_times(road: &RoadBook, speeds: &[DirectionSpeeds], cfg: &KpiConfig) -> Vec<LinkTime> {
    let limit = f64::from(road.speed_limit_kmh().max(1)) / 3.6;
    let ics = road.interchanges();
    let mut out = Vec::new();
    for d in speeds {
        let order = interchanges_in_travel_order(road, d.direction);
        for w in order.windows(2) {
            let (a, b) = (ics[w[0]].stake_m, ics[w[1]].stake_m);
            let (lo, hi) = (a.min(b), a.max(b));
            let length_m = hi - lo;
            let free_flow_s = length_m / limit;
            let (travel_s, coverage) = travel_time(&d.stretches, lo, hi, cfg);
            out.push(LinkTime {
                direction: d.direction,
                from: w[0],
                to: w[1],
                length_m,
                free_flow_s,
                travel_s,
                delay_s: travel_s.map(|t| (t - free_flow_s).max(0.0)),
                coverage,
            });
        }
    }
    out
}

/// Congestion mileage (拥堵里程): the length of the carriageway slower than
/// [`KpiConfig::congested_below_kmh`] (km).
pub fn congested_km(speeds: &DirectionSpeeds, cfg: &KpiConfig) -> f64 {
    speeds
        .stretches
        .iter()
        .filter(|s| s.speed_kmh < cfg.congested_below_kmh)
        .map(|s| (s.to_m - s.from_m).max(0.0))
        .sum::<f64>()
        / 1000.0
}

/// Open events counted by severity class, in [`Severity::ALL`] order:
/// `[critical, major, minor, info]`.
pub fn by_severity(severities: impl IntoIterator<Item = Severity>) -> [u32; 4] {
    let mut n = [0u32; 4];
    for s in severities {
        n[Severity::ALL.iter().position(|x| *x == s).unwrap_or(3)] += 1;
    }
    n
}

/// What is known of a device's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceHealth {
    /// Online and working.
    Ok,
    /// Heard of before, not reachable now (离线).
    Offline,
    /// Never heard of since the centre started.
    Unheard,
    /// Reachable but faulty (a detector with an open `detector_fault`, a
    /// device not showing what its plan requires).
    Faulty,
}

/// Devices counted by health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceCounts {
    /// All devices counted.
    pub total: u32,
    /// Offline.
    pub offline: u32,
    /// Never heard of.
    pub unheard: u32,
    /// Faulty.
    pub faulty: u32,
}

/// Counts devices by health.
pub fn device_counts(health: impl IntoIterator<Item = DeviceHealth>) -> DeviceCounts {
    let mut c = DeviceCounts::default();
    for h in health {
        c.total += 1;
        match h {
            DeviceHealth::Ok => {}
            DeviceHealth::Offline => c.offline += 1,
            DeviceHealth::Unheard => c.unheard += 1,
            DeviceHealth::Faulty => c.faulty += 1,
        }
    }
    c
}

/// The traffic figures of one direction.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectionKpi {
    /// Carriageway.
    pub direction: Direction,
    /// Congestion mileage (km).
    pub congested_km: f64,
    /// Length with a known speed (km).
    pub known_km: f64,
}

/// The traffic figures of the corridor at one time: links and congestion.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficKpi {
    /// Data time (epoch ms).
    pub at_ms: i64,
    /// Travel times between consecutive interchanges, per direction.
    pub links: Vec<LinkTime>,
    /// Congestion per direction.
    pub directions: Vec<DirectionKpi>,
}

/// Links and congestion from the speeds of each direction.
pub fn traffic(
    road: &RoadBook,
    at_ms: i64,
    speeds: &[DirectionSpeeds],
    cfg: &KpiConfig,
) -> TrafficKpi {
    TrafficKpi {
        at_ms,
        links: link_times(road, speeds, cfg),
        directions: speeds
            .iter()
            .map(|d| DirectionKpi {
                direction: d.direction,
                congested_km: congested_km(d, cfg),
                known_km: d
                    .stretches
                    .iter()
                    .map(|s| (s.to_m - s.from_m).max(0.0))
                    .sum::<f64>()
                    / 1000.0,
            })
            .collect(),
    }
}

/// Links and congestion from the live state.
pub fn traffic_of_state(road: &RoadBook, state: &CorridorState, cfg: &KpiConfig) -> TrafficKpi {
    let speeds: Vec<DirectionSpeeds> = state
        .directions
        .iter()
        .map(DirectionSpeeds::from_state)
        .collect();
    traffic(road, state.ts_ms, &speeds, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Cell;

    /// K0–K30 both ways, limit 120, interchanges A (K0), B (K10, up only),
    /// C (K12), D (K30).
    fn road() -> RoadBook {
        let t = "[road]\nid = \"K\"\ntz = \"+08:00\"\ndirections = [\"up\", \"down\"]\n\
                 geometry = [[0, 116.0, 39.0], [30000, 116.0, 39.27]]\nlanes = 2\nspeed_limit_kmh = 120\n\
                 [[detector]]\nid = \"D1\"\ndirection = \"up\"\nstake_m = 1000\n\
                 [[interchange]]\nid = \"A\"\nname = \"甲\"\nstake_m = 0\ndirections = [\"up\", \"down\"]\n\
                 [[interchange]]\nid = \"D\"\nname = \"丁\"\nstake_m = 30000\ndirections = [\"up\", \"down\"]\n\
                 [[interchange]]\nid = \"B\"\nname = \"乙\"\nstake_m = 10000\ndirections = [\"up\"]\n\
                 [[interchange]]\nid = \"C\"\nname = \"丙\"\nstake_m = 12000\ndirections = [\"up\", \"down\"]\n";
        RoadBook::from_toml(t, "ROAD.toml").expect("test road")
    }

    fn st(from_m: f64, to_m: f64, speed_kmh: f32) -> Stretch {
        Stretch {
            from_m,
            to_m,
            speed_kmh,
        }
    }

    fn ids(road: &RoadBook, v: &[usize]) -> Vec<String> {
        v.iter()
            .map(|&i| road.interchanges()[i].id.clone())
            .collect()
    }

    #[test]
    fn interchanges_come_in_the_order_a_driver_passes_them() {
        let r = road();
        assert_eq!(
            ids(&r, &interchanges_in_travel_order(&r, Direction::Up)),
            ["A", "B", "C", "D"]
        );
        // B's entries feed the up carriageway only.
        assert_eq!(
            ids(&r, &interchanges_in_travel_order(&r, Direction::Down)),
            ["D", "C", "A"]
        );
    }

    #[test]
    fn travel_time_cases() {
        let cfg = KpiConfig::default();
        // (stretches, lo, hi, expected seconds, expected coverage)
        type Case = (Vec<Stretch>, f64, f64, Option<f64>, f64);
        let cases: Vec<Case> = vec![
            // 12 km at 120 km/h: 360 s.
            (
                vec![st(0.0, 12_000.0, 120.0)],
                0.0,
                12_000.0,
                Some(360.0),
                1.0,
            ),
            // 6 km at 120 (180 s) + 6 km at 60 (360 s).
            (
                vec![st(0.0, 6_000.0, 120.0), st(6_000.0, 12_000.0, 60.0)],
                0.0,
                12_000.0,
                Some(540.0),
                1.0,
            ),
            // Only the overlap counts: 2 km of a 10-km stretch at 72 km/h = 100 s.
            (
                vec![st(0.0, 10_000.0, 72.0)],
                8_000.0,
                10_000.0,
                Some(100.0),
                1.0,
            ),
            // A standing queue counts at the 5-km/h floor: 1 km → 720 s.
            (vec![st(0.0, 1_000.0, 0.0)], 0.0, 1_000.0, Some(720.0), 1.0),
            // Half covered at 60 km/h (2 km → 120 s): the rest at the same pace.
            (vec![st(0.0, 2_000.0, 60.0)], 0.0, 4_000.0, Some(240.0), 0.5),
            // Nothing known there.
            (vec![st(20_000.0, 30_000.0, 90.0)], 0.0, 4_000.0, None, 0.0),
        ];
        for (i, (s, lo, hi, want, cov)) in cases.into_iter().enumerate() {
            let (got, c) = travel_time(&s, lo, hi, &cfg);
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-6, "case {i}: {g} ≠ {w}"),
                (g, w) => assert_eq!(g, w, "case {i}"),
            }
            assert!((c - cov).abs() < 1e-9, "case {i}: coverage {c} ≠ {cov}");
        }
    }

    #[test]
    fn links_per_direction_with_delay_against_the_posted_limit() {
        let r = road();
        let cfg = KpiConfig::default();
        // Up: 120 km/h everywhere but K11–K12 at 30 km/h.
        // Down: 60 km/h everywhere.
        let up = DirectionSpeeds {
            direction: Direction::Up,
            stretches: vec![
                st(0.0, 11_000.0, 120.0),
                st(11_000.0, 12_000.0, 30.0),
                st(12_000.0, 30_000.0, 120.0),
            ],
        };
        let down = DirectionSpeeds {
            direction: Direction::Down,
            stretches: vec![st(0.0, 30_000.0, 60.0)],
        };
        let links = link_times(&r, &[up, down], &cfg);
        // (direction, from, to, length m, free s, travel s, delay s)
        let want = [
            ("up", "A", "B", 10_000.0, 300.0, 300.0, 0.0),
            // 1 km at 120 (30 s) + 1 km at 30 (120 s).
            ("up", "B", "C", 2_000.0, 60.0, 150.0, 90.0),
            ("up", "C", "D", 18_000.0, 540.0, 540.0, 0.0),
            ("down", "D", "C", 18_000.0, 540.0, 1_080.0, 540.0),
            ("down", "C", "A", 12_000.0, 360.0, 720.0, 360.0),
        ];
        assert_eq!(links.len(), want.len());
        for (l, w) in links.iter().zip(want) {
            let name = |i: usize| r.interchanges()[i].id.as_str();
            assert_eq!(
                (l.direction.as_str(), name(l.from), name(l.to)),
                (w.0, w.1, w.2)
            );
            assert!((l.length_m - w.3).abs() < 1e-9, "{l:?}");
            assert!((l.free_flow_s - w.4).abs() < 1e-6, "{l:?}");
            assert!((l.travel_s.unwrap() - w.5).abs() < 1e-6, "{l:?}");
            assert!((l.delay_s.unwrap() - w.6).abs() < 1e-6, "{l:?}");
        }
        // 2 km in 150 s = 48 km/h.
        assert!((links[1].mean_speed_kmh().unwrap() - 48.0).abs() < 1e-9);
    }

    #[test]
    fn faster_than_the_limit_is_no_negative_delay() {
        let r = road();
        let up = DirectionSpeeds {
            direction: Direction::Up,
            stretches: vec![st(0.0, 30_000.0, 150.0)],
        };
        let l = &link_times(&r, &[up], &KpiConfig::default())[0];
        assert!((l.travel_s.unwrap() - 240.0).abs() < 1e-6);
        assert_eq!(l.delay_s, Some(0.0));
    }

    #[test]
    fn congestion_mileage_cases() {
        let cfg = KpiConfig::default();
        // (stretches, km)
        let cases: Vec<(Vec<Stretch>, f64)> = vec![
            (vec![st(0.0, 5_000.0, 100.0)], 0.0),
            (
                vec![st(0.0, 1_500.0, 20.0), st(1_500.0, 5_000.0, 100.0)],
                1.5,
            ),
            // 40 km/h itself is not congested; 39.9 is.
            (
                vec![st(0.0, 1_000.0, 40.0), st(1_000.0, 3_000.0, 39.9)],
                2.0,
            ),
            (
                vec![
                    st(0.0, 700.0, 0.0),
                    st(700.0, 1_000.0, 80.0),
                    st(1_000.0, 1_250.0, 10.0),
                ],
                0.95,
            ),
        ];
        for (i, (s, km)) in cases.into_iter().enumerate() {
            let d = DirectionSpeeds {
                direction: Direction::Up,
                stretches: s,
            };
            assert!((congested_km(&d, &cfg) - km).abs() < 1e-9, "case {i}");
        }
    }

    #[test]
    fn station_speeds_become_stretches_with_the_harmonic_mean() {
        // 60 and 120 km/h 1 km apart: pace 1/60 → 1/120, mean pace 1/80.
        // A station without a speed is bridged.
        let d = DirectionSpeeds::from_stations(
            Direction::Down,
            &[
                (2_000.0, Some(120.0)),
                (1_500.0, None),
                (1_000.0, Some(60.0)),
            ],
        );
        assert_eq!(d.stretches.len(), 1);
        let s = d.stretches[0];
        assert_eq!((s.from_m, s.to_m), (1_000.0, 2_000.0));
        assert!((s.speed_kmh - 80.0).abs() < 1e-4, "{s:?}");
        let (t, _) = travel_time(&d.stretches, 1_000.0, 2_000.0, &KpiConfig::default());
        assert!((t.unwrap() - 45.0).abs() < 1e-3);
    }

    #[test]
    fn state_segments_become_stretches() {
        let cell = |from_m, to_m, speed_kmh| Cell {
            from_m,
            to_m,
            speed_kmh,
            flow_vph: 0.0,
            density_vpkm: 0.0,
            support: 1.0,
        };
        let state = CorridorState {
            ts_ms: 7,
            directions: vec![DirectionState {
                direction: Direction::Down,
                station_ids: vec![],
                samples: vec![],
                stations: vec![],
                // Down: in travel order, stakes decreasing.
                segments: vec![
                    cell(30_000.0, 12_000.0, 30.0),
                    cell(12_000.0, 0.0, f32::NAN),
                ],
            }],
        };
        let k = traffic_of_state(&road(), &state, &KpiConfig::default());
        assert_eq!(k.at_ms, 7);
        assert_eq!(k.directions[0].congested_km, 18.0);
        assert_eq!(k.directions[0].known_km, 18.0);
        // D→C at 30 km/h: 18 km in 36 min; C→A unknown.
        assert!((k.links[0].travel_s.unwrap() - 2_160.0).abs() < 1e-6);
        assert_eq!(k.links[1].travel_s, None);
        assert_eq!(k.links[1].delay_s, None);
    }

    #[test]
    fn events_by_severity_and_devices_by_health() {
        use Severity::*;
        assert_eq!(by_severity([Minor, Critical, Minor, Info]), [1, 0, 2, 1]);
        assert_eq!(by_severity([]), [0; 4]);
        use DeviceHealth::{Faulty, Offline, Ok, Unheard};
        assert_eq!(
            device_counts([Ok, Offline, Unheard, Faulty, Ok, Offline]),
            DeviceCounts {
                total: 6,
                offline: 2,
                unheard: 1,
                faulty: 1
            }
        );
    }
}
