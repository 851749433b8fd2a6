//! What the server asks of devices and what devices report back (the
//! command is also the MQTT `cmd` payload, see `MQTT.md`).

use serde::{Deserialize, Serialize};

/// What a device does when it loses contact with the centre (no centre
/// heartbeat for `after_s`): a sign blanks or shows a fixed message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Failsafe {
    /// Blank the sign / switch the output off.
    Blank {
        /// Seconds without a centre heartbeat before the device blanks.
        after_s: u32,
    },
    /// Show this (already rendered) state instead, e.g. a VMS text.
    Fallback {
        /// Seconds without a centre heartbeat before the device falls back.
        after_s: u32,
        /// The state to show instead.
        state: serde_json::Value,
    },
    /// Keep what was last confirmed.
    Hold,
}

/// One command to one roadside device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceCommand {
    /// Unique and increasing (the server's action id).
    pub command_id: u64,
    /// Device id from the road book.
    pub device: String,
    /// Command kind (`speed_limit`, `vms`, `fog_lights`, `entry`, `deicing`,
    /// `tunnel_plan`, `blank`).
    pub kind: String,
    /// The state the device must take, as JSON (e.g. `{"limit_kmh":60}`).
    pub payload: serde_json::Value,
    /// Wall time it was issued (epoch ms).
    pub issued_ms: i64,
    /// Wall time after which it must not be applied or retried (epoch ms).
    pub expires_ms: i64,
    /// Behaviour on loss of contact.
    pub failsafe: Failsafe,
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
        state: serde_json::Value,
        /// Centre wall time of the report (epoch ms).
        wall_ms: i64,
    },
    /// The device reported its state on its own (heartbeat, local change,
    /// fail-safe taken, restart).
    State {
        /// Device id.
        device: String,
        /// What the device reported it shows.
        state: serde_json::Value,
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
