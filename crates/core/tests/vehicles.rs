//! Hazardous-goods and wrong-way rules: table tests on position reports.

use std::sync::Arc;

use zhilu_core::road::RoadBook;
use zhilu_core::{Brain, BrainConfig, Event, EventKind, PositionObs, VehicleClass};

const T0: i64 = 1_795_384_800_000;
const M_PER_DEG: f64 = 111_195.08;

/// A 50-km road running due north; a tunnel closed to hazmat at 20–21 km;
/// a service area at 30 km.
fn road() -> Arc<RoadBook> {
    road_with("")
}

/// [`road`] with extra keys in its `[[service_area]]`.
fn road_with(service_area_keys: &str) -> Arc<RoadBook> {
    let text = format!(
        "[road]\nid = \"V\"\ntz = \"+08:00\"\ndirections = [\"up\", \"down\"]\ngeometry = [[0, 116.0, 39.0], [50000, 116.0, {}]]\nlanes = 3\nspeed_limit_kmh = 120\n\n[[tunnel]]\nid = \"TN\"\nfrom_m = 20000\nto_m = 21000\nhazmat = \"forbidden\"\n\n[[service_area]]\nid = \"SA\"\nname = \"服务区\"\nstake_m = 30000\n{service_area_keys}",
        39.0 + 50_000.0 / M_PER_DEG
    );
    Arc::new(RoadBook::from_toml(&text, "ROAD.toml").unwrap())
}

/// A report at `stake`, `side_m` east of the centre line (the up
/// carriageway is east), moving north (`up`) or south.
fn at(
    vehicle: u32,
    class: VehicleClass,
    t_s: i64,
    stake: f64,
    side_m: f64,
    north: bool,
    speed: f32,
) -> PositionObs {
    PositionObs {
        ts_ms: T0 + t_s * 1000,
        vehicle,
        class,
        lat: 39.0 + stake / M_PER_DEG,
        lon: 116.0 + side_m / (M_PER_DEG * 39.0f64.to_radians().cos()),
        speed_kmh: speed,
        heading_deg: if north { 0.0 } else { 180.0 },
    }
}

/// Drives one vehicle: `track(t_s) -> Option<(stake, side, north, speed)>` every 30 s for `secs`.
fn run(
    class: VehicleClass,
    secs: i64,
    track: impl Fn(i64) -> Option<(f64, f64, bool, f32)>,
) -> Vec<Event> {
    run_on(road(), class, secs, track)
}

fn run_on(
    road: Arc<RoadBook>,
    class: VehicleClass,
    secs: i64,
    track: impl Fn(i64) -> Option<(f64, f64, bool, f32)>,
) -> Vec<Event> {
    let mut brain = Brain::new(road, BrainConfig::default());
    let mut events = Vec::new();
    for t in (0..=secs).step_by(30) {
        if let Some((s, side, north, v)) = track(t) {
            brain.position(&at(7, class, t, s, side, north, v));
        }
        events.extend(brain.drain().events);
    }
    brain.finish();
    events.extend(brain.drain().events);
    events
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

/// Northbound at `v` km/h from 5 km, on the up carriageway.
fn cruise(v: f32) -> impl Fn(i64) -> Option<(f64, f64, bool, f32)> {
    move |t| Some((5000.0 + v as f64 / 3.6 * t as f64, 7.0, true, v))
}

#[test]
fn speeding_needs_more_than_a_minute() {
    let e = run(VehicleClass::Hazmat, 450, cruise(92.0));
    assert_eq!(kinds(&e), [EventKind::HazmatSpeeding]);
    assert_eq!(e[0].detected_ms - e[0].start_ms, 60_000);
    // 30 s over the limit, then back to 75: nothing.
    let e = run(VehicleClass::Hazmat, 300, |t| {
        Some((
            5000.0 + 25.0 * t as f64,
            7.0,
            true,
            if t == 60 { 95.0 } else { 75.0 },
        ))
    });
    assert!(e.is_empty(), "{e:?}");
    // A car at 110 is not a hazmat violation.
    assert!(run(VehicleClass::Car, 600, cruise(110.0)).is_empty());
}

#[test]
fn stopped_on_the_carriageway_for_five_minutes() {
    let stop = |at_m: f64, mins: i64| {
        move |t: i64| {
            Some(if t < 120 {
                (at_m - 2000.0 + 20.0 * t as f64, 7.0, true, 72.0)
            } else if t < 120 + mins * 60 {
                (at_m + 400.0, 7.0, true, 0.0)
            } else {
                (
                    at_m + 400.0 + 20.0 * (t - 120 - mins * 60) as f64,
                    7.0,
                    true,
                    72.0,
                )
            })
        }
    };
    let e = run(VehicleClass::Hazmat, 900, stop(10_000.0, 8));
    assert_eq!(kinds(&e), [EventKind::HazmatStopped]);
    assert_eq!(e[0].detected_ms - e[0].start_ms, 300_000);
    assert_eq!(e[0].end_ms, Some(T0 + (120 + 8 * 60) * 1000));
    // Four minutes is not five.
    assert!(run(VehicleClass::Hazmat, 600, stop(10_000.0, 4)).is_empty());
    // At the service area, stopping is what it is for.
    assert!(run(VehicleClass::Hazmat, 1200, stop(29_800.0, 10)).is_empty());
}

/// Stops near a service area: allowed inside its extent on the truck's own
/// carriageway, or well off the carriageway; anywhere else (a lane, the
/// hard shoulder) five minutes is a violation, raised at five minutes.
#[test]
fn stops_near_a_service_area() {
    // (service-area keys, stop stake, metres east of the centre line, north?, violation?)
    let cases: &[(&str, f64, f64, bool, bool, &str)] = &[
        (
            "",
            30_200.0,
            7.0,
            true,
            false,
            "200 m past the stake: inside ±250 m",
        ),
        (
            "",
            30_310.0,
            7.0,
            true,
            true,
            "310 m past the stake, in a lane",
        ),
        (
            "",
            29_690.0,
            7.0,
            true,
            true,
            "310 m before the stake, in a lane",
        ),
        (
            "",
            30_310.0,
            16.0,
            true,
            true,
            "310 m past, on the hard shoulder",
        ),
        (
            "",
            8_000.0,
            40.0,
            true,
            false,
            "40 m off the carriageway (a lay-by)",
        ),
        (
            "",
            12_000.0,
            -40.0,
            false,
            false,
            "40 m off the down carriageway",
        ),
        (
            "",
            12_000.0,
            -9.0,
            false,
            true,
            "in a lane of the down carriageway",
        ),
        (
            "from_m = 29500\nto_m = 30800\ndirections = [\"up\"]\n",
            30_700.0,
            7.0,
            true,
            false,
            "inside the extent given, on the carriageway served",
        ),
        (
            "from_m = 29500\nto_m = 30800\ndirections = [\"up\"]\n",
            30_700.0,
            -7.0,
            false,
            true,
            "inside the extent, on the carriageway not served",
        ),
        (
            "from_m = 29900\nto_m = 30100\n",
            30_200.0,
            7.0,
            true,
            true,
            "past a narrower extent than ±250 m",
        ),
    ];
    for &(keys, at_m, side, north, violation, name) in cases {
        let sign = if north { 1.0 } else { -1.0 };
        let e = run_on(road_with(keys), VehicleClass::Hazmat, 1200, |t| {
            Some(if t < 120 {
                (at_m - sign * 20.0 * (120 - t) as f64, side, north, 72.0)
            } else if t < 120 + 10 * 60 {
                (at_m, side, north, 0.0)
            } else {
                (at_m + sign * 20.0 * (t - 720) as f64, side, north, 72.0)
            })
        });
        if violation {
            assert_eq!(kinds(&e), [EventKind::HazmatStopped], "{name}: {e:?}");
            assert!(
                e[0].detected_ms - e[0].start_ms <= 300_000 + 120_000,
                "{name}: found within 2 min of reaching 5 min: {:?}",
                e[0]
            );
        } else {
            assert!(e.is_empty(), "{name}: {e:?}");
        }
    }
}

#[test]
fn inside_a_tunnel_closed_to_hazmat() {
    let e = run(VehicleClass::Hazmat, 1200, |t| {
        Some((18_000.0 + 20.0 * t as f64, 7.0, true, 72.0))
    });
    assert_eq!(kinds(&e), [EventKind::HazmatRestrictedZone]);
    // First report inside: 20 km reached at t = 100 s, reports every 30 s → t = 120 s.
    assert_eq!(e[0].detected_ms, T0 + 120_000);
    assert!(
        run(VehicleClass::Truck, 1200, |t| Some((
            18_000.0 + 20.0 * t as f64,
            7.0,
            true,
            72.0
        )))
        .is_empty()
    );
}

#[test]
fn four_hours_without_a_rest() {
    // 4.5 h at 70 km/h with reports every 30 s (the road is long enough in stake; it wraps).
    let drive = |rest_at: Option<i64>| {
        move |t: i64| {
            let resting = rest_at.is_some_and(|r| t >= r && t < r + 25 * 60);
            // Time spent moving (the position stands still during the rest).
            let moved = match rest_at {
                Some(r) if t >= r + 25 * 60 => t - 25 * 60,
                Some(r) if t >= r => r,
                _ => t,
            };
            let s = 1000.0 + (19.4 * moved as f64) % 17_000.0;
            Some((s, 7.0, true, if resting { 0.0 } else { 70.0 }))
        }
    };
    let e: Vec<Event> = run(VehicleClass::Hazmat, 16_500, drive(None))
        .into_iter()
        .filter(|e| e.kind == EventKind::HazmatDrivingTime)
        .collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].detected_ms - T0 <= 4 * 3_600_000 + 60_000,
        "{:?}",
        e[0]
    );
    // A 25-min rest after 2 h resets the clock.
    let e: Vec<Event> = run(VehicleClass::Hazmat, 16_500, drive(Some(7200)))
        .into_iter()
        .filter(|e| e.kind == EventKind::HazmatDrivingTime)
        .collect();
    assert!(e.is_empty(), "{e:?}");
}

#[test]
fn wrong_way_needs_two_reports_against_the_traffic() {
    // On the up carriageway (east side), heading south.
    let e = run(VehicleClass::Car, 300, |t| {
        Some((30_000.0 - 16.0 * t as f64, 7.0, false, 60.0))
    });
    assert_eq!(kinds(&e), [EventKind::WrongWay]);
    assert_eq!(e[0].detected_ms, T0 + 30_000, "second report");
    // One odd report (a GPS heading glitch) is not wrong-way.
    let e = run(VehicleClass::Car, 300, |t| {
        Some((10_000.0 + 30.0 * t as f64, 7.0, t != 60, 100.0))
    });
    assert!(e.is_empty(), "{e:?}");
    // On the centre line the carriageway is unknown: no verdict.
    assert!(
        run(VehicleClass::Car, 300, |t| Some((
            30_000.0 - 16.0 * t as f64,
            0.5,
            false,
            60.0
        )))
        .is_empty()
    );
    // Southbound on the down carriageway is normal.
    assert!(
        run(VehicleClass::Car, 300, |t| Some((
            30_000.0 - 16.0 * t as f64,
            -7.0,
            false,
            60.0
        )))
        .is_empty()
    );
}

#[test]
fn off_the_expressway_is_ignored() {
    // A hazmat truck speeding on a road 200 m away.
    assert!(
        run(VehicleClass::Hazmat, 600, |t| Some((
            5000.0 + 25.0 * t as f64,
            200.0,
            true,
            95.0
        )))
        .is_empty()
    );
}
