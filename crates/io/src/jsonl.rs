//! EVENTS.jsonl and ACTIONS.jsonl writers (replay contract v1).

use std::io::Write;

use serde::Serialize;
use serde::ser::Serializer;
use zhilu_core::{Action, Command, Event, EventDetail, Reason};
use zhilu_road::{Direction, RoadBook};

/// Formats epoch ms as RFC 3339 in the road's offset (`2026-11-23T06:00:20+08:00`).
pub use zhilu_contract::time_string as format_time;

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
        direction: e
            .direction
            .map_or(zhilu_contract::BOTH_DIRECTIONS, |d| d.as_str()),
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
    reason: String,
    /// The live server's record only: the reason as a code with parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<ReasonLine<'a>>,
}

/// The contract's fields of a command: `action`, and `value`, `text`,
/// `mode`, `banned` where the kind has them.
struct CommandParts<'a> {
    action: &'static str,
    value: Option<serde_json::Value>,
    text: Option<&'a str>,
    mode: Option<&'static str>,
    banned: Option<Vec<&'static str>>,
}

fn command_parts(c: &Command) -> CommandParts<'_> {
    use serde_json::Value;
    let (mut mode, mut banned) = (None, None);
    let (value, text) = match c {
        Command::SpeedLimit(v) => (Some(v.map_or(Value::Null, |v| v.into())), None),
        Command::Message(t) => (None, Some(t.as_str())),
        Command::FogLights(m) => {
            mode = Some(m.as_str());
            (None, None)
        }
        Command::Entry { state, banned: b } => {
            if !b.is_empty() {
                banned = Some(b.clone());
            }
            (Some(Value::from(state.as_str())), None)
        }
        Command::Deicing(on) => (Some(Value::from(if *on { "on" } else { "off" })), None),
        Command::TunnelPlan(p) => (
            Some(p.as_ref().map_or(Value::Null, |p| Value::from(p.as_str()))),
            None,
        ),
    };
    CommandParts {
        action: c.kind().as_str(),
        value,
        text,
        mode,
        banned,
    }
}

fn action_line<'a>(a: &'a Action, road: &RoadBook, event: Option<String>) -> ActionLine<'a> {
    let p = command_parts(&a.command);
    ActionLine {
        at: format_time(a.at_ms, road.tz_offset_s()),
        device: &a.device,
        action: p.action,
        value: p.value,
        text: p.text,
        mode: p.mode,
        direction: a.direction.map(|d| d.as_str()),
        banned: p.banned,
        event,
        reason: a.reason.text(),
        reason_code: None,
    }
}

/// A reason as a code with its parameters, as the live API and stream
/// carry it beside the text: `{"code": "fog_band", "band": 4,
/// "visibility_m": 49, "stations": ["W03"], "profile": "national",
/// "basis": "art81_50"}` — only the parameters it has.
#[derive(Serialize)]
struct ReasonLine<'a> {
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    band: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    visibility_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    surface_temp_c: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stations: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basis: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fire: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    jiangsu: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    taper: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    shows: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requires: Option<&'a str>,
}

fn reason_line(r: &Reason) -> ReasonLine<'_> {
    ReasonLine {
        code: r.code.as_str(),
        band: r.band,
        visibility_m: r.visibility_m,
        surface_temp_c: r.surface_temp_c,
        stations: &r.stations,
        profile: r.profile.as_deref(),
        basis: r.basis.map(|b| b.as_str()),
        from_m: r.from_m,
        to_m: r.to_m,
        rule: r.rule.as_deref(),
        tunnel: r.tunnel.as_deref(),
        fire: r.fire,
        jiangsu: r.jiangsu,
        taper: r.taper,
        shows: r.shows.as_deref(),
        requires: r.requires.as_deref(),
    }
}

/// [`ReasonLine`] of a reason, as a JSON value.
pub fn reason_value(r: &Reason) -> serde_json::Value {
    serde_json::to_value(reason_line(r)).unwrap_or_default()
}

/// Renders one action as a JSON line (without the newline).
pub fn action_json(a: &Action, road: &RoadBook) -> String {
    let line = action_line(a, road, a.event_seq.map(|s| format!("E{s}")));
    serde_json::to_string(&line).unwrap_or_default()
}

/// The live server's record of an action: the line of [`action_json`] with
/// the server's event id (or `null`) as `event` and the reason's
/// [`reason_value`] as `reason_code`, keys in sorted order.
pub fn action_record(a: &Action, road: &RoadBook, event: Option<&str>) -> String {
    action_record_value(a, road, event).to_string()
}

/// [`action_record`] as a JSON value (to embed in an audit entry).
pub fn action_record_value(a: &Action, road: &RoadBook, event: Option<&str>) -> serde_json::Value {
    let mut line = action_line(a, road, event.map(str::to_string));
    line.reason_code = Some(reason_line(&a.reason));
    serde_json::to_value(&line).unwrap_or_default()
}

/// The contract's fields of a command alone (`{"action": "speed_limit",
/// "value": 60}`, with `direction` for entries): how the API has always
/// shown a device's state.
pub fn command_value(c: &Command, direction: Option<Direction>) -> serde_json::Value {
    let p = command_parts(c);
    let mut o = serde_json::Map::new();
    o.insert("action".into(), p.action.into());
    if let Some(v) = p.value {
        o.insert("value".into(), v);
    }
    if let Some(t) = p.text {
        o.insert("text".into(), t.into());
    }
    if let Some(m) = p.mode {
        o.insert("mode".into(), m.into());
    }
    if let Some(d) = direction {
        o.insert("direction".into(), d.as_str().into());
    }
    if let Some(b) = p.banned {
        o.insert("banned".into(), b.into());
    }
    serde_json::Value::Object(o)
}

/// An action record with its command replaced by `c` (an operator's edit).
pub fn with_command(
    record: &str,
    c: &Command,
    direction: Option<Direction>,
) -> Result<String, String> {
    let mut v: serde_json::Value = serde_json::from_str(record).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(o) = &mut v else {
        return Err("an action record is an object".into());
    };
    for k in ["action", "value", "text", "mode", "banned", "direction"] {
        o.remove(k);
    }
    if let serde_json::Value::Object(cmd) = command_value(c, direction) {
        o.extend(cmd);
    }
    Ok(v.to_string())
}

/// Reads the command back from an action line or record ([`action_json`],
/// [`action_record`], [`command_value`]): the command and its carriageway.
pub fn parse_action_command(json: &str) -> Result<(Command, Option<Direction>), String> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let kind = v
        .get("action")
        .and_then(Value::as_str)
        .and_then(zhilu_core::event::CommandKind::parse)
        .ok_or_else(|| format!("no known `action` in {v}"))?;
    let value = v.get("value").unwrap_or(&Value::Null);
    let direction = match v.get("direction") {
        None | Some(Value::Null) => None,
        Some(d) => Some(
            d.as_str()
                .and_then(Direction::parse)
                .ok_or_else(|| format!("direction {d}"))?,
        ),
    };
    use zhilu_core::event::CommandKind as K;
    let command = match kind {
        K::SpeedLimit => match value {
            Value::Null => Command::SpeedLimit(None),
            v => Command::SpeedLimit(Some(
                v.as_u64()
                    .and_then(|x| u16::try_from(x).ok())
                    .ok_or_else(|| format!("speed_limit value {v}"))?,
            )),
        },
        K::Message => Command::Message(
            v.get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        K::FogLights => Command::FogLights(
            v.get("mode")
                .and_then(Value::as_str)
                .and_then(zhilu_core::FogLightMode::parse)
                .ok_or_else(|| "fog_lights without a known mode".to_string())?,
        ),
        K::Entry => Command::Entry {
            state: value
                .as_str()
                .and_then(zhilu_core::EntryState::parse)
                .ok_or_else(|| format!("entry value {value}"))?,
            banned: match v.get("banned") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|c| {
                        c.as_str()
                            .and_then(zhilu_core::event::bannable_class)
                            .ok_or_else(|| format!("banned class {c}"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(b) => return Err(format!("banned {b}")),
            },
        },
        K::Deicing => Command::Deicing(match value.as_str() {
            Some("on") => true,
            Some("off") => false,
            _ => return Err(format!("deicing value {value}")),
        }),
        K::TunnelPlan => Command::TunnelPlan(value.as_str().map(str::to_string)),
    };
    Ok((command, direction))
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

#[cfg(test)]
mod tests {
    use super::*;
    use zhilu_core::{EntryState, FogLightMode, ReasonCode};

    #[test]
    fn the_server_record_carries_the_reason_code_and_the_file_only_the_text() {
        let road = zhilu_road::RoadBook::from_toml(
            "[road]\nid = \"R\"\ntz = \"+08:00\"\ndirections = [\"up\"]\ngeometry = [[0, 116.0, 39.0], [1000, 116.0, 39.01]]\nlanes = 2\nspeed_limit_kmh = 120\n",
            "ROAD.toml",
        )
        .unwrap();
        let a = Action {
            at_ms: 1_700_000_000_000,
            device: "S1".into(),
            direction: None,
            command: Command::SpeedLimit(Some(40)),
            event_seq: Some(2),
            reason: zhilu_core::Reason {
                band: Some(3),
                visibility_m: Some(80.0),
                basis: Some(zhilu_core::LegalBasis::Art81Below100),
                ..zhilu_core::Reason::new(ReasonCode::FogBand)
            },
        };
        let file: serde_json::Value = serde_json::from_str(&action_json(&a, &road)).unwrap();
        assert_eq!(file["reason"], a.reason.text().as_str());
        assert!(file.get("reason_code").is_none(), "{file}");
        let record: serde_json::Value =
            serde_json::from_str(&action_record(&a, &road, Some("E7"))).unwrap();
        assert_eq!(record["reason"], a.reason.text().as_str());
        assert_eq!(
            record["reason_code"],
            serde_json::json!({"code": "fog_band", "band": 3, "visibility_m": 80.0, "basis": "art81_100"})
        );
    }

    #[test]
    fn action_records_read_back_to_their_command() {
        let road = RoadBook::from_toml(
            r#"
[road]
id = "T1"
name = "test road"
tz = "+08:00"
directions = ["up", "down"]
geometry = [[0, 116.3200, 39.8500], [25000, 116.2000, 39.6400]]
lanes = 3
speed_limit_kmh = 120

[[detector]]
id = "D1"
direction = "up"
stake_m = 12000
lanes = 3
"#,
            "ROAD.toml",
        )
        .unwrap();
        let cmds = [
            (Command::SpeedLimit(Some(40)), None),
            (Command::SpeedLimit(None), None),
            (Command::Message("前方浓雾 限速40".into()), None),
            (Command::FogLights(FogLightMode::TailMarking), None),
            (
                Command::Entry {
                    state: EntryState::Metered,
                    banned: vec!["hazmat", "heavy"],
                },
                Some(Direction::Up),
            ),
            (Command::Deicing(true), None),
            (Command::TunnelPlan(Some("fire".into())), None),
            (Command::TunnelPlan(None), None),
        ];
        for (command, direction) in cmds {
            let a = Action {
                at_ms: 1_700_000_000_000,
                device: "X".into(),
                direction,
                command: command.clone(),
                event_seq: Some(3),
                reason: Reason::new(ReasonCode::Released),
            };
            for text in [action_json(&a, &road), action_record(&a, &road, Some("E9"))] {
                assert_eq!(
                    parse_action_command(&text),
                    Ok((command.clone(), direction)),
                    "{text}"
                );
            }
            let edited = with_command(
                &action_record(&a, &road, None),
                &Command::SpeedLimit(Some(20)),
                None,
            )
            .unwrap();
            assert_eq!(
                parse_action_command(&edited),
                Ok((Command::SpeedLimit(Some(20)), None))
            );
        }
    }
}
