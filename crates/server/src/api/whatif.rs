//! `POST /api/whatif` (issue 18): the twin (`zhilu_traffic::Twin`,
//! `docs/TWIN.md`) started from the corridor state of the last closed tick,
//! the open incidents and fog, run for "do nothing", the devices as
//! confirmed, the pending proposals applied on top of them, and any plans
//! the caller sends (device states over the confirmed ones).
//!
//! Readable by every role that may read plans (viewer and up). One what-if
//! runs at a time (another gets 429): it takes both cores for under a
//! second, on a blocking thread, never on the engine's.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zhilu_core::event::EntryState as CoreEntry;
use zhilu_devices::DeviceState;
use zhilu_road::{DeviceKind, Direction, RoadBook};
use zhilu_store::EventQuery;
use zhilu_traffic::{
    EntryState, FogZone, LaneBlock, PlanOutcome, SegmentEstimate, Twin, TwinConfig, TwinPlan,
    TwinStart,
};

use crate::AppState;
use crate::views::StateView;

use super::{ApiError, ApiResult, Caller, ErrorBody};

/// Longest horizon (minutes).
pub const MAX_HORIZON_MIN: u32 = 60;
/// Most plans a request may add to the three the centre builds.
pub const MAX_PLANS: usize = 8;
/// Lanes an open incident is taken to block when its record does not say.
pub const INCIDENT_LANES_DEFAULT: u8 = 1;

/// What to try.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatIfRequest {
    /// Minutes ahead, 1–60.
    pub horizon_min: u32,
    /// Plans to add to "do nothing", "current" and "pending" (at most 8).
    #[serde(default)]
    pub plans: Vec<PlanRequest>,
}

/// A plan to try: device states over the confirmed ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// Shown with the results.
    pub name: String,
    /// Device id → state in the device's own shape (`{"limit_kmh": 60}`,
    /// `{"blank": true}`, `{"state": "closed", "direction": "up"}`; an
    /// entry's carriageway may also be named in the key, `T_GA:up`); devices
    /// not named keep their confirmed state. States the twin does not model
    /// (messages, fog lights, de-icing, tunnel plans) are listed in `ignored`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub devices: BTreeMap<String, Value>,
    /// Lanes the plan closes.
    #[serde(default)]
    pub lane_closures: Vec<LaneClosure>,
}

/// Lanes closed over a stretch.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaneClosure {
    /// `up` / `down`.
    pub direction: String,
    /// Lower stake (m).
    pub from_m: f64,
    /// Higher stake (m).
    pub to_m: f64,
    /// Lanes closed.
    pub lanes: u8,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhatIfResponse {
    /// Data time the twin starts from (the last closed tick, epoch ms).
    pub from_ms: i64,
    /// The same, in the road's offset.
    pub from: String,
    /// Minutes ahead.
    pub horizon_min: u32,
    /// Demand members behind each band (member 0 is the central forecast).
    pub members: usize,
    /// One per plan: "do nothing", "current", "pending" (when proposals
    /// wait), then the request's plans.
    pub plans: Vec<PlanResult>,
    /// What the twin assumed, in words (`docs/TWIN.md`).
    pub assumptions: Vec<String>,
    /// Wall time the runs took (ms).
    pub computed_ms: u64,
}

/// A plan's outcome (central member; bands from the ensemble).
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanResult {
    /// The plan's name.
    pub name: String,
    /// `do_nothing`, `current`, `pending` or `request`.
    pub source: String,
    /// Device states the plan sets (device id → state), beyond "do nothing".
    #[schema(value_type = Object)]
    pub devices: BTreeMap<String, Value>,
    /// Devices named whose states the twin does not model.
    pub ignored: Vec<String>,
    /// Total time spent by all vehicles, entry queues and the detours of
    /// those turned away included (veh·h).
    pub total_travel_time_veh_h: f64,
    /// Total travel time less the time at free speed (veh·h).
    pub delay_veh_h: f64,
    /// Longest queue (m).
    pub max_queue_m: f64,
    /// When the last queue clears (road's offset); the start when there is
    /// none; `null` when a queue is left at the horizon.
    pub clear_at: Option<String>,
    /// Minutes until then (`null` as `clear_at`).
    pub clear_after_min: Option<f64>,
    /// Vehicle-weighted variance of speed ((km/h)²).
    pub speed_variance: f64,
    /// Vehicles entering fog.
    pub fog_entering_veh: f64,
    /// Share of them arriving faster than the stopping sight distance allows.
    pub fog_too_fast_share: f64,
    /// Entries closed (`T_GA:up`).
    pub entries_closed: Vec<String>,
    /// Vehicles turned away at closed entries.
    pub turned_away_veh: f64,
    /// Bands over the demand ensemble.
    pub band: BandSet,
    /// The longest queue of each carriageway over time (central member).
    pub queue: Vec<QueuePoint>,
    /// Speeds on a time–space grid per carriageway (central member).
    pub timespace: Vec<TimeSpaceGrid>,
}

/// 10th, 50th and 90th percentiles.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pct {
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
}

/// Bands over the ensemble.
#[derive(Debug, Serialize, ToSchema)]
pub struct BandSet {
    /// Total travel time (veh·h).
    pub total_travel_time_veh_h: Pct,
    /// Delay (veh·h).
    pub delay_veh_h: Pct,
    /// Longest queue (m).
    pub max_queue_m: Pct,
    /// Share arriving at fog too fast.
    pub fog_too_fast_share: Pct,
    /// Members whose queue had not cleared at the horizon.
    pub members_not_cleared: usize,
}

/// The longest queue of a carriageway at one time.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuePoint {
    /// Minutes after the start.
    pub t_min: f64,
    /// `up` / `down`.
    pub direction: String,
    /// Stake of the tail (upstream end), `null` without a queue.
    pub tail_m: Option<f64>,
    /// Length (m).
    pub length_m: f64,
}

/// Speeds of a carriageway on a grid.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeSpaceGrid {
    /// `up` / `down`.
    pub direction: String,
    /// Minutes between rows (row 0 = the start).
    pub step_min: f64,
    /// Stake where each column starts, in the direction of travel (m).
    pub stakes_m: Vec<f64>,
    /// `speed_kmh[row][column]` (km/h).
    pub speed_kmh: Vec<Vec<Option<f32>>>,
}

/// An error answer with `status` (400, 404, else 500 with a text already
/// fit for the caller).
fn answer<T>(status: StatusCode, msg: impl Into<String>) -> ApiResult<T> {
    let msg = msg.into();
    Err(match status {
        StatusCode::BAD_REQUEST => ApiError::BadRequest(msg),
        StatusCode::NOT_FOUND => ApiError::NotFound(msg),
        _ => ApiError::Internal(msg),
    })
}

fn busy() -> &'static tokio::sync::Semaphore {
    static S: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    S.get_or_init(|| tokio::sync::Semaphore::new(1))
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(whatif))
}

/// What would each plan do over the next `horizon_min` minutes? The twin
/// starts from the last closed tick's state, open incidents and fog, and
/// compares "do nothing", the devices as confirmed ("current"), the
/// pending proposals applied ("pending") and the plans sent.
#[utoipa::path(post, path = "/api/whatif", tag = "zhilu", security(("bearer" = [])),
    request_body = WhatIfRequest,
    responses((status = 200, body = WhatIfResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn whatif(
    State(st): State<AppState>,
    _c: Caller,
    Json(req): Json<WhatIfRequest>,
) -> ApiResult<Json<WhatIfResponse>> {
    if req.horizon_min == 0 || req.horizon_min > MAX_HORIZON_MIN {
        return answer(
            StatusCode::BAD_REQUEST,
            format!(
                "horizon_min must be 1–{MAX_HORIZON_MIN} (got {})",
                req.horizon_min
            ),
        );
    }
    if req.plans.len() > MAX_PLANS {
        return answer(
            StatusCode::BAD_REQUEST,
            format!(
                "at most {MAX_PLANS} plans a request (got {})",
                req.plans.len()
            ),
        );
    }
    let Some(state) = st.snapshot.read().ok().and_then(|s| s.state.clone()) else {
        return answer(StatusCode::NOT_FOUND, "no state yet: no tick closed");
    };
    let from_ms = state.ts_ms;
    let Ok(_permit) = busy().try_acquire() else {
        return Err(ApiError::TooManyRequests {
            message: "a what-if is running: try again in a moment".into(),
            retry_after_s: 1,
        });
    };
    let events = match st
        .store
        .events(&EventQuery {
            active_only: true,
            ..EventQuery::default()
        })
        .await
    {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(message = "What-if: open events unreadable.", error = %e);
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "open events unreadable (see the server log)",
            );
        }
    };
    let devices = st.store.device_states().await;
    let proposals = st.store.proposals(Some("pending")).await;
    let (devices, proposals) = match (devices, proposals) {
        (Ok(d), Ok(p)) => (d, p),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(message = "What-if: devices or proposals unreadable.", error = %e);
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "devices unreadable (see the server log)",
            );
        }
    };
    let road = st.road.clone();
    let mut start = start_from(&state, &events);
    // Demand from the last 5 minutes' counts rather than one tick's flows.
    if from_ms > 0 {
        match st
            .store
            .station_history(from_ms - FLOW_WINDOW_MS + 1, from_ms + 1, 3_600_000)
            .await
        {
            Ok(rows) => mean_flows(&road, &rows, &mut start),
            Err(e) => {
                tracing::warn!(message = "What-if: counts unreadable, tick flows used.", error = %e)
            }
        }
    }
    // Confirmed states, then the pending proposals on top.
    let mut current = BTreeMap::new();
    for d in &devices {
        if let Ok(s) = DeviceState::from_json_str(&d.state_json) {
            current.insert(d.device.clone(), s);
        }
    }
    let mut pending = current.clone();
    for p in &proposals {
        if let Ok((c, dir)) = zhilu_io::jsonl::parse_action_command(&p.json) {
            // An entry's two carriageways are two proposals: keep both.
            let key = match dir {
                Some(d) => format!("{}:{}", p.device, d.as_str()),
                None => p.device.clone(),
            };
            pending.insert(key, DeviceState::from_command(&c, dir));
        }
    }
    let mut plans: Vec<(
        String,
        &'static str,
        BTreeMap<String, DeviceState>,
        Vec<LaneBlock>,
    )> = vec![
        (
            "do nothing".into(),
            "do_nothing",
            BTreeMap::new(),
            Vec::new(),
        ),
        ("current".into(), "current", current.clone(), Vec::new()),
    ];
    if !proposals.is_empty() {
        plans.push(("pending".into(), "pending", pending, Vec::new()));
    }
    for p in &req.plans {
        let mut states = current.clone();
        for (id, v) in &p.devices {
            match DeviceState::from_json(v) {
                Ok(s) => {
                    states.insert(id.clone(), s);
                }
                Err(e) => {
                    return answer(
                        StatusCode::BAD_REQUEST,
                        format!("plan `{}`: {id}: {e}", p.name),
                    );
                }
            }
        }
        let mut closures = Vec::new();
        for c in &p.lane_closures {
            let Some(direction) = Direction::parse(&c.direction) else {
                return answer(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "plan `{}`: lane closure direction must be up or down",
                        p.name
                    ),
                );
            };
            if !(c.from_m.is_finite() && c.to_m.is_finite()) || c.lanes == 0 {
                return answer(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "plan `{}`: a lane closure needs finite stakes and ≥ 1 lane",
                        p.name
                    ),
                );
            }
            closures.push(LaneBlock {
                direction,
                from_m: c.from_m.min(c.to_m),
                to_m: c.from_m.max(c.to_m),
                lanes: c.lanes,
                until_s: None,
            });
        }
        plans.push((p.name.clone(), "request", states, closures));
    }
    let mut twin_plans = Vec::new();
    let mut shown = Vec::new();
    for (name, source, states, closures) in &plans {
        match twin_plan(&road, name, states, closures) {
            Ok((tp, ignored)) => {
                twin_plans.push(tp);
                let devices = states
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect();
                shown.push((source.to_string(), devices, ignored));
            }
            Err(e) => return answer(StatusCode::BAD_REQUEST, e),
        }
    }
    let horizon_s = req.horizon_min * 60;
    let cfg = TwinConfig::default();
    let members = cfg.members;
    let grid_step_min = f64::from(cfg.grid_step_s) / 60.0;
    let t = Instant::now();
    let run = tokio::task::spawn_blocking(move || {
        let twin = Twin::new(&road, cfg).map_err(|e| e.to_string())?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        twin.compare(&start, &twin_plans, horizon_s, threads)
            .map_err(|e| e.to_string())
    })
    .await;
    let outcomes = match run {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return answer(StatusCode::BAD_REQUEST, e),
        Err(e) => {
            tracing::error!(message = "What-if run failed.", error = %e);
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the twin failed (see the server log)",
            );
        }
    };
    let computed_ms = t.elapsed().as_millis() as u64;
    let tz = st.road.tz_offset_s();
    let plans = outcomes
        .into_iter()
        .zip(shown)
        .map(|(o, (source, devices, ignored))| {
            result(o, source, devices, ignored, from_ms, tz, grid_step_min)
        })
        .collect();
    Ok(Json(WhatIfResponse {
        from_ms,
        from: zhilu_io::jsonl::format_time(from_ms, tz),
        horizon_min: req.horizon_min,
        members,
        plans,
        assumptions: vec![
            "demand held at the last 5 minutes' counts (upstream end and each entry), ±10 % log-normal per member".into(),
            "open incidents block their lanes (1 when not known) and fog keeps its visibility for the whole horizon".into(),
            "80 % of drivers keep to a posted limit below their free speed; drivers close 30 % of the gap to their sight-distance speed by themselves".into(),
            "capacity 2000 veh/h/lane, capacity drop 10 %, defaults not yet calibrated on this corridor".into(),
        ],
        computed_ms,
    }))
}

fn result(
    o: PlanOutcome,
    source: String,
    devices: BTreeMap<String, Value>,
    ignored: Vec<String>,
    from_ms: i64,
    tz: i32,
    grid_step_min: f64,
) -> PlanResult {
    let pct = |b: zhilu_traffic::Band, k: f64| Pct {
        p10: (b.p10 * k).round() / k,
        p50: (b.p50 * k).round() / k,
        p90: (b.p90 * k).round() / k,
    };
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    let c = &o.central;
    PlanResult {
        name: o.name,
        source,
        devices,
        ignored,
        total_travel_time_veh_h: r1(c.total_travel_time_veh_h),
        delay_veh_h: r1(c.delay_veh_h),
        max_queue_m: c.max_queue_m.round(),
        clear_at: c
            .clear_after_s
            .map(|s| zhilu_io::jsonl::format_time(from_ms + i64::from(s) * 1000, tz)),
        clear_after_min: c.clear_after_s.map(|s| f64::from(s) / 60.0),
        speed_variance: c.speed_variance.round(),
        fog_entering_veh: c.fog_entering_veh.round(),
        fog_too_fast_share: (c.fog_too_fast_share * 1000.0).round() / 1000.0,
        entries_closed: o
            .entries_closed
            .iter()
            .map(|(id, d)| format!("{id}:{}", d.as_str()))
            .collect(),
        turned_away_veh: c.turned_away_veh.round(),
        band: BandSet {
            total_travel_time_veh_h: pct(o.total_travel_time_band, 10.0),
            delay_veh_h: pct(o.delay_band, 10.0),
            max_queue_m: pct(o.max_queue_band, 1.0),
            fog_too_fast_share: pct(o.fog_too_fast_band, 1000.0),
            members_not_cleared: o.members_not_cleared,
        },
        queue: o
            .queue
            .iter()
            .map(|q| QueuePoint {
                t_min: f64::from(q.t_s) / 60.0,
                direction: q.direction.as_str().into(),
                tail_m: q.tail_m.map(f64::round),
                length_m: q.length_m.round(),
            })
            .collect(),
        timespace: o
            .timespace
            .into_iter()
            .map(|g| TimeSpaceGrid {
                direction: g.direction.as_str().into(),
                step_min: grid_step_min,
                stakes_m: g.stakes_m.iter().map(|x| x.round()).collect(),
                speed_kmh: g
                    .speed_kmh
                    .into_iter()
                    .map(|row| {
                        row.into_iter()
                            .map(|v| v.is_finite().then_some(v))
                            .collect()
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The window of counts behind the demand (ms).
pub const FLOW_WINDOW_MS: i64 = 300_000;

/// Replaces each segment's flow by the mean of its two stations' counts
/// over the last [`FLOW_WINDOW_MS`] (veh/h), where both stations counted
/// and each count is within ¼–4× the tick's flow (a dead or chattering
/// detector keeps the estimator's flow, which leaves faulty lanes out).
pub fn mean_flows(road: &RoadBook, rows: &[zhilu_store::StationBucket], start: &mut TwinStart) {
    let per_h = 3_600_000.0 / FLOW_WINDOW_MS as f64;
    let mut volume: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for r in rows {
        let v = volume.entry(r.detector.as_str()).or_default();
        v.0 += r.volume;
        v.1 += r.samples;
    }
    let flow_at = |dir: Direction, stake: f64| -> Option<f64> {
        let d = road
            .detectors()
            .iter()
            .find(|d| d.direction == dir && (d.stake_m - stake).abs() < 1.0)?;
        let &(v, n) = volume.get(d.id.as_str())?;
        (n > 0).then(|| v as f64 * per_h)
    };
    for seg in &mut start.segments {
        if let (Some(a), Some(b)) = (
            flow_at(seg.direction, seg.from_m),
            flow_at(seg.direction, seg.to_m),
        ) {
            let now = seg.flow_vph.max(1.0);
            let plausible = |q: f64| (0.25 * now..=4.0 * now).contains(&q);
            if plausible(a) && plausible(b) {
                seg.flow_vph = 0.5 * (a + b);
            }
        }
    }
}

/// The twin's start from the state of the last tick (`columns`: from_m,
/// to_m, speed_kmh, flow_vph, density_vpkm per segment) and the open
/// events (incidents block lanes at their downstream end; fog keeps its
/// lowest visibility).
pub fn start_from(state: &StateView, events: &[zhilu_store::EventRow]) -> TwinStart {
    let mut start = TwinStart::default();
    for d in &state.directions {
        let Some(direction) = Direction::parse(d.direction) else {
            continue;
        };
        // A value that is not finite was written `null`, and skipped.
        for &[a, b, _, q, k] in &d.segments {
            if ![a, b, q, k].iter().all(|v| v.is_finite()) {
                continue;
            }
            start.segments.push(SegmentEstimate {
                direction,
                from_m: a.min(b),
                to_m: a.max(b),
                flow_vph: q,
                density_vpkm: k,
            });
        }
    }
    for e in events {
        let line: Value = serde_json::from_str(&e.json).unwrap_or(Value::Null);
        let dir = Direction::parse(&e.direction);
        match e.kind.as_str() {
            "incident" => {
                let Some(direction) = dir else { continue };
                // The blockage is at the queue's head: downstream end.
                let head = match direction {
                    Direction::Up => e.from_m.max(e.to_m),
                    Direction::Down => e.from_m.min(e.to_m),
                };
                let lanes = line["lanes_blocked"]
                    .as_u64()
                    .and_then(|l| u8::try_from(l).ok())
                    .filter(|&l| l > 0)
                    .unwrap_or(INCIDENT_LANES_DEFAULT);
                start.blocks.push(LaneBlock {
                    direction,
                    from_m: head,
                    to_m: head,
                    lanes,
                    until_s: None,
                });
            }
            "fog" => {
                if let Some(v) = line["visibility_m"].as_f64() {
                    start.fog.push(FogZone {
                        direction: dir,
                        from_m: e.from_m.min(e.to_m),
                        to_m: e.from_m.max(e.to_m),
                        visibility_m: v,
                    });
                }
            }
            _ => {}
        }
    }
    start
}

/// The twin's plan from device states: speed-limit signs and entries act,
/// other kinds are listed as ignored. Errors name the device.
pub fn twin_plan(
    road: &RoadBook,
    name: &str,
    states: &BTreeMap<String, DeviceState>,
    closures: &[LaneBlock],
) -> Result<(TwinPlan, Vec<String>), String> {
    let mut plan = TwinPlan {
        name: name.to_string(),
        closures: closures.to_vec(),
        ..TwinPlan::default()
    };
    let mut ignored = Vec::new();
    for (key, s) in states {
        // `T_GA:up` names one carriageway's entry of interchange `T_GA`.
        let (id, side) = match key.rsplit_once(':') {
            Some((id, d)) if Direction::parse(d).is_some() => (id, Direction::parse(d)),
            _ => (key.as_str(), None),
        };
        let kind = road
            .devices()
            .find(|d| road.device_id(*d) == id)
            .map(|d| d.kind)
            .ok_or_else(|| format!("plan `{name}`: no device `{id}` in the road book"))?;
        let id = &id.to_string();
        match (kind, s) {
            (DeviceKind::Vsl, DeviceState::SpeedLimit { limit_kmh }) => {
                plan.limits.push((id.clone(), Some(*limit_kmh)));
            }
            (DeviceKind::Vsl, DeviceState::Blank) => plan.limits.push((id.clone(), None)),
            (
                DeviceKind::Interchange,
                DeviceState::Entry {
                    state, direction, ..
                },
            ) => {
                let e = match state {
                    CoreEntry::Open => EntryState::Open,
                    CoreEntry::Metered => EntryState::Metered,
                    CoreEntry::Closed => EntryState::Closed,
                };
                plan.entries.push((id.clone(), direction.or(side), e));
            }
            (DeviceKind::Interchange, DeviceState::Blank) => {
                plan.entries.push((id.clone(), side, EntryState::Open));
            }
            (DeviceKind::Vsl | DeviceKind::Interchange, s) => {
                return Err(format!(
                    "plan `{name}`: `{id}` cannot show a {} state",
                    s.kind()
                ));
            }
            _ => ignored.push(id.clone()),
        }
    }
    Ok((plan, ignored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn road() -> RoadBook {
        let mut t = String::from(
            "[road]\nid = \"W\"\ntz = \"+08:00\"\ndirections = [\"up\"]\ngeometry = [[0, 116.0, 39.0], [5000, 116.0, 39.05]]\nlanes = 3\nspeed_limit_kmh = 120\n",
        );
        for i in 1..4 {
            t += &format!(
                "\n[[detector]]\nid = \"D{i}\"\ndirection = \"up\"\nstake_m = {}\n",
                i * 1000
            );
        }
        RoadBook::from_toml(&t, "ROAD.toml").unwrap()
    }

    fn bucket(detector: &str, volume: i64) -> zhilu_store::StationBucket {
        zhilu_store::StationBucket {
            bucket_ms: 0,
            detector: detector.into(),
            volume,
            speed_kmh: Some(90.0),
            occupancy_pct: Some(10.0),
            samples: 45,
        }
    }

    #[test]
    fn segment_flows_come_from_five_minutes_of_counts_unless_a_station_is_off() {
        // (counts at D1, D2, D3 over 5 min; expected flows of D1–D2 and D2–D3)
        let cases = [
            ((300, 250, 250), (3300.0, 3000.0)),
            // D3 counts nothing: the segment keeps the tick's flow.
            ((300, 250, 0), (3300.0, 2000.0)),
            // D1 counts ten times too many: kept too.
            ((3000, 250, 250), (2000.0, 3000.0)),
        ];
        for ((a, b, c), expect) in cases {
            let mut start = TwinStart::default();
            for (x, y) in [(1000.0, 2000.0), (2000.0, 3000.0)] {
                start.segments.push(SegmentEstimate {
                    direction: Direction::Up,
                    from_m: x,
                    to_m: y,
                    flow_vph: 2000.0,
                    density_vpkm: 60.0,
                });
            }
            let rows = [bucket("D1", a), bucket("D2", b), bucket("D3", c)];
            mean_flows(&road(), &rows, &mut start);
            let got = (start.segments[0].flow_vph, start.segments[1].flow_vph);
            assert_eq!(got, expect, "counts {a} {b} {c}");
        }
    }

    #[test]
    fn incidents_block_at_their_head_and_fog_keeps_its_visibility() {
        let row = |kind: &str, dir: &str, json: &str| zhilu_store::EventRow {
            id: "E1".into(),
            kind: kind.into(),
            direction: dir.into(),
            from_m: 2000.0,
            to_m: 4000.0,
            start_ms: 0,
            detected_ms: 0,
            end_ms: None,
            severity: 3,
            rule: "r".into(),
            key: "k".into(),
            json: json.into(),
            updated_wall_ms: 0,
        };
        let events = [
            row("incident", "up", "{}"),
            row("incident", "down", r#"{"lanes_blocked": 2}"#),
            row("fog", "both", r#"{"visibility_m": 45}"#),
            row("congestion", "up", "{}"),
        ];
        let s = start_from(&StateView::default(), &events);
        assert_eq!(s.blocks.len(), 2);
        assert_eq!((s.blocks[0].from_m, s.blocks[0].lanes), (4000.0, 1));
        assert_eq!((s.blocks[1].from_m, s.blocks[1].lanes), (2000.0, 2));
        assert_eq!(s.fog.len(), 1);
        assert_eq!((s.fog[0].direction, s.fog[0].visibility_m), (None, 45.0));
    }
}
