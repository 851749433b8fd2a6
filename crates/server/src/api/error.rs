//! Why a request failed: [`ApiError`], one variant per HTTP status, and
//! the conversions that let handlers use `?`.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::DecideError;
use crate::ingest;

/// Why a request failed: each variant is one HTTP status, answered with
/// the body `{"error": "..."}` (and `Retry-After` where a retry is
/// expected). Handlers return it with `?`: store, engine and join errors
/// convert through `From`.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body or a parameter cannot be read.
    BadRequest(String),
    /// 401: no session, or not a valid one.
    Unauthorized(String),
    /// 401 at login: no such user, a wrong password or a disabled account
    /// (one answer for all three), code `bad_login`.
    BadLogin,
    /// 403: the caller's role may not do this.
    Forbidden(String),
    /// 404: no such thing (or no such endpoint).
    NotFound(String),
    /// 409: the state does not allow it (already exists, already decided).
    Conflict(String),
    /// 413: the body is larger than allowed.
    PayloadTooLarge(String),
    /// 415: a content type the endpoint does not read.
    UnsupportedMediaType(String),
    /// 422: understood, but not a valid request.
    Unprocessable(String),
    /// 429: too many failed logins; retry after `retry_after_s`.
    TooManyRequests {
        /// What to tell the caller.
        message: String,
        /// Seconds to wait (`Retry-After`).
        retry_after_s: u64,
    },
    /// 503: busy or stopping; retry after `retry_after_s` when given.
    Unavailable {
        /// What to tell the caller.
        message: String,
        /// Seconds to wait (`Retry-After`), when a retry is expected to work.
        retry_after_s: Option<u64>,
    },
    /// 500: a fault of the server. The text is already what the caller
    /// may see (see [`ApiError::internal`]).
    Internal(String),
}

/// Error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong (English, for people and logs).
    pub error: String,
    /// The same as a code a console translates (`bad_login`), where
    /// there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

impl ApiError {
    /// A fault of the server: logged with its detail; the answer shows the
    /// detail only in development mode.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(message = "Internal error.", error = %e);
        // Production answers do not show internals; development ones do.
        ApiError::Internal(if crate::VERBOSE_ERRORS.get().copied().unwrap_or(false) {
            format!("internal error: {e}")
        } else {
            "internal error (see the server log)".to_string()
        })
    }

    /// 503 with `Retry-After: secs`.
    pub(super) fn busy(message: impl Into<String>, secs: u64) -> ApiError {
        ApiError::Unavailable {
            message: message.into(),
            retry_after_s: Some(secs),
        }
    }

    /// 503 without `Retry-After`.
    pub(super) fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::Unavailable {
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::BadLogin => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code a console translates, where there is one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            ApiError::BadLogin => Some("bad_login"),
            _ => None,
        }
    }

    fn into_parts(self) -> (StatusCode, String, Option<u64>) {
        let status = self.status();
        let (message, retry) = match self {
            ApiError::BadLogin => ("wrong user name or password".to_string(), None),
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::Unprocessable(m)
            | ApiError::Internal(m) => (m, None),
            ApiError::TooManyRequests {
                message,
                retry_after_s,
            } => (message, Some(retry_after_s)),
            ApiError::Unavailable {
                message,
                retry_after_s,
            } => (message, retry_after_s),
        };
        (status, message, retry)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let (status, message, retry_after) = self.into_parts();
        let mut r = (
            status,
            Json(ErrorBody {
                error: message,
                code,
            }),
        )
            .into_response();
        if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            r.headers_mut().insert(RETRY_AFTER, v);
        }
        r
    }
}

/// A store error: a key that exists is 409, a row that does not is 404,
/// anything else is the server's fault (500).
impl From<zhilu_store::StoreError> for ApiError {
    fn from(e: zhilu_store::StoreError) -> ApiError {
        match e {
            zhilu_store::StoreError::Conflict { what, .. } => {
                ApiError::Conflict(format!("{what} already exists"))
            }
            zhilu_store::StoreError::NotFound { what, .. } => {
                ApiError::NotFound(format!("no {what}"))
            }
            e => ApiError::internal(e),
        }
    }
}

/// An operator's decision the engine refused.
impl From<DecideError> for ApiError {
    fn from(e: DecideError) -> ApiError {
        match e {
            DecideError::NotFound(id) => ApiError::NotFound(format!("no proposal P{id}")),
            e @ DecideError::NotPending(..) => ApiError::Conflict(e.to_string()),
            e @ DecideError::BadEdit(_) => ApiError::Unprocessable(e.to_string()),
            e @ DecideError::Store(_) => ApiError::internal(e),
        }
    }
}

/// A blocking task that panicked or was cancelled.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(e)
    }
}

/// A request body that is not what the endpoint reads.
impl From<ingest::BodyError> for ApiError {
    fn from(e: ingest::BodyError) -> ApiError {
        ApiError::BadRequest(e.to_string())
    }
}

/// What a handler returns.
pub type ApiResult<T> = Result<T, ApiError>;
