//! The vehicle board (车辆动态): where every reporting vehicle is now and
//! its recent track, for the console's map. Filled by the engine from the
//! stored position reports (HTTP, MQTT or JT/T 808 alike), read by
//! `GET /api/vehicles`, and published on the stream as `vehicles` batches
//! (only what changed since the last batch, plus the vehicles that went
//! silent). Memory is bounded: a vehicle not heard of for
//! [`SILENT_AFTER_MS`] of data time is dropped, a track keeps the last
//! [`TRACK_POINTS`] reports.
//!
//! This module owns no rules: the hazardous-goods and wrong-way rules run
//! in the brain (`zhilu_core::vehicles`) on the same reports.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::json;
use zhilu_road::RoadBook;
use zhilu_store::PositionRow;

use crate::roadjson::{round1, round6};
use crate::views::{VehicleRow, VehiclesView};

/// A vehicle silent for this long (data time) leaves the board.
pub const SILENT_AFTER_MS: i64 = 10 * 60_000;
/// Reports kept per track.
pub const TRACK_POINTS: usize = 40;
/// Reports further than this from the centre line are off the expressway.
const OFF_ROAD_M: f64 = 60.0;

/// One vehicle on the board.
#[derive(Debug, Clone)]
struct Vehicle {
    class: String,
    ts_ms: i64,
    lon: f64,
    lat: f64,
    stake_m: f64,
    /// `up` / `down` (side of the centre line), `None` when off the road.
    direction: Option<&'static str>,
    speed_kmh: Option<f64>,
    heading_deg: Option<f64>,
    /// (ts_ms, lon, lat), oldest first.
    track: VecDeque<(i64, f64, f64)>,
}

/// Every vehicle heard of recently.
#[derive(Debug, Default)]
pub struct VehicleBoard {
    vehicles: HashMap<String, Vehicle>,
    changed: HashSet<String>,
    gone: Vec<String>,
    latest_ms: i64,
}

/// Column order of a vehicle row in `GET /api/vehicles` and the stream.
pub const COLUMNS: [&str; 9] = [
    "vehicle",
    "class",
    "ts_ms",
    "lon",
    "lat",
    "stake_m",
    "direction",
    "speed_kmh",
    "heading_deg",
];

impl VehicleBoard {
    /// An empty board.
    pub fn new() -> VehicleBoard {
        VehicleBoard::default()
    }

    /// Vehicles on the board.
    pub fn len(&self) -> usize {
        self.vehicles.len()
    }

    /// Whether the board is empty.
    pub fn is_empty(&self) -> bool {
        self.vehicles.is_empty()
    }

    /// Takes one stored report. Reports older than the vehicle's last are
    /// kept out of the track (late arrivals do not move a marker back).
    pub fn observe(&mut self, road: &RoadBook, p: &PositionRow) {
        if !(p.lat.is_finite() && p.lon.is_finite()) {
            return;
        }
        self.latest_ms = self.latest_ms.max(p.ts_ms);
        let m = road.geometry().locate(p.lon, p.lat);
        let two_way = road.directions().len() > 1;
        let direction = if m.offset_m.abs() > OFF_ROAD_M {
            None
        } else if !two_way {
            road.directions().first().map(|d| d.as_str())
        } else if m.offset_m >= 0.0 {
            Some("up")
        } else {
            Some("down")
        };
        let v = self
            .vehicles
            .entry(p.vehicle.clone())
            .or_insert_with(|| Vehicle {
                class: p.class.clone(),
                ts_ms: i64::MIN,
                lon: p.lon,
                lat: p.lat,
                stake_m: m.stake_m,
                direction,
                speed_kmh: None,
                heading_deg: None,
                track: VecDeque::with_capacity(8),
            });
        if p.ts_ms < v.ts_ms {
            return;
        }
        v.class.clone_from(&p.class);
        v.ts_ms = p.ts_ms;
        v.lon = p.lon;
        v.lat = p.lat;
        v.stake_m = m.stake_m;
        v.direction = direction;
        v.speed_kmh = p.speed_kmh.filter(|s| s.is_finite());
        v.heading_deg = p.heading_deg.filter(|h| h.is_finite());
        if v.track.len() == TRACK_POINTS {
            v.track.pop_front();
        }
        v.track.push_back((p.ts_ms, p.lon, p.lat));
        if !self.changed.contains(&p.vehicle) {
            self.changed.insert(p.vehicle.clone());
        }
    }

    /// Drops vehicles silent for [`SILENT_AFTER_MS`] before the latest
    /// report seen.
    fn expire(&mut self) {
        let cutoff = self.latest_ms.saturating_sub(SILENT_AFTER_MS);
        let gone = &mut self.gone;
        let changed = &mut self.changed;
        self.vehicles.retain(|id, v| {
            let keep = v.ts_ms >= cutoff;
            if !keep {
                changed.remove(id);
                gone.push(id.clone());
            }
            keep
        });
    }

    fn row(id: &str, v: &Vehicle) -> VehicleRow {
        VehicleRow(
            id.to_string(),
            v.class.clone(),
            v.ts_ms,
            round6(v.lon),
            round6(v.lat),
            v.stake_m.round(),
            v.direction,
            v.speed_kmh.map(round1),
            v.heading_deg.map(round1),
        )
    }

    /// The changes since the last call as a stream payload
    /// (`{"columns", "rows", "gone"}`), or `None` when nothing changed.
    pub fn take_update(&mut self) -> Option<String> {
        self.expire();
        if self.changed.is_empty() && self.gone.is_empty() {
            return None;
        }
        let mut rows = Vec::with_capacity(self.changed.len());
        for id in self.changed.drain() {
            if let Some(v) = self.vehicles.get(&id) {
                rows.push(Self::row(&id, v));
            }
        }
        let gone = std::mem::take(&mut self.gone);
        Some(
            json!({
                "ts_ms": self.latest_ms,
                "columns": COLUMNS,
                "rows": rows,
                "gone": gone,
            })
            .to_string(),
        )
    }

    /// Every vehicle (optionally of one class), with tracks when asked:
    /// `{"ts_ms", "columns", "rows", "tracks": {id: [[ts_ms, lon, lat], …]}}`.
    pub fn list(&self, class: Option<&str>, tracks: bool) -> VehiclesView {
        let mut ids: Vec<&String> = self
            .vehicles
            .iter()
            .filter(|(_, v)| class.is_none_or(|c| v.class == c))
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        let rows = ids
            .iter()
            .filter_map(|id| self.vehicles.get(*id).map(|v| Self::row(id, v)))
            .collect();
        let tracks = tracks.then(|| {
            ids.iter()
                .filter_map(|id| {
                    let v = self.vehicles.get(*id)?;
                    let pts = v
                        .track
                        .iter()
                        .map(|&(t, lon, lat)| (t, round6(lon), round6(lat)))
                        .collect();
                    Some(((*id).clone(), pts))
                })
                .collect()
        });
        VehiclesView {
            columns: COLUMNS,
            rows,
            tracks,
            ts_ms: (self.latest_ms != 0).then_some(self.latest_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const ROAD: &str = r#"
[road]
id = "T"
name = "test"
tz = "+08:00"
directions = ["up", "down"]
geometry = [[0, 116.0, 39.0], [10000, 116.0, 39.0899]]
lanes = 3
speed_limit_kmh = 120
"#;

    fn pos(v: &str, ts: i64, lon: f64, lat: f64) -> PositionRow {
        PositionRow {
            seq: 0,
            ts_ms: ts,
            vehicle: v.into(),
            class: "hazmat".into(),
            lat,
            lon,
            speed_kmh: Some(70.0),
            heading_deg: Some(0.0),
        }
    }

    #[test]
    fn matches_side_tracks_and_expires() {
        let road = RoadBook::from_toml(ROAD, "ROAD.toml").expect("road");
        let mut b = VehicleBoard::new();
        // East of a northbound centre line = right of increasing stake = up.
        b.observe(&road, &pos("A", 1_000, 116.0002, 39.01));
        b.observe(&road, &pos("B", 1_000, 115.9998, 39.02));
        b.observe(&road, &pos("C", 1_000, 116.01, 39.02)); // 850 m off: off the road
        let u: Value = serde_json::from_str(&b.take_update().expect("changes")).expect("json");
        let rows = u["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 3);
        let dir = |id: &str| {
            rows.iter()
                .find(|r| r[0] == id)
                .map(|r| r[6].clone())
                .expect("row")
        };
        assert_eq!(dir("A"), "up");
        assert_eq!(dir("B"), "down");
        assert_eq!(dir("C"), Value::Null);
        let a = rows.iter().find(|r| r[0] == "A").expect("A");
        assert!((a[5].as_f64().expect("stake") - 1112.0).abs() < 5.0, "{a}");
        // Nothing new: no update.
        assert!(b.take_update().is_none());
        // A late report does not move A back; a new one extends its track.
        b.observe(&road, &pos("A", 500, 116.0002, 39.0));
        b.observe(&road, &pos("A", 2_000, 116.0002, 39.011));
        let l = b.list(Some("hazmat"), true);
        assert_eq!(l.tracks.as_ref().expect("tracks")["A"].len(), 2);
        // The answer's text: keys in alphabetical order, as always written.
        let text = serde_json::to_string(&b.list(Some("hazmat"), true)).expect("json");
        assert!(
            text.starts_with(r#"{"columns":["vehicle","class","ts_ms","lon","lat","stake_m","direction","speed_kmh","heading_deg"],"rows":[["A","hazmat",2000,116.0002,39.011,"#),
            "{text}"
        );
        assert!(
            text.contains(r#"],"tracks":{"A":[[1000,116.0002,39.01],[2000,116.0002,39.011]],"B":"#),
            "{text}"
        );
        assert!(text.ends_with(r#"]]},"ts_ms":2000}"#), "{text}");
        let no_tracks = serde_json::to_string(&b.list(Some("car"), false)).expect("json");
        assert_eq!(
            no_tracks,
            r#"{"columns":["vehicle","class","ts_ms","lon","lat","stake_m","direction","speed_kmh","heading_deg"],"rows":[],"ts_ms":2000}"#
        );
        // Tracks are bounded.
        for i in 0..100 {
            b.observe(&road, &pos("A", 3_000 + i, 116.0002, 39.02));
        }
        let l = b.list(None, true);
        assert_eq!(l.tracks.as_ref().expect("tracks")["A"].len(), TRACK_POINTS);
        // B and C fall silent for 10 minutes of data time: gone.
        b.take_update();
        b.observe(
            &road,
            &pos("A", 1_000 + SILENT_AFTER_MS + 1, 116.0002, 39.03),
        );
        let u: Value = serde_json::from_str(&b.take_update().expect("changes")).expect("json");
        let mut gone: Vec<&str> = u["gone"]
            .as_array()
            .expect("gone")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        gone.sort();
        assert_eq!(gone, ["B", "C"]);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn non_finite_reports_are_ignored() {
        let road = RoadBook::from_toml(ROAD, "ROAD.toml").expect("road");
        let mut b = VehicleBoard::new();
        b.observe(&road, &pos("A", 1, f64::NAN, 39.0));
        assert!(b.is_empty());
        assert!(b.take_update().is_none());
    }
}
