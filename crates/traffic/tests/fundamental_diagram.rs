//! Bar 1 — plausible traffic: load a homogeneous 3-lane stretch from light
//! traffic to above capacity, with an on-ramp merge downstream that breaks
//! down and queues back, and fit the fundamental diagram of the simulated
//! detectors (60-s readings, flow per lane against occupancy).

use zhilu_road::RoadBook;
use zhilu_traffic::{DemandProfile, Scenario, Sim, SimConfig, local_time_ms};

fn stretch() -> RoadBook {
    let mut t = String::from(
        "[road]\nid = \"FD\"\ntz = \"+08:00\"\ndirections = [\"up\"]\n\
         geometry = [[0, 116.0, 39.0], [14000, 116.0, 39.126]]\nlanes = 3\nspeed_limit_kmh = 120\n\n\
         [[interchange]]\nid = \"T1\"\nstake_m = 11000\ndirections = [\"up\"]\n\n",
    );
    for km in 1..=13 {
        t.push_str(&format!(
            "[[detector]]\nid = \"D{km:02}\"\ndirection = \"up\"\nstake_m = {}\n\n",
            km * 1000
        ));
    }
    RoadBook::from_toml(&t, "fd.toml").expect("test road")
}

#[test]
fn the_detectors_see_a_realistic_fundamental_diagram() {
    let road = stretch();
    let scenario = Scenario {
        name: "loading".into(),
        demand: DemandProfile {
            // Per lane at the upstream end: light, ramping above capacity, back to light.
            mainline_vph_lane: vec![
                (0.0, 500.0),
                (0.5, 500.0),
                (3.0, 2400.0),
                (4.0, 2400.0),
                (5.0, 500.0),
            ],
            direction_factor: [1.0, 1.0],
            on_ramp_share: 0.08,
            off_ramp_share: 0.0,
            noise: 0.05,
        },
        climate: Default::default(),
        episodes: vec![],
    };
    let config = SimConfig {
        obs_interval_s: 60,
        ..SimConfig::default()
    };
    let start = local_time_ms(2026, 11, 23, 0, 0, road.tz_offset_s());
    let mut sim = Sim::new(&road, &scenario, config, start, 11).expect("sim");
    // (flow per lane veh/h, occupancy %) of every lane reading.
    let mut points: Vec<(f64, f64)> = Vec::new();
    sim.run_until(start + 6 * 3_600_000, |out| {
        for r in out.obs() {
            points.push((f64::from(r.volume) * 60.0, f64::from(r.occupancy_pct)));
        }
    });
    // Bin by occupancy (1 %), mean flow per bin with enough readings.
    let mut bins = vec![(0.0f64, 0u32); 101];
    for &(q, o) in &points {
        let b = (o.floor() as usize).min(100);
        bins[b].0 += q;
        bins[b].1 += 1;
    }
    let curve: Vec<(f64, f64, u32)> = bins
        .iter()
        .enumerate()
        .filter(|(_, (_, n))| *n >= 15)
        .map(|(i, (s, n))| (i as f64 + 0.5, s / f64::from(*n), *n))
        .collect();
    let &(occ_c, q_max, _) = curve
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("bins");
    for (o, q, n) in &curve {
        eprintln!("occ {o:5.1} %  flow {q:6.0} veh/h/lane  (n = {n})");
    }
    eprintln!("capacity {q_max:.0} veh/h/lane at occupancy {occ_c:.1} %");
    // The queue must really have formed: readings on the congested branch.
    assert!(
        points.iter().filter(|p| p.1 > 24.0).count() > 500,
        "no queue formed"
    );
    assert!(
        (1800.0..=2200.0).contains(&q_max),
        "capacity {q_max:.0} veh/h/lane outside 1,800–2,200"
    );
    assert!(
        (15.0..=25.0).contains(&occ_c),
        "critical occupancy {occ_c:.1} % outside 15–25 %"
    );
}
