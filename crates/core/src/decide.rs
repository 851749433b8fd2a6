//! The device board (设备指令板): merges what every plan asks of every
//! device into one commanded state per device, and emits an action only
//! when that state changes.
//!
//! Conflicts are resolved by a fixed, documented priority — safety first:
//!
//! | command | winner |
//! |---|---|
//! | speed limit | the lowest limit |
//! | message | the request with the highest priority (tunnel > fog > incident > ice > congestion), then the lowest limit it names |
//! | fog lights | the most conspicuous mode (warning flash > tail marking > guidance > off) |
//! | entry | the most restrictive (closed > metered > open); banned classes are united |
//! | de-icing | on if any plan asks |
//! | tunnel plan | the highest priority |
//!
//! A device no plan asks for any more is released to its default (posted
//! limit, blank, off, open) — once, with the reason "released".

use std::collections::BTreeMap;

use zhilu_road::{DeviceKind, DeviceRef, Direction, RoadBook};

use crate::event::{Action, Command, EntryState, FogLightMode, Reason, ReasonCode};

/// Which device a request is for (an entry is per direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceKey {
    /// Kind (as an ordinal, for ordering) and index.
    kind: u8,
    index: u32,
    /// For entries: the carriageway.
    direction: Option<Direction>,
    /// Distinguishes the command family on one device (a gantry may carry a
    /// speed limit and a message).
    family: u8,
}

impl DeviceKey {
    /// A key for a device and a command family.
    pub fn new(device: DeviceRef, direction: Option<Direction>, command: &Command) -> DeviceKey {
        DeviceKey {
            kind: device.kind as u8,
            index: device.index,
            direction,
            family: family(command),
        }
    }
}

fn family(c: &Command) -> u8 {
    match c {
        Command::SpeedLimit(_) => 0,
        Command::Message(_) => 1,
        Command::FogLights(_) => 2,
        Command::Entry { .. } => 3,
        Command::Deicing(_) => 4,
        Command::TunnelPlan(_) => 5,
    }
}

/// Priority of the plan that asks (higher wins where the table says so).
pub mod priority {
    /// Congestion warnings.
    pub const CONGESTION: u8 = 10;
    /// Ice plan.
    pub const ICE: u8 = 20;
    /// Incident plan.
    pub const INCIDENT: u8 = 30;
    /// Fog plan.
    pub const FOG: u8 = 40;
    /// Tunnel emergency plan.
    pub const TUNNEL: u8 = 50;
}

/// What one plan asks of one device this tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The device.
    pub device: DeviceRef,
    /// For entries: the carriageway.
    pub direction: Option<Direction>,
    /// The command.
    pub command: Command,
    /// Priority of the asking plan.
    pub priority: u8,
    /// The event behind it.
    pub event_seq: u64,
    /// Why (rule, evidence, legal basis).
    pub reason: Reason,
}

#[derive(Debug, Clone)]
struct Commanded {
    device: DeviceRef,
    direction: Option<Direction>,
    command: Command,
}

/// The commanded state of every device that is not at its default.
#[derive(Debug, Clone, Default)]
pub struct Board {
    commanded: BTreeMap<DeviceKey, Commanded>,
    requests: Vec<Request>,
}

/// Whether `a` wins over `b` for the same device.
fn wins(a: &Request, b: &Request) -> bool {
    match (&a.command, &b.command) {
        (Command::SpeedLimit(x), Command::SpeedLimit(y)) => match (x, y) {
            (Some(x), Some(y)) => x < y || (x == y && a.priority > b.priority),
            (Some(_), None) => true,
            _ => false,
        },
        (Command::FogLights(x), Command::FogLights(y)) => {
            x > y || (x == y && a.priority > b.priority)
        }
        (Command::Entry { state: x, .. }, Command::Entry { state: y, .. }) => {
            x > y || (x == y && a.priority > b.priority)
        }
        (Command::Deicing(x), Command::Deicing(y)) => *x && !*y,
        _ => a.priority > b.priority,
    }
}

fn default_of(c: &Command) -> Command {
    match c {
        Command::SpeedLimit(_) => Command::SpeedLimit(None),
        Command::Message(_) => Command::Message(String::new()),
        Command::FogLights(_) => Command::FogLights(FogLightMode::Off),
        Command::Entry { .. } => Command::Entry {
            state: EntryState::Open,
            banned: Vec::new(),
        },
        Command::Deicing(_) => Command::Deicing(false),
        Command::TunnelPlan(_) => Command::TunnelPlan(None),
    }
}

impl Board {
    /// An empty board (every device at its default).
    pub fn new() -> Board {
        Board::default()
    }

    /// Adds a request for this tick.
    pub fn ask(&mut self, r: Request) {
        self.requests.push(r);
    }

    /// The commanded state of a device, if not its default.
    pub fn commanded(
        &self,
        device: DeviceRef,
        direction: Option<Direction>,
        family_of: &Command,
    ) -> Option<&Command> {
        self.commanded
            .get(&DeviceKey::new(device, direction, family_of))
            .map(|c| &c.command)
    }

    /// Speed-limit signs commanded below the posted limit: (index into the
    /// road book's VSL list, km/h).
    pub fn speed_limits(&self) -> impl Iterator<Item = (u32, u16)> + '_ {
        self.commanded
            .values()
            .filter_map(|c| match (c.device.kind, &c.command) {
                (DeviceKind::Vsl, Command::SpeedLimit(Some(v))) => Some((c.device.index, *v)),
                _ => None,
            })
    }

    /// Devices currently away from their default.
    pub fn active(&self) -> usize {
        self.commanded.len()
    }

    /// Resolves this tick's requests and appends the changes as actions.
    pub fn settle(&mut self, road: &RoadBook, now_ms: i64, out: &mut Vec<Action>) {
        let mut winners: BTreeMap<DeviceKey, Request> = BTreeMap::new();
        for r in self.requests.drain(..) {
            let key = DeviceKey::new(r.device, r.direction, &r.command);
            match winners.get_mut(&key) {
                None => {
                    winners.insert(key, r);
                }
                Some(w) => {
                    // Entries unite their banned classes whoever wins.
                    let mut banned = match (&w.command, &r.command) {
                        (Command::Entry { banned: a, .. }, Command::Entry { banned: b, .. }) => {
                            let mut v = a.clone();
                            v.extend(b.iter().copied().filter(|c| !a.contains(c)));
                            Some(v)
                        }
                        _ => None,
                    };
                    if wins(&r, w) {
                        *w = r;
                    }
                    if let (Some(v), Command::Entry { banned, .. }) =
                        (banned.take(), &mut w.command)
                    {
                        *banned = v;
                    }
                }
            }
        }
        // Changes and new commands.
        for (key, r) in &winners {
            let is_default = r.command == default_of(&r.command);
            let prev = self.commanded.get(key).map(|c| &c.command);
            let changed = match prev {
                Some(p) => *p != r.command,
                None => !is_default,
            };
            if changed {
                out.push(Action {
                    at_ms: now_ms,
                    device: road.device_id(r.device).to_string(),
                    direction: r.direction,
                    command: r.command.clone(),
                    event_seq: Some(r.event_seq),
                    reason: r.reason.clone(),
                });
            }
            if is_default {
                self.commanded.remove(key);
            } else {
                self.commanded.insert(
                    *key,
                    Commanded {
                        device: r.device,
                        direction: r.direction,
                        command: r.command.clone(),
                    },
                );
            }
        }
        // Releases: commanded before, asked by nobody now.
        let released: Vec<DeviceKey> = self
            .commanded
            .keys()
            .filter(|k| !winners.contains_key(k))
            .copied()
            .collect();
        for key in released {
            if let Some(c) = self.commanded.remove(&key) {
                out.push(Action {
                    at_ms: now_ms,
                    device: road.device_id(c.device).to_string(),
                    direction: c.direction,
                    command: default_of(&c.command),
                    event_seq: None,
                    reason: Reason::new(ReasonCode::Released),
                });
            }
        }
    }
}
