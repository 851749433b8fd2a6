//! What the API and the live stream show of a stored proposal or device:
//! one typed shape each, written in one place, so `GET /api/proposals`,
//! `GET /api/devices` and the stream's `proposal` and `device` messages
//! are the same JSON. Fields are declared in alphabetical order: the order
//! in which these objects have always been written.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use zhilu_devices::DeviceState;
use zhilu_road::RoadBook;
use zhilu_store::{DeviceStateRow, EventRow, PlanRow, ProposalRow};

/// A proposal: a command waiting for (or decided by) an operator.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProposalView {
    /// The command as applied (an edit's value), once approved or edited.
    #[schema(value_type = Option<Object>)]
    pub applied: Option<Value>,
    /// The proposed command, e.g. `{"action": "speed_limit", "value": 60}`.
    #[schema(value_type = Object)]
    pub command: Value,
    /// When it was proposed (wall clock, epoch ms).
    pub created_ms: i64,
    /// Who decided it.
    pub decided_by: Option<String>,
    /// When it was decided (wall clock, epoch ms).
    pub decided_ms: Option<i64>,
    /// The operator's reason (required to reject or edit).
    pub decision_reason: Option<String>,
    /// The device it commands.
    pub device: String,
    /// The event it answers (`E17`).
    pub event: Option<String>,
    /// Its deadline (wall clock, epoch ms).
    pub expires_ms: i64,
    /// `P12`.
    pub id: String,
    /// The command's kind (`speed_limit`, `message`, …).
    pub kind: String,
    /// Why the brain proposed it.
    pub reason: String,
    /// `pending`, `approved`, `edited`, `rejected`, `expired`, `superseded`.
    pub status: String,
}

impl ProposalView {
    /// The view of a stored proposal.
    pub fn of(p: &ProposalRow) -> ProposalView {
        ProposalView {
            applied: p
                .final_json
                .as_deref()
                .and_then(|j| serde_json::from_str::<Value>(j).ok()),
            command: serde_json::from_str::<Value>(&p.json).unwrap_or(Value::Null),
            created_ms: p.created_wall_ms,
            decided_by: p.decided_by.clone(),
            decided_ms: p.decided_wall_ms,
            decision_reason: p.decision_reason.clone(),
            device: p.device.clone(),
            event: p.event_id.clone(),
            expires_ms: p.expires_wall_ms,
            id: format!("P{}", p.id),
            kind: p.kind.clone(),
            reason: p.reason.clone(),
            status: p.status.clone(),
        }
    }
}

/// One step of a response plan: a proposal, with the device's name from
/// the road book and the rule and legal basis its reason gives.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanStepView {
    /// The command as applied, once approved or edited; `null` for a step
    /// never applied (pending, rejected, expired, superseded).
    #[schema(value_type = Option<Object>)]
    pub applied: Option<Value>,
    /// Legal or regulatory basis (依据), when the rule gives one.
    pub basis: Option<String>,
    /// The proposed command, e.g. `{"action": "entry", "value": "closed", "direction": "down"}`.
    #[schema(value_type = Object)]
    pub command: Value,
    /// Who decided it.
    pub decided_by: Option<String>,
    /// When it was decided (wall clock, epoch ms).
    pub decided_ms: Option<i64>,
    /// The operator's reason.
    pub decision_reason: Option<String>,
    /// Device id (`T_GA`).
    pub device: String,
    /// Device name from the road book (固安), else its id.
    pub device_name: String,
    /// The carriageway the command is for (`up`, `down`), if any.
    pub direction: Option<String>,
    /// Its deadline (wall clock, epoch ms).
    pub expires_ms: i64,
    /// The step's proposal id (`P12`): the old proposal endpoints take it too.
    pub id: String,
    /// Command kind (`entry`, `tunnel_plan`, …).
    pub kind: String,
    /// Why the brain proposed it, in words.
    pub reason: String,
    /// The rule that asked for it (`weather.fog_band`), when named.
    pub rule: Option<String>,
    /// `pending`, `approved`, `edited`, `rejected`, `expired`, `superseded`.
    pub status: String,
}

impl PlanStepView {
    /// The view of a stored step.
    pub fn of(p: &ProposalRow, road: &RoadBook) -> PlanStepView {
        let command = serde_json::from_str::<Value>(&p.json).unwrap_or(Value::Null);
        PlanStepView {
            applied: p
                .final_json
                .as_deref()
                .and_then(|j| serde_json::from_str::<Value>(j).ok()),
            basis: crate::engine::plans::basis_of(&p.reason),
            direction: command["direction"].as_str().map(str::to_string),
            command,
            decided_by: p.decided_by.clone(),
            decided_ms: p.decided_wall_ms,
            decision_reason: p.decision_reason.clone(),
            device: p.device.clone(),
            device_name: crate::engine::plans::device_name(road, &p.device),
            expires_ms: p.expires_wall_ms,
            id: format!("P{}", p.id),
            kind: p.kind.clone(),
            reason: p.reason.clone(),
            rule: crate::engine::plans::rule_of(&p.reason),
            status: p.status.clone(),
        }
    }
}

/// A response plan (处置预案): its name, the event, its steps in order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanView {
    /// When it was made (wall clock, epoch ms).
    pub created_ms: i64,
    /// The carriageway of its event (`up`, `down`, `both`), if any.
    pub direction: Option<String>,
    /// The event it answers (`E17`), if any.
    pub event: Option<String>,
    /// The event's kind (`fog`, `incident`, …), if known.
    pub event_kind: Option<String>,
    /// Start of the event's stretch (stake, m), if known.
    pub from_m: Option<f64>,
    /// `PL12` (the id of its first step, `P12`).
    pub id: String,
    /// 名称: `团雾 K45+200–K52+000 下行 处置预案`.
    pub name: String,
    /// The rule its steps name (the first that names one).
    pub rule: Option<String>,
    /// `pending` (a step waits for an operator), `approved` (every step
    /// applied, superseded ones aside), `partial` (some applied, some
    /// rejected or expired), `rejected` (none applied, one or more
    /// rejected), `closed` (none applied: superseded or expired).
    pub status: String,
    /// Its steps, in the order the brain proposed them.
    pub steps: Vec<PlanStepView>,
    /// End of the event's stretch (stake, m), if known.
    pub to_m: Option<f64>,
    /// When a step last joined it (wall clock, epoch ms).
    pub updated_ms: i64,
}

impl PlanView {
    /// The view of a stored plan with its steps (and its event, if known).
    pub fn of(
        plan: &PlanRow,
        steps: &[ProposalRow],
        event: Option<&EventRow>,
        road: &RoadBook,
    ) -> PlanView {
        let steps: Vec<PlanStepView> = steps
            .iter()
            .filter(|s| s.plan_id == Some(plan.id))
            .map(|s| PlanStepView::of(s, road))
            .collect();
        PlanView {
            created_ms: plan.created_wall_ms,
            direction: event.map(|e| e.direction.clone()),
            event: plan.event_id.clone(),
            event_kind: event.map(|e| e.kind.clone()),
            from_m: event.map(|e| e.from_m.min(e.to_m)),
            id: format!("PL{}", plan.id),
            name: plan.name.clone(),
            // The steps' rule, else the event's (a reason may name none).
            rule: steps
                .iter()
                .find_map(|s| s.rule.clone())
                .or_else(|| event.map(|e| e.rule.clone()).filter(|r| !r.is_empty())),
            status: plan_status(steps.iter().map(|s| s.status.as_str())).into(),
            steps,
            to_m: event.map(|e| e.from_m.max(e.to_m)),
            updated_ms: plan.updated_wall_ms,
        }
    }
}

/// A plan's status from its steps' statuses (see [`PlanView::status`]).
pub fn plan_status<'a>(steps: impl IntoIterator<Item = &'a str>) -> &'static str {
    // A superseded step is history (a newer step on the same device took
    // its place): it counts only when nothing else is left.
    let (mut pending, mut applied, mut rejected, mut other) = (0, 0, 0, 0);
    for s in steps {
        match s {
            "pending" => pending += 1,
            "approved" | "edited" => applied += 1,
            "rejected" => rejected += 1,
            "superseded" => {}
            _ => other += 1,
        }
    }
    if pending > 0 {
        "pending"
    } else if applied > 0 && rejected + other == 0 {
        "approved"
    } else if applied > 0 {
        "partial"
    } else if rejected > 0 {
        "rejected"
    } else {
        "closed"
    }
}

/// A commandable device with the state it last confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeviceView {
    /// When it last confirmed a state (wall clock, epoch ms).
    pub confirmed_ms: Option<i64>,
    /// Device id.
    pub device: String,
    /// When it was last heard of (wall clock, epoch ms).
    pub last_seen_ms: Option<i64>,
    /// Whether it is online.
    pub online: bool,
    /// The command sent and not yet confirmed.
    #[schema(value_type = Option<Object>)]
    pub pending: Option<Value>,
    /// The state in the device's own shape (`{"limit_kmh": 60}`,
    /// `crates/devices/MQTT.md`); absent for a device never heard of.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub shows: Option<Option<Value>>,
    /// The confirmed state in the shape the API has always had
    /// (`{"action": "speed_limit", "value": 60}`, `{"blank": true}`).
    #[schema(value_type = Option<Object>)]
    pub state: Value,
}

impl DeviceView {
    /// The view of a device's stored state.
    pub fn of(d: &DeviceStateRow) -> DeviceView {
        let shows = DeviceState::from_json_str(&d.state_json).ok();
        let state = match &shows {
            Some(DeviceState::Blank) => serde_json::json!({"blank": true}),
            Some(s) => {
                let direction = match s {
                    DeviceState::Entry { direction, .. } => *direction,
                    _ => None,
                };
                s.command_kind()
                    .and_then(|k| s.as_command(k))
                    .map_or(Value::Null, |c| {
                        zhilu_io::jsonl::command_value(&c, direction)
                    })
            }
            None => Value::Null,
        };
        DeviceView {
            confirmed_ms: d.confirmed_wall_ms,
            device: d.device.clone(),
            last_seen_ms: d.last_seen_wall_ms,
            online: d.online,
            pending: d
                .pending_json
                .as_deref()
                .and_then(|j| serde_json::from_str::<Value>(j).ok()),
            shows: Some(shows.map(|s| s.to_json())),
            state,
        }
    }

    /// A device of the road book never heard of.
    pub fn unheard(id: &str) -> DeviceView {
        DeviceView {
            confirmed_ms: None,
            device: id.to_string(),
            last_seen_ms: None,
            online: false,
            pending: None,
            shows: None,
            state: Value::Null,
        }
    }
}

/// A proposal as published on the stream (the text of [`ProposalView`]).
pub fn proposal_json(p: &ProposalRow) -> String {
    serde_json::to_string(&ProposalView::of(p)).unwrap_or_default()
}

/// A device state as published on the stream (the text of [`DeviceView`]).
pub fn device_json(d: &DeviceStateRow) -> String {
    serde_json::to_string(&DeviceView::of(d)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal() -> ProposalRow {
        ProposalRow {
            id: 12,
            created_wall_ms: 1_000,
            expires_wall_ms: 2_000,
            at_ms: 900,
            device: "VSL-01".into(),
            kind: "speed_limit".into(),
            json: r#"{"value":60,"action":"speed_limit"}"#.into(),
            event_id: Some("E3".into()),
            reason: "fog".into(),
            status: "pending".into(),
            decided_by: None,
            decided_wall_ms: None,
            decision_reason: None,
            final_json: None,
            plan_id: None,
        }
    }

    #[test]
    fn a_proposal_is_written_with_sorted_keys() {
        // The shape the API and the stream have always written: every key,
        // in alphabetical order, absent values as null.
        assert_eq!(
            proposal_json(&proposal()),
            r#"{"applied":null,"command":{"action":"speed_limit","value":60},"created_ms":1000,"decided_by":null,"decided_ms":null,"decision_reason":null,"device":"VSL-01","event":"E3","expires_ms":2000,"id":"P12","kind":"speed_limit","reason":"fog","status":"pending"}"#
        );
    }

    #[test]
    fn a_plan_is_pending_while_a_step_waits_and_never_approved_unless_applied() {
        let cases: &[(&[&str], &str)] = &[
            (&["pending", "approved"], "pending"),
            (&["approved", "edited"], "approved"),
            (&["approved", "rejected"], "partial"),
            (&["approved", "superseded"], "approved"),
            (&["approved", "expired"], "partial"),
            (&["rejected", "superseded"], "rejected"),
            (&["superseded", "expired"], "closed"),
            (&[], "closed"),
        ];
        for (steps, want) in cases {
            assert_eq!(plan_status(steps.iter().copied()), *want, "{steps:?}");
        }
    }

    #[test]
    fn a_plan_view_names_devices_from_the_road_book_and_keeps_its_own_steps() {
        let road = RoadBook::from_toml(
            include_str!("../../../examples/demo/ROAD.toml"),
            "ROAD.toml",
        )
        .expect("the demo road");
        let ic = &road.interchanges()[0];
        let plan = PlanRow {
            id: 12,
            name: "交通事故 K12+345 上行 处置预案".into(),
            event_id: Some("E3".into()),
            ..PlanRow::default()
        };
        let step = |id, device: &str, plan_id| ProposalRow {
            id,
            device: device.into(),
            plan_id: Some(plan_id),
            reason: "交通事件: 1–2 米; 上游限速渐变".into(),
            status: "pending".into(),
            json: r#"{"action":"entry","value":"closed","direction":"up"}"#.into(),
            ..ProposalRow::default()
        };
        let event = EventRow {
            id: "E3".into(),
            kind: "incident".into(),
            direction: "up".into(),
            from_m: 12_400.0,
            to_m: 12_300.0,
            rule: "incident.speed_drop".into(),
            ..EventRow::default()
        };
        let v = PlanView::of(
            &plan,
            &[
                step(12, &ic.id, 12),
                step(13, "S_X", 12),
                step(14, &ic.id, 99),
            ],
            Some(&event),
            &road,
        );
        assert_eq!(v.id, "PL12");
        assert_eq!(v.steps.len(), 2, "a step of another plan is not shown");
        assert_eq!(v.steps[0].device_name, ic.name);
        assert_eq!(v.steps[1].device_name, "S_X");
        assert_eq!(v.steps[0].direction.as_deref(), Some("up"));
        // No rule named in the reasons: the event's rule.
        assert_eq!(v.rule.as_deref(), Some("incident.speed_drop"));
        assert_eq!((v.from_m, v.to_m), (Some(12_300.0), Some(12_400.0)));
        assert_eq!(v.status, "pending");
    }

    #[test]
    fn a_device_never_heard_of_has_no_shows() {
        let v = serde_json::to_string(&DeviceView::unheard("VMS-1")).expect("json");
        assert_eq!(
            v,
            r#"{"confirmed_ms":null,"device":"VMS-1","last_seen_ms":null,"online":false,"pending":null,"state":null}"#
        );
        let row = DeviceStateRow {
            device: "VMS-1".into(),
            state_json: "not a state".into(),
            confirmed_wall_ms: Some(5),
            online: true,
            last_seen_wall_ms: Some(6),
            pending_json: None,
            updated_wall_ms: 6,
        };
        assert_eq!(
            device_json(&row),
            r#"{"confirmed_ms":5,"device":"VMS-1","last_seen_ms":6,"online":true,"pending":null,"shows":null,"state":null}"#
        );
    }
}
