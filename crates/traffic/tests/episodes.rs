//! Bar 4 — the demo morning's episodes show in the readings: the incident
//! queues back and clears, the fog bank blinds the core, the bridge ices at
//! dawn, the hazmat truck stands inside the tunnel; detector faults show.
//! Bar 5 — the same seed gives the same day.

mod common;

use std::sync::OnceLock;

use zhilu_road::{Direction, RoadBook};
use zhilu_traffic::{
    EventKind, FaultRule, ObsReading, Scenario, Sim, SimConfig, SurfaceState, TruthRecord,
    VehiclePosition, WeatherReading,
};

struct Morning {
    road: RoadBook,
    obs: Vec<ObsReading>,
    weather: Vec<WeatherReading>,
    positions: Vec<VehiclePosition>,
    truth: Vec<TruthRecord>,
}

/// The demo morning, 04:30–09:30, simulated once for all tests here.
fn morning() -> &'static Morning {
    static M: OnceLock<Morning> = OnceLock::new();
    M.get_or_init(|| {
        let road = common::demo_road();
        let scenario = Scenario::demo_morning(&road);
        let start = common::at(&road, 4, 30);
        let mut sim = Sim::new(&road, &scenario, SimConfig::default(), start, 2026).expect("sim");
        let (mut obs, mut weather, mut positions) = (Vec::new(), Vec::new(), Vec::new());
        sim.run_until(common::at(&road, 9, 30), |o| {
            obs.extend_from_slice(o.obs());
            weather.extend_from_slice(o.weather());
            positions.extend_from_slice(o.positions());
        });
        let truth = sim.truth();
        Morning {
            road,
            obs,
            weather,
            positions,
            truth,
        }
    })
}

fn station(m: &Morning, id: &str) -> u32 {
    m.road
        .weather()
        .iter()
        .position(|w| w.id == id)
        .expect("station") as u32
}

#[test]
fn the_incident_queues_back_within_minutes_and_clears() {
    let m = morning();
    let r = &m.road;
    let inc = m
        .truth
        .iter()
        .find(|t| t.kind == EventKind::Incident)
        .expect("incident in truth");
    assert_eq!(inc.direction, Some(Direction::Up));
    assert_eq!(inc.from_m, 35_300.0);
    let start = common::at(r, 7, 40);
    assert_eq!(inc.start_ms, start);
    let d = r.detector_index("D035U").expect("D035U");
    let before = common::mean_speed(&m.obs, d, start - 20 * 60_000, start);
    // Speed per 1-min slice after the start: the first slice below 50 km/h.
    let hit = (1..=15)
        .find(|k| {
            common::mean_speed(&m.obs, d, start + (k - 1) * 60_000, start + k * 60_000) < 50.0
        })
        .expect("the queue reaches D035U within 15 min");
    let during = common::mean_speed(&m.obs, d, start + 10 * 60_000, inc.end_ms);
    let after = common::mean_speed(
        &m.obs,
        d,
        inc.end_ms + 20 * 60_000,
        inc.end_ms + 40 * 60_000,
    );
    eprintln!(
        "D035U: {before:.0} km/h before, < 50 after {hit} min, {during:.0} during, {after:.0} 20–40 min after clearance"
    );
    assert!(before > 85.0);
    assert!(hit <= 6, "speed drop {hit} min after the start");
    assert!(during < 40.0);
    assert!(after > 85.0, "recovered to {after:.0} km/h");
    // Downstream of the incident the flow is starved, not jammed.
    let down = r.detector_index("D036U").expect("D036U");
    // (1 km past the incident)
    assert!(common::mean_speed(&m.obs, down, start + 10 * 60_000, inc.end_ms) > 80.0);
}

#[test]
fn the_fog_bank_blinds_its_core_during_its_window() {
    let m = morning();
    let core = station(m, "W03");
    let outside = station(m, "W01");
    let fog = m
        .truth
        .iter()
        .find(|t| t.kind == EventKind::Fog)
        .expect("fog in truth");
    assert!(fog.from_m <= 25_000.0 && fog.to_m >= 25_000.0);
    let r = &m.road;
    let vis = |st: u32, h0: (u32, u32), h1: (u32, u32)| {
        m.weather
            .iter()
            .filter(|w| {
                w.station == st
                    && w.time_ms > common::at(r, h0.0, h0.1)
                    && w.time_ms <= common::at(r, h1.0, h1.1)
            })
            .map(|w| f64::from(w.visibility_m))
            .collect::<Vec<_>>()
    };
    let core_peak = vis(core, (6, 0), (7, 0));
    assert!(!core_peak.is_empty());
    assert!(
        core_peak.iter().all(|&v| v < 50.0),
        "core visibility {core_peak:?}"
    );
    assert!(vis(core, (4, 30), (5, 25)).iter().all(|&v| v > 2000.0));
    assert!(vis(core, (7, 35), (9, 30)).iter().all(|&v| v > 2000.0));
    assert!(vis(outside, (4, 30), (9, 30)).iter().all(|&v| v > 2000.0));
    // Traffic slows in the fog.
    let d = r.detector_index("D025U").expect("D025U");
    let v = common::mean_speed(&m.obs, d, common::at(r, 6, 10), common::at(r, 6, 50));
    assert!(v < 50.0, "speed in the fog {v:.0} km/h");
}

#[test]
fn the_bridge_ices_at_dawn_and_the_rest_of_the_road_does_not() {
    let m = morning();
    let r = &m.road;
    let bridge = station(m, "W05");
    let ice: Vec<&WeatherReading> = m
        .weather
        .iter()
        .filter(|w| {
            w.station == bridge
                && w.time_ms > common::at(r, 5, 30)
                && w.time_ms <= common::at(r, 6, 0)
        })
        .collect();
    assert!(!ice.is_empty());
    assert!(
        ice.iter()
            .all(|w| w.surface_temp_c < 0.0 && w.surface_state == SurfaceState::Ice)
    );
    assert!(
        m.weather
            .iter()
            .filter(|w| w.station != bridge)
            .all(|w| w.surface_temp_c > 0.0 && w.surface_state != SurfaceState::Ice)
    );
    // After the spell the bridge is above freezing again.
    assert!(
        m.weather
            .iter()
            .filter(|w| w.station == bridge && w.time_ms > common::at(r, 7, 0))
            .all(|w| w.surface_temp_c > 0.0)
    );
}

#[test]
fn the_hazmat_truck_stands_inside_the_tunnel() {
    let m = morning();
    let tunnel = &m.road.tunnels()[0];
    let stop = m
        .truth
        .iter()
        .find(|t| t.kind == EventKind::HazmatStopped)
        .expect("stop in truth");
    let plate = stop.vehicle.expect("vehicle");
    let mine: Vec<&VehiclePosition> = m
        .positions
        .iter()
        .filter(|p| p.vehicle == plate.0)
        .collect();
    let stopped: Vec<&&VehiclePosition> = mine.iter().filter(|p| p.speed_kmh == 0.0).collect();
    assert!(stopped.len() >= 18, "{} stopped reports", stopped.len());
    assert!(
        stopped
            .iter()
            .all(|p| p.stake_m > tunnel.from_m && p.stake_m < tunnel.to_m)
    );
    assert!((stop.start_ms - common::at(&m.road, 6, 15)).abs() <= 5 * 60_000);
    assert_eq!(stop.end_ms - stop.start_ms, 10 * 60_000);
    // It drives on afterwards, and it is also in the tunnel closed to it.
    assert!(
        mine.iter()
            .any(|p| p.time_ms > stop.end_ms && p.speed_kmh > 30.0)
    );
    assert!(
        m.truth
            .iter()
            .any(|t| t.kind == EventKind::HazmatRestrictedZone && t.vehicle == Some(plate))
    );
    // No other hazmat truck enters the tunnel.
    assert!(
        m.positions
            .iter()
            .filter(|p| p.vehicle != plate.0 && p.class == zhilu_traffic::VehicleClass::Hazmat)
            .all(|p| p.stake_m < tunnel.from_m || p.stake_m > tunnel.to_m)
    );
}

#[test]
fn the_stuck_detector_repeats_itself() {
    let m = morning();
    let r = &m.road;
    let f = m
        .truth
        .iter()
        .find(|t| t.kind == EventKind::DetectorFault)
        .expect("fault in truth");
    let (d, rule) = f.detector.expect("detector");
    assert_eq!(rule, FaultRule::Stuck);
    let lane = f.lane.expect("lane");
    let rows: Vec<&ObsReading> = m
        .obs
        .iter()
        .filter(|o| {
            o.detector == d && o.lane == lane && o.time_ms > f.start_ms && o.time_ms <= f.end_ms
        })
        .collect();
    assert!(rows.len() > 20);
    assert!(
        rows.windows(2)
            .all(|w| (w[0].volume, w[0].speed_kmh, w[0].occupancy_pct)
                == (w[1].volume, w[1].speed_kmh, w[1].occupancy_pct))
    );
    let _ = r;
}

#[test]
fn the_same_seed_gives_the_same_day_and_another_seed_another() {
    let road = common::demo_road();
    let scenario = Scenario::demo_morning(&road);
    let start = common::at(&road, 6, 0);
    let run = |seed: u64| {
        let mut sim = Sim::new(&road, &scenario, SimConfig::default(), start, seed).expect("sim");
        let (mut obs, mut pos) = (Vec::new(), Vec::new());
        sim.run_until(start + 40 * 60_000, |o| {
            obs.extend_from_slice(o.obs());
            pos.extend_from_slice(o.positions());
        });
        (obs, pos, sim.truth())
    };
    let a = run(9);
    let b = run(9);
    let c = run(10);
    assert!(!a.0.is_empty() && !a.1.is_empty());
    assert!(a == b, "same seed, same readings");
    assert!(a.0 != c.0, "another seed, other readings");
}

#[test]
fn a_speeding_hazmat_truck_is_seen_above_its_limit() {
    let road = common::demo_road();
    let scenario = Scenario {
        episodes: vec![zhilu_traffic::Episode::HazmatSpeeding(
            zhilu_traffic::HazmatSpeeding {
                start_s: 10 * 3600,
                direction: Direction::Up,
                speed_kmh: 96.0,
            },
        )],
        ..Scenario::quiet()
    };
    let start = common::at(&road, 10, 0);
    let mut sim = Sim::new(&road, &scenario, SimConfig::default(), start, 4).expect("sim");
    let mut pos = Vec::new();
    sim.run_until(start + 40 * 60_000, |o| {
        pos.extend_from_slice(o.positions())
    });
    let t = sim.truth();
    let sp = t
        .iter()
        .find(|r| r.kind == EventKind::HazmatSpeeding)
        .expect("speeding in truth");
    let plate = sp.vehicle.expect("vehicle");
    let fast: Vec<&VehiclePosition> = pos
        .iter()
        .filter(|p| p.vehicle == plate.0 && p.speed_kmh > 80.0)
        .collect();
    assert!(fast.len() >= 20, "{} fast reports", fast.len());
    assert!(
        fast.iter()
            .all(|p| p.class == zhilu_traffic::VehicleClass::Hazmat)
    );
    assert!(sp.end_ms - sp.start_ms >= 10 * 60_000);
    // It leaves before the tunnel closed to it.
    assert!(!t.iter().any(|r| r.kind == EventKind::HazmatRestrictedZone));
}

#[test]
fn the_scenarios_fit_another_road_book() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/day/ROAD.toml");
    let text = std::fs::read_to_string(path).expect("examples/day/ROAD.toml");
    let road = RoadBook::from_toml(&text, path).expect("road");
    let start = common::at(&road, 5, 0);
    for s in [
        Scenario::demo_morning(&road),
        Scenario::random(&road, 3),
        Scenario::quiet(),
    ] {
        let mut sim = Sim::new(&road, &s, SimConfig::default(), start, 1).expect("sim");
        let mut n = 0;
        sim.run_until(start + 4 * 3_600_000, |o| {
            n += o.obs().len() + o.positions().len()
        });
        assert!(n > 1000);
        let truth = sim.truth();
        assert_eq!(
            truth
                .iter()
                .filter(|r| r.kind == EventKind::DetectorFault)
                .count(),
            s.episodes
                .iter()
                .filter(|e| matches!(e, zhilu_traffic::Episode::DetectorFault(_)))
                .count()
        );
    }
}
