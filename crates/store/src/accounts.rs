//! Accounts and login sessions. Passwords arrive hashed and tokens arrive
//! as hashes: the store never sees either in clear.

use crate::error::{db, is_unique_violation};
use crate::{Result, SessionRow, Store, StoreError, UserRow};

/// The meta key of the accounts generation.
const ACCOUNTS_GEN_KEY: &str = "accounts_gen";

/// Raises the accounts generation by one (from 0 when it was never set).
const BUMP_ACCOUNTS_GEN: &str = "INSERT INTO meta (key, value) VALUES ('accounts_gen', '1') \
    ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)";

/// An account as `zhilu user list` shows it (no password hash).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AccountSummary {
    /// Login name.
    pub name: String,
    /// `viewer` / `operator` / `admin`.
    pub role: String,
    /// Server time the account was made.
    pub created_wall_ms: i64,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Server time of its last successful login, when the audit log has one.
    pub last_login_wall_ms: Option<i64>,
}

impl Store {
    /// Creates an account; a name already taken is [`StoreError::Conflict`].
    pub async fn create_user(&self, u: &UserRow) -> Result<()> {
        const OP: &str = "create_user";
        const SQL: &str = "INSERT INTO users (name, role, pw_hash, created_wall_ms, disabled) \
            VALUES ($1, $2, $3, $4, $5)";
        let res = on_pool!(self, p => {
            sqlx::query(SQL)
                .bind(u.name.as_str())
                .bind(u.role.as_str())
                .bind(u.pw_hash.as_str())
                .bind(u.created_wall_ms)
                .bind(u.disabled)
                .execute(p)
                .await
                .map(|_| ())
        });
        res.map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict {
                    op: OP,
                    what: format!("user {:?}", u.name),
                }
            } else {
                db(OP, "users")(e)
            }
        })
    }

    /// One account by name.
    pub async fn user(&self, name: &str) -> Result<Option<UserRow>> {
        const SQL: &str =
            "SELECT name, role, pw_hash, created_wall_ms, disabled FROM users WHERE name = $1";
        on_pool!(self, p => sqlx::query_as(SQL).bind(name).fetch_optional(p).await)
            .map_err(db("user", "users"))
    }

    /// Every account, by name.
    pub async fn users(&self) -> Result<Vec<UserRow>> {
        const SQL: &str =
            "SELECT name, role, pw_hash, created_wall_ms, disabled FROM users ORDER BY name";
        on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await).map_err(db("users", "users"))
    }

    /// How many accounts exist (0 means the first admin is still to be made).
    pub async fn user_count(&self) -> Result<i64> {
        on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(p).await)
            .map_err(db("user_count", "users"))
    }

    /// Replaces an account's password hash; an unknown name is
    /// [`StoreError::NotFound`].
    pub async fn set_password(&self, name: &str, pw_hash: &str) -> Result<()> {
        self.set_user_text(
            "set_password",
            "UPDATE users SET pw_hash = $1 WHERE name = $2",
            name,
            pw_hash,
        )
        .await
    }

    /// Changes an account's role (its sessions carry the new role at once:
    /// the role is read from the account). An unknown name is
    /// [`StoreError::NotFound`].
    pub async fn set_user_role(&self, name: &str, role: &str) -> Result<()> {
        self.set_user_text(
            "set_user_role",
            "UPDATE users SET role = $1 WHERE name = $2",
            name,
            role,
        )
        .await
    }

    /// Runs `sql` (`UPDATE users SET <column> = $1 WHERE name = $2`) with a
    /// text value and raises the accounts generation, in one transaction;
    /// an unknown name is [`StoreError::NotFound`].
    async fn set_user_text(
        &self,
        op: &'static str,
        sql: &'static str,
        name: &str,
        value: &str,
    ) -> Result<()> {
        let n = in_tx!(self, op, tx => {
            let n = sqlx::query(sql)
                .bind(value)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
                .map_err(db(op, "users"))?;
            if n > 0 {
                sqlx::query(BUMP_ACCOUNTS_GEN)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(op, "meta"))?;
            }
            n
        });
        found(op, name, n)
    }

    /// Disables (or re-enables) an account; a disabled account's sessions
    /// stop resolving at once. An unknown name is [`StoreError::NotFound`].
    pub async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        const OP: &str = "set_user_disabled";
        let n = in_tx!(self, OP, tx => {
            let n = sqlx::query("UPDATE users SET disabled = $1 WHERE name = $2")
                .bind(disabled)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
                .map_err(db(OP, "users"))?;
            if n > 0 {
                sqlx::query(BUMP_ACCOUNTS_GEN)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(OP, "meta"))?;
            }
            n
        });
        found(OP, name, n)
    }

    /// Ends every session of an account (a disabled account, a password
    /// reset): their tokens never resolve again, even once the account is
    /// enabled. Returns how many there were; raises the accounts generation
    /// when there were any.
    pub async fn delete_user_sessions(&self, name: &str) -> Result<u64> {
        const OP: &str = "delete_user_sessions";
        Ok(in_tx!(self, OP, tx => {
            let n = sqlx::query("DELETE FROM sessions WHERE user_name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
                .map_err(db(OP, "sessions"))?;
            if n > 0 {
                sqlx::query(BUMP_ACCOUNTS_GEN)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(OP, "meta"))?;
            }
            n
        }))
    }

    /// The accounts generation: raised by every change to an account's
    /// role, password or disabled flag and by [`Store::delete_user_sessions`],
    /// whichever process made it (the command line writes the same
    /// database a running server reads). A server that sees it change
    /// checks its open streams' sessions again. 0 before the first change.
    pub async fn accounts_generation(&self) -> Result<i64> {
        let v = self.get_meta(ACCOUNTS_GEN_KEY).await?;
        match v {
            None => Ok(0),
            Some(v) => v.parse().map_err(|_| StoreError::Corrupt {
                op: "accounts_generation",
                table: "meta",
                detail: format!("{ACCOUNTS_GEN_KEY} = {v:?}"),
            }),
        }
    }

    /// Every account with its last successful login (from the audit log's
    /// `login` entries), by name.
    pub async fn accounts(&self) -> Result<Vec<AccountSummary>> {
        const SQL: &str = "SELECT u.name, u.role, u.created_wall_ms, u.disabled, \
            l.last_login_wall_ms FROM users u LEFT JOIN ( \
                SELECT actor, MAX(wall_ms) AS last_login_wall_ms FROM audit \
                WHERE action = 'login' GROUP BY actor \
            ) l ON l.actor = u.name ORDER BY u.name";
        on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await)
            .map_err(db("accounts", "users, audit"))
    }

    /// Stores a session (`s.role` is ignored: it is always read from the
    /// account). The user must exist.
    pub async fn create_session(&self, s: &SessionRow) -> Result<()> {
        const SQL: &str = "INSERT INTO sessions (token_hash, user_name, created_wall_ms, \
            expires_wall_ms) VALUES ($1, $2, $3, $4)";
        on_pool!(self, p => {
            sqlx::query(SQL)
                .bind(s.token_hash.as_str())
                .bind(s.user.as_str())
                .bind(s.created_wall_ms)
                .bind(s.expires_wall_ms)
                .execute(p)
                .await
                .map(|_| ())
        })
        .map_err(db("create_session", "sessions"))
    }

    /// The session with this token hash and its user's current role; `None`
    /// when there is none or the user is disabled. Expiry is the caller's to
    /// check (`expires_wall_ms`), against its own clock.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>> {
        const SQL: &str = "SELECT s.token_hash, s.user_name AS \"user\", u.role, \
            s.created_wall_ms, s.expires_wall_ms FROM sessions s \
            JOIN users u ON u.name = s.user_name \
            WHERE s.token_hash = $1 AND NOT u.disabled";
        on_pool!(self, p => sqlx::query_as(SQL).bind(token_hash).fetch_optional(p).await)
            .map_err(db("session", "sessions, users"))
    }

    /// Ends a session (logging out); unknown hashes are ignored.
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(p)
                .await
                .map(|_| ())
        })
        .map_err(db("delete_session", "sessions"))
    }

    /// Deletes sessions expired at or before `now_wall_ms`; returns how many.
    pub async fn purge_sessions(&self, now_wall_ms: i64) -> Result<u64> {
        on_pool!(self, p => {
            sqlx::query("DELETE FROM sessions WHERE expires_wall_ms <= $1")
                .bind(now_wall_ms)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("purge_sessions", "sessions"))
    }
}

/// `Ok` when an update touched a row, else [`StoreError::NotFound`].
fn found(op: &'static str, name: &str, rows: u64) -> Result<()> {
    if rows == 0 {
        Err(StoreError::NotFound {
            op,
            what: format!("user {name:?}"),
        })
    } else {
        Ok(())
    }
}
