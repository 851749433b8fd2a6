//! Device dispatch, typed: what each device must show (the plans in force),
//! what it confirmed it shows, the fail-safe a command carries, and the
//! lawful edits of a proposal. Pure — the engine does the I/O.
//!
//! - **Desired state** per target (device, command kind, carriageway for
//!   entries): the last command applied — automatic actions as the brain
//!   emits them (also while a restart replays ticks already written),
//!   approved or edited proposals.
//! - **Shown state** per target: what the device last reported (confirmed
//!   or spontaneous), read from the store after a restart.
//! - **Reconcile**: a target whose shown state differs from the desired one
//!   is re-commanded at once — after a restart, when the device reports a
//!   state (coming back online, after its fail-safe) — unless a command to
//!   the device is in flight, or the same state was sent to it less than
//!   [`RECOMMAND_BACKOFF_MS`] ago and the device has reported no change
//!   since (a sign that cannot comply is not hammered). A target that shows *less* than its plan requires (a
//!   higher or blank limit, an open entry the plan closed, …) is out of
//!   plan: counted, and an alarm once it lasts.

use std::collections::{BTreeMap, HashMap};

use zhilu_core::event::CommandKind;
use zhilu_core::{Command, EntryState, EventKind};
use zhilu_devices::{DeviceState, Failsafe};
use zhilu_road::{DeviceKind, Direction, RoadBook};

use crate::config::DeviceSection;
use crate::signs::check_vms_text;

/// The same state is not re-sent to a device sooner than this after it was
/// last sent (ms).
pub const RECOMMAND_BACKOFF_MS: i64 = 30_000;

/// One commandable thing: a device, a command kind, and for entries the
/// carriageway.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// Device id.
    pub device: String,
    /// Kind of command.
    pub kind: CommandKind,
    /// Carriageway (entries).
    pub direction: Option<Direction>,
}

/// What a target must show, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The command in force.
    pub command: Command,
    /// The kind of event behind it (`None`: released, or unknown).
    pub cause: Option<EventKind>,
}

/// A target that shows less than its plan requires.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfPlan {
    /// Since when (wall ms).
    pub since_ms: i64,
    /// The alarm event opened for it, if any (server event id).
    pub alarm: Option<String>,
}

/// What the centre knows of its commandable devices.
#[derive(Debug, Default)]
pub struct Fleet {
    kinds: HashMap<String, DeviceKind>,
    desired: BTreeMap<Target, Desired>,
    shown: HashMap<Target, Command>,
    /// Target → when its shown state last changed (wall ms).
    changed_ms: HashMap<Target, i64>,
    /// Device → command in flight (id).
    inflight: HashMap<String, u64>,
    /// Target → (state last sent, wall ms).
    sent: HashMap<Target, (DeviceState, i64)>,
    /// Targets out of plan.
    pub out_of_plan: BTreeMap<Target, OutOfPlan>,
}

/// The command kind a road-book device kind takes, if it is commandable.
pub fn command_kind_of(k: DeviceKind) -> Option<CommandKind> {
    Some(match k {
        DeviceKind::Vsl => CommandKind::SpeedLimit,
        DeviceKind::Vms => CommandKind::Message,
        DeviceKind::FogLights => CommandKind::FogLights,
        DeviceKind::Deicer => CommandKind::Deicing,
        DeviceKind::Interchange => CommandKind::Entry,
        DeviceKind::Tunnel => CommandKind::TunnelPlan,
        _ => return None,
    })
}

/// The devices the centre commands (and the adapters manage): speed-limit
/// and message signs, fog lights, de-icers, entries, tunnels — not
/// detectors, weather stations or service areas, which are data sources.
pub fn commandable_devices(road: &RoadBook) -> Vec<String> {
    road.devices()
        .filter(|d| zhilu_devices::commandable(d.kind))
        .map(|d| road.device_id(d).to_string())
        .collect()
}

impl Fleet {
    /// The commandable devices of `road`.
    pub fn new(road: &RoadBook) -> Fleet {
        Fleet {
            kinds: road
                .devices()
                .filter(|d| zhilu_devices::commandable(d.kind))
                .map(|d| (road.device_id(d).to_string(), d.kind))
                .collect(),
            ..Fleet::default()
        }
    }

    /// Whether `device` is one the centre commands.
    pub fn manages(&self, device: &str) -> bool {
        self.kinds.contains_key(device)
    }

    /// The road-book kind of a managed device.
    pub fn kind_of(&self, device: &str) -> Option<DeviceKind> {
        self.kinds.get(device).copied()
    }

    /// Records what a target must show.
    pub fn set_desired(&mut self, t: Target, d: Desired) {
        self.desired.insert(t, d);
    }

    /// What a target must show.
    pub fn desired(&self, t: &Target) -> Option<&Desired> {
        self.desired.get(t)
    }

    /// Records what a device reported it shows (at `now_ms`); returns the
    /// targets it speaks for.
    pub fn set_shown(&mut self, device: &str, s: &DeviceState, now_ms: i64) -> Vec<Target> {
        let Some(kind) = self.kind_of(device).and_then(command_kind_of) else {
            return Vec::new();
        };
        let Some(command) = s.as_command(kind) else {
            return Vec::new();
        };
        let directions: Vec<Option<Direction>> = match (kind, s) {
            (CommandKind::Entry, DeviceState::Entry { direction, .. }) => vec![*direction],
            // A blank entry device is open both ways.
            (CommandKind::Entry, _) => vec![Some(Direction::Up), Some(Direction::Down), None],
            _ => vec![None],
        };
        directions
            .into_iter()
            .map(|direction| {
                let t = Target {
                    device: device.to_string(),
                    kind,
                    direction,
                };
                if self.shown.insert(t.clone(), command.clone()).as_ref() != Some(&command) {
                    self.changed_ms.insert(t.clone(), now_ms);
                }
                t
            })
            .collect()
    }

    /// A command went out to a target.
    pub fn sent(&mut self, t: &Target, id: u64, s: DeviceState, now_ms: i64) {
        self.inflight.insert(t.device.clone(), id);
        self.sent.insert(t.clone(), (s, now_ms));
    }

    /// The command `id` to `device` ended (confirmed, failed, expired).
    pub fn settled(&mut self, device: &str, id: u64) {
        if self.inflight.get(device) == Some(&id) {
            self.inflight.remove(device);
        }
    }

    /// Targets whose shown state differs from the desired one and that may
    /// be re-commanded now: (target, desired).
    pub fn to_recommand(&self, now_ms: i64) -> Vec<(Target, Desired)> {
        let mut out = Vec::new();
        for (t, d) in &self.desired {
            if self.inflight.contains_key(&t.device) {
                continue;
            }
            let shown = self.shown.get(t);
            let default = Command::default_of(t.kind);
            let shows = shown.unwrap_or(&default);
            if *shows == d.command {
                continue;
            }
            // Sent already and the device has not changed since: it cannot
            // comply (or the answer is on its way) — wait.
            let want = DeviceState::from_command(&d.command, t.direction);
            let changed = self.changed_ms.get(t).copied().unwrap_or(i64::MIN);
            if self.sent.get(t).is_some_and(|(s, at)| {
                *s == want && *at >= changed && now_ms - at < RECOMMAND_BACKOFF_MS
            }) {
                continue;
            }
            out.push((t.clone(), d.clone()));
        }
        out
    }

    /// Updates the out-of-plan set: returns (targets newly out of plan for
    /// at least `alarm_after_ms` without an alarm, targets back in plan
    /// that had one (with its event id)).
    pub fn check_plan(
        &mut self,
        now_ms: i64,
        alarm_after_ms: i64,
    ) -> (Vec<Target>, Vec<(Target, String)>) {
        let mut now_out: BTreeMap<Target, ()> = BTreeMap::new();
        for (t, d) in &self.desired {
            let default = Command::default_of(t.kind);
            let shows = self.shown.get(t).unwrap_or(&default);
            if !shows.at_least_as_safe_as(&d.command) {
                now_out.insert(t.clone(), ());
            }
        }
        let mut back = Vec::new();
        let was: Vec<Target> = self.out_of_plan.keys().cloned().collect();
        for t in was {
            if !now_out.contains_key(&t)
                && let Some(o) = self.out_of_plan.remove(&t)
                && let Some(id) = o.alarm
            {
                back.push((t, id));
            }
        }
        let mut raise = Vec::new();
        for t in now_out.into_keys() {
            let o = self.out_of_plan.entry(t.clone()).or_insert(OutOfPlan {
                since_ms: now_ms,
                alarm: None,
            });
            if o.alarm.is_none() && now_ms - o.since_ms >= alarm_after_ms {
                raise.push(t);
            }
        }
        (raise, back)
    }

    /// What a target shows (its default when never heard).
    pub fn shows(&self, t: &Target) -> Command {
        self.shown
            .get(t)
            .cloned()
            .unwrap_or_else(|| Command::default_of(t.kind))
    }
}

/// The fail-safe a command carries, by why it was sent (`MQTT.md`,
/// "Fail-safe"): a fog limit holds for `fog_hold_s`, then falls to
/// `fog_safe_kmh` (or stays lower), never blank; other limits blank after
/// `failsafe_after_s`; queue and fog warnings hold; other texts fall back
/// to `vms_fallback` (blank when empty); lights, entries, de-icers and
/// tunnel plans hold.
pub fn failsafe_for(c: &Command, cause: Option<EventKind>, cfg: &DeviceSection) -> Failsafe {
    let after_s = cfg.failsafe_after_s;
    match (c, cause) {
        (Command::SpeedLimit(Some(v)), Some(EventKind::Fog)) => Failsafe::Fallback {
            after_s: cfg.fog_hold_s,
            state: DeviceState::SpeedLimit {
                limit_kmh: (*v).min(cfg.fog_safe_kmh),
            },
        },
        (Command::SpeedLimit(_), _) => Failsafe::Blank { after_s },
        (Command::Message(t), _) if t.is_empty() => Failsafe::Blank { after_s },
        (
            Command::Message(_),
            Some(EventKind::Congestion | EventKind::Incident | EventKind::Fog),
        ) => Failsafe::Hold,
        (Command::Message(_), _) if cfg.vms_fallback.is_empty() => Failsafe::Blank { after_s },
        (Command::Message(_), _) => Failsafe::Fallback {
            after_s,
            state: DeviceState::Vms {
                text: cfg.vms_fallback.clone(),
            },
        },
        (
            Command::FogLights(_)
            | Command::Entry { .. }
            | Command::Deicing(_)
            | Command::TunnelPlan(_),
            _,
        ) => Failsafe::Hold,
    }
}

/// An operator's edit of a proposal (`{"value": 40}`, `{"value": "closed"}`,
/// `{"text": "…"}`, `{"mode": "warning_flash"}`, with `"override": true`
/// for an admin's audited override of the floor).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Edit {
    /// New value (limit, entry state, `on`/`off`).
    pub value: Option<serde_json::Value>,
    /// New text.
    pub text: Option<String>,
    /// New fog-light mode.
    pub mode: Option<String>,
    /// An admin overrides the floor (audited).
    pub override_floor: bool,
}

impl Edit {
    /// Reads an edit from the API's JSON object.
    pub fn from_value(v: &serde_json::Value) -> Result<Edit, String> {
        let serde_json::Value::Object(o) = v else {
            return Err("edit must be an object like {\"value\": 40}".into());
        };
        let mut e = Edit::default();
        for (k, x) in o {
            match k.as_str() {
                "value" => e.value = Some(x.clone()),
                "text" => {
                    e.text = Some(
                        x.as_str()
                            .ok_or_else(|| "text must be a string".to_string())?
                            .to_string(),
                    )
                }
                "mode" => {
                    e.mode = Some(
                        x.as_str()
                            .ok_or_else(|| "mode must be a string".to_string())?
                            .to_string(),
                    )
                }
                "override" => {
                    e.override_floor = x
                        .as_bool()
                        .ok_or_else(|| "override must be true or false".to_string())?
                }
                k => return Err(format!("cannot edit {k:?}: only value, text or mode")),
            }
        }
        Ok(e)
    }
}

/// Applies an edit to a proposed command. The result must be lawful for its
/// kind (a limit of 20–120 in steps of 10, at most the proposed one and the
/// posted limit; an entry state; a text the signs can show; a fog-light
/// mode; `on`/`off`) and, unless `admin_override`, at least as safe as the
/// proposal — the brain's proposal is the floor the law and the centre set
/// (the Art. 81 limit in fog, the entry closed below 50 m). Returns the
/// command and whether the floor was overridden.
pub fn apply_edit(
    proposed: &Command,
    edit: &Edit,
    posted_kmh: u16,
    admin_override: bool,
) -> Result<(Command, bool), String> {
    if edit.override_floor && !admin_override {
        return Err("only an admin may override the floor of a proposal".into());
    }
    let new = match proposed {
        Command::SpeedLimit(_) => {
            let v = edit
                .value
                .as_ref()
                .and_then(serde_json::Value::as_u64)
                .ok_or("speed_limit edit needs an integer value (km/h)")?;
            if !(20..=120).contains(&v) || v % 10 != 0 {
                return Err(format!("{v} km/h: limits are 20–120 in steps of 10"));
            }
            if v > u64::from(posted_kmh) {
                return Err(format!(
                    "{v} km/h is above the posted limit of {posted_kmh} km/h"
                ));
            }
            Command::SpeedLimit(Some(v as u16))
        }
        Command::Entry { banned, .. } => {
            let s = edit
                .value
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let state = EntryState::parse(s)
                .ok_or_else(|| format!("entry value {s:?}: expected open, metered or closed"))?;
            Command::Entry {
                state,
                banned: if state == EntryState::Open {
                    Vec::new()
                } else {
                    banned.clone()
                },
            }
        }
        Command::Message(_) => {
            let t = edit.text.as_deref().unwrap_or("");
            check_vms_text(t)?;
            Command::Message(t.to_string())
        }
        Command::FogLights(_) => {
            let m = edit.mode.as_deref().unwrap_or("");
            Command::FogLights(zhilu_core::FogLightMode::parse(m).ok_or_else(|| {
                format!(
                    "fog-light mode {m:?}: expected off, guidance, tail_marking or warning_flash"
                )
            })?)
        }
        Command::Deicing(_) => match edit.value.as_ref().and_then(serde_json::Value::as_str) {
            Some("on") => Command::Deicing(true),
            Some("off") => Command::Deicing(false),
            _ => return Err("deicing edit needs value \"on\" or \"off\"".into()),
        },
        Command::TunnelPlan(_) => {
            return Err("tunnel_plan proposals can be approved or rejected, not edited".into());
        }
    };
    if new.at_least_as_safe_as(proposed) {
        return Ok((new, false));
    }
    if admin_override && edit.override_floor {
        return Ok((new, true));
    }
    Err(format!(
        "the edit asks less of drivers than the proposal ({}); only stricter edits are \
         allowed (an admin may override with \"override\": true, audited)",
        describe(proposed)
    ))
}

/// A command in words, for messages.
pub fn describe(c: &Command) -> String {
    match c {
        Command::SpeedLimit(Some(v)) => format!("limit {v} km/h"),
        Command::SpeedLimit(None) => "no variable limit".into(),
        Command::Message(t) if t.is_empty() => "blank".into(),
        Command::Message(t) => format!("text {t:?}"),
        Command::FogLights(m) => format!("fog lights {}", m.as_str()),
        Command::Entry { state, banned } if banned.is_empty() => {
            format!("entry {}", state.as_str())
        }
        Command::Entry { state, banned } => {
            format!("entry {} (no {})", state.as_str(), banned.join(", "))
        }
        Command::Deicing(on) => format!("de-icing {}", if *on { "on" } else { "off" }),
        Command::TunnelPlan(Some(p)) => format!("tunnel plan {p}"),
        Command::TunnelPlan(None) => "no tunnel plan".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edit(v: serde_json::Value) -> Edit {
        Edit::from_value(&v).unwrap()
    }

    #[test]
    fn lawful_edits_table() {
        let fog20 = Command::SpeedLimit(Some(20));
        let limit60 = Command::SpeedLimit(Some(60));
        let closed = Command::Entry {
            state: EntryState::Closed,
            banned: vec![],
        };
        let metered = Command::Entry {
            state: EntryState::Metered,
            banned: vec!["hazmat"],
        };
        let warn = Command::Message("前方浓雾 限速40".into());
        let flash = Command::FogLights(zhilu_core::FogLightMode::WarningFlash);
        let tunnel = Command::TunnelPlan(Some("fire".into()));
        // (proposed, edit, admin, expect Ok(overridden) / Err)
        let cases: Vec<(&Command, serde_json::Value, bool, Option<bool>)> = vec![
            (&limit60, json!({"value": 40}), false, Some(false)),
            (&limit60, json!({"value": 80}), false, None),
            (&fog20, json!({"value": 40}), false, None),
            (&fog20, json!({"value": 40, "override": true}), false, None),
            (
                &fog20,
                json!({"value": 40, "override": true}),
                true,
                Some(true),
            ),
            (&limit60, json!({"value": 130}), true, None),
            (&limit60, json!({"value": 45}), false, None),
            (&closed, json!({"value": "open"}), false, None),
            (&closed, json!({"value": "metered"}), false, None),
            (
                &closed,
                json!({"value": "open", "override": true}),
                true,
                Some(true),
            ),
            (&metered, json!({"value": "closed"}), false, Some(false)),
            (&metered, json!({"value": "open"}), false, None),
            (
                &warn,
                json!({"text": "前方浓雾 限速20"}),
                false,
                Some(false),
            ),
            (&warn, json!({"text": ""}), false, None),
            (&warn, json!({"text": "a\u{0}b"}), false, None),
            (&warn, json!({"text": "\u{1b}[5m"}), false, None),
            (&warn, json!({"text": "<b>fog</b>"}), false, None),
            (&warn, json!({"text": "雾".repeat(65)}), false, None),
            (&warn, json!({"text": "雾".repeat(64)}), false, Some(false)),
            (&flash, json!({"mode": "guidance"}), false, None),
            (
                &Command::Deicing(true),
                json!({"value": "off"}),
                false,
                None,
            ),
            (&tunnel, json!({"value": "x"}), true, None),
        ];
        for (p, e, admin, want) in cases {
            let got = apply_edit(p, &edit(e.clone()), 120, admin);
            assert_eq!(
                got.as_ref().ok().map(|r| r.1),
                want,
                "{p:?} {e} admin={admin}: {got:?}"
            );
        }
        assert!(Edit::from_value(&json!({"reason": 1})).is_err());
    }

    #[test]
    fn recommands_what_differs_and_alarms_what_is_less_safe() {
        let day = zhilu_traffic::bulk::Day::new(zhilu_traffic::bulk::DayConfig {
            stations: 4,
            ..zhilu_traffic::bulk::DayConfig::default()
        })
        .unwrap();
        let mut w = Vec::new();
        day.write_road(&mut w).unwrap();
        let road = RoadBook::from_toml(std::str::from_utf8(&w).unwrap(), "ROAD.toml").unwrap();
        let sign = road.vsl()[0].id.clone();
        let mut f = Fleet::new(&road);
        assert!(f.manages(&sign));
        assert!(!f.manages(&road.detectors()[0].id));
        let t = Target {
            device: sign.clone(),
            kind: CommandKind::SpeedLimit,
            direction: None,
        };
        let want = Command::SpeedLimit(Some(40));
        f.set_desired(
            t.clone(),
            Desired {
                command: want.clone(),
                cause: Some(EventKind::Fog),
            },
        );
        // Never heard: blank by default — out of plan, re-commanded.
        assert_eq!(f.to_recommand(0).len(), 1);
        let (raise, _) = f.check_plan(0, 1000);
        assert!(raise.is_empty(), "not yet an alarm");
        f.sent(&t, 7, DeviceState::SpeedLimit { limit_kmh: 40 }, 10);
        assert!(f.to_recommand(20).is_empty(), "in flight");
        // The sign confirms a clamped 60: less safe; re-sent once at once
        // (the device changed since), then not before the back-off.
        f.settled(&sign, 7);
        f.set_shown(&sign, &DeviceState::SpeedLimit { limit_kmh: 60 }, 30);
        assert_eq!(f.to_recommand(40).len(), 1);
        f.sent(&t, 8, DeviceState::SpeedLimit { limit_kmh: 40 }, 40);
        f.settled(&sign, 8);
        f.set_shown(&sign, &DeviceState::SpeedLimit { limit_kmh: 60 }, 50);
        assert!(f.to_recommand(60).is_empty(), "same answer: back off");
        assert_eq!(f.to_recommand(40 + RECOMMAND_BACKOFF_MS).len(), 1);
        let (raise, _) = f.check_plan(1000, 1000);
        assert_eq!(raise, vec![t.clone()], "out of plan for 1 s: alarm");
        f.out_of_plan.get_mut(&t).unwrap().alarm = Some("E9".into());
        assert!(f.check_plan(1500, 1000).0.is_empty(), "one alarm");
        // Stricter than the plan: differs (re-commanded) but in plan.
        f.set_shown(&sign, &DeviceState::SpeedLimit { limit_kmh: 20 }, 2000);
        let (raise, back) = f.check_plan(2000, 1000);
        assert!(raise.is_empty());
        assert_eq!(back, vec![(t.clone(), "E9".to_string())]);
        assert_eq!(f.to_recommand(2001).len(), 1);
        f.set_shown(&sign, &DeviceState::SpeedLimit { limit_kmh: 40 }, 2100);
        assert!(f.to_recommand(2200).is_empty(), "complies");
    }

    #[test]
    fn failsafe_depends_on_why() {
        let cfg = DeviceSection::default();
        let fog = failsafe_for(&Command::SpeedLimit(Some(60)), Some(EventKind::Fog), &cfg);
        assert_eq!(
            fog,
            Failsafe::Fallback {
                after_s: cfg.fog_hold_s,
                state: DeviceState::SpeedLimit { limit_kmh: 40 }
            }
        );
        // A lower fog limit is kept, never raised by the fall-back.
        let fog20 = failsafe_for(&Command::SpeedLimit(Some(20)), Some(EventKind::Fog), &cfg);
        assert!(matches!(
            fog20,
            Failsafe::Fallback {
                state: DeviceState::SpeedLimit { limit_kmh: 20 },
                ..
            }
        ));
        assert!(matches!(
            failsafe_for(
                &Command::SpeedLimit(Some(60)),
                Some(EventKind::Incident),
                &cfg
            ),
            Failsafe::Blank { .. }
        ));
        let queue = Command::Message("前方拥堵 注意减速".into());
        assert_eq!(
            failsafe_for(&queue, Some(EventKind::Congestion), &cfg),
            Failsafe::Hold
        );
        assert!(matches!(
            failsafe_for(&queue, Some(EventKind::Ice), &cfg),
            Failsafe::Fallback { .. }
        ));
        let closed = Command::Entry {
            state: EntryState::Closed,
            banned: vec![],
        };
        assert_eq!(
            failsafe_for(&closed, Some(EventKind::Fog), &cfg),
            Failsafe::Hold
        );
    }
}
