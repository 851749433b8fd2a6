//! Control plans (管控预案): what each kind of event asks of the roadside
//! devices. Plans only *ask* (see [`crate::decide::Board`] for how requests
//! are merged); every request names its rule, its evidence and, where one
//! exists, its legal basis.
//!
//! Fog — speed limits by visibility band with the Art. 81 ceilings as a
//! floor that no profile may relax, set sign by sign from the weather
//! stations each sign governs ([`fog_speed_limits`]); limits step down by
//! at most 20 km/h per sign upstream of the fog; VMS texts in Chinese; fog
//! lights by band; toll entries upstream metered, restricted by vehicle
//! class, or closed.
//!
//! | band | visibility | limit | keep | fog lights | entries (national) | entries (jiangsu) |
//! |---|---|---|---|---|---|---|
//! | 1 | < 500 m | 80 | 150 m | guidance | open | open |
//! | 2 | < 200 m | 60 (Art. 81) | 100 m | tail marking | open | metered, no hazmat |
//! | 3 | < 100 m | 40 (Art. 81) | 50 m | warning flash | metered | metered, no hazmat / oversize |
//! | 4 | < 50 m | 20 (Art. 81), leave at next exit | — | warning flash | closed | metered, no hazmat / oversize / heavy |
//! | 5 | < 30 m | 20, leave | — | warning flash | closed | closed |
//!
//! Ice — de-icers on in the zone as soon as ice is *predicted*; 80 km/h
//! when predicted, 60 when observed (40 in the Jiangsu scheme, "partial
//! icing"); warnings on the message signs.

use zhilu_road::{ControlProfile, DeviceKind, DeviceRef, Direction, RoadBook};

use crate::decide::{Board, Request, priority};
use crate::event::{
    BANNABLE_CLASSES, Command, EntryState, FogLightMode, LegalBasis, Reason, ReasonCode,
};
use crate::weather::WeatherZone;

/// How far upstream message signs and entries are used (m).
pub const WARN_UPSTREAM_M: f64 = 10_000.0;
/// How far upstream speed-limit signs step down (m).
pub const STEP_UPSTREAM_M: f64 = 20_000.0;

/// The measures of one fog band under a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct FogMeasure {
    /// Speed limit (km/h).
    pub limit_kmh: u16,
    /// VMS text.
    pub text: &'static str,
    /// Fog-light mode.
    pub lights: FogLightMode,
    /// Entry state upstream.
    pub entry: EntryState,
    /// Vehicle classes turned away at entries.
    pub banned: &'static [&'static str],
    /// The legal or regulatory basis (`LegalBasis::text` in words).
    pub basis: LegalBasis,
}

/// Fog measures for a band (1–5) under a profile. The speed limit never
/// exceeds the Art. 81 ceiling for the band, whatever the profile says.
pub fn fog_measure(profile: ControlProfile, band: u8) -> FogMeasure {
    use EntryState::*;
    use FogLightMode::*;
    let (limit_kmh, text, lights, basis) = match band {
        0 | 1 => (
            80,
            "前方团雾 限速80 车距150米",
            Guidance,
            LegalBasis::FogPractice500,
        ),
        2 => (
            60,
            "前方团雾 限速60 车距100米",
            TailMarking,
            LegalBasis::Art81Below200,
        ),
        3 => (
            40,
            "前方大雾 限速40 车距50米",
            WarningFlash,
            LegalBasis::Art81Below100,
        ),
        4 => (
            20,
            "前方浓雾 限速20 请从最近出口驶离",
            WarningFlash,
            LegalBasis::Art81Below50,
        ),
        _ => (
            20,
            "前方浓雾 入口封闭 限速20 尽快驶离",
            WarningFlash,
            LegalBasis::Art81Below50,
        ),
    };
    let (entry, banned): (EntryState, &'static [&'static str]) = match (profile, band) {
        (_, 0 | 1) => (Open, &[]),
        (ControlProfile::National, 2) => (Open, &[]),
        (ControlProfile::National, 3) => (Metered, &[]),
        (ControlProfile::National, _) => (Closed, &[]),
        // BANNABLE_CLASSES is hazmat, oversize, heavy: one more turned away per band.
        (ControlProfile::Jiangsu, 2) => (Metered, &BANNABLE_CLASSES[..1]),
        (ControlProfile::Jiangsu, 3) => (Metered, &BANNABLE_CLASSES[..2]),
        (ControlProfile::Jiangsu, 4) => (Metered, &BANNABLE_CLASSES[..3]),
        (ControlProfile::Jiangsu, _) => (Closed, &[]),
    };
    FogMeasure {
        limit_kmh,
        text,
        lights,
        entry,
        banned,
        basis,
    }
}

/// Devices of `kind` serving `dir` inside `[from_m, to_m]` or upstream of it
/// within `reach_m`, nearest-to-the-zone first, with their distance
/// upstream of the zone (0 inside).
fn in_and_upstream(
    road: &RoadBook,
    dir: Direction,
    from_m: f64,
    to_m: f64,
    reach_m: f64,
    kind: DeviceKind,
) -> Vec<(DeviceRef, f64)> {
    // The zone's downstream end, in travel terms.
    let (entry_edge, exit_edge) = match dir {
        Direction::Up => (from_m, to_m),
        Direction::Down => (to_m, from_m),
    };
    road.upstream(
        dir,
        exit_edge,
        (exit_edge - entry_edge).abs() + reach_m,
        &[kind],
    )
    .into_iter()
    .map(|u| {
        let up = (u.distance_m - (exit_edge - entry_edge).abs()).max(0.0);
        (u.device, up)
    })
    .collect()
}

/// Asks the speed-limit signs of `dir` for `limit` inside the zone and for
/// limits rising by 20 km/h per sign upstream, until the posted limit.
#[allow(clippy::too_many_arguments)]
pub fn ask_speed_steps(
    board: &mut Board,
    road: &RoadBook,
    dir: Direction,
    from_m: f64,
    to_m: f64,
    limit: u16,
    prio: u8,
    seq: u64,
    reason: &Reason,
) {
    let posted = road.speed_limit_kmh();
    let mut signs = in_and_upstream(road, dir, from_m, to_m, STEP_UPSTREAM_M, DeviceKind::Vsl);
    signs.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut step = 0u16;
    for (sign, upstream_m) in signs {
        let value = if upstream_m <= 0.0 {
            limit
        } else {
            step += 1;
            limit + 20 * step
        };
        if value >= posted {
            break;
        }
        let why = if upstream_m <= 0.0 {
            reason.clone()
        } else {
            reason.tapered()
        };
        board.ask(Request {
            device: sign,
            direction: None,
            command: Command::SpeedLimit(Some(value)),
            priority: prio,
            event_seq: seq,
            reason: why,
        });
    }
}

/// Asks the message signs of `dir` in and upstream of the zone to show `text`.
#[allow(clippy::too_many_arguments)]
pub fn ask_messages(
    board: &mut Board,
    road: &RoadBook,
    dir: Direction,
    from_m: f64,
    to_m: f64,
    reach_m: f64,
    text: &str,
    prio: u8,
    seq: u64,
    reason: &Reason,
) {
    for (sign, _) in in_and_upstream(road, dir, from_m, to_m, reach_m, DeviceKind::Vms) {
        board.ask(Request {
            device: sign,
            direction: None,
            command: Command::Message(text.to_string()),
            priority: prio,
            event_seq: seq,
            reason: reason.clone(),
        });
    }
}

fn overlapping_zones(road: &RoadBook, kind: DeviceKind, from_m: f64, to_m: f64) -> Vec<DeviceRef> {
    let zones = match kind {
        DeviceKind::FogLights => road.fog_lights(),
        _ => road.deicers(),
    };
    zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.from_m <= to_m && z.to_m >= from_m)
        .map(|(i, _)| DeviceRef {
            kind,
            index: i as u32,
        })
        .collect()
}

/// The fog plan for one zone.
pub fn fog_plan(board: &mut Board, road: &RoadBook, zone: &WeatherZone) {
    let m = fog_measure(road.profile(), zone.level);
    let (from_m, to_m, seq) = (zone.event.from_m, zone.event.to_m, zone.event.seq);
    let stations: Vec<&str> = zone
        .stations
        .iter()
        .map(|&i| road.weather()[i as usize].id.as_str())
        .collect();
    let reason = Reason {
        band: Some(zone.level),
        visibility_m: Some(f64::from(zone.value_now)),
        stations: stations.iter().map(|s| s.to_string()).collect(),
        profile: Some(road.profile().as_str().to_string()),
        basis: Some(m.basis),
        ..Reason::new(ReasonCode::FogBand)
    };
    for &dir in road.directions() {
        fog_speed_limits(board, road, dir, zone, &reason);
        ask_messages(
            board,
            road,
            dir,
            from_m,
            to_m,
            WARN_UPSTREAM_M,
            m.text,
            priority::FOG,
            seq,
            &reason,
        );
        if m.entry != EntryState::Open || !m.banned.is_empty() {
            for (ic, _) in in_and_upstream(
                road,
                dir,
                from_m,
                to_m,
                WARN_UPSTREAM_M,
                DeviceKind::Interchange,
            ) {
                board.ask(Request {
                    device: ic,
                    direction: Some(dir),
                    command: Command::Entry {
                        state: m.entry,
                        banned: m.banned.to_vec(),
                    },
                    priority: priority::FOG,
                    event_seq: seq,
                    reason: reason.clone(),
                });
            }
        }
    }
    for lights in overlapping_zones(road, DeviceKind::FogLights, from_m, to_m) {
        board.ask(Request {
            device: lights,
            direction: None,
            command: Command::FogLights(m.lights),
            priority: priority::FOG,
            event_seq: seq,
            reason: reason.clone(),
        });
    }
}

/// A weather station governs, on each carriageway, the speed-limit signs
/// inside its cover (its reading is all that is known of the fog there)
/// and the last sign before it in the direction of travel, up to this far
/// (m): what drivers were told when they reach it.
pub const GOVERN_BEFORE_M: f64 = 5_000.0;

/// The fog plan's speed limits on carriageway `dir`, sign by sign (the law
/// from the first reading, and nothing lowered longer than the readings
/// ask):
///
/// 1. each sign governed by a foggy station of the zone gets the lowest
///    limit those stations' own bands ask for (Art. 81 floor);
/// 2. upstream, each sign is at most 20 km/h above the next one downstream
///    (the approach taper), up to 20 km before the fog, until the posted
///    limit;
/// 3. every other sign — downstream of the last foggy station's governed
///    signs, or governed only by clear stations — is not asked: it is
///    released as soon as the stations it governs are clear (each
///    station's band relaxes by the hysteresis in `WeatherConfig`).
pub fn fog_speed_limits(
    board: &mut Board,
    road: &RoadBook,
    dir: Direction,
    zone: &WeatherZone,
    reason: &Reason,
) {
    let posted = road.speed_limit_kmh();
    let mut signs: Vec<(f64, u32)> = road
        .vsl()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.direction == dir)
        .map(|(i, s)| (dir.travel_m(s.stake_m), i as u32))
        .collect();
    signs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut own: Vec<Option<u16>> = vec![None; signs.len()];
    let mut lower = |k: usize, v: u16| own[k] = Some(own[k].map_or(v, |o| o.min(v)));
    for p in zone.parts.iter().filter(|p| p.level > 0) {
        let need = fog_measure(road.profile(), p.level).limit_kmh;
        let at = dir.travel_m(p.stake_m);
        let mut last_before = None;
        for (k, &(t, i)) in signs.iter().enumerate() {
            let stake = road.vsl()[i as usize].stake_m;
            if stake >= p.from_m && stake <= p.to_m {
                lower(k, need);
            }
            if t <= at && at - t <= GOVERN_BEFORE_M {
                last_before = Some(k);
            }
        }
        if let Some(k) = last_before {
            lower(k, need);
        }
    }
    // From the last sign back upstream: the taper.
    let mut next: Option<(u16, f64)> = None; // (limit, travel stake of the fog's first governed sign)
    for k in (0..signs.len()).rev() {
        let (t, i) = signs[k];
        let value = match (own[k], next) {
            (Some(a), Some((b, _))) => Some(a.min(b + 20)),
            (Some(a), None) => Some(a),
            (None, Some((b, fog_t))) if fog_t - t <= STEP_UPSTREAM_M => Some(b + 20),
            _ => None,
        };
        let Some(value) = value.filter(|&v| v < posted) else {
            next = None;
            continue;
        };
        let fog_t = match (own[k], next) {
            (Some(_), _) => t,
            (None, Some((_, f))) => f,
            (None, None) => t,
        };
        next = Some((value, fog_t));
        let why = if own[k] == Some(value) {
            reason.clone()
        } else {
            reason.tapered()
        };
        board.ask(Request {
            device: DeviceRef {
                kind: DeviceKind::Vsl,
                index: i,
            },
            direction: None,
            command: Command::SpeedLimit(Some(value)),
            priority: priority::FOG,
            event_seq: zone.event.seq,
            reason: why,
        });
    }
}

/// The ice plan for one zone.
pub fn ice_plan(board: &mut Board, road: &RoadBook, zone: &WeatherZone) {
    let observed = zone.level >= 2;
    let (from_m, to_m, seq) = (zone.event.from_m, zone.event.to_m, zone.event.seq);
    let stations: Vec<&str> = zone
        .stations
        .iter()
        .map(|&i| road.weather()[i as usize].id.as_str())
        .collect();
    let limit = match (observed, road.profile()) {
        (false, _) => 80,
        (true, ControlProfile::National) => 60,
        (true, ControlProfile::Jiangsu) => 40,
    };
    let reason = Reason {
        surface_temp_c: Some(f64::from(zone.value_now)),
        stations: stations.iter().map(|s| s.to_string()).collect(),
        basis: Some(LegalBasis::DeicingPractice),
        jiangsu: observed && road.profile() == ControlProfile::Jiangsu,
        ..Reason::new(if observed {
            ReasonCode::IceObserved
        } else {
            ReasonCode::IceRisk
        })
    };
    let text = if observed {
        "路面结冰 减速慢行 禁止急刹"
    } else {
        "注意路面结冰 减速慢行"
    };
    for deicer in overlapping_zones(road, DeviceKind::Deicer, from_m, to_m) {
        board.ask(Request {
            device: deicer,
            direction: None,
            command: Command::Deicing(true),
            priority: priority::ICE,
            event_seq: seq,
            reason: reason.clone(),
        });
    }
    for &dir in road.directions() {
        ask_speed_steps(
            board,
            road,
            dir,
            from_m,
            to_m,
            limit,
            priority::ICE,
            seq,
            &reason,
        );
        ask_messages(
            board,
            road,
            dir,
            from_m,
            to_m,
            5_000.0,
            text,
            priority::ICE,
            seq,
            &reason,
        );
    }
}

/// The congestion plan: queue warnings on the message signs upstream of
/// the queue's tail (up to 5 km), so drivers arrive slowing, not braking.
pub fn congestion_plan(
    board: &mut Board,
    road: &RoadBook,
    dir: Direction,
    jam: &crate::congestion::Jam,
) {
    let e = &jam.event;
    let km = jam.shown_km;
    let text = if km >= 1.0 {
        format!("前方拥堵{km:.0}公里 注意减速")
    } else {
        "前方拥堵 注意减速".to_string()
    };
    let reason = Reason {
        from_m: Some(e.from_m),
        to_m: Some(e.to_m),
        rule: Some("state.congestion".into()),
        ..Reason::new(ReasonCode::Congestion)
    };
    let tail_stake = dir.travel_m(jam.tail_travel_m);
    for u in road.upstream(dir, tail_stake, 5_000.0, &[DeviceKind::Vms]) {
        board.ask(Request {
            device: u.device,
            direction: None,
            command: Command::Message(text.clone()),
            priority: priority::CONGESTION,
            event_seq: e.seq,
            reason: reason.clone(),
        });
    }
}

/// The incident plan: 60 km/h on the signs between the stations that
/// bracket the incident, rising by 20 km/h per sign upstream; queue warnings
/// on the message signs within 5 km upstream. (Lane-control signals would
/// close the blocked lanes; the road book has none yet.)
pub fn incident_plan(board: &mut Board, road: &RoadBook, e: &crate::event::Event) {
    let Some(dir) = e.direction else { return };
    let reason = Reason {
        from_m: Some(e.from_m),
        to_m: Some(e.to_m),
        rule: Some(e.rule.to_string()),
        ..Reason::new(ReasonCode::Incident)
    };
    ask_speed_steps(
        board,
        road,
        dir,
        e.from_m,
        e.to_m,
        60,
        priority::INCIDENT,
        e.seq,
        &reason,
    );
    ask_messages(
        board,
        road,
        dir,
        e.from_m,
        e.to_m,
        5_000.0,
        "前方事故 减速慢行 注意避让",
        priority::INCIDENT,
        e.seq,
        &reason,
    );
}

/// The tunnel emergency plan for an incident or fire in tunnel `t`: the
/// named plan on the tunnel (closing its entry, lane signals red,
/// ventilation and full lighting are the plan's steps in the tunnel
/// controller), entries within 10 km upstream closed, message signs warning,
/// limits stepping down to 40 km/h towards the portal.
pub fn tunnel_plan(board: &mut Board, road: &RoadBook, e: &crate::event::Event, t: usize) {
    let tunnel = &road.tunnels()[t];
    let fire = e.rule == "incident.camera_fire";
    let plan = format!("{}-{}", tunnel.id, if fire { "fire" } else { "incident" });
    let reason = Reason {
        tunnel: Some(tunnel.id.to_string()),
        fire,
        rule: Some(e.rule.to_string()),
        ..Reason::new(ReasonCode::Tunnel)
    };
    board.ask(Request {
        device: DeviceRef {
            kind: DeviceKind::Tunnel,
            index: t as u32,
        },
        direction: None,
        command: Command::TunnelPlan(Some(plan)),
        priority: priority::TUNNEL,
        event_seq: e.seq,
        reason: reason.clone(),
    });
    for &dir in road.directions() {
        ask_speed_steps(
            board,
            road,
            dir,
            tunnel.from_m,
            tunnel.to_m,
            40,
            priority::TUNNEL,
            e.seq,
            &reason,
        );
        ask_messages(
            board,
            road,
            dir,
            tunnel.from_m,
            tunnel.to_m,
            WARN_UPSTREAM_M,
            "隧道事故 禁止驶入 请绕行",
            priority::TUNNEL,
            e.seq,
            &reason,
        );
        for (ic, _) in in_and_upstream(
            road,
            dir,
            tunnel.from_m,
            tunnel.to_m,
            WARN_UPSTREAM_M,
            DeviceKind::Interchange,
        ) {
            board.ask(Request {
                device: ic,
                direction: Some(dir),
                command: Command::Entry {
                    state: EntryState::Closed,
                    banned: Vec::new(),
                },
                priority: priority::TUNNEL,
                event_seq: e.seq,
                reason: reason.clone(),
            });
        }
    }
}
