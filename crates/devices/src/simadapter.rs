//! An in-process adapter with simulated devices and no broker: the demo and
//! unit tests of the server use it through the same [`DeviceAdapter`] trait.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::devsim::Rng;
use crate::net::{self, wall_ms};
use crate::{
    DeviceAdapter, DeviceCommand, DeviceError, DeviceReport, DeviceState, Failsafe, SimOpts,
};

/// Messages queued to the simulation task.
const QUEUE: usize = 256;

/// Handle of the in-process simulated adapter; cheap to clone. The task ends
/// when every handle is dropped or the report receiver is gone.
#[derive(Debug, Clone)]
pub struct SimAdapter {
    tx: mpsc::Sender<Msg>,
    devices: Arc<HashSet<String>>,
}

#[derive(Debug)]
enum Msg {
    Cmd(DeviceCommand),
    Lose(String),
    Restore(String),
}

impl SimAdapter {
    /// Start simulated `devices`; every outcome is sent to `reports`.
    pub fn start(
        opts: SimOpts,
        devices: Vec<String>,
        reports: mpsc::Sender<DeviceReport>,
    ) -> Result<(SimAdapter, JoinHandle<()>), DeviceError> {
        net::require_runtime()?;
        if opts.device_timeout.is_zero() {
            return Err(DeviceError::Config(
                "device_timeout must be greater than zero".into(),
            ));
        }
        if !(0.0..=1.0).contains(&opts.drop_probability) {
            return Err(DeviceError::Config(
                "drop_probability must be within 0..=1".into(),
            ));
        }
        let devs = devices
            .iter()
            .map(|d| {
                let dev = Dev {
                    state: opts
                        .initial_states
                        .get(d)
                        .unwrap_or(&opts.initial_state)
                        .clone(),
                    failsafe: Failsafe::Hold,
                    pending: None,
                    lost: None,
                    offline_reported: false,
                };
                (d.clone(), dev)
            })
            .collect();
        let (tx, rx) = mpsc::channel(QUEUE);
        let sim = Sim {
            rng: Rng::new(opts.seed),
            opts,
            devs,
            reports,
        };
        let task = tokio::spawn(sim.run(rx));
        Ok((
            SimAdapter {
                tx,
                devices: Arc::new(devices.into_iter().collect()),
            },
            task,
        ))
    }

    fn send(&self, device: &str, m: Msg) -> Result<(), DeviceError> {
        if !self.devices.contains(device) {
            return Err(DeviceError::UnknownDevice(device.to_string()));
        }
        self.tx.try_send(m).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => DeviceError::Busy,
            mpsc::error::TrySendError::Closed(_) => DeviceError::Stopped,
        })
    }

    /// Cut `device` off: it stops reporting and receives nothing; `Offline`
    /// follows after `device_timeout`.
    pub fn lose_contact(&self, device: &str) -> Result<(), DeviceError> {
        self.send(device, Msg::Lose(device.to_string()))
    }

    /// Reconnect `device`: `Online` (if it was reported offline), then a
    /// `State` — its fail-safe state if it was cut off for at least `after_s`.
    pub fn restore_contact(&self, device: &str) -> Result<(), DeviceError> {
        self.send(device, Msg::Restore(device.to_string()))
    }
}

impl DeviceAdapter for SimAdapter {
    fn dispatch(&self, cmd: DeviceCommand) -> Result<(), DeviceError> {
        let device = cmd.device.clone();
        self.send(&device, Msg::Cmd(cmd))
    }

    fn name(&self) -> &'static str {
        "sim"
    }
}

/// How a pending command ends when its time comes.
#[derive(Debug)]
enum Outcome {
    Confirm,
    Fail(&'static str),
}

#[derive(Debug)]
struct Dev {
    state: DeviceState,
    failsafe: Failsafe,
    pending: Option<(Instant, DeviceCommand, Outcome)>,
    /// When contact was lost (Instant, wall ms).
    lost: Option<(Instant, i64)>,
    offline_reported: bool,
}

struct Sim {
    opts: SimOpts,
    rng: Rng,
    devs: HashMap<String, Dev>,
    reports: mpsc::Sender<DeviceReport>,
}

/// The report receiver is gone.
struct Closed;

impl Sim {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let shortest = self
            .opts
            .confirm_delay
            .min(self.opts.device_timeout)
            .max(Duration::from_millis(1));
        let mut tick = tokio::time::interval(net::tick_for(shortest));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let beat_period = if self.opts.heartbeat.is_zero() {
            Duration::from_secs(86_400)
        } else {
            self.opts.heartbeat
        };
        let mut beat = tokio::time::interval(beat_period);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => self.on_msg(m).await,
                    None => break,
                },
                _ = tick.tick() => self.on_tick().await,
                _ = beat.tick() => {
                    if self.opts.heartbeat.is_zero() { Ok(()) } else { self.heartbeat().await }
                }
            };
            if step.is_err() {
                break;
            }
        }
        tracing::info!(adapter = "sim", "adapter stopped");
    }

    async fn report(&self, r: DeviceReport) -> Result<(), Closed> {
        self.reports.send(r).await.map_err(|_| Closed)
    }

    async fn heartbeat(&self) -> Result<(), Closed> {
        let now_ms = wall_ms();
        for (name, d) in self.devs.iter().filter(|(_, d)| d.lost.is_none()) {
            self.report(DeviceReport::State {
                device: name.clone(),
                state: d.state.clone(),
                wall_ms: now_ms,
            })
            .await?;
        }
        Ok(())
    }

    async fn on_msg(&mut self, m: Msg) -> Result<(), Closed> {
        let now = Instant::now();
        let now_ms = wall_ms();
        match m {
            Msg::Cmd(cmd) => {
                let (device, id) = (cmd.device.clone(), cmd.command_id);
                if now_ms >= cmd.expires_ms {
                    return self
                        .report(DeviceReport::Expired {
                            device,
                            command_id: id,
                            wall_ms: now_ms,
                        })
                        .await;
                }
                let dropped = self.opts.ignore_commands.contains(&device)
                    || (self.opts.drop_probability > 0.0
                        && self.rng.unit() < self.opts.drop_probability);
                let Some(d) = self.devs.get_mut(&device) else {
                    return Ok(());
                };
                let outcome = if d.lost.is_some() {
                    Outcome::Fail("no confirmation: device unreachable")
                } else if dropped {
                    Outcome::Fail("no confirmation (simulated drop)")
                } else {
                    Outcome::Confirm
                };
                let old = d
                    .pending
                    .replace((now + self.opts.confirm_delay, cmd, outcome));
                if let Some((_, old, _)) = old
                    && old.command_id != id
                {
                    let reason = format!("superseded by command {id}");
                    let r = DeviceReport::Failed {
                        device,
                        command_id: old.command_id,
                        reason,
                        wall_ms: now_ms,
                    };
                    return self.report(r).await;
                }
            }
            Msg::Lose(device) => {
                if let Some(d) = self.devs.get_mut(&device) {
                    d.lost.get_or_insert((now, now_ms));
                }
            }
            Msg::Restore(device) => {
                let Some(d) = self.devs.get_mut(&device) else {
                    return Ok(());
                };
                let Some((since, _)) = d.lost.take() else {
                    return Ok(());
                };
                if d.failsafe
                    .after()
                    .is_some_and(|after| now.duration_since(since) >= after)
                {
                    d.state = d.failsafe.state(&d.state);
                }
                let state = d.state.clone();
                if std::mem::take(&mut d.offline_reported) {
                    self.report(DeviceReport::Online {
                        device: device.clone(),
                        wall_ms: now_ms,
                    })
                    .await?;
                }
                return self
                    .report(DeviceReport::State {
                        device,
                        state,
                        wall_ms: now_ms,
                    })
                    .await;
            }
        }
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), Closed> {
        let now = Instant::now();
        let now_ms = wall_ms();
        let mut out = Vec::new();
        for (name, d) in &mut self.devs {
            let device = name.clone();
            if d.pending
                .as_ref()
                .is_some_and(|(due, cmd, _)| now >= *due || now_ms >= cmd.expires_ms)
                && let Some((_, cmd, outcome)) = d.pending.take()
            {
                let command_id = cmd.command_id;
                out.push(match outcome {
                    _ if now_ms >= cmd.expires_ms => DeviceReport::Expired {
                        device: device.clone(),
                        command_id,
                        wall_ms: now_ms,
                    },
                    Outcome::Fail(reason) => DeviceReport::Failed {
                        device: device.clone(),
                        command_id,
                        reason: reason.into(),
                        wall_ms: now_ms,
                    },
                    Outcome::Confirm => {
                        d.state = cmd.state;
                        d.failsafe = cmd.failsafe;
                        DeviceReport::Confirmed {
                            device: device.clone(),
                            command_id,
                            state: d.state.clone(),
                            wall_ms: now_ms,
                        }
                    }
                });
            }
            if let Some((since, since_ms)) = d.lost
                && !d.offline_reported
                && now.duration_since(since) >= self.opts.device_timeout
            {
                d.offline_reported = true;
                out.push(DeviceReport::Offline {
                    device,
                    since_ms,
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
