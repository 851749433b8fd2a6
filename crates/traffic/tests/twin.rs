//! The twin (issue 18): cases whose answers follow from traffic flow
//! theory or from the plan's rules, each checked against the model.

use zhilu_road::{Direction, RoadBook};
use zhilu_traffic::{
    EntryState, FdParams, FogZone, LaneBlock, SegmentEstimate, Twin, TwinConfig, TwinPlan,
    TwinStart,
};

const UP: Direction = Direction::Up;

/// `km` of up-direction road, 3 lanes, 120 km/h, a station every km, speed
/// signs every 2.5 km from K2, and interchanges at the given stakes.
fn road(km: u32, interchanges: &[u32]) -> RoadBook {
    let mut t = format!(
        "[road]\nid = \"T\"\ntz = \"+08:00\"\ndirections = [\"up\"]\ngeometry = [[0, 116.0, 39.0], [{}, 116.0, 39.3]]\nlanes = 3\nspeed_limit_kmh = 120\n",
        km * 1000
    );
    for i in 1..km {
        t += &format!(
            "\n[[detector]]\nid = \"D{i}\"\ndirection = \"up\"\nstake_m = {}\n",
            i * 1000
        );
    }
    let mut x = 2000;
    while x < km * 1000 {
        t += &format!("\n[[vsl]]\nid = \"S{x}\"\ndirection = \"up\"\nstake_m = {x}\n");
        x += 2500;
    }
    for &s in interchanges {
        t += &format!(
            "\n[[interchange]]\nid = \"I{s}\"\nname = \"I{s}\"\nstake_m = {}\ndirections = [\"up\"]\n",
            s * 1000
        );
    }
    RoadBook::from_toml(&t, "ROAD.toml").expect("test road book")
}

/// Density per lane on the free branch carrying `q` veh/h per lane.
fn free_density(p: &FdParams, q: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, p.critical_density);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if p.equilibrium_flow(mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A road in free flow carrying `flows[i].2` veh/h (3 lanes) from `flows[i].0` to `flows[i].1` km.
fn uniform(flows: &[(f64, f64, f64)]) -> TwinStart {
    let p = FdParams::default();
    TwinStart {
        segments: flows
            .iter()
            .map(|&(a, b, q)| SegmentEstimate {
                direction: UP,
                from_m: a * 1000.0,
                to_m: b * 1000.0,
                flow_vph: q,
                density_vpkm: 3.0 * free_density(&p, q / 3.0),
            })
            .collect(),
        ..Default::default()
    }
}

fn cfg() -> TwinConfig {
    TwinConfig {
        members: 1,
        grid_step_s: 60,
        ..TwinConfig::default()
    }
}

fn plan(name: &str) -> TwinPlan {
    TwinPlan {
        name: name.into(),
        ..Default::default()
    }
}

/// A lane closed downstream of free traffic: the queue's tail moves upstream
/// at the shock speed the flow difference gives, (q_up − q_out)/(k_up − k_queue),
/// with q_out the bottleneck's capacity less the capacity drop.
#[test]
fn a_closed_lane_grows_a_queue_at_the_shock_speed() {
    // (lanes blocked of 3, arriving flow veh/h)
    let cases = [(1u8, 4500.0), (1, 3600.0), (2, 3000.0), (2, 2400.0)];
    let road = road(30, &[]);
    let c = cfg();
    let p = c.fd;
    let twin = Twin::new(&road, c.clone()).unwrap();
    for (blocked, q_up) in cases {
        let mut start = uniform(&[(0.0, 30.0, q_up)]);
        start.blocks.push(LaneBlock {
            direction: UP,
            from_m: 25_000.0,
            to_m: 25_000.0,
            lanes: blocked,
            until_s: None,
        });
        let out = twin
            .compare(&start, &[plan("do nothing")], 3600, 1)
            .unwrap();
        let cap_b = 3.0 * p.capacity_vph * f64::from(3 - blocked) / 3.0 * c.incident_lane_factor;
        let q_out = (1.0 - p.capacity_drop) * cap_b;
        let k_up = 3.0 * free_density(&p, q_up / 3.0);
        let k_q = 3.0 * (p.jam_density - q_out / 3.0 / p.wave_speed_kmh());
        let shock_kmh = (q_up - q_out) / (k_up - k_q); // < 0: upstream
        let tail = |t_s: u32| {
            out[0]
                .queue
                .iter()
                .find(|s| s.t_s == t_s)
                .and_then(|s| s.tail_m)
                .expect("a queue")
        };
        let moved_km = (tail(3000) - tail(600)) / 1000.0;
        let expected_km = shock_kmh * (2400.0 / 3600.0);
        // The same theory without the capacity drop, which the model must not match.
        let k_nodrop = 3.0 * (p.jam_density - cap_b / 3.0 / p.wave_speed_kmh());
        let nodrop_km = (q_up - cap_b) / (k_up - k_nodrop) * (2400.0 / 3600.0);
        assert!(
            (moved_km - expected_km).abs() < (moved_km - nodrop_km).abs(),
            "blocked {blocked}, q {q_up}: tail moved {moved_km:.2} km, theory {expected_km:.2} km, without the drop {nodrop_km:.2} km"
        );
        assert!(
            (moved_km - expected_km).abs() <= 0.1 * expected_km.abs() + 0.3,
            "blocked {blocked}, q {q_up}: tail moved {moved_km:.2} km, theory {expected_km:.2} km"
        );
        assert_eq!(out[0].central.clear_after_s, None, "the lane stays closed");
    }
}

/// Free flow under a lowered limit: the speed drivers keep is the limit
/// plus the non-compliant share of the gap to their free speed.
#[test]
fn a_lower_limit_lowers_speeds_by_the_compliance_rule() {
    // (limit km/h, compliance, expected speed km/h)
    let cases = [
        (60u16, 0.8, 70.0),
        (60, 1.0, 60.0),
        (60, 0.0, 110.0),
        (80, 0.8, 86.0),
        (100, 0.5, 105.0),
    ];
    let road = road(20, &[]);
    for (limit, compliance, expect) in cases {
        let c = TwinConfig {
            compliance,
            ..cfg()
        };
        let twin = Twin::new(&road, c).unwrap();
        let start = uniform(&[(0.0, 20.0, 600.0)]);
        let limits = road
            .vsl()
            .iter()
            .map(|s| (s.id.clone(), Some(limit)))
            .collect();
        let plans = [
            plan("do nothing"),
            TwinPlan {
                limits,
                ..plan("limit")
            },
        ];
        let out = twin.compare(&start, &plans, 1200, 1).unwrap();
        let row = |o: &zhilu_traffic::PlanOutcome| o.timespace[0].speed_kmh[10].clone();
        // K6–K16: signed, away from the road's ends.
        let (free, limited) = (row(&out[0]), row(&out[1]));
        for km in 6..16 {
            // Mean speed falls a little with density on the free branch.
            let free_kmh = f64::from(free[km]);
            assert!(
                free_kmh > 105.0 && free_kmh <= 110.0,
                "free {km}: {free_kmh}"
            );
            let expect = f64::min(expect, free_kmh);
            assert!(
                (f64::from(limited[km]) - expect).abs() < 1.0,
                "limit {limit}, compliance {compliance}, K{km}: {} vs {expect}",
                limited[km]
            );
        }
    }
}

/// Closing the entry that overloads a blocked lane keeps the queue away;
/// with no bottleneck, closing it only sends drivers on detours.
#[test]
fn closing_an_entry_helps_only_where_it_feeds_a_bottleneck() {
    // (lane blocked downstream, closing the entry is better on delay)
    let cases = [(true, true), (false, false)];
    let road = road(25, &[10]);
    let twin = Twin::new(&road, cfg()).unwrap();
    for (incident, closure_better) in cases {
        // 2400 veh/h arrive, 10 % leave before the interchange, 900 veh/h
        // join: 3060 veh/h, more than the 2880 veh/h beside a blocked lane.
        let mut start = uniform(&[
            (0.0, 9.6, 2400.0),
            (9.6, 10.4, 2160.0),
            (10.4, 25.0, 3060.0),
        ]);
        if incident {
            start.blocks.push(LaneBlock {
                direction: UP,
                from_m: 18_000.0,
                to_m: 18_000.0,
                lanes: 1,
                until_s: None,
            });
        }
        let close = TwinPlan {
            entries: vec![("I10".into(), None, EntryState::Closed)],
            ..plan("close")
        };
        let out = twin
            .compare(&start, &[plan("do nothing"), close], 3600, 1)
            .unwrap();
        let (none, shut) = (&out[0].central, &out[1].central);
        assert!(
            shut.turned_away_veh > 800.0 && shut.turned_away_veh < 1000.0,
            "{shut:?}"
        );
        assert_eq!(out[1].entries_closed, vec![("I10".to_string(), UP)]);
        if incident {
            // Without the entry the queue the loaded stretch brings dissolves
            // (2160 veh/h < the 2592 veh/h a queue discharges); with it, it stays.
            assert!(none.max_queue_m > shut.max_queue_m, "{none:?} {shut:?}");
            assert_eq!(none.clear_after_s, None, "{none:?}");
            assert!(shut.clear_after_s.is_some(), "{shut:?}");
        } else {
            assert_eq!((none.max_queue_m, shut.max_queue_m), (0.0, 0.0));
        }
        assert_eq!(
            shut.delay_veh_h < none.delay_veh_h,
            closure_better,
            "incident {incident}: do nothing {:.1} veh·h, closed {:.1} veh·h",
            none.delay_veh_h,
            shut.delay_veh_h
        );
    }
}

/// Drivers reaching fog faster than they can stop within the visibility:
/// all of them with no limit (they slow too little by themselves), only
/// the 20 % who ignore the signs behind signs at 40 km/h.
#[test]
fn limits_upstream_of_fog_bring_arrivals_within_sight_distance() {
    // (limit on the signs from K9.5 to K14.5, visibility m, expected share):
    // 80 m allows 59 km/h, 150 m 85, 400 m 160 (stopping sight distance);
    // the approach runs at about 102 km/h.
    let cases = [
        (None, 80.0, 1.0),
        (Some(40u16), 80.0, 0.2),
        (None, 150.0, 1.0),
        (Some(60), 150.0, 0.2),
        (Some(90), 150.0, 1.0),
        (None, 400.0, 0.0),
    ];
    let road = road(25, &[]);
    let c = cfg();
    let twin = Twin::new(&road, c.clone()).unwrap();
    for (limit, vis, expect) in cases {
        let mut start = uniform(&[(0.0, 25.0, 2400.0)]);
        start.fog.push(FogZone {
            direction: None,
            from_m: 15_000.0,
            to_m: 17_000.0,
            visibility_m: vis,
        });
        let limits = road
            .vsl()
            .iter()
            .filter(|s| (9_000.0..15_000.0).contains(&s.stake_m))
            .map(|s| (s.id.clone(), limit))
            .collect();
        let out = twin
            .compare(
                &start,
                &[TwinPlan {
                    limits,
                    ..plan("p")
                }],
                1800,
                1,
            )
            .unwrap();
        let f = &out[0].central;
        assert!(f.fog_entering_veh > 1000.0, "{f:?}");
        assert!(
            (f.fog_too_fast_share - expect).abs() < 0.01,
            "limit {limit:?}, visibility {vis}: share {} (sight speed {:.0} km/h)",
            f.fog_too_fast_share,
            c.sight_speed_kmh(vis)
        );
    }
}

#[test]
fn the_ensemble_is_seeded_and_spreads_only_with_demand_noise() {
    let road = road(20, &[8]);
    let start = uniform(&[(0.0, 20.0, 4000.0)]);
    let run = |sigma: f64, seed: u64| {
        let c = TwinConfig {
            members: 10,
            demand_sigma: sigma,
            seed,
            ..cfg()
        };
        Twin::new(&road, c)
            .unwrap()
            .compare(&start, &[plan("do nothing")], 1800, 2)
            .unwrap()
            .remove(0)
    };
    let a = run(0.1, 7);
    assert_eq!(a, run(0.1, 7), "same seed, same answer (threads or not)");
    assert_ne!(a.total_travel_time_band, run(0.1, 8).total_travel_time_band);
    let b = a.total_travel_time_band;
    assert!(b.p10 < b.p50 && b.p50 < b.p90, "{b:?}");
    let flat = run(0.0, 7).total_travel_time_band;
    assert!(flat.p10 == flat.p90, "{flat:?}");
}

#[test]
fn a_plan_naming_an_unknown_device_is_refused() {
    let road = road(10, &[5]);
    let twin = Twin::new(&road, cfg()).unwrap();
    let start = uniform(&[(0.0, 10.0, 2000.0)]);
    let cases = [
        TwinPlan {
            limits: vec![("S999".into(), Some(60))],
            ..plan("a")
        },
        TwinPlan {
            limits: vec![("S2000".into(), Some(2))],
            ..plan("b")
        },
        TwinPlan {
            entries: vec![("I9".into(), None, EntryState::Closed)],
            ..plan("c")
        },
        TwinPlan {
            entries: vec![("I5".into(), Some(Direction::Down), EntryState::Closed)],
            ..plan("d")
        },
    ];
    for p in cases {
        let e = twin
            .compare(&start, std::slice::from_ref(&p), 600, 1)
            .unwrap_err();
        assert!(e.to_string().contains(&format!("plan `{}`", p.name)), "{e}");
    }
}

/// A lane that reopens: the queue it built discharges and clears within the
/// horizon; the same lane kept shut leaves a queue at the horizon.
#[test]
fn a_lane_that_reopens_lets_the_queue_clear() {
    // (minutes the lane stays shut, queue cleared within the hour)
    let cases = [
        (None, false),
        (Some(10u32), true),
        (Some(20), true),
        (Some(70), false),
    ];
    let road = road(30, &[]);
    let twin = Twin::new(&road, cfg()).unwrap();
    let mut cleared_at = Vec::new();
    for (shut_min, clears) in cases {
        let mut start = uniform(&[(0.0, 30.0, 3600.0)]);
        start.blocks.push(LaneBlock {
            direction: UP,
            from_m: 25_000.0,
            to_m: 25_000.0,
            lanes: 1,
            until_s: shut_min.map(|m| m * 60),
        });
        let out = twin
            .compare(&start, &[plan("do nothing")], 3600, 1)
            .unwrap();
        let f = &out[0].central;
        assert!(f.max_queue_m > 0.0, "{shut_min:?}: {f:?}");
        assert_eq!(f.clear_after_s.is_some(), clears, "{shut_min:?}: {f:?}");
        if let (Some(m), Some(c)) = (shut_min, f.clear_after_s) {
            assert!(c > m * 60, "clears after the lane reopens: {c} s");
            cleared_at.push(c);
        }
    }
    assert!(
        cleared_at[0] < cleared_at[1],
        "a longer closure clears later: {cleared_at:?}"
    );
}
