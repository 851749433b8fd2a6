//! Congestion zones from the estimated state: onset, extent, trend, end.

use std::sync::Arc;

use zhilu_core::road::RoadBook;
use zhilu_core::{Brain, BrainConfig, Event, EventDetail, EventKind, Obs};

const T0: i64 = 1_795_384_800_000;

/// Eight up-direction stations 1 km apart.
fn road() -> Arc<RoadBook> {
    let mut t = String::from(
        "[road]\nid = \"C\"\ntz = \"+08:00\"\ndirections = [\"up\"]\ngeometry = [[0, 116.0, 39.0], [10000, 116.0, 39.09]]\nlanes = 2\nspeed_limit_kmh = 120\n",
    );
    for i in 0..8 {
        t += &format!(
            "\n[[detector]]\nid = \"D{i}\"\ndirection = \"up\"\nstake_m = {}\n",
            1000 + i * 1000
        );
    }
    Arc::new(RoadBook::from_toml(&t, "ROAD.toml").unwrap())
}

/// Runs `ticks` 30-s ticks; `slow(station, tick)` says whether a station reads 15 km/h.
fn run(ticks: i64, slow: impl Fn(usize, i64) -> bool) -> Vec<Event> {
    let mut brain = Brain::new(road(), BrainConfig::default());
    let mut events = Vec::new();
    for k in 1..=ticks {
        for st in 0..8usize {
            for lane in 1..=2u8 {
                // Slightly varying readings (identical ones would be a stuck detector).
                let wiggle = ((k + st as i64 * 3 + lane as i64) % 4) as f32;
                let (vol, v) = if slow(st, k) {
                    (5u16 + wiggle as u16 % 2, 15.0f32 + wiggle)
                } else {
                    (12 + wiggle as u16 % 3, 100.0 + wiggle)
                };
                let occ = vol as f32 * 120.0 / v * 6.5 / 10.0;
                let obs = Obs {
                    ts_ms: T0 + k * 30_000,
                    detector: st as u32,
                    lane,
                    interval_s: 30,
                    volume: vol,
                    speed_kmh: Some(v + lane as f32),
                    occupancy_pct: occ.min(95.0),
                    valid: true,
                };
                brain.observe(&obs);
                events.extend(brain.drain().events);
            }
        }
    }
    brain.finish();
    events.extend(brain.drain().events);
    events
        .into_iter()
        .filter(|e| e.kind == EventKind::Congestion)
        .collect()
}

#[test]
fn a_growing_queue_is_one_event_with_its_largest_extent() {
    // The queue tail moves upstream one station every 4 ticks from station 6, from tick 10 to 30; clear after 40.
    let e = run(80, |st, k| {
        (10..40).contains(&k) && st <= 6 && st as i64 >= 6 - (k - 10) / 4
    });
    assert_eq!(e.len(), 1, "{e:?}");
    let e = &e[0];
    assert!(
        e.detected_ms <= T0 + 14 * 30_000,
        "confirmed within a few ticks: {e:?}"
    );
    assert!(
        e.from_m <= 2500.0 && e.to_m >= 7000.0,
        "extent {}–{}",
        e.from_m,
        e.to_m
    );
    assert!(
        e.end_ms
            .is_some_and(|t| (T0 + 39 * 30_000..=T0 + 46 * 30_000).contains(&t)),
        "{e:?}"
    );
    assert!(
        matches!(e.detail, EventDetail::Congestion { min_speed_kmh, .. } if min_speed_kmh < 40.0)
    );
}

#[test]
fn one_slow_tick_is_not_congestion() {
    assert!(run(40, |st, k| k == 10 && st == 3).is_empty());
    assert!(run(40, |_, _| false).is_empty());
}

#[test]
fn trend_tells_growing_from_shrinking() {
    let mut brain_events = run(60, |st, k| {
        (5..60).contains(&k) && st <= 6 && st as i64 >= 6 - (k - 5) / 3
    });
    let e = brain_events.pop().unwrap();
    assert!(
        matches!(
            e.detail,
            EventDetail::Congestion { trend: 1, .. } | EventDetail::Congestion { trend: 0, .. }
        ),
        "{e:?}"
    );
}
