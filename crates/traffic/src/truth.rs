//! Ground truth (真值): what the simulator staged, for scoring the platform.

use std::fmt::Write as _;

use zhilu_road::{Detector, Direction, RoadBook};

use zhilu_contract::{BOTH_DIRECTIONS, EventKind, FaultRule};

use crate::output::{Plate, VehicleClass, format_time, json_str};
use crate::scenario::{DetectorFault, FogBank, IceSpell};

/// One staged episode with its times and place (a line of TRUTH.jsonl).
#[derive(Debug, Clone, PartialEq)]
pub struct TruthRecord {
    /// Event kind as in EVENTS.jsonl (`incident`, `fog`, `ice`, `hazmat_stopped`, …, `detector_fault`).
    pub kind: EventKind,
    /// Start (epoch ms).
    pub start_ms: i64,
    /// End (epoch ms).
    pub end_ms: i64,
    /// Carriageway, `None` for both (weather).
    pub direction: Option<Direction>,
    /// Lower stake of the place (m).
    pub from_m: f64,
    /// Upper stake of the place (m); equal to `from_m` for a point.
    pub to_m: f64,
    /// The vehicle, for hazmat episodes.
    pub vehicle: Option<Plate>,
    /// Detector index and its data-quality rule, for detector faults.
    pub detector: Option<(u32, FaultRule)>,
    /// Lane (1 = innermost) of a detector fault, if one lane.
    pub lane: Option<u8>,
    /// Lanes blocked and lanes there, for incidents.
    pub lanes_blocked: Option<(u8, u8)>,
    /// Lowest visibility (fog), coldest surface (ice) or highest speed (speeding).
    pub value: Option<f64>,
    /// Tunnel index, for restricted-zone entries.
    pub tunnel: Option<u32>,
}

impl TruthRecord {
    fn base(
        kind: EventKind,
        start_ms: i64,
        end_ms: i64,
        dir: Option<Direction>,
        from_m: f64,
        to_m: f64,
    ) -> Self {
        TruthRecord {
            kind,
            start_ms,
            end_ms,
            direction: dir,
            from_m,
            to_m,
            vehicle: None,
            detector: None,
            lane: None,
            lanes_blocked: None,
            value: None,
            tunnel: None,
        }
    }

    pub(crate) fn fog(f: &FogBank, start_ms: i64) -> Self {
        TruthRecord {
            value: Some(f.min_visibility_m),
            ..Self::base(
                EventKind::Fog,
                start_ms,
                start_ms + i64::from(f.duration_s) * 1000,
                None,
                f.from_m,
                f.to_m,
            )
        }
    }

    pub(crate) fn ice(i: &IceSpell, start_ms: i64) -> Self {
        TruthRecord {
            value: Some(i.min_surface_c),
            ..Self::base(
                EventKind::Ice,
                start_ms,
                start_ms + i64::from(i.duration_s) * 1000,
                None,
                i.from_m,
                i.to_m,
            )
        }
    }

    pub(crate) fn fault(f: &DetectorFault, index: u32, d: &Detector, start_ms: i64) -> Self {
        TruthRecord {
            detector: Some((index, f.kind.rule())),
            lane: f.lane,
            ..Self::base(
                EventKind::DetectorFault,
                start_ms,
                start_ms + i64::from(f.duration_s) * 1000,
                Some(d.direction),
                d.stake_m,
                d.stake_m,
            )
        }
    }

    pub(crate) fn incident(
        dir: Direction,
        stake_m: f64,
        blocked: u8,
        lanes: u8,
        start_ms: i64,
        end_ms: i64,
    ) -> Self {
        TruthRecord {
            lanes_blocked: Some((blocked, lanes)),
            ..Self::base(
                EventKind::Incident,
                start_ms,
                end_ms,
                Some(dir),
                stake_m,
                stake_m,
            )
        }
    }

    pub(crate) fn hazmat_stopped(
        vehicle: u32,
        dir: Direction,
        stake_m: f64,
        start_ms: i64,
        end_ms: i64,
    ) -> Self {
        TruthRecord {
            vehicle: Some(Plate(vehicle, VehicleClass::Hazmat)),
            ..Self::base(
                EventKind::HazmatStopped,
                start_ms,
                end_ms,
                Some(dir),
                stake_m,
                stake_m,
            )
        }
    }

    pub(crate) fn hazmat_speeding(
        vehicle: u32,
        dir: Direction,
        max_kmh: f64,
        start_ms: i64,
        end_ms: i64,
    ) -> Self {
        TruthRecord {
            vehicle: Some(Plate(vehicle, VehicleClass::Hazmat)),
            value: Some(max_kmh),
            ..Self::base(
                EventKind::HazmatSpeeding,
                start_ms,
                end_ms,
                Some(dir),
                f64::NAN,
                f64::NAN,
            )
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn hazmat_restricted(
        vehicle: u32,
        class: VehicleClass,
        dir: Direction,
        tunnel: u32,
        from_m: f64,
        to_m: f64,
        start_ms: i64,
        end_ms: i64,
    ) -> Self {
        TruthRecord {
            vehicle: Some(Plate(vehicle, class)),
            tunnel: Some(tunnel),
            ..Self::base(
                EventKind::HazmatRestrictedZone,
                start_ms,
                end_ms,
                Some(dir),
                from_m,
                to_m,
            )
        }
    }

    /// Appends the record as one JSON line (with newline), times in the road's offset.
    pub fn write_json(&self, road: &RoadBook, out: &mut String) {
        let tz = road.tz_offset_s();
        out.push_str("{\"kind\":");
        json_str(self.kind.as_str(), out);
        out.push_str(",\"direction\":");
        json_str(
            self.direction.map_or(BOTH_DIRECTIONS, Direction::as_str),
            out,
        );
        if self.from_m.is_finite() {
            if self.from_m == self.to_m {
                let _ = write!(out, ",\"stake_m\":{:.0}", self.from_m);
            }
            let _ = write!(
                out,
                ",\"from_m\":{:.0},\"to_m\":{:.0}",
                self.from_m, self.to_m
            );
        }
        out.push_str(",\"start\":\"");
        format_time(self.start_ms, tz, out);
        out.push_str("\",\"end\":\"");
        format_time(self.end_ms, tz, out);
        let _ = write!(
            out,
            "\",\"duration_s\":{}",
            (self.end_ms - self.start_ms) / 1000
        );
        if let Some(p) = self.vehicle {
            out.push_str(",\"vehicle\":");
            json_str(&p.to_string(), out);
        }
        if let Some((d, rule)) = self.detector {
            out.push_str(",\"detector\":");
            json_str(
                road.detectors()
                    .get(d as usize)
                    .map_or("", |d| d.id.as_str()),
                out,
            );
            out.push_str(",\"rule\":");
            json_str(rule.as_str(), out);
            let _ = write!(out, ",\"lane\":{}", self.lane.unwrap_or(0));
        }
        if let Some((b, n)) = self.lanes_blocked {
            // Blocked lanes are the outer ones.
            out.push_str(",\"lanes\":[");
            for (k, l) in (n.saturating_sub(b) + 1..=n).enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{l}");
            }
            let _ = write!(out, "],\"lanes_blocked\":{b}");
        }
        if let Some(t) = self.tunnel {
            out.push_str(",\"tunnel\":");
            json_str(
                road.tunnels().get(t as usize).map_or("", |t| t.id.as_str()),
                out,
            );
        }
        if let Some(v) = self.value {
            let key = match self.kind {
                EventKind::Fog => "visibility_m",
                EventKind::Ice => "surface_temp_c",
                _ => "speed_kmh",
            };
            let _ = write!(out, ",\"{key}\":{v:.1}");
        }
        out.push_str("}\n");
    }
}
