//! The MQTT wire format between the centre and roadside devices (see
//! `MQTT.md` beside this crate, which device vendors implement).

use serde::{Deserialize, Serialize};

use crate::DeviceError;

/// Retained payload of `{prefix}/centre/status` while the centre is connected.
pub const STATUS_ONLINE: &str = "online";
/// Retained payload of `{prefix}/centre/status` once the centre is gone (its last will).
pub const STATUS_OFFLINE: &str = "offline";

/// A device's state message on `{prefix}/devices/{device}/state`: a
/// confirmation when `command_id` is set, a heartbeat or spontaneous report
/// otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMessage {
    /// The command this message confirms, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<u64>,
    /// What the device actually shows now.
    pub state: crate::DeviceState,
    /// The device's own clock (epoch ms); informational only.
    #[serde(default)]
    pub ts_ms: i64,
}

/// The centre heartbeat payload on `{prefix}/centre/heartbeat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The centre's clock (epoch ms).
    pub ts_ms: i64,
}

/// Topic names under one prefix.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics under `prefix` (validated by the caller).
    pub fn new(prefix: &str) -> Topics {
        Topics {
            prefix: prefix.to_string(),
        }
    }

    /// `{prefix}/devices/{device}/cmd`
    pub fn cmd(&self, device: &str) -> String {
        format!("{}/devices/{device}/cmd", self.prefix)
    }

    /// `{prefix}/devices/{device}/state`
    pub fn state(&self, device: &str) -> String {
        format!("{}/devices/{device}/state", self.prefix)
    }

    /// `{prefix}/devices/+/cmd`
    pub fn all_cmd(&self) -> String {
        format!("{}/devices/+/cmd", self.prefix)
    }

    /// `{prefix}/devices/+/state`
    pub fn all_state(&self) -> String {
        format!("{}/devices/+/state", self.prefix)
    }

    /// `{prefix}/centre/heartbeat`
    pub fn heartbeat(&self) -> String {
        format!("{}/centre/heartbeat", self.prefix)
    }

    /// `{prefix}/centre/status`
    pub fn status(&self) -> String {
        format!("{}/centre/status", self.prefix)
    }

    /// `{prefix}/readings/{kind}`
    pub fn readings(&self, kind: &str) -> String {
        format!("{}/readings/{kind}", self.prefix)
    }

    /// The device of a `{prefix}/devices/{device}/{leaf}` topic.
    pub fn device_of<'t>(&self, topic: &'t str, leaf: &str) -> Option<&'t str> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("/devices/")?;
        let device = rest.strip_suffix(leaf)?.strip_suffix('/')?;
        (!device.is_empty() && !device.contains('/')).then_some(device)
    }
}

/// A topic prefix must be non-empty, free of wildcards and NUL, and must not
/// start or end with `/`.
pub fn validate_prefix(prefix: &str) -> Result<(), DeviceError> {
    if prefix.is_empty() {
        return Err(DeviceError::Config("prefix is empty".into()));
    }
    if prefix.contains(['+', '#', '\0']) {
        return Err(DeviceError::Config(format!(
            "prefix `{prefix}` contains an MQTT wildcard or NUL"
        )));
    }
    if prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
        return Err(DeviceError::Config(format!(
            "prefix `{prefix}` has an empty topic level"
        )));
    }
    Ok(())
}

/// A device id becomes one topic level: non-empty, no `/`, wildcard or NUL.
pub fn validate_device(device: &str) -> Result<(), DeviceError> {
    if device.is_empty() || device.contains(['/', '+', '#', '\0']) {
        return Err(DeviceError::Config(format!(
            "device id `{device}` cannot be an MQTT topic level (empty, or contains / + # or NUL)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_of_parses_only_exact_topics() {
        let t = Topics::new("zhilu/jx");
        assert_eq!(
            t.device_of("zhilu/jx/devices/VMS-01/state", "state"),
            Some("VMS-01")
        );
        assert_eq!(t.device_of(&t.state("a"), "state"), Some("a"));
        assert_eq!(t.device_of(&t.cmd("a"), "cmd"), Some("a"));
        assert_eq!(t.device_of("zhilu/jx/devices/a/b/state", "state"), None);
        assert_eq!(t.device_of("zhilu/jx/devices//state", "state"), None);
        assert_eq!(t.device_of("zhilu/jx/devices/a/cmd", "state"), None);
        assert_eq!(t.device_of("zhilu/jxx/devices/a/state", "state"), None);
        assert_eq!(t.device_of("zhilu/jx/devices/astate", "state"), None);
    }

    #[test]
    fn state_message_optional_fields() {
        let m: StateMessage = serde_json::from_str(r#"{"state":{"limit_kmh":80}}"#).unwrap();
        assert_eq!(m.command_id, None);
        assert_eq!(m.ts_ms, 0);
        let m: StateMessage =
            serde_json::from_str(r#"{"command_id":7,"state":{"on":true},"ts_ms":5}"#).unwrap();
        assert_eq!(m.command_id, Some(7));
        assert!(
            serde_json::from_str::<StateMessage>(r#"{"command_id":"7","state":{"on":true}}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<StateMessage>(r#"{"command_id":7,"state":1}"#).is_err());
        assert!(serde_json::from_str::<StateMessage>(r#"{"command_id":7}"#).is_err());
    }

    #[test]
    fn ids_and_prefixes() {
        assert!(validate_device("VMS-K12+300").is_err());
        assert!(validate_device("VMS_K12_300").is_ok());
        assert!(validate_prefix("zhilu/jingxiong").is_ok());
        assert!(validate_prefix("zhilu//x").is_err());
    }
}
