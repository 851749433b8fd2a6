//! Accounts, sessions and roles. Passwords are hashed with argon2 (PHC
//! strings); a session token is 32 random bytes shown once to the client
//! and stored only as its SHA-256. Failed logins are limited per user name
//! and per client address.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

/// Roles, ordered by what they may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads state, events, devices, proposals; follows the stream.
    Viewer,
    /// Also feeds readings and decides proposals.
    Operator,
    /// Also manages accounts and reads the audit log.
    Admin,
}

impl Role {
    /// Parses `viewer` / `operator` / `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Hashes a password (argon2id, a fresh salt).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new session token (64 hex digits).
pub fn new_token() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
    Ok(hex::encode(b))
}

/// What is stored for a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Password rules for new accounts.
pub fn check_password(p: &str) -> Result<(), String> {
    if p.chars().count() < 10 {
        return Err("password must have at least 10 characters".into());
    }
    Ok(())
}

/// Account-name rules.
pub fn check_name(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!("user name {n:?}: 1–64 of A–Z a–z 0–9 _ - ."))
    }
}

/// Failed-login limiter: at most `per_min` failures per key in any minute.
pub struct Limiter {
    per_min: u32,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    /// A limiter.
    pub fn new(per_min: u32) -> Limiter {
        Limiter {
            per_min,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait if any key is over its limit.
    pub fn blocked(&self, keys: &[&str]) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().ok()?;
        let mut wait = None;
        for k in keys {
            if let Some(q) = map.get_mut(*k) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
                {
                    q.pop_front();
                }
                if q.len() as u32 >= self.per_min {
                    let oldest = q.front().copied().unwrap_or(now);
                    let left = 60u64
                        .saturating_sub(now.duration_since(oldest).as_secs())
                        .max(1);
                    wait = Some(wait.map_or(left, |w: u64| w.max(left)));
                }
            }
        }
        wait
    }

    /// Counts a failure for each key.
    pub fn fail(&self, keys: &[&str]) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                // A flood of distinct names: forget the oldest state rather than grow.
                map.clear();
            }
            for k in keys {
                map.entry(k.to_string())
                    .or_default()
                    .push_back(Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }

    #[test]
    fn limiter_blocks_after_the_limit() {
        let l = Limiter::new(3);
        for _ in 0..3 {
            assert!(l.blocked(&["user:a", "ip:1"]).is_none());
            l.fail(&["user:a", "ip:1"]);
        }
        assert!(l.blocked(&["user:a", "ip:2"]).is_some());
        assert!(l.blocked(&["user:b", "ip:1"]).is_some());
        assert!(l.blocked(&["user:b", "ip:2"]).is_none());
    }

    #[test]
    fn names_and_passwords() {
        assert!(check_name("ops.zhang-1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough pw").is_ok());
    }
}
