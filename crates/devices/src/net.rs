//! Drives a rumqttc event loop: reconnects with backoff and forwards what the
//! owner needs through a bounded channel.

use std::time::Duration;

use rumqttc::{Event, EventLoop, Packet, Publish, SubscribeReasonCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// First reconnect delay after losing the broker.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the event loop tells its owner.
#[derive(Debug)]
pub(crate) enum NetEvent {
    /// Connected (or reconnected) to the broker.
    Connected { session_present: bool },
    /// The broker acknowledged a subscription; `ok` is false if it refused one.
    Subscribed { ok: bool },
    /// A message arrived on a subscribed topic.
    Message(Publish),
    /// The connection was lost; the loop is reconnecting.
    Disconnected,
}

/// Aborts a task when dropped, so a helper task never outlives its owner.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Poll `el` forever, forwarding events to `tx` (awaiting: a slow owner holds
/// the loop, and so the broker, back). Ends when `tx` closes or every client
/// handle is gone.
pub(crate) fn spawn(
    mut el: EventLoop,
    tx: mpsc::Sender<NetEvent>,
    who: &'static str,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (host, port) = el.mqtt_options.broker_address();
        let mut backoff = BACKOFF_MIN;
        let mut connected = false;
        loop {
            let ev = match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    tracing::info!(who, host = %host, port, session_present = ack.session_present, "mqtt connected");
                    backoff = BACKOFF_MIN;
                    connected = true;
                    NetEvent::Connected {
                        session_present: ack.session_present,
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let ok = ack
                        .return_codes
                        .iter()
                        .all(|c| !matches!(c, SubscribeReasonCode::Failure));
                    if !ok {
                        tracing::error!(who, codes = ?ack.return_codes, "mqtt broker refused a subscription");
                    }
                    NetEvent::Subscribed { ok }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => NetEvent::Message(p),
                Ok(_) => continue,
                Err(rumqttc::ConnectionError::RequestsDone) => return,
                Err(e) => {
                    if connected {
                        tracing::warn!(who, host = %host, port, error = %e, "mqtt connection lost; reconnecting");
                    } else {
                        tracing::debug!(who, host = %host, port, error = %e, backoff_ms = backoff.as_millis() as u64, "mqtt connect failed");
                    }
                    let was = std::mem::replace(&mut connected, false);
                    if was && tx.send(NetEvent::Disconnected).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    })
}

/// Wall clock in epoch milliseconds.
pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Fail with `NoRuntime` outside tokio instead of panicking in `tokio::spawn`.
pub(crate) fn require_runtime() -> Result<(), crate::DeviceError> {
    tokio::runtime::Handle::try_current()
        .map(|_| ())
        .map_err(|_| crate::DeviceError::NoRuntime)
}

/// Tick period for a loop whose shortest timer is `shortest`.
pub(crate) fn tick_for(shortest: Duration) -> Duration {
    (shortest / 5).clamp(Duration::from_millis(5), Duration::from_millis(200))
}
