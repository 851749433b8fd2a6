//! Accounts: login and logout, the accounts an admin manages, and the
//! append-only audit log.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zhilu_store::{AuditEntry, SessionRow, UserRow};

use crate::AppState;
use crate::auth::{self, Role};
use crate::engine::wall_ms;

use super::{Admin, ApiError, ApiResult, Caller, ErrorBody};

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
        return Err(ApiError::TooManyRequests {
            message: format!("too many failed logins: wait {secs} s"),
            retry_after_s: secs,
        });
    }
    let user = st.store.user(&b.username).await?;
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
    .await?;
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
        return Err(ApiError::BadLogin);
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
        .await?;
    st.store
        .append_audit(&AuditEntry {
            seq: 0,
            wall_ms: now,
            actor: user.name.clone(),
            action: "login".into(),
            target: addr.ip().to_string(),
            detail: "{}".into(),
        })
        .await?;
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
    st.store.delete_session(&c.token_hash).await?;
    // Open streams of this session end now.
    st.sessions.send_modify(|g| *g += 1);
    Ok(StatusCode::NO_CONTENT)
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

/// An audit entry (fields in alphabetical order, as always written).
#[derive(Serialize, ToSchema)]
pub struct AuditView {
    /// What was done (`login`, `proposal.approve`, `user.add`, …).
    pub action: String,
    /// Who did it.
    pub actor: String,
    /// Details of the action (the brain's `reason` text with its
    /// `reason_code` beside it, in the detail or its `command`).
    #[schema(value_type = Object)]
    pub detail: Value,
    /// Sequence number (gapless, increasing).
    pub seq: i64,
    /// What it was done to.
    pub target: String,
    /// When (wall clock, epoch ms).
    pub wall_ms: i64,
}

/// The append-only audit log (admin).
#[utoipa::path(get, path = "/api/audit", tag = "zhilu", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<AuditView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn audit(
    State(st): State<AppState>,
    _c: Admin,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditView>>> {
    let limit = q.limit.unwrap_or(500).clamp(1, 10_000);
    let rows = match (&q.q, q.before) {
        (None, None) => st.store.audit(q.after.unwrap_or(0), limit).await,
        (text, before) => {
            let text: String = text.as_deref().unwrap_or("").chars().take(200).collect();
            st.store.audit_search(&text, before, limit).await
        }
    }?;
    Ok(Json(
        rows.into_iter()
            .map(|a| AuditView {
                detail: serde_json::from_str::<Value>(&a.detail).unwrap_or(Value::Null),
                action: a.action,
                actor: a.actor,
                seq: a.seq,
                target: a.target,
                wall_ms: a.wall_ms,
            })
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
    let rows = st.store.users().await?;
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
    auth::check_name(&b.name).map_err(ApiError::Unprocessable)?;
    auth::check_password_for(&b.password, &b.name).map_err(ApiError::Unprocessable)?;
    let pw = b.password.clone();
    let h = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await?
        .map_err(ApiError::internal)?;
    let now = wall_ms();
    st.store
        .create_user(&UserRow {
            name: b.name.clone(),
            role: b.role.as_str().into(),
            pw_hash: h,
            created_wall_ms: now,
            disabled: false,
        })
        .await?;
    st.store
        .append_audit(&AuditEntry {
            seq: 0,
            wall_ms: now,
            actor: c.name.clone(),
            action: "user.add".into(),
            target: b.name.clone(),
            detail: json!({"role": b.role.as_str()}).to_string(),
        })
        .await?;
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
    // An unknown name is 404 `no user "name"` (the store's NotFound).
    if let Some(r) = b.role {
        st.store.set_user_role(&name, r.as_str()).await?;
    }
    if let Some(d) = b.disabled {
        st.store.set_user_disabled(&name, d).await?;
    }
    let u = st
        .store
        .user(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {name:?}")))?;
    st.store
        .append_audit(&AuditEntry {
            seq: 0,
            wall_ms: wall_ms(),
            actor: c.name.clone(),
            action: "user.change".into(),
            target: name.clone(),
            detail: json!({"role": b.role.map(Role::as_str), "disabled": b.disabled}).to_string(),
        })
        .await?;
    st.sessions.send_modify(|g| *g += 1);
    Ok(Json(UserOut {
        name: u.name,
        role: u.role,
        disabled: u.disabled,
    }))
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(audit))
        .routes(routes!(users_list, users_add))
        .routes(routes!(user_change))
}
