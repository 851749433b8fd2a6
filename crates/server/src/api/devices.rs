//! Devices with the state they confirmed, and the commands decided.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::engine::device_json;

use super::{ApiResult, Caller, ErrorBody};

/// Every device with the state it last confirmed.
#[utoipa::path(get, path = "/api/devices", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody)))]
async fn devices(State(st): State<AppState>, _c: Caller) -> ApiResult<Json<Vec<Value>>> {
    let rows = st.store.device_states().await?;
    let mut known: std::collections::HashMap<String, Value> = rows
        .iter()
        .map(|r| {
            (
                r.device.clone(),
                serde_json::from_str(&device_json(r)).unwrap_or(Value::Null),
            )
        })
        .collect();
    // Devices of the road book never heard of yet are listed too (those
    // that take commands: detectors and weather stations are sources).
    let mut out = Vec::new();
    for d in st
        .road
        .devices()
        .filter(|d| zhilu_devices::commandable(d.kind))
    {
        let id = st.road.device_id(d);
        out.push(known.remove(id).unwrap_or_else(|| json!({"device": id, "state": null, "online": false, "confirmed_ms": null, "last_seen_ms": null, "pending": null})));
    }
    out.extend(known.into_values());
    Ok(Json(out))
}

/// List filter.
#[derive(Deserialize, IntoParams)]
pub struct LimitQuery {
    /// At most this many (default 500).
    pub limit: Option<u32>,
}

/// Commands decided, newest first.
#[utoipa::path(get, path = "/api/actions", tag = "zhilu", params(LimitQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn actions(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let rows = st
        .store
        .actions(None, q.limit.unwrap_or(500).clamp(1, 10_000))
        .await?;
    Ok(Json(
        rows.iter()
            .map(|a| json!({"id": a.id, "mode": a.mode, "proposal": a.proposal_id.map(|p| format!("P{p}")), "wall_ms": a.wall_ms, "command": serde_json::from_str::<Value>(&a.json).unwrap_or(Value::Null)}))
            .collect(),
    ))
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(devices))
        .routes(routes!(actions))
}
