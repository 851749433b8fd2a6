//! A simulated roadside device that speaks the MQTT wire format as a real one
//! would: for tests, the demo and vendors checking their understanding.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::net::{self, AbortOnDrop, NetEvent, wall_ms};
use crate::wire::{STATUS_OFFLINE, STATUS_ONLINE, StateMessage, Topics, validate_device};
use crate::{DeviceCommand, DeviceError, DeviceState, Failsafe};

/// How simulated devices behave (shared by [`DeviceSim`] and [`crate::SimAdapter`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SimOpts {
    /// Time between receiving a command and confirming it.
    pub confirm_delay: Duration,
    /// Period of the devices' own state reports; zero = none.
    pub heartbeat: Duration,
    /// `SimAdapter` only: silence after which a device is reported `Offline`.
    pub device_timeout: Duration,
    /// Probability (0–1) that a device silently ignores a command.
    pub drop_probability: f64,
    /// Devices that ignore every command (they still report their state).
    pub ignore_commands: HashSet<String>,
    /// What every device shows at start.
    pub initial_state: DeviceState,
    /// `SimAdapter` only: what particular devices show at start (the state
    /// they last confirmed before the centre restarted; real devices keep
    /// theirs, and so do these).
    pub initial_states: HashMap<String, DeviceState>,
    /// Seed of the drop decisions (same seed, same drops).
    pub seed: u64,
}

impl Default for SimOpts {
    fn default() -> Self {
        SimOpts {
            confirm_delay: Duration::from_millis(200),
            heartbeat: Duration::from_secs(5),
            device_timeout: Duration::from_secs(30),
            drop_probability: 0.0,
            ignore_commands: HashSet::new(),
            initial_state: DeviceState::Blank,
            initial_states: HashMap::new(),
            seed: 0x5eed,
        }
    }
}

/// A small deterministic generator (splitmix64) for drop decisions.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One simulated device.
#[derive(Debug)]
struct SimDevice {
    state: DeviceState,
    override_state: Option<DeviceState>,
    silent_since: Option<Instant>,
    ignore: bool,
    last_cmd: Option<u64>,
    failsafe: Failsafe,
    failsafe_taken: bool,
    confirm: Option<(Instant, DeviceCommand)>,
    /// Publish the state at the next tick (after waking up).
    announce: bool,
}

#[derive(Debug)]
struct Shared {
    devices: HashMap<String, SimDevice>,
    /// Last sign of life from the centre (heartbeat, `online`, a command).
    last_centre: Instant,
    /// The centre's retained status says `offline` (its last will).
    centre_offline: bool,
}

/// Handle of a running set of simulated MQTT devices; dropping it stops them
/// (their connection closes).
#[derive(Debug)]
pub struct DeviceSim {
    shared: Arc<Mutex<Shared>>,
    ready: watch::Receiver<bool>,
    addr: String,
    _task: AbortOnDrop,
}

static SIM_IDS: AtomicU64 = AtomicU64::new(0);

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DeviceSim {
    /// Connect `devices` to the broker at `host:port` under `prefix`.
    pub fn start(
        host: &str,
        port: u16,
        prefix: &str,
        devices: Vec<String>,
        opts: SimOpts,
    ) -> Result<DeviceSim, DeviceError> {
        net::require_runtime()?;
        crate::wire::validate_prefix(prefix)?;
        for d in &devices {
            validate_device(d)?;
        }
        let id = format!(
            "zhilu-devsim-{}-{}",
            std::process::id(),
            SIM_IDS.fetch_add(1, Ordering::Relaxed)
        );
        let mut mo = MqttOptions::new(id, host, port);
        mo.set_keep_alive(Duration::from_secs(5))
            .set_clean_session(true)
            .set_request_channel_capacity(1024)
            .set_max_packet_size(256 * 1024, 256 * 1024);
        let (client, eventloop) = AsyncClient::new(mo, 1024);
        let (net_tx, net_rx) = mpsc::channel(256);
        let net_task = AbortOnDrop(net::spawn(eventloop, net_tx, "device-sim"));
        let now = Instant::now();
        let shared = Arc::new(Mutex::new(Shared {
            devices: devices
                .iter()
                .map(|d| {
                    let dev = SimDevice {
                        state: opts
                            .initial_states
                            .get(d)
                            .unwrap_or(&opts.initial_state)
                            .clone(),
                        override_state: None,
                        silent_since: None,
                        ignore: opts.ignore_commands.contains(d),
                        last_cmd: None,
                        failsafe: Failsafe::Hold,
                        failsafe_taken: false,
                        confirm: None,
                        announce: false,
                    };
                    (d.clone(), dev)
                })
                .collect(),
            last_centre: now,
            centre_offline: false,
        }));
        let (ready_tx, ready_rx) = watch::channel(false);
        let actor = SimActor {
            topics: Topics::new(prefix),
            client,
            shared: shared.clone(),
            rng: Rng::new(opts.seed),
            opts,
            ready: ready_tx,
        };
        let task = AbortOnDrop(tokio::spawn(actor.run(net_rx, net_task)));
        Ok(DeviceSim {
            shared,
            ready: ready_rx,
            addr: format!("{host}:{port}"),
            _task: task,
        })
    }

    /// Wait until connected and subscribed to commands and the centre topics.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), DeviceError> {
        let mut rx = self.ready.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|r| *r)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(DeviceError::Stopped),
            Err(_) => Err(DeviceError::Timeout(self.addr.clone())),
        }
    }

    fn with<T>(&self, device: &str, f: impl FnOnce(&mut SimDevice) -> T) -> Result<T, DeviceError> {
        let mut s = lock(&self.shared);
        s.devices
            .get_mut(device)
            .map(f)
            .ok_or_else(|| DeviceError::UnknownDevice(device.to_string()))
    }

    /// What `device` shows now.
    pub fn state(&self, device: &str) -> Option<DeviceState> {
        lock(&self.shared)
            .devices
            .get(device)
            .map(|d| d.state.clone())
    }

    /// Simulate a power loss: the device stops publishing and hears nothing.
    pub fn go_silent(&self, device: &str) -> Result<(), DeviceError> {
        self.with(device, |d| {
            d.silent_since.get_or_insert_with(Instant::now);
            d.confirm = None;
        })
    }

    /// Power back: the device reports its state at once, having taken its
    /// fail-safe if it was out of contact for longer than the fail-safe's `after_s`.
    pub fn wake(&self, device: &str) -> Result<(), DeviceError> {
        self.with(device, |d| {
            if let Some(since) = d.silent_since.take() {
                if d.failsafe
                    .after()
                    .is_some_and(|after| since.elapsed() >= after)
                {
                    d.state = d.failsafe.state(&d.state);
                    d.failsafe_taken = true;
                }
                d.announce = true;
            }
        })
    }

    /// Make `device` ignore (or obey again) every command.
    pub fn set_ignore_commands(&self, device: &str, ignore: bool) -> Result<(), DeviceError> {
        self.with(device, |d| d.ignore = ignore)
    }

    /// Make `device` confirm commands showing `state` instead of the commanded
    /// payload (a sign that clamps or cannot render); `None` restores it.
    pub fn set_override(
        &self,
        device: &str,
        state: Option<DeviceState>,
    ) -> Result<(), DeviceError> {
        self.with(device, |d| d.override_state = state)
    }
}

struct SimActor {
    topics: Topics,
    client: AsyncClient,
    shared: Arc<Mutex<Shared>>,
    rng: Rng,
    opts: SimOpts,
    ready: watch::Sender<bool>,
}

impl SimActor {
    async fn run(mut self, mut net: mpsc::Receiver<NetEvent>, _net_task: AbortOnDrop) {
        let mut tick = tokio::time::interval(net::tick_for(
            self.opts.confirm_delay.min(Duration::from_millis(50)),
        ));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let beat_period = if self.opts.heartbeat.is_zero() {
            Duration::from_secs(86_400)
        } else {
            self.opts.heartbeat
        };
        let mut beat = tokio::time::interval(beat_period);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = net.recv() => match ev {
                    Some(ev) => self.on_net(ev),
                    None => break,
                },
                _ = tick.tick() => self.on_tick(),
                _ = beat.tick() => if !self.opts.heartbeat.is_zero() { self.heartbeat() },
            }
        }
    }

    fn send_state(&self, device: &str, command_id: Option<u64>, state: &DeviceState) {
        let msg = StateMessage {
            command_id,
            state: state.clone(),
            ts_ms: wall_ms(),
        };
        let Ok(body) = serde_json::to_vec(&msg) else {
            return;
        };
        if let Err(e) =
            self.client
                .try_publish(self.topics.state(device), QoS::AtLeastOnce, false, body)
        {
            tracing::warn!(device, error = %e, "simulated device could not queue its state");
        }
    }

    fn heartbeat(&self) {
        let s = lock(&self.shared);
        for (name, d) in s.devices.iter().filter(|(_, d)| d.silent_since.is_none()) {
            self.send_state(name, None, &d.state);
        }
    }

    fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Connected { .. } => {
                let subs = [
                    rumqttc::SubscribeFilter::new(self.topics.all_cmd(), QoS::AtLeastOnce),
                    rumqttc::SubscribeFilter::new(self.topics.heartbeat(), QoS::AtMostOnce),
                    rumqttc::SubscribeFilter::new(self.topics.status(), QoS::AtLeastOnce),
                ];
                if let Err(e) = self.client.try_subscribe_many(subs) {
                    tracing::warn!(error = %e, "simulated devices could not subscribe");
                }
                self.heartbeat();
            }
            NetEvent::Subscribed { ok } => {
                self.ready.send_replace(ok);
            }
            NetEvent::Disconnected => {
                self.ready.send_replace(false);
            }
            NetEvent::Message(p) => self.on_message(&p.topic, &p.payload),
        }
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let now = Instant::now();
        if topic == self.topics.heartbeat() {
            lock(&self.shared).last_centre = now;
            return;
        }
        if topic == self.topics.status() {
            let text = String::from_utf8_lossy(payload);
            let mut s = lock(&self.shared);
            match text.trim() {
                STATUS_OFFLINE => s.centre_offline = true,
                STATUS_ONLINE => {
                    s.centre_offline = false;
                    s.last_centre = now;
                }
                other => tracing::warn!(topic, status = other, "unknown centre status ignored"),
            }
            return;
        }
        let Some(device) = self.topics.device_of(topic, "cmd") else {
            return;
        };
        let cmd: DeviceCommand = match serde_json::from_slice(payload) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(topic, error = %e, "simulated device ignored a garbage command");
                return;
            }
        };
        if cmd.device != device {
            tracing::warn!(topic, device = %cmd.device, "command names another device; ignored");
            return;
        }
        let dropped =
            self.opts.drop_probability > 0.0 && self.rng.unit() < self.opts.drop_probability;
        let mut s = lock(&self.shared);
        let Some(d) = s.devices.get_mut(device) else {
            return;
        };
        if d.silent_since.is_some() {
            return;
        }
        let (id, delay) = (cmd.command_id, self.opts.confirm_delay);
        if d.ignore || dropped {
            tracing::debug!(
                device,
                command_id = id,
                "simulated device ignores the command"
            );
        } else if wall_ms() >= cmd.expires_ms {
            tracing::info!(
                device,
                command_id = id,
                "simulated device ignores an expired command"
            );
        } else if d.last_cmd.is_some_and(|l| id < l) {
            tracing::info!(
                device,
                command_id = id,
                "simulated device ignores a stale command"
            );
        } else if d.confirm.as_ref().is_none_or(|(_, c)| c.command_id != id) {
            // The newest command wins; a repeat of the one in progress keeps its time.
            d.confirm = Some((now + delay, cmd));
        }
        s.last_centre = now;
    }

    fn on_tick(&self) {
        let now = Instant::now();
        let mut s = lock(&self.shared);
        let centre_lost_for = now.duration_since(s.last_centre);
        let centre_offline = s.centre_offline;
        for (name, d) in s
            .devices
            .iter_mut()
            .filter(|(_, d)| d.silent_since.is_none())
        {
            if d.confirm.as_ref().is_some_and(|(due, _)| now >= *due)
                && let Some((_, cmd)) = d.confirm.take()
            {
                d.state = d.override_state.clone().unwrap_or(cmd.state);
                d.failsafe = cmd.failsafe;
                d.failsafe_taken = false;
                d.last_cmd = Some(cmd.command_id);
                tracing::debug!(device = %name, command_id = cmd.command_id, "simulated device applied a command");
                self.send_state(name, Some(cmd.command_id), &d.state);
            }
            // The fail-safe counts from the last sign of life; the centre's
            // `offline` says contact is lost but does not shorten the hold.
            if !d.failsafe_taken
                && d.failsafe
                    .after()
                    .is_some_and(|after| centre_lost_for >= after)
            {
                tracing::info!(device = %name, centre_offline, lost_ms = centre_lost_for.as_millis() as u64, "simulated device takes its fail-safe");
                d.state = d.failsafe.state(&d.state);
                d.failsafe_taken = true;
                d.confirm = None;
                d.announce = true;
            }
            if std::mem::take(&mut d.announce) {
                self.send_state(name, None, &d.state);
            }
        }
    }
}
