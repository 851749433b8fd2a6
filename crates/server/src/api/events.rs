//! Events and their lives.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zhilu_store::EventQuery;

use crate::AppState;

use super::{ApiError, ApiResult, Caller, ErrorBody};

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

/// Events, newest first (`?active=true` for the open ones).
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
    Ok(Json(
        rows.iter()
            .map(|r| serde_json::from_str(&r.json).unwrap_or(Value::Null))
            .collect(),
    ))
}

/// One event with its life (opened, updated, ended).
#[utoipa::path(get, path = "/api/events/{id}", tag = "zhilu", params(("id" = String, Path, description = "E17")), security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn event(
    State(st): State<AppState>,
    _c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let e = st
        .store
        .event(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    let changes = st.store.event_changes(&id).await?;
    Ok(Json(json!({
        "event": serde_json::from_str::<Value>(&e.json).unwrap_or(Value::Null),
        "changes": changes.iter().map(|c| json!({"change": c.change, "at_ms": c.at_ms, "wall_ms": c.wall_ms})).collect::<Vec<_>>(),
    })))
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(event))
}
