//! The live stream (Server-Sent Events).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Role;
use crate::engine::wall_ms;

use super::{ApiError, Caller, ErrorBody};

/// The live stream (Server-Sent Events: `state`, `event`, `proposal`,
/// `action`, `device`). Browsers, which cannot send the header here, pass
/// a one-use ticket from `POST /api/stream/ticket` as `?ticket=`; the
/// session token is taken from the header only (`?token=` is refused, so it
/// never lands in access logs or proxies). The stream ends within a second
/// of the session ending: logout, expiry, the account disabled or its role
/// changed.
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

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stream))
        .routes(routes!(stream_ticket))
}

/// A stream ticket.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TicketAnswer {
    /// Opens one stream: `GET /api/stream?ticket=…`, once.
    pub ticket: String,
    /// Until when (epoch ms, about 30 s).
    pub expires_ms: i64,
}

/// A one-use ticket for the live stream, valid about 30 s (for clients
/// that cannot send headers on the stream, such as a browser's
/// EventSource: the ticket goes in the stream's URL instead of the session
/// token; module `ticket`).
#[utoipa::path(post, path = "/api/stream/ticket", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = TicketAnswer), (status = 401, body = ErrorBody)))]
async fn stream_ticket(
    State(st): State<AppState>,
    c: Caller,
) -> Result<axum::Json<TicketAnswer>, ApiError> {
    let (ticket, expires_ms) = st
        .tickets
        .issue(&c.token_hash, wall_ms())
        .map_err(ApiError::internal)?;
    Ok(axum::Json(TicketAnswer { ticket, expires_ms }))
}
