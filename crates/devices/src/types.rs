//! What the server asks of devices and what devices report back (the
//! command is also the MQTT `cmd` payload, see `MQTT.md`).

use serde::{Deserialize, Serialize};

use crate::DeviceState;

/// What a device does when it loses contact with the centre — no sign of
/// life (heartbeat, command, `online`) for `after_s` seconds (`MQTT.md`,
/// "Fail-safe"). Which one a command carries depends on why it was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Failsafe {
    /// Keep showing, then blank the sign / switch the output off.
    Blank {
        /// Seconds without the centre before the device blanks.
        after_s: u32,
    },
    /// Keep showing, then show `state` instead (a fixed VMS text, a fog-safe limit).
    Fallback {
        /// Seconds without the centre before the device falls back.
        after_s: u32,
        /// The state to show instead (same shape as a reported state).
        state: DeviceState,
    },
    /// Keep what was last applied, however long contact is lost.
    Hold,
}

impl Failsafe {
    /// After how long without the centre this fail-safe changes the device, if it does.
    pub fn after(&self) -> Option<std::time::Duration> {
        match self {
            Failsafe::Blank { after_s } | Failsafe::Fallback { after_s, .. } => {
                Some(std::time::Duration::from_secs((*after_s).into()))
            }
            Failsafe::Hold => None,
        }
    }

    /// The state a device showing `current` takes under this fail-safe.
    pub fn state(&self, current: &DeviceState) -> DeviceState {
        match self {
            Failsafe::Blank { .. } => DeviceState::Blank,
            Failsafe::Fallback { state, .. } => state.clone(),
            Failsafe::Hold => current.clone(),
        }
    }
}

/// One command to one roadside device; on the wire (`MQTT.md`, "Commands")
/// `state` is written as `kind` + `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "WireCommand", try_from = "WireCommand")]
pub struct DeviceCommand {
    /// Unique and increasing (the server's action id).
    pub command_id: u64,
    /// Device id from the road book.
    pub device: String,
    /// The state the device must take.
    pub state: DeviceState,
    /// Wall time it was issued (epoch ms).
    pub issued_ms: i64,
    /// Wall time after which it must not be applied or retried (epoch ms).
    pub expires_ms: i64,
    /// Behaviour on loss of contact.
    pub failsafe: Failsafe,
}

impl DeviceCommand {
    /// The command as its wire JSON text.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The command of a wire JSON text (the server's stored pending command).
    pub fn from_json_str(s: &str) -> Result<DeviceCommand, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }
}

/// The `command_id` of a command's JSON text, whatever its state's shape
/// (also commands stored by earlier versions).
pub fn command_id_of(json: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Id {
        command_id: u64,
    }
    serde_json::from_str::<Id>(json).ok().map(|i| i.command_id)
}

/// The wire shape of a command.
#[derive(Serialize, Deserialize)]
struct WireCommand {
    command_id: u64,
    device: String,
    kind: String,
    payload: serde_json::Value,
    issued_ms: i64,
    expires_ms: i64,
    failsafe: Failsafe,
}

impl From<DeviceCommand> for WireCommand {
    fn from(c: DeviceCommand) -> WireCommand {
        WireCommand {
            command_id: c.command_id,
            device: c.device,
            kind: c.state.kind().to_string(),
            payload: c.state.to_json(),
            issued_ms: c.issued_ms,
            expires_ms: c.expires_ms,
            failsafe: c.failsafe,
        }
    }
}

impl TryFrom<WireCommand> for DeviceCommand {
    type Error = crate::StateError;

    fn try_from(w: WireCommand) -> Result<DeviceCommand, crate::StateError> {
        Ok(DeviceCommand {
            command_id: w.command_id,
            device: w.device,
            state: DeviceState::from_kind_payload(&w.kind, &w.payload)?,
            issued_ms: w.issued_ms,
            expires_ms: w.expires_ms,
            failsafe: w.failsafe,
        })
    }
}

/// What an adapter reports back. Device state in the server is only ever
/// set from these (what the device confirmed), never from what was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum DeviceReport {
    /// The device confirmed a command and now shows `state`.
    Confirmed {
        /// Device id.
        device: String,
        /// The command confirmed.
        command_id: u64,
        /// What the device reported it shows (not what was sent).
        state: DeviceState,
        /// Centre wall time of the report (epoch ms).
        wall_ms: i64,
    },
    /// The device reported its state on its own (heartbeat, local change,
    /// fail-safe taken, restart).
    State {
        /// Device id.
        device: String,
        /// What the device reported it shows.
        state: DeviceState,
        /// Centre wall time of the report (epoch ms).
        wall_ms: i64,
    },
    /// A command was not confirmed after every retry, or was refused.
    Failed {
        /// Device id.
        device: String,
        /// The command that failed.
        command_id: u64,
        /// Why, for people (`no confirmation after 4 attempts`, `superseded by command 43`).
        reason: String,
        /// Centre wall time of the report (epoch ms).
        wall_ms: i64,
    },
    /// A command passed its expiry before it was confirmed.
    Expired {
        /// Device id.
        device: String,
        /// The command that expired.
        command_id: u64,
        /// Centre wall time of the report (epoch ms).
        wall_ms: i64,
    },
    /// The device was heard from again after being offline.
    Online {
        /// Device id.
        device: String,
        /// Centre wall time of the report (epoch ms).
        wall_ms: i64,
    },
    /// Nothing heard from the device for the configured time.
    Offline {
        /// Device id.
        device: String,
        /// When the device was last heard from (epoch ms).
        since_ms: i64,
        /// Centre wall time of the report (epoch ms).
        wall_ms: i64,
    },
}

impl DeviceReport {
    /// The device the report is about.
    pub fn device(&self) -> &str {
        match self {
            DeviceReport::Confirmed { device, .. }
            | DeviceReport::State { device, .. }
            | DeviceReport::Failed { device, .. }
            | DeviceReport::Expired { device, .. }
            | DeviceReport::Online { device, .. }
            | DeviceReport::Offline { device, .. } => device,
        }
    }

    /// The report as JSON text (for the audit log).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
