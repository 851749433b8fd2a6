//! Readings in (`POST /api/ingest/*`, the contract's CSV or JSON rows)
//! and the quarantine of rows refused for their time.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::wall_ms;
use crate::ingest::{self, Format, Problem, ReadingKind};
use crate::{AppState, WriteReq};

use super::{ApiError, ApiResult, ErrorBody, Operator};

/// What happened to an ingest request.
#[derive(Serialize, ToSchema)]
pub struct IngestAnswer {
    /// Rows stored (acknowledged: they survive a crash from now on).
    pub accepted: u64,
    /// Of those, rows stored but flagged as untrustworthy values.
    pub flagged: u64,
    /// Rows not stored (cannot be attributed to a device and time).
    pub rejected: u64,
    /// Rows refused for their time (dated ahead of the server's clock, or
    /// before 2000): not stored as readings, kept in the quarantine
    /// (`GET /api/quarantine`); named in `problems` (`time_ahead`,
    /// `time_unset`).
    pub refused: u64,
    /// Problems by kind with their first places.
    pub problems: Vec<Problem>,
    /// Ingest sequence numbers given to the accepted rows (first, last).
    pub seq: Option<(i64, i64)>,
    /// Of the accepted rows, those already stored (a batch re-sent after a
    /// lost answer, a replay): kept once, not stored again.
    pub duplicates: u64,
}

/// Reads a request body within the in-flight byte budget: a body larger
/// than `max_body_bytes` is 413 before a byte is read; one that does not
/// fit the budget within `queue_wait_ms` is 503 with `Retry-After`. The
/// permit is held until the request is answered.
async fn read_budgeted(
    st: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> ApiResult<(Bytes, tokio::sync::OwnedSemaphorePermit)> {
    let max = st.cfg.ingest.max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::PayloadTooLarge(format!(
            "body larger than {max} bytes (ingest.max_body_bytes)"
        )));
    }
    // A body of unknown length is charged the largest it may be.
    let charge = declared.map_or(max, |n| n as usize).max(1);
    let wait = Duration::from_millis(st.cfg.ingest.queue_wait_ms);
    let permit = match tokio::time::timeout(
        wait,
        st.inflight
            .clone()
            .acquire_many_owned(charge.min(u32::MAX as usize) as u32),
    )
    .await
    {
        Ok(Ok(p)) => p,
        _ => {
            metrics::counter!("zhilu_ingest_backpressure_total", "why" => "bytes").increment(1);
            return Err(ApiError::busy(
                "ingest busy: too many bytes in flight (ingest.max_inflight_bytes); retry shortly",
                1,
            ));
        }
    };
    let bytes = axum::body::to_bytes(body, max).await.map_err(|e| {
        let too_big = e.to_string().contains("length limit");
        if too_big {
            ApiError::PayloadTooLarge(format!(
                "body larger than {max} bytes (ingest.max_body_bytes)"
            ))
        } else {
            ApiError::BadRequest(format!("reading the body: {e}"))
        }
    })?;
    Ok((bytes, permit))
}

async fn ingest_body(
    st: &AppState,
    kind: ReadingKind,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> ApiResult<(StatusCode, Json<IngestAnswer>)> {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = if ct.starts_with("application/json") {
        Some(Format::Json)
    } else if ct.starts_with("text/csv") || ct.starts_with("text/plain") {
        Some(Format::Csv)
    } else if ct.is_empty() {
        None
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "content type {ct:?}: send text/csv or application/json"
        )));
    };
    if let Err(free_mb) = crate::health::disk_room(st) {
        metrics::counter!("zhilu_ingest_backpressure_total", "why" => "disk").increment(1);
        return Err(ApiError::busy(
            format!(
                "disk nearly full: {free_mb} MB free, ingest resumes above {} MB (storage.min_free_mb)",
                st.cfg.storage.min_free_mb
            ),
            30,
        ));
    }
    let (body, _permit) = read_budgeted(st, headers, body).await?;
    let format = format.unwrap_or_else(|| Format::sniff(&body));
    let road = st.road.clone();
    let parsed = if body.len() > 64 * 1024 {
        tokio::task::spawn_blocking(move || ingest::parse(kind, format, &body, &road)).await?
    } else {
        ingest::parse(kind, format, &body, &road)
    }?;
    let mut parsed = parsed;
    let now = wall_ms();
    let refused = crate::clock::screen(
        &mut parsed.batch,
        kind.as_str(),
        now,
        &st.cfg.time,
        &st.clocks,
    );
    if !refused.is_empty()
        && let Err(e) = st
            .store
            .quarantine(&refused.rows, crate::QUARANTINE_KEEP)
            .await
    {
        tracing::error!(message = "Quarantine not stored.", error = %e);
    }
    let n = parsed.batch.len() as u64;
    metrics::counter!("zhilu_ingest_rejected_total", "kind" => kind.as_str())
        .increment(parsed.rejected);
    let mut problems = parsed.problems;
    for (k, (count, first)) in refused.problems {
        problems.push(Problem {
            kind: k.to_string(),
            count,
            first,
        });
    }
    let mut answer = IngestAnswer {
        accepted: n,
        flagged: parsed.flagged,
        rejected: parsed.rejected,
        refused: refused.rows.len() as u64,
        problems,
        seq: None,
        duplicates: 0,
    };
    if n == 0 {
        // Nothing usable (a header-only CSV, an empty array, every row
        // refused): 422, as documented.
        if answer.problems.is_empty() {
            answer.problems.push(Problem {
                kind: "no_rows".into(),
                count: 0,
                first: vec!["the body holds no rows".into()],
            });
        }
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(answer)));
    }
    let (tx, rx) = oneshot::channel();
    let wait = Duration::from_millis(st.cfg.ingest.queue_wait_ms);
    match st
        .writer
        .send_timeout(
            WriteReq {
                batch: parsed.batch,
                reply: tx,
            },
            wait,
        )
        .await
    {
        Ok(()) => {}
        Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
            metrics::counter!("zhilu_ingest_backpressure_total").increment(1);
            return Err(ApiError::busy("ingest queue full: retry shortly", 1));
        }
        Err(mpsc::error::SendTimeoutError::Closed(_)) => {
            return Err(ApiError::unavailable("shutting down"));
        }
    }
    match rx.await {
        Ok(Ok(stored)) => {
            metrics::counter!("zhilu_ingest_rows_total", "kind" => kind.as_str()).increment(n);
            answer.seq = Some(stored.seq);
            answer.duplicates = stored.duplicates;
            Ok((StatusCode::OK, Json(answer)))
        }
        Ok(Err(e)) => Err(ApiError::busy(format!("not stored: {e}"), 1)),
        Err(_) => Err(ApiError::unavailable("not stored: writer stopped")),
    }
}

macro_rules! ingest_route {
    ($fn:ident, $path:literal, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "zhilu", security(("bearer" = [])),
            request_body(content((String = "text/csv"), (Vec<Object> = "application/json")), description = "The contract's CSV (header first) or a JSON array of rows with the same keys"),
            responses((status = 200, body = IngestAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = IngestAnswer), (status = 503, body = ErrorBody)))]
        async fn $fn(State(st): State<AppState>, _c: Operator, headers: HeaderMap, body: axum::body::Body) -> ApiResult<(StatusCode, Json<IngestAnswer>)> {
            ingest_body(&st, $kind, &headers, body).await
        }
    };
}

ingest_route!(
    ingest_observations,
    "/api/ingest/observations",
    ReadingKind::Obs,
    "Detector readings (OBS.csv columns)."
);
ingest_route!(
    ingest_weather,
    "/api/ingest/weather",
    ReadingKind::Weather,
    "Road-weather readings (WEATHER.csv columns)."
);
ingest_route!(
    ingest_positions,
    "/api/ingest/positions",
    ReadingKind::Positions,
    "Vehicle positions (POS.csv columns)."
);
ingest_route!(
    ingest_camera,
    "/api/ingest/camera-events",
    ReadingKind::Camera,
    "Camera-analytics events (CAM.csv columns)."
);

/// Quarantine paging.
#[derive(Deserialize, IntoParams)]
pub struct QuarantineQuery {
    /// Entries with an id below this (the next page).
    pub before: Option<i64>,
    /// At most this many (default 500).
    pub limit: Option<u32>,
}

/// A row refused for its time (fields in alphabetical order, as always
/// written).
#[derive(Serialize, ToSchema)]
pub struct QuarantineView {
    /// Entry id (page with `before`).
    pub id: i64,
    /// `observations`, `weather`, `positions` or `camera-events`.
    pub kind: String,
    /// Why it was refused (`time_ahead`, `time_unset`).
    pub reason: String,
    /// The row as received.
    #[schema(value_type = Object)]
    pub row: Value,
    /// The device or vehicle it came from.
    pub source: String,
    /// The row's own time (epoch ms).
    pub ts_ms: i64,
    /// When it was refused (wall clock, epoch ms).
    pub wall_ms: i64,
}

/// Rows refused for their time (dated ahead of the server's clock, or
/// before 2000), newest first, with the source and why (operator).
#[utoipa::path(get, path = "/api/quarantine", tag = "zhilu", params(QuarantineQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<QuarantineView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn quarantine(
    State(st): State<AppState>,
    _c: Operator,
    Query(q): Query<QuarantineQuery>,
) -> ApiResult<Json<Vec<QuarantineView>>> {
    let rows = st
        .store
        .quarantined(q.before, q.limit.unwrap_or(500).clamp(1, 10_000))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| QuarantineView {
                row: serde_json::from_str::<Value>(&r.row_json).unwrap_or(Value::Null),
                id: r.id,
                kind: r.kind,
                reason: r.reason,
                source: r.source,
                ts_ms: r.ts_ms,
                wall_ms: r.wall_ms,
            })
            .collect(),
    ))
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_observations))
        .routes(routes!(ingest_weather))
        .routes(routes!(ingest_positions))
        .routes(routes!(ingest_camera))
        .routes(routes!(quarantine))
}
