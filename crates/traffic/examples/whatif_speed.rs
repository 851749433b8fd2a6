//! The what-if speed bar (issue 18): 8 plans × 10 demand members × 60 min of
//! the 60-km demo corridor, both directions, from the state of the simulated
//! demo morning at 07:50 (an incident blocking a lane since 07:40).
//! Prints each of 5 runs and their median:
//! `cargo run --release -p zhilu-traffic --example whatif_speed`.

use std::time::Instant;

use zhilu_road::{Direction, RoadBook};
use zhilu_traffic::{
    EntryState, LaneBlock, Scenario, SegmentEstimate, Sim, SimConfig, Twin, TwinConfig, TwinPlan,
    TwinStart, local_time_ms,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo/ROAD.toml");
    let text = std::fs::read_to_string(path)?;
    let road = RoadBook::from_toml(&text, path)?;
    let scenario = Scenario::demo_morning(&road);
    let t0 = local_time_ms(2026, 11, 23, 7, 0, road.tz_offset_s());
    let mut sim = Sim::new(&road, &scenario, SimConfig::default(), t0, 2026)?;
    sim.run_until(t0 + 50 * 60_000, |_| {});
    // The state as the estimator would give it: one stretch per kilometre.
    let (a, b) = (road.geometry().start_m(), road.geometry().end_m());
    let mut segments = Vec::new();
    for &dir in road.directions() {
        let mut x = a;
        while x < b {
            let c = sim.cell_state(dir, x + 500.0).expect("a cell");
            segments.push(SegmentEstimate {
                direction: dir,
                from_m: x,
                to_m: (x + 1000.0).min(b),
                flow_vph: c.flow_vph,
                density_vpkm: c.density * f64::from(c.lanes),
            });
            x += 1000.0;
        }
    }
    let incident = scenario
        .episodes
        .iter()
        .find_map(|e| match e {
            zhilu_traffic::Episode::Incident(i) => Some(i.clone()),
            _ => None,
        })
        .expect("the demo morning has an incident");
    let start = TwinStart {
        segments,
        blocks: vec![LaneBlock {
            direction: incident.direction,
            from_m: incident.stake_m,
            to_m: incident.stake_m,
            lanes: incident.lanes_blocked,
            until_s: None,
        }],
        fog: Vec::new(),
    };
    let signs_before = |d: Direction, lim: u16, n: usize| -> Vec<(String, Option<u16>)> {
        let mut s: Vec<_> = road
            .vsl()
            .iter()
            .filter(|s| s.direction == d && d.travel_m(s.stake_m) < d.travel_m(incident.stake_m))
            .collect();
        s.sort_by(|x, y| d.travel_m(y.stake_m).total_cmp(&d.travel_m(x.stake_m)));
        s.iter()
            .take(n)
            .map(|s| (s.id.clone(), Some(lim)))
            .collect()
    };
    let d = incident.direction;
    let ic = road.interchanges()[2].id.clone();
    let plans = vec![
        TwinPlan {
            name: "do nothing".into(),
            ..Default::default()
        },
        TwinPlan {
            name: "limit 80 ×2".into(),
            limits: signs_before(d, 80, 2),
            ..Default::default()
        },
        TwinPlan {
            name: "limit 60 ×2".into(),
            limits: signs_before(d, 60, 2),
            ..Default::default()
        },
        TwinPlan {
            name: "limit 60 ×4".into(),
            limits: signs_before(d, 60, 4),
            ..Default::default()
        },
        TwinPlan {
            name: "limit 40 ×2".into(),
            limits: signs_before(d, 40, 2),
            ..Default::default()
        },
        TwinPlan {
            name: "meter".into(),
            entries: vec![(ic.clone(), Some(d), EntryState::Metered)],
            ..Default::default()
        },
        TwinPlan {
            name: "close entry".into(),
            entries: vec![(ic.clone(), Some(d), EntryState::Closed)],
            ..Default::default()
        },
        TwinPlan {
            name: "limit 60 ×2 + meter".into(),
            limits: signs_before(d, 60, 2),
            entries: vec![(ic, Some(d), EntryState::Metered)],
            ..Default::default()
        },
    ];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let twin = Twin::new(&road, TwinConfig::default())?;
    let mut times = Vec::new();
    let mut last = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        last = twin.compare(&start, &plans, 3600, threads)?;
        let s = t.elapsed().as_secs_f64();
        println!("run {}: {:.3} s", i + 1, s);
        times.push(s);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} plans × {} members × 60 min, {} cells × {} carriageways, {} threads: median {:.3} s",
        plans.len(),
        twin.config().members,
        twin.cells(),
        road.directions().len(),
        threads,
        times[2]
    );
    for o in &last {
        println!(
            "{:>20}: TTT {:7.1} veh·h [{:.1}–{:.1}], delay {:6.1} veh·h, max queue {:5.0} m [{:.0}–{:.0}], clear {:?} s, var {:5.0}, turned away {:4.0}",
            o.name,
            o.central.total_travel_time_veh_h,
            o.total_travel_time_band.p10,
            o.total_travel_time_band.p90,
            o.central.delay_veh_h,
            o.central.max_queue_m,
            o.max_queue_band.p10,
            o.max_queue_band.p90,
            o.central.clear_after_s,
            o.central.speed_variance,
            o.central.turned_away_veh
        );
    }
    Ok(())
}
