//! The time–space matrix for the console (`GET /api/timespace`) and the
//! rounding of the JSON views (the road book as drawn is
//! `crate::views::RoadView`). Shapes only; the data comes from the road
//! book and the store.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;
use zhilu_road::{Direction, RoadBook};
use zhilu_store::StationBucket;

/// Degrees to six decimals (≈ 0.1 m) for the JSON views.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Speeds and flows to one decimal for the JSON views.
pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
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
    use serde_json::json;

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
}
