//! Response plans (处置预案): the brain's proposals for one event as one
//! plan, and operators' decisions on a whole plan or some of its steps.
//! A plan is a view over its steps, which are proposals: the proposal
//! endpoints keep working on them one by one.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::oneshot;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Role;
use crate::engine::{Msg, Verdict};
use crate::views::PlanView;

use super::{ApiError, ApiResult, Caller, ErrorBody, Operator};

/// Plan filter.
#[derive(Deserialize, IntoParams)]
pub struct PlansQuery {
    /// `pending`, `approved`, `partial`, `rejected`, `closed`; all when absent.
    pub status: Option<String>,
    /// At most this many (default 200, newest first).
    pub limit: Option<u32>,
    /// Only the plans answering this event (`E17`): an event's card shows its plan.
    pub event: Option<String>,
}

const STATUSES: [&str; 5] = ["pending", "approved", "partial", "rejected", "closed"];

/// The views of stored plans (steps and events read in two queries).
async fn views(st: &AppState, rows: &[zhilu_store::PlanRow]) -> ApiResult<Vec<PlanView>> {
    let ids: Vec<i64> = rows.iter().map(|p| p.id).collect();
    let steps = st.store.plan_steps(&ids).await?;
    let mut events: std::collections::HashMap<String, zhilu_store::EventRow> =
        std::collections::HashMap::new();
    for p in rows {
        if let Some(e) = &p.event_id
            && !events.contains_key(e)
            && let Some(row) = st.store.event(e).await?
        {
            events.insert(e.clone(), row);
        }
    }
    Ok(rows
        .iter()
        .map(|p| {
            let ev = p.event_id.as_ref().and_then(|e| events.get(e));
            PlanView::of(p, &steps, ev, &st.road)
        })
        .collect())
}

/// Response plans, newest first: each with its name, event and steps.
#[utoipa::path(get, path = "/api/plans", tag = "zhilu", params(PlansQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<PlanView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn plans(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<PlansQuery>,
) -> ApiResult<Json<Vec<PlanView>>> {
    if let Some(s) = q.status.as_deref()
        && !STATUSES.contains(&s)
    {
        return Err(ApiError::Unprocessable(format!(
            "unknown plan status `{s}`, expected one of {}",
            STATUSES.join(", ")
        )));
    }
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let pending = q.status.as_deref() == Some("pending");
    // Statuses other than `pending` are derived from the steps: filter here.
    let rows = st.store.plans(pending, q.event.as_deref(), limit).await?;
    let mut out = views(&st, &rows).await?;
    if let Some(s) = q.status.as_deref() {
        out.retain(|p| p.status == s);
    }
    Ok(Json(out))
}

fn plan_id(s: &str) -> ApiResult<i64> {
    s.strip_prefix("PL")
        .unwrap_or(s)
        .parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no plan {s}")))
}

fn step_id(s: &str) -> Option<i64> {
    s.strip_prefix('P')
        .unwrap_or(s)
        .parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
}

async fn load(st: &AppState, id: &str) -> ApiResult<PlanView> {
    let n = plan_id(id)?;
    let row = st
        .store
        .plan(n)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no plan {id}")))?;
    let mut v = views(st, std::slice::from_ref(&row)).await?;
    Ok(v.remove(0))
}

/// One response plan with its steps.
#[utoipa::path(get, path = "/api/plans/{id}", tag = "zhilu", params(("id" = String, Path, description = "PL12")), security(("bearer" = [])),
    responses((status = 200, body = PlanView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn plan(
    State(st): State<AppState>,
    _c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanView>> {
    Ok(Json(load(&st, &id).await?))
}

/// An operator's decision on a plan.
#[derive(Deserialize, ToSchema, Default)]
pub struct PlanDecisionBody {
    /// The steps to decide (`["P12", "P14"]`); absent or empty: every
    /// pending step. Each listed step must be a pending step of the plan.
    #[serde(default)]
    pub steps: Vec<String>,
    /// For an edit: the one step to change (`"P12"`).
    pub step: Option<String>,
    /// Why (required to reject or edit).
    pub reason: Option<String>,
    /// For an edit: the new value, e.g. `{"value": "metered"}` or `{"value": 40}`.
    #[schema(value_type = Option<Object>)]
    pub edit: Option<Value>,
}

async fn decide(
    st: &AppState,
    c: &Caller,
    id: &str,
    verdict: Verdict,
    b: PlanDecisionBody,
) -> ApiResult<Json<PlanView>> {
    c.require(Role::Operator)?;
    let view = load(st, id).await?;
    let plan = plan_id(id)?;
    let reason = b
        .reason
        .map(|r| r.chars().take(500).collect::<String>())
        .filter(|r| !r.trim().is_empty());
    if !matches!(verdict, Verdict::Approve) && reason.is_none() {
        return Err(ApiError::Unprocessable(
            "a reason is required to reject or edit".into(),
        ));
    }
    let listed: Vec<String> = match (&verdict, b.step) {
        (Verdict::Edit(_), Some(s)) => vec![s],
        (Verdict::Edit(_), None) => {
            return Err(ApiError::Unprocessable(
                "an edit names its step: \"step\": \"P12\"".into(),
            ));
        }
        _ => b.steps,
    };
    let mut steps = Vec::new();
    for s in &listed {
        let n = step_id(s)
            .filter(|n| view.steps.iter().any(|x| x.id == format!("P{n}")))
            .ok_or_else(|| {
                ApiError::Unprocessable(format!("{s} is not a step of plan {}", view.id))
            })?;
        if !steps.contains(&n) {
            steps.push(n);
        }
    }
    if steps.is_empty() {
        steps = view
            .steps
            .iter()
            .filter(|s| s.status == "pending")
            .filter_map(|s| step_id(&s.id))
            .collect();
        if steps.is_empty() {
            return Err(ApiError::Conflict(format!(
                "plan {} has no pending step (it is {})",
                view.id, view.status
            )));
        }
    }
    let (tx, rx) = oneshot::channel();
    st.engine
        .send(Msg::DecidePlan {
            plan,
            steps,
            verdict,
            by: c.name.clone(),
            reason,
            reply: tx,
        })
        .await
        .map_err(|_| ApiError::unavailable("engine stopped"))?;
    rx.await
        .map_err(|_| ApiError::unavailable("engine stopped"))??;
    Ok(Json(load(st, id).await?))
}

/// Approve a plan: every pending step, or the steps listed; their commands
/// go to the devices.
#[utoipa::path(post, path = "/api/plans/{id}/approve", tag = "zhilu", params(("id" = String, Path, description = "PL12")), request_body = PlanDecisionBody, security(("bearer" = [])),
    responses((status = 200, body = PlanView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn approve(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(b): Json<PlanDecisionBody>,
) -> ApiResult<Json<PlanView>> {
    decide(&st, &c, &id, Verdict::Approve, b).await
}

/// Reject a plan: every pending step, or the steps listed (a reason is
/// required); nothing is sent for them.
#[utoipa::path(post, path = "/api/plans/{id}/reject", tag = "zhilu", params(("id" = String, Path, description = "PL12")), request_body = PlanDecisionBody, security(("bearer" = [])),
    responses((status = 200, body = PlanView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reject(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(b): Json<PlanDecisionBody>,
) -> ApiResult<Json<PlanView>> {
    decide(&st, &c, &id, Verdict::Reject, b).await
}

/// Apply one step of a plan with a changed state (`step`, `edit`, and a
/// reason): the same lawfulness checks as a proposal's edit.
#[utoipa::path(post, path = "/api/plans/{id}/edit", tag = "zhilu", params(("id" = String, Path, description = "PL12")), request_body = PlanDecisionBody, security(("bearer" = [])),
    responses((status = 200, body = PlanView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn edit(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(mut b): Json<PlanDecisionBody>,
) -> ApiResult<Json<PlanView>> {
    let Some(e) = b.edit.take() else {
        return Err(ApiError::Unprocessable(
            "an edit needs \"edit\": {\"value\": ...}".into(),
        ));
    };
    decide(&st, &c, &id, Verdict::Edit(e), b).await
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plans))
        .routes(routes!(plan))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(edit))
}
