//! Events (what the platform detected) and actions (what it decided).
//!
//! These are domain values; the adapters turn them into the contract's JSON
//! lines, so a change here never silently changes the file format.

use zhilu_road::Direction;

pub use zhilu_contract::{
    BANNABLE_CLASSES, CommandKind, EntryState, EventKind, FaultRule, FogLightMode, LegalBasis,
    Reason, ReasonCode, Severity, bannable_class,
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
    /// The detector's score 1 (minor) – 5 (worst), as written in
    /// EVENTS.jsonl `severity`; the operator's class is [`Event::severity`].
    pub severity: u8,
    /// The rule that raised it (e.g. `quality.stuck`).
    pub rule: &'static str,
    /// Detector indices used as evidence.
    pub detectors: Vec<u32>,
    /// Kind-specific facts.
    pub detail: EventDetail,
}

/// Thresholds of [`judge_severity`] (事件等级判定表). The defaults follow the
/// legal texts where there are any; the rest are the platform's own choices,
/// named here so that a deployment can change them in one place.
#[derive(Debug, Clone, PartialEq)]
pub struct SeverityTable {
    /// Fog below this visibility (m) is critical: 《道路交通安全法实施条例》
    /// Art. 81 — 20 km/h and leave the expressway at the nearest exit.
    pub fog_critical_below_m: f32,
    /// Fog below this (m) is major: Art. 81 — 40 km/h, 50 m gap, hazard lights.
    pub fog_major_below_m: f32,
    /// Fog below this (m) is minor: Art. 81 — 60 km/h, 100 m gap. Lighter
    /// fog is info.
    pub fog_minor_below_m: f32,
    /// A queue at least this long (m) is major.
    pub congestion_major_m: f64,
    /// A queue at least this long (m) is minor; a shorter one is info.
    pub congestion_minor_m: f64,
    /// An incident blocking at least this many lanes (but not all) is major;
    /// all lanes blocked is critical.
    pub incident_major_lanes: u8,
    /// A detector fault on at least this many lanes (or the whole station)
    /// is minor; on fewer it is info (the state bridges one lane).
    pub fault_minor_lanes: usize,
}

impl Default for SeverityTable {
    fn default() -> Self {
        SeverityTable {
            fog_critical_below_m: 50.0,
            fog_major_below_m: 100.0,
            fog_minor_below_m: 200.0,
            congestion_major_m: 5_000.0,
            congestion_minor_m: 1_000.0,
            incident_major_lanes: 1,
            fault_minor_lanes: 2,
        }
    }
}

/// Lanes an incident blocks, when something (the lane state at its site, an
/// operator) knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanesBlocked {
    /// Lanes blocked.
    pub blocked: u8,
    /// Lanes of the carriageway there.
    pub total: u8,
}

/// What an event's severity is judged on: its kind and rule and the facts
/// its detail carries, plus what the road book and the lane state add
/// (whether it is in a tunnel, the lanes blocked). A stored event line gives
/// the same facts, so the server judges stored and live events alike.
#[derive(Debug, Clone, PartialEq)]
pub struct SeverityFacts<'a> {
    /// Kind.
    pub kind: EventKind,
    /// The rule that raised it (`incident.camera_fire`, …).
    pub rule: &'a str,
    /// Length of the extent (m).
    pub extent_m: f64,
    /// Fog: the lowest visibility (m).
    pub visibility_m: Option<f32>,
    /// Ice: observed (`true`) or predicted (`false`).
    pub ice_observed: Option<bool>,
    /// Detector fault: the lanes found faulty (empty = the whole station)
    /// and the rules that fired.
    pub fault_lanes: usize,
    /// Detector fault: a station-level rule fired (`station_zero`).
    pub fault_station: bool,
    /// Incident: the lanes blocked, when known.
    pub lanes: Option<LanesBlocked>,
    /// The event lies (partly) inside a tunnel.
    pub in_tunnel: bool,
}

impl<'a> SeverityFacts<'a> {
    /// Facts of a kind with nothing else known.
    pub fn of_kind(kind: EventKind, rule: &'a str) -> Self {
        SeverityFacts {
            kind,
            rule,
            extent_m: 0.0,
            visibility_m: None,
            ice_observed: None,
            fault_lanes: 0,
            fault_station: false,
            lanes: None,
            in_tunnel: false,
        }
    }
}

/// Fog by visibility band under Art. 81 (< 50 / 100 / 200 m).
pub fn fog_severity(visibility_m: f32, t: &SeverityTable) -> Severity {
    if visibility_m < t.fog_critical_below_m {
        Severity::Critical
    } else if visibility_m < t.fog_major_below_m {
        Severity::Major
    } else if visibility_m < t.fog_minor_below_m {
        Severity::Minor
    } else {
        Severity::Info
    }
}

/// Ice: observed ice or snow is major, a predicted risk minor.
pub fn ice_severity(observed: bool) -> Severity {
    if observed {
        Severity::Major
    } else {
        Severity::Minor
    }
}

/// Congestion by the length of the queue.
pub fn congestion_severity(extent_m: f64, t: &SeverityTable) -> Severity {
    if extent_m >= t.congestion_major_m {
        Severity::Major
    } else if extent_m >= t.congestion_minor_m {
        Severity::Minor
    } else {
        Severity::Info
    }
}

/// An incident: fire or smoke, every lane blocked, or any incident in a
/// tunnel is critical; a lane blocked (or a stop the detectors or a camera
/// confirm) major; a slowdown only probe vehicles report, with no lane
/// known blocked, minor.
pub fn incident_severity(
    rule: &str,
    lanes: Option<LanesBlocked>,
    in_tunnel: bool,
    t: &SeverityTable,
) -> Severity {
    if rule == "incident.camera_fire" || in_tunnel {
        return Severity::Critical;
    }
    match lanes {
        Some(l) if l.total > 0 && l.blocked >= l.total => Severity::Critical,
        Some(l) if l.blocked >= t.incident_major_lanes.max(1) => Severity::Major,
        _ if rule == "incident.probe_slowdown" => Severity::Minor,
        _ => Severity::Major,
    }
}

/// A hazardous-goods vehicle (危险货物道路运输安全管理办法): where it is banned
/// (Art. 49: tunnels, long bridges) critical; speeding (Art. 46: ≤ 80 km/h)
/// or stopped on the carriageway major — critical when stopped in a tunnel;
/// driving too long without rest (实施条例 Art. 62(7)) minor.
pub fn hazmat_severity(kind: EventKind, in_tunnel: bool) -> Severity {
    match kind {
        EventKind::HazmatRestrictedZone => Severity::Critical,
        EventKind::HazmatStopped if in_tunnel => Severity::Critical,
        EventKind::HazmatSpeeding | EventKind::HazmatStopped => Severity::Major,
        _ => Severity::Minor,
    }
}

/// A detector fault: the whole station, or several lanes, minor; one lane
/// info (the state estimator bridges it from its neighbours).
pub fn fault_severity(lanes: usize, station: bool, t: &SeverityTable) -> Severity {
    if station || lanes == 0 || lanes >= t.fault_minor_lanes {
        Severity::Minor
    } else {
        Severity::Info
    }
}

/// The operator's severity class of an event, from its facts.
pub fn judge_severity(f: &SeverityFacts<'_>, t: &SeverityTable) -> Severity {
    match f.kind {
        EventKind::Fog => fog_severity(f.visibility_m.unwrap_or(f32::INFINITY), t),
        EventKind::Ice => ice_severity(f.ice_observed.unwrap_or(false)),
        EventKind::Congestion => congestion_severity(f.extent_m, t),
        EventKind::Incident => incident_severity(f.rule, f.lanes, f.in_tunnel, t),
        EventKind::WrongWay => Severity::Critical,
        EventKind::HazmatSpeeding
        | EventKind::HazmatStopped
        | EventKind::HazmatRestrictedZone
        | EventKind::HazmatDrivingTime => hazmat_severity(f.kind, f.in_tunnel),
        EventKind::DetectorFault => fault_severity(f.fault_lanes, f.fault_station, t),
    }
}

impl Event {
    /// The facts its severity is judged on, from the event alone (no lane
    /// state, not in a tunnel: add those with [`judge_severity`]).
    pub fn severity_facts(&self) -> SeverityFacts<'_> {
        let mut f = SeverityFacts::of_kind(self.kind, self.rule);
        f.extent_m = (self.to_m - self.from_m).abs();
        match &self.detail {
            EventDetail::Fog { visibility_m, .. } => f.visibility_m = Some(*visibility_m),
            EventDetail::Ice { observed, .. } => f.ice_observed = Some(*observed),
            EventDetail::DetectorFault { lanes, rules, .. } => {
                f.fault_lanes = lanes.len();
                f.fault_station = rules.contains(&FaultRule::StationZero);
            }
            EventDetail::None | EventDetail::Vehicle { .. } | EventDetail::Congestion { .. } => {}
        }
        f
    }

    /// The operator's severity class (特别重大 … 提示) under the default
    /// [`SeverityTable`], from the kind and detail.
    pub fn severity(&self) -> Severity {
        judge_severity(&self.severity_facts(), &SeverityTable::default())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, rule: &'static str, len_m: f64, detail: EventDetail) -> Event {
        Event {
            seq: 1,
            kind,
            direction: None,
            from_m: 10_000.0,
            to_m: 10_000.0 + len_m,
            start_ms: 0,
            detected_ms: 0,
            end_ms: None,
            severity: 3,
            rule,
            detectors: Vec::new(),
            detail,
        }
    }

    fn fog(vis: f32) -> EventDetail {
        EventDetail::Fog {
            visibility_m: vis,
            band: 1,
        }
    }

    fn fault(lanes: Vec<u8>, rules: Vec<FaultRule>) -> EventDetail {
        EventDetail::DetectorFault {
            detector: 0,
            lanes,
            rules,
        }
    }

    #[test]
    fn severity_from_kind_and_detail() {
        use EventKind as K;
        use Severity::*;
        let ice = |observed| EventDetail::Ice {
            surface_temp_c: -1.0,
            observed,
        };
        let none = || EventDetail::None;
        let veh = || EventDetail::Vehicle {
            vehicle: 1,
            max_speed_kmh: 95.0,
        };
        let cases: Vec<(&str, Event, Severity)> = vec![
            (
                "fog 49 m: leave the expressway",
                event(K::Fog, "weather.fog", 0.0, fog(49.0)),
                Critical,
            ),
            (
                "fog 50 m is the 40 km/h band",
                event(K::Fog, "weather.fog", 0.0, fog(50.0)),
                Major,
            ),
            (
                "fog 99 m",
                event(K::Fog, "weather.fog", 0.0, fog(99.0)),
                Major,
            ),
            (
                "fog 100 m is the 60 km/h band",
                event(K::Fog, "weather.fog", 0.0, fog(100.0)),
                Minor,
            ),
            (
                "fog 199 m",
                event(K::Fog, "weather.fog", 0.0, fog(199.0)),
                Minor,
            ),
            (
                "fog 200 m: no legal limit",
                event(K::Fog, "weather.fog", 0.0, fog(200.0)),
                Info,
            ),
            (
                "ice observed",
                event(K::Ice, "weather.ice", 0.0, ice(true)),
                Major,
            ),
            (
                "ice predicted",
                event(K::Ice, "weather.ice", 0.0, ice(false)),
                Minor,
            ),
            (
                "queue 6 km",
                event(K::Congestion, "congestion", 6_000.0, none()),
                Major,
            ),
            (
                "queue 5 km",
                event(K::Congestion, "congestion", 5_000.0, none()),
                Major,
            ),
            (
                "queue 2 km",
                event(K::Congestion, "congestion", 2_000.0, none()),
                Minor,
            ),
            (
                "queue 500 m",
                event(K::Congestion, "congestion", 500.0, none()),
                Info,
            ),
            (
                "fire",
                event(K::Incident, "incident.camera_fire", 0.0, none()),
                Critical,
            ),
            (
                "lane blocked",
                event(K::Incident, "incident.lane_blocked", 800.0, none()),
                Major,
            ),
            (
                "camera stop",
                event(K::Incident, "incident.camera", 0.0, none()),
                Major,
            ),
            (
                "probe slowdown",
                event(K::Incident, "incident.probe_slowdown", 900.0, none()),
                Minor,
            ),
            (
                "wrong way",
                event(K::WrongWay, "vehicles.wrong_way", 0.0, veh()),
                Critical,
            ),
            (
                "hazmat in a banned zone",
                event(K::HazmatRestrictedZone, "vehicles.zone", 0.0, veh()),
                Critical,
            ),
            (
                "hazmat speeding",
                event(K::HazmatSpeeding, "vehicles.speed", 0.0, veh()),
                Major,
            ),
            (
                "hazmat stopped",
                event(K::HazmatStopped, "vehicles.stopped", 0.0, veh()),
                Major,
            ),
            (
                "hazmat driving time",
                event(K::HazmatDrivingTime, "vehicles.driving", 0.0, veh()),
                Minor,
            ),
            (
                "one faulty lane",
                event(
                    K::DetectorFault,
                    "quality.stuck",
                    0.0,
                    fault(vec![2], vec![FaultRule::Stuck]),
                ),
                Info,
            ),
            (
                "two faulty lanes",
                event(
                    K::DetectorFault,
                    "quality.stuck",
                    0.0,
                    fault(vec![1, 2], vec![FaultRule::Stuck]),
                ),
                Minor,
            ),
            (
                "station silent",
                event(
                    K::DetectorFault,
                    "quality.missing",
                    0.0,
                    fault(vec![], vec![FaultRule::Missing]),
                ),
                Minor,
            ),
            (
                "station counts nothing",
                event(
                    K::DetectorFault,
                    "quality.station_zero",
                    0.0,
                    fault(vec![1], vec![FaultRule::StationZero]),
                ),
                Minor,
            ),
        ];
        for (name, e, want) in cases {
            assert_eq!(e.severity(), want, "{name}");
        }
    }

    #[test]
    fn lanes_and_tunnels_raise_severity() {
        use Severity::*;
        let t = SeverityTable::default();
        let l = |blocked, total| Some(LanesBlocked { blocked, total });
        let cases = [
            (
                "probe slowdown, no lane known",
                "incident.probe_slowdown",
                None,
                false,
                Minor,
            ),
            (
                "probe slowdown, a lane blocked",
                "incident.probe_slowdown",
                l(1, 3),
                false,
                Major,
            ),
            (
                "one of three lanes",
                "incident.lane_blocked",
                l(1, 3),
                false,
                Major,
            ),
            (
                "two of three lanes",
                "incident.lane_blocked",
                l(2, 3),
                false,
                Major,
            ),
            (
                "all three lanes",
                "incident.lane_blocked",
                l(3, 3),
                false,
                Critical,
            ),
            (
                "in a tunnel",
                "incident.probe_slowdown",
                None,
                true,
                Critical,
            ),
        ];
        for (name, rule, lanes, tunnel, want) in cases {
            let mut f = SeverityFacts::of_kind(EventKind::Incident, rule);
            f.lanes = lanes;
            f.in_tunnel = tunnel;
            assert_eq!(judge_severity(&f, &t), want, "{name}");
        }
        let mut f = SeverityFacts::of_kind(EventKind::HazmatStopped, "vehicles.stopped");
        assert_eq!(judge_severity(&f, &t), Major);
        f.in_tunnel = true;
        assert_eq!(
            judge_severity(&f, &t),
            Critical,
            "hazmat stopped in a tunnel"
        );
    }

    #[test]
    fn the_table_moves_the_edges() {
        let strict = SeverityTable {
            fog_critical_below_m: 100.0,
            congestion_major_m: 1_000.0,
            ..SeverityTable::default()
        };
        assert_eq!(fog_severity(80.0, &strict), Severity::Critical);
        assert_eq!(
            fog_severity(80.0, &SeverityTable::default()),
            Severity::Major
        );
        assert_eq!(congestion_severity(2_000.0, &strict), Severity::Major);
        let mut f = SeverityFacts::of_kind(EventKind::Fog, "weather.fog");
        assert_eq!(
            judge_severity(&f, &strict),
            Severity::Info,
            "no visibility known"
        );
        f.visibility_m = Some(30.0);
        assert_eq!(judge_severity(&f, &strict), Severity::Critical);
    }
}
