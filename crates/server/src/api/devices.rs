//! Devices with the state they confirmed, and the commands decided.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

use super::{ApiResult, Caller, ErrorBody};
use crate::views::DeviceView;

/// Every device with the state it last confirmed.
#[utoipa::path(get, path = "/api/devices", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceView>), (status = 401, body = ErrorBody)))]
async fn devices(State(st): State<AppState>, _c: Caller) -> ApiResult<Json<Vec<DeviceView>>> {
    let rows = st.store.device_states().await?;
    let mut known: std::collections::HashMap<String, DeviceView> = rows
        .iter()
        .map(|r| (r.device.clone(), DeviceView::of(r)))
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
        out.push(known.remove(id).unwrap_or_else(|| DeviceView::unheard(id)));
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

/// A command decided (fields in alphabetical order, as always written).
#[derive(Serialize, ToSchema)]
pub struct ActionView {
    /// Whether the command was sent: `false` for the record of a proposal
    /// (`mode` `confirm`), which nothing applies until an operator decides
    /// (the decision is then an action of its own, mode `confirmed`).
    pub applied: bool,
    /// The command, e.g. `{"action": "speed_limit", "device": "VSL-01", "value": 60, …}`,
    /// with its reason's `reason_code` beside the `reason` text.
    #[schema(value_type = Object)]
    pub command: Value,
    /// Action id.
    pub id: i64,
    /// `auto` (applied by the brain), `confirm` (proposed, not applied),
    /// `confirmed` (an operator's decision applied) or `reconcile`.
    pub mode: String,
    /// The proposal it came from (`P12`).
    pub proposal: Option<String>,
    /// When it was decided (wall clock, epoch ms).
    pub wall_ms: i64,
}

/// Commands decided, newest first.
#[utoipa::path(get, path = "/api/actions", tag = "zhilu", params(LimitQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<ActionView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn actions(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<Vec<ActionView>>> {
    let rows = st
        .store
        .actions(None, q.limit.unwrap_or(500).clamp(1, 10_000))
        .await?;
    Ok(Json(
        rows.iter()
            .map(|a| ActionView {
                applied: a.mode != "confirm",
                command: serde_json::from_str::<Value>(&a.json).unwrap_or(Value::Null),
                id: a.id,
                mode: a.mode.clone(),
                proposal: a.proposal_id.map(|p| format!("P{p}")),
                wall_ms: a.wall_ms,
            })
            .collect(),
    ))
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(devices))
        .routes(routes!(actions))
}
