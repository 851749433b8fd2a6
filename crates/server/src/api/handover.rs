//! The shift handover (交接班): the log of the shift since the last signed
//! handover, signed by the outgoing operator and acknowledged by the
//! incoming one. The log is built from what is stored (the events' history
//! lines, notes, proposals, devices), so it is the same after a restart.

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zhilu_store::{AuditEntry, EventQuery, HandoverRow};

use crate::AppState;
use crate::engine::wall_ms;
use crate::flow;
use crate::views::{HandoverView, ProposalView, WorkflowView};

use super::{ApiError, ApiResult, Caller, ErrorBody, Operator};

/// An event in the shift's log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogEvent {
    /// Data time of the line (epoch ms).
    pub at_ms: i64,
    /// `up`, `down`, `both`.
    pub direction: String,
    /// Extent (m).
    pub from_m: f64,
    /// `E17`.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Severity class.
    pub level: String,
    /// Extent (m).
    pub to_m: f64,
    /// When (wall clock, epoch ms).
    pub wall_ms: i64,
}

/// An operator's step in the shift's log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogStep {
    /// Who.
    pub by: String,
    /// `acknowledged`, `assigned`, `note`, `closed`.
    pub change: String,
    /// `E17`.
    pub event: String,
    /// The note, the reason or the user assigned.
    pub text: Option<String>,
    /// When (wall clock, epoch ms).
    pub wall_ms: i64,
}

/// The shift's log (交接班记录): what happened since the last signed
/// handover and what is handed over.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShiftLog {
    /// Proposals decided during the shift (by people, or by their deadline).
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<Value>,
    /// Devices offline now.
    pub devices_offline: Vec<String>,
    /// Events that ended during the shift.
    pub ended: Vec<LogEvent>,
    /// Device and detector faults and terminal alarms raised during the shift.
    pub faults: Vec<LogEvent>,
    /// Start of the shift (wall clock, epoch ms; 0 before the first handover).
    pub from_ms: i64,
    /// Events still open, worst first (with `level` and `workflow`): handed over.
    #[schema(value_type = Vec<Object>)]
    pub open_now: Vec<Value>,
    /// Events opened during the shift.
    pub opened: Vec<LogEvent>,
    /// Proposals waiting for a decision: handed over.
    #[schema(value_type = Vec<Object>)]
    pub pending: Vec<Value>,
    /// The operators' steps (acknowledge, assign, note, close), in order.
    pub steps: Vec<LogStep>,
    /// End of the log (wall clock, epoch ms).
    pub until_ms: i64,
}

/// The handover now: the last one signed and the log since.
#[derive(Serialize, ToSchema)]
pub struct HandoverNow {
    /// The last signed handover (without its log).
    pub last: Option<HandoverView>,
    /// The shift's log since then.
    pub log: ShiftLog,
}

const FAULT_KINDS: [&str; 4] = [
    "detector_fault",
    "device_out_of_plan",
    "terminal_alarm",
    "source_clock",
];

fn log_event(st: &AppState, id: &str, at_ms: i64, wall_ms: i64, v: &Value) -> LogEvent {
    LogEvent {
        at_ms,
        direction: v["direction"].as_str().unwrap_or("").into(),
        from_m: v["from_m"].as_f64().unwrap_or(0.0),
        id: id.into(),
        kind: v["kind"].as_str().unwrap_or("").into(),
        level: flow::level(v, &st.road).as_str().into(),
        to_m: v["to_m"].as_f64().unwrap_or(0.0),
        wall_ms,
    }
}

/// The shift's log from `from_ms` to now.
async fn shift_log(st: &AppState, from_ms: i64) -> ApiResult<ShiftLog> {
    let until_ms = wall_ms();
    let mut log = ShiftLog {
        decisions: Vec::new(),
        devices_offline: Vec::new(),
        ended: Vec::new(),
        faults: Vec::new(),
        from_ms,
        open_now: Vec::new(),
        opened: Vec::new(),
        pending: Vec::new(),
        steps: Vec::new(),
        until_ms,
    };
    let mut seen_open: HashSet<String> = HashSet::new();
    for c in st.store.changes_since(from_ms, 10_000).await? {
        let v: Value = serde_json::from_str(&c.json).unwrap_or(Value::Null);
        match c.change.as_str() {
            "opened" => {
                // A restart writes the open events again: once per shift.
                if !seen_open.insert(c.event_id.clone()) {
                    continue;
                }
                let e = log_event(st, &c.event_id, c.at_ms, c.wall_ms, &v);
                if FAULT_KINDS.contains(&e.kind.as_str()) {
                    log.faults.push(e);
                } else {
                    log.opened.push(e);
                }
            }
            "ended" => log
                .ended
                .push(log_event(st, &c.event_id, c.at_ms, c.wall_ms, &v)),
            _ => log.steps.push(LogStep {
                by: v["by"].as_str().unwrap_or("").into(),
                change: c.change,
                event: c.event_id,
                text: v["text"].as_str().map(String::from),
                wall_ms: c.wall_ms,
            }),
        }
    }
    for p in st.store.proposals_decided_since(from_ms).await? {
        log.decisions
            .push(serde_json::to_value(ProposalView::of(&p)).unwrap_or(Value::Null));
    }
    for p in st.store.proposals(Some("pending")).await? {
        log.pending
            .push(serde_json::to_value(ProposalView::of(&p)).unwrap_or(Value::Null));
    }
    log.devices_offline = st
        .store
        .device_states()
        .await?
        .into_iter()
        .filter(|d| !d.online)
        .map(|d| d.device)
        .collect();
    let wf: std::collections::HashMap<String, zhilu_store::WorkflowRow> = st
        .store
        .event_workflows()
        .await?
        .into_iter()
        .map(|w| (w.event_id.clone(), w))
        .collect();
    let open = st
        .store
        .events(&EventQuery {
            active_only: true,
            kind: None,
            since_ms: None,
            limit: 10_000,
        })
        .await?;
    let mut open: Vec<(zhilu_core::event::Severity, i64, Value)> = open
        .iter()
        .map(|r| {
            let mut v: Value = serde_json::from_str(&r.json).unwrap_or(Value::Null);
            let l = flow::level(&v, &st.road);
            flow::decorate(&mut v, &st.road);
            v["workflow"] =
                serde_json::to_value(WorkflowView::of(wf.get(&r.id))).unwrap_or(Value::Null);
            (l, -r.detected_ms, v)
        })
        .collect();
    open.sort_by_key(|o| (o.0, o.1));
    log.open_now = open.into_iter().map(|o| o.2).collect();
    Ok(log)
}

/// The shift's log since the last signed handover, and that handover.
#[utoipa::path(get, path = "/api/handover", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = HandoverNow), (status = 401, body = ErrorBody)))]
async fn handover_now(State(st): State<AppState>, _c: Caller) -> ApiResult<Json<HandoverNow>> {
    let last = st.store.last_handover().await?;
    let from = last.as_ref().map_or(0, |h| h.signed_wall_ms);
    let log = shift_log(&st, from).await?;
    Ok(Json(HandoverNow {
        last: last.as_ref().map(|h| {
            let mut v = HandoverView::of(h);
            v.log = Value::Null;
            v
        }),
        log,
    }))
}

/// Signed handovers, newest first (the last 100).
#[utoipa::path(get, path = "/api/handovers", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = Vec<HandoverView>), (status = 401, body = ErrorBody)))]
async fn handovers(State(st): State<AppState>, _c: Caller) -> ApiResult<Json<Vec<HandoverView>>> {
    Ok(Json(
        st.store
            .handovers(100)
            .await?
            .iter()
            .map(HandoverView::of)
            .collect(),
    ))
}

/// A handover's note.
#[derive(Deserialize, ToSchema, Default)]
pub struct HandoverBody {
    /// The outgoing (sign) or incoming (acknowledge) operator's note.
    pub note: Option<String>,
}

fn note_of(b: &HandoverBody) -> ApiResult<String> {
    let n = b.note.as_deref().unwrap_or("").trim().to_string();
    if n.chars().count() > flow::MAX_TEXT {
        return Err(ApiError::Unprocessable(format!(
            "a note is longer than {} characters",
            flow::MAX_TEXT
        )));
    }
    Ok(n)
}

fn handover_id(s: &str) -> ApiResult<i64> {
    s.strip_prefix('H')
        .unwrap_or(s)
        .parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no handover {s}")))
}

/// The outgoing operator signs the shift's log (交班): it is stored as it
/// stands, and the next shift's log starts now.
#[utoipa::path(post, path = "/api/handover/sign", tag = "zhilu", request_body = HandoverBody, security(("bearer" = [])),
    responses((status = 200, body = HandoverView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn sign(
    State(st): State<AppState>,
    Operator(c): Operator,
    Json(b): Json<HandoverBody>,
) -> ApiResult<Json<HandoverView>> {
    let note = note_of(&b)?;
    let from = st
        .store
        .last_handover()
        .await?
        .map_or(0, |h| h.signed_wall_ms);
    let log = shift_log(&st, from).await?;
    let row = HandoverRow {
        id: 0,
        from_wall_ms: from,
        signed_wall_ms: log.until_ms,
        signed_by: c.name.clone(),
        note: note.clone(),
        log_json: serde_json::to_string(&log).unwrap_or_default(),
        ..HandoverRow::default()
    };
    let audit = AuditEntry {
        seq: 0,
        wall_ms: log.until_ms,
        actor: c.name.clone(),
        action: "handover.sign".into(),
        target: String::new(),
        detail: json!({"note": note, "from_ms": from, "open": log.open_now.len(),
            "pending": log.pending.len()})
        .to_string(),
    };
    let stored = st.store.sign_handover(&row, &audit).await?;
    Ok(Json(HandoverView::of(&stored)))
}

/// The incoming operator acknowledges a handover (接班): once, and not by
/// the operator who signed it.
#[utoipa::path(post, path = "/api/handover/{id}/ack", tag = "zhilu", params(("id" = String, Path, description = "H3")), request_body = HandoverBody, security(("bearer" = [])),
    responses((status = 200, body = HandoverView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn ack(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(b): Json<HandoverBody>,
) -> ApiResult<Json<HandoverView>> {
    let n = handover_id(&id)?;
    let note = note_of(&b)?;
    let h = st
        .store
        .handover(n)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no handover {id}")))?;
    if h.signed_by == c.name {
        return Err(ApiError::Unprocessable(format!(
            "H{n} was signed by {}: the incoming operator acknowledges it",
            h.signed_by
        )));
    }
    let now = wall_ms();
    let audit = AuditEntry {
        seq: 0,
        wall_ms: now,
        actor: c.name.clone(),
        action: "handover.ack".into(),
        target: format!("H{n}"),
        detail: json!({"note": note, "signed_by": h.signed_by}).to_string(),
    };
    let note = (!note.is_empty()).then_some(note);
    let done = st
        .store
        .ack_handover(n, &c.name, now, note.as_deref(), &audit)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "H{n} was already acknowledged by {}",
                h.acked_by.clone().unwrap_or_else(|| "someone".into())
            ))
        })?;
    Ok(Json(HandoverView::of(&done)))
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handover_now))
        .routes(routes!(handovers))
        .routes(routes!(sign))
        .routes(routes!(ack))
}
