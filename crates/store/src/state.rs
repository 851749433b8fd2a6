//! Small pieces of server state: what each device confirmed, corridor state
//! snapshots, and key/value facts (meta).

use crate::error::db;
use crate::{DeviceStateRow, Result, Store};

impl Store {
    /// Inserts or replaces a device's row (every column).
    pub async fn upsert_device_state(&self, d: &DeviceStateRow) -> Result<()> {
        const SQL: &str = "INSERT INTO device_states (device, state_json, confirmed_wall_ms, \
            online, last_seen_wall_ms, pending_json, updated_wall_ms) \
            VALUES ($1, $2, $3, $4, $5, $6, $7) \
            ON CONFLICT (device) DO UPDATE SET state_json = excluded.state_json, \
            confirmed_wall_ms = excluded.confirmed_wall_ms, online = excluded.online, \
            last_seen_wall_ms = excluded.last_seen_wall_ms, \
            pending_json = excluded.pending_json, updated_wall_ms = excluded.updated_wall_ms";
        on_pool!(self, p => {
            sqlx::query(SQL)
                .bind(d.device.as_str())
                .bind(d.state_json.as_str())
                .bind(d.confirmed_wall_ms)
                .bind(d.online)
                .bind(d.last_seen_wall_ms)
                .bind(d.pending_json.as_deref())
                .bind(d.updated_wall_ms)
                .execute(p)
                .await
                .map(|_| ())
        })
        .map_err(db("upsert_device_state", "device_states"))
    }

    /// Every device's row, by device id.
    pub async fn device_states(&self) -> Result<Vec<DeviceStateRow>> {
        const SQL: &str = "SELECT device, state_json, confirmed_wall_ms, online, \
            last_seen_wall_ms, pending_json, updated_wall_ms FROM device_states ORDER BY device";
        on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await)
            .map_err(db("device_states", "device_states"))
    }

    /// The newest corridor state snapshot: `(data time, JSON)`.
    pub async fn latest_state_snapshot(&self) -> Result<Option<(i64, String)>> {
        const SQL: &str =
            "SELECT ts_ms, json FROM state_snapshots ORDER BY ts_ms DESC, id DESC LIMIT 1";
        on_pool!(self, p => sqlx::query_as(SQL).fetch_optional(p).await)
            .map_err(db("latest_state_snapshot", "state_snapshots"))
    }

    /// A meta value (`last_tick_ms`, …).
    pub async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        const SQL: &str = "SELECT value FROM meta WHERE key = $1";
        on_pool!(self, p => sqlx::query_scalar(SQL).bind(key).fetch_optional(p).await)
            .map_err(db("get_meta", "meta"))
    }

    /// Sets a meta value (insert or replace).
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        const SQL: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
            ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        on_pool!(self, p => {
            sqlx::query(SQL).bind(key).bind(value).execute(p).await.map(|_| ())
        })
        .map_err(db("set_meta", "meta"))
    }
}
