//! EVENTS.jsonl and ACTIONS.jsonl writers (replay contract v1).

use std::io::Write;

use serde::Serialize;
use serde::ser::Serializer;
use zhilu_core::{Action, Command, Event, EventDetail};
use zhilu_road::RoadBook;

/// Formats epoch ms as RFC 3339 in the road's offset (`2026-11-23T06:00:20+08:00`).
pub fn format_time(ts_ms: i64, offset_s: i32) -> String {
    let off = jiff::tz::Offset::from_seconds(offset_s).unwrap_or(jiff::tz::Offset::UTC);
    match jiff::Timestamp::from_millisecond(ts_ms) {
        Ok(t) => t.display_with_offset(off).to_string(),
        Err(_) => String::new(),
    }
}

/// Stakes are written as integers when whole (`11500`, not `11500.0`).
fn metres<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    // Decimetres are plenty for a stake.
    let v = (v * 10.0).round() / 10.0;
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(v as i64)
    } else {
        s.serialize_f64(v)
    }
}

#[derive(Serialize)]
struct EventLine<'a> {
    id: String,
    kind: &'static str,
    direction: &'static str,
    #[serde(serialize_with = "metres")]
    from_m: f64,
    #[serde(serialize_with = "metres")]
    to_m: f64,
    start: String,
    detected_at: String,
    end: Option<String>,
    severity: u8,
    evidence: Evidence<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detector: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lane: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    visibility_m: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    band: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    surface_temp_c: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vehicle: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_speed_kmh: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trend: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_speed_kmh: Option<f32>,
}

#[derive(Serialize)]
struct Evidence<'a> {
    detectors: Vec<&'a str>,
    rule: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lanes: Vec<u8>,
}

/// Renders one event as a JSON line (without the newline). `vehicle`
/// names interned vehicle ids.
pub fn event_json(e: &Event, road: &RoadBook, vehicle: &dyn Fn(u32) -> String) -> String {
    let off = road.tz_offset_s();
    let det = |i: u32| {
        road.detectors()
            .get(i as usize)
            .map_or("?", |d| d.id.as_str())
    };
    let mut line = EventLine {
        id: format!("E{}", e.seq),
        kind: e.kind.as_str(),
        direction: e.direction.map_or("both", |d| d.as_str()),
        from_m: e.from_m,
        to_m: e.to_m,
        start: format_time(e.start_ms, off),
        detected_at: format_time(e.detected_ms, off),
        end: e.end_ms.map(|t| format_time(t, off)),
        severity: e.severity,
        evidence: Evidence {
            detectors: e.detectors.iter().map(|&d| det(d)).collect(),
            rule: e.rule,
            rules: Vec::new(),
            lanes: Vec::new(),
        },
        detector: None,
        lane: None,
        visibility_m: None,
        band: None,
        surface_temp_c: None,
        observed: None,
        vehicle: None,
        max_speed_kmh: None,
        trend: None,
        min_speed_kmh: None,
    };
    let name;
    match &e.detail {
        EventDetail::DetectorFault {
            detector,
            lanes,
            rules,
        } => {
            line.detector = Some(det(*detector));
            line.lane = (lanes.len() == 1).then(|| lanes[0]);
            line.evidence.rules = rules.iter().map(|r| r.as_str()).collect();
            line.evidence.lanes = lanes.clone();
        }
        EventDetail::Fog { visibility_m, band } => {
            line.visibility_m = Some(visibility_m.round());
            line.band = Some(*band);
        }
        EventDetail::Ice {
            surface_temp_c,
            observed,
        } => {
            line.surface_temp_c = Some((surface_temp_c * 10.0).round() / 10.0);
            line.observed = Some(*observed);
        }
        EventDetail::Vehicle {
            vehicle: v,
            max_speed_kmh,
        } => {
            name = vehicle(*v);
            line.vehicle = Some(&name);
            line.max_speed_kmh = Some(max_speed_kmh.round());
        }
        EventDetail::Congestion {
            trend,
            min_speed_kmh,
        } => {
            line.trend = Some(match trend {
                1.. => "growing",
                0 => "stable",
                _ => "shrinking",
            });
            line.min_speed_kmh = Some(min_speed_kmh.round());
        }
        EventDetail::None => {}
    }
    serde_json::to_string(&line).unwrap_or_default()
}

#[derive(Serialize)]
struct ActionLine<'a> {
    at: String,
    device: &'a str,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    banned: Option<Vec<&'static str>>,
    event: Option<String>,
    reason: &'a str,
}

/// Renders one action as a JSON line (without the newline).
pub fn action_json(a: &Action, road: &RoadBook) -> String {
    use serde_json::Value;
    let (mut mode, mut banned) = (None, None);
    let (action, value, text) = match &a.command {
        Command::SpeedLimit(v) => (
            "speed_limit",
            Some(v.map_or(Value::Null, |v| v.into())),
            None,
        ),
        Command::Message(t) => ("message", None, Some(t.as_str())),
        Command::FogLights(m) => {
            mode = Some(m.as_str());
            ("fog_lights", None, None)
        }
        Command::Entry { state, banned: b } => {
            if !b.is_empty() {
                banned = Some(b.clone());
            }
            ("entry", Some(Value::from(state.as_str())), None)
        }
        Command::Deicing(on) => (
            "deicing",
            Some(Value::from(if *on { "on" } else { "off" })),
            None,
        ),
        Command::TunnelPlan(p) => (
            "tunnel_plan",
            Some(p.as_ref().map_or(Value::Null, |p| Value::from(p.as_str()))),
            None,
        ),
    };
    let line = ActionLine {
        at: format_time(a.at_ms, road.tz_offset_s()),
        device: &a.device,
        action,
        value,
        text,
        mode,
        direction: a.direction.map(|d| d.as_str()),
        banned,
        event: a.event_seq.map(|s| format!("E{s}")),
        reason: &a.reason,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// A JSON-lines sink that names its file in errors.
pub struct JsonlWriter<W: Write> {
    out: W,
    file: String,
    /// Lines written.
    pub lines: u64,
}

impl<W: Write> JsonlWriter<W> {
    /// Wraps a writer.
    pub fn new(out: W, file: &str) -> Self {
        JsonlWriter {
            out,
            file: file.to_string(),
            lines: 0,
        }
    }

    /// Writes one line.
    pub fn line(&mut self, json: &str) -> Result<(), crate::IoError> {
        self.out
            .write_all(json.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
            .map_err(|source| crate::IoError::Write {
                file: self.file.clone(),
                source,
            })?;
        self.lines += 1;
        Ok(())
    }

    /// Flushes.
    pub fn flush(&mut self) -> Result<(), crate::IoError> {
        self.out.flush().map_err(|source| crate::IoError::Write {
            file: self.file.clone(),
            source,
        })
    }
}
