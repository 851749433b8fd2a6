//! Account administration from the command line (`zhilu user list /
//! passwd / disable / enable`) and the server's watch on accounts changed
//! by another process.
//!
//! The command line writes the same database a running server reads, so
//! it cannot tell the server's streams to end. Every change that should
//! end a stream (a disabled account, a role, a password, sessions ended)
//! raises the store's accounts generation; the running server polls it
//! ([`watch`]) and, when it moved, has every open stream check its session
//! again — the path an admin's change through the API already takes.

use std::time::Duration;

use anyhow::Context;
use zhilu_store::{AccountSummary, AuditEntry, Store};

use crate::AppState;
use crate::auth::{self, Role};
use crate::config::ServerConfig;
use crate::engine::wall_ms;

/// How often a running server looks at the accounts generation.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Opens the configured database, which must exist (a mistyped path must
/// not read as an empty account list or create a database).
async fn open(cfg: &ServerConfig) -> anyhow::Result<Store> {
    match Store::open_existing(&cfg.storage.url).await {
        Ok(s) => Ok(s),
        // The store's message names the URL already.
        Err(
            e @ (zhilu_store::StoreError::BadUrl { .. } | zhilu_store::StoreError::Connect { .. }),
        ) => Err(e.into()),
        Err(e) => Err(e).with_context(|| format!("opening the database {}", shown(cfg))),
    }
}

/// The configured database URL fit to print (no password).
pub fn shown(cfg: &ServerConfig) -> String {
    zhilu_store::redact_url(&cfg.storage.url)
}

/// `zhilu user list`: every account with its role, whether it is disabled,
/// and its last login.
pub async fn list(cfg: &ServerConfig) -> anyhow::Result<Vec<AccountSummary>> {
    let store = open(cfg).await?;
    let rows = store.accounts().await;
    store.close().await;
    Ok(rows?)
}

/// `zhilu user passwd`: a new password under the same rules as everywhere
/// else; the account's sessions end (whoever held the old password is
/// logged out). Returns how many sessions ended.
pub async fn set_password(cfg: &ServerConfig, name: &str, password: &str) -> anyhow::Result<u64> {
    auth::check_password_for(password, name).map_err(anyhow::Error::msg)?;
    let store = open(cfg).await?;
    let out = async {
        if store.user(name).await?.is_none() {
            anyhow::bail!("no user {name:?} in {}", shown(cfg));
        }
        let pw = password.to_string();
        let h = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
            .await?
            .map_err(anyhow::Error::msg)?;
        store.set_password(name, &h).await?;
        let ended = store.delete_user_sessions(name).await?;
        audit(
            &store,
            "user.passwd",
            name,
            serde_json::json!({"sessions_ended": ended}),
        )
        .await?;
        Ok(ended)
    }
    .await;
    store.close().await;
    out
}

/// `zhilu user disable` / `enable`: a disabled account cannot log in, its
/// sessions end and its open streams close (within [`WATCH_EVERY`] on a
/// running server). The last enabled admin cannot be disabled: nobody
/// could manage accounts through the API any more. Returns how many
/// sessions ended.
pub async fn set_disabled(cfg: &ServerConfig, name: &str, disabled: bool) -> anyhow::Result<u64> {
    let store = open(cfg).await?;
    let out = async {
        let users = store.users().await?;
        let Some(user) = users.iter().find(|u| u.name == name) else {
            anyhow::bail!("no user {name:?} in {}", shown(cfg));
        };
        let is_admin = Role::parse(&user.role) == Some(Role::Admin);
        let other_admins = users
            .iter()
            .filter(|u| u.name != name && !u.disabled && Role::parse(&u.role) == Some(Role::Admin))
            .count();
        if disabled && is_admin && !user.disabled && other_admins == 0 {
            anyhow::bail!(
                "{name:?} is the last enabled admin in {}: add or enable another admin first",
                shown(cfg)
            );
        }
        store.set_user_disabled(name, disabled).await?;
        let ended = if disabled {
            store.delete_user_sessions(name).await?
        } else {
            0
        };
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        audit(
            &store,
            action,
            name,
            serde_json::json!({"sessions_ended": ended}),
        )
        .await?;
        Ok(ended)
    }
    .await;
    store.close().await;
    out
}

async fn audit(
    store: &Store,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    store
        .append_audit(&AuditEntry {
            seq: 0,
            wall_ms: wall_ms(),
            actor: "cli".into(),
            action: action.into(),
            target: target.into(),
            detail: detail.to_string(),
        })
        .await?;
    Ok(())
}

/// Runs for the server's life: when the accounts generation moves (a
/// change made by `zhilu user …` or another server on the same database),
/// open streams check their sessions again. A database error is retried
/// at the next look.
pub async fn watch(st: AppState) {
    let mut seen = st.store.accounts_generation().await.ok();
    let mut every = tokio::time::interval(WATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Ok(g) = st.store.accounts_generation().await else {
            continue;
        };
        if seen != Some(g) {
            seen = Some(g);
            st.sessions.send_modify(|n| *n += 1);
        }
    }
}
