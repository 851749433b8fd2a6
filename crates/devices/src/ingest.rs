//! MQTT ingest of readings: forwards what arrives on `{prefix}/readings/*`
//! to the server, acknowledging each message only once the server is done
//! with it ([`IngestMessage::done`]: stored, or unusable), in the order
//! received. A message the server drops without `done` (it stopped) stays
//! unacknowledged and the broker delivers it again on the next connection.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, MqttOptions, Publish, QoS, SubscribeFilter};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::net::{self, AbortOnDrop, NetEvent};
use crate::wire::Topics;
use crate::{DeviceError, IngestConfig};

/// Events between the event loop and the forwarder. When it is full the
/// event loop stops reading the socket, so TCP holds the broker back.
const INTERNAL_QUEUE: usize = 64;

/// Retry period for acks and subscriptions the event loop could not take yet.
const RETRY: Duration = Duration::from_millis(5);

/// Which reading file of the replay contract a message carries (the contract's kinds).
pub use zhilu_contract::ReadingKind;

/// The last topic level of a kind's readings: `{prefix}/readings/obs`,
/// `…/weather`, `…/positions`, `…/camera` (crates/devices/MQTT.md).
pub fn topic_level(kind: ReadingKind) -> &'static str {
    match kind {
        ReadingKind::Obs => "obs",
        ReadingKind::Weather => "weather",
        ReadingKind::Positions => "positions",
        ReadingKind::Camera => "camera",
    }
}

/// One message of readings, forwarded untouched (the server parses it).
#[derive(Debug)]
pub struct IngestMessage {
    /// Which readings the payload holds.
    pub kind: ReadingKind,
    /// The MQTT topic it arrived on.
    pub topic: String,
    /// CSV rows (header optional) or a JSON array/object of rows; see MQTT.md.
    pub payload: Bytes,
    /// Told when the server is done with the message.
    handled: Option<oneshot::Sender<()>>,
}

impl IngestMessage {
    /// The server is done with this message — its rows are stored, or it
    /// is unusable and never will be: the broker may forget it. Until
    /// then (and if it is dropped without this) the message stays
    /// unacknowledged, so a crash before the rows are stored loses nothing.
    pub fn done(mut self) {
        if let Some(h) = self.handled.take() {
            let _ = h.send(());
        }
    }
}

/// The MQTT ingest of readings.
#[derive(Debug)]
pub struct MqttIngest;

/// Connection state of a running ingest.
#[derive(Debug, Clone)]
pub struct IngestStatus {
    subscribed: watch::Receiver<bool>,
    addr: String,
}

impl IngestStatus {
    /// Whether the ingest is connected and subscribed.
    pub fn is_subscribed(&self) -> bool {
        *self.subscribed.borrow()
    }

    /// Wait until connected and subscribed to every readings topic.
    pub async fn wait_subscribed(&self, timeout: Duration) -> Result<(), DeviceError> {
        let mut rx = self.subscribed.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|s| *s)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(DeviceError::Stopped),
            Err(_) => Err(DeviceError::Timeout(self.addr.clone())),
        }
    }
}

impl MqttIngest {
    /// Subscribe to the readings topics and forward every message to `tx`.
    /// The task ends when `tx`'s receiver is dropped.
    pub fn start(
        cfg: IngestConfig,
        tx: mpsc::Sender<IngestMessage>,
    ) -> Result<JoinHandle<()>, DeviceError> {
        Self::start_with_status(cfg, tx).map(|(task, _)| task)
    }

    /// [`MqttIngest::start`], also returning a handle on the connection state.
    pub fn start_with_status(
        cfg: IngestConfig,
        tx: mpsc::Sender<IngestMessage>,
    ) -> Result<(JoinHandle<()>, IngestStatus), DeviceError> {
        net::require_runtime()?;
        cfg.validate()?;
        let mut opts = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
        // A persistent session with manual acks: a message is acknowledged only
        // after the server's channel took it, so the broker keeps (and after a
        // crash redelivers) whatever was not yet handed over.
        opts.set_keep_alive(Duration::from_secs(5))
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_request_channel_capacity(INTERNAL_QUEUE)
            .set_max_packet_size(cfg.max_packet_bytes, 64 * 1024);
        let (client, eventloop) = AsyncClient::new(opts, INTERNAL_QUEUE);
        let (net_tx, net_rx) = mpsc::channel(INTERNAL_QUEUE);
        let net_task = AbortOnDrop(net::spawn(eventloop, net_tx, "mqtt-ingest"));
        let (sub_tx, sub_rx) = watch::channel(false);
        let topics = Topics::new(&cfg.prefix);
        let routes: Vec<(String, ReadingKind)> = ReadingKind::ALL
            .iter()
            .map(|k| (topics.readings(topic_level(*k)), *k))
            .collect();
        let task = tokio::spawn(forward(client, net_rx, net_task, routes, tx, sub_tx));
        let status = IngestStatus {
            subscribed: sub_rx,
            addr: format!("{}:{}", cfg.host, cfg.port),
        };
        Ok((task, status))
    }
}

async fn forward(
    client: AsyncClient,
    mut net: mpsc::Receiver<NetEvent>,
    _net_task: AbortOnDrop,
    routes: Vec<(String, ReadingKind)>,
    tx: mpsc::Sender<IngestMessage>,
    subscribed: watch::Sender<bool>,
) {
    // Never await the event loop from here: it may itself be waiting for us
    // to take its next event (that is how a slow server holds the broker
    // back), so acks and subscriptions are queued with `try_*` and retried.
    // The broker (mosquitto with MQTT 3.1.1) does not cap unacknowledged
    // messages per client, so these acks are bounded only by how fast the
    // event loop drains its requests, which it does between every read batch.
    let mut acks: VecDeque<Publish> = VecDeque::new();
    // Forwarded, not yet done, in the order received (acks keep that order).
    let mut pending: VecDeque<(Publish, oneshot::Receiver<()>)> = VecDeque::new();
    let mut need_subscribe = false;
    loop {
        while let Some((_, h)) = pending.front_mut() {
            match h.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => break,
                done => {
                    let (p, _) = pending.pop_front().expect("a front");
                    // Dropped without `done`: left for the broker to redeliver.
                    if done.is_ok() {
                        acks.push_back(p);
                    }
                }
            }
        }
        while let Some(p) = acks.front() {
            if client.try_ack(p).is_err() {
                break;
            }
            acks.pop_front();
        }
        if need_subscribe {
            let filters = routes
                .iter()
                .map(|(t, _)| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
            need_subscribe = client.try_subscribe_many(filters).is_err();
        }
        let retry = !acks.is_empty() || need_subscribe;
        let ev = tokio::select! {
            ev = net.recv() => ev,
            done = async {
                match pending.front_mut() {
                    Some((_, h)) => h.await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                // (A receiver that has yielded cannot be asked again.)
                let (p, _) = pending.pop_front().expect("a front");
                if done {
                    acks.push_back(p);
                }
                continue;
            }
            _ = tokio::time::sleep(RETRY), if retry => continue,
        };
        let Some(ev) = ev else { return };
        match ev {
            NetEvent::Connected { session_present } => {
                // Always (re)subscribe: a restarted broker forgets the session.
                tracing::debug!(session_present, "ingest connected; subscribing");
                need_subscribe = true;
            }
            NetEvent::Subscribed { ok } => {
                subscribed.send_replace(ok);
            }
            NetEvent::Disconnected => {
                subscribed.send_replace(false);
                // Packet ids of the old connection: the broker redelivers those
                // messages (at least once), and they are acknowledged then
                // (the server stores a reading once).
                acks.clear();
                pending.clear();
            }
            NetEvent::Message(p) => {
                let kind = routes.iter().find(|(t, _)| *t == p.topic).map(|(_, k)| *k);
                if let Some(kind) = kind {
                    let (handled, h) = oneshot::channel();
                    let msg = IngestMessage {
                        kind,
                        topic: p.topic.clone(),
                        payload: p.payload.clone(),
                        handled: Some(handled),
                    };
                    // Back-pressure: wait for room; until then the message
                    // stays unacknowledged and the broker holds the rest.
                    if tx.send(msg).await.is_err() {
                        tracing::info!("ingest receiver dropped; ingest stopping");
                        return;
                    }
                    pending.push_back((p, h));
                } else {
                    tracing::warn!(topic = %p.topic, "message on an unexpected topic acknowledged and ignored");
                    if pending.is_empty() {
                        acks.push_back(p);
                    } else {
                        // Acknowledged in turn, after those before it.
                        let (done, h) = oneshot::channel();
                        let _ = done.send(());
                        pending.push_back((p, h));
                    }
                }
            }
        }
    }
}
