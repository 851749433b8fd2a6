//! Events and their lives.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zhilu_store::{AuditEntry, EventChangeRow, EventQuery, EventRow, NoteRow, WorkflowRow};

use crate::AppState;
use crate::engine::wall_ms;
use crate::flow::{self, Step, StepError};
use crate::stream::StreamKind;
use crate::views::{NoteView, ProposalView, WorkflowView};

use super::{ApiError, ApiResult, Caller, ErrorBody, Operator};

/// An event line as the API shows it: the stored line with its severity
/// class (`level`) and where it stands with the operators (`workflow`).
fn shown(st: &AppState, r: &EventRow, w: Option<&WorkflowRow>) -> Value {
    let mut v: Value = serde_json::from_str(&r.json).unwrap_or(Value::Null);
    flow::decorate(&mut v, &st.road);
    if let Value::Object(o) = &mut v {
        o.insert(
            "workflow".into(),
            serde_json::to_value(WorkflowView::of(w)).unwrap_or(Value::Null),
        );
    }
    v
}

/// Event filter.
#[derive(Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Only events still open.
    pub active: Option<bool>,
    /// Only this kind (`incident`, `fog`, …).
    pub kind: Option<String>,
    /// Only events updated or started at or after this data time (epoch ms).
    pub since_ms: Option<i64>,
    /// At most this many (default 1000).
    pub limit: Option<u32>,
}

/// Events, newest first (`?active=true` for the open ones), each with its
/// severity class (`level`: `critical`, `major`, `minor`, `info`) and its
/// `workflow` (acknowledged, assigned, closed by the operators).
#[utoipa::path(get, path = "/api/events", tag = "zhilu", params(EventsQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn events(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let rows = st
        .store
        .events(&EventQuery {
            active_only: q.active.unwrap_or(false),
            kind: q.kind,
            since_ms: q.since_ms,
            limit: q.limit.unwrap_or(1000).clamp(1, 10_000),
        })
        .await?;
    let wf: HashMap<String, WorkflowRow> = st
        .store
        .event_workflows()
        .await?
        .into_iter()
        .map(|w| (w.event_id.clone(), w))
        .collect();
    Ok(Json(
        rows.iter().map(|r| shown(&st, r, wf.get(&r.id))).collect(),
    ))
}

/// A step in an event's life: the brain's (`opened`, `updated` when
/// something an operator cares about changed, `ended`) or an operator's
/// (`acknowledged`, `assigned`, `note`, `closed`).
#[derive(Serialize, ToSchema)]
pub struct EventChange {
    /// Data time of the step (epoch ms).
    pub at_ms: i64,
    /// Who (an operator's step).
    pub by: Option<String>,
    /// `opened`, `updated`, `ended`, `acknowledged`, `assigned`, `note`,
    /// `closed`, `reopened` (by `system`: it got worse after a close).
    pub change: String,
    /// The severity class after a brain's line.
    pub level: Option<String>,
    /// The note, the reason to close, or the user assigned.
    pub text: Option<String>,
    /// When it was recorded (wall clock, epoch ms).
    pub wall_ms: i64,
    /// What changed since the line before: `extent`, `severity`, `band`,
    /// `lanes`, `status`.
    pub what: Vec<String>,
}

/// Lanes found blocked at an incident's detectors (占用车道).
#[derive(Serialize, ToSchema)]
pub struct LanesAt {
    /// Lanes blocked there (1-based, ascending).
    pub blocked: Vec<i16>,
    /// Detector id.
    pub detector: String,
    /// Lanes it reports.
    pub lanes: usize,
    /// Data time of the readings (epoch ms).
    pub ts_ms: i64,
}

/// An event and its life (fields in alphabetical order, as always written).
#[derive(Serialize, ToSchema)]
pub struct EventLife {
    /// Where its measures and thresholds come from: the law or standard,
    /// or the platform's rule (依据).
    pub basis: String,
    /// Its steps, oldest first.
    pub changes: Vec<EventChange>,
    /// The event as it stands (an `EVENTS.jsonl` record, `docs/EVENTS.md`,
    /// with `level` and `workflow`).
    #[schema(value_type = Object)]
    pub event: Value,
    /// An incident: the lanes blocked at its detectors by their latest
    /// readings (empty for other kinds).
    pub lanes: Vec<LanesAt>,
    /// Operators' notes, oldest first.
    pub notes: Vec<NoteView>,
    /// The proposals that answer it (its plan's steps), oldest first.
    pub proposals: Vec<ProposalView>,
    /// Where it stands with the operators.
    pub workflow: WorkflowView,
}

/// The lanes blocked at an incident's detectors, by the readings of the
/// last five minutes up to the event's end (or the latest tick).
async fn lanes_of(st: &AppState, v: &Value) -> ApiResult<Vec<LanesAt>> {
    if v["kind"] != "incident" {
        return Ok(Vec::new());
    }
    let until = match v["end"].as_str() {
        Some(t) => zhilu_contract::parse_time(t.as_bytes()).unwrap_or(i64::MAX),
        None => st
            .snapshot
            .read()
            .ok()
            .and_then(|s| s.last_tick_ms)
            .unwrap_or(i64::MAX),
    };
    let table = flow::LaneTable::default();
    let mut out = Vec::new();
    for d in v["evidence"]["detectors"].as_array().into_iter().flatten() {
        let Some(d) = d.as_str() else { continue };
        let from = if until == i64::MAX {
            i64::MIN
        } else {
            until - 300_000
        };
        let rows = st.store.detector_rows(d, from, until).await?;
        let Some(last) = rows.last().map(|r| r.ts_ms) else {
            continue;
        };
        let at: Vec<_> = rows
            .iter()
            .filter(|r| r.ts_ms == last)
            .map(|r| (r.lane, r.volume, r.speed_kmh, r.occupancy_pct))
            .collect();
        out.push(LanesAt {
            blocked: flow::blocked_lanes(&at, &table),
            detector: d.to_string(),
            lanes: at.len(),
            ts_ms: last,
        });
    }
    Ok(out)
}

/// The history lines as the API shows them: an operator's step with who
/// and what, the brain's with what changed since the line before.
fn changes_view(st: &AppState, rows: Vec<EventChangeRow>) -> Vec<EventChange> {
    let table = flow::HistoryTable::default();
    let mut last: Option<Value> = None;
    rows.into_iter()
        .map(|c| {
            let v: Value = serde_json::from_str(&c.json).unwrap_or(Value::Null);
            let brain = matches!(c.change.as_str(), "opened" | "updated" | "ended");
            let level = brain.then(|| flow::level(&v, &st.road).as_str().to_string());
            let (by, text, what) = if brain {
                let what = match (&last, c.change.as_str()) {
                    (Some(l), "updated") => flow::what_changed(l, &v, &st.road, &table)
                        .into_iter()
                        .map(String::from)
                        .collect(),
                    _ => Vec::new(),
                };
                last = Some(v);
                (None, None, what)
            } else {
                (
                    v["by"].as_str().map(String::from),
                    v["text"].as_str().map(String::from),
                    Vec::new(),
                )
            };
            EventChange {
                at_ms: c.at_ms,
                by,
                change: c.change,
                level,
                text,
                wall_ms: c.wall_ms,
                what,
            }
        })
        .collect()
}

/// One event with its life (opened, updated, ended, the operators' steps),
/// its notes, proposals, blocked lanes and legal basis.
#[utoipa::path(get, path = "/api/events/{id}", tag = "zhilu", params(("id" = String, Path, description = "E17")), security(("bearer" = [])),
    responses((status = 200, body = EventLife), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn event(
    State(st): State<AppState>,
    _c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<EventLife>> {
    let e = st
        .store
        .event(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    let changes = st.store.event_changes(&id).await?;
    let w = st.store.event_workflow(&id).await?;
    let event = shown(&st, &e, w.as_ref());
    let lanes = lanes_of(&st, &event).await?;
    Ok(Json(EventLife {
        basis: flow::basis(&e.kind).to_string(),
        changes: changes_view(&st, changes),
        lanes,
        notes: st
            .store
            .event_notes(&id)
            .await?
            .iter()
            .map(NoteView::of)
            .collect(),
        proposals: st
            .store
            .proposals_for_event(&id)
            .await?
            .iter()
            .map(ProposalView::of)
            .collect(),
        workflow: WorkflowView::of(w.as_ref()),
        event,
    }))
}

/// An operator's step on an event.
#[derive(Deserialize, ToSchema, Default)]
pub struct StepBody {
    /// `assign`: the user it goes to.
    pub user: Option<String>,
    /// `note`: the text.
    pub text: Option<String>,
    /// `close`: why (required).
    pub reason: Option<String>,
}

/// The answer to a step: where the event now stands.
#[derive(Serialize, ToSchema)]
pub struct StepAnswer {
    /// The event (with `level` and `workflow`).
    #[schema(value_type = Object)]
    pub event: Value,
    /// Said when an event is closed that the brain still detects: it stays
    /// in the active list, its measures stay until the brain ends it.
    pub warning: Option<String>,
    /// Where it stands with the operators.
    pub workflow: WorkflowView,
}

impl From<StepError> for ApiError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Closed(..) | StepError::AlreadyAcked(..) => {
                ApiError::Conflict(e.to_string())
            }
            StepError::Empty(_) | StepError::TooLong(..) => ApiError::Unprocessable(e.to_string()),
        }
    }
}

/// Takes one operator step: checks it against where the event stands,
/// then writes the workflow, the history line, the note and the audit
/// entry together, and tells the stream.
async fn take_step(st: &AppState, c: &Caller, id: &str, step: Step) -> ApiResult<Json<StepAnswer>> {
    let e = st
        .store
        .event(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    let now = wall_ms();
    let cur = st.store.event_workflow(id).await?;
    let mut warning = None;
    match &step {
        Step::Assign(user) => {
            let u = st.store.user(user.trim()).await?;
            if u.is_none_or(|u| u.disabled) {
                return Err(ApiError::Unprocessable(format!(
                    "no active user {:?} to assign {id} to",
                    user.trim()
                )));
            }
        }
        Step::Close(_) => {
            // Closing must never make a safety proposal lapse unseen: its
            // pending proposals are decided first.
            let pending: Vec<String> = st
                .store
                .proposals_for_event(id)
                .await?
                .iter()
                .filter(|p| p.status == "pending")
                .map(|p| format!("P{}", p.id))
                .collect();
            if !pending.is_empty() && cur.as_ref().is_none_or(|w| w.status != "closed") {
                return Err(ApiError::Conflict(format!(
                    "{id} has proposals waiting for a decision ({}): decide them before closing",
                    pending.join(", ")
                )));
            }
            if e.end_ms.is_none() {
                warning = Some(format!(
                    "{id} is still detected: it stays in the active list and its measures stay \
                     until the brain ends it; it reopens if it gets worse"
                ));
            }
        }
        Step::Ack | Step::Note(_) => {}
    }
    let w = flow::apply(cur.as_ref(), id, &step, &c.name, now)?;
    let (change, action) = step.names();
    let (text, detail) = match &step {
        Step::Ack => (None, json!({})),
        Step::Assign(u) => (Some(u.trim().to_string()), json!({"user": u.trim()})),
        Step::Note(t) => (Some(t.trim().to_string()), json!({"text": t.trim()})),
        Step::Close(r) => (
            Some(r.trim().to_string()),
            json!({"reason": r.trim(), "still_detected": e.end_ms.is_none()}),
        ),
    };
    let at_ms = st
        .snapshot
        .read()
        .ok()
        .and_then(|s| s.last_tick_ms)
        .unwrap_or(e.detected_ms);
    let row = EventChangeRow {
        event_id: id.to_string(),
        change: change.into(),
        at_ms,
        wall_ms: now,
        json: json!({"by": c.name, "text": text}).to_string(),
    };
    let note = match &step {
        Step::Note(t) => Some(NoteRow {
            seq: 0,
            event_id: id.to_string(),
            wall_ms: now,
            author: c.name.clone(),
            text: t.trim().to_string(),
        }),
        _ => None,
    };
    let audit = AuditEntry {
        seq: 0,
        wall_ms: now,
        actor: c.name.clone(),
        action: action.into(),
        target: id.to_string(),
        detail: detail.to_string(),
    };
    st.store
        .record_workflow(&w, &row, note.as_ref(), &audit)
        .await?;
    let event = shown(st, &e, Some(&w));
    st.hub.publish(
        StreamKind::Event,
        json!({"change": change, "tick_ms": at_ms, "by": c.name, "event": event}).to_string(),
    );
    Ok(Json(StepAnswer {
        event,
        warning,
        workflow: WorkflowView::of(Some(&w)),
    }))
}

/// Acknowledge an event (确认): once; not after it is closed.
#[utoipa::path(post, path = "/api/events/{id}/ack", tag = "zhilu", params(("id" = String, Path, description = "E17")), security(("bearer" = [])),
    responses((status = 200, body = StepAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn ack(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<StepAnswer>> {
    take_step(&st, &c, &id, Step::Ack).await
}

/// Assign an event to a user (指派): `{"user": "patrol1"}`.
#[utoipa::path(post, path = "/api/events/{id}/assign", tag = "zhilu", params(("id" = String, Path, description = "E17")), request_body = StepBody, security(("bearer" = [])),
    responses((status = 200, body = StepAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn assign(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(b): Json<StepBody>,
) -> ApiResult<Json<StepAnswer>> {
    take_step(&st, &c, &id, Step::Assign(b.user.unwrap_or_default())).await
}

/// Add a note to an event (备注): `{"text": "..."}`; also after closing.
#[utoipa::path(post, path = "/api/events/{id}/note", tag = "zhilu", params(("id" = String, Path, description = "E17")), request_body = StepBody, security(("bearer" = [])),
    responses((status = 200, body = StepAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn note(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(b): Json<StepBody>,
) -> ApiResult<Json<StepAnswer>> {
    take_step(&st, &c, &id, Step::Note(b.text.unwrap_or_default())).await
}

/// Close an event (关闭): `{"reason": "..."}` required; refused while its
/// proposals wait for a decision. An event the brain still detects stays
/// active (and its measures stay) until the brain ends it.
#[utoipa::path(post, path = "/api/events/{id}/close", tag = "zhilu", params(("id" = String, Path, description = "E17")), request_body = StepBody, security(("bearer" = [])),
    responses((status = 200, body = StepAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn close(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(b): Json<StepBody>,
) -> ApiResult<Json<StepAnswer>> {
    take_step(&st, &c, &id, Step::Close(b.reason.unwrap_or_default())).await
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(event))
        .routes(routes!(ack))
        .routes(routes!(assign))
        .routes(routes!(note))
        .routes(routes!(close))
}
