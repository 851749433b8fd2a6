//! What the API and the live stream show of a stored proposal or device,
//! the corridor state, the road book and the vehicle board: one typed
//! shape each, written in one place, so `GET /api/proposals`,
//! `GET /api/devices`, `GET /api/state`, `GET /api/road`,
//! `GET /api/vehicles` and the stream's messages are the same JSON. Fields
//! are declared in alphabetical order: the order in which these objects
//! have always been written.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use zhilu_core::CorridorState;
use zhilu_devices::DeviceState;
use zhilu_road::{Direction, RoadBook};
use zhilu_store::{
    DeviceStateRow, EventRow, HandoverRow, NoteRow, PlanRow, ProposalRow, WorkflowRow,
};

use crate::roadjson::{round1, round6};

/// A proposal: a command waiting for (or decided by) an operator.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProposalView {
    /// The command as applied (an edit's value), once approved or edited.
    #[schema(value_type = Option<Object>)]
    pub applied: Option<Value>,
    /// Data time of the tick that proposed it (epoch ms).
    pub at_ms: i64,
    /// The proposed command, e.g. `{"action": "speed_limit", "value": 60}`.
    #[schema(value_type = Object)]
    pub command: Value,
    /// When it was proposed (wall clock, epoch ms).
    pub created_ms: i64,
    /// Who decided it.
    pub decided_by: Option<String>,
    /// When it was decided (wall clock, epoch ms).
    pub decided_ms: Option<i64>,
    /// The operator's reason (required to reject or edit).
    pub decision_reason: Option<String>,
    /// The device it commands.
    pub device: String,
    /// The event it answers (`E17`).
    pub event: Option<String>,
    /// Its deadline (wall clock, epoch ms).
    pub expires_ms: i64,
    /// `P12`.
    pub id: String,
    /// The command's kind (`speed_limit`, `message`, …).
    pub kind: String,
    /// Why the brain proposed it (the core's text, as in `ACTIONS.jsonl`).
    pub reason: String,
    /// The same reason as a code with parameters
    /// (`zhilu_io::jsonl::reason_value`), for a console to say in its
    /// language; `null` for a proposal stored without one.
    #[schema(value_type = Option<Object>)]
    pub reason_code: Option<Value>,
    /// `pending`, `approved`, `edited`, `rejected`, `expired`, `superseded`.
    pub status: String,
}

impl ProposalView {
    /// The view of a stored proposal.
    pub fn of(p: &ProposalRow) -> ProposalView {
        ProposalView {
            applied: p
                .final_json
                .as_deref()
                .and_then(|j| serde_json::from_str::<Value>(j).ok()),
            at_ms: p.at_ms,
            command: serde_json::from_str::<Value>(&p.json).unwrap_or(Value::Null),
            created_ms: p.created_wall_ms,
            decided_by: p.decided_by.clone(),
            decided_ms: p.decided_wall_ms,
            decision_reason: p.decision_reason.clone(),
            device: p.device.clone(),
            event: p.event_id.clone(),
            expires_ms: p.expires_wall_ms,
            id: format!("P{}", p.id),
            kind: p.kind.clone(),
            reason: p.reason.clone(),
            reason_code: serde_json::from_str::<Value>(&p.json)
                .ok()
                .and_then(|mut v| v.get_mut("reason_code").map(Value::take)),
            status: p.status.clone(),
        }
    }
}

/// One step of a response plan: a proposal, with the device's name from
/// the road book and the rule and legal basis its reason gives.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanStepView {
    /// The command as applied, once approved or edited; `null` for a step
    /// never applied (pending, rejected, expired, superseded).
    #[schema(value_type = Option<Object>)]
    pub applied: Option<Value>,
    /// Legal or regulatory basis (依据), when the rule gives one.
    pub basis: Option<String>,
    /// The proposed command, e.g. `{"action": "entry", "value": "closed", "direction": "down"}`.
    #[schema(value_type = Object)]
    pub command: Value,
    /// Who decided it.
    pub decided_by: Option<String>,
    /// When it was decided (wall clock, epoch ms).
    pub decided_ms: Option<i64>,
    /// The operator's reason.
    pub decision_reason: Option<String>,
    /// Device id (`T_GA`).
    pub device: String,
    /// Device name from the road book (固安), else its id.
    pub device_name: String,
    /// The carriageway the command is for (`up`, `down`), if any.
    pub direction: Option<String>,
    /// Its deadline (wall clock, epoch ms).
    pub expires_ms: i64,
    /// The step's proposal id (`P12`): the old proposal endpoints take it too.
    pub id: String,
    /// Command kind (`entry`, `tunnel_plan`, …).
    pub kind: String,
    /// Why the brain proposed it, in words.
    pub reason: String,
    /// The rule that asked for it (`weather.fog_band`), when named.
    pub rule: Option<String>,
    /// `pending`, `approved`, `edited`, `rejected`, `expired`, `superseded`.
    pub status: String,
}

impl PlanStepView {
    /// The view of a stored step.
    pub fn of(p: &ProposalRow, road: &RoadBook) -> PlanStepView {
        let command = serde_json::from_str::<Value>(&p.json).unwrap_or(Value::Null);
        PlanStepView {
            applied: p
                .final_json
                .as_deref()
                .and_then(|j| serde_json::from_str::<Value>(j).ok()),
            basis: basis_of(&p.reason),
            direction: command["direction"].as_str().map(str::to_string),
            command,
            decided_by: p.decided_by.clone(),
            decided_ms: p.decided_wall_ms,
            decision_reason: p.decision_reason.clone(),
            device: p.device.clone(),
            device_name: device_name(road, &p.device),
            expires_ms: p.expires_wall_ms,
            id: format!("P{}", p.id),
            kind: p.kind.clone(),
            reason: p.reason.clone(),
            rule: rule_of(&p.reason),
            status: p.status.clone(),
        }
    }
}

/// A response plan (处置预案): its name, the event, its steps in order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanView {
    /// When it was made (wall clock, epoch ms).
    pub created_ms: i64,
    /// The carriageway of its event (`up`, `down`, `both`), if any.
    pub direction: Option<String>,
    /// The event it answers (`E17`), if any.
    pub event: Option<String>,
    /// The event's kind (`fog`, `incident`, …), if known.
    pub event_kind: Option<String>,
    /// Start of the event's stretch (stake, m), if known.
    pub from_m: Option<f64>,
    /// `PL12` (the id of its first step, `P12`).
    pub id: String,
    /// 名称: `团雾 K45+200–K52+000 下行 处置预案`.
    pub name: String,
    /// The rule its steps name (the first that names one).
    pub rule: Option<String>,
    /// `pending` (a step waits for an operator), `approved` (every step
    /// applied, superseded ones aside), `partial` (some applied, some
    /// rejected or expired), `rejected` (none applied, one or more
    /// rejected), `closed` (none applied: superseded or expired).
    pub status: String,
    /// Its steps, in the order the brain proposed them.
    pub steps: Vec<PlanStepView>,
    /// End of the event's stretch (stake, m), if known.
    pub to_m: Option<f64>,
    /// When a step last joined it (wall clock, epoch ms).
    pub updated_ms: i64,
}

impl PlanView {
    /// The view of a stored plan with its steps (and its event, if known).
    pub fn of(
        plan: &PlanRow,
        steps: &[ProposalRow],
        event: Option<&EventRow>,
        road: &RoadBook,
    ) -> PlanView {
        let steps: Vec<PlanStepView> = steps
            .iter()
            .filter(|s| s.plan_id == Some(plan.id))
            .map(|s| PlanStepView::of(s, road))
            .collect();
        PlanView {
            created_ms: plan.created_wall_ms,
            direction: event.map(|e| e.direction.clone()),
            event: plan.event_id.clone(),
            event_kind: event.map(|e| e.kind.clone()),
            from_m: event.map(|e| e.from_m.min(e.to_m)),
            id: format!("PL{}", plan.id),
            name: plan.name.clone(),
            // The steps' rule, else the event's (a reason may name none).
            rule: steps
                .iter()
                .find_map(|s| s.rule.clone())
                .or_else(|| event.map(|e| e.rule.clone()).filter(|r| !r.is_empty())),
            status: plan_status(steps.iter().map(|s| s.status.as_str())).into(),
            steps,
            to_m: event.map(|e| e.from_m.max(e.to_m)),
            updated_ms: plan.updated_wall_ms,
        }
    }
}

/// A plan's status from its steps' statuses (see [`PlanView::status`]).
pub fn plan_status<'a>(steps: impl IntoIterator<Item = &'a str>) -> &'static str {
    // A superseded step is history (a newer step on the same device took
    // its place): it counts only when nothing else is left.
    let (mut pending, mut applied, mut rejected, mut other) = (0, 0, 0, 0);
    for s in steps {
        match s {
            "pending" => pending += 1,
            "approved" | "edited" => applied += 1,
            "rejected" => rejected += 1,
            "superseded" => {}
            _ => other += 1,
        }
    }
    if pending > 0 {
        "pending"
    } else if applied > 0 && rejected + other == 0 {
        "approved"
    } else if applied > 0 {
        "partial"
    } else if rejected > 0 {
        "rejected"
    } else {
        "closed"
    }
}

/// A commandable device with the state it last confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeviceView {
    /// When it last confirmed a state (wall clock, epoch ms).
    pub confirmed_ms: Option<i64>,
    /// Device id.
    pub device: String,
    /// When it was last heard of (wall clock, epoch ms).
    pub last_seen_ms: Option<i64>,
    /// Whether it is online.
    pub online: bool,
    /// The command sent and not yet confirmed.
    #[schema(value_type = Option<Object>)]
    pub pending: Option<Value>,
    /// The state in the device's own shape (`{"limit_kmh": 60}`,
    /// `crates/devices/MQTT.md`); absent for a device never heard of.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub shows: Option<Option<Value>>,
    /// The confirmed state in the shape the API has always had
    /// (`{"action": "speed_limit", "value": 60}`, `{"blank": true}`).
    #[schema(value_type = Option<Object>)]
    pub state: Value,
}

impl DeviceView {
    /// The view of a device's stored state.
    pub fn of(d: &DeviceStateRow) -> DeviceView {
        let shows = DeviceState::from_json_str(&d.state_json).ok();
        let state = match &shows {
            Some(DeviceState::Blank) => serde_json::json!({"blank": true}),
            Some(s) => {
                let direction = match s {
                    DeviceState::Entry { direction, .. } => *direction,
                    _ => None,
                };
                s.command_kind()
                    .and_then(|k| s.as_command(k))
                    .map_or(Value::Null, |c| {
                        zhilu_io::jsonl::command_value(&c, direction)
                    })
            }
            None => Value::Null,
        };
        DeviceView {
            confirmed_ms: d.confirmed_wall_ms,
            device: d.device.clone(),
            last_seen_ms: d.last_seen_wall_ms,
            online: d.online,
            pending: d
                .pending_json
                .as_deref()
                .and_then(|j| serde_json::from_str::<Value>(j).ok()),
            shows: Some(shows.map(|s| s.to_json())),
            state,
        }
    }

    /// A device of the road book never heard of.
    pub fn unheard(id: &str) -> DeviceView {
        DeviceView {
            confirmed_ms: None,
            device: id.to_string(),
            last_seen_ms: None,
            online: false,
            pending: None,
            shows: None,
            state: Value::Null,
        }
    }
}

/// The corridor state after a tick (`GET /api/state`, the stream's
/// `state` messages, the stored snapshots): speed, flow and density per
/// segment of each direction, as rows in the order of `columns`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, ToSchema)]
pub struct StateView {
    /// The order of a segment row's values: `from_m`, `to_m`, `speed_kmh`,
    /// `flow_vph`, `density_vpkm`.
    pub columns: [&'static str; 5],
    /// One entry per direction of the road.
    pub directions: Vec<DirectionStateView>,
    /// The tick's data time (RFC 3339 in the road's offset).
    pub time: String,
    /// The tick's data time (epoch ms).
    pub ts_ms: i64,
}

/// One direction of [`StateView`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DirectionStateView {
    /// `up` or `down`.
    pub direction: &'static str,
    /// Per segment: from (m), to (m), speed (km/h, one decimal), flow
    /// (veh/h, whole), density (veh/km, one decimal); `null` where the
    /// estimate is not a number.
    #[schema(value_type = Vec<Vec<Option<f64>>>)]
    pub segments: Vec<[f64; 5]>,
}

/// The column names of a [`DirectionStateView`] segment row.
pub const STATE_SEGMENT_COLUMNS: [&str; 5] =
    ["from_m", "to_m", "speed_kmh", "flow_vph", "density_vpkm"];

impl StateView {
    /// The view of the brain's corridor state (times in the road's offset
    /// `tz_offset_s`).
    pub fn of(s: &CorridorState, tz_offset_s: i32) -> StateView {
        let r1 = |x: f32| round1(f64::from(x));
        StateView {
            columns: STATE_SEGMENT_COLUMNS,
            directions: s
                .directions
                .iter()
                .map(|d| DirectionStateView {
                    direction: d.direction.as_str(),
                    segments: d
                        .segments
                        .iter()
                        .map(|c| {
                            [
                                c.from_m,
                                c.to_m,
                                r1(c.speed_kmh),
                                f64::from(c.flow_vph.round()),
                                r1(c.density_vpkm),
                            ]
                        })
                        .collect(),
                })
                .collect(),
            time: zhilu_io::jsonl::format_time(s.ts_ms, tz_offset_s),
            ts_ms: s.ts_ms,
        }
    }

    /// Its text, as the stream publishes it and the store keeps it.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The road book as the console draws it (`GET /api/road`): every item
/// with its stake(s) and position (`lonlat`: degrees to six decimals).
/// Fields in alphabetical order, as always written.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RoadView {
    /// De-icing systems.
    pub deicers: Vec<ZoneView>,
    /// Detector stations.
    pub detectors: Vec<DetectorView>,
    /// Directions present (`up`, `down`).
    pub directions: Vec<&'static str>,
    /// Off-ramps.
    pub exits: Vec<JunctionView>,
    /// Fog-light zones.
    pub fog_lights: Vec<ZoneView>,
    /// The centre line: `[stake_m, lon, lat]` points.
    pub geometry: Vec<[f64; 3]>,
    /// Road-book id.
    pub id: String,
    /// Interchanges.
    pub interchanges: Vec<JunctionView>,
    /// Lanes per direction.
    pub lanes: u8,
    /// Name.
    pub name: String,
    /// The provincial profile of the plans.
    pub profile: &'static str,
    /// Service areas.
    pub service_areas: Vec<ServiceAreaView>,
    /// Posted speed limit (km/h).
    pub speed_limit_kmh: u16,
    /// Tunnels.
    pub tunnels: Vec<TunnelView>,
    /// Local offset from UTC (s).
    pub tz_offset_s: i32,
    /// Message signs.
    pub vms: Vec<SignView>,
    /// Variable speed-limit signs.
    pub vsl: Vec<SignView>,
    /// Weather stations.
    pub weather: Vec<WeatherStationView>,
}

/// A detector station of [`RoadView`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DetectorView {
    /// `up` or `down`.
    pub direction: &'static str,
    /// Id.
    pub id: String,
    /// Lanes it covers.
    pub lanes: u8,
    /// `[lon, lat]`.
    pub lonlat: [f64; 2],
    /// Stake (m).
    pub stake_m: f64,
}

/// A sign (speed limit or message) of [`RoadView`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SignView {
    /// `up` or `down`.
    pub direction: &'static str,
    /// Id.
    pub id: String,
    /// `[lon, lat]`.
    pub lonlat: [f64; 2],
    /// Stake (m).
    pub stake_m: f64,
}

/// A device covering a stretch (fog lights, de-icing) of [`RoadView`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ZoneView {
    /// Start (m).
    pub from_m: f64,
    /// Id.
    pub id: String,
    /// `[[lon, lat] of from_m, [lon, lat] of to_m]`.
    pub lonlat: [[f64; 2]; 2],
    /// End (m).
    pub to_m: f64,
}

/// A weather station of [`RoadView`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WeatherStationView {
    /// Id.
    pub id: String,
    /// `[lon, lat]`.
    pub lonlat: [f64; 2],
    /// Stake (m).
    pub stake_m: f64,
}

/// An interchange or an exit of [`RoadView`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JunctionView {
    /// The directions it serves.
    pub directions: Vec<&'static str>,
    /// Id.
    pub id: String,
    /// `[lon, lat]`.
    pub lonlat: [f64; 2],
    /// Name.
    pub name: String,
    /// Stake (m).
    pub stake_m: f64,
}

/// A tunnel of [`RoadView`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TunnelView {
    /// Start (m).
    pub from_m: f64,
    /// Whether vehicles with hazardous goods are forbidden in it.
    pub hazmat_forbidden: bool,
    /// Id.
    pub id: String,
    /// `[[lon, lat] of from_m, [lon, lat] of to_m]`.
    pub lonlat: [[f64; 2]; 2],
    /// End (m).
    pub to_m: f64,
}

/// A service area of [`RoadView`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceAreaView {
    /// Chargers.
    pub chargers: u32,
    /// Id.
    pub id: String,
    /// `[lon, lat]`.
    pub lonlat: [f64; 2],
    /// Name.
    pub name: String,
    /// Stake (m).
    pub stake_m: f64,
}

impl RoadView {
    /// The view of a road book.
    pub fn of(road: &RoadBook) -> RoadView {
        let at = |stake_m: f64| {
            let (lon, lat) = road.geometry().lonlat(stake_m);
            [round6(lon), round6(lat)]
        };
        let dirs = |d: &[Direction]| d.iter().map(|d| d.as_str()).collect::<Vec<_>>();
        let sign = |s: &zhilu_road::Sign| SignView {
            direction: s.direction.as_str(),
            id: s.id.clone(),
            lonlat: at(s.stake_m),
            stake_m: s.stake_m,
        };
        let zone = |z: &zhilu_road::Zone| ZoneView {
            from_m: z.from_m,
            id: z.id.clone(),
            lonlat: [at(z.from_m), at(z.to_m)],
            to_m: z.to_m,
        };
        let junction = |id: &str, name: &str, stake_m: f64, d: &[Direction]| JunctionView {
            directions: dirs(d),
            id: id.to_string(),
            lonlat: at(stake_m),
            name: name.to_string(),
            stake_m,
        };
        RoadView {
            deicers: road.deicers().iter().map(zone).collect(),
            detectors: road
                .detectors()
                .iter()
                .map(|d| DetectorView {
                    direction: d.direction.as_str(),
                    id: d.id.clone(),
                    lanes: d.lanes,
                    lonlat: at(d.stake_m),
                    stake_m: d.stake_m,
                })
                .collect(),
            directions: dirs(road.directions()),
            exits: road
                .exits()
                .iter()
                .map(|x| junction(&x.id, &x.name, x.stake_m, &x.directions))
                .collect(),
            fog_lights: road.fog_lights().iter().map(zone).collect(),
            geometry: road
                .geometry()
                .points()
                .iter()
                .map(|p| [p.stake_m, p.lon, p.lat])
                .collect(),
            id: road.id().to_string(),
            interchanges: road
                .interchanges()
                .iter()
                .map(|i| junction(&i.id, &i.name, i.stake_m, &i.directions))
                .collect(),
            lanes: road.lanes(),
            name: road.name().to_string(),
            profile: road.profile().as_str(),
            service_areas: road
                .service_areas()
                .iter()
                .map(|s| ServiceAreaView {
                    chargers: s.chargers,
                    id: s.id.clone(),
                    lonlat: at(s.stake_m),
                    name: s.name.clone(),
                    stake_m: s.stake_m,
                })
                .collect(),
            speed_limit_kmh: road.speed_limit_kmh(),
            tunnels: road
                .tunnels()
                .iter()
                .map(|t| TunnelView {
                    from_m: t.from_m,
                    hazmat_forbidden: t.hazmat_forbidden,
                    id: t.id.clone(),
                    lonlat: [at(t.from_m), at(t.to_m)],
                    to_m: t.to_m,
                })
                .collect(),
            tz_offset_s: road.tz_offset_s(),
            vms: road.vms().iter().map(sign).collect(),
            vsl: road.vsl().iter().map(sign).collect(),
            weather: road
                .weather()
                .iter()
                .map(|w| WeatherStationView {
                    id: w.id.clone(),
                    lonlat: at(w.stake_m),
                    stake_m: w.stake_m,
                })
                .collect(),
        }
    }
}

/// Where an event stands with the operators (`status` `open` until someone
/// acknowledges or closes it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct WorkflowView {
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When (wall clock, epoch ms).
    pub acked_ms: Option<i64>,
    /// Who assigned it.
    pub assigned_by: Option<String>,
    /// The user it is assigned to.
    pub assigned_to: Option<String>,
    /// Why it was closed.
    pub close_reason: Option<String>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// When (wall clock, epoch ms).
    pub closed_ms: Option<i64>,
    /// `open`, `acknowledged` or `closed`.
    pub status: String,
}

impl WorkflowView {
    /// The view of a stored workflow (`None`: untouched, open).
    pub fn of(w: Option<&WorkflowRow>) -> WorkflowView {
        match w {
            None => WorkflowView {
                status: "open".into(),
                ..WorkflowView::default()
            },
            Some(w) => WorkflowView {
                acked_by: w.acked_by.clone(),
                acked_ms: w.acked_wall_ms,
                assigned_by: w.assigned_by.clone(),
                assigned_to: w.assigned_to.clone(),
                close_reason: w.close_reason.clone(),
                closed_by: w.closed_by.clone(),
                closed_ms: w.closed_wall_ms,
                status: w.status.clone(),
            },
        }
    }
}

/// One vehicle on the board: `[vehicle, class, ts_ms, lon, lat, stake_m,
/// direction, speed_kmh, heading_deg]` (the order of
/// `crate::vehicles::COLUMNS`; `direction` `null` off the road).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VehicleRow(
    pub String,
    pub String,
    pub i64,
    pub f64,
    pub f64,
    pub f64,
    pub Option<&'static str>,
    pub Option<f64>,
    pub Option<f64>,
);

/// Where every vehicle heard of recently is (`GET /api/vehicles`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VehiclesView {
    /// The order of a row's values.
    pub columns: [&'static str; 9],
    /// One row per vehicle, by id: `[vehicle, class, ts_ms, lon, lat,
    /// stake_m, direction, speed_kmh, heading_deg]` (`direction` `null` off
    /// the road).
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub rows: Vec<VehicleRow>,
    /// Each vehicle's recent track, oldest first: `[ts_ms, lon, lat]`
    /// points (only when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracks: Option<BTreeMap<String, Vec<(i64, f64, f64)>>>,
    /// Data time of the latest report (`null` before any).
    pub ts_ms: Option<i64>,
}

/// An operator's note on an event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NoteView {
    /// Who wrote it.
    pub author: String,
    /// The text.
    pub text: String,
    /// When (wall clock, epoch ms).
    pub wall_ms: i64,
}

impl NoteView {
    /// The view of a stored note.
    pub fn of(n: &NoteRow) -> NoteView {
        NoteView {
            author: n.author.clone(),
            text: n.text.clone(),
            wall_ms: n.wall_ms,
        }
    }
}

/// A signed shift handover (交接班).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HandoverView {
    /// The incoming operator's note.
    pub ack_note: Option<String>,
    /// The incoming operator who acknowledged it.
    pub acked_by: Option<String>,
    /// When (wall clock, epoch ms).
    pub acked_ms: Option<i64>,
    /// Start of the shift it covers (wall clock, epoch ms; 0 for the first).
    pub from_ms: i64,
    /// `H3`.
    pub id: String,
    /// The shift's log as signed (`GET /api/handover`'s `log`).
    #[schema(value_type = Object)]
    pub log: Value,
    /// The outgoing operator's note.
    pub note: String,
    /// The outgoing operator.
    pub signed_by: String,
    /// When signed: the end of the shift (wall clock, epoch ms).
    pub signed_ms: i64,
}

impl HandoverView {
    /// The view of a stored handover.
    pub fn of(h: &HandoverRow) -> HandoverView {
        HandoverView {
            ack_note: h.ack_note.clone(),
            acked_by: h.acked_by.clone(),
            acked_ms: h.acked_wall_ms,
            from_ms: h.from_wall_ms,
            id: format!("H{}", h.id),
            log: serde_json::from_str(&h.log_json).unwrap_or(Value::Null),
            note: h.note.clone(),
            signed_by: h.signed_by.clone(),
            signed_ms: h.signed_wall_ms,
        }
    }
}

/// A proposal as published on the stream (the text of [`ProposalView`]).
pub fn proposal_json(p: &ProposalRow) -> String {
    serde_json::to_string(&ProposalView::of(p)).unwrap_or_default()
}

/// A device state as published on the stream (the text of [`DeviceView`]).
pub fn device_json(d: &DeviceStateRow) -> String {
    serde_json::to_string(&DeviceView::of(d)).unwrap_or_default()
}

/// The rule a brain reason names: `… [规则 weather.fog_band, 预案 …]` →
/// `weather.fog_band`.
pub fn rule_of(reason: &str) -> Option<String> {
    let (_, rest) = reason.split_once("[规则 ")?;
    let end = rest.find([',', ']', '，']).unwrap_or(rest.len());
    let r = rest[..end].trim();
    (!r.is_empty()).then(|| r.to_string())
}

/// The legal or regulatory basis a brain reason gives (after `依据:`).
pub fn basis_of(reason: &str) -> Option<String> {
    let (_, rest) = reason
        .split_once("依据:")
        .or_else(|| reason.split_once("依据："))?;
    let b = rest.trim();
    (!b.is_empty()).then(|| b.to_string())
}

/// A device's name from the road book: an interchange's or service area's
/// name (固安), else its id.
pub fn device_name(road: &RoadBook, id: &str) -> String {
    if let Some(i) = road.interchanges().iter().find(|i| i.id == id) {
        return i.name.clone();
    }
    if let Some(s) = road.service_areas().iter().find(|s| s.id == id) {
        return s.name.clone();
    }
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal() -> ProposalRow {
        ProposalRow {
            id: 12,
            created_wall_ms: 1_000,
            expires_wall_ms: 2_000,
            at_ms: 900,
            device: "VSL-01".into(),
            kind: "speed_limit".into(),
            json: r#"{"value":60,"action":"speed_limit"}"#.into(),
            event_id: Some("E3".into()),
            reason: "fog".into(),
            status: "pending".into(),
            decided_by: None,
            decided_wall_ms: None,
            decision_reason: None,
            final_json: None,
            plan_id: None,
        }
    }

    #[test]
    fn a_proposal_is_written_with_sorted_keys() {
        // The shape the API and the stream have always written: every key,
        // in alphabetical order, absent values as null.
        assert_eq!(
            proposal_json(&proposal()),
            r#"{"applied":null,"at_ms":900,"command":{"action":"speed_limit","value":60},"created_ms":1000,"decided_by":null,"decided_ms":null,"decision_reason":null,"device":"VSL-01","event":"E3","expires_ms":2000,"id":"P12","kind":"speed_limit","reason":"fog","reason_code":null,"status":"pending"}"#
        );
    }

    #[test]
    fn a_plan_is_pending_while_a_step_waits_and_never_approved_unless_applied() {
        let cases: &[(&[&str], &str)] = &[
            (&["pending", "approved"], "pending"),
            (&["approved", "edited"], "approved"),
            (&["approved", "rejected"], "partial"),
            (&["approved", "superseded"], "approved"),
            (&["approved", "expired"], "partial"),
            (&["rejected", "superseded"], "rejected"),
            (&["superseded", "expired"], "closed"),
            (&[], "closed"),
        ];
        for (steps, want) in cases {
            assert_eq!(plan_status(steps.iter().copied()), *want, "{steps:?}");
        }
    }

    #[test]
    fn a_plan_view_names_devices_from_the_road_book_and_keeps_its_own_steps() {
        let road = RoadBook::from_toml(
            include_str!("../../../examples/demo/ROAD.toml"),
            "ROAD.toml",
        )
        .expect("the demo road");
        let ic = &road.interchanges()[0];
        let plan = PlanRow {
            id: 12,
            name: "交通事故 K12+345 上行 处置预案".into(),
            event_id: Some("E3".into()),
            ..PlanRow::default()
        };
        let step = |id, device: &str, plan_id| ProposalRow {
            id,
            device: device.into(),
            plan_id: Some(plan_id),
            reason: "交通事件: 1–2 米; 上游限速渐变".into(),
            status: "pending".into(),
            json: r#"{"action":"entry","value":"closed","direction":"up"}"#.into(),
            ..ProposalRow::default()
        };
        let event = EventRow {
            id: "E3".into(),
            kind: "incident".into(),
            direction: "up".into(),
            from_m: 12_400.0,
            to_m: 12_300.0,
            rule: "incident.speed_drop".into(),
            ..EventRow::default()
        };
        let v = PlanView::of(
            &plan,
            &[
                step(12, &ic.id, 12),
                step(13, "S_X", 12),
                step(14, &ic.id, 99),
            ],
            Some(&event),
            &road,
        );
        assert_eq!(v.id, "PL12");
        assert_eq!(v.steps.len(), 2, "a step of another plan is not shown");
        assert_eq!(v.steps[0].device_name, ic.name);
        assert_eq!(v.steps[1].device_name, "S_X");
        assert_eq!(v.steps[0].direction.as_deref(), Some("up"));
        // No rule named in the reasons: the event's rule.
        assert_eq!(v.rule.as_deref(), Some("incident.speed_drop"));
        assert_eq!((v.from_m, v.to_m), (Some(12_300.0), Some(12_400.0)));
        assert_eq!(v.status, "pending");
    }

    #[test]
    fn a_proposal_carries_its_reason_code_beside_the_text() {
        let mut p = proposal();
        p.json = r#"{"action":"speed_limit","value":60,"reason":"r","reason_code":{"code":"fog_band","band":4}}"#.into();
        let v: Value = serde_json::from_str(&proposal_json(&p)).expect("json");
        assert_eq!(v["reason"], "fog", "the text is the stored one");
        assert_eq!(
            v["reason_code"],
            serde_json::json!({"code": "fog_band", "band": 4})
        );
        assert_eq!(v["command"]["reason_code"]["code"], "fog_band");
    }

    #[test]
    fn a_device_never_heard_of_has_no_shows() {
        let v = serde_json::to_string(&DeviceView::unheard("VMS-1")).expect("json");
        assert_eq!(
            v,
            r#"{"confirmed_ms":null,"device":"VMS-1","last_seen_ms":null,"online":false,"pending":null,"state":null}"#
        );
        let row = DeviceStateRow {
            device: "VMS-1".into(),
            state_json: "not a state".into(),
            confirmed_wall_ms: Some(5),
            online: true,
            last_seen_wall_ms: Some(6),
            pending_json: None,
            updated_wall_ms: 6,
        };
        assert_eq!(
            device_json(&row),
            r#"{"confirmed_ms":5,"device":"VMS-1","last_seen_ms":6,"online":true,"pending":null,"shows":null,"state":null}"#
        );
    }

    /// The example day's road book.
    fn road() -> RoadBook {
        RoadBook::from_toml(include_str!("../../../examples/day/ROAD.toml"), "day")
            .expect("example road book")
    }

    #[test]
    fn the_road_view_has_positions_and_sorted_keys() {
        let road = road();
        let v = serde_json::to_value(RoadView::of(&road)).expect("json");
        assert_eq!(v["detectors"].as_array().map(Vec::len), Some(12));
        let d = &road.detectors()[0];
        let (lon, lat) = road.geometry().lonlat(d.stake_m);
        assert_eq!(
            v["detectors"][0]["lonlat"],
            serde_json::json!([round6(lon), round6(lat)])
        );
        assert_eq!(v["directions"], serde_json::json!(["up", "down"]));
        let text = serde_json::to_string(&RoadView::of(&road)).expect("json");
        assert!(text.starts_with(r#"{"deicers":["#), "{}", &text[..40]);
        // Keys in alphabetical order at every level, as always written.
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn the_state_view_is_written_as_it_always_was() {
        use zhilu_core::{Cell, CorridorState, DirectionState};
        let cell = |from_m: f64, speed_kmh: f32, flow_vph: f32| Cell {
            from_m,
            to_m: from_m + 500.0,
            speed_kmh,
            flow_vph,
            density_vpkm: 12.345,
            support: 1.0,
        };
        let state = CorridorState {
            ts_ms: 1_767_225_600_000,
            directions: vec![DirectionState {
                direction: Direction::Down,
                station_ids: Vec::new(),
                samples: Vec::new(),
                stations: Vec::new(),
                segments: vec![cell(1000.0, 87.66, 1234.6), cell(1500.0, f32::NAN, 0.4)],
            }],
        };
        assert_eq!(
            StateView::of(&state, 8 * 3600).json(),
            r#"{"columns":["from_m","to_m","speed_kmh","flow_vph","density_vpkm"],"directions":[{"direction":"down","segments":[[1000.0,1500.0,87.7,1235.0,12.3],[1500.0,2000.0,null,0.0,12.3]]}],"time":"2026-01-01T08:00:00+08:00","ts_ms":1767225600000}"#
        );
    }
}
