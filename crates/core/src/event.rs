//! Events (what the platform detected) and actions (what it decided).
//!
//! These are domain values; the adapters turn them into the contract's JSON
//! lines, so a change here never silently changes the file format.

use zhilu_road::Direction;

pub use zhilu_contract::{
    BANNABLE_CLASSES, CommandKind, EntryState, EventKind, FogLightMode, LegalBasis, Reason,
    ReasonCode, bannable_class,
};

/// Kind-specific facts an event carries.
#[derive(Debug, Clone, PartialEq)]
pub enum EventDetail {
    /// Nothing beyond the common fields.
    None,
    /// Fog: the lowest visibility seen (m) and the worst band reached (1–5).
    Fog {
        /// Lowest visibility during the event (m).
        visibility_m: f32,
        /// Worst band: 1 (< 500 m) … 5 (< 30 m).
        band: u8,
    },
    /// Ice risk: the lowest surface temperature seen, and whether ice was
    /// observed or only predicted.
    Ice {
        /// Lowest surface temperature during the event (°C).
        surface_temp_c: f32,
        /// Ice or snow observed, or surface ≤ 0 °C on a moist surface.
        observed: bool,
    },
    /// An event about one vehicle (hazardous goods, wrong way).
    Vehicle {
        /// Interned vehicle id.
        vehicle: u32,
        /// Highest speed seen (km/h).
        max_speed_kmh: f32,
    },
    /// Congestion: whether the queue is growing (+1), stable (0) or shrinking (−1).
    Congestion {
        /// Trend of the extent over the last minutes.
        trend: i8,
        /// Lowest segment speed seen (km/h).
        min_speed_kmh: f32,
    },
    /// A faulty detector station.
    DetectorFault {
        /// Detector index in the road book.
        detector: u32,
        /// Lanes found faulty during the episode (1-based, ascending).
        lanes: Vec<u8>,
        /// Rules that fired during the episode, in first-fired order.
        rules: Vec<crate::quality::FaultRule>,
    },
}

/// One detected event, open (`end_ms = None`) or closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Sequence number, unique within a run (`E{seq}` in the files).
    pub seq: u64,
    /// Kind.
    pub kind: EventKind,
    /// Carriageway, or `None` for both (fog, ice).
    pub direction: Option<Direction>,
    /// Extent: lower stake (m).
    pub from_m: f64,
    /// Extent: higher stake (m).
    pub to_m: f64,
    /// Estimated start (epoch ms).
    pub start_ms: i64,
    /// Data time it was first raised (epoch ms).
    pub detected_ms: i64,
    /// End (epoch ms), `None` while active.
    pub end_ms: Option<i64>,
    /// Severity 1 (minor) – 5 (worst).
    pub severity: u8,
    /// The rule that raised it (e.g. `quality.stuck`).
    pub rule: &'static str,
    /// Detector indices used as evidence.
    pub detectors: Vec<u32>,
    /// Kind-specific facts.
    pub detail: EventDetail,
}

/// Ends the alarms raised by sightings (camera reports) that have not been
/// repeated for longer than `quiet_ms`: each ends at its last sighting and
/// goes to `closed`. An alarm is `(event, last sighting ms)`.
pub(crate) fn end_quiet_alarms(
    alarms: &mut Vec<(Event, i64)>,
    now_ms: i64,
    quiet_ms: i64,
    closed: &mut Vec<Event>,
) {
    alarms.retain(|(e, last)| {
        let quiet = now_ms - last > quiet_ms;
        if quiet {
            let mut e = e.clone();
            e.end_ms = Some(*last);
            closed.push(e);
        }
        !quiet
    });
}

/// A command to one roadside device (a line of ACTIONS.jsonl).
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// Data time of the decision (epoch ms).
    pub at_ms: i64,
    /// Device id from the road book.
    pub device: String,
    /// The carriageway, for devices that serve both (toll entries).
    pub direction: Option<Direction>,
    /// What to do.
    pub command: Command,
    /// Event that caused it.
    pub event_seq: Option<u64>,
    /// Why: a code with its parameters (rule, evidence, legal basis);
    /// `Reason::text` gives the words of `ACTIONS.jsonl`.
    pub reason: Reason,
}

/// The commanded state of a device.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Speed limit (km/h), `None` = back to the posted limit.
    SpeedLimit(Option<u16>),
    /// Message text; empty = blank.
    Message(String),
    /// Fog-light mode.
    FogLights(FogLightMode),
    /// Entry state for one direction, with vehicle classes turned away.
    Entry {
        /// State.
        state: EntryState,
        /// Vehicle classes banned from entering (`hazmat`, `oversize`, `heavy`), empty when none.
        banned: Vec<&'static str>,
    },
    /// De-icing sprayers on or off.
    Deicing(bool),
    /// A named tunnel emergency plan, `None` = stand down.
    TunnelPlan(Option<String>),
}

impl Command {
    /// What kind of command this is.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::SpeedLimit(_) => CommandKind::SpeedLimit,
            Command::Message(_) => CommandKind::Message,
            Command::FogLights(_) => CommandKind::FogLights,
            Command::Entry { .. } => CommandKind::Entry,
            Command::Deicing(_) => CommandKind::Deicing,
            Command::TunnelPlan(_) => CommandKind::TunnelPlan,
        }
    }

    /// The device's default state for this kind (posted limit, blank,
    /// lights off, entry open, sprayers off, no tunnel plan).
    pub fn default_of(kind: CommandKind) -> Command {
        match kind {
            CommandKind::SpeedLimit => Command::SpeedLimit(None),
            CommandKind::Message => Command::Message(String::new()),
            CommandKind::FogLights => Command::FogLights(FogLightMode::Off),
            CommandKind::Entry => Command::Entry {
                state: EntryState::Open,
                banned: Vec::new(),
            },
            CommandKind::Deicing => Command::Deicing(false),
            CommandKind::TunnelPlan => Command::TunnelPlan(None),
        }
    }

    /// Whether `self` asks at least as much of drivers as `other` (a command
    /// of the same kind): a limit at or below, a non-blank text where one was
    /// asked, lights at least as conspicuous, an entry at least as restrictive
    /// with at least the same classes turned away, sprayers on where asked,
    /// the same tunnel plan. Commands of different kinds never compare.
    pub fn at_least_as_safe_as(&self, other: &Command) -> bool {
        match (self, other) {
            (Command::SpeedLimit(a), Command::SpeedLimit(b)) => match (a, b) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(a), Some(b)) => a <= b,
            },
            (Command::Message(a), Command::Message(b)) => b.is_empty() || !a.is_empty(),
            (Command::FogLights(a), Command::FogLights(b)) => a >= b,
            (
                Command::Entry {
                    state: a,
                    banned: ba,
                },
                Command::Entry {
                    state: b,
                    banned: bb,
                },
            ) => a >= b && (*a == EntryState::Closed || bb.iter().all(|c| ba.contains(c))),
            (Command::Deicing(a), Command::Deicing(b)) => *a || !*b,
            (Command::TunnelPlan(a), Command::TunnelPlan(b)) => b.is_none() || a == b,
            _ => false,
        }
    }
}
