//! The live stream: one broadcast hub, served as Server-Sent Events. Each
//! message carries a kind (`state`, `event`, `proposal`, `action`,
//! `device`, `vehicles`, `alarm`, `plan`) and a JSON payload. A slow client loses the oldest messages
//! (it is told how many with a `lagged` message), never the server's memory.

use std::sync::Arc;

use tokio::sync::broadcast;

/// The one route that takes `?token=` (a browser's EventSource cannot set
/// headers); everywhere else a token in the query string is ignored, so
/// it never ends up in links, logs or proxies' records of a write.
pub const STREAM_PATH: &str = "/api/stream";

/// Message kinds on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Corridor state after a tick.
    State,
    /// An event opened, updated or ended.
    Event,
    /// A proposal created or decided.
    Proposal,
    /// A command applied.
    Action,
    /// A device's confirmed state changed.
    Device,
    /// Vehicles that moved or went silent (a batch).
    Vehicles,
    /// A response plan created, changed (a step joined, was decided or
    /// superseded) or decided (no step pending any more).
    Plan,
    /// Something needs an operator now (a safety proposal unanswered past
    /// its deadline); repeats with a rising level until answered.
    Alarm,
}

impl StreamKind {
    /// SSE event name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::State => "state",
            StreamKind::Event => "event",
            StreamKind::Proposal => "proposal",
            StreamKind::Action => "action",
            StreamKind::Device => "device",
            StreamKind::Vehicles => "vehicles",
            StreamKind::Alarm => "alarm",
            StreamKind::Plan => "plan",
        }
    }
}

/// One stream message.
#[derive(Debug, Clone)]
pub struct StreamMsg {
    /// Kind.
    pub kind: StreamKind,
    /// JSON payload.
    pub data: Arc<str>,
}

/// The broadcast hub.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<StreamMsg>,
}

impl Hub {
    /// A hub keeping `capacity` messages for slow clients.
    pub fn new(capacity: usize) -> Hub {
        let (tx, _) = broadcast::channel(capacity);
        Hub { tx }
    }

    /// Publishes (nobody listening is fine).
    pub fn publish(&self, kind: StreamKind, data: String) {
        metrics::counter!("zhilu_stream_messages_total", "kind" => kind.as_str()).increment(1);
        let _ = self.tx.send(StreamMsg {
            kind,
            data: data.into(),
        });
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<StreamMsg> {
        self.tx.subscribe()
    }
}
