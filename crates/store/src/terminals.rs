//! JT/T 808 terminals and their auth codes (stored as hashes).

use crate::error::db;
use crate::{Result, Store};

/// A registered terminal.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TerminalRow {
    /// Phone number (the terminal's identity on the wire).
    pub phone: String,
    /// Plate it registered with.
    pub plate: String,
    /// Terminal id.
    pub terminal_id: String,
    /// SHA-256 (hex) of the auth code issued to it.
    pub auth_hash: String,
    /// When it registered (server clock).
    pub registered_wall_ms: i64,
}

impl Store {
    /// Registers (or re-registers) a terminal; a new auth code replaces the old.
    pub async fn upsert_terminal(&self, t: &TerminalRow) -> Result<()> {
        const SQL: &str = "INSERT INTO terminals (phone, plate, terminal_id, auth_hash, registered_wall_ms) \
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (phone) DO UPDATE SET plate = excluded.plate, \
            terminal_id = excluded.terminal_id, auth_hash = excluded.auth_hash, \
            registered_wall_ms = excluded.registered_wall_ms";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(t.phone.as_str())
            .bind(t.plate.as_str())
            .bind(t.terminal_id.as_str())
            .bind(t.auth_hash.as_str())
            .bind(t.registered_wall_ms)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(db("upsert_terminal", "terminals"))
    }

    /// One terminal by phone.
    pub async fn terminal(&self, phone: &str) -> Result<Option<TerminalRow>> {
        const SQL: &str = "SELECT phone, plate, terminal_id, auth_hash, registered_wall_ms FROM terminals WHERE phone = $1";
        on_pool!(self, p => sqlx::query_as(SQL).bind(phone).fetch_optional(p).await)
            .map_err(db("terminal", "terminals"))
    }

    /// Forgets a terminal (its auth code stops working).
    pub async fn delete_terminal(&self, phone: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query("DELETE FROM terminals WHERE phone = $1").bind(phone).execute(p).await.map(|_| ()))
            .map_err(db("delete_terminal", "terminals"))
    }

    /// Every terminal, by phone.
    pub async fn terminals(&self) -> Result<Vec<TerminalRow>> {
        const SQL: &str = "SELECT phone, plate, terminal_id, auth_hash, registered_wall_ms FROM terminals ORDER BY phone";
        on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await)
            .map_err(db("terminals", "terminals"))
    }
}
