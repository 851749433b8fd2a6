//! # zhilu-devices — the roadside-device side of the live server
//!
//! Owns everything between the server's decisions and the roadside devices:
//!
//! - the adapter contract [`DeviceAdapter`]: commands go out with
//!   [`DeviceAdapter::dispatch`] (non-blocking, bounded queue), and every
//!   outcome comes back as a [`DeviceReport`] on the channel the adapter was
//!   started with. The server sets a device's state **only** from
//!   [`DeviceReport::Confirmed`] and [`DeviceReport::State`] — what the device
//!   says it shows, never what was sent;
//! - [`MqttAdapter`], which speaks the MQTT wire format below, with retries,
//!   expiry, supersession, loss-of-contact detection, the centre heartbeat and
//!   the centre's last will, reconnecting to the broker with backoff;
//! - [`DeviceSim`], simulated devices that speak the same wire format as a real
//!   device would (confirmation delay, heartbeats, fail-safe, power loss), and
//!   [`SimAdapter`], the same devices in-process with no broker;
//! - [`MqttIngest`], which forwards readings published on the broker to the
//!   server, holding the broker back (QoS 1, manual acks) when the server is slow.
//!
//! Must not: decide anything about traffic or which state a device should
//! take (that is `zhilu-core`), store anything (`zhilu-store`), serve HTTP
//! (`zhilu-server`), or parse readings (the server does, with `zhilu-io`).
//!
//! ## MQTT wire format
//!
//! All topics live under a configured `{prefix}` (e.g. `zhilu/jingxiong`);
//! `{device}` is the device id from the road book. `MQTT.md` beside this crate
//! is the vendor-facing version of this section.
//!
//! | direction | topic | QoS | payload |
//! |---|---|---|---|
//! | centre → device | `{prefix}/devices/{device}/cmd` | 1 | [`DeviceCommand`] as JSON (`kind` + `payload` = a [`DeviceState`]) |
//! | device → centre | `{prefix}/devices/{device}/state` | 1 | `{"command_id": 42, "state": {…}, "ts_ms": 1700000000000}` ([`StateMessage`]) |
//! | centre → devices | `{prefix}/centre/heartbeat` | 0 | `{"ts_ms": …}` every `heartbeat` |
//! | centre → devices | `{prefix}/centre/status` | 1, retained | `online` on connect; `offline` as the centre's last will |
//! | sources → centre | `{prefix}/readings/{obs,weather,positions,camera}` | 1 | CSV rows or JSON rows |
//!
//! - A state message whose `command_id` equals the command the centre is
//!   waiting for is a confirmation ([`DeviceReport::Confirmed`], with the state
//!   the device reported, even if it differs from the payload); any other is a
//!   [`DeviceReport::State`]. Devices also send their state periodically as
//!   their heartbeat.
//! - Not confirmed within `ack_timeout`: the same command (same `command_id`)
//!   is republished, up to `max_retries` times, then [`DeviceReport::Failed`].
//!   A command past `expires_ms` is never (re)sent: [`DeviceReport::Expired`].
//!   A newer command for the same device supersedes the pending one (which is
//!   reported `Failed` with reason `superseded by command N` and not retried).
//! - A device not heard from for `device_timeout` is reported
//!   [`DeviceReport::Offline`] once; when heard again, [`DeviceReport::Online`]
//!   and then the state it reports.
//! - Commands carry a typed [`DeviceState`] (one shape per device kind,
//!   `kind` + `payload` on the wire; the payload is the state the device
//!   then reports) and a [`Failsafe`] the centre picks by why it sent them.
//! - Devices apply their last command's [`Failsafe`] once they have heard
//!   nothing from the centre for its `after_s` seconds; the centre status
//!   `offline` says contact is lost but does not shorten that time.
//! - After a reconnect to the broker the centre resubscribes, publishes
//!   `online`, and resends every pending command that has not expired (with a
//!   fresh retry budget): devices must treat a repeated `command_id` as the
//!   same command and confirm it again.
//!
//! ## Back-pressure
//!
//! Every queue is bounded: `dispatch` fails with [`DeviceError::Busy`] when the
//! adapter's queue is full; adapters await the report channel (a slow server
//! slows the adapter, not its memory); the ingest awaits its channel before
//! acknowledging a reading, so the broker keeps what the server has not taken.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod devsim;
mod error;
mod ingest;
mod mqtt;
mod net;
mod simadapter;
mod state;
mod types;
mod wire;

pub use config::{IngestConfig, MqttConfig};
pub use devsim::{DeviceSim, SimOpts};
pub use error::DeviceError;
pub use ingest::{IngestMessage, IngestStatus, MqttIngest, ReadingKind};
pub use mqtt::MqttAdapter;
pub use simadapter::SimAdapter;
pub use state::{DeviceState, KINDS, StateError, commandable};
pub use types::{DeviceCommand, DeviceReport, Failsafe, command_id_of};
pub use wire::{Heartbeat, STATUS_OFFLINE, STATUS_ONLINE, StateMessage, Topics};

/// A way of reaching roadside devices. Each adapter is started with a
/// `tokio::sync::mpsc::Sender<DeviceReport>` and runs its own task(s); every
/// outcome of a dispatched command comes back as a [`DeviceReport`].
pub trait DeviceAdapter: Send + Sync {
    /// Queue a command (non-blocking; bounded queue → `Err(DeviceError::Busy)` when full).
    fn dispatch(&self, cmd: DeviceCommand) -> Result<(), DeviceError>;
    /// Adapter name for logs/metrics ("mqtt", "sim").
    fn name(&self) -> &'static str;
}
