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

/// Passwords nobody should use (and their like: the checks below also
/// refuse repeats and runs).
const TRIVIAL: [&str; 12] = [
    "password", "passw0rd", "123456", "qwerty", "abc123", "letmein", "welcome", "admin",
    "iloveyou", "zhilu", "changeme", "secret",
];

/// Password rules: at least 10 characters once leading and trailing
/// blanks are set aside, at least 5 different characters, not a common
/// password (or one repeated), not the account name.
pub fn check_password_for(p: &str, name: &str) -> Result<(), String> {
    let t = p.trim();
    if t.chars().count() < 10 {
        return Err(
            "password must have at least 10 characters (not counting blanks at either end)".into(),
        );
    }
    let mut distinct: Vec<char> = t.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err("password must use at least 5 different characters".into());
    }
    let lower = t.to_lowercase();
    let letters: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
    if TRIVIAL
        .iter()
        .any(|w| letters.replace(w, "").chars().count() <= 3)
        || is_run(&letters)
    {
        return Err("password is too easy to guess".into());
    }
    if !name.is_empty() && lower.contains(&name.to_lowercase()) && name.len() >= 3 {
        return Err("password must not contain the user name".into());
    }
    Ok(())
}

/// `1234567890`, `abcdefghij`, `0987654321`: one step each time.
fn is_run(s: &str) -> bool {
    let c: Vec<u32> = s.chars().map(u32::from).collect();
    // Digits run on from 9 to 0 (`1234567890`).
    let next = |a: u32, b: u32| b == a + 1 || (a == u32::from('9') && b == u32::from('0'));
    c.len() >= 2
        && (c.windows(2).all(|w| next(w[0], w[1])) || c.windows(2).all(|w| next(w[1], w[0])))
}

/// Password rules for new accounts (without a name to compare with).
pub fn check_password(p: &str) -> Result<(), String> {
    check_password_for(p, "")
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

/// Failed logins in a row a user name may have before each next attempt
/// waits.
const FREE_FAILURES: u32 = 3;

/// Failed-login limits. Per client address: at most `per_min` failures in
/// any minute, then the address waits (an attacker's address is stopped).
/// Per user name: each failure in a row doubles a short delay before the
/// next attempt after the third (0.25 s, 0.5 s, 1 s … up to `max_delay`), reset by a
/// success — so guessing one account stays slow from any number of
/// addresses, but its owner is only ever delayed, never locked out.
pub struct Limiter {
    per_min: u32,
    max_delay: Duration,
    by_ip: Mutex<HashMap<String, VecDeque<Instant>>>,
    by_user: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Limiter {
    /// A limiter.
    pub fn new(per_min: u32, max_delay_s: f64) -> Limiter {
        Limiter {
            per_min: per_min.max(1),
            max_delay: Duration::from_secs_f64(max_delay_s.max(0.0)),
            by_ip: Mutex::new(HashMap::new()),
            by_user: Mutex::new(HashMap::new()),
        }
    }

    fn user_delay(&self, failures: u32) -> Duration {
        // Three slips are free (typos happen); then 0.25 s, 0.5 s, 1 s, …
        if failures < FREE_FAILURES {
            return Duration::ZERO;
        }
        let d =
            Duration::from_millis(250).saturating_mul(1u32 << (failures - FREE_FAILURES).min(16));
        d.min(self.max_delay)
    }

    /// How long to wait (s, rounded up) before this address may try this
    /// user name again, if at all.
    pub fn blocked(&self, ip: &str, user: &str) -> Option<f64> {
        let now = Instant::now();
        let mut wait: f64 = 0.0;
        if let Ok(mut map) = self.by_ip.lock()
            && let Some(q) = map.get_mut(ip)
        {
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
            {
                q.pop_front();
            }
            if q.len() as u32 >= self.per_min {
                let oldest = q.front().copied().unwrap_or(now);
                wait = wait.max(60.0 - now.duration_since(oldest).as_secs_f64());
            }
        }
        if let Ok(map) = self.by_user.lock()
            && let Some((n, last)) = map.get(user)
        {
            let left = self
                .user_delay(*n)
                .saturating_sub(now.duration_since(*last));
            wait = wait.max(left.as_secs_f64());
        }
        (wait > 0.0).then_some(wait)
    }

    /// Counts a failure for the address and the user name.
    pub fn fail(&self, ip: &str, user: &str) {
        let now = Instant::now();
        if let Ok(mut map) = self.by_ip.lock() {
            if map.len() > 100_000 {
                // A flood of distinct addresses: forget rather than grow.
                map.clear();
            }
            map.entry(ip.to_string()).or_default().push_back(now);
        }
        if let Ok(mut map) = self.by_user.lock() {
            if map.len() > 100_000 {
                map.clear();
            }
            let e = map.entry(user.to_string()).or_insert((0, now));
            e.0 = e.0.saturating_add(1);
            e.1 = now;
        }
    }

    /// A successful login: the user name's delay starts again.
    pub fn succeed(&self, user: &str) {
        if let Ok(mut map) = self.by_user.lock() {
            map.remove(user);
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
    fn limiter_blocks_the_address_and_only_delays_the_user() {
        let l = Limiter::new(3, 30.0);
        for _ in 0..3 {
            assert!(l.blocked("ip:1", "b").is_none());
            l.fail("ip:1", "a");
        }
        // The address is stopped for the rest of the minute.
        assert!(l.blocked("ip:1", "b").unwrap() > 50.0);
        // The user name from elsewhere: a short delay only (3 failures: 0.25 s).
        let w = l.blocked("ip:2", "a").unwrap();
        assert!(w > 0.0 && w <= 0.25, "{w}");
        assert!(l.blocked("ip:2", "b").is_none());
        l.succeed("a");
        assert!(l.blocked("ip:2", "a").is_none());
        // The delay doubles and is capped.
        let l = Limiter::new(1000, 2.0);
        for _ in 0..40 {
            l.fail("ip:9", "c");
        }
        assert!(l.blocked("ip:8", "c").unwrap() <= 2.0);
    }

    #[test]
    fn names_and_passwords() {
        assert!(check_name("ops.zhang-1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough pw").is_ok());
        // Issue 19: blanks, repeats, runs and common words are refused.
        for bad in [
            "          ",
            "   abc    ",
            "aaaaaaaaaaaa",
            "abababababab",
            "1234567890",
            "password123",
            "Password!!",
            "qwertyqwerty",
        ] {
            assert!(check_password(bad).is_err(), "{bad:?}");
        }
        assert!(check_password_for("ops.zhang rules 9", "ops.zhang").is_err());
        assert!(check_password_for("fog on the G4 at 6", "ops.zhang").is_ok());
    }
}
