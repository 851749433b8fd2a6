//! Health and Prometheus metrics (anyone).

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use std::sync::atomic::Ordering;

use crate::AppState;

/// Health.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` with `reasons`.
    pub status: String,
    /// Why degraded: ticks stalled while rows arrive, commits failing, disk
    /// low, device broker unreachable, source clocks off.
    pub reasons: Vec<String>,
    /// The same reasons as codes with parameters, in the same order, for a
    /// console to say in its language (`{"code": "disk_low", "free_mb":
    /// 900, "min_mb": 500}`; `zhilu_contract::HealthCode`).
    pub codes: Vec<crate::health::HealthReason>,
    /// `sqlite` / `postgres`.
    pub database: String,
    /// Corridor id.
    pub road: String,
    /// Ticks closed since start.
    pub ticks: u64,
    /// Data time of the last closed tick (ms); `null` before the first.
    pub last_tick_ms: Option<i64>,
    /// Server wall time when that tick closed (ms): with `last_tick_ms`,
    /// how a console shows the server's wall-clock stamps in data time.
    pub last_tick_wall_ms: Option<i64>,
    /// Server wall time now (ms).
    pub wall_ms: i64,
    /// Whether `GET /api/forecast` has a forecast (it answers 404 before),
    /// so that a console asks only then.
    pub forecast_ready: bool,
    /// Rows the brain took since start.
    pub rows: u64,
    /// Free bytes where the database lives (SQLite).
    pub disk_free_bytes: Option<u64>,
    /// Sources whose clocks are off now.
    pub sources_off: Vec<String>,
    /// Rows held back until the quorum of sources reaches their time.
    pub held_rows: u64,
    /// Failed commits since start.
    pub commit_failures: u64,
}

/// Is the server up, and is it well? `degraded` names why.
#[utoipa::path(get, path = "/api/health", tag = "zhilu", responses((status = 200, body = Health)))]
async fn health(State(st): State<AppState>) -> Json<Health> {
    let snap = st
        .snapshot
        .read()
        .map(|s| (s.ticks, s.last_tick_ms, s.rows))
        .unwrap_or_default();
    let r = crate::health::report(&st);
    Json(Health {
        status: r.status,
        reasons: r.reasons,
        codes: r.codes,
        database: st.store.backend().into(),
        road: st.road.id().into(),
        ticks: snap.0,
        last_tick_ms: snap.1,
        last_tick_wall_ms: Some(st.health.last_tick_wall_ms.load(Ordering::Relaxed))
            .filter(|&w| w > 0 && snap.1.is_some()),
        wall_ms: crate::engine::wall_ms(),
        forecast_ready: st.forecast.read().is_ok_and(|f| f.is_some()),
        rows: snap.2,
        disk_free_bytes: r.disk_free_bytes,
        sources_off: r.sources_off,
        held_rows: r.held_rows,
        commit_failures: r.commit_failures,
    })
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "zhilu", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics_text(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.prom.render(),
    )
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics_text))
}
