//! The demo corridor (examples/demo/ROAD.toml) loads strictly and has what the demo needs.

mod common;

use zhilu_road::{DeviceKind, Direction};
use zhilu_traffic::{Scenario, Sim, SimConfig};

#[test]
fn the_demo_road_book_loads_and_is_complete() {
    let road = common::demo_road();
    assert_eq!(road.id(), "JX-DEMO");
    assert_eq!(road.directions(), &[Direction::Up, Direction::Down]);
    assert_eq!(road.geometry().start_m(), 0.0);
    assert_eq!(road.geometry().end_m(), 60_000.0);
    assert_eq!(road.lanes(), 3);
    for dir in Direction::ALL {
        let st = road.stations(dir);
        assert!(st.len() >= 59, "{dir:?}: {} stations", st.len());
        // A station every km.
        for w in st.windows(2) {
            let (a, b) = (
                &road.detectors()[w[0] as usize],
                &road.detectors()[w[1] as usize],
            );
            assert!(((a.stake_m - b.stake_m).abs() - 1000.0).abs() < 1.0);
        }
        // The lane drop through the tunnel.
        assert!(st.iter().any(|&i| road.detectors()[i as usize].lanes == 2));
        let signs = road.vsl().iter().filter(|s| s.direction == dir).count();
        assert!(signs >= 20, "{dir:?}: {signs} VSL signs");
    }
    assert_eq!(road.weather().len(), 6);
    assert_eq!(road.interchanges().len(), 4);
    assert!(road.interchanges().iter().all(|i| i.directions.len() == 2));
    assert_eq!(road.tunnels().len(), 1);
    assert!(road.tunnels()[0].hazmat_forbidden);
    assert_eq!(road.deicers().len(), 1);
    assert_eq!(road.fog_lights().len(), 1);
    assert!(road.service_areas()[0].chargers > 0);
    // A VMS upstream of every interchange, in both directions.
    for ic in road.interchanges() {
        for dir in Direction::ALL {
            let up = road.upstream(dir, ic.stake_m, 3000.0, &[DeviceKind::Vms]);
            assert!(!up.is_empty(), "no VMS before {} {dir:?}", ic.id);
        }
    }
    // The demo's weather stations: one in the fog core, one on the bridge.
    let bridge = &road.deicers()[0];
    assert!(
        road.weather()
            .iter()
            .any(|w| w.stake_m >= bridge.from_m && w.stake_m <= bridge.to_m)
    );
    assert!(
        road.weather()
            .iter()
            .any(|w| (22_000.0..=28_000.0).contains(&w.stake_m))
    );
}

#[test]
fn the_simulator_builds_the_demo_corridor_with_its_lane_drop() {
    let road = common::demo_road();
    let start = common::at(&road, 0, 0);
    let sim = Sim::new(
        &road,
        &Scenario::demo_morning(&road),
        SimConfig::default(),
        start,
        1,
    )
    .expect("sim");
    for dir in Direction::ALL {
        assert_eq!(sim.cell_state(dir, 30_000.0).map(|c| c.lanes), Some(3));
        assert_eq!(sim.cell_state(dir, 42_000.0).map(|c| c.lanes), Some(2));
        let c = sim.cell_state(dir, 10_000.0).expect("cell");
        assert!((250.0..=500.0).contains(&(c.to_m - c.from_m).abs()));
    }
}
