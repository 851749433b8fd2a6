//! Bar 3 — the road obeys device commands: a VSL limit slows the cells it
//! governs (and nothing upstream); a closed entry lets nobody in and the
//! mainline downstream carries less.

mod common;

use zhilu_road::{Direction, RoadBook};
use zhilu_traffic::{Command, DemandProfile, EntryState, ObsReading, Scenario, Sim, SimConfig};

fn steady(road: &RoadBook) -> Scenario {
    Scenario {
        name: "steady".into(),
        demand: DemandProfile {
            on_ramp_share: 0.12,
            off_ramp_share: 0.10,
            ..DemandProfile::constant(900.0)
        },
        climate: Default::default(),
        episodes: vec![],
    }
    .tap_validate(road)
}

trait TapValidate {
    fn tap_validate(self, road: &RoadBook) -> Self;
}
impl TapValidate for Scenario {
    fn tap_validate(self, road: &RoadBook) -> Self {
        self.validate(road).expect("valid scenario");
        self
    }
}

/// Runs 10:00–10:45 with `cmd` applied at 10:15; returns every reading and
/// the mean and peak inflow of 固安's up entry after 10:25 (veh/h).
fn run(road: &RoadBook, cmd: Option<&Command>) -> (Vec<ObsReading>, f64, f64) {
    let start = common::at(road, 10, 0);
    let mut sim = Sim::new(road, &steady(road), SimConfig::default(), start, 5).expect("sim");
    let mut obs = Vec::new();
    sim.run_until(start + 15 * 60_000, |o| obs.extend_from_slice(o.obs()));
    if let Some(c) = cmd {
        sim.apply(c).expect("command accepted");
    }
    sim.run_until(start + 25 * 60_000, |o| obs.extend_from_slice(o.obs()));
    let (mut sum, mut peak, mut n) = (0.0, 0.0f64, 0.0);
    while sim.now_ms() < start + 45 * 60_000 {
        obs.extend_from_slice(sim.step().obs());
        let q = sim.entry_flow_vph("T_GA", Direction::Up).expect("entry");
        sum += q;
        peak = peak.max(q);
        n += 1.0;
    }
    (obs, sum / n, peak)
}

#[test]
fn a_posted_40_slows_the_stations_it_governs_and_not_those_upstream() {
    let road = common::demo_road();
    let (base, _, _) = run(&road, None);
    let cmd = Command::SpeedLimit {
        device: "S195U".into(),
        kmh: Some(40),
    };
    let (limited, _, _) = run(&road, Some(&cmd));
    let (from, to) = (common::at(&road, 10, 25), common::at(&road, 10, 45));
    // (station, must the limit show there?) — S195U stands at K19+500 and
    // governs up to the next gantry, S220U at K22+000.
    let table = [
        ("D017U", false),
        ("D019U", false),
        ("D020U", true),
        ("D021U", true),
        ("D023U", false),
        ("D020D", false),
    ];
    for (id, fires) in table {
        let d = road.detector_index(id).expect("detector");
        let v0 = common::mean_speed(&base, d, from, to);
        let v1 = common::mean_speed(&limited, d, from, to);
        eprintln!("{id}: {v0:.0} → {v1:.0} km/h");
        if fires {
            assert!(
                v1 < 60.0 && v0 - v1 > 30.0,
                "{id}: {v0:.0} → {v1:.0} km/h should drop"
            );
        } else {
            assert!(
                (v0 - v1).abs() < 6.0,
                "{id}: {v0:.0} → {v1:.0} km/h should not change"
            );
        }
    }
    // Released: back to free flow.
    let start = common::at(&road, 10, 0);
    let mut sim = Sim::new(&road, &steady(&road), SimConfig::default(), start, 5).expect("sim");
    sim.apply(&cmd).expect("limit");
    sim.run_until(start + 10 * 60_000, |_| {});
    assert!(
        sim.cell_state(Direction::Up, 21_000.0)
            .expect("cell")
            .speed_kmh
            < 60.0
    );
    sim.apply(&Command::SpeedLimit {
        device: "S195U".into(),
        kmh: None,
    })
    .expect("release");
    sim.run_until(start + 20 * 60_000, |_| {});
    assert!(
        sim.cell_state(Direction::Up, 21_000.0)
            .expect("cell")
            .speed_kmh
            > 90.0
    );
}

#[test]
fn a_closed_entry_lets_nobody_in_and_the_mainline_downstream_carries_less() {
    let road = common::demo_road();
    let close = Command::Entry {
        interchange: "T_GA".into(),
        direction: Direction::Up,
        state: EntryState::Closed,
    };
    let (base, ramp_open, _) = run(&road, None);
    let (closed, _, closed_peak) = run(&road, Some(&close));
    assert!(ramp_open > 150.0, "open entry flow {ramp_open:.0} veh/h");
    assert_eq!(closed_peak, 0.0, "a closed entry lets nobody in");
    // Vehicles counted 10:25–10:45: 固安 enters at K31+400.
    let (from, to) = (common::at(&road, 10, 25), common::at(&road, 10, 45));
    let q = |obs: &[ObsReading], id: &str| {
        f64::from(common::volume(
            obs,
            road.detector_index(id).expect("det"),
            from,
            to,
        )) * 3.0
    };
    for id in ["D033U", "D035U"] {
        let (a, b) = (q(&base, id), q(&closed, id));
        eprintln!("{id}: {a:.0} → {b:.0} veh/h (entry {ramp_open:.0} veh/h)");
        assert!(
            b < a - 0.5 * ramp_open && b > a - 2.0 * ramp_open,
            "{id}: {a:.0} → {b:.0} veh/h should drop"
        );
    }
    let (a, b) = (q(&base, "D029U"), q(&closed, "D029U"));
    assert!(
        (a - b).abs() < 0.1 * a,
        "upstream D029U: {a:.0} → {b:.0} veh/h"
    );
    // Metered: the entry lets in at most the configured rate.
    let mut sim = Sim::new(
        &road,
        &steady(&road),
        SimConfig::default(),
        common::at(&road, 10, 0),
        5,
    )
    .expect("sim");
    sim.apply(&Command::Entry {
        interchange: "T_GA".into(),
        direction: Direction::Up,
        state: EntryState::Metered,
    })
    .expect("meter");
    let mut peak: f64 = 0.0;
    sim.run_until(common::at(&road, 10, 20), |_| {});
    for _ in 0..120 {
        sim.step();
        peak = peak.max(
            sim.entry_flow_vph("T_GA", Direction::Up)
                .unwrap_or(f64::MAX),
        );
    }
    assert!(
        peak <= SimConfig::default().metered_vph + 1e-6,
        "metered peak {peak:.0}"
    );
}

#[test]
fn unknown_devices_and_missing_entries_are_errors() {
    let road = common::demo_road();
    let mut sim = Sim::new(
        &road,
        &steady(&road),
        SimConfig::default(),
        common::at(&road, 10, 0),
        5,
    )
    .expect("sim");
    assert!(
        sim.apply(&Command::SpeedLimit {
            device: "NOPE".into(),
            kmh: Some(60)
        })
        .is_err()
    );
    assert!(
        sim.apply(&Command::SpeedLimit {
            device: "M040U".into(),
            kmh: Some(60)
        })
        .is_err()
    );
    assert!(
        sim.apply(&Command::SpeedLimit {
            device: "S195U".into(),
            kmh: Some(0)
        })
        .is_err()
    );
    assert!(
        sim.apply(&Command::Deicing {
            device: "I1".into(),
            on: true
        })
        .is_ok()
    );
    assert!(
        sim.apply(&Command::Message {
            device: "M040U".into(),
            text: "前方团雾".into()
        })
        .is_ok()
    );
    assert_eq!(sim.message("M040U"), Some("前方团雾"));
}
