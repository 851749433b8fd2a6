//! What the API and the live stream show of a stored proposal or device:
//! one typed shape each, written in one place, so `GET /api/proposals`,
//! `GET /api/devices` and the stream's `proposal` and `device` messages
//! are the same JSON. Fields are declared in alphabetical order: the order
//! in which these objects have always been written.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use zhilu_devices::DeviceState;
use zhilu_store::{DeviceStateRow, ProposalRow};

/// A proposal: a command waiting for (or decided by) an operator.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProposalView {
    /// The command as applied (an edit's value), once approved or edited.
    #[schema(value_type = Option<Object>)]
    pub applied: Option<Value>,
    /// Data time of the tick that proposed it (epoch ms).
    pub at_ms: i64,
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
    /// Why the brain proposed it (the core's text, as in `ACTIONS.jsonl`).
    pub reason: String,
    /// The same reason as a code with parameters
    /// (`zhilu_io::jsonl::reason_value`), for a console to say in its
    /// language; `null` for a proposal stored without one.
    #[schema(value_type = Option<Object>)]
    pub reason_code: Option<Value>,
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
            at_ms: p.at_ms,
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
            reason_code: serde_json::from_str::<Value>(&p.json)
                .ok()
                .and_then(|mut v| v.get_mut("reason_code").map(Value::take)),
            status: p.status.clone(),
        }
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
        }
    }

    #[test]
    fn a_proposal_is_written_with_sorted_keys() {
        // The shape the API and the stream have always written: every key,
        // in alphabetical order, absent values as null.
        assert_eq!(
            proposal_json(&proposal()),
            r#"{"applied":null,"at_ms":900,"command":{"action":"speed_limit","value":60},"created_ms":1000,"decided_by":null,"decided_ms":null,"decision_reason":null,"device":"VSL-01","event":"E3","expires_ms":2000,"id":"P12","kind":"speed_limit","reason":"fog","reason_code":null,"status":"pending"}"#
        );
    }

    #[test]
    fn a_proposal_carries_its_reason_code_beside_the_text() {
        let mut p = proposal();
        p.json = r#"{"action":"speed_limit","value":60,"reason":"r","reason_code":{"code":"fog_band","band":4}}"#.into();
        let v: Value = serde_json::from_str(&proposal_json(&p)).expect("json");
        assert_eq!(v["reason"], "fog", "the text is the stored one");
        assert_eq!(
            v["reason_code"],
            serde_json::json!({"code": "fog_band", "band": 4})
        );
        assert_eq!(v["command"]["reason_code"]["code"], "fog_band");
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
