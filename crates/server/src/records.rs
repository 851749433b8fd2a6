//! The text of what the engine writes (typed inside, text at the doors):
//! the documents of the events the server raises itself, the event
//! messages of the stream, the details of audit entries and escalation
//! alarms, and the edits of a stored event's document (its id, its end).
//! The engine hands typed values here and gets the text the store keeps
//! and the stream sends; nothing in `engine.rs` reads or writes JSON.
//!
//! Every object is written with its keys in alphabetical order, as these
//! objects have always been written.

use serde::Serialize;
use serde_json::{Map, Value};
use zhilu_core::event::Severity;
use zhilu_road::RoadBook;

/// The text of a value (objects' keys sorted).
fn text(v: &impl Serialize) -> String {
    serde_json::to_value(v).map_or_else(|_| String::new(), |v| v.to_string())
}

/// A document read back from its text (`null` if it is not JSON).
fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// What an event the server raises itself (a source's clock, a device out
/// of plan, a terminal's alarm) has in common with the brain's events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerEvent<'a> {
    /// `E17`.
    pub id: &'a str,
    /// `source_clock`, `device_out_of_plan`, `terminal_alarm`.
    pub kind: &'a str,
    /// `up`, `down` or `both`.
    pub direction: &'a str,
    /// Stretch (m).
    pub from_m: f64,
    /// Stretch (m).
    pub to_m: f64,
    /// When it started (RFC 3339).
    pub start: String,
    /// When it was detected (RFC 3339).
    pub detected_at: String,
    /// When it ended (`null` while open).
    pub end: Option<String>,
    /// 1 (info) … 5.
    pub severity: i16,
    /// The rule that raised it (and a terminal's alarm bits).
    pub evidence: Evidence<'a>,
}

/// An event's evidence: no detectors, the rule, and a terminal's alarm bits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence<'a> {
    /// The terminal's alarm bits (terminal alarms only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm_bits: Option<u32>,
    /// Always empty: a server event rests on no detector.
    pub detectors: [&'a str; 0],
    /// `clock.checked`, `devices.out_of_plan`, `jt808.emergency` …
    pub rule: &'a str,
}

impl<'a> Evidence<'a> {
    /// The evidence of a rule.
    pub fn rule(rule: &'a str) -> Evidence<'a> {
        Evidence {
            alarm_bits: None,
            detectors: [],
            rule,
        }
    }
}

/// What a `source_clock` event adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceClock<'a> {
    /// The source whose clock is off.
    pub source: &'a str,
    /// Why (`ahead`, `ahead_of_quorum`, …).
    pub clock: &'a str,
    /// How far ahead (s; `null` when not known).
    pub ahead_s: Option<f64>,
}

/// What a `device_out_of_plan` event adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutOfPlan<'a> {
    /// The device.
    pub device: &'a str,
    /// The command kind of the plan.
    pub command: &'a str,
    /// What it shows.
    pub shows: String,
    /// What the plan requires.
    pub requires: String,
}

/// What a `terminal_alarm` event adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TerminalAlarm<'a> {
    /// The vehicle (plate).
    pub vehicle: &'a str,
    /// The alarm in words.
    pub alarm: &'a str,
}

/// The document of an event the server raises: the common fields and the
/// kind's own, in one object.
pub fn server_event(common: &ServerEvent, own: &impl Serialize) -> String {
    let mut o = match serde_json::to_value(common) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    if let Ok(Value::Object(more)) = serde_json::to_value(own) {
        o.extend(more);
    }
    Value::Object(o).to_string()
}

/// A brain event's document: its line as in EVENTS.jsonl with the
/// server's id.
pub fn event_with_id(line: &str, id: &str) -> String {
    let mut v = parse(line);
    if let Value::Object(o) = &mut v {
        o.insert("id".into(), Value::from(id));
    }
    v.to_string()
}

/// A stored event's document ended at `end` (RFC 3339).
pub fn event_ended(json: &str, end: &str) -> String {
    let mut v = parse(json);
    v["end"] = Value::from(end);
    v.to_string()
}

/// A stored event's document ended at `end` after a restart for `reason`
/// (an event the brain did not find again).
pub fn event_ended_for(json: &str, end: &str, reason: &str) -> String {
    let mut v = parse(json);
    if let Value::Object(o) = &mut v {
        o.insert("end".into(), Value::from(end));
        o.insert("end_reason".into(), Value::from(reason));
    }
    v.to_string()
}

/// A stream `event` message: an event's change (`opened`, `updated`,
/// `ended`) at a tick, with its document and its severity class
/// (`level`, [`crate::flow::decorate`]).
pub fn event_message(change: &str, tick_ms: i64, event_json: &str, road: &RoadBook) -> String {
    #[derive(Serialize)]
    struct Message<'a> {
        change: &'a str,
        event: Value,
        tick_ms: i64,
    }
    let mut event = parse(event_json);
    crate::flow::decorate(&mut event, road);
    text(&Message {
        change,
        event,
        tick_ms,
    })
}

/// The stream message of an event the operators had closed and the brain
/// found worse: `reopened` by `system`.
pub fn reopened_message(tick_ms: i64, event_json: &str, road: &RoadBook) -> String {
    #[derive(Serialize)]
    struct Message {
        by: &'static str,
        change: &'static str,
        event: Value,
        tick_ms: i64,
    }
    let mut event = parse(event_json);
    crate::flow::decorate(&mut event, road);
    text(&Message {
        by: "system",
        change: "reopened",
        event,
        tick_ms,
    })
}

/// The history line of a reopening: by `system`, from one class to the next.
pub fn reopened_line(was: Severity, is: Severity) -> String {
    #[derive(Serialize)]
    struct Line {
        by: &'static str,
        text: String,
    }
    text(&Line {
        by: "system",
        text: format!("{} → {}", was.as_str(), is.as_str()),
    })
}

/// A stream `plan` message: `{"change": "created" | "changed" | "decided",
/// "plan": PlanView}`.
pub fn plan_message(change: &str, view: &crate::views::PlanView) -> String {
    #[derive(Serialize)]
    struct Message<'a> {
        change: &'a str,
        plan: &'a crate::views::PlanView,
    }
    text(&Message { change, plan: view })
}

/// An audit entry's detail.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditDetail<'a> {
    /// An action applied, reconciled or proposed: its number (none for a
    /// proposal), its record's text (none for a reconciliation), why.
    Action {
        /// Action number.
        action: Option<i64>,
        /// The action's record (its text, as stored).
        command: Option<&'a str>,
        /// Why the brain sent it.
        reason: &'a str,
        /// The response plan it is a step of (written only when it is one).
        plan: Option<i64>,
        /// The reason as a code with parameters (`reason_code`), when the
        /// command's record does not already carry it.
        code: Option<&'a zhilu_core::Reason>,
    },
    /// A pending proposal superseded by a newer one (`P13`).
    Superseded {
        /// The newer proposal.
        by: String,
    },
    /// An operator's decision: the reason, the proposed command's text,
    /// the applied one's (none when rejected).
    Decision {
        /// The operator's reason.
        reason: Option<&'a str>,
        /// The proposal's command (its text).
        proposed: &'a str,
        /// The command applied (its text).
        applied: Option<&'a str>,
        /// The response plan the proposal is a step of (written only when it is one).
        plan: Option<i64>,
    },
    /// A proposal that expired at its deadline.
    Expired {
        /// The deadline (wall clock, epoch ms).
        expires_wall_ms: i64,
    },
    /// A response plan made by the brain: its name, the event, its cause key.
    PlanMade {
        /// The plan's name.
        name: &'a str,
        /// The event it answers.
        event: Option<&'a str>,
        /// The cause it groups (event id or kind).
        cause: &'a str,
    },
    /// An operator's decision on steps of a plan: the steps, the reason.
    PlanDecision {
        /// The steps decided (`P12`).
        steps: Vec<String>,
        /// The operator's reason.
        reason: Option<&'a str>,
    },
    /// A closed event reopened because its severity class rose.
    Reopen {
        /// The class of its last history line.
        from: Severity,
        /// The class now.
        to: Severity,
    },
}

impl AuditDetail<'_> {
    /// Its text.
    pub fn json(&self) -> String {
        let mut o = Map::new();
        match self {
            AuditDetail::Action {
                action,
                command,
                reason,
                plan,
                code,
            } => {
                if let Some(p) = plan {
                    o.insert("plan".into(), Value::from(format!("PL{p}")));
                }
                if let Some(c) = code {
                    o.insert("reason_code".into(), zhilu_io::jsonl::reason_value(c));
                }
                if let Some(a) = action {
                    o.insert("action".into(), Value::from(*a));
                }
                if let Some(c) = command {
                    o.insert("command".into(), parse(c));
                }
                o.insert("reason".into(), Value::from(*reason));
            }
            AuditDetail::Superseded { by } => {
                o.insert("by".into(), Value::from(by.as_str()));
            }
            AuditDetail::Decision {
                reason,
                proposed,
                applied,
                plan,
            } => {
                if let Some(p) = plan {
                    o.insert("plan".into(), Value::from(format!("PL{p}")));
                }
                o.insert("reason".into(), Value::from(*reason));
                o.insert("proposed".into(), parse(proposed));
                o.insert(
                    "applied".into(),
                    applied
                        .and_then(|j| serde_json::from_str(j).ok())
                        .unwrap_or(Value::Null),
                );
            }
            AuditDetail::Expired { expires_wall_ms } => {
                o.insert("expires_wall_ms".into(), Value::from(*expires_wall_ms));
            }
            AuditDetail::PlanMade { name, event, cause } => {
                o.insert("name".into(), Value::from(*name));
                o.insert("event".into(), Value::from(*event));
                o.insert("cause".into(), Value::from(*cause));
            }
            AuditDetail::PlanDecision { steps, reason } => {
                o.insert("steps".into(), Value::from(steps.clone()));
                o.insert("reason".into(), Value::from(*reason));
            }
            AuditDetail::Reopen { from, to } => {
                o.insert("from".into(), Value::from(from.as_str()));
                o.insert("to".into(), Value::from(to.as_str()));
            }
        }
        Value::Object(o).to_string()
    }
}

/// The alarm of a proposal left unanswered past its deadline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unanswered<'a> {
    /// `proposal_unanswered`.
    pub alarm: &'static str,
    /// `P12`.
    pub proposal: String,
    /// The device it commands.
    pub device: &'a str,
    /// The device's name in the road book (its id when it has none).
    pub device_name: String,
    /// The response plan it is a step of (`PL4`).
    pub plan: Option<String>,
    /// The plan's name.
    pub plan_name: Option<String>,
    /// The command's kind.
    pub kind: &'a str,
    /// The event it answers.
    pub event_id: Option<&'a str>,
    /// How often it was escalated.
    pub level: u32,
    /// When it was proposed (wall clock, epoch ms).
    pub pending_since_wall_ms: i64,
    /// When it escalates next (wall clock, epoch ms).
    pub next_wall_ms: i64,
}

impl Unanswered<'_> {
    /// Its text.
    pub fn json(&self) -> String {
        text(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_event_is_one_object_with_sorted_keys() {
        let common = ServerEvent {
            id: "E4",
            kind: "source_clock",
            direction: "both",
            from_m: 1000.0,
            to_m: 1000.0,
            start: "2026-01-01T08:00:00+08:00".into(),
            detected_at: "2026-01-01T08:00:00+08:00".into(),
            end: None,
            severity: 2,
            evidence: Evidence::rule("clock.checked"),
        };
        let own = SourceClock {
            source: "D1",
            clock: "ahead",
            ahead_s: None,
        };
        assert_eq!(
            server_event(&common, &own),
            r#"{"ahead_s":null,"clock":"ahead","detected_at":"2026-01-01T08:00:00+08:00","direction":"both","end":null,"evidence":{"detectors":[],"rule":"clock.checked"},"from_m":1000.0,"id":"E4","kind":"source_clock","severity":2,"source":"D1","start":"2026-01-01T08:00:00+08:00","to_m":1000.0}"#
        );
        let alarm = ServerEvent {
            evidence: Evidence {
                alarm_bits: Some(5),
                ..Evidence::rule("jt808.emergency")
            },
            ..common
        };
        let v: Value = serde_json::from_str(&server_event(
            &alarm,
            &TerminalAlarm {
                vehicle: "冀A1",
                alarm: "紧急报警",
            },
        ))
        .expect("json");
        assert_eq!(
            v["evidence"],
            serde_json::json!({"alarm_bits": 5, "detectors": [], "rule": "jt808.emergency"})
        );
        assert_eq!(v["vehicle"], "冀A1");
    }

    #[test]
    fn stored_documents_are_edited_and_messages_written_as_before() {
        let line = r#"{"kind":"fog","end":null,"severity":3}"#;
        let with_id = event_with_id(line, "E7");
        assert_eq!(
            with_id,
            r#"{"end":null,"id":"E7","kind":"fog","severity":3}"#
        );
        assert_eq!(
            event_ended(&with_id, "T"),
            r#"{"end":"T","id":"E7","kind":"fog","severity":3}"#
        );
        assert_eq!(
            event_ended_for(&with_id, "T", "gone"),
            r#"{"end":"T","end_reason":"gone","id":"E7","kind":"fog","severity":3}"#
        );
        assert_eq!(event_ended("not json", "T"), r#"{"end":"T"}"#);
        assert_eq!(event_ended_for("not json", "T", "gone"), "null");
        let road = zhilu_traffic::bulk::Day::new(zhilu_traffic::bulk::DayConfig {
            stations: 4,
            hours: 1,
            ..Default::default()
        })
        .map(|day| {
            let mut w = Vec::new();
            day.write_road(&mut w).expect("road");
            RoadBook::from_toml(std::str::from_utf8(&w).expect("utf8"), "ROAD.toml").expect("book")
        })
        .expect("day");
        let level = crate::flow::level(&parse(&with_id), &road);
        assert_eq!(
            event_message("opened", 60_000, &with_id, &road),
            format!(
                r#"{{"change":"opened","event":{{"end":null,"id":"E7","kind":"fog","level":"{}","severity":3}},"tick_ms":60000}}"#,
                level.as_str()
            )
        );
    }

    #[test]
    fn audit_details_are_written_as_before() {
        let cmd = r#"{"action":"speed_limit","value":60}"#;
        let cases = [
            (
                AuditDetail::Action {
                    action: Some(3),
                    command: Some(cmd),
                    reason: "fog",
                    plan: None,
                    code: None,
                },
                r#"{"action":3,"command":{"action":"speed_limit","value":60},"reason":"fog"}"#,
            ),
            (
                AuditDetail::Action {
                    action: None,
                    command: Some(cmd),
                    reason: "fog",
                    plan: None,
                    code: None,
                },
                r#"{"command":{"action":"speed_limit","value":60},"reason":"fog"}"#,
            ),
            (
                AuditDetail::Action {
                    action: Some(4),
                    command: None,
                    reason: "plan",
                    plan: None,
                    code: None,
                },
                r#"{"action":4,"reason":"plan"}"#,
            ),
            (
                AuditDetail::Superseded { by: "P9".into() },
                r#"{"by":"P9"}"#,
            ),
            (
                AuditDetail::Decision {
                    reason: None,
                    proposed: cmd,
                    applied: None,
                    plan: None,
                },
                r#"{"applied":null,"proposed":{"action":"speed_limit","value":60},"reason":null}"#,
            ),
            (
                AuditDetail::Expired { expires_wall_ms: 5 },
                r#"{"expires_wall_ms":5}"#,
            ),
        ];
        for (d, want) in cases {
            assert_eq!(d.json(), want, "{d:?}");
        }
        let u = Unanswered {
            alarm: "proposal_unanswered",
            proposal: "P2".into(),
            device: "VSL-1",
            kind: "speed_limit",
            event_id: None,
            level: 2,
            pending_since_wall_ms: 1,
            next_wall_ms: 2,
            device_name: "VSL-1".into(),
            plan: None,
            plan_name: None,
        };
        assert_eq!(
            u.json(),
            r#"{"alarm":"proposal_unanswered","device":"VSL-1","device_name":"VSL-1","event_id":null,"kind":"speed_limit","level":2,"next_wall_ms":2,"pending_since_wall_ms":1,"plan":null,"plan_name":null,"proposal":"P2"}"#
        );
    }
}
