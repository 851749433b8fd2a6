//! What operators do to events (acknowledge, assign, note, close) and the
//! shift handover (交接班): migration 0007. Each workflow step is written in
//! one transaction with its line in the event's history (`event_changes`)
//! and its audit entry, so none exists without the others.

use serde::Serialize;

use crate::error::db;
use crate::{AuditEntry, EventChangeRow, ProposalRow, Result, Store, limit_or_default};

/// Where an event stands with the operators.
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkflowRow {
    /// The event (`E17`).
    pub event_id: String,
    /// `open`, `acknowledged` or `closed`.
    pub status: String,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When (server time).
    pub acked_wall_ms: Option<i64>,
    /// The user it is assigned to.
    pub assigned_to: Option<String>,
    /// Who assigned it.
    pub assigned_by: Option<String>,
    /// When (server time).
    pub assigned_wall_ms: Option<i64>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// When (server time).
    pub closed_wall_ms: Option<i64>,
    /// Why it was closed.
    pub close_reason: Option<String>,
    /// Last change (server time).
    pub updated_wall_ms: i64,
}

/// An operator's note on an event.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct NoteRow {
    /// Assigned by the store (0 when appending).
    pub seq: i64,
    /// The event (`E17`).
    pub event_id: String,
    /// When (server time).
    pub wall_ms: i64,
    /// Who wrote it.
    pub author: String,
    /// The text.
    pub text: String,
}

/// A signed shift handover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct HandoverRow {
    /// Assigned by the store (0 when signing).
    pub id: i64,
    /// Start of the shift it covers (server time; the previous handover's
    /// signature, 0 for the first).
    pub from_wall_ms: i64,
    /// When the outgoing operator signed (the shift's end).
    pub signed_wall_ms: i64,
    /// The outgoing operator.
    pub signed_by: String,
    /// The outgoing operator's note.
    pub note: String,
    /// The shift's log as signed (JSON).
    pub log_json: String,
    /// The incoming operator who acknowledged it.
    pub acked_by: Option<String>,
    /// When.
    pub acked_wall_ms: Option<i64>,
    /// The incoming operator's note.
    pub ack_note: Option<String>,
}

macro_rules! workflow_cols {
    () => {
        "event_id, status, acked_by, acked_wall_ms, assigned_to, assigned_by, \
         assigned_wall_ms, closed_by, closed_wall_ms, close_reason, updated_wall_ms"
    };
}
macro_rules! handover_cols {
    () => {
        "id, from_wall_ms, signed_wall_ms, signed_by, note, log_json, acked_by, \
         acked_wall_ms, ack_note"
    };
}

impl Store {
    /// The workflow of one event (`None`: nobody has touched it: open).
    pub async fn event_workflow(&self, event_id: &str) -> Result<Option<WorkflowRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            workflow_cols!(),
            " FROM event_workflow WHERE event_id = $1"
        );
        on_pool!(self, p => sqlx::query_as(SQL).bind(event_id).fetch_optional(p).await)
            .map_err(db("event_workflow", "event_workflow"))
    }

    /// Every event's workflow that anyone touched (for the event list).
    pub async fn event_workflows(&self) -> Result<Vec<WorkflowRow>> {
        const SQL: &str = concat!("SELECT ", workflow_cols!(), " FROM event_workflow");
        on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await)
            .map_err(db("event_workflows", "event_workflow"))
    }

    /// An event's notes, oldest first.
    pub async fn event_notes(&self, event_id: &str) -> Result<Vec<NoteRow>> {
        const SQL: &str = "SELECT seq, event_id, wall_ms, author, text FROM event_notes \
            WHERE event_id = $1 ORDER BY seq";
        on_pool!(self, p => sqlx::query_as(SQL).bind(event_id).fetch_all(p).await)
            .map_err(db("event_notes", "event_notes"))
    }

    /// Notes written at or after `since_wall_ms`, oldest first.
    pub async fn notes_since(&self, since_wall_ms: i64) -> Result<Vec<NoteRow>> {
        const SQL: &str = "SELECT seq, event_id, wall_ms, author, text FROM event_notes \
            WHERE wall_ms >= $1 ORDER BY seq";
        on_pool!(self, p => sqlx::query_as(SQL).bind(since_wall_ms).fetch_all(p).await)
            .map_err(db("notes_since", "event_notes"))
    }

    /// Records one workflow step in one transaction: the event's workflow
    /// as it now stands (upserted), the step as a line of the event's
    /// history, the note if it is one (its seq assigned here), and the
    /// audit entry. The event must exist.
    pub async fn record_workflow(
        &self,
        w: &WorkflowRow,
        change: &EventChangeRow,
        note: Option<&NoteRow>,
        audit: &AuditEntry,
    ) -> Result<()> {
        const OP: &str = "record_workflow";
        const UPSERT: &str = "INSERT INTO event_workflow (event_id, status, acked_by, \
            acked_wall_ms, assigned_to, assigned_by, assigned_wall_ms, closed_by, \
            closed_wall_ms, close_reason, updated_wall_ms) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
            ON CONFLICT (event_id) DO UPDATE SET status = excluded.status, \
            acked_by = excluded.acked_by, acked_wall_ms = excluded.acked_wall_ms, \
            assigned_to = excluded.assigned_to, assigned_by = excluded.assigned_by, \
            assigned_wall_ms = excluded.assigned_wall_ms, closed_by = excluded.closed_by, \
            closed_wall_ms = excluded.closed_wall_ms, close_reason = excluded.close_reason, \
            updated_wall_ms = excluded.updated_wall_ms";
        const CHANGE: &str = "INSERT INTO event_changes (event_id, change, at_ms, wall_ms, json) \
            VALUES ($1, $2, $3, $4, $5)";
        const NOTE: &str = "INSERT INTO event_notes (event_id, wall_ms, author, text) \
            VALUES ($1, $2, $3, $4)";
        in_tx!(self, OP, tx => {
            sqlx::query(UPSERT)
                .bind(w.event_id.as_str())
                .bind(w.status.as_str())
                .bind(w.acked_by.as_deref())
                .bind(w.acked_wall_ms)
                .bind(w.assigned_to.as_deref())
                .bind(w.assigned_by.as_deref())
                .bind(w.assigned_wall_ms)
                .bind(w.closed_by.as_deref())
                .bind(w.closed_wall_ms)
                .bind(w.close_reason.as_deref())
                .bind(w.updated_wall_ms)
                .execute(&mut *tx)
                .await
                .map_err(db(OP, "event_workflow"))?;
            sqlx::query(CHANGE)
                .bind(change.event_id.as_str())
                .bind(change.change.as_str())
                .bind(change.at_ms)
                .bind(change.wall_ms)
                .bind(change.json.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db(OP, "event_changes"))?;
            if let Some(n) = note {
                sqlx::query(NOTE)
                    .bind(n.event_id.as_str())
                    .bind(n.wall_ms)
                    .bind(n.author.as_str())
                    .bind(n.text.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db(OP, "event_notes"))?;
            }
            audit_in_tx!(tx, audit, OP);
        });
        Ok(())
    }

    /// History lines (any event) written at or after `since_wall_ms`,
    /// except the brain's updates, oldest first, at most `limit` (0 = 1000).
    pub async fn changes_since(
        &self,
        since_wall_ms: i64,
        limit: u32,
    ) -> Result<Vec<EventChangeRow>> {
        const SQL: &str = "SELECT event_id, change, at_ms, wall_ms, json FROM event_changes \
            WHERE wall_ms >= $1 AND change <> 'updated' ORDER BY seq LIMIT $2";
        on_pool!(self, p => {
            sqlx::query_as(SQL)
                .bind(since_wall_ms)
                .bind(limit_or_default(limit))
                .fetch_all(p)
                .await
        })
        .map_err(db("changes_since", "event_changes"))
    }

    /// Proposals decided (by people or by their deadline) at or after
    /// `since_wall_ms`, oldest decision first.
    pub async fn proposals_decided_since(&self, since_wall_ms: i64) -> Result<Vec<ProposalRow>> {
        const SQL: &str = "SELECT id, created_wall_ms, expires_wall_ms, at_ms, device, kind, \
            json, event_id, reason, status, decided_by, decided_wall_ms, decision_reason, \
            final_json, plan_id FROM proposals WHERE decided_wall_ms >= $1 ORDER BY decided_wall_ms, id";
        on_pool!(self, p => sqlx::query_as(SQL).bind(since_wall_ms).fetch_all(p).await)
            .map_err(db("proposals_decided_since", "proposals"))
    }

    /// The latest signed handover.
    pub async fn last_handover(&self) -> Result<Option<HandoverRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            handover_cols!(),
            " FROM handovers ORDER BY id DESC LIMIT 1"
        );
        on_pool!(self, p => sqlx::query_as(SQL).fetch_optional(p).await)
            .map_err(db("last_handover", "handovers"))
    }

    /// Signed handovers, newest first, at most `limit` (0 = 1000).
    pub async fn handovers(&self, limit: u32) -> Result<Vec<HandoverRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            handover_cols!(),
            " FROM handovers ORDER BY id DESC LIMIT $1"
        );
        on_pool!(self, p => sqlx::query_as(SQL).bind(limit_or_default(limit)).fetch_all(p).await)
            .map_err(db("handovers", "handovers"))
    }

    /// One handover by id.
    pub async fn handover(&self, id: i64) -> Result<Option<HandoverRow>> {
        const SQL: &str = concat!("SELECT ", handover_cols!(), " FROM handovers WHERE id = $1");
        on_pool!(self, p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await)
            .map_err(db("handover", "handovers"))
    }

    /// Stores a signed handover with its audit entry (whose target is set
    /// to the new id, `H3`), in one transaction; returns the stored row.
    pub async fn sign_handover(&self, h: &HandoverRow, audit: &AuditEntry) -> Result<HandoverRow> {
        const OP: &str = "sign_handover";
        const SQL: &str = concat!(
            "INSERT INTO handovers (from_wall_ms, signed_wall_ms, signed_by, note, log_json) \
             VALUES ($1, $2, $3, $4, $5) RETURNING ",
            handover_cols!()
        );
        let row: HandoverRow = in_tx!(self, OP, tx => {
            let row: HandoverRow = sqlx::query_as(SQL)
                .bind(h.from_wall_ms)
                .bind(h.signed_wall_ms)
                .bind(h.signed_by.as_str())
                .bind(h.note.as_str())
                .bind(h.log_json.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db(OP, "handovers"))?;
            // The handover's id is known only now: the entry names it.
            let entry = AuditEntry {
                target: format!("H{}", row.id),
                ..audit.clone()
            };
            audit_in_tx!(tx, entry, OP);
            row
        });
        Ok(row)
    }

    /// The incoming operator acknowledges a handover exactly once: sets
    /// who, when and the note only if nobody has yet, with its audit entry,
    /// in one transaction. `None` (nothing written) when the handover does
    /// not exist or was already acknowledged.
    pub async fn ack_handover(
        &self,
        id: i64,
        by: &str,
        wall_ms: i64,
        note: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<Option<HandoverRow>> {
        const OP: &str = "ack_handover";
        const SQL: &str = concat!(
            "UPDATE handovers SET acked_by = $1, acked_wall_ms = $2, ack_note = $3 \
             WHERE id = $4 AND acked_by IS NULL RETURNING ",
            handover_cols!()
        );
        let row: Option<HandoverRow> = in_tx!(self, OP, tx => {
            let row: Option<HandoverRow> = sqlx::query_as(SQL)
                .bind(by)
                .bind(wall_ms)
                .bind(note)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(OP, "handovers"))?;
            if row.is_none() {
                return Ok(None);
            }
            audit_in_tx!(tx, audit, OP);
            row
        });
        Ok(row)
    }
}

impl Store {
    /// A detector's lane rows with `from_ts_ms <= ts_ms <= to_ts_ms`, oldest
    /// first (the lanes at an incident's site, for its card).
    pub async fn detector_rows(
        &self,
        detector: &str,
        from_ts_ms: i64,
        to_ts_ms: i64,
    ) -> Result<Vec<crate::ObsRow>> {
        const SQL: &str = "SELECT seq, ts_ms, detector, lane, interval_s, volume, speed_kmh, \
            occupancy_pct FROM obs WHERE ts_ms >= $1 AND ts_ms <= $2 AND detector = $3 \
            ORDER BY ts_ms, lane";
        on_pool!(self, p => {
            sqlx::query_as(SQL)
                .bind(from_ts_ms)
                .bind(to_ts_ms)
                .bind(detector)
                .fetch_all(p)
                .await
        })
        .map_err(db("detector_rows", "obs"))
    }
}

impl Store {
    /// The proposals that answer one event, oldest first.
    pub async fn proposals_for_event(&self, event_id: &str) -> Result<Vec<ProposalRow>> {
        // The columns of `events::PROPOSAL_COLS` (a ProposalRow).
        const SQL: &str = "SELECT id, created_wall_ms, expires_wall_ms, at_ms, device, kind, \
            json, event_id, reason, status, decided_by, decided_wall_ms, decision_reason, \
            final_json, plan_id FROM proposals WHERE event_id = $1 ORDER BY id";
        on_pool!(self, p => sqlx::query_as(SQL).bind(event_id).fetch_all(p).await)
            .map_err(db("proposals_for_event", "proposals"))
    }
}

impl Store {
    /// Reopens an event the operators closed while the brain still saw it,
    /// because it got worse: in one transaction, sets its workflow back to
    /// `open` (who acknowledged and who closed, and why, are cleared; the
    /// history and the audit keep them), writes `change` and `audit`.
    /// Returns whether it was closed (nothing is written otherwise).
    pub async fn reopen_event(&self, change: &EventChangeRow, audit: &AuditEntry) -> Result<bool> {
        const OP: &str = "reopen_event";
        const SQL: &str = "UPDATE event_workflow SET status = 'open', acked_by = NULL, \
            acked_wall_ms = NULL, closed_by = NULL, closed_wall_ms = NULL, close_reason = NULL, \
            updated_wall_ms = $1 WHERE event_id = $2 AND status = 'closed'";
        const CHANGE: &str = "INSERT INTO event_changes (event_id, change, at_ms, wall_ms, json) \
            VALUES ($1, $2, $3, $4, $5)";
        let done: bool = in_tx!(self, OP, tx => {
            let n = sqlx::query(SQL)
                .bind(change.wall_ms)
                .bind(change.event_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db(OP, "event_workflow"))?
                .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            sqlx::query(CHANGE)
                .bind(change.event_id.as_str())
                .bind(change.change.as_str())
                .bind(change.at_ms)
                .bind(change.wall_ms)
                .bind(change.json.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db(OP, "event_changes"))?;
            audit_in_tx!(tx, audit, OP);
            true
        });
        Ok(done)
    }
}
