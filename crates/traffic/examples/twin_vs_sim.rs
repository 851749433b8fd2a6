//! The twin against the simulated road it was started from (not against
//! SUMO: the same cell transmission model family, so this measures what the
//! twin's assumptions — demand held at today's flows, the incident lasting
//! the whole horizon, the state read per kilometre — cost, not model error).
//! The demo morning's incident (one lane, 07:40–08:05): the twin starts at
//! `start` and predicts "do nothing"; the simulator plays on.
//! `cargo run --release -p zhilu-traffic --example twin_vs_sim`

use zhilu_road::RoadBook;
use zhilu_traffic::{
    Episode, LaneBlock, Scenario, SegmentEstimate, Sim, SimConfig, Twin, TwinConfig, TwinPlan,
    TwinStart, local_time_ms,
};

/// Vehicles on the road and the longest queue (m) of the simulator now.
fn sim_now(sim: &Sim, road: &RoadBook, cfg: &TwinConfig) -> (f64, f64) {
    let (a, b) = (road.geometry().start_m(), road.geometry().end_m());
    let mut veh = 0.0;
    let mut longest: f64 = 0.0;
    for &dir in road.directions() {
        let mut run = 0.0;
        let mut x = a + 1.0;
        while x < b {
            let c = sim.cell_state(dir, x).expect("a cell");
            let len = (c.to_m - c.from_m).abs();
            veh += c.density * f64::from(c.lanes) * len / 1000.0;
            let queued = c.speed_kmh < cfg.queue_speed_kmh && c.density > cfg.fd.critical_density;
            run = if queued { run + len } else { 0.0 };
            longest = longest.max(run);
            x += len;
        }
    }
    (veh, longest)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo/ROAD.toml");
    let road = RoadBook::from_toml(&std::fs::read_to_string(path)?, path)?;
    let scenario = Scenario::demo_morning(&road);
    let incident = scenario
        .episodes
        .iter()
        .find_map(|e| match e {
            Episode::Incident(i) => Some(i.clone()),
            _ => None,
        })
        .expect("an incident");
    let cfg = TwinConfig::default();
    let twin = Twin::new(&road, cfg.clone())?;
    println!("start  horizon  TTT twin  TTT sim  err    max queue twin  sim     err");
    for (h, m) in [(7, 45), (7, 55)] {
        let t0 = local_time_ms(2026, 11, 23, 6, 30, road.tz_offset_s());
        let start_ms = local_time_ms(2026, 11, 23, h, m, road.tz_offset_s());
        let mut sim = Sim::new(&road, &scenario, SimConfig::default(), t0, 2026)?;
        // Flows as a 5-minute mean (as the estimator's state averages them),
        // densities as they are at the start, one stretch per kilometre.
        let (a, b) = (road.geometry().start_m(), road.geometry().end_m());
        let kms: Vec<(zhilu_road::Direction, f64)> = road
            .directions()
            .iter()
            .flat_map(|&d| {
                let mut v = Vec::new();
                let mut x = a;
                while x < b {
                    v.push((d, x));
                    x += 1000.0;
                }
                v
            })
            .collect();
        let mut flow = vec![0.0; kms.len()];
        let mut t = start_ms - 300_000;
        sim.run_until(t, |_| {});
        for _ in 0..60 {
            t += 5_000;
            sim.run_until(t, |_| {});
            for (i, &(d, x)) in kms.iter().enumerate() {
                flow[i] += sim.cell_state(d, x + 500.0).expect("a cell").flow_vph / 60.0;
            }
        }
        let segments: Vec<SegmentEstimate> = kms
            .iter()
            .zip(&flow)
            .map(|(&(dir, x), &q)| {
                let c = sim.cell_state(dir, x + 500.0).expect("a cell");
                SegmentEstimate {
                    direction: dir,
                    from_m: x,
                    to_m: (x + 1000.0).min(b),
                    flow_vph: q,
                    density_vpkm: c.density * f64::from(c.lanes),
                }
            })
            .collect();
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
        // The simulator's truth, minute by minute.
        let mut sim_ttt = vec![0.0];
        let mut sim_q = vec![sim_now(&sim, &road, &cfg).1];
        let mut ttt = 0.0;
        let mut now = start_ms;
        for _ in 0..60 {
            sim.run_until(now + 60_000, |_| {});
            now += 60_000;
            let (veh, q) = sim_now(&sim, &road, &cfg);
            ttt += veh / 60.0;
            sim_ttt.push(ttt);
            sim_q.push(q);
        }
        // The incident's end as the twin is told it: not at all (as live),
        // or the true one.
        let end_ms = local_time_ms(2026, 11, 23, 7, 40, road.tz_offset_s())
            + i64::from(incident.duration_s) * 1000;
        let mut known = start.clone();
        known.blocks[0].until_s = Some(((end_ms - start_ms) / 1000).max(0) as u32);
        for (label, st) in [("open to the horizon", &start), ("end known", &known)] {
            println!("  incident {label}:");
            for horizon in [15u32, 30, 60] {
                let o = twin.compare(
                    st,
                    &[TwinPlan {
                        name: "do nothing".into(),
                        ..Default::default()
                    }],
                    horizon * 60,
                    2,
                )?;
                let f = &o[0].central;
                // The twin's TTT counts vehicles waiting to enter too; the simulator's here does not.
                let sim_t = sim_ttt[horizon as usize];
                let sq = sim_q[..=horizon as usize]
                    .iter()
                    .copied()
                    .fold(0.0, f64::max);
                println!(
                    "{h:02}:{m:02}  {horizon:>3} min  {:8.0}  {:7.0}  {:+5.1} %  {:8.0} m  {:6.0} m  {:+6.0} m",
                    f.total_travel_time_veh_h,
                    sim_t,
                    (f.total_travel_time_veh_h / sim_t - 1.0) * 100.0,
                    f.max_queue_m,
                    sq,
                    f.max_queue_m - sq
                );
            }
        }
    }
    Ok(())
}
