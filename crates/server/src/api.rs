//! The HTTP API (axum) and its OpenAPI document (utoipa). Every write is
//! checked by role; anonymous callers get health, login, the OpenAPI
//! document and metrics only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zhilu_store::{AuditEntry, EventQuery, SessionRow, UserRow};

use crate::auth::{self, Role};
use crate::engine::{DecideError, Msg, Verdict, device_json, proposal_json, wall_ms};
use crate::ingest::{self, Format, Problem, ReadingKind};
use crate::ticket::{__path_stream_ticket, stream_ticket};
use crate::{AppState, WriteReq};

/// An error answer: `{"error": "..."}` with a status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

/// Error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(message = "Internal error.", error = %e);
        // Production answers do not show internals; development ones do.
        let text = if crate::VERBOSE_ERRORS.get().copied().unwrap_or(false) {
            format!("internal error: {e}")
        } else {
            "internal error (see the server log)".to_string()
        };
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, text)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if let Some(v) = self
            .retry_after
            .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
        {
            r.headers_mut().insert(RETRY_AFTER, v);
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The caller, from `Authorization: Bearer TOKEN` (or, on the stream only,
/// `?ticket=` from `POST /api/stream/ticket`, or `?token=`).
#[derive(Debug, Clone)]
pub struct Caller {
    /// User name.
    pub name: String,
    /// Role.
    pub role: Role,
    token_hash: String,
    expires_ms: i64,
}

impl Caller {
    /// The hash of the session token behind this caller.
    pub(crate) fn token_hash(&self) -> &str {
        &self.token_hash
    }

    fn require(&self, role: Role) -> ApiResult<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} may not do this (needs {})",
                    self.role.as_str(),
                    role.as_str()
                ),
            ))
        }
    }
}

/// The one route that takes `?token=` (a browser's EventSource cannot set
/// headers); everywhere else a token in the query string is ignored, so
/// it never ends up in links, logs or proxies' records of a write.
pub const STREAM_PATH: &str = "/api/stream";

fn bearer(parts: &Parts) -> Option<String> {
    if let Some(h) = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
    {
        return h.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    if parts.uri.path() != STREAM_PATH {
        return None;
    }
    parts.uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token=").map(str::to_string))
    })
}

/// A caller with at least the operator role, checked before the body is
/// read (a viewer learns nothing about what a write expects).
pub struct Operator(pub Caller);

/// A caller with the admin role, checked before the body is read.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, st).await?;
        c.require(Role::Operator)?;
        Ok(Operator(c))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, st).await?;
        c.require(Role::Admin)?;
        Ok(Admin(c))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let unauth = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "log in first: Authorization: Bearer <token> from POST /api/login",
            )
        };
        let h = if let Some(ticket) = crate::ticket::in_query(parts) {
            // A used, unknown or expired ticket opens nothing.
            st.tickets.redeem(&ticket, wall_ms()).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "stream ticket unknown, used or expired: ask POST /api/stream/ticket again",
                )
            })?
        } else {
            let token = bearer(parts).ok_or_else(unauth)?;
            if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(unauth());
            }
            auth::token_hash(&token)
        };
        let s: SessionRow = st
            .store
            .session(&h)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(unauth)?;
        if s.expires_wall_ms <= wall_ms() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session expired: log in again",
            ));
        }
        let role = Role::parse(&s.role).ok_or_else(unauth)?;
        Ok(Caller {
            name: s.user,
            role,
            token_hash: h,
            expires_ms: s.expires_wall_ms,
        })
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "zhilu cloud-control API", description = "Live ingest, events, proposals, devices and the audit log of one corridor."),
    modifiers(&BearerAuth),
    tags((name = "zhilu"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// The router with every route, and the OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(ingest_observations))
        .routes(routes!(ingest_weather))
        .routes(routes!(ingest_positions))
        .routes(routes!(ingest_camera))
        .routes(routes!(events))
        .routes(routes!(event))
        .routes(routes!(devices))
        .routes(routes!(proposals))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(edit))
        .routes(routes!(actions))
        .routes(routes!(state_now))
        .routes(routes!(road_book))
        .routes(routes!(vehicles))
        .routes(routes!(timespace))
        .routes(routes!(forecast))
        .routes(routes!(stream))
        .routes(routes!(stream_ticket))
        .routes(routes!(audit))
        .routes(routes!(users_list, users_add))
        .routes(routes!(user_change))
        .routes(routes!(quarantine))
        .routes(routes!(metrics_text))
        .with_state(state.clone())
        .split_for_parts();
    let doc = Arc::new(doc.to_json().unwrap_or_else(|_| "{}".into()));
    let max_body = state.cfg.ingest.max_body_bytes;
    router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let d = doc.clone();
                async move { ([(CONTENT_TYPE, "application/json")], d.as_str().to_string()) }
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            Duration::from_secs_f64(state.cfg.server.body_timeout_s),
        ))
        .fallback(fallback)
}

/// Anything else: the console for pages, a JSON 404 for the API.
async fn fallback(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let p = uri.path();
    let api = p == "/api" || p.starts_with("/api/") || p == "/metrics";
    if !api
        && (method == axum::http::Method::GET || method == axum::http::Method::HEAD)
        && let Some(r) = crate::console::serve(&uri)
    {
        return r;
    }
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint").into_response()
}

/// Health.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` with `reasons`.
    pub status: String,
    /// Why degraded: ticks stalled while rows arrive, commits failing, disk
    /// low, device broker unreachable, source clocks off.
    pub reasons: Vec<String>,
    /// `sqlite` / `postgres`.
    pub database: String,
    /// Corridor id.
    pub road: String,
    /// Ticks closed since start.
    pub ticks: u64,
    /// Data time of the last closed tick (ms).
    pub last_tick_ms: Option<i64>,
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
        database: st.store.backend().into(),
        road: st.road.id().into(),
        ticks: snap.0,
        last_tick_ms: snap.1,
        rows: snap.2,
        disk_free_bytes: r.disk_free_bytes,
        sources_off: r.sources_off,
        held_rows: r.held_rows,
        commit_failures: r.commit_failures,
    })
}

/// Login request.
#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A session.
#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    /// Bearer token.
    pub token: String,
    /// Role.
    pub role: Role,
    /// Expiry (epoch ms).
    pub expires_ms: i64,
}

/// Log in: a bearer token for the other endpoints.
#[utoipa::path(post, path = "/api/login", tag = "zhilu", request_body = LoginBody,
    responses((status = 200, body = LoginAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Json(b): Json<LoginBody>,
) -> ApiResult<Json<LoginAnswer>> {
    let ip = addr.ip().to_string();
    if let Some(wait) = st.limiter.blocked(&ip, &b.username) {
        let secs = wait.ceil() as u64;
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed logins: wait {secs} s"),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    let user = st
        .store
        .user(&b.username)
        .await
        .map_err(ApiError::internal)?;
    let pw = b.password.clone();
    let phc = user.as_ref().map(|u| u.pw_hash.clone());
    let ok = tokio::task::spawn_blocking(move || match phc {
        Some(h) => auth::verify_password(&pw, &h),
        None => {
            // Same work for an unknown name: no timing hint.
            let _ = auth::hash_password(&pw);
            false
        }
    })
    .await
    .map_err(ApiError::internal)?;
    let Some(user) = user.filter(|u| ok && !u.disabled) else {
        st.limiter.fail(&ip, &b.username);
        let _ = st
            .store
            .append_audit(&AuditEntry {
                seq: 0,
                wall_ms: wall_ms(),
                actor: b.username.chars().take(64).collect(),
                action: "login.failed".into(),
                target: addr.ip().to_string(),
                detail: "{}".into(),
            })
            .await;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    };
    st.limiter.succeed(&b.username);
    let token = auth::new_token().map_err(ApiError::internal)?;
    let now = wall_ms();
    let expires = now + (st.cfg.auth.session_hours * 3_600_000.0) as i64;
    st.store
        .create_session(&SessionRow {
            token_hash: auth::token_hash(&token),
            user: user.name.clone(),
            role: user.role.clone(),
            created_wall_ms: now,
            expires_wall_ms: expires,
        })
        .await
        .map_err(ApiError::internal)?;
    st.store
        .append_audit(&AuditEntry {
            seq: 0,
            wall_ms: now,
            actor: user.name.clone(),
            action: "login".into(),
            target: addr.ip().to_string(),
            detail: "{}".into(),
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(LoginAnswer {
        token,
        role: Role::parse(&user.role).unwrap_or(Role::Viewer),
        expires_ms: expires,
    }))
}

/// End the session.
#[utoipa::path(post, path = "/api/logout", tag = "zhilu", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(st): State<AppState>, c: Caller) -> ApiResult<StatusCode> {
    st.store
        .delete_session(&c.token_hash)
        .await
        .map_err(ApiError::internal)?;
    // Open streams of this session end now.
    st.sessions.send_modify(|g| *g += 1);
    Ok(StatusCode::NO_CONTENT)
}

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
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {max} bytes (ingest.max_body_bytes)"),
        ));
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
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ingest busy: too many bytes in flight (ingest.max_inflight_bytes); retry shortly",
            );
            e.retry_after = Some(1);
            return Err(e);
        }
    };
    let bytes = axum::body::to_bytes(body, max).await.map_err(|e| {
        let too_big = e.to_string().contains("length limit");
        if too_big {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {max} bytes (ingest.max_body_bytes)"),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
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
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {ct:?}: send text/csv or application/json"),
        ));
    };
    if let Err(free_mb) = crate::health::disk_room(st) {
        metrics::counter!("zhilu_ingest_backpressure_total", "why" => "disk").increment(1);
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "disk nearly full: {free_mb} MB free, ingest resumes above {} MB (storage.min_free_mb)",
                st.cfg.storage.min_free_mb
            ),
        );
        e.retry_after = Some(30);
        return Err(e);
    }
    let (body, _permit) = read_budgeted(st, headers, body).await?;
    let format = format.unwrap_or_else(|| Format::sniff(&body));
    let road = st.road.clone();
    let parsed = if body.len() > 64 * 1024 {
        tokio::task::spawn_blocking(move || ingest::parse(kind, format, &body, &road))
            .await
            .map_err(ApiError::internal)?
    } else {
        ingest::parse(kind, format, &body, &road)
    }
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
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
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ingest queue full: retry shortly",
            );
            e.retry_after = Some(1);
            return Err(e);
        }
        Err(mpsc::error::SendTimeoutError::Closed(_)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down",
            ));
        }
    }
    match rx.await {
        Ok(Ok(stored)) => {
            metrics::counter!("zhilu_ingest_rows_total", "kind" => kind.as_str()).increment(n);
            answer.seq = Some(stored.seq);
            answer.duplicates = stored.duplicates;
            Ok((StatusCode::OK, Json(answer)))
        }
        Ok(Err(e)) => {
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}"));
            e.retry_after = Some(1);
            Err(e)
        }
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not stored: writer stopped",
        )),
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
        .await
        .map_err(ApiError::internal)?;
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
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no event {id}")))?;
    let changes = st
        .store
        .event_changes(&id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "event": serde_json::from_str::<Value>(&e.json).unwrap_or(Value::Null),
        "changes": changes.iter().map(|c| json!({"change": c.change, "at_ms": c.at_ms, "wall_ms": c.wall_ms})).collect::<Vec<_>>(),
    })))
}

/// Every device with the state it last confirmed.
#[utoipa::path(get, path = "/api/devices", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody)))]
async fn devices(State(st): State<AppState>, _c: Caller) -> ApiResult<Json<Vec<Value>>> {
    let rows = st.store.device_states().await.map_err(ApiError::internal)?;
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
    let rows = st
        .store
        .proposals(q.status.as_deref())
        .await
        .map_err(ApiError::internal)?;
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
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no proposal {s}")))
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
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a reason is required to reject or edit",
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
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "engine stopped"))?;
    match rx
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "engine stopped"))?
    {
        Ok(p) => Ok(Json(
            serde_json::from_str(&proposal_json(&p)).unwrap_or(Value::Null),
        )),
        Err(DecideError::NotFound(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no proposal P{id}"),
        )),
        Err(e @ DecideError::NotPending(..)) => {
            Err(ApiError::new(StatusCode::CONFLICT, e.to_string()))
        }
        Err(e @ DecideError::BadEdit(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
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
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "an edit needs \"edit\": {\"value\": ...}",
        ));
    };
    decide(&st, &c, &id, Verdict::Edit(e), b.reason).await
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
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        rows.iter()
            .map(|a| json!({"id": a.id, "mode": a.mode, "proposal": a.proposal_id.map(|p| format!("P{p}")), "wall_ms": a.wall_ms, "command": serde_json::from_str::<Value>(&a.json).unwrap_or(Value::Null)}))
            .collect(),
    ))
}

/// The corridor state after the last tick (segments per direction).
#[utoipa::path(get, path = "/api/state", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn state_now(State(st): State<AppState>, _c: Caller) -> ApiResult<Json<Value>> {
    st.snapshot
        .read()
        .ok()
        .and_then(|s| s.state.clone())
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no state yet: no tick closed"))
}

/// The road book as the console draws it: the centre line (stake, lon,
/// lat), every station and device with its stake and position, zones,
/// interchanges, tunnels and service areas.
#[utoipa::path(get, path = "/api/road", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody)))]
async fn road_book(State(st): State<AppState>, _c: Caller) -> Json<Value> {
    Json(crate::roadjson::road_json(&st.road))
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
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn vehicles(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<VehiclesQuery>,
) -> ApiResult<Json<Value>> {
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
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn timespace(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<TimespaceQuery>,
) -> ApiResult<Json<Value>> {
    let last = st.snapshot.read().ok().and_then(|s| s.last_tick_ms);
    let to = q.to_ms.or(last.map(|t| t + 1)).unwrap_or_else(wall_ms);
    let from = q.from_ms.unwrap_or(to.saturating_sub(3 * 3_600_000));
    // Epoch ms between 1970 and 2200: anything else is not a data time.
    const LATEST_MS: i64 = 7_258_118_400_000;
    if !(0..=LATEST_MS).contains(&from) || !(0..=LATEST_MS).contains(&to) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "from_ms and to_ms must be epoch milliseconds between 1970 and 2200",
        ));
    }
    let span = to - from;
    if span <= 0 || span > 7 * 86_400_000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "from_ms must be before to_ms, at most 7 days apart",
        ));
    }
    let step_ms = match q.step_s {
        Some(s) if (20..=3600).contains(&s) => i64::from(s) * 1000,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "step_s must be 20–3600",
            ));
        }
        None => ((span / 720).max(20_000) + 19_999) / 20_000 * 20_000,
    };
    if span / step_ms > 5_000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too many buckets: raise step_s (at most 5,000 per request)",
        ));
    }
    let rows = st
        .store
        .station_history(from, to, step_ms)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(crate::roadjson::timespace_json(
        &st.road, from, to, step_ms, &rows,
    )))
}

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
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no forecast yet: training from the stored history, or the first 5-minute interval is not complete",
            )
        })
}

/// The live stream (Server-Sent Events: `state`, `event`, `proposal`,
/// `action`, `device`). Browsers, which cannot send the header here, pass
/// a one-use ticket from `POST /api/stream/ticket` as `?ticket=` (or the
/// token as `?token=`; this route only). The stream ends within a second of the session ending: logout,
/// expiry, the account disabled or its role changed.
#[utoipa::path(get, path = "/api/stream", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 401, body = ErrorBody)))]
async fn stream(
    State(st): State<AppState>,
    c: Caller,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = st.hub.subscribe();
    let s = BroadcastStream::new(rx).map(|m| {
        Ok(match m {
            Ok(m) => SseEvent::default().event(m.kind.as_str()).data(&*m.data),
            Err(BroadcastStreamRecvError::Lagged(n)) => SseEvent::default()
                .event("lagged")
                .data(format!("{{\"missed\":{n}}}")),
        })
    });
    let hello = tokio_stream::once(Ok(SseEvent::default().event("hello").data("{}")));
    let ended = session_ended(st.clone(), c);
    Sse::new(futures_util::StreamExt::take_until(hello.chain(s), ended))
        .keep_alive(KeepAlive::default())
}

/// Resolves when the caller's session is no longer what it was: deleted
/// (logout), expired, the account disabled, or its role changed.
async fn session_ended(st: AppState, c: Caller) {
    let mut changes = st.sessions.subscribe();
    let left = u64::try_from(c.expires_ms - wall_ms()).unwrap_or(0);
    let expiry = tokio::time::sleep(Duration::from_millis(left));
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            _ = &mut expiry => return,
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                match st.store.session(&c.token_hash).await {
                    Ok(Some(s)) if Role::parse(&s.role) == Some(c.role) => {}
                    Ok(_) => return,
                    // The database is unreachable: keep streaming, check again
                    // at the next change.
                    Err(_) => {}
                }
            }
        }
    }
}

/// Audit filter.
#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Entries after this sequence number (oldest first).
    pub after: Option<i64>,
    /// Search: entries whose actor, action, target or detail contain this
    /// text, newest first.
    pub q: Option<String>,
    /// With `q`: entries before this sequence number (the next page).
    pub before: Option<i64>,
    /// At most this many (default 500).
    pub limit: Option<u32>,
}

/// The append-only audit log (admin).
#[utoipa::path(get, path = "/api/audit", tag = "zhilu", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn audit(
    State(st): State<AppState>,
    _c: Admin,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let limit = q.limit.unwrap_or(500).clamp(1, 10_000);
    let rows = match (&q.q, q.before) {
        (None, None) => st.store.audit(q.after.unwrap_or(0), limit).await,
        (text, before) => {
            let text: String = text.as_deref().unwrap_or("").chars().take(200).collect();
            st.store.audit_search(&text, before, limit).await
        }
    }
    .map_err(ApiError::internal)?;
    Ok(Json(
        rows.iter()
            .map(|a| json!({"seq": a.seq, "wall_ms": a.wall_ms, "actor": a.actor, "action": a.action, "target": a.target, "detail": serde_json::from_str::<Value>(&a.detail).unwrap_or(Value::Null)}))
            .collect(),
    ))
}

/// An account as listed.
#[derive(Serialize, ToSchema)]
pub struct UserOut {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Disabled.
    pub disabled: bool,
}

/// Accounts (admin).
#[utoipa::path(get, path = "/api/users", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = Vec<UserOut>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn users_list(State(st): State<AppState>, _c: Admin) -> ApiResult<Json<Vec<UserOut>>> {
    let rows = st.store.users().await.map_err(ApiError::internal)?;
    Ok(Json(
        rows.into_iter()
            .map(|u| UserOut {
                name: u.name,
                role: u.role,
                disabled: u.disabled,
            })
            .collect(),
    ))
}

/// A new account.
#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Password (≥ 10 characters).
    pub password: String,
}

/// Create an account (admin).
#[utoipa::path(post, path = "/api/users", tag = "zhilu", request_body = NewUser, security(("bearer" = [])),
    responses((status = 201, body = UserOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn users_add(
    State(st): State<AppState>,
    Admin(c): Admin,
    Json(b): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<UserOut>)> {
    auth::check_name(&b.name).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    auth::check_password_for(&b.password, &b.name)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let pw = b.password.clone();
    let h = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let now = wall_ms();
    match st
        .store
        .create_user(&UserRow {
            name: b.name.clone(),
            role: b.role.as_str().into(),
            pw_hash: h,
            created_wall_ms: now,
            disabled: false,
        })
        .await
    {
        Ok(()) => {}
        Err(zhilu_store::StoreError::Conflict { what, .. }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{what} already exists"),
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    st.store
        .append_audit(&AuditEntry {
            seq: 0,
            wall_ms: now,
            actor: c.name.clone(),
            action: "user.add".into(),
            target: b.name.clone(),
            detail: json!({"role": b.role.as_str()}).to_string(),
        })
        .await
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(UserOut {
            name: b.name,
            role: b.role.as_str().into(),
            disabled: false,
        }),
    ))
}

/// A change to an account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// New role.
    pub role: Option<Role>,
    /// Disable (or enable) the account.
    pub disabled: Option<bool>,
}

/// Change an account's role or disable it (admin). Its sessions then
/// carry the new role (or stop resolving) and its open streams end.
#[utoipa::path(patch, path = "/api/users/{name}", tag = "zhilu", params(("name" = String, Path, description = "account name")), request_body = UserChange, security(("bearer" = [])),
    responses((status = 200, body = UserOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn user_change(
    State(st): State<AppState>,
    Admin(c): Admin,
    Path(name): Path<String>,
    Json(b): Json<UserChange>,
) -> ApiResult<Json<UserOut>> {
    let nf = |e: zhilu_store::StoreError| match e {
        zhilu_store::StoreError::NotFound { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no user {name:?}"))
        }
        e => ApiError::internal(e),
    };
    if let Some(r) = b.role {
        st.store
            .set_user_role(&name, r.as_str())
            .await
            .map_err(nf)?;
    }
    if let Some(d) = b.disabled {
        st.store.set_user_disabled(&name, d).await.map_err(nf)?;
    }
    let u = st
        .store
        .user(&name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no user {name:?}")))?;
    st.store
        .append_audit(&AuditEntry {
            seq: 0,
            wall_ms: wall_ms(),
            actor: c.name.clone(),
            action: "user.change".into(),
            target: name.clone(),
            detail: json!({"role": b.role.map(Role::as_str), "disabled": b.disabled}).to_string(),
        })
        .await
        .map_err(ApiError::internal)?;
    st.sessions.send_modify(|g| *g += 1);
    Ok(Json(UserOut {
        name: u.name,
        role: u.role,
        disabled: u.disabled,
    }))
}

/// Quarantine paging.
#[derive(Deserialize, IntoParams)]
pub struct QuarantineQuery {
    /// Entries with an id below this (the next page).
    pub before: Option<i64>,
    /// At most this many (default 500).
    pub limit: Option<u32>,
}

/// Rows refused for their time (dated ahead of the server's clock, or
/// before 2000), newest first, with the source and why (operator).
#[utoipa::path(get, path = "/api/quarantine", tag = "zhilu", params(QuarantineQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn quarantine(
    State(st): State<AppState>,
    _c: Operator,
    Query(q): Query<QuarantineQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let rows = st
        .store
        .quarantined(q.before, q.limit.unwrap_or(500).clamp(1, 10_000))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        rows.iter()
            .map(|r| json!({"id": r.id, "wall_ms": r.wall_ms, "kind": r.kind, "source": r.source, "ts_ms": r.ts_ms, "reason": r.reason, "row": serde_json::from_str::<Value>(&r.row_json).unwrap_or(Value::Null)}))
            .collect(),
    ))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "zhilu", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics_text(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.prom.render(),
    )
}
