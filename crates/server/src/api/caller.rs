//! Who is calling: the session behind `Authorization: Bearer TOKEN`
//! ([`Caller`]), and the extractors that check a role before the body is
//! read ([`Operator`], [`Admin`]).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use zhilu_store::SessionRow;

use crate::AppState;
use crate::auth::{self, Role};
use crate::engine::wall_ms;

use super::{ApiError, ApiResult};

/// The caller, from `Authorization: Bearer TOKEN` (or, on the stream only,
/// a one-use `?ticket=` from `POST /api/stream/ticket`).
#[derive(Debug, Clone)]
pub struct Caller {
    /// User name.
    pub name: String,
    /// Role.
    pub role: Role,
    pub(super) token_hash: String,
    pub(super) expires_ms: i64,
}

impl Caller {
    pub(super) fn require(&self, role: Role) -> ApiResult<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} may not do this (needs {})",
                self.role.as_str(),
                role.as_str()
            )))
        }
    }
}

/// The one route that takes a credential in the query string: a one-use
/// `?ticket=` (a browser's EventSource cannot set headers). The session
/// token itself is taken from the `Authorization` header only, on every
/// route including this one, so it never ends up in links, logs or
/// proxies' records; `?token=` is refused (401).
pub use crate::stream::STREAM_PATH;

fn bearer(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
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
            ApiError::Unauthorized(
                "log in first: Authorization: Bearer <token> from POST /api/login".into(),
            )
        };
        let h = if let Some(ticket) = crate::ticket::in_query(parts) {
            // A used, unknown or expired ticket opens nothing.
            st.tickets.redeem(&ticket, wall_ms()).ok_or_else(|| {
                ApiError::Unauthorized(
                    "stream ticket unknown, used or expired: ask POST /api/stream/ticket again"
                        .into(),
                )
            })?
        } else {
            let token = bearer(parts).ok_or_else(unauth)?;
            if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(unauth());
            }
            auth::token_hash(&token)
        };
        let s: SessionRow = st.store.session(&h).await?.ok_or_else(unauth)?;
        if s.expires_wall_ms <= wall_ms() {
            return Err(ApiError::Unauthorized(
                "session expired: log in again".into(),
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
