//! JSON views for the console: the road book as it is drawn (`GET
//! /api/road`) and the time–space matrix (`GET /api/timespace`). Shapes
//! only; the data comes from the road book and the store.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use zhilu_road::{Direction, RoadBook};
use zhilu_store::StationBucket;

fn lonlat(road: &RoadBook, stake_m: f64) -> [f64; 2] {
    let (lon, lat) = road.geometry().lonlat(stake_m);
    [round6(lon), round6(lat)]
}

/// Degrees to six decimals (≈ 0.1 m) for the JSON views.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Speeds and flows to one decimal for the JSON views.
pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The road book for drawing: every item with its stake(s) and lon/lat.
pub fn road_json(road: &RoadBook) -> Value {
    let g = road.geometry();
    let sign = |s: &zhilu_road::Sign| json!({"id": s.id, "direction": s.direction.as_str(), "stake_m": s.stake_m, "lonlat": lonlat(road, s.stake_m)});
    let zone = |z: &zhilu_road::Zone| json!({"id": z.id, "from_m": z.from_m, "to_m": z.to_m, "lonlat": [lonlat(road, z.from_m), lonlat(road, z.to_m)]});
    json!({
        "id": road.id(),
        "name": road.name(),
        "tz_offset_s": road.tz_offset_s(),
        "lanes": road.lanes(),
        "speed_limit_kmh": road.speed_limit_kmh(),
        "profile": road.profile().as_str(),
        "directions": road.directions().iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        "geometry": g.points().iter().map(|p| json!([p.stake_m, p.lon, p.lat])).collect::<Vec<_>>(),
        "detectors": road.detectors().iter().map(|d| json!({
            "id": d.id, "direction": d.direction.as_str(), "stake_m": d.stake_m,
            "lanes": d.lanes, "lonlat": lonlat(road, d.stake_m)})).collect::<Vec<_>>(),
        "weather": road.weather().iter().map(|w| json!({
            "id": w.id, "stake_m": w.stake_m, "lonlat": lonlat(road, w.stake_m)})).collect::<Vec<_>>(),
        "vsl": road.vsl().iter().map(sign).collect::<Vec<_>>(),
        "vms": road.vms().iter().map(sign).collect::<Vec<_>>(),
        "fog_lights": road.fog_lights().iter().map(zone).collect::<Vec<_>>(),
        "deicers": road.deicers().iter().map(zone).collect::<Vec<_>>(),
        "interchanges": road.interchanges().iter().map(|i| json!({
            "id": i.id, "name": i.name, "stake_m": i.stake_m,
            "directions": i.directions.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
            "lonlat": lonlat(road, i.stake_m)})).collect::<Vec<_>>(),
        "exits": road.exits().iter().map(|x| json!({
            "id": x.id, "name": x.name, "stake_m": x.stake_m,
            "directions": x.directions.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
            "lonlat": lonlat(road, x.stake_m)})).collect::<Vec<_>>(),
        "tunnels": road.tunnels().iter().map(|t| json!({
            "id": t.id, "from_m": t.from_m, "to_m": t.to_m, "hazmat_forbidden": t.hazmat_forbidden,
            "lonlat": [lonlat(road, t.from_m), lonlat(road, t.to_m)]})).collect::<Vec<_>>(),
        "service_areas": road.service_areas().iter().map(|s| json!({
            "id": s.id, "name": s.name, "stake_m": s.stake_m, "chargers": s.chargers,
            "lonlat": lonlat(road, s.stake_m)})).collect::<Vec<_>>(),
    })
}

/// The time–space matrix (`GET /api/timespace`). Fields in alphabetical
/// order, as always written.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimeSpace {
    /// One matrix per direction of the road.
    pub directions: Vec<TimeSpaceDirection>,
    /// Start of the window (epoch ms, data time).
    pub from_ms: i64,
    /// Bucket length (s).
    pub step_s: i64,
    /// Start of each bucket (epoch ms), one per row of `speed_kmh`.
    pub times: Vec<i64>,
    /// End of the window (epoch ms, exclusive).
    pub to_ms: i64,
}

/// One direction of the time–space matrix.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimeSpaceDirection {
    /// `up` or `down`.
    pub direction: String,
    /// One row per bucket, one column per station: the mean speed (km/h,
    /// one decimal), `null` where the station had no plausible speed.
    pub speed_kmh: Vec<Vec<Option<f64>>>,
    /// The stations' stakes (m), in the direction of travel.
    pub stakes: Vec<f64>,
    /// The stations' detector ids, in the direction of travel.
    pub stations: Vec<String>,
}

/// The time–space matrix: per direction, its stations in the direction
/// of travel and one row of speeds per bucket (`null` where a station had
/// no plausible speed).
pub fn timespace(
    road: &RoadBook,
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
    rows: &[StationBucket],
) -> TimeSpace {
    let first = from_ms.div_euclid(step_ms) * step_ms;
    let n_times = usize::try_from((to_ms - first + step_ms - 1) / step_ms).unwrap_or(0);
    let times: Vec<i64> = (0..n_times).map(|i| first + i as i64 * step_ms).collect();
    // detector id → (direction index, column)
    let mut col: HashMap<&str, (usize, usize)> = HashMap::new();
    let dirs: Vec<Direction> = road.directions().to_vec();
    let mut stations: Vec<Vec<u32>> = Vec::new();
    for (k, d) in dirs.iter().enumerate() {
        let st = road.stations(*d).to_vec();
        for (j, &i) in st.iter().enumerate() {
            col.insert(road.detectors()[i as usize].id.as_str(), (k, j));
        }
        stations.push(st);
    }
    let mut speed: Vec<Vec<Vec<Option<f64>>>> = stations
        .iter()
        .map(|s| vec![vec![None; s.len()]; n_times])
        .collect();
    for r in rows {
        let Some(&(k, j)) = col.get(r.detector.as_str()) else {
            continue;
        };
        let Ok(t) = usize::try_from((r.bucket_ms - first) / step_ms) else {
            continue;
        };
        if t < n_times {
            speed[k][t][j] = r.speed_kmh.map(round1);
        }
    }
    TimeSpace {
        directions: dirs
            .iter()
            .zip(stations.iter())
            .zip(speed)
            .map(|((d, st), sp)| TimeSpaceDirection {
                direction: d.as_str().to_string(),
                speed_kmh: sp,
                stakes: st
                    .iter()
                    .map(|&i| road.detectors()[i as usize].stake_m)
                    .collect(),
                stations: st
                    .iter()
                    .map(|&i| road.detectors()[i as usize].id.clone())
                    .collect(),
            })
            .collect(),
        from_ms,
        step_s: step_ms / 1000,
        times,
        to_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROAD: &str = r#"
[road]
id = "T"
name = "test"
tz = "+08:00"
directions = ["up", "down"]
geometry = [[0, 116.0, 39.0], [10000, 116.0, 39.09]]
lanes = 2
speed_limit_kmh = 120

[[detector]]
id = "U1"
direction = "up"
stake_m = 1000

[[detector]]
id = "U2"
direction = "up"
stake_m = 2000

[[detector]]
id = "D1"
direction = "down"
stake_m = 1500

[[detector]]
id = "D2"
direction = "down"
stake_m = 2500
"#;

    fn b(t: i64, d: &str, v: Option<f64>) -> StationBucket {
        StationBucket {
            bucket_ms: t,
            detector: d.into(),
            volume: 1,
            speed_kmh: v,
            occupancy_pct: None,
            samples: 1,
        }
    }

    #[test]
    fn timespace_places_stations_in_travel_order() {
        let road = RoadBook::from_toml(ROAD, "ROAD.toml").expect("road");
        let rows = [
            b(60_000, "U1", Some(100.04)),
            b(60_000, "D2", Some(30.0)),
            b(120_000, "U2", None),
            b(120_000, "XX", Some(1.0)),
            b(999_000, "U1", Some(1.0)), // outside the window
        ];
        let v = serde_json::to_value(timespace(&road, 70_000, 180_000, 60_000, &rows))
            .expect("serialisable");
        assert_eq!(v["times"], json!([60_000, 120_000]));
        let up = &v["directions"][0];
        assert_eq!(up["stations"], json!(["U1", "U2"]));
        assert_eq!(up["speed_kmh"], json!([[100.0, null], [null, null]]));
        // Down travels towards lower stakes: D2 (2500) first.
        let down = &v["directions"][1];
        assert_eq!(down["stations"], json!(["D2", "D1"]));
        assert_eq!(down["speed_kmh"][0], json!([30.0, null]));
    }

    #[test]
    fn road_json_has_positions() {
        let road = RoadBook::from_toml(ROAD, "ROAD.toml").expect("road");
        let v = road_json(&road);
        assert_eq!(v["detectors"].as_array().map(Vec::len), Some(4));
        let ll = &v["detectors"][0]["lonlat"];
        assert!(
            (ll[1].as_f64().unwrap_or(0.0) - 39.009).abs() < 1e-3,
            "{ll}"
        );
        assert_eq!(v["directions"], json!(["up", "down"]));
    }
}
