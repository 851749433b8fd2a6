//! Stream tickets (一次性流票据): a browser's `EventSource` cannot send an
//! `Authorization` header, so the live stream needs a credential in its
//! URL — where proxies and logs may keep it. Rather than the session token
//! (valid for hours), a client asks `POST /api/stream/ticket` (with its
//! bearer token) for a ticket that opens one stream, once, within
//! [`TICKET_TTL_MS`]: `GET /api/stream?ticket=…`. The stream then lives
//! with the session behind the ticket (it ends on logout, expiry or a role
//! change, as with a token). Tickets live in memory only (a restart
//! forgets them: the client asks again), hashed, at most
//! [`MAX_TICKETS`] at a time. The handler is in `api/stream.rs`.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth;

/// How long a ticket may wait for its stream (ms).
pub const TICKET_TTL_MS: i64 = 30_000;
/// Tickets outstanding at most; beyond it the one closest to expiry goes.
pub const MAX_TICKETS: usize = 10_000;

/// Tickets not yet used: ticket hash → (session token hash, expiry).
#[derive(Debug, Default)]
pub struct Tickets {
    open: Mutex<HashMap<String, (String, i64)>>,
}

impl Tickets {
    /// A new ticket for the session whose token hashes to `token_hash`,
    /// and when it expires.
    pub fn issue(&self, token_hash: &str, now_ms: i64) -> Result<(String, i64), String> {
        let ticket = auth::new_token()?;
        let expires = now_ms + TICKET_TTL_MS;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, (_, exp)| *exp > now_ms);
        while open.len() >= MAX_TICKETS {
            let Some(k) = open
                .iter()
                .min_by_key(|(_, (_, exp))| *exp)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            open.remove(&k);
        }
        open.insert(auth::token_hash(&ticket), (token_hash.to_string(), expires));
        Ok((ticket, expires))
    }

    /// Uses a ticket up: the session token hash it was issued for, if it
    /// is known and not expired (either way it cannot be used again).
    pub fn redeem(&self, ticket: &str, now_ms: i64) -> Option<String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (h, exp) = open.remove(&auth::token_hash(ticket))?;
        (exp > now_ms).then_some(h)
    }
}

/// The `ticket=` of a request to the stream (no other route takes one).
pub(crate) fn in_query(parts: &axum::http::request::Parts) -> Option<String> {
    if parts.uri.path() != crate::stream::STREAM_PATH {
        return None;
    }
    parts.uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("ticket=").map(str::to_string))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_once_and_only_in_time() {
        let t = Tickets::default();
        let (a, exp) = t.issue("session-a", 1_000).unwrap();
        assert_eq!(exp, 1_000 + TICKET_TTL_MS);
        assert_eq!(a.len(), 64);
        assert_eq!(t.redeem(&a, 2_000).as_deref(), Some("session-a"));
        assert_eq!(t.redeem(&a, 2_000), None, "used up");
        let (b, _) = t.issue("session-b", 1_000).unwrap();
        assert_eq!(t.redeem(&b, 1_000 + TICKET_TTL_MS), None, "expired");
        assert_eq!(t.redeem("not a ticket", 1_000), None);
    }

    #[test]
    fn tickets_are_bounded() {
        let t = Tickets::default();
        let first = t.issue("s", 0).unwrap().0;
        for i in 1..=MAX_TICKETS as i64 {
            t.issue("s", i).unwrap();
        }
        assert!(t.open.lock().unwrap().len() <= MAX_TICKETS);
        assert_eq!(t.redeem(&first, 10), None, "the oldest went first");
    }
}
