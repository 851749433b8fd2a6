//! Live speed forecasts.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

use super::{ApiError, ApiResult, Caller, ErrorBody};

/// Speed forecasts 5–60 minutes ahead for every station and segment, with
/// a band (the 10th–90th percentile of recent errors), and the method
/// behind them (`model`, or `profile` / `persistence` while the stored
/// history is short). 404 until the first 5-minute bucket is complete.
#[utoipa::path(get, path = "/api/forecast", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = crate::forecast::ForecastSnapshot), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn forecast(
    State(st): State<AppState>,
    _c: Caller,
) -> ApiResult<Json<crate::forecast::ForecastSnapshot>> {
    st.forecast
        .read()
        .ok()
        .and_then(|f| f.clone())
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound("no forecast yet: training from the stored history, or the first 5-minute interval is not complete".into(),
            )
        })
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(forecast))
}
