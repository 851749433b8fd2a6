//! Incident detection on station-level series with a known answer, and the
//! plans an incident drives (including a tunnel's emergency plan).

use std::sync::Arc;

use zhilu_core::incident::{IncidentConfig, IncidentWatch, ProbeObs};
use zhilu_core::road::{Direction, RoadBook};
use zhilu_core::{
    Brain, BrainConfig, CameraKind, CameraObs, Cell, Command, CorridorState, DirectionState, Event,
    EventKind, StationSample,
};

const T0: i64 = 1_795_384_800_000;
const STEP: i64 = 30_000;

fn road() -> Arc<RoadBook> {
    let mut t = String::from(
        "[road]\nid = \"I\"\ntz = \"+08:00\"\ndirections = [\"up\"]\ngeometry = [[0, 116.0, 39.0], [12000, 116.0, 39.108]]\nlanes = 3\nspeed_limit_kmh = 120\n",
    );
    for i in 0..8 {
        t += &format!(
            "\n[[detector]]\nid = \"D{i}\"\ndirection = \"up\"\nstake_m = {}\n",
            1000 + i * 1000
        );
    }
    for k in [2500, 4500, 6500] {
        t += &format!("\n[[vsl]]\nid = \"S{k}\"\ndirection = \"up\"\nstake_m = {k}\n");
    }
    t += "\n[[vms]]\nid = \"M3000\"\ndirection = \"up\"\nstake_m = 3000\n";
    t += "\n[[tunnel]]\nid = \"TN\"\nfrom_m = 9000\nto_m = 10000\n";
    t += "\n[[interchange]]\nid = \"T1\"\nname = \"一\"\nstake_m = 2000\ndirections = [\"up\"]\n";
    // An on-ramp merging just upstream of station 4 (5 km): the daily bottleneck.
    t += "\n[[interchange]]\nid = \"TM\"\nname = \"汇入\"\nstake_m = 4700\ndirections = [\"up\"]\n";
    Arc::new(RoadBook::from_toml(&t, "ROAD.toml").unwrap())
}

/// A small deterministic noise in [-1, 1].
fn noise(k: i64, st: usize, salt: i64) -> f32 {
    let x = (k * 7919 + st as i64 * 104_729 + salt * 1_299_709) % 1000;
    x as f32 / 500.0 - 1.0
}

/// Station sample: (occupancy %, speed km/h, flow veh/h all lanes).
fn sample(occ: f32, v: f32, q: f32) -> StationSample {
    StationSample {
        valid: true,
        lanes_used: 3,
        flow_vph: q,
        speed_kmh: v,
        density_vpkm: q / v.max(5.0),
        occupancy_pct: occ,
    }
}

/// Runs `ticks` ticks; `f(station, tick)` gives each station's (occ, v, q).
fn run(ticks: i64, cfg: IncidentConfig, f: impl Fn(usize, i64) -> (f32, f32, f32)) -> Vec<Event> {
    run_lanes(ticks, cfg, f, |_, _, _| f32::NAN)
}

/// As `run`, with per-lane flows `lane(station, lane 0-based, tick)` (veh/h).
fn run_lanes(
    ticks: i64,
    cfg: IncidentConfig,
    f: impl Fn(usize, i64) -> (f32, f32, f32),
    lane: impl Fn(usize, usize, i64) -> f32,
) -> Vec<Event> {
    run_lanes_probed(ticks, cfg, f, lane, 0)
}

/// As `run_lanes`, with `probes` trucks spread along the carriageway, each
/// reporting every tick at 85 km/h (free flow: no probe alarm, but the
/// carriageway counts as covered by probes).
fn run_lanes_probed(
    ticks: i64,
    cfg: IncidentConfig,
    f: impl Fn(usize, i64) -> (f32, f32, f32),
    lane: impl Fn(usize, usize, i64) -> f32,
    probes: u32,
) -> Vec<Event> {
    drive_lanes(&road(), cfg, ticks, f, lane, |watch, k| {
        for v in 0..probes {
            watch.probe(&ProbeObs {
                ts_ms: T0 + k * STEP - 5_000,
                vehicle: v,
                direction: Direction::Up,
                stake_m: 1000.0 + (v as f64 * 7000.0 / probes as f64 + k as f64 * 700.0) % 7000.0,
                offset_m: 8.0,
                speed_kmh: 85.0,
            });
        }
    })
}

/// The corridor's state at tick `k`: `f(station, tick)` gives each
/// station's (occ, v, q).
fn state_at(ids: &[u32], f: &impl Fn(usize, i64) -> (f32, f32, f32), k: i64) -> CorridorState {
    let samples: Vec<StationSample> = (0..ids.len())
        .map(|st| {
            let (o, v, q) = f(st, k);
            sample(o, v, q)
        })
        .collect();
    let cell = Cell {
        from_m: 0.0,
        to_m: 0.0,
        speed_kmh: 100.0,
        flow_vph: 0.0,
        density_vpkm: 0.0,
        support: 1.0,
    };
    CorridorState {
        ts_ms: T0 + k * STEP,
        directions: vec![DirectionState {
            direction: Direction::Up,
            station_ids: ids.to_vec(),
            samples,
            stations: vec![cell.clone(); ids.len()],
            segments: vec![cell; ids.len() - 1],
        }],
    }
}

/// Normal traffic: 4,500 veh/h on three lanes at ~100 km/h, 15 % occupancy, with noise.
fn normal(st: usize, k: i64) -> (f32, f32, f32) {
    (
        15.0 + 2.0 * noise(k, st, 1),
        100.0 + 5.0 * noise(k, st, 2),
        4500.0 * (1.0 + 0.12 * noise(k, st, 3)),
    )
}

#[test]
fn a_blocked_lane_between_stations_is_found_fast_and_placed() {
    // From tick 40 a crash between stations 3 and 4 (4–5 km): a queue at 3, starvation at 4.
    let events = run(120, IncidentConfig::default(), |st, k| {
        if (40..90).contains(&k) {
            match st {
                3 => (35.0 + noise(k, st, 4), 25.0, 3000.0),
                4 => (6.0, 105.0, 2600.0 * (1.0 + 0.1 * noise(k, st, 5))),
                _ => normal(st, k),
            }
        } else {
            normal(st, k)
        }
    });
    let inc: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Incident)
        .collect();
    assert_eq!(inc.len(), 1, "{inc:?}");
    let e = inc[0];
    assert_eq!((e.from_m, e.to_m), (4000.0, 5000.0));
    let onset = T0 + 40 * STEP;
    assert!(
        e.detected_ms - onset <= 90_000,
        "time to detect {} s",
        (e.detected_ms - onset) / 1000
    );
    assert!(
        (e.start_ms - onset).abs() <= 60_000,
        "start estimate {} s off",
        (e.start_ms - onset) / 1000
    );
    let end = e.end_ms.expect("cleared");
    assert!(
        (T0 + 90 * STEP..=T0 + 96 * STEP).contains(&end),
        "end {}",
        (end - T0) / STEP
    );
}

#[test]
fn a_recurrent_bottleneck_is_not_an_incident() {
    // Every peak, a queue forms upstream of a merge at station 4; downstream the
    // merge discharges at capacity — as much as, or more than, before.
    let events = run(200, IncidentConfig::default(), |st, k| {
        if (60..160).contains(&k) {
            match st {
                0..=3 => (38.0 + noise(k, st, 4), 28.0, 3800.0),
                4 => (18.0, 90.0, 5600.0 * (1.0 + 0.05 * noise(k, st, 5))),
                _ => (17.0, 95.0, 5400.0 * (1.0 + 0.05 * noise(k, st, 6))),
            }
        } else {
            normal(st, k)
        }
    });
    assert!(
        events.iter().all(|e| e.kind != EventKind::Incident),
        "{events:?}"
    );
}

#[test]
fn noise_alone_raises_nothing() {
    let events = run(2000, IncidentConfig::default(), normal);
    assert!(events.is_empty(), "{} false alarms", events.len());
}

#[test]
fn california_like_spatial_difference_alone_is_not_enough() {
    // A stop-and-go wave travelling upstream: it hits station 3 first, then
    // station 2. While it sits at 2 and 3 is free again, the pair (2, 3) looks
    // like a queue above free flow — but 3 was slow minutes ago.
    let events = run(100, IncidentConfig::default(), |st, k| {
        if (st == 3 && (36..40).contains(&k)) || (st == 2 && (40..46).contains(&k)) {
            (40.0, 30.0, 4300.0)
        } else {
            normal(st, k)
        }
    });
    assert!(events.is_empty(), "{events:?}");
}

fn brain_with_camera(
    kind: CameraKind,
    stake_m: f64,
    confidence: f32,
) -> (Vec<Event>, Vec<zhilu_core::Action>) {
    let mut brain = Brain::new(road(), BrainConfig::default());
    let (mut ev, mut ac) = (Vec::new(), Vec::new());
    // The camera reports from tick 5 to 14; the run goes on to tick 45 (15 min after).
    for k in 0..45 {
        let c = CameraObs {
            ts_ms: T0 + k * STEP,
            camera: 0,
            kind,
            direction: Direction::Up,
            stake_m,
            lane: Some(2),
            confidence,
        };
        if (5..15).contains(&k) {
            brain.camera(&c);
        } else {
            brain.weather(&zhilu_core::WeatherObs {
                ts_ms: T0 + k * STEP,
                station: 0,
                visibility_m: None,
                surface_temp_c: None,
                air_temp_c: None,
                humidity_pct: None,
                surface_state: zhilu_core::SurfaceState::Unknown,
            });
        }
        let out = brain.drain();
        ev.extend(out.events);
        ac.extend(out.actions);
    }
    brain.finish();
    let out = brain.drain();
    ev.extend(out.events);
    ac.extend(out.actions);
    (ev, ac)
}

#[test]
fn a_confident_camera_raises_an_incident_and_its_plan() {
    let (events, actions) = brain_with_camera(CameraKind::StoppedVehicle, 5200.0, 0.9);
    let inc: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Incident)
        .collect();
    assert_eq!(inc.len(), 1, "{events:?}");
    assert_eq!(inc[0].from_m, 5200.0);
    assert!(inc[0].detected_ms <= T0 + 6 * STEP);
    // Upstream signs step down towards the incident: 60 at 4.5 km? It is upstream: 80, then 100.
    let lim = |id: &str| {
        actions.iter().filter(|a| a.device == id).find_map(|a| {
            if let Command::SpeedLimit(v) = a.command {
                v
            } else {
                None
            }
        })
    };
    assert_eq!(lim("S4500"), Some(80));
    assert_eq!(lim("S2500"), Some(100));
    assert!(
        actions.iter().any(|a| a.device == "M3000"
            && matches!(&a.command, Command::Message(t) if t.contains("事故")))
    );
    // A doubtful one does not.
    let (events, _) = brain_with_camera(CameraKind::StoppedVehicle, 5200.0, 0.4);
    assert!(events.iter().all(|e| e.kind != EventKind::Incident));
}

#[test]
fn fire_in_a_tunnel_runs_the_tunnel_plan() {
    let (events, actions) = brain_with_camera(CameraKind::Fire, 9500.0, 0.95);
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::Incident && e.severity == 5)
    );
    let plan = actions
        .iter()
        .find(|a| a.device == "TN")
        .expect("tunnel plan");
    assert_eq!(plan.command, Command::TunnelPlan(Some("TN-fire".into())));
    assert!(plan.reason.text().contains("通风"));
    let entry = actions
        .iter()
        .find(|a| a.device == "T1")
        .expect("entry upstream closed");
    assert!(matches!(
        entry.command,
        Command::Entry {
            state: zhilu_core::EntryState::Closed,
            ..
        }
    ));
    // Once the camera has been silent for 10 min the plan stands down.
    let last = actions
        .iter()
        .filter(|a| a.device == "TN")
        .next_back()
        .unwrap();
    assert_eq!(last.command, Command::TunnelPlan(None), "stood down");
    assert!(
        last.at_ms >= T0 + 34 * STEP && last.at_ms <= T0 + 36 * STEP,
        "{}",
        (last.at_ms - T0) / STEP
    );
}

/// Lane flows of normal traffic: 1,500 veh/h a lane with noise.
/// Where truck probes cover the carriageway (they would find a blocked lane
/// from the vehicles held up behind it), the lane test asks for more
/// evidence: the same emptied lane is still found, later.
#[test]
fn the_lane_test_is_surer_where_probes_cover_the_road() {
    let blocked = |st: usize, l: usize, k: i64| {
        if st == 4 && (40..80).contains(&k) {
            if l == 0 { 60.0 } else { 2200.0 }
        } else {
            lane_normal(st, l, k)
        }
    };
    let detected = |probes: u32| {
        let events = run_lanes_probed(100, IncidentConfig::default(), normal, blocked, probes);
        let inc: Vec<&Event> = events
            .iter()
            .filter(|e| e.kind == EventKind::Incident)
            .collect();
        assert_eq!(inc.len(), 1, "{probes} probes: {events:?}");
        assert_eq!(inc[0].rule, "incident.lane_blocked");
        inc[0].detected_ms
    };
    // 7 km of stations: 4 probes are 0.57 per km (covered), 2 are not.
    let (bare, sparse, covered) = (detected(0), detected(2), detected(4));
    assert_eq!(bare, sparse, "too few probes change nothing");
    assert!(covered > bare, "covered {covered} vs bare {bare}");
}

fn lane_normal(st: usize, l: usize, k: i64) -> f32 {
    1500.0 * (1.0 + 0.15 * noise(k, st * 3 + l, 9))
}

#[test]
fn a_blocked_lane_without_a_queue_is_found_from_the_lanes() {
    // Light enough demand that two lanes carry it all: no queue, no starvation,
    // but at station 4 lane 1 empties and lanes 2–3 take its vehicles.
    let events = run_lanes(100, IncidentConfig::default(), normal, |st, l, k| {
        if st == 4 && (40..80).contains(&k) {
            if l == 0 { 60.0 } else { 2200.0 }
        } else {
            lane_normal(st, l, k)
        }
    });
    let inc: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Incident)
        .collect();
    assert_eq!(inc.len(), 1, "{events:?}");
    assert_eq!(inc[0].rule, "incident.lane_blocked");
    assert_eq!(
        (inc[0].from_m, inc[0].to_m),
        (4000.0, 5300.0),
        "upstream of the station that lost the lane, and a little past it \
         (drivers leave a blocked lane before they reach the block)"
    );
    let mut no_ahead = IncidentConfig::default();
    no_ahead.clearing.lane_ahead_m = 0.0;
    let events = run_lanes(100, no_ahead, normal, |st, l, k| {
        if st == 4 && (40..80).contains(&k) {
            if l == 0 { 60.0 } else { 2200.0 }
        } else {
            lane_normal(st, l, k)
        }
    });
    let inc = incidents(&events);
    assert_eq!(
        (inc[0].from_m, inc[0].to_m),
        (4000.0, 5000.0),
        "without the rule"
    );
    assert!(
        inc[0].detected_ms - (T0 + 40 * STEP) <= 240_000,
        "{} s",
        (inc[0].detected_ms - T0 - 40 * STEP) / 1000
    );
}

#[test]
fn a_dead_loop_is_not_a_blocked_lane() {
    // Lane 1's loop at station 4 stops counting; nobody moved: the station
    // loses a third of its flow against its neighbours. Data quality's job.
    let events = run_lanes(100, IncidentConfig::default(), normal, |st, l, k| {
        if st == 4 && l == 0 && k >= 40 {
            0.0
        } else {
            lane_normal(st, l, k)
        }
    });
    assert!(
        events.iter().all(|e| e.kind != EventKind::Incident),
        "{events:?}"
    );
}

#[test]
fn bottleneck_causes_come_from_the_road_book() {
    use zhilu_core::incident::bottleneck_cause;
    let r = road();
    // Stations 1–8 km (indices 0–7); on-ramps at 2 km and 4.7 km.
    assert!(
        bottleneck_cause(&r, Direction::Up, 0, 1),
        "on-ramp at the downstream station"
    );
    assert!(
        bottleneck_cause(&r, Direction::Up, 3, 4),
        "merge at 4.7 km, between 4 and 5 km"
    );
    assert!(
        !bottleneck_cause(&r, Direction::Up, 4, 5),
        "5–6 km: nothing"
    );
    // A tunnel: only its entrance in the direction of travel, after the upstream station.
    let text = "[road]\nid = \"T\"\ntz = \"Z\"\ndirections = [\"up\", \"down\"]\ngeometry = [[0, 116.0, 39.0], [6000, 116.0, 39.054]]\nlanes = 3\nspeed_limit_kmh = 120\n\n[[detector]]\nid = \"A\"\ndirection = \"up\"\nstake_m = 1000\n\n[[detector]]\nid = \"B\"\ndirection = \"up\"\nstake_m = 2000\n\n[[detector]]\nid = \"C\"\ndirection = \"up\"\nstake_m = 3000\n\n[[detector]]\nid = \"Cd\"\ndirection = \"down\"\nstake_m = 3000\n\n[[detector]]\nid = \"Bd\"\ndirection = \"down\"\nstake_m = 2000\n\n[[tunnel]]\nid = \"TN\"\nfrom_m = 2000\nto_m = 4500\n";
    let t = RoadBook::from_toml(text, "ROAD.toml").unwrap();
    assert!(
        bottleneck_cause(&t, Direction::Up, 0, 1),
        "the portal at B queues traffic into A–B"
    );
    assert!(
        !bottleneck_cause(&t, Direction::Up, 1, 2),
        "B–C is inside the tunnel"
    );
    assert!(
        !bottleneck_cause(&t, Direction::Down, 3, 4),
        "down traffic enters at 4.5 km, upstream of Cd"
    );
}

// ---------------------------------------------------------------------------
// Starvation, lane deficit, diverge queues: table tests (fires / must not fire).
// ---------------------------------------------------------------------------

/// Incidents in `events`.
fn incidents(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Incident)
        .collect()
}

/// Free flow at ~100 km/h with station flow `q` (veh/h).
fn free(st: usize, k: i64, q: f32) -> (f32, f32, f32) {
    (
        q / 300.0 + noise(k, st, 1),
        100.0 + 4.0 * noise(k, st, 2),
        q * (1.0 + 0.06 * noise(k, st, 3)),
    )
}

#[test]
fn starvation_table() {
    struct Case {
        name: &'static str,
        /// (station, tick) → station flow (veh/h), all stations free-flowing.
        flow: fn(usize, i64) -> f32,
        /// Expected pair (from_m, to_m) and latest time to detect (s), or none.
        expect: Option<((f64, f64), i64)>,
    }
    let cases = [
        Case {
            name: "a block between 3 and 4 caps the flow: 4 starves, 3 still carries it",
            flow: |st, k| if st >= 4 && k >= 40 { 1800.0 } else { 4200.0 },
            // Starvation alone must hold 2 min (lulls between platoons do
            // not), on flows averaged over 90 s.
            expect: Some(((4000.0, 5000.0), 180)),
        },
        Case {
            name: "demand falls everywhere at once: not an incident",
            flow: |_, k| if k >= 40 { 1800.0 } else { 4200.0 },
            expect: None,
        },
        Case {
            name: "a drop that reaches each station a tick later (a platoon gap travelling down): not an incident",
            flow: |st, k| if k >= 40 + st as i64 { 2000.0 } else { 4200.0 },
            expect: None,
        },
        Case {
            name: "a mild drop (downstream at 80 % of normal): below the bar",
            flow: |st, k| if st >= 4 && k >= 40 { 3400.0 } else { 4200.0 },
            expect: None,
        },
    ];
    for c in cases {
        let f = c.flow;
        let events = run(120, IncidentConfig::default(), |st, k| {
            free(st, k, f(st, k))
        });
        let inc = incidents(&events);
        match c.expect {
            None => assert!(inc.is_empty(), "{}: {inc:?}", c.name),
            Some(((a, b), ttd)) => {
                assert_eq!(inc.len(), 1, "{}: {inc:?}", c.name);
                assert_eq!((inc[0].from_m, inc[0].to_m), (a, b), "{}", c.name);
                assert_eq!(inc[0].rule, "incident.starvation", "{}", c.name);
                let t = (inc[0].detected_ms - (T0 + 40 * STEP)) / 1000;
                assert!((0..=ttd).contains(&t), "{}: detected after {t} s", c.name);
                let s = (inc[0].start_ms - (T0 + 40 * STEP)) / 1000;
                assert!(s.abs() <= 90, "{}: start {s} s off", c.name);
            }
        }
    }
}

/// Lane flows (veh/h) that split `total` by `shares`, with count-like noise.
fn split(total: f32, shares: [f32; 3], st: usize, l: usize, k: i64) -> f32 {
    total * shares[l] * (1.0 + 0.12 * noise(k, st * 3 + l, 11))
}

#[test]
fn lane_deficit_table() {
    const NORMAL: [f32; 3] = [0.34, 0.34, 0.32];
    struct Case {
        name: &'static str,
        /// (station, lane, tick) → lane flow (veh/h).
        lanes: fn(usize, usize, i64) -> f32,
        /// Expected pair and latest time to detect (s), or none.
        expect: Option<((f64, f64), i64)>,
    }
    let cases = [
        Case {
            name: "outer lane blocked before station 4: its share halves, the others take the vehicles",
            lanes: |st, l, k| {
                let s = if st == 4 && k >= 40 {
                    [0.42, 0.42, 0.16]
                } else {
                    NORMAL
                };
                split(3000.0, s, st, l, k)
            },
            expect: Some(((4000.0, 5300.0), 300)),
        },
        Case {
            name: "the displaced vehicles stay over down to station 6: raised once, upstream of 4",
            lanes: |st, l, k| {
                let s = if st >= 4 && k >= 40 + st as i64 - 4 {
                    [0.44, 0.44, 0.12]
                } else {
                    NORMAL
                };
                split(3000.0, s, st, l, k)
            },
            expect: Some(((4000.0, 5300.0), 300)),
        },
        Case {
            name: "the deficit is clearer at 5 than at 4 (vehicles drift back late): still placed upstream of 4",
            lanes: |st, l, k| {
                let s = match st {
                    4 if k >= 40 => [0.41, 0.41, 0.18],
                    5 | 6 if k >= 40 => [0.46, 0.46, 0.08],
                    _ => NORMAL,
                };
                split(3000.0, s, st, l, k)
            },
            expect: Some(((4000.0, 5300.0), 400)),
        },
        Case {
            name: "shares drift slowly as demand falls (inner lane 34 % → 24 % over an hour): not an incident",
            lanes: |st, l, k| {
                let x = ((k - 20).clamp(0, 120) as f32) / 120.0;
                let s = [0.34 - 0.10 * x, 0.34 + 0.05 * x, 0.32 + 0.05 * x];
                split(3000.0 - 1000.0 * x, s, st, l, k)
            },
            expect: None,
        },
        Case {
            name: "a lane's share dips by a fifth (a truck platoon): not an incident",
            lanes: |st, l, k| {
                let s = if st == 4 && (40..60).contains(&k) {
                    [0.37, 0.37, 0.26]
                } else {
                    NORMAL
                };
                split(3000.0, s, st, l, k)
            },
            expect: None,
        },
        Case {
            name: "outer lane blocked before the first station (no station above it): from one spacing above to 300 m past it",
            lanes: |st, l, k| {
                let s = if st == 0 && k >= 40 {
                    [0.42, 0.42, 0.16]
                } else {
                    NORMAL
                };
                split(3000.0, s, st, l, k)
            },
            expect: Some(((0.0, 1300.0), 300)),
        },
        Case {
            name: "a dead loop on lane 3 of the first station: not an incident",
            lanes: |st, l, k| {
                if st == 0 && l == 2 && k >= 40 {
                    0.0
                } else {
                    split(3000.0, NORMAL, st, l, k)
                }
            },
            expect: None,
        },
        Case {
            name: "a dead loop on lane 3 of station 4 (counts nothing, the station loses a third): not an incident",
            lanes: |st, l, k| {
                if st == 4 && l == 2 && k >= 40 {
                    0.0
                } else {
                    split(3000.0, NORMAL, st, l, k)
                }
            },
            expect: None,
        },
    ];
    for c in cases {
        let f = c.lanes;
        // Station flows consistent with the lanes.
        let events = run_lanes(
            150,
            IncidentConfig::default(),
            |st, k| free(st, k, (0..3).map(|l| f(st, l, k)).sum()),
            f,
        );
        let inc = incidents(&events);
        match c.expect {
            None => assert!(inc.is_empty(), "{}: {inc:?}", c.name),
            Some(((a, b), ttd)) => {
                assert_eq!(inc.len(), 1, "{}: {inc:?}", c.name);
                assert_eq!((inc[0].from_m, inc[0].to_m), (a, b), "{}", c.name);
                assert_eq!(inc[0].rule, "incident.lane_blocked", "{}", c.name);
                let t = (inc[0].detected_ms - (T0 + 40 * STEP)) / 1000;
                assert!((0..=ttd).contains(&t), "{}: detected after {t} s", c.name);
                let s = (inc[0].start_ms - (T0 + 40 * STEP)) / 1000;
                assert!(s.abs() <= 120, "{}: start {s} s off", c.name);
            }
        }
    }
}

#[test]
fn a_slow_queue_above_an_off_ramp_is_not_an_incident() {
    // Every peak, traffic queueing for an off-ramp slows station 5 to 55–60 km/h
    // at high occupancy while station 6, past the ramp, runs free with less
    // flow (the exiting vehicles left). A stationary incident queue is slower.
    let events = run(200, IncidentConfig::default(), |st, k| {
        if (60..160).contains(&k) {
            match st {
                5 => (19.0 + noise(k, st, 4), 57.0 + 3.0 * noise(k, st, 5), 4000.0),
                6 => (10.0, 92.0, 3500.0 * (1.0 + 0.05 * noise(k, st, 6))),
                _ => normal(st, k),
            }
        } else {
            normal(st, k)
        }
    });
    assert!(incidents(&events).is_empty(), "{events:?}");
}

/// A probe report: (vehicle, tick, stake, metres right of the centre line, km/h).
type Probe = (u32, i64, f64, f64, f32);

/// Runs `ticks` ticks of `f` (each station's (occ, v, q) per tick) through
/// a detector with `cfg` on `road`, calling `before(watch, tick)` before each
/// tick closes (to feed probes, limits, weather); every event, open ones last.
fn drive(
    road: &RoadBook,
    cfg: IncidentConfig,
    ticks: i64,
    f: impl Fn(usize, i64) -> (f32, f32, f32),
    before: impl FnMut(&mut IncidentWatch, i64),
) -> Vec<Event> {
    drive_lanes(road, cfg, ticks, f, |_, _, _| f32::NAN, before)
}

/// As `drive`, with per-lane flows `lane(station, lane 0-based, tick)`.
fn drive_lanes(
    road: &RoadBook,
    cfg: IncidentConfig,
    ticks: i64,
    f: impl Fn(usize, i64) -> (f32, f32, f32),
    lane: impl Fn(usize, usize, i64) -> f32,
    mut before: impl FnMut(&mut IncidentWatch, i64),
) -> Vec<Event> {
    let ids: Vec<u32> = road.stations(Direction::Up).to_vec();
    let mut watch = IncidentWatch::new(cfg);
    let (mut seq, mut events) = (1u64, Vec::new());
    for k in 1..=ticks {
        before(&mut watch, k);
        let lanes: Vec<f32> = (0..ids.len() * 3).map(|i| lane(i / 3, i % 3, k)).collect();
        watch.close_tick(road, &state_at(&ids, &f, k), &lanes, &mut seq, &mut events);
    }
    events.extend(watch.open().cloned());
    events
}

/// As `run` (normal traffic everywhere unless `f` says otherwise), with
/// trucks' position reports fed before each tick closes.
fn run_probes(
    road: &RoadBook,
    f: impl Fn(usize, i64) -> (f32, f32, f32),
    probes: &[Probe],
) -> Vec<Event> {
    drive(road, IncidentConfig::default(), 60, f, |watch, k| {
        for &(vehicle, _, stake_m, offset_m, speed_kmh) in probes.iter().filter(|p| p.1 == k) {
            watch.probe(&ProbeObs {
                ts_ms: T0 + k * STEP - 10_000,
                vehicle,
                direction: Direction::Up,
                stake_m,
                offset_m,
                speed_kmh,
            });
        }
    })
}

/// Thin traffic: 2,000 veh/h on three lanes (667 per lane) at ~100 km/h.
fn thin(st: usize, k: i64) -> (f32, f32, f32) {
    free(st, k, 2000.0)
}

/// Two trucks cruising at ~89 km/h that brake to ~60 near 5.45–5.5 km and
/// then drive on (or, with `after` below the dip, do not get past).
fn dips(at: f64, drop: f32, after: f32) -> Vec<Probe> {
    vec![
        (1, 29, at - 550.0, 8.0, 89.0),
        (1, 30, at, 8.0, 89.0 - drop),
        (1, 31, at + 650.0, 8.0, after),
        (2, 30, at - 500.0, 9.0, 90.0),
        (2, 31, at + 50.0, 9.0, 90.0 - drop),
        (2, 32, at + 700.0, 9.0, after + 1.0),
    ]
}

/// The whole corridor in a jam the whole time.
fn jam(st: usize, k: i64) -> (f32, f32, f32) {
    (35.0, 35.0 + 3.0 * noise(k, st, 2), 3000.0)
}

/// Light traffic (2,500 veh/h, below the starvation test's minimum), the
/// station below the on-ramp at 4.7 km (5 km) down to 55 % of it from tick 22.
fn starving_below_merge(st: usize, k: i64) -> (f32, f32, f32) {
    let (o, v, _) = normal(st, k);
    let q = 2500.0 * (1.0 + 0.12 * noise(k, st, 3));
    if st == 4 && k >= 22 {
        (o * 0.55, v, q * 0.55)
    } else {
        (o, v, q)
    }
}

/// Trucks' position reports as evidence: vehicles held up where the loops
/// around them run free are queueing behind something (fires), unless they
/// are one vehicle, in a jam, on a ramp, at a service area or merging.
#[test]
fn probe_table() {
    let mut text = String::from(
        "[road]\nid = \"P\"\ntz = \"+08:00\"\ndirections = [\"up\"]\ngeometry = [[0, 116.0, 39.0], [12000, 116.0, 39.108]]\nlanes = 3\nspeed_limit_kmh = 120\n",
    );
    for i in 0..8 {
        text += &format!(
            "\n[[detector]]\nid = \"D{i}\"\ndirection = \"up\"\nstake_m = {}\nlanes = 3\n",
            1000 + i * 1000
        );
    }
    text +=
        "\n[[interchange]]\nid = \"TM\"\nname = \"汇入\"\nstake_m = 4700\ndirections = [\"up\"]\n";
    text += "\n[[service_area]]\nid = \"SA\"\nname = \"服务区\"\nstake_m = 7300\n";
    let road = RoadBook::from_toml(&text, "ROAD.toml").unwrap();
    type Case = (
        &'static str,
        fn(usize, i64) -> (f32, f32, f32),
        Vec<Probe>,
        Option<(f64, f64)>,
    );
    let cases: Vec<Case> = vec![
        (
            "two trucks held up 200 m apart in free flow: a block just past them",
            normal,
            vec![(1, 30, 5400.0, 8.0, 20.0), (2, 31, 5600.0, 9.0, 12.0)],
            Some((5400.0, 5700.0)),
        ),
        (
            "…and in the other lane order (the second report upstream of the first)",
            normal,
            vec![(1, 30, 5650.0, 8.0, 5.0), (2, 32, 5500.0, 5.0, 35.0)],
            Some((5500.0, 5750.0)),
        ),
        (
            "one truck stopped (a breakdown on the shoulder)",
            normal,
            (30..40).map(|k| (1, k, 5500.0, 12.0, 0.0)).collect(),
            None,
        ),
        (
            "one truck held up for a report, then on its way past the spot: something held it up",
            normal,
            vec![(1, 30, 5400.0, 8.0, 15.0), (1, 31, 6100.0, 8.0, 75.0)],
            Some((5400.0, 5500.0)),
        ),
        (
            "one truck stopped for minutes, then on its way (a breakdown, a rest)",
            normal,
            vec![
                (1, 30, 5400.0, 12.0, 0.0),
                (1, 31, 5400.0, 12.0, 0.0),
                (1, 32, 5400.0, 12.0, 0.0),
                (1, 33, 5900.0, 12.0, 75.0),
            ],
            None,
        ),
        (
            "one truck slow, then slowly on (a crawl, not a hold-up)",
            normal,
            vec![(1, 30, 5400.0, 8.0, 15.0), (1, 31, 5800.0, 8.0, 45.0)],
            None,
        ),
        (
            "two trucks slow but not slow enough (above 40 km/h)",
            normal,
            vec![(1, 30, 5400.0, 8.0, 55.0), (2, 31, 5600.0, 9.0, 48.0)],
            None,
        ),
        (
            "two trucks slow 5 min apart",
            normal,
            vec![(1, 30, 5400.0, 8.0, 20.0), (2, 41, 5600.0, 9.0, 12.0)],
            None,
        ),
        (
            "two trucks slow 2 km apart",
            normal,
            vec![(1, 30, 3400.0, 8.0, 20.0), (2, 31, 5600.0, 9.0, 12.0)],
            None,
        ),
        (
            "two trucks slow in a jam the loops see",
            jam,
            vec![(1, 30, 5400.0, 8.0, 20.0), (2, 31, 5600.0, 9.0, 12.0)],
            None,
        ),
        (
            "two trucks on a ramp beside the carriageway (30 m off)",
            normal,
            vec![(1, 30, 5400.0, 30.0, 20.0), (2, 31, 5600.0, 31.0, 12.0)],
            None,
        ),
        (
            "two trucks entering a service area",
            normal,
            vec![(1, 30, 7000.0, 14.0, 20.0), (2, 31, 7150.0, 15.0, 12.0)],
            None,
        ),
        (
            "three trucks slow in an on-ramp's merge, the station below carrying its flow: the daily jam",
            normal,
            vec![
                (1, 30, 4750.0, 12.0, 25.0),
                (2, 31, 4850.0, 12.0, 30.0),
                (3, 31, 4950.0, 12.0, 20.0),
            ],
            None,
        ),
        (
            "three trucks held up in the merge while the station below starves: something blocks it",
            starving_below_merge,
            vec![
                (1, 31, 4750.0, 12.0, 25.0),
                (2, 32, 4850.0, 12.0, 30.0),
                (3, 33, 4950.0, 8.0, 10.0),
            ],
            Some((4750.0, 5050.0)),
        ),
        (
            "two trucks held up in the merge while the station below starves: not enough there",
            starving_below_merge,
            vec![(1, 30, 4750.0, 12.0, 25.0), (2, 31, 4850.0, 12.0, 30.0)],
            None,
        ),
        (
            "thin traffic, two trucks brake hard from cruising and drive on: something in their lane",
            thin,
            dips(5450.0, 28.0, 88.0),
            Some((5450.0, 5600.0)),
        ),
        (
            "the same dips in dense traffic (1,500 veh/h per lane): everybody brakes there",
            normal,
            dips(5450.0, 28.0, 88.0),
            None,
        ),
        (
            "thin traffic, two trucks brake and stay slow (a lowered limit, a ramp ahead)",
            thin,
            dips(5450.0, 28.0, 62.0),
            None,
        ),
        (
            "thin traffic, two trucks ease off by 15 km/h",
            thin,
            dips(5450.0, 15.0, 88.0),
            None,
        ),
        (
            "thin traffic, two trucks brake beside the service area and drive on: not turning in",
            thin,
            dips(7200.0, 28.0, 88.0),
            Some((7200.0, 7350.0)),
        ),
        (
            "thin traffic, two trucks held up 200 m before an on-ramp's nose: no queue backs up there",
            thin,
            vec![(1, 30, 4500.0, 8.0, 20.0), (2, 31, 4550.0, 9.0, 12.0)],
            Some((4500.0, 4650.0)),
        ),
        (
            "the same in dense traffic: the merge's own queue",
            normal,
            vec![(1, 30, 4500.0, 8.0, 20.0), (2, 31, 4550.0, 9.0, 12.0)],
            None,
        ),
        (
            "no trucks slow",
            normal,
            vec![(1, 30, 5400.0, 8.0, 88.0), (2, 31, 5600.0, 9.0, 85.0)],
            None,
        ),
    ];
    for (name, f, probes, expect) in cases {
        let events = run_probes(&road, f, &probes);
        let found: Vec<&Event> = events
            .iter()
            .filter(|e| e.kind == EventKind::Incident && e.rule == "incident.probe_slowdown")
            .collect();
        match expect {
            Some((from, to)) => {
                assert_eq!(found.len(), 1, "{name}: {events:?}");
                let e = found[0];
                assert!(
                    (e.from_m - from).abs() <= 1.0 && (e.to_m - to).abs() <= 1.0,
                    "{name}: {e:?}"
                );
                let last = probes.iter().map(|p| p.1).max().unwrap();
                assert_eq!(
                    e.detected_ms,
                    T0 + last * STEP,
                    "{name}: raised at the tick of the last report"
                );
                let first = probes.iter().map(|p| p.1).min().unwrap();
                assert!(
                    e.start_ms <= T0 + first * STEP - 10_000,
                    "{name}: starts before the first report"
                );
            }
            None => assert!(found.is_empty(), "{name}: {found:?}"),
        }
        // Nothing else fires on these series.
        assert!(
            events.iter().all(|e| e.rule == "incident.probe_slowdown"),
            "{name}: {events:?}"
        );
    }
}

/// Drivers obeying a lowered limit (a fog plan's 40 km/h on the signs
/// above stations 1–6) look like a queue ending at the next station, where the
/// limit ends; told the limits in force, the queue test wants the traffic
/// well below them. A real queue under the same limit is still found.
#[test]
fn slow_traffic_under_a_lowered_limit_is_not_a_queue() {
    let road = road();
    let ids: Vec<u32> = road.stations(Direction::Up).to_vec();
    // Stations 1–6 at 38 km/h from tick 30 (obeying 40), or at 12 (a queue);
    // station 7 free (the pair 6–7 has no on-ramp, lane drop or portal),
    // carrying its full flow or starved to `below` of it.
    let run = |v_up: f32, limit: Option<f32>, below: f32, cfg: IncidentConfig| {
        let f = move |st: usize, k: i64| {
            if st <= 5 && k >= 30 {
                (30.0 + noise(k, st, 1), v_up + noise(k, st, 2), 4000.0)
            } else if st == 6 && k >= 30 {
                let (o, v, q) = normal(st, k);
                (o * below, v, q * below)
            } else {
                normal(st, k)
            }
        };
        let limits: Vec<Vec<f32>> = vec![
            (0..ids.len())
                .map(|st| match limit {
                    Some(l) if st <= 5 => l,
                    _ => 120.0,
                })
                .collect(),
        ];
        drive(&road, cfg, 60, f, |watch, k| {
            if k >= 30 {
                watch.set_limits(&limits);
            }
        })
        .into_iter()
        .filter(|e| e.kind == EventKind::Incident)
        .map(|e| (e.rule, e.from_m))
        .collect::<Vec<_>>()
    };
    let queue = vec![("incident.queue_starvation", 6000.0)];
    let cfg = IncidentConfig::default;
    assert_eq!(
        run(38.0, None, 1.0, cfg()),
        queue,
        "not told the limit: looks like a queue"
    );
    assert_eq!(
        run(38.0, Some(40.0), 1.0, cfg()),
        vec![],
        "obeying the 40 on the signs"
    );
    // A queue crawling under a plan's limit, the station below carrying
    // its full flow: the plan's own queue (issue 15: the fog plan's 20 km/h
    // built a queue that was raised as an incident), a known cause.
    let mut plans_not_causes = cfg();
    plans_not_causes.limits.plans_are_causes = false;
    assert_eq!(
        run(12.0, Some(40.0), 1.0, plans_not_causes),
        queue,
        "crawling under the 40, plans not taken as causes: a queue"
    );
    assert_eq!(
        run(12.0, Some(40.0), 1.0, cfg()),
        vec![],
        "crawling under the plan's 40 with the flow below intact: the plan's queue"
    );
    assert_eq!(
        run(12.0, Some(40.0), 0.5, cfg()),
        queue,
        "crawling under the 40 with the station below starved: a queue behind a block"
    );
}

/// Drivers slow in fog; past the zone's end they are free again — the
/// pattern of a queue behind a block. In a fog or ice zone the queue test
/// wants the station below to starve too (as below a merge).
#[test]
fn slow_traffic_leaving_a_fog_zone_is_not_a_queue_unless_the_flow_starves() {
    let road = road();
    let fog = Event {
        seq: 99,
        kind: EventKind::Fog,
        direction: None,
        from_m: 2000.0,
        to_m: 6500.0,
        start_ms: T0,
        detected_ms: T0,
        end_ms: None,
        severity: 3,
        rule: "weather.fog_band",
        detectors: Vec::new(),
        detail: zhilu_core::EventDetail::None,
    };
    let run = |in_fog: bool, below_flow: f32| {
        let f = move |st: usize, k: i64| {
            if st <= 5 && k >= 30 {
                (30.0 + noise(k, st, 1), 38.0 + noise(k, st, 2), 4000.0)
            } else if st == 6 && k >= 30 {
                let (o, v, q) = normal(st, k);
                (o, v, q * below_flow)
            } else {
                normal(st, k)
            }
        };
        drive(&road, IncidentConfig::default(), 60, f, |watch, k| {
            if in_fog && k >= 25 {
                watch.set_weather(std::iter::once(&fog));
            }
        })
        .into_iter()
        .filter(|e| e.kind == EventKind::Incident)
        .map(|e| (e.rule, e.from_m))
        .collect::<Vec<_>>()
    };
    let queue = vec![("incident.queue_starvation", 6000.0)];
    assert_eq!(run(false, 1.0), queue, "no fog known: looks like a queue");
    assert_eq!(run(true, 1.0), vec![], "leaving the fog");
    assert_eq!(
        run(true, 0.5),
        queue,
        "in fog, and the station below starves"
    );
}

/// A queue above a station that was slow a minute ago is a wave that
/// passed — unless that station now runs free with a fraction of its flow:
/// a wave leaves it discharging near capacity, a block starves it.
#[test]
fn a_starved_station_below_a_queue_is_not_a_passing_wave() {
    let road = road();
    // Pair 5–6 (6–7 km: no ramp, lane drop or portal). Station 6 slow at
    // ticks 28–29, then free carrying `below` of its flow; station 5 queued
    // from tick 30.
    let run = |below: f32| {
        let f = move |st: usize, k: i64| match (st, k) {
            (6, 28..=29) => (30.0, 45.0, 4000.0),
            (6, 30..) => {
                let (o, v, q) = normal(st, k);
                (o * below, v, q * below)
            }
            (5, 30..) => (40.0 + noise(k, st, 1), 15.0 + noise(k, st, 2), 2500.0),
            _ => normal(st, k),
        };
        incidents(&drive(&road, IncidentConfig::default(), 36, f, |_, _| {}))
            .iter()
            .map(|e| (e.from_m, (e.detected_ms - T0) / STEP))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run(1.0),
        vec![],
        "the station below carries its flow: a wave"
    );
    let starved = run(0.3);
    assert_eq!(starved.len(), 1, "{starved:?}");
    assert_eq!(starved[0].0, 6000.0);
    assert!(
        starved[0].1 <= 32,
        "raised within the wave memory: {starved:?}"
    );
}

/// A queue needs two ticks in a row, unless the station below starves at
/// the same time: two independent signs.
#[test]
fn a_queue_over_a_starved_station_is_raised_at_its_first_tick() {
    let road = road();
    let detected = |below: f32| {
        let f = move |st: usize, k: i64| match (st, k) {
            (6, 30..) => {
                let (o, v, q) = normal(st, k);
                (o * below, v, q * below)
            }
            (5, 30..) => (40.0 + noise(k, st, 1), 15.0 + noise(k, st, 2), 2500.0),
            _ => normal(st, k),
        };
        let events = drive(&road, IncidentConfig::default(), 40, f, |_, _| {});
        let found = incidents(&events);
        assert_eq!(found.len(), 1, "below {below}: {events:?}");
        assert_eq!(found[0].rule, "incident.queue_starvation");
        (found[0].detected_ms - T0) / STEP
    };
    let (starved, carrying) = (detected(0.2), detected(0.85));
    assert!(
        starved < carrying,
        "starved below: tick {starved}; carrying its flow: tick {carrying}"
    );
}

/// An incident's plan lowers the limits around it, and under them the queue
/// behind it looks like traffic obeying them: that is not the incident
/// clearing. It clears when the stations no longer differ.
#[test]
fn an_incident_does_not_clear_because_its_own_plan_slowed_the_traffic() {
    let road = road();
    let ids: Vec<u32> = road.stations(Direction::Up).to_vec();
    let limits: Vec<Vec<f32>> = vec![
        (0..ids.len())
            .map(|st| if st <= 6 { 40.0 } else { 120.0 })
            .collect(),
    ];
    // A queue at station 5 over a starved station 6 from tick 30; from tick
    // 34 the plan's 40 km/h is on the signs: the queue crawls at ~35 km/h,
    // the station below at ~45. With `clears`, from tick 45 both run alike.
    let run = |clears: bool| {
        let f = move |st: usize, k: i64| match (st, k) {
            (5 | 6, 45..) if clears => (16.0 + noise(k, st, 1), 40.0 + noise(k, st, 2), 3600.0),
            (5, 30..=33) => (40.0 + noise(k, st, 1), 15.0 + noise(k, st, 2), 2500.0),
            (5, 34..) => (30.0 + noise(k, st, 1), 35.0 + noise(k, st, 2), 3000.0),
            (6, 30..=33) => (5.0, 100.0, 1200.0),
            (6, 34..) => (18.0 + noise(k, st, 1), 45.0 + noise(k, st, 2), 3000.0),
            _ => normal(st, k),
        };
        drive(&road, IncidentConfig::default(), 70, f, |watch, k| {
            if k >= 34 {
                watch.set_limits(&limits);
            }
        })
    };
    let held = run(false);
    let found = incidents(&held);
    assert_eq!(found.len(), 1, "{held:?}");
    assert_eq!(found[0].end_ms, None, "still open: {held:?}");
    let cleared = run(true);
    let found = incidents(&cleared);
    assert_eq!(found.len(), 1, "{cleared:?}");
    assert!(
        found[0].end_ms.is_some_and(|t| t >= T0 + 45 * STEP),
        "cleared once the stations ran alike: {cleared:?}"
    );
}

/// A plan's limit raised a minute ago: the platoon it held is still slow
/// and takes minutes to speed up. That is not a queue behind a block.
#[test]
fn traffic_speeding_up_after_a_limit_is_raised_is_not_a_queue() {
    let road = road();
    let ids: Vec<u32> = road.stations(Direction::Up).to_vec();
    // 40 km/h on the signs above stations 1–5 from tick 20 to 39; traffic
    // there at 38 km/h until tick 42, then free. Station 6 free throughout.
    let f = |st: usize, k: i64| {
        if (1..=5).contains(&st) && (20..=42).contains(&k) {
            (30.0 + noise(k, st, 1), 38.0 + noise(k, st, 2), 4000.0)
        } else {
            normal(st, k)
        }
    };
    let run = |memory_s: u32| {
        let mut cfg = IncidentConfig::default();
        cfg.limits.memory_s = memory_s;
        let limited: Vec<Vec<f32>> = vec![
            (0..ids.len())
                .map(|st| if (1..=5).contains(&st) { 40.0 } else { 120.0 })
                .collect(),
        ];
        let released: Vec<Vec<f32>> = vec![vec![120.0; ids.len()]];
        let events = drive(&road, cfg, 60, f, |watch, k| {
            if k == 20 {
                watch.set_limits(&limited);
            } else if k == 40 {
                watch.set_limits(&released);
            }
        });
        incidents(&events).len()
    };
    assert_eq!(
        run(0),
        1,
        "forgetting the limit at once: the slow platoon looks like a queue"
    );
    assert_eq!(run(IncidentConfig::default().limits.memory_s), 0);
}

/// Below a daily jam (here the on-ramp merging at 4.7 km, between stations
/// 3 and 4) the station discharges at capacity and its counts swing by
/// their noise; a block starves it beyond that noise.
#[test]
fn below_a_daily_jam_the_starvation_must_beat_the_count_noise() {
    let road = road();
    let run = |below: f32, sigma: f32| {
        let f = move |st: usize, k: i64| match (st, k) {
            (3, 30..) => (38.0 + noise(k, st, 1), 25.0 + noise(k, st, 2), 3800.0),
            (4, 30..=35) => (11.0, 98.0, 4500.0 * below),
            _ => normal(st, k),
        };
        let mut cfg = IncidentConfig::default();
        cfg.queue.cause_sigma = sigma;
        incidents(&drive(&road, cfg, 40, f, |_, _| {})).len()
    };
    // 90 s of counts at 4,500 veh/h: 112 expected, 83 seen at 74 % — less
    // than 3 standard deviations short.
    assert_eq!(
        run(0.74, 0.0),
        1,
        "without the noise test a dip to 74 % is starvation"
    );
    assert_eq!(run(0.74, 3.0), 0, "a dip within the noise");
    assert_eq!(run(0.45, 3.0), 1, "starved well beyond the noise");
}

/// When a plan changes the limits, drivers change lanes too (for a while
/// the inner lane carries less): after a change the lane test asks for
/// more evidence. A lane that empties is still found.
#[test]
fn lane_use_after_the_limits_change_is_not_a_blocked_lane() {
    let road = road();
    let ids: Vec<u32> = road.stations(Direction::Up).to_vec();
    let lowered: Vec<Vec<f32>> = vec![
        (0..ids.len())
            .map(|st| if st <= 4 { 80.0 } else { 120.0 })
            .collect(),
    ];
    let posted: Vec<Vec<f32>> = vec![vec![120.0; ids.len()]];
    let run = |settle_s: u32, lane0: f32| {
        let mut cfg = IncidentConfig::default();
        cfg.lane.settle_s = settle_s;
        // From tick 40, station 4's lane 1 carries `lane0` and lanes 2–3
        // the rest of the 4,500 veh/h.
        let lane = move |st: usize, l: usize, k: i64| {
            if st == 4 && (40..70).contains(&k) {
                if l == 0 {
                    lane0
                } else {
                    (4500.0 - lane0) / 2.0
                }
            } else {
                lane_normal(st, l, k)
            }
        };
        let events = drive_lanes(&road, cfg, 80, normal, lane, |watch, k| {
            watch.set_limits(if k >= 40 { &lowered } else { &posted });
        });
        incidents(&events).len()
    };
    let shift = 900.0;
    assert_eq!(
        run(0, shift),
        1,
        "without settling, the shift looks like a block"
    );
    let settle = IncidentConfig::default().lane.settle_s;
    assert_eq!(
        run(settle, shift),
        0,
        "lanes settling after the limits changed"
    );
    assert_eq!(
        run(settle, 60.0),
        1,
        "a lane that empties is a block all the same"
    );
}

/// A queue raised where the road book names no cause, which then ended with
/// the station below discharging it in full all along, is a jam this
/// stretch makes: the next time it needs the station below to starve.
#[test]
fn a_queue_discharged_in_full_teaches_the_stretch_its_jam() {
    let road = road();
    // Pair 5–6: a queue at station 5 at ticks 30–45 and again from tick 90;
    // station 6 discharging 4,800 veh/h (1,600 per lane), or starved the
    // second time when `starved`.
    let run = |starved: bool| {
        let f = move |st: usize, k: i64| {
            let queued = (30..=45).contains(&k) || k >= 90;
            match st {
                5 if queued => (40.0 + noise(k, st, 1), 15.0 + noise(k, st, 2), 3800.0),
                6 if k >= 90 && starved => (6.0, 100.0, 1800.0),
                6 if queued => (16.0, 98.0, 4800.0),
                _ => normal(st, k),
            }
        };
        let events = drive(&road, IncidentConfig::default(), 110, f, |_, _| {});
        incidents(&events)
            .iter()
            .map(|e| (e.from_m, (e.detected_ms - T0) / STEP))
            .collect::<Vec<_>>()
    };
    let once = run(false);
    assert_eq!(once.len(), 1, "raised once, then known: {once:?}");
    assert!(once[0].1 < 45, "{once:?}");
    let twice = run(true);
    assert_eq!(twice.len(), 2, "starved below the second time: {twice:?}");
    assert!(twice[1].1 >= 90, "{twice:?}");
}

/// Trucks keeping to a lowered limit (a fog plan's 40 km/h on the signs)
/// are not held up: under it they must be well below the limit, as the
/// queue test asks of the loops.
#[test]
fn trucks_keeping_to_a_lowered_limit_are_not_held_up() {
    let road = road();
    let ids: Vec<u32> = road.stations(Direction::Up).to_vec();
    let lowered: Vec<Vec<f32>> = vec![
        (0..ids.len())
            .map(|st| if st <= 6 { 40.0 } else { 120.0 })
            .collect(),
    ];
    let run = |limit: bool, speeds: [f32; 2]| {
        let events = drive(&road, IncidentConfig::default(), 40, normal, |watch, k| {
            if limit {
                watch.set_limits(&lowered);
            }
            for (v, (tick, stake)) in [(30, 5400.0), (31, 5600.0)].into_iter().enumerate() {
                if k == tick {
                    watch.probe(&ProbeObs {
                        ts_ms: T0 + k * STEP - 10_000,
                        vehicle: v as u32,
                        direction: Direction::Up,
                        stake_m: stake,
                        offset_m: 8.0,
                        speed_kmh: speeds[v],
                    });
                }
            }
        });
        incidents(&events).len()
    };
    assert_eq!(run(false, [30.0, 25.0]), 1, "no limit known: held up");
    assert_eq!(run(true, [30.0, 25.0]), 0, "keeping to the 40 on the signs");
    assert_eq!(run(true, [12.0, 8.0]), 1, "crawling under the 40: held up");
}

/// Each test can be switched off and measured alone: the case it alone
/// finds is missed with it off, and found with it on.
#[test]
fn each_test_can_be_switched_off() {
    // A queue at station 5 over a free station 6 that still carries 85 %
    // of its flow: only the queue test sees it.
    let queue_only = |st: usize, k: i64| match (st, k) {
        (5, 40..) => (35.0 + noise(k, st, 4), 25.0, 3800.0),
        (6, 40..) => (8.0, 100.0, 3825.0),
        _ => normal(st, k),
    };
    // Station 6 starves while station 5 runs free with its full flow.
    let starve_only = |st: usize, k: i64| match (st, k) {
        (6, 40..) => (6.0, 105.0, 1500.0),
        _ => normal(st, k),
    };
    // Station 6's lane 1 empties; its vehicles move to lanes 2–3.
    let lane_only = |st: usize, l: usize, k: i64| {
        if st == 6 && (40..80).contains(&k) {
            if l == 0 { 60.0 } else { 2200.0 }
        } else {
            lane_normal(st, l, k)
        }
    };
    type Switch = fn(&mut IncidentConfig, bool);
    let cases: [(&str, Switch); 3] = [
        ("queue", |c, on| c.queue.enabled = on),
        ("starvation", |c, on| c.starvation.enabled = on),
        ("lane", |c, on| c.lane.enabled = on),
    ];
    for (name, switch) in cases {
        for on in [true, false] {
            let mut cfg = IncidentConfig::default();
            switch(&mut cfg, on);
            let events = match name {
                "queue" => run(100, cfg, queue_only),
                "starvation" => run(100, cfg, starve_only),
                _ => run_lanes(100, cfg, normal, lane_only),
            };
            assert_eq!(
                incidents(&events).len(),
                on as usize,
                "{name} test {}: {events:?}",
                if on { "on" } else { "off" }
            );
        }
    }
}

/// As `drive_lanes`, with ticks `step_ms` apart.
fn drive_step(
    cfg: IncidentConfig,
    step_ms: i64,
    ticks: i64,
    f: impl Fn(usize, i64) -> (f32, f32, f32),
    lane: impl Fn(usize, usize, i64) -> f32,
) -> Vec<Event> {
    let road = road();
    let ids: Vec<u32> = road.stations(Direction::Up).to_vec();
    let mut watch = IncidentWatch::new(cfg);
    let (mut seq, mut events) = (1u64, Vec::new());
    for k in 1..=ticks {
        let lanes: Vec<f32> = (0..ids.len() * 3).map(|i| lane(i / 3, i % 3, k)).collect();
        let mut state = state_at(&ids, &f, k);
        state.ts_ms = T0 + k * step_ms;
        watch.close_tick(&road, &state, &lanes, &mut seq, &mut events);
    }
    events.extend(watch.open().cloned());
    events
}

/// The persistence is a time of data: a queue needs 60 s of it — two
/// 30-s ticks, three 20-s ones, one 60-s one (a 60-s count holds the
/// evidence of two 30-s ones).
#[test]
fn persistence_follows_the_data_interval() {
    // A queue at station 5 over a free station 6 carrying 85 % of its flow
    // (no starvation: the queue test alone) from tick 40.
    let f = |st: usize, k: i64| match (st, k) {
        (5, 40..) => (35.0 + noise(k, st, 4), 25.0, 3800.0),
        (6, 40..) => (8.0, 100.0, 3825.0),
        _ => normal(st, k),
    };
    let ticks_to_detect = |step_s: i64, persist_ticks: u32| {
        let mut cfg = IncidentConfig::default();
        cfg.persist.ticks = persist_ticks;
        let events = drive_step(cfg, step_s * 1000, 80, f, |_, _, _| f32::NAN);
        let inc = incidents(&events);
        assert_eq!(inc.len(), 1, "{events:?}");
        (inc[0].detected_ms - T0) / (step_s * 1000) - 40 + 1
    };
    // (The speed is averaged over the last minute: at 30 s the queue shows
    // from its second tick, at 20 s from its third.)
    let ticks = IncidentConfig::default().persist.ticks;
    assert_eq!(ticks_to_detect(60, ticks), 1, "60-s data: one tick");
    assert_eq!(ticks_to_detect(30, ticks), 1 + 2, "30-s data: two ticks");
    assert_eq!(ticks_to_detect(20, ticks), 2 + 3, "20-s data: three ticks");
    assert_eq!(
        ticks_to_detect(60, 2),
        2,
        "two ticks fixed: 60-s data waits two minutes"
    );
}

/// An incident stays open while the road is blocked: the station below
/// still starves even when no test fires (here the upstream flow eased
/// below the starvation test's hold, as demand ebbs), and it clears only
/// after calm data of `calm_s`, whatever the interval.
#[test]
fn an_incident_stays_open_while_the_station_below_starves() {
    // Station 6 starved to 1,500 veh/h from tick 40 to 99; station 5 at
    // its full 4,500 until tick 50, then at 3,600 (below 85 % of normal:
    // the starvation test stops, the starvation does not).
    let f = |st: usize, k: i64| match (st, k) {
        (6, 40..=99) => (6.0, 105.0, 1500.0),
        (5, 51..=99) => (13.0, 100.0, 3600.0),
        _ => normal(st, k),
    };
    let end_tick = |cfg: IncidentConfig| {
        let events = run(140, cfg, f);
        let inc = incidents(&events);
        assert!(!inc.is_empty(), "{events:?}");
        (inc[0].end_ms.expect("ended") - T0) / STEP
    };
    let mut one_quiet = IncidentConfig::default();
    one_quiet.clearing.starved_ratio = 0.0;
    assert!(
        end_tick(one_quiet) < 60,
        "without the rule it ends while the station below starves"
    );
    let end = end_tick(IncidentConfig::default());
    assert!(
        (100..=101).contains(&end),
        "ends when the starvation ends: tick {end}"
    );
}

/// The zone covers the site: raised by the lane test one pair too far
/// down (the lane is not short at station 5), while station 5 runs free
/// but starved — the block is above it, and the zone reaches up to
/// station 4.
#[test]
fn the_zone_reaches_up_over_a_starved_station() {
    // Light traffic, 2,800 veh/h (below the starvation test's 3,000): a
    // block between stations 4 and 5 from tick 40 starves station 5 to
    // 1,500; at station 6 lane 1 carries 60 and lanes 2–3 920 each.
    let f = |st: usize, k: i64| match (st, k) {
        (5, 40..) => free(st, k, 1500.0),
        _ => free(st, k, 2800.0),
    };
    let lane = |st: usize, l: usize, k: i64| {
        if st == 6 && k >= 40 {
            if l == 0 { 60.0 } else { 920.0 }
        } else {
            933.0 * (1.0 + 0.15 * noise(k, st * 3 + l, 9))
        }
    };
    let zone = |zone_up_max: usize| {
        let mut cfg = IncidentConfig::default();
        cfg.clearing.zone_up_max = zone_up_max;
        let events = run_lanes(90, cfg, f, lane);
        let inc = incidents(&events);
        assert_eq!(inc.len(), 1, "{events:?}");
        (inc[0].rule, inc[0].from_m, inc[0].to_m)
    };
    assert_eq!(
        zone(0),
        ("incident.lane_blocked", 6000.0, 7300.0),
        "without the rule: downstream of the site"
    );
    assert_eq!(
        zone(IncidentConfig::default().clearing.zone_up_max),
        ("incident.lane_blocked", 5000.0, 7300.0),
        "from station 4, above the starved station 5"
    );
}

/// A lane-blocked incident stays open while the lane stays short at the
/// station below, though the lane test itself stops firing (here the
/// station's total runs above its neighbours', as light traffic's counts
/// swing, so the test cannot tell the block from a chattering loop).
#[test]
fn a_lane_block_stays_open_while_the_lane_stays_short() {
    // Station 4's lane 1 empties to 60 veh/h at ticks 40–99; lanes 2–3
    // carry the rest of the 4,500 until tick 49, then 2,700 each.
    let lane = |st: usize, l: usize, k: i64| match (st, l, k) {
        (4, 0, 40..=99) => 60.0,
        (4, _, 40..=49) => 2220.0,
        (4, _, 50..=99) => 2700.0,
        _ => lane_normal(st, l, k),
    };
    let end_tick = |cfg: IncidentConfig| {
        let events = run_lanes(150, cfg, normal, lane);
        let inc = incidents(&events);
        assert!(!inc.is_empty(), "{events:?}");
        (inc[0].end_ms.expect("ended") - T0) / STEP
    };
    let mut no_lane_rule = IncidentConfig::default();
    no_lane_rule.clearing.lane_fraction = f32::INFINITY;
    let early = end_tick(no_lane_rule);
    let end = end_tick(IncidentConfig::default());
    assert!(early < 90, "without the rule it ends at tick {early}");
    assert!(end >= 100, "ends after the lane recovers: tick {end}");
}

/// Rubbernecking: drivers slow in all lanes past the site, so the station
/// just below a block is slow but not dense — the queue test's pair is
/// one too far down, and the zone reaches `slowed_reach_m` above it.
#[test]
fn a_slowed_thin_station_puts_the_site_above_it() {
    // From tick 40 station 5 runs at 45 km/h with 12 % occupancy (not a
    // standing queue), station 6 free and starved.
    let f = |st: usize, k: i64| match (st, k) {
        (5, 40..) => (12.0 + noise(k, st, 4), 45.0, 4000.0),
        (6, 40..) => (3.0, 105.0, 1500.0),
        _ => normal(st, k),
    };
    let zone = |reach: f64| {
        let mut cfg = IncidentConfig::default();
        cfg.clearing.slowed_reach_m = reach;
        let events = run(80, cfg, f);
        let inc = incidents(&events);
        assert_eq!(inc.len(), 1, "{events:?}");
        (inc[0].rule, inc[0].from_m, inc[0].to_m)
    };
    assert_eq!(zone(0.0), ("incident.queue_starvation", 6000.0, 7000.0));
    assert_eq!(
        zone(IncidentConfig::default().clearing.slowed_reach_m),
        ("incident.queue_starvation", 5500.0, 7000.0)
    );
}

/// Speed discontinuity: drivers slow in all lanes past a site
/// (rubbernecking) before a dense queue builds — the speed falls by 40 km/h
/// or more from the station below to the one above, and half the
/// occupancy difference does.
#[test]
fn a_sharp_speed_drop_needs_less_occupancy_difference() {
    // From tick 40 station 5 at 43 km/h and 12 % occupancy, station 6 free
    // at 100 km/h and 6 % with 90 % of its flow.
    let f = |st: usize, k: i64| match (st, k) {
        (5, 40..) => (12.0 + 0.5 * noise(k, st, 4), 43.0, 3800.0),
        (6, 40..) => (6.0, 100.0, 4050.0),
        _ => normal(st, k),
    };
    let count = |drop: f32| {
        let mut cfg = IncidentConfig::default();
        cfg.queue.speed_drop_kmh = drop;
        // The queue test alone (the speed discontinuity in sparse traffic,
        // `SlowedConfig`, sees this too).
        cfg.slowed.enabled = false;
        incidents(&run(80, cfg, f)).len()
    };
    assert_eq!(count(0.0), 0, "6 points: not a queue by occupancy alone");
    assert_eq!(count(IncidentConfig::default().queue.speed_drop_kmh), 1);
}

/// A whole station counting nothing while the stations around it flow is
/// a fault, not a starvation (issue 15's x-quiet validation day raised one).
#[test]
fn a_dead_station_is_not_starved() {
    let f = |st: usize, k: i64| match (st, k) {
        (6, 40..) => (0.0, 100.0, 0.0),
        _ => normal(st, k),
    };
    let count = |dead_ticks: u32| {
        let mut cfg = IncidentConfig::default();
        cfg.starvation.dead_ticks = dead_ticks;
        incidents(&run(80, cfg, f)).len()
    };
    assert_eq!(count(0), 1, "without the rule: starvation");
    assert_eq!(count(IncidentConfig::default().starvation.dead_ticks), 0);
}

/// One lane's queue standing still over a loop while the other lanes
/// move (a block just past the loop; issue 15): the loop counts nothing at
/// full occupancy — what data quality may take for a loop stuck on. With
/// the other lanes there slowed (drivers merging out of the stopped lane)
/// it is a queue behind a block; with nobody slowed, a stuck loop.
#[test]
fn a_lane_standing_still_over_its_loop_is_a_queue() {
    let ids_len = road().stations(Direction::Up).len();
    // From tick 40 station `st`'s lane 3 stands still over its loop; the
    // station (its moving lanes) runs at `v_others` (`v_before` before),
    // the station below free with `below` of its flow.
    let run = |st: usize, v_before: f32, v_others: f32, below: f32, cfg: IncidentConfig| {
        let f = move |s: usize, k: i64| {
            if s == st {
                let (o, v, q) = normal(s, k);
                if k >= 40 {
                    (16.0, v_others, 3600.0)
                } else {
                    (o, v_before + 0.05 * v - 5.0, q)
                }
            } else if s == st + 1 && k >= 40 {
                (13.0, 100.0, 4500.0 * below)
            } else {
                normal(s, k)
            }
        };
        // (Every lane trusted by data quality: finite lane flows, equal
        // shares, so the lane test stays quiet.)
        let events = drive_lanes(
            &road(),
            cfg,
            80,
            f,
            |_, _, _| 1500.0,
            |watch, k| {
                let ts = T0 + k * STEP;
                let raw: Vec<(i64, u16, f32)> = (0..ids_len * 3)
                    .map(|i| {
                        if i == st * 3 + 2 && k >= 40 {
                            (ts, 0, 100.0)
                        } else {
                            (ts, 12, 15.0)
                        }
                    })
                    .collect();
                watch.set_lane_raw(&raw);
            },
        );
        incidents(&events)
            .iter()
            .map(|e| (e.from_m, e.to_m))
            .collect::<Vec<_>>()
    };
    let cfg = IncidentConfig::default;
    let mut off = cfg();
    off.stopped.enabled = false;
    assert_eq!(run(5, 100.0, 75.0, 0.87, off), vec![], "without the test");
    assert_eq!(run(5, 100.0, 75.0, 0.87, cfg()), vec![(6000.0, 7000.0)]);
    assert_eq!(
        run(5, 100.0, 100.0, 0.87, cfg()),
        vec![],
        "nobody slowed: a loop stuck on"
    );
    assert_eq!(
        run(5, 80.0, 80.0, 0.87, cfg()),
        vec![],
        "a loop stuck on at a station always slower than the one below"
    );
    // Pair 3–4 has an on-ramp merging below (a daily-jam cause): the other
    // lanes still moving tell a block from the jam.
    let mut jam_rule = cfg();
    jam_rule.stopped.moving_kmh = f32::INFINITY;
    assert_eq!(
        run(3, 100.0, 75.0, 0.87, jam_rule),
        vec![],
        "at a merge without the moving-lanes rule the station below must starve"
    );
    assert_eq!(run(3, 100.0, 75.0, 0.87, cfg()), vec![(4000.0, 5000.0)]);
    // Nobody slowed, but the station below starves (a stuck loop loses no
    // vehicle below; a block just past the loop caps the flow): a block.
    assert_eq!(
        run(5, 100.0, 100.0, 0.5, cfg()),
        vec![(6000.0, 7000.0)],
        "the station below starved"
    );
    let mut no_starved = cfg();
    no_starved.stopped.starved_below = false;
    assert_eq!(run(5, 100.0, 100.0, 0.5, no_starved), vec![]);
}

/// Two lanes of a station fall silent while the third still counts, just
/// as two loops dying would — but the station below starves, which dead
/// loops do not do: the lanes emptied at the loop, a block just past it.
#[test]
fn lanes_emptied_at_a_loop_with_the_station_below_starved_are_a_block() {
    // From tick 40 station 5's lanes 2–3 count nothing; lane 1 carries
    // 1,500 veh/h; station 6 free at `below` of its flow.
    // `up_kmh`: station 5's speed (merging out of the emptied lanes slows it).
    let run_at = |below: f32, emptied: bool, up_kmh: f32| {
        let f = move |st: usize, k: i64| match (st, k) {
            (5, 40..) => (6.0, up_kmh, 1500.0),
            (6, 40..) => free(st, k, 4500.0 * below),
            _ => normal(st, k),
        };
        let lane = |st: usize, l: usize, k: i64| match (st, l, k) {
            (5, 0, 40..) => 1500.0,
            (5, _, 40..) => 0.0,
            _ => lane_normal(st, l, k),
        };
        let mut cfg = IncidentConfig::default();
        cfg.stopped.emptied = emptied;
        incidents(&run_lanes(80, cfg, f, lane))
            .iter()
            .map(|e| (e.from_m, e.to_m))
            .collect::<Vec<_>>()
    };
    let run = |below: f32, emptied: bool| run_at(below, emptied, 80.0);
    assert_eq!(run(0.4, false), vec![], "without the rule");
    // (Station 5 itself runs free with a third of its flow: the zone also
    // reaches up over it, as for any starved station above a pair.)
    assert_eq!(run(0.4, true), vec![(5000.0, 7000.0)]);
    assert_eq!(
        run(1.0, true),
        vec![],
        "the station below carries it all: dead loops"
    );
    // Station 5 runs free at 105 km/h on lane 1 (a block just before its
    // loop in light traffic: issue 15's 2-km test day) — still a block.
    assert_eq!(run_at(0.4, true, 105.0), vec![(5000.0, 7000.0)]);
    // The demand falls everywhere as two loops of station 5 die (issue
    // 15's gen-day): station 6 starved only against its lagging normal,
    // and station 4 above fell first — no block.
    let f = |st: usize, k: i64| match (st, k) {
        (..=4, 40..) => free(st, k, 2000.0),
        (5, 40..) => (6.0, 105.0, 1500.0),
        (6, 40..) => free(st, k, 4500.0 * 0.4),
        _ => normal(st, k),
    };
    let lane = |st: usize, l: usize, k: i64| match (st, l, k) {
        (5, 0, 40..) => 1500.0,
        (5, _, 40..) => 0.0,
        _ => lane_normal(st, l, k),
    };
    assert_eq!(
        incidents(&run_lanes(80, IncidentConfig::default(), f, lane)).len(),
        0,
        "demand fell"
    );
    let mut cfg = IncidentConfig::default();
    cfg.stopped.emptied_free_kmh = 0.0;
    cfg.stopped.emptied_up_hold = 0.0;
    assert_eq!(
        incidents(&run_lanes(80, cfg, f, lane)).len(),
        1,
        "without the upstream check it is raised"
    );
}

/// Below a merge's daily queue (the on-ramp at 4.7 km, station 4 at 5 km)
/// the queue test needs the station below to starve. A loop that died
/// there makes its station short by the lane's vehicles: no starvation,
/// and no incident (issue 15: a dead lane below a merge raised the merge).
#[test]
fn a_dead_lane_below_a_daily_queue_is_not_starvation() {
    let road = road();
    let queue_above = |st: usize, k: i64| match (st, k) {
        (3, 30..) => (38.0 + noise(k, st, 1), 25.0 + noise(k, st, 2), 3800.0),
        (4, 30..) => (10.0, 98.0, 3000.0),
        _ => normal(st, k),
    };
    let lanes = |dead: bool| {
        move |st: usize, l: usize, k: i64| match (st, l, k) {
            (4, 1, 30..) if dead => 0.0,
            (4, _, 30..) => 1500.0,
            _ => lane_normal(st, l, k),
        }
    };
    let run = |dead: bool| {
        incidents(&drive_lanes(
            &road,
            IncidentConfig::default(),
            60,
            queue_above,
            lanes(dead),
            |_, _| {},
        ))
        .len()
    };
    assert_eq!(
        run(false),
        1,
        "every lane counting: the station below starves"
    );
    assert_eq!(
        run(true),
        0,
        "a lane dead below: its vehicles are not missing"
    );
}

/// One incident, one event: the pair below raised it first and its zone
/// reaches up over the pair above; when the queue then reaches the station
/// above and the pair above raises, it is the same incident moved up.
#[test]
fn an_alarm_inside_an_open_incidents_zone_is_that_incident() {
    // Station 5's lanes 2–3 empty from tick 40 (its traffic merging into
    // lane 1 at 80 km/h), station 6 starved (the
    // emptied-lanes rule raises pair 5–6, its zone reaching up to station
    // 4); from tick 55 a queue stands at station 4.
    let f = |st: usize, k: i64| match (st, k) {
        (4, 55..) => (35.0 + noise(k, st, 4), 20.0, 3000.0),
        (5, 40..) => (6.0, 80.0, 1500.0),
        (6, 40..) => free(st, k, 1800.0),
        _ => normal(st, k),
    };
    let lane = |st: usize, l: usize, k: i64| match (st, l, k) {
        (5, 0, 40..) => 1500.0,
        (5, _, 40..) => 0.0,
        _ => lane_normal(st, l, k),
    };
    let count = |merge: bool| {
        let mut cfg = IncidentConfig::default();
        cfg.clearing.merge_covered = merge;
        incidents(&run_lanes(90, cfg, f, lane)).len()
    };
    assert_eq!(count(false), 2, "without the rule: a second event");
    assert_eq!(count(true), 1);
}

/// An incident stays open while a lane at its upstream station still
/// stands over its loop or counts nothing while the others count, though
/// the station below no longer starves against it (validation c500-heavy:
/// both stations fell to one lane's flow, and the clearing ended the
/// incident a minute after raising it while the block stood 16 min more).
#[test]
fn an_incident_stays_open_while_a_lane_above_stays_empty() {
    // Station 5's lanes 2–3 empty from tick 40 to 89; station 6 starved to
    // 40 % until tick 54, then at 70 % (as much as lane 1 brings).
    let f = |st: usize, k: i64| match (st, k) {
        (5, 40..=89) => (6.0, 80.0, 1500.0),
        (6, 40..=54) => free(st, k, 1800.0),
        (6, 55..=89) => free(st, k, 3150.0),
        _ => normal(st, k),
    };
    let lane = |st: usize, l: usize, k: i64| match (st, l, k) {
        (5, 0, 40..=89) => 1500.0,
        (5, _, 40..=89) => 0.0,
        _ => lane_normal(st, l, k),
    };
    let end_tick = |enabled: bool| {
        let mut cfg = IncidentConfig::default();
        cfg.stopped.enabled = enabled;
        let events = run_lanes(130, cfg, f, lane);
        let inc = incidents(&events);
        assert!(!inc.is_empty(), "{events:?}");
        (inc[0].end_ms.expect("ended") - T0) / STEP
    };
    let early = end_tick(false);
    let end = end_tick(true);
    assert!(early < 85, "without the rule it ends at tick {early}");
    assert!(end >= 90, "ends when the lanes count again: tick {end}");
}

/// The speed discontinuity in free flow (`SlowedConfig`): light traffic
/// (1,500 veh/h at ~100 km/h, 5 % occupancy) where station 5 slows while
/// it stays sparse — drivers braking to merge out of a lane blocked just
/// past its loop — and station 6 runs at its normal speed (stations 3–4
/// hold a merge: there the station below must starve).
#[test]
fn slowed_table() {
    struct Case {
        name: &'static str,
        /// (station, tick) → (occupancy %, speed km/h, flow veh/h).
        f: fn(usize, i64) -> (f32, f32, f32),
        /// Switch the test off.
        off: bool,
        /// Expected: detected within this many ticks of tick 40, open until
        /// at least tick 80 — or nothing.
        expect: Option<i64>,
    }
    fn light(st: usize, k: i64) -> (f32, f32, f32) {
        free(st, k, 1500.0)
    }
    let cases = [
        Case {
            name: "station 5 slowed to 72 km/h and sparse, station 6 at its normal speed",
            f: |st, k| match (st, k) {
                (5, 40..80) => (6.0, 72.0 + 3.0 * noise(k, st, 7), 1500.0),
                _ => light(st, k),
            },
            off: false,
            // 60 s of data: two 30-s ticks.
            expect: Some(2),
        },
        Case {
            name: "the same, the test switched off",
            f: |st, k| match (st, k) {
                (5, 40..80) => (6.0, 72.0 + 3.0 * noise(k, st, 7), 1500.0),
                _ => light(st, k),
            },
            off: true,
            expect: None,
        },
        Case {
            name: "one slow interval (one vehicle crawling over the loop)",
            f: |st, k| match (st, k) {
                (5, 40) => (6.0, 45.0, 1500.0),
                _ => light(st, k),
            },
            off: false,
            expect: None,
        },
        Case {
            name: "every station slowed (rain, a lower limit obeyed, demand): no discontinuity",
            f: |st, k| match k {
                40..80 => (6.0, 72.0 + 3.0 * noise(k, st, 7), 1500.0),
                _ => light(st, k),
            },
            off: false,
            expect: None,
        },
        Case {
            name: "the station below slowed as well (the disturbance is further down)",
            f: |st, k| match (st, k) {
                (5, 40..80) => (6.0, 72.0, 1500.0),
                (6, 40..80) => (6.0, 80.0, 1500.0),
                _ => light(st, k),
            },
            off: false,
            expect: None,
        },
        Case {
            name: "a few vehicles a minute: the mean is one truck's speed",
            f: |st, k| match (st, k) {
                (5, 40..80) => (2.0, 72.0, 400.0),
                _ => free(st, k, 400.0),
            },
            off: false,
            expect: None,
        },
    ];
    for c in cases {
        let mut cfg = IncidentConfig::default();
        if c.off {
            cfg.slowed.enabled = false;
        }
        let events = run(120, cfg, c.f);
        let inc = incidents(&events);
        match c.expect {
            None => assert!(inc.is_empty(), "{}: {inc:?}", c.name),
            Some(ticks) => {
                assert_eq!(inc.len(), 1, "{}: {inc:?}", c.name);
                let e = inc[0];
                assert_eq!(e.rule, "incident.slowed", "{}", c.name);
                // Slowed but sparse: the site may lie a little above station 5.
                assert_eq!((e.from_m, e.to_m), (5500.0, 7000.0), "{}", c.name);
                let t = (e.detected_ms - T0) / STEP - 40 + 1;
                assert!(t <= ticks, "{}: detected at tick {t}", c.name);
                let end = e.end_ms.map_or(i64::MAX, |x| (x - T0) / STEP);
                assert!(end >= 79, "{}: ended at tick {end}", c.name);
            }
        }
    }
}

/// The speed discontinuity's persistence follows the interval: 60 s of
/// data in two intervals at least — two 30-s ticks, three 20-s ones, two
/// 60-s ones.
#[test]
fn slowed_persistence_follows_the_data_interval() {
    let f = |st: usize, k: i64| match (st, k) {
        (5, 40..) => (6.0, 70.0, 1500.0),
        _ => free(st, k, 1500.0),
    };
    for (step_s, want) in [(30, 2), (20, 3), (60, 2)] {
        let events = drive_step(
            IncidentConfig::default(),
            step_s * 1000,
            80,
            f,
            |_, _, _| f32::NAN,
        );
        let inc = incidents(&events);
        assert_eq!(inc.len(), 1, "{step_s}-s data: {events:?}");
        assert_eq!(inc[0].rule, "incident.slowed");
        let ticks = (inc[0].detected_ms - T0) / (step_s * 1000) - 40 + 1;
        assert_eq!(ticks, want, "{step_s}-s data");
    }
}

/// A lane standing still over the loop of the carriageway's last station
/// (8 km; no station below it to starve): a block just past it, raised as
/// `incident.lane_stopped` from the station to 300 m past it, while the
/// station's moving lanes run slower than their normal (drivers merging out
/// of the stopped lane); a loop stuck on slows nobody.
#[test]
fn a_lane_standing_still_over_the_last_station_is_a_block_past_it() {
    struct Case {
        name: &'static str,
        /// The station's moving lanes from tick 40 (km/h; ~100 before).
        v_others: f32,
        /// The lane stands still until this tick.
        until: i64,
        last_station: bool,
        /// Data quality trusts the standing lane (not yet found faulty).
        trusted: bool,
        /// Expected: detected within this many ticks of tick 40, ended
        /// (when it ends) no earlier than the lane moved again.
        expect: Option<i64>,
    }
    let cases = [
        Case {
            name: "lane 3 stands, the others merge at 75 km/h",
            v_others: 75.0,
            until: 70,
            last_station: true,
            trusted: true,
            // 60 s of standing: two 30-s ticks (the first counts from the
            // interval before it).
            expect: Some(2),
        },
        Case {
            name: "the same, the rule switched off",
            v_others: 75.0,
            until: 70,
            last_station: false,
            trusted: true,
            expect: None,
        },
        Case {
            name: "a loop stuck on: the others run at their normal speed",
            v_others: 100.0,
            until: 70,
            last_station: true,
            trusted: true,
            expect: None,
        },
        Case {
            name: "every lane crawls (a jam from beyond the corridor's end)",
            v_others: 20.0,
            until: 70,
            last_station: true,
            trusted: true,
            expect: None,
        },
        Case {
            name: "a lane data quality already found faulty (a loop stuck on)",
            v_others: 75.0,
            until: 70,
            last_station: true,
            trusted: false,
            expect: None,
        },
    ];
    let road = road();
    let ids_len = road.stations(Direction::Up).len();
    let last = ids_len - 1;
    for c in cases {
        let mut cfg = IncidentConfig::default();
        cfg.stopped.last_station = c.last_station;
        let (v_others, until) = (c.v_others, c.until);
        let f = move |s: usize, k: i64| {
            if s == last && (40..until).contains(&k) {
                (16.0, v_others, 3000.0)
            } else {
                normal(s, k)
            }
        };
        let trusted = c.trusted;
        let lane = move |s: usize, l: usize, k: i64| {
            if !trusted && s == last && l == 2 && k >= 40 {
                f32::NAN
            } else {
                1500.0
            }
        };
        let events = drive_lanes(&road, cfg, 100, f, lane, |watch, k| {
            let ts = T0 + k * STEP;
            let raw: Vec<(i64, u16, f32)> = (0..ids_len * 3)
                .map(|i| {
                    if i == last * 3 + 2 && (40..until).contains(&k) {
                        (ts, 0, 100.0)
                    } else {
                        (ts, 12, 15.0)
                    }
                })
                .collect();
            watch.set_lane_raw(&raw);
        });
        let inc = incidents(&events);
        match c.expect {
            None => assert!(inc.is_empty(), "{}: {inc:?}", c.name),
            Some(ticks) => {
                assert_eq!(inc.len(), 1, "{}: {inc:?}", c.name);
                let e = inc[0];
                assert_eq!(e.rule, "incident.lane_stopped", "{}", c.name);
                assert_eq!((e.from_m, e.to_m), (8000.0, 8300.0), "{}", c.name);
                let t = (e.detected_ms - T0) / STEP - 40 + 1;
                assert!(t <= ticks, "{}: detected at tick {t}", c.name);
                let s = (e.start_ms - (T0 + 40 * STEP)) / 1000;
                assert!(s.abs() <= 60, "{}: start {s} s off", c.name);
                let end = (e.end_ms.expect("cleared") - T0) / STEP;
                assert!(
                    (until..until + 8).contains(&end),
                    "{}: ended at tick {end}",
                    c.name
                );
            }
        }
    }
}

/// Half the cross-section standing over its loops is a stationary queue
/// even while the lane left open runs at speed: the station's speed is that
/// of the vehicles counted, and a lane standing still counts none (two
/// lanes at 100 % occupancy, the third at 10 % and 95 km/h).
#[test]
fn half_the_cross_section_standing_is_a_queue() {
    let f = |st: usize, k: i64| match (st, k) {
        (5, 40..) => (70.0 + noise(k, st, 4), 95.0, 3800.0),
        (6, 40..) => (8.0, 100.0, 3825.0),
        _ => normal(st, k),
    };
    let found = |standing: f32| {
        let mut cfg = IncidentConfig::default();
        cfg.queue.standing_occ_pct = standing;
        incidents(&run(80, cfg, f))
            .iter()
            .map(|e| (e.rule, e.from_m, e.to_m, (e.detected_ms - T0) / STEP))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        found(IncidentConfig::default().queue.standing_occ_pct),
        // (The minute's mean shows it from tick 41; 60 s of data: 42.)
        [("incident.queue_starvation", 6000.0, 7000.0, 42)]
    );
    assert_eq!(found(0.0), [], "off: the counted vehicles run at 95 km/h");
}

/// A lane standing still over its loop raises the block once it has stood
/// `stopped.persist_s` (its own persistence), not a pair's run later; and
/// at the last station a lane emptied at its loop (counting nothing at 0 %
/// occupancy, the block just past it and the lane's queue short of the
/// loop) with the others slowed is a block past it too.
#[test]
fn a_standing_or_emptied_lane_is_raised_on_its_own_persistence() {
    let road = road();
    let n = road.stations(Direction::Up).len();
    // Station `st`'s lane 3 from tick 40: `(vehicles, occupancy)` per
    // interval; the station's moving lanes at 82 km/h (18 below normal: not
    // the speed discontinuity's 25).
    let detect = |st: usize, raw3: (u16, f32), cfg: IncidentConfig| {
        let f = move |s: usize, k: i64| match (s, k) {
            (s, 40..) if s == st => (16.0, 82.0, 3000.0),
            (s, 40..) if s == st + 1 => (13.0, 100.0, 4500.0 * 0.87),
            _ => normal(s, k),
        };
        let lane = move |s: usize, l: usize, k: i64| {
            if s == st && l == 2 && k >= 40 {
                raw3.0 as f32 * 120.0
            } else {
                1500.0
            }
        };
        let events = drive_lanes(&road, cfg, 80, f, lane, |watch, k| {
            let ts = T0 + k * STEP;
            let raw: Vec<(i64, u16, f32)> = (0..n * 3)
                .map(|i| {
                    if i == st * 3 + 2 && k >= 40 {
                        (ts, raw3.0, raw3.1)
                    } else {
                        (ts, 12, 15.0)
                    }
                })
                .collect();
            watch.set_lane_raw(&raw);
        });
        incidents(&events)
            .iter()
            .map(|e| (e.rule, (e.detected_ms - T0) / STEP - 40 + 1))
            .collect::<Vec<_>>()
    };
    let cfg = IncidentConfig::default;
    // Standing 60 s: two 30-s ticks, then raised.
    assert_eq!(
        detect(5, (0, 100.0), cfg()),
        [("incident.queue_starvation", 2)]
    );
    let mut run_too = cfg();
    run_too.stopped.own_persistence = false;
    assert_eq!(
        detect(5, (0, 100.0), run_too),
        [("incident.queue_starvation", 3)],
        "with the pair's run on top"
    );
    // Emptied at the last station: raised once silent 90 s (three ticks).
    assert_eq!(
        detect(n - 1, (0, 0.0), cfg()),
        [("incident.lane_stopped", 3)]
    );
    let mut no_emptied = cfg();
    no_emptied.stopped.emptied = false;
    assert_eq!(detect(n - 1, (0, 0.0), no_emptied), []);
}

/// Normals warm up over 20 intervals or 10 minutes of data, whichever comes
/// first: at 60-s data a queue 12 minutes in is raised (20 intervals would
/// take 20 minutes), at 30-s data not (10 minutes are 20 intervals).
#[test]
fn warm_up_is_a_time_of_data_too() {
    // A queue at station 5 over a free station 6 from tick 12 to 17.
    let f = |st: usize, k: i64| match (st, k) {
        (5, 12..18) => (35.0 + noise(k, st, 4), 25.0, 3800.0),
        (6, 12..18) => (8.0, 100.0, 3825.0),
        _ => normal(st, k),
    };
    let found = |step_s: i64, warmup_s: u32| {
        let mut cfg = IncidentConfig::default();
        cfg.normal.warmup_s = warmup_s;
        incidents(&drive_step(cfg, step_s * 1000, 40, f, |_, _, _| f32::NAN)).len()
    };
    assert_eq!(found(60, 600), 1, "60-s data: warm after 10 minutes");
    assert_eq!(found(60, 1200), 0, "20 minutes of 60-s data");
    assert_eq!(found(30, 600), 0, "30-s data: 20 intervals are 10 minutes");
}
