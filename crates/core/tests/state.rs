//! State estimation on a synthetic shockwave with a known answer.
//!
//! Truth: a queue tail (shock front) that starts at x = 9 km and travels
//! upstream at −15 km/h — the speed the Rankine–Hugoniot condition gives for
//! free flow (100 km/h, 1500 veh/h/lane) meeting a queue (20 km/h, 986
//! veh/h/lane). Stations every 500 m sample the truth every 20 s; the
//! station at 5 km is dead (no data), so the estimator must bridge it.

use zhilu_core::road::{Direction, RoadBook};
use zhilu_core::{StateConfig, StateEstimator, StationSample};

const STEP_MS: i64 = 20_000;
const LANES: f32 = 3.0;
const W_KMH: f64 = -15.0;
const X0_M: f64 = 9000.0;
const DEAD_M: f64 = 5000.0;

fn road() -> RoadBook {
    let mut text = String::from(
        "[road]\nid = \"S\"\ntz = \"Z\"\ndirections = [\"up\"]\ngeometry = [[0, 116.0, 39.0], [12000, 116.0, 39.11]]\nlanes = 3\nspeed_limit_kmh = 120\n",
    );
    for i in 0..=20 {
        text.push_str(&format!(
            "\n[[detector]]\nid = \"D{i}\"\ndirection = \"up\"\nstake_m = {}\n",
            1000 + i * 500
        ));
    }
    RoadBook::from_toml(&text, "ROAD.toml").unwrap()
}

fn front_m(t_s: f64) -> f64 {
    X0_M + W_KMH / 3.6 * t_s
}

/// Truth at (x, t): (speed km/h, flow veh/h all lanes, density veh/km all lanes).
fn truth(x: f64, t_s: f64) -> (f32, f32, f32) {
    if x < front_m(t_s) {
        (100.0, 1500.0 * LANES, 15.0 * LANES)
    } else {
        (20.0, 985.7 * LANES, 49.29 * LANES)
    }
}

#[test]
fn shockwave_is_tracked_and_the_dead_station_is_bridged() {
    let road = road();
    let mut est = StateEstimator::new(&road, StateConfig::default(), STEP_MS);
    let stations: Vec<f64> = road
        .stations(Direction::Up)
        .iter()
        .map(|&i| road.detectors()[i as usize].stake_m)
        .collect();
    let mut checked_cells = 0;
    let mut worst_far = 0.0f32;
    let mut front_errors = Vec::new();
    // 20 minutes: the front moves 5 km upstream, from 9 km to 4 km, across the dead station.
    for k in 1..=60i64 {
        let t_s = (k * STEP_MS) as f64 / 1000.0;
        for (j, &x) in stations.iter().enumerate() {
            let s = if x == DEAD_M {
                StationSample::NONE
            } else {
                let (v, q, d) = truth(x, t_s);
                StationSample {
                    valid: true,
                    lanes_used: 3,
                    flow_vph: q,
                    speed_kmh: v,
                    density_vpkm: d,
                    occupancy_pct: d / LANES * 0.65,
                }
            };
            est.samples_mut(0)[j] = s;
        }
        let state = est.update(k * STEP_MS);
        let dir = &state.directions[0];
        if k < 12 {
            continue; // let the kernel's history fill (4 minutes)
        }
        // Cells well away from the front match the truth.
        for c in dir.segments.iter().chain(dir.stations.iter()) {
            let x = (c.from_m + c.to_m) / 2.0;
            assert!(
                c.speed_kmh.is_finite() && c.flow_vph.is_finite() && c.density_vpkm.is_finite(),
                "{c:?}"
            );
            if (x - front_m(t_s)).abs() > 1000.0 {
                let (v, q, _) = truth(x, t_s);
                worst_far = worst_far.max((c.speed_kmh - v).abs());
                assert!(
                    (c.speed_kmh - v).abs() <= 10.0,
                    "t={t_s}s x={x}: speed {} vs {v}",
                    c.speed_kmh
                );
                assert!(
                    (c.flow_vph - q).abs() <= 0.12 * q,
                    "t={t_s}s x={x}: flow {} vs {q}",
                    c.flow_vph
                );
                checked_cells += 1;
            }
        }
        // The front: first segment (in travel order) slower than 60 km/h.
        let est_front = dir
            .segments
            .iter()
            .find(|c| c.speed_kmh < 60.0)
            .map(|c| (c.from_m + c.to_m) / 2.0);
        let err = est_front.map_or(f64::INFINITY, |f| f - front_m(t_s));
        front_errors.push(err);
        // Half a station spacing where stations work; one spacing where the
        // front crosses the dead station (the data there are 1 km apart).
        let tolerance = if (front_m(t_s) - DEAD_M).abs() < 1000.0 {
            1000.0
        } else {
            500.0
        };
        assert!(
            err.abs() <= tolerance,
            "t={t_s}s: front estimated at {est_front:?}, true {}",
            front_m(t_s)
        );
        // The dead station has a filled value, marked as less supported.
        let dead = dir.stations.iter().find(|c| c.from_m == DEAD_M).unwrap();
        assert!(dead.support < 1.0 && dead.speed_kmh.is_finite(), "{dead:?}");
    }
    assert!(checked_cells > 500, "{checked_cells}");
    let mean_abs = front_errors.iter().map(|e| e.abs()).sum::<f64>() / front_errors.len() as f64;
    eprintln!(
        "far-field worst speed error {worst_far:.1} km/h; front position mean |error| {mean_abs:.0} m"
    );
}

#[test]
fn a_gap_beyond_the_kernel_is_bridged_linearly() {
    // Seven dead stations in a row (3.5 km): the middle is out of the
    // kernel's reach and is interpolated between the live ends.
    let road = road();
    let mut est = StateEstimator::new(&road, StateConfig::default(), STEP_MS);
    for k in 1..=10 {
        for j in 0..21 {
            let x = 1000.0 + j as f32 * 500.0;
            est.samples_mut(0)[j] = if (6..=12).contains(&j) {
                StationSample::NONE
            } else {
                // Speed falls linearly with position: 110 → 10 km/h.
                let v = 110.0 - (x - 1000.0) / 100.0;
                StationSample {
                    valid: true,
                    lanes_used: 3,
                    flow_vph: 3000.0,
                    speed_kmh: v,
                    density_vpkm: 3000.0 / v,
                    occupancy_pct: 10.0,
                }
            };
        }
        est.update(k * STEP_MS);
    }
    let dir = &est.state().directions[0];
    let mid = dir.stations[9];
    assert_eq!(mid.support, 0.0, "{mid:?}");
    let want = 110.0 - (mid.from_m as f32 - 1000.0) / 100.0;
    assert!(
        (mid.speed_kmh - want).abs() < 12.0,
        "bridged {} vs {want}",
        mid.speed_kmh
    );
    for c in dir.stations.iter().chain(dir.segments.iter()) {
        assert!(c.speed_kmh.is_finite(), "{c:?}");
    }
}

#[test]
fn no_data_at_all_leaves_nan_not_garbage() {
    let road = road();
    let mut est = StateEstimator::new(&road, StateConfig::default(), STEP_MS);
    let s = est.update(STEP_MS);
    assert!(
        s.directions[0]
            .segments
            .iter()
            .all(|c| c.speed_kmh.is_nan() && c.support == 0.0)
    );
}
