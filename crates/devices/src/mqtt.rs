//! The MQTT device adapter: commands out on `{prefix}/devices/{id}/cmd`,
//! confirmations and heartbeats in on `{prefix}/devices/{id}/state`, retries,
//! expiry, supersession, loss of contact, the centre heartbeat and last will.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::net::{self, AbortOnDrop, NetEvent, wall_ms};
use crate::wire::{
    Heartbeat, STATUS_OFFLINE, STATUS_ONLINE, StateMessage, Topics, validate_device,
};
use crate::{DeviceAdapter, DeviceCommand, DeviceError, DeviceReport, MqttConfig};

/// Commands waiting for the adapter task.
const COMMAND_QUEUE: usize = 256;
/// Requests waiting for the MQTT event loop.
const REQUEST_QUEUE: usize = 256;
/// Events waiting between the event loop and the adapter task.
const EVENT_QUEUE: usize = 256;
/// Largest MQTT packet in either direction.
const MAX_PACKET: usize = 256 * 1024;
/// MQTT keep-alive: the broker publishes the last will within 1.5× this of a
/// silent (half-open) centre connection; a closed socket triggers it at once.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Handle of the MQTT device adapter; cheap to clone. When every handle is
/// dropped the adapter task ends and its broker connection closes without
/// a DISCONNECT, so the broker publishes the centre's last will (`offline`).
#[derive(Debug, Clone)]
pub struct MqttAdapter {
    tx: mpsc::Sender<DeviceCommand>,
    devices: Arc<HashSet<String>>,
    connected: watch::Receiver<bool>,
    addr: String,
}

impl MqttAdapter {
    /// Start the adapter for `devices`; every outcome is sent to `reports`.
    /// Returns at once: the connection is made (and remade) in the background.
    pub fn start(
        cfg: MqttConfig,
        devices: Vec<String>,
        reports: mpsc::Sender<DeviceReport>,
    ) -> Result<(MqttAdapter, JoinHandle<()>), DeviceError> {
        net::require_runtime()?;
        cfg.validate()?;
        for d in &devices {
            validate_device(d)?;
        }
        let topics = Topics::new(&cfg.prefix);
        let mut opts = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
        opts.set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_request_channel_capacity(REQUEST_QUEUE)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_last_will(LastWill::new(
                topics.status(),
                STATUS_OFFLINE,
                QoS::AtLeastOnce,
                true,
            ));
        let (client, eventloop) = AsyncClient::new(opts, REQUEST_QUEUE);
        let (net_tx, net_rx) = mpsc::channel(EVENT_QUEUE);
        let net_task = AbortOnDrop(net::spawn(eventloop, net_tx, "mqtt-adapter"));
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (conn_tx, conn_rx) = watch::channel(false);
        let now = Instant::now();
        let now_ms = wall_ms();
        let slots = devices
            .iter()
            .map(|d| {
                (
                    d.clone(),
                    Slot {
                        pending: None,
                        heard: now,
                        heard_ms: now_ms,
                        offline: false,
                    },
                )
            })
            .collect();
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let actor = Actor {
            cfg,
            topics,
            client,
            reports,
            slots,
            link_up: false,
            need_subscribe: false,
            connected: conn_tx,
        };
        let task = tokio::spawn(actor.run(cmd_rx, net_rx, net_task));
        let adapter = MqttAdapter {
            tx: cmd_tx,
            devices: Arc::new(devices.into_iter().collect()),
            connected: conn_rx,
            addr,
        };
        Ok((adapter, task))
    }

    /// Whether the adapter is connected to the broker and subscribed to device states.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Wait until connected and subscribed (e.g. before declaring the server ready).
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), DeviceError> {
        let mut rx = self.connected.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(DeviceError::Stopped),
            Err(_) => Err(DeviceError::Timeout(self.addr.clone())),
        }
    }
}

impl DeviceAdapter for MqttAdapter {
    fn dispatch(&self, cmd: DeviceCommand) -> Result<(), DeviceError> {
        if !self.devices.contains(&cmd.device) {
            return Err(DeviceError::UnknownDevice(cmd.device));
        }
        self.tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => DeviceError::Busy,
            mpsc::error::TrySendError::Closed(_) => DeviceError::Stopped,
        })
    }

    fn name(&self) -> &'static str {
        "mqtt"
    }
}

/// One command awaiting confirmation.
struct Pending {
    cmd: DeviceCommand,
    /// Serialized once, republished as is (same `command_id`).
    body: Vec<u8>,
    /// Publications so far on the current connection.
    sent: u32,
    /// When the current publication times out; `None` = not sent on this connection.
    deadline: Option<Instant>,
}

/// What the centre knows of one device.
struct Slot {
    pending: Option<Pending>,
    heard: Instant,
    heard_ms: i64,
    offline: bool,
}

/// The report receiver is gone: the adapter stops.
struct Closed;

struct Actor {
    cfg: MqttConfig,
    topics: Topics,
    client: AsyncClient,
    reports: mpsc::Sender<DeviceReport>,
    slots: HashMap<String, Slot>,
    link_up: bool,
    need_subscribe: bool,
    connected: watch::Sender<bool>,
}

impl Actor {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<DeviceCommand>,
        mut net: mpsc::Receiver<NetEvent>,
        _net_task: AbortOnDrop,
    ) {
        let shortest = self.cfg.ack_timeout.min(self.cfg.device_timeout);
        let mut tick = tokio::time::interval(net::tick_for(shortest));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut beat = tokio::time::interval(self.cfg.heartbeat);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => break,
                },
                ev = net.recv() => match ev {
                    Some(ev) => self.on_net(ev).await,
                    None => break,
                },
                _ = tick.tick() => self.on_tick().await,
                _ = beat.tick() => {
                    self.heartbeat();
                    Ok(())
                }
            };
            if step.is_err() {
                tracing::info!(
                    adapter = "mqtt",
                    "report receiver dropped; adapter stopping"
                );
                break;
            }
        }
        tracing::info!(adapter = "mqtt", "adapter stopped");
    }

    async fn report(&self, r: DeviceReport) -> Result<(), Closed> {
        self.reports.send(r).await.map_err(|_| Closed)
    }

    async fn on_command(&mut self, cmd: DeviceCommand) -> Result<(), Closed> {
        let now_ms = wall_ms();
        let (device, id) = (cmd.device.clone(), cmd.command_id);
        if now_ms >= cmd.expires_ms {
            tracing::info!(device = %device, command_id = id, expires_ms = cmd.expires_ms, "command expired before sending");
            return self
                .report(DeviceReport::Expired {
                    device,
                    command_id: id,
                    wall_ms: now_ms,
                })
                .await;
        }
        let Some(slot) = self.slots.get_mut(&device) else {
            return self
                .report(failed(device, id, "unknown device".into()))
                .await;
        };
        if let Some(old) = &slot.pending {
            let old_id = old.cmd.command_id;
            if old_id > id {
                let reason = format!("stale: command {old_id} for this device is newer");
                return self.report(failed(device, id, reason)).await;
            }
            slot.pending = None;
            if old_id != id {
                tracing::info!(device = %device, command_id = old_id, by = id, "command superseded");
                let reason = format!("superseded by command {id}");
                self.report(failed(device.clone(), old_id, reason)).await?;
            }
        }
        let body = match serde_json::to_vec(&cmd) {
            Ok(b) => b,
            Err(e) => {
                return self
                    .report(failed(device, id, format!("cannot encode command: {e}")))
                    .await;
            }
        };
        let mut p = Pending {
            cmd,
            body,
            sent: 0,
            deadline: None,
        };
        if self.link_up {
            publish(&self.client, &self.topics, &mut p, &self.cfg);
        }
        if let Some(slot) = self.slots.get_mut(&device) {
            slot.pending = Some(p);
        }
        Ok(())
    }

    async fn on_net(&mut self, ev: NetEvent) -> Result<(), Closed> {
        match ev {
            NetEvent::Connected { .. } => {
                self.link_up = true;
                self.need_subscribe = true;
                self.subscribe();
                if let Err(e) = self.client.try_publish(
                    self.topics.status(),
                    QoS::AtLeastOnce,
                    true,
                    STATUS_ONLINE,
                ) {
                    tracing::warn!(error = %e, "could not queue centre status `online`");
                }
                self.heartbeat();
                // Resend what is pending, with a fresh retry budget: earlier
                // publications may never have reached the device.
                for p in self.slots.values_mut().filter_map(|s| s.pending.as_mut()) {
                    p.sent = 0;
                    publish(&self.client, &self.topics, p, &self.cfg);
                }
            }
            NetEvent::Subscribed { ok } => {
                if ok {
                    self.connected.send_replace(true);
                }
            }
            NetEvent::Disconnected => {
                self.link_up = false;
                self.connected.send_replace(false);
                for p in self.slots.values_mut().filter_map(|s| s.pending.as_mut()) {
                    p.deadline = None;
                }
            }
            NetEvent::Message(p) => return self.on_state(&p.topic, &p.payload).await,
        }
        Ok(())
    }

    fn subscribe(&mut self) {
        if !self.need_subscribe || !self.link_up {
            return;
        }
        match self
            .client
            .try_subscribe(self.topics.all_state(), QoS::AtLeastOnce)
        {
            Ok(()) => self.need_subscribe = false,
            Err(e) => tracing::warn!(error = %e, "could not queue subscription; will retry"),
        }
    }

    fn heartbeat(&self) {
        if !self.link_up {
            return;
        }
        let body = match serde_json::to_vec(&Heartbeat { ts_ms: wall_ms() }) {
            Ok(b) => b,
            Err(_) => return,
        };
        if let Err(e) =
            self.client
                .try_publish(self.topics.heartbeat(), QoS::AtMostOnce, false, body)
        {
            tracing::warn!(error = %e, "centre heartbeat not queued");
        }
    }

    async fn on_state(&mut self, topic: &str, payload: &[u8]) -> Result<(), Closed> {
        let Some(device) = self.topics.device_of(topic, "state") else {
            tracing::debug!(topic, "message on an unexpected topic ignored");
            return Ok(());
        };
        let msg: StateMessage = match serde_json::from_slice(payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(topic, error = %e, bytes = payload.len(), "garbage state message ignored");
                return Ok(());
            }
        };
        let Some(slot) = self.slots.get_mut(device) else {
            tracing::debug!(topic, device, "state of a device not managed here ignored");
            return Ok(());
        };
        let now_ms = wall_ms();
        slot.heard = Instant::now();
        slot.heard_ms = now_ms;
        let came_back = std::mem::replace(&mut slot.offline, false);
        let confirms = match (&slot.pending, msg.command_id) {
            (Some(p), Some(id)) => p.cmd.command_id == id,
            _ => false,
        };
        if confirms {
            slot.pending = None;
        }
        let device = device.to_string();
        if came_back {
            tracing::info!(device = %device, "device online again");
            self.report(DeviceReport::Online {
                device: device.clone(),
                wall_ms: now_ms,
            })
            .await?;
        }
        let r = match (confirms, msg.command_id) {
            (true, Some(command_id)) => {
                tracing::debug!(device = %device, command_id, "command confirmed");
                DeviceReport::Confirmed {
                    device,
                    command_id,
                    state: msg.state,
                    wall_ms: now_ms,
                }
            }
            _ => DeviceReport::State {
                device,
                state: msg.state,
                wall_ms: now_ms,
            },
        };
        self.report(r).await
    }

    async fn on_tick(&mut self) -> Result<(), Closed> {
        self.subscribe();
        let now = Instant::now();
        let now_ms = wall_ms();
        let mut out = Vec::new();
        for (device, slot) in &mut self.slots {
            if let Some(p) = &mut slot.pending {
                let id = p.cmd.command_id;
                if now_ms >= p.cmd.expires_ms {
                    tracing::info!(device = %device, command_id = id, sent = p.sent, "command expired unconfirmed");
                    out.push(DeviceReport::Expired {
                        device: device.clone(),
                        command_id: id,
                        wall_ms: now_ms,
                    });
                    slot.pending = None;
                } else if self.link_up && p.deadline.is_none_or(|d| now >= d) {
                    if p.sent > self.cfg.max_retries {
                        tracing::warn!(device = %device, command_id = id, sent = p.sent, "command failed: no confirmation");
                        let reason = format!("no confirmation after {} attempts", p.sent);
                        out.push(failed(device.clone(), id, reason));
                        slot.pending = None;
                    } else {
                        if p.sent > 0 {
                            tracing::debug!(device = %device, command_id = id, attempt = p.sent + 1, "republishing command");
                        }
                        publish(&self.client, &self.topics, p, &self.cfg);
                    }
                }
            }
            if !slot.offline && now.duration_since(slot.heard) >= self.cfg.device_timeout {
                slot.offline = true;
                tracing::warn!(device = %device, since_ms = slot.heard_ms, "device offline: not heard from");
                out.push(DeviceReport::Offline {
                    device: device.clone(),
                    since_ms: slot.heard_ms,
                    wall_ms: now_ms,
                });
            }
        }
        for r in out {
            self.report(r).await?;
        }
        Ok(())
    }
}

fn failed(device: String, command_id: u64, reason: String) -> DeviceReport {
    DeviceReport::Failed {
        device,
        command_id,
        reason,
        wall_ms: wall_ms(),
    }
}

/// Publish (or republish) `p`; counts as an attempt even if the request
/// queue was full, so a stuck connection still ends in `Failed`.
fn publish(client: &AsyncClient, topics: &Topics, p: &mut Pending, cfg: &MqttConfig) {
    p.sent += 1;
    p.deadline = Some(Instant::now() + cfg.ack_timeout);
    let topic = topics.cmd(&p.cmd.device);
    if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, p.body.clone()) {
        tracing::warn!(device = %p.cmd.device, command_id = p.cmd.command_id, error = %e, "command not queued to the broker");
    }
}
