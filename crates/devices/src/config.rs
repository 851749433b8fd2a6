//! Configuration of the MQTT adapter and the MQTT ingest, embeddable in the
//! server's TOML config (strict: unknown keys are errors).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::DeviceError;
use crate::wire::validate_prefix;

/// Connection and protocol settings of the MQTT device adapter.
///
/// Durations accept a number of seconds (`5`, `0.25`) or a string with a unit
/// (`"250ms"`, `"5s"`, `"2m"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker TCP port.
    pub port: u16,
    /// MQTT client id of the centre (unique on the broker).
    pub client_id: String,
    /// Topic prefix, e.g. `zhilu/jingxiong` (no wildcards, no leading or trailing `/`).
    pub prefix: String,
    /// How long to wait for a device's confirmation before republishing a command.
    #[serde(with = "duration")]
    pub ack_timeout: Duration,
    /// Republications of an unconfirmed command before it is reported `Failed`.
    pub max_retries: u32,
    /// Period of the centre heartbeat on `{prefix}/centre/heartbeat`.
    #[serde(with = "duration")]
    pub heartbeat: Duration,
    /// A device not heard from for this long is reported `Offline`.
    #[serde(with = "duration")]
    pub device_timeout: Duration,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "zhilu-centre".into(),
            prefix: "zhilu".into(),
            ack_timeout: Duration::from_secs(5),
            max_retries: 3,
            heartbeat: Duration::from_secs(5),
            device_timeout: Duration::from_secs(30),
        }
    }
}

impl MqttConfig {
    /// Check the values the adapter cannot work with.
    pub fn validate(&self) -> Result<(), DeviceError> {
        validate_common(&self.host, &self.client_id, &self.prefix)?;
        for (name, d) in [
            ("ack_timeout", self.ack_timeout),
            ("heartbeat", self.heartbeat),
            ("device_timeout", self.device_timeout),
        ] {
            if d.is_zero() {
                return Err(DeviceError::Config(format!(
                    "{name} must be greater than zero"
                )));
            }
        }
        Ok(())
    }
}

/// Connection settings of the MQTT ingest of readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker TCP port.
    pub port: u16,
    /// MQTT client id; must be stable across restarts (the broker keeps the
    /// session, and so the unacknowledged readings, under this id).
    pub client_id: String,
    /// Topic prefix, e.g. `zhilu/jingxiong`.
    pub prefix: String,
    /// Largest accepted MQTT packet (bytes); a larger message drops the connection.
    pub max_packet_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "zhilu-ingest".into(),
            prefix: "zhilu".into(),
            max_packet_bytes: 1 << 20,
        }
    }
}

impl IngestConfig {
    /// Check the values the ingest cannot work with.
    pub fn validate(&self) -> Result<(), DeviceError> {
        validate_common(&self.host, &self.client_id, &self.prefix)?;
        if self.max_packet_bytes < 1024 {
            return Err(DeviceError::Config(
                "max_packet_bytes must be at least 1024".into(),
            ));
        }
        Ok(())
    }
}

fn validate_common(host: &str, client_id: &str, prefix: &str) -> Result<(), DeviceError> {
    if host.trim().is_empty() {
        return Err(DeviceError::Config("host is empty".into()));
    }
    if client_id.is_empty() {
        return Err(DeviceError::Config("client_id is empty".into()));
    }
    validate_prefix(prefix)
}

/// Serde for durations: a number of seconds or a string with a unit
/// (`ms`, `s`, `m`, `h`); serialized as milliseconds (`"250ms"`).
mod duration {
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurVisitor)
    }

    struct DurVisitor;

    fn secs<E: de::Error>(v: f64) -> Result<Duration, E> {
        Duration::try_from_secs_f64(v).map_err(|_| {
            E::custom(format!(
                "invalid duration {v}: must be a finite, non-negative number of seconds"
            ))
        })
    }

    impl Visitor<'_> for DurVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number of seconds or a string like \"250ms\", \"5s\", \"2m\"")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("invalid duration {v}: negative")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            secs(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).ok_or_else(|| {
                E::custom(format!(
                    "invalid duration `{v}`: expected e.g. \"250ms\", \"5s\", \"2m\""
                ))
            })
        }
    }

    /// `"250ms"`, `"5s"`, `"1.5s"`, `"2m"`, `"1h"`.
    pub fn parse(v: &str) -> Option<Duration> {
        let v = v.trim();
        let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, unit) = v.split_at(split);
        let n: f64 = num.parse().ok()?;
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        Duration::try_from_secs_f64(n * scale).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        mqtt: MqttConfig,
    }

    fn parse(json: &str) -> Result<MqttConfig, serde_json::Error> {
        serde_json::from_str::<Wrap>(json).map(|w| w.mqtt)
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        let c = parse(r#"{"mqtt":{"ack_timeout":"250ms","heartbeat":2,"device_timeout":0.5}}"#)
            .unwrap();
        assert_eq!(c.ack_timeout, Duration::from_millis(250));
        assert_eq!(c.heartbeat, Duration::from_secs(2));
        assert_eq!(c.device_timeout, Duration::from_millis(500));
        assert_eq!(c.max_retries, 3, "unset keys take their defaults");
        assert_eq!(duration::parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration::parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration::parse("5 parsecs"), None);
        assert_eq!(duration::parse("s"), None);
    }

    #[test]
    fn bad_durations_and_unknown_keys_are_errors() {
        assert!(parse(r#"{"mqtt":{"ack_timeout":"soon"}}"#).is_err());
        assert!(parse(r#"{"mqtt":{"ack_timeout":-1}}"#).is_err());
        let e = parse(r#"{"mqtt":{"ack_timout":"1s"}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ack_timout"), "{e}");
    }

    #[test]
    fn round_trips_through_serialize() {
        let c = MqttConfig {
            ack_timeout: Duration::from_millis(1500),
            ..MqttConfig::default()
        };
        let back: MqttConfig = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn validate_rejects_unusable_values() {
        assert!(MqttConfig::default().validate().is_ok());
        for bad in [
            MqttConfig {
                prefix: "a/+/b".into(),
                ..MqttConfig::default()
            },
            MqttConfig {
                prefix: "/a".into(),
                ..MqttConfig::default()
            },
            MqttConfig {
                prefix: String::new(),
                ..MqttConfig::default()
            },
            MqttConfig {
                client_id: String::new(),
                ..MqttConfig::default()
            },
            MqttConfig {
                ack_timeout: Duration::ZERO,
                ..MqttConfig::default()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(DeviceError::Config(_))),
                "{bad:?}"
            );
        }
        assert!(IngestConfig::default().validate().is_ok());
        assert!(
            IngestConfig {
                max_packet_bytes: 10,
                ..IngestConfig::default()
            }
            .validate()
            .is_err()
        );
    }
}
