//! Rows refused for their time: kept (bounded) so an operator can see
//! which source sends what.

use crate::error::db;
use crate::{QuarantineRow, Result, SourceClockRow, Store, insert_values};

impl Store {
    /// Stores refused rows in one transaction, then keeps only the newest
    /// `keep` of them.
    pub async fn quarantine(&self, rows: &[QuarantineRow], keep: i64) -> Result<()> {
        const OP: &str = "quarantine";
        if rows.is_empty() {
            return Ok(());
        }
        in_tx!(self, OP, tx => {
            insert_values(
                &mut tx,
                "INSERT INTO quarantine (wall_ms, kind, source, ts_ms, reason, row_json) ",
                "",
                6,
                rows,
                |mut v, r| {
                    v.push_bind(r.wall_ms)
                        .push_bind(r.kind.as_str())
                        .push_bind(r.source.as_str())
                        .push_bind(r.ts_ms)
                        .push_bind(r.reason.as_str())
                        .push_bind(r.row_json.as_str());
                },
            )
            .await
            .map_err(db(OP, "quarantine"))?;
            sqlx::query(
                "DELETE FROM quarantine WHERE id <= (SELECT MAX(id) FROM quarantine) - $1",
            )
            .bind(keep)
            .execute(&mut *tx)
            .await
            .map_err(db(OP, "quarantine"))?;
        });
        Ok(())
    }

    /// Quarantined rows, newest first: at most `limit` (0 = 1000) with
    /// `id < before` (paging; `None` = from the newest).
    pub async fn quarantined(&self, before: Option<i64>, limit: u32) -> Result<Vec<QuarantineRow>> {
        const SQL: &str = "SELECT id, wall_ms, kind, source, ts_ms, reason, row_json \
            FROM quarantine WHERE id < $1 ORDER BY id DESC LIMIT $2";
        let before = before.unwrap_or(i64::MAX);
        let n = crate::limit_or_default(limit);
        on_pool!(self, p => sqlx::query_as(SQL).bind(before).bind(n).fetch_all(p).await)
            .map_err(db("quarantined", "quarantine"))
    }

    /// Replaces the stored set of sources whose clocks are off (one
    /// transaction: the set as a whole, never half of it).
    pub async fn save_source_clocks(&self, rows: &[SourceClockRow]) -> Result<()> {
        const OP: &str = "save_source_clocks";
        in_tx!(self, OP, tx => {
            sqlx::query("DELETE FROM source_clocks")
                .execute(&mut *tx)
                .await
                .map_err(db(OP, "source_clocks"))?;
            if !rows.is_empty() {
                insert_values(
                    &mut tx,
                    "INSERT INTO source_clocks (source, why, ahead_ms, first_bad_wall_ms, \
                     last_bad_wall_ms, event_id) ",
                    "",
                    6,
                    rows,
                    |mut v, r| {
                        v.push_bind(r.source.as_str())
                            .push_bind(r.why.as_str())
                            .push_bind(r.ahead_ms)
                            .push_bind(r.first_bad_wall_ms)
                            .push_bind(r.last_bad_wall_ms)
                            .push_bind(r.event_id.as_deref());
                    },
                )
                .await
                .map_err(db(OP, "source_clocks"))?;
            }
        });
        Ok(())
    }

    /// The stored set of sources whose clocks are off, by source.
    pub async fn source_clocks(&self) -> Result<Vec<SourceClockRow>> {
        const SQL: &str = "SELECT source, why, ahead_ms, first_bad_wall_ms, last_bad_wall_ms, \
            event_id FROM source_clocks ORDER BY source";
        on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await)
            .map_err(db("source_clocks", "source_clocks"))
    }
}
