//! The road as the console draws it: the road book, the corridor state,
//! vehicles and the time–space picture.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::engine::wall_ms;

use super::{ApiError, ApiResult, Caller, ErrorBody};
use crate::roadjson::TimeSpace;
use crate::views::{RoadView, StateView, VehiclesView};

/// The corridor state after the last tick (segments per direction).
#[utoipa::path(get, path = "/api/state", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = StateView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn state_now(State(st): State<AppState>, _c: Caller) -> ApiResult<Json<StateView>> {
    st.snapshot
        .read()
        .ok()
        .and_then(|s| s.state.as_deref().cloned())
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no state yet: no tick closed".into()))
}

/// The road book as the console draws it: the centre line (stake, lon,
/// lat), every station and device with its stake and position, zones,
/// interchanges, tunnels and service areas.
#[utoipa::path(get, path = "/api/road", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = RoadView), (status = 401, body = ErrorBody)))]
async fn road_book(State(st): State<AppState>, _c: Caller) -> Json<RoadView> {
    Json(RoadView::of(&st.road))
}

/// Vehicle filter.
#[derive(Deserialize, IntoParams)]
pub struct VehiclesQuery {
    /// Only this class (`hazmat`, `truck`, `bus`, `car`).
    pub class: Option<String>,
    /// Include each vehicle's recent track.
    pub tracks: Option<bool>,
}

/// Where every vehicle heard of in the last 10 minutes is (rows in the
/// order of `columns`), with tracks when asked.
#[utoipa::path(get, path = "/api/vehicles", tag = "zhilu", params(VehiclesQuery), security(("bearer" = [])),
    responses((status = 200, body = VehiclesView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn vehicles(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<VehiclesQuery>,
) -> ApiResult<Json<VehiclesView>> {
    let b = st
        .vehicles
        .read()
        .map_err(|_| ApiError::internal("vehicle board unavailable"))?;
    Ok(Json(b.list(q.class.as_deref(), q.tracks.unwrap_or(false))))
}

/// Time–space window.
#[derive(Deserialize, IntoParams)]
pub struct TimespaceQuery {
    /// Start (epoch ms, data time); default: 3 hours before `to_ms`.
    pub from_ms: Option<i64>,
    /// End (epoch ms, exclusive); default: the last closed tick.
    pub to_ms: Option<i64>,
    /// Bucket (s), 20–3600; default: enough for at most 720 columns.
    pub step_s: Option<u32>,
}

/// The traffic engineer's picture: each station's speed per time bucket,
/// per direction (stations in the direction of travel), from the stored
/// readings (rolled-up history included). At most 7 days and 5,000 buckets.
#[utoipa::path(get, path = "/api/timespace", tag = "zhilu", params(TimespaceQuery), security(("bearer" = [])),
    responses((status = 200, body = TimeSpace), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn timespace(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<TimespaceQuery>,
) -> ApiResult<Json<TimeSpace>> {
    let last = st.snapshot.read().ok().and_then(|s| s.last_tick_ms);
    let to = q.to_ms.or(last.map(|t| t + 1)).unwrap_or_else(wall_ms);
    let from = q.from_ms.unwrap_or(to.saturating_sub(3 * 3_600_000));
    // Epoch ms between 1970 and 2200: anything else is not a data time.
    const LATEST_MS: i64 = 7_258_118_400_000;
    if !(0..=LATEST_MS).contains(&from) || !(0..=LATEST_MS).contains(&to) {
        return Err(ApiError::Unprocessable(
            "from_ms and to_ms must be epoch milliseconds between 1970 and 2200".into(),
        ));
    }
    let span = to - from;
    if span <= 0 || span > 7 * 86_400_000 {
        return Err(ApiError::Unprocessable(
            "from_ms must be before to_ms, at most 7 days apart".into(),
        ));
    }
    let step_ms = match q.step_s {
        Some(s) if (20..=3600).contains(&s) => i64::from(s) * 1000,
        Some(_) => {
            return Err(ApiError::Unprocessable("step_s must be 20–3600".into()));
        }
        None => ((span / 720).max(20_000) + 19_999) / 20_000 * 20_000,
    };
    if span / step_ms > 5_000 {
        return Err(ApiError::Unprocessable(
            "too many buckets: raise step_s (at most 5,000 per request)".into(),
        ));
    }
    let rows = st.store.station_history(from, to, step_ms).await?;
    Ok(Json(crate::roadjson::timespace(
        &st.road, from, to, step_ms, &rows,
    )))
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(state_now))
        .routes(routes!(road_book))
        .routes(routes!(vehicles))
        .routes(routes!(timespace))
}
