//! The typed state of a roadside device — what a command asks it to show
//! and what it reports it shows — and its one JSON shape (`MQTT.md`,
//! "Device states"). Every JSON spelling of a device state lives here.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};
use zhilu_core::event::{CommandKind, bannable_class};
use zhilu_core::{Command, EntryState, FogLightMode};
use zhilu_road::{DeviceKind, Direction};

/// What a device shows (or is asked to show). The command `kind` on the wire
/// is [`DeviceState::kind`]; the command `payload` and the state a device
/// reports are both [`DeviceState::to_json`] (the same shape).
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceState {
    /// `blank` — `{"blank": true}`: the sign dark / output off (a speed-limit
    /// sign without a variable limit, so the posted limit applies; a message
    /// sign without text).
    Blank,
    /// `speed_limit` — `{"limit_kmh": 60}`.
    SpeedLimit {
        /// The limit shown (km/h).
        limit_kmh: u16,
    },
    /// `vms` — `{"text": "前方浓雾 限速40"}` (a non-empty text).
    Vms {
        /// The text shown.
        text: String,
    },
    /// `fog_lights` — `{"mode": "tail_marking"}`.
    FogLights {
        /// Mode.
        mode: FogLightMode,
    },
    /// `entry` — `{"state": "metered", "direction": "up", "banned": ["hazmat"]}`
    /// (`direction` absent when the entry serves one carriageway; `banned`
    /// absent when empty).
    Entry {
        /// Open, metered or closed.
        state: EntryState,
        /// The carriageway the state is for.
        direction: Option<Direction>,
        /// Vehicle classes turned away.
        banned: Vec<&'static str>,
    },
    /// `deicing` — `{"on": true}`.
    Deicing {
        /// Sprayers on.
        on: bool,
    },
    /// `tunnel_plan` — `{"plan": "fire"}`, `{"plan": null}` = stand down.
    TunnelPlan {
        /// The plan in force.
        plan: Option<String>,
    },
}

/// Every command `kind` of the wire.
pub const KINDS: [&str; 7] = [
    "speed_limit",
    "vms",
    "fog_lights",
    "entry",
    "deicing",
    "tunnel_plan",
    "blank",
];

/// A device state that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device state: {0}")]
pub struct StateError(pub String);

fn bad(msg: impl Into<String>) -> StateError {
    StateError(msg.into())
}

impl DeviceState {
    /// The state a core command asks a device to take (for entries, on
    /// `direction`).
    pub fn from_command(c: &Command, direction: Option<Direction>) -> DeviceState {
        match c {
            Command::SpeedLimit(Some(v)) => DeviceState::SpeedLimit { limit_kmh: *v },
            Command::SpeedLimit(None) => DeviceState::Blank,
            Command::Message(t) if t.is_empty() => DeviceState::Blank,
            Command::Message(t) => DeviceState::Vms { text: t.clone() },
            Command::FogLights(m) => DeviceState::FogLights { mode: *m },
            Command::Entry { state, banned } => DeviceState::Entry {
                state: *state,
                direction,
                banned: banned.clone(),
            },
            Command::Deicing(on) => DeviceState::Deicing { on: *on },
            Command::TunnelPlan(p) => DeviceState::TunnelPlan { plan: p.clone() },
        }
    }

    /// The core command this state means for a command of `kind` (a blank
    /// speed-limit sign has no variable limit, a blank message sign no
    /// text, …); `None` when the state is not one of that kind.
    pub fn as_command(&self, kind: CommandKind) -> Option<Command> {
        Some(match (self, kind) {
            (DeviceState::Blank, k) => Command::default_of(k),
            (DeviceState::SpeedLimit { limit_kmh }, CommandKind::SpeedLimit) => {
                Command::SpeedLimit(Some(*limit_kmh))
            }
            (DeviceState::Vms { text }, CommandKind::Message) => Command::Message(text.clone()),
            (DeviceState::FogLights { mode }, CommandKind::FogLights) => Command::FogLights(*mode),
            (DeviceState::Entry { state, banned, .. }, CommandKind::Entry) => Command::Entry {
                state: *state,
                banned: banned.clone(),
            },
            (DeviceState::Deicing { on }, CommandKind::Deicing) => Command::Deicing(*on),
            (DeviceState::TunnelPlan { plan }, CommandKind::TunnelPlan) => {
                Command::TunnelPlan(plan.clone())
            }
            _ => return None,
        })
    }

    /// The core command kind of this state (`None` for blank, which every
    /// kind has).
    pub fn command_kind(&self) -> Option<CommandKind> {
        Some(match self {
            DeviceState::Blank => return None,
            DeviceState::SpeedLimit { .. } => CommandKind::SpeedLimit,
            DeviceState::Vms { .. } => CommandKind::Message,
            DeviceState::FogLights { .. } => CommandKind::FogLights,
            DeviceState::Entry { .. } => CommandKind::Entry,
            DeviceState::Deicing { .. } => CommandKind::Deicing,
            DeviceState::TunnelPlan { .. } => CommandKind::TunnelPlan,
        })
    }

    /// The command `kind` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            DeviceState::Blank => "blank",
            DeviceState::SpeedLimit { .. } => "speed_limit",
            DeviceState::Vms { .. } => "vms",
            DeviceState::FogLights { .. } => "fog_lights",
            DeviceState::Entry { .. } => "entry",
            DeviceState::Deicing { .. } => "deicing",
            DeviceState::TunnelPlan { .. } => "tunnel_plan",
        }
    }

    /// The JSON shape (command payload and reported state).
    pub fn to_json(&self) -> Value {
        match self {
            DeviceState::Blank => json!({"blank": true}),
            DeviceState::SpeedLimit { limit_kmh } => json!({"limit_kmh": limit_kmh}),
            DeviceState::Vms { text } => json!({"text": text}),
            DeviceState::FogLights { mode } => json!({"mode": mode.as_str()}),
            DeviceState::Entry {
                state,
                direction,
                banned,
            } => {
                let mut o = Map::new();
                o.insert("state".into(), Value::from(state.as_str()));
                if let Some(d) = direction {
                    o.insert("direction".into(), Value::from(d.as_str()));
                }
                if !banned.is_empty() {
                    o.insert("banned".into(), Value::from(banned.clone()));
                }
                Value::Object(o)
            }
            DeviceState::Deicing { on } => json!({"on": on}),
            DeviceState::TunnelPlan { plan } => json!({"plan": plan}),
        }
    }

    /// The JSON text of [`DeviceState::to_json`] (for storage).
    pub fn to_json_string(&self) -> String {
        self.to_json().to_string()
    }

    /// Reads a reported state (or a command payload). The shape says the
    /// kind: `blank: true`, else `limit_kmh`, `text`, `mode`, `state`, `on`
    /// or `plan`. Unknown keys are ignored. States stored by earlier
    /// versions (`{"action": "speed_limit", "value": 60}`) are read too.
    pub fn from_json(v: &Value) -> Result<DeviceState, StateError> {
        let Value::Object(o) = v else {
            return Err(bad(format!("expected an object, got {v}")));
        };
        if o.contains_key("action") {
            return from_legacy(o);
        }
        if let Some(b) = o.get("blank") {
            return match b {
                Value::Bool(true) => Ok(DeviceState::Blank),
                _ => Err(bad("`blank` must be true when present")),
            };
        }
        if let Some(l) = o.get("limit_kmh") {
            let limit_kmh = l
                .as_u64()
                .filter(|l| (1..=200).contains(l))
                .ok_or_else(|| bad(format!("limit_kmh {l}: expected 1–200 km/h")))?;
            return Ok(DeviceState::SpeedLimit {
                limit_kmh: limit_kmh as u16,
            });
        }
        if let Some(t) = o.get("text") {
            let text = t.as_str().ok_or_else(|| bad("text must be a string"))?;
            return Ok(if text.is_empty() {
                DeviceState::Blank
            } else {
                DeviceState::Vms { text: text.into() }
            });
        }
        if let Some(m) = o.get("mode") {
            let mode = m.as_str().and_then(FogLightMode::parse).ok_or_else(|| {
                bad(format!(
                    "fog-light mode {m}: expected off, guidance, tail_marking or warning_flash"
                ))
            })?;
            return Ok(DeviceState::FogLights { mode });
        }
        if let Some(s) = o.get("state") {
            let state = s
                .as_str()
                .and_then(EntryState::parse)
                .ok_or_else(|| bad(format!("entry state {s}: expected open, metered or closed")))?;
            let direction = match o.get("direction") {
                None | Some(Value::Null) => None,
                Some(d) => Some(
                    d.as_str()
                        .and_then(Direction::parse)
                        .ok_or_else(|| bad(format!("direction {d}: expected up or down")))?,
                ),
            };
            let banned = banned_of(o.get("banned"))?;
            return Ok(DeviceState::Entry {
                state,
                direction,
                banned,
            });
        }
        if let Some(on) = o.get("on") {
            let on = on
                .as_bool()
                .ok_or_else(|| bad("on must be true or false"))?;
            return Ok(DeviceState::Deicing { on });
        }
        if let Some(p) = o.get("plan") {
            return match p {
                Value::Null => Ok(DeviceState::TunnelPlan { plan: None }),
                Value::String(s) if !s.is_empty() => Ok(DeviceState::TunnelPlan {
                    plan: Some(s.clone()),
                }),
                _ => Err(bad("plan must be a non-empty string or null")),
            };
        }
        Err(bad(format!(
            "no known state key (blank, limit_kmh, text, mode, state, on, plan) in {v}"
        )))
    }

    /// [`DeviceState::from_json`] of a JSON text.
    pub fn from_json_str(s: &str) -> Result<DeviceState, StateError> {
        let v: Value = serde_json::from_str(s).map_err(|e| bad(e.to_string()))?;
        DeviceState::from_json(&v)
    }

    /// Reads a command's `kind` and `payload`; the payload must be of that kind.
    pub fn from_kind_payload(kind: &str, payload: &Value) -> Result<DeviceState, StateError> {
        if !KINDS.contains(&kind) {
            return Err(bad(format!("unknown command kind `{kind}`")));
        }
        let s = DeviceState::from_json(payload)?;
        if s.kind() != kind {
            return Err(bad(format!(
                "payload {payload} is a `{}` state, not `{kind}`",
                s.kind()
            )));
        }
        Ok(s)
    }

    /// Whether a device of road-book kind `device` can show this state.
    pub fn fits(&self, device: DeviceKind) -> bool {
        matches!(
            (self, device),
            (DeviceState::Blank, _)
                | (DeviceState::SpeedLimit { .. }, DeviceKind::Vsl)
                | (DeviceState::Vms { .. }, DeviceKind::Vms)
                | (DeviceState::FogLights { .. }, DeviceKind::FogLights)
                | (DeviceState::Entry { .. }, DeviceKind::Interchange)
                | (DeviceState::Deicing { .. }, DeviceKind::Deicer)
                | (DeviceState::TunnelPlan { .. }, DeviceKind::Tunnel)
        )
    }
}

/// Road-book device kinds the centre commands (the others — detectors,
/// weather stations, service areas — are data sources, not MQTT devices).
pub fn commandable(kind: DeviceKind) -> bool {
    matches!(
        kind,
        DeviceKind::Vsl
            | DeviceKind::Vms
            | DeviceKind::FogLights
            | DeviceKind::Deicer
            | DeviceKind::Interchange
            | DeviceKind::Tunnel
    )
}

fn banned_of(v: Option<&Value>) -> Result<Vec<&'static str>, StateError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|c| {
                c.as_str().and_then(bannable_class).ok_or_else(|| {
                    bad(format!(
                        "banned class {c}: expected hazmat, oversize or heavy"
                    ))
                })
            })
            .collect(),
        Some(x) => Err(bad(format!("banned {x}: expected a list"))),
    }
}

/// A state stored before the typed wire (`{"action": …, "value": …}`).
fn from_legacy(o: &Map<String, Value>) -> Result<DeviceState, StateError> {
    let action = o.get("action").and_then(Value::as_str).unwrap_or("");
    let kind = CommandKind::parse(action)
        .ok_or_else(|| bad(format!("unknown legacy action `{action}`")))?;
    let value = o.get("value").unwrap_or(&Value::Null);
    let s = match kind {
        CommandKind::SpeedLimit => match value.as_u64() {
            Some(v) => DeviceState::SpeedLimit {
                limit_kmh: v as u16,
            },
            None => DeviceState::Blank,
        },
        CommandKind::Message => match o.get("text").and_then(Value::as_str).unwrap_or("") {
            "" => DeviceState::Blank,
            t => DeviceState::Vms { text: t.into() },
        },
        CommandKind::FogLights => DeviceState::FogLights {
            mode: o
                .get("mode")
                .and_then(Value::as_str)
                .and_then(FogLightMode::parse)
                .ok_or_else(|| bad("legacy fog_lights without a mode"))?,
        },
        CommandKind::Entry => DeviceState::Entry {
            state: value
                .as_str()
                .and_then(EntryState::parse)
                .ok_or_else(|| bad("legacy entry without a state"))?,
            direction: o
                .get("direction")
                .and_then(Value::as_str)
                .and_then(Direction::parse),
            banned: banned_of(o.get("banned"))?,
        },
        CommandKind::Deicing => DeviceState::Deicing {
            on: value.as_str() == Some("on"),
        },
        CommandKind::TunnelPlan => DeviceState::TunnelPlan {
            plan: value.as_str().map(str::to_string),
        },
    };
    Ok(s)
}

impl Serialize for DeviceState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for DeviceState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        DeviceState::from_json(&v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_round_trip_and_legacy_reads() {
        let cases = [
            (DeviceState::Blank, r#"{"blank":true}"#),
            (
                DeviceState::SpeedLimit { limit_kmh: 60 },
                r#"{"limit_kmh":60}"#,
            ),
            (
                DeviceState::Vms {
                    text: "前方浓雾".into(),
                },
                r#"{"text":"前方浓雾"}"#,
            ),
            (
                DeviceState::FogLights {
                    mode: FogLightMode::TailMarking,
                },
                r#"{"mode":"tail_marking"}"#,
            ),
            (
                DeviceState::Entry {
                    state: EntryState::Metered,
                    direction: Some(Direction::Up),
                    banned: vec!["hazmat"],
                },
                r#"{"banned":["hazmat"],"direction":"up","state":"metered"}"#,
            ),
            (DeviceState::Deicing { on: true }, r#"{"on":true}"#),
            (DeviceState::TunnelPlan { plan: None }, r#"{"plan":null}"#),
        ];
        for (s, j) in cases {
            assert_eq!(s.to_json_string(), j);
            assert_eq!(DeviceState::from_json_str(j).unwrap(), s);
        }
        for (legacy, s) in [
            (
                r#"{"action":"speed_limit","value":40}"#,
                DeviceState::SpeedLimit { limit_kmh: 40 },
            ),
            (
                r#"{"action":"speed_limit","value":null}"#,
                DeviceState::Blank,
            ),
            (r#"{"action":"message","text":""}"#, DeviceState::Blank),
            (
                r#"{"action":"deicing","value":"on"}"#,
                DeviceState::Deicing { on: true },
            ),
        ] {
            assert_eq!(DeviceState::from_json_str(legacy).unwrap(), s, "{legacy}");
        }
        for garbage in [
            "1",
            r#"{}"#,
            r#"{"blank":false}"#,
            r#"{"limit_kmh":"60"}"#,
            r#"{"limit_kmh":0}"#,
            r#"{"mode":"disco"}"#,
            r#"{"state":"open","banned":["cars"]}"#,
        ] {
            assert!(DeviceState::from_json_str(garbage).is_err(), "{garbage}");
        }
        // Unknown keys are ignored.
        assert_eq!(
            DeviceState::from_json_str(r#"{"limit_kmh":80,"brightness":3}"#).unwrap(),
            DeviceState::SpeedLimit { limit_kmh: 80 }
        );
    }

    #[test]
    fn commands_map_to_states_and_back() {
        let cmds = [
            Command::SpeedLimit(Some(40)),
            Command::SpeedLimit(None),
            Command::Message("前方拥堵 注意减速".into()),
            Command::Message(String::new()),
            Command::FogLights(FogLightMode::WarningFlash),
            Command::Entry {
                state: EntryState::Closed,
                banned: vec![],
            },
            Command::Deicing(false),
            Command::TunnelPlan(Some("fire".into())),
        ];
        for c in cmds {
            let s = DeviceState::from_command(&c, Some(Direction::Down));
            assert_eq!(s.as_command(c.kind()), Some(c.clone()), "{c:?}");
        }
        assert_eq!(
            DeviceState::SpeedLimit { limit_kmh: 60 }.as_command(CommandKind::Message),
            None
        );
    }
}
