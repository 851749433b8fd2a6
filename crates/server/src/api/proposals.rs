//! Proposals and operators' decisions on them (approve, reject, edit).

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
use crate::engine::{Msg, Verdict, proposal_json};

use super::{ApiError, ApiResult, Caller, ErrorBody, Operator};

/// Proposal filter.
#[derive(Deserialize, IntoParams)]
pub struct ProposalsQuery {
    /// `pending`, `approved`, `edited`, `rejected`, `expired`, `superseded`.
    pub status: Option<String>,
}

/// Proposals waiting for (or decided by) an operator.
#[utoipa::path(get, path = "/api/proposals", tag = "zhilu", params(ProposalsQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn proposals(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<ProposalsQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let rows = st.store.proposals(q.status.as_deref()).await?;
    Ok(Json(
        rows.iter()
            .map(|p| serde_json::from_str(&proposal_json(p)).unwrap_or(Value::Null))
            .collect(),
    ))
}

/// An operator's decision.
#[derive(Deserialize, ToSchema, Default)]
pub struct DecisionBody {
    /// Why (required to reject or edit).
    pub reason: Option<String>,
    /// For an edit: the new value, e.g. `{"value": 40}` or `{"text": "..."}`.
    #[schema(value_type = Option<Object>)]
    pub edit: Option<Value>,
}

fn proposal_id(s: &str) -> ApiResult<i64> {
    s.strip_prefix('P')
        .unwrap_or(s)
        .parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no proposal {s}")))
}

async fn decide(
    st: &AppState,
    c: &Caller,
    id: &str,
    verdict: Verdict,
    reason: Option<String>,
) -> ApiResult<Json<Value>> {
    c.require(Role::Operator)?;
    let id = proposal_id(id)?;
    let reason = reason
        .map(|r| r.chars().take(500).collect::<String>())
        .filter(|r| !r.trim().is_empty());
    if !matches!(verdict, Verdict::Approve) && reason.is_none() {
        return Err(ApiError::Unprocessable(
            "a reason is required to reject or edit".into(),
        ));
    }
    let (tx, rx) = oneshot::channel();
    st.engine
        .send(Msg::Decide {
            id,
            verdict,
            by: c.name.clone(),
            reason,
            reply: tx,
        })
        .await
        .map_err(|_| ApiError::unavailable("engine stopped"))?;
    let p = rx
        .await
        .map_err(|_| ApiError::unavailable("engine stopped"))??;
    Ok(Json(
        serde_json::from_str(&proposal_json(&p)).unwrap_or(Value::Null),
    ))
}

/// Approve a proposal: the command goes to the device.
#[utoipa::path(post, path = "/api/proposals/{id}/approve", tag = "zhilu", params(("id" = String, Path, description = "P12")), request_body = DecisionBody, security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn approve(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(b): Json<DecisionBody>,
) -> ApiResult<Json<Value>> {
    decide(&st, &c, &id, Verdict::Approve, b.reason).await
}

/// Reject a proposal (a reason is required).
#[utoipa::path(post, path = "/api/proposals/{id}/reject", tag = "zhilu", params(("id" = String, Path, description = "P12")), request_body = DecisionBody, security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reject(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(b): Json<DecisionBody>,
) -> ApiResult<Json<Value>> {
    decide(&st, &c, &id, Verdict::Reject, b.reason).await
}

/// Apply a proposal with a changed value (a reason is required).
#[utoipa::path(post, path = "/api/proposals/{id}/edit", tag = "zhilu", params(("id" = String, Path, description = "P12")), request_body = DecisionBody, security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn edit(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    Json(b): Json<DecisionBody>,
) -> ApiResult<Json<Value>> {
    let Some(e) = b.edit else {
        return Err(ApiError::Unprocessable(
            "an edit needs \"edit\": {\"value\": ...}".into(),
        ));
    };
    decide(&st, &c, &id, Verdict::Edit(e), b.reason).await
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(proposals))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(edit))
}
