//! What the brain decided: events, their changes, actions, proposals (and
//! operators' decisions on them), the audit log — written per closed tick.

use std::collections::HashMap;
use std::hash::Hash;

use sqlx::QueryBuilder;

use crate::error::db;
use crate::{
    ActionRow, AuditEntry, EventChangeRow, EventQuery, EventRow, PlanRow, ProposalDecision,
    ProposalRow, Result, Store, TickCommit, insert_values, limit_or_default,
};

const EVENT_COLS: &str = "id, kind, direction, from_m, to_m, start_ms, detected_ms, end_ms, \
    severity, rule, \"key\", json, updated_wall_ms";
const EVENT_UPSERT_HEAD: &str = "INSERT INTO events (id, kind, direction, from_m, to_m, \
    start_ms, detected_ms, end_ms, severity, rule, \"key\", json, updated_wall_ms) ";
const EVENT_UPSERT_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, \
    direction = excluded.direction, from_m = excluded.from_m, to_m = excluded.to_m, \
    start_ms = excluded.start_ms, detected_ms = excluded.detected_ms, end_ms = excluded.end_ms, \
    severity = excluded.severity, rule = excluded.rule, \"key\" = excluded.\"key\", \
    json = excluded.json, updated_wall_ms = excluded.updated_wall_ms";
const CHANGE_INSERT: &str = "INSERT INTO event_changes (event_id, change, at_ms, wall_ms, json) ";
const ACTION_INSERT: &str = "INSERT INTO actions (id, at_ms, wall_ms, device, kind, json, \
    event_id, reason, mode, proposal_id) ";
const PROPOSAL_COLS: &str = "id, created_wall_ms, expires_wall_ms, at_ms, device, kind, json, \
    event_id, reason, status, decided_by, decided_wall_ms, decision_reason, final_json, plan_id";
const PROPOSAL_UPSERT_HEAD: &str = "INSERT INTO proposals (id, created_wall_ms, \
    expires_wall_ms, at_ms, device, kind, json, event_id, reason, status, decided_by, \
    decided_wall_ms, decision_reason, final_json, plan_id) ";
/// A decided proposal is final: a tick may rewrite a proposal only while it
/// is still pending (an operator's decision is never overwritten).
const PROPOSAL_UPSERT_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET \
    created_wall_ms = excluded.created_wall_ms, expires_wall_ms = excluded.expires_wall_ms, \
    at_ms = excluded.at_ms, device = excluded.device, kind = excluded.kind, \
    json = excluded.json, event_id = excluded.event_id, reason = excluded.reason, \
    status = excluded.status, decided_by = excluded.decided_by, \
    decided_wall_ms = excluded.decided_wall_ms, decision_reason = excluded.decision_reason, \
    final_json = excluded.final_json, plan_id = excluded.plan_id \
    WHERE proposals.status = 'pending'";
const AUDIT_INSERT: &str = "INSERT INTO audit (wall_ms, actor, action, target, detail) ";
const META_UPSERT: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// The last row for each key, in the order of their first appearance (one
/// multi-row upsert may not touch the same row twice in PostgreSQL).
fn last_by_key<'a, T, K: Eq + Hash>(rows: &'a [T], key: impl Fn(&'a T) -> K) -> Vec<&'a T> {
    let mut slot: HashMap<K, usize> = HashMap::with_capacity(rows.len());
    let mut out: Vec<&T> = Vec::with_capacity(rows.len());
    for r in rows {
        match slot.get(&key(r)) {
            Some(&i) => out[i] = r,
            None => {
                slot.insert(key(r), out.len());
                out.push(r);
            }
        }
    }
    out
}

impl Store {
    /// Writes everything one closed tick produced, in one transaction:
    /// upserts its events (by id, every column), appends the event changes,
    /// inserts the actions (an id already stored fails the whole commit),
    /// upserts the plans (by id) and the proposals (by id; only while the
    /// stored one is still pending), appends the audit entries, sets meta `last_tick_ms` and
    /// stores the state snapshot if there is one. A failure leaves nothing
    /// of the tick behind.
    pub async fn commit_tick(&self, t: &TickCommit) -> Result<()> {
        const OP: &str = "commit_tick";
        let events = last_by_key(&t.events, |e| e.id.as_str());
        let proposals = last_by_key(&t.proposals, |p| p.id);
        let plans = last_by_key(&t.plans, |p| p.id);
        in_tx!(self, OP, tx => {
            if !events.is_empty() {
                insert_values(&mut tx, EVENT_UPSERT_HEAD, EVENT_UPSERT_TAIL, 13, events.clone(), |mut v, e: &EventRow| {
                    v.push_bind(e.id.as_str())
                        .push_bind(e.kind.as_str())
                        .push_bind(e.direction.as_str())
                        .push_bind(e.from_m)
                        .push_bind(e.to_m)
                        .push_bind(e.start_ms)
                        .push_bind(e.detected_ms)
                        .push_bind(e.end_ms)
                        .push_bind(e.severity)
                        .push_bind(e.rule.as_str())
                        .push_bind(e.key.as_str())
                        .push_bind(e.json.as_str())
                        .push_bind(e.updated_wall_ms);
                })
                .await
                .map_err(db(OP, "events"))?;
            }
            if !t.changes.is_empty() {
                insert_values(&mut tx, CHANGE_INSERT, "", 5, &t.changes, |mut v, c| {
                    v.push_bind(c.event_id.as_str())
                        .push_bind(c.change.as_str())
                        .push_bind(c.at_ms)
                        .push_bind(c.wall_ms)
                        .push_bind(c.json.as_str());
                })
                .await
                .map_err(db(OP, "event_changes"))?;
            }
            if !t.actions.is_empty() {
                insert_values(&mut tx, ACTION_INSERT, "", 10, &t.actions, |mut v, a| {
                    v.push_bind(a.id)
                        .push_bind(a.at_ms)
                        .push_bind(a.wall_ms)
                        .push_bind(a.device.as_str())
                        .push_bind(a.kind.as_str())
                        .push_bind(a.json.as_str())
                        .push_bind(a.event_id.as_deref())
                        .push_bind(a.reason.as_str())
                        .push_bind(a.mode.as_str())
                        .push_bind(a.proposal_id);
                })
                .await
                .map_err(db(OP, "actions"))?;
            }
            // Plans before their steps (a step names its plan).
            if !plans.is_empty() {
                insert_values(&mut tx, crate::plans::PLAN_UPSERT_HEAD, crate::plans::PLAN_UPSERT_TAIL, 7, plans.clone(), |mut v, p: &PlanRow| {
                    v.push_bind(p.id)
                        .push_bind(p.created_wall_ms)
                        .push_bind(p.updated_wall_ms)
                        .push_bind(p.at_ms)
                        .push_bind(p.event_id.as_deref())
                        .push_bind(p.cause.as_str())
                        .push_bind(p.name.as_str());
                })
                .await
                .map_err(db(OP, "plans"))?;
            }
            if !proposals.is_empty() {
                insert_values(&mut tx, PROPOSAL_UPSERT_HEAD, PROPOSAL_UPSERT_TAIL, 15, proposals.clone(), |mut v, p: &ProposalRow| {
                    v.push_bind(p.id)
                        .push_bind(p.created_wall_ms)
                        .push_bind(p.expires_wall_ms)
                        .push_bind(p.at_ms)
                        .push_bind(p.device.as_str())
                        .push_bind(p.kind.as_str())
                        .push_bind(p.json.as_str())
                        .push_bind(p.event_id.as_deref())
                        .push_bind(p.reason.as_str())
                        .push_bind(p.status.as_str())
                        .push_bind(p.decided_by.as_deref())
                        .push_bind(p.decided_wall_ms)
                        .push_bind(p.decision_reason.as_deref())
                        .push_bind(p.final_json.as_deref())
                        .push_bind(p.plan_id);
                })
                .await
                .map_err(db(OP, "proposals"))?;
            }
            if !t.audit.is_empty() {
                insert_values(&mut tx, AUDIT_INSERT, "", 5, &t.audit, |mut v, a| {
                    v.push_bind(a.wall_ms)
                        .push_bind(a.actor.as_str())
                        .push_bind(a.action.as_str())
                        .push_bind(a.target.as_str())
                        .push_bind(a.detail.as_str());
                })
                .await
                .map_err(db(OP, "audit"))?;
            }
            sqlx::query(META_UPSERT)
                .bind("last_tick_ms")
                .bind(t.tick_ms.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db(OP, "meta"))?;
            if let Some(json) = &t.state_json {
                sqlx::query("INSERT INTO state_snapshots (ts_ms, json) VALUES ($1, $2)")
                    .bind(t.tick_ms)
                    .bind(json.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db(OP, "state_snapshots"))?;
            }
        });
        Ok(())
    }

    /// Open events (no end yet), oldest detection first.
    pub async fn active_events(&self) -> Result<Vec<EventRow>> {
        const SQL: &str = "SELECT id, kind, direction, from_m, to_m, start_ms, detected_ms, \
            end_ms, severity, rule, \"key\", json, updated_wall_ms FROM events \
            WHERE end_ms IS NULL ORDER BY detected_ms, LENGTH(id), id";
        on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await)
            .map_err(db("active_events", "events"))
    }

    /// Events matching `q`, newest detection first, at most `q.limit`
    /// (0 = 1000). `since_ms` keeps events that started at or after it or
    /// were still open then (ended at or after it, or not ended).
    pub async fn events(&self, q: &EventQuery) -> Result<Vec<EventRow>> {
        on_pool!(self, p => {
            let mut qb = QueryBuilder::new(format!("SELECT {EVENT_COLS} FROM events WHERE 1 = 1"));
            if q.active_only {
                qb.push(" AND end_ms IS NULL");
            }
            if let Some(kind) = &q.kind {
                qb.push(" AND kind = ").push_bind(kind.as_str());
            }
            if let Some(since) = q.since_ms {
                qb.push(" AND (start_ms >= ").push_bind(since);
                qb.push(" OR end_ms IS NULL OR end_ms >= ").push_bind(since).push(")");
            }
            qb.push(" ORDER BY detected_ms DESC, LENGTH(id) DESC, id DESC LIMIT ")
                .push_bind(limit_or_default(q.limit));
            qb.build_query_as().fetch_all(p).await
        })
        .map_err(db("events", "events"))
    }

    /// One event by id.
    pub async fn event(&self, id: &str) -> Result<Option<EventRow>> {
        const SQL: &str = "SELECT id, kind, direction, from_m, to_m, start_ms, detected_ms, \
            end_ms, severity, rule, \"key\", json, updated_wall_ms FROM events WHERE id = $1";
        on_pool!(self, p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await)
            .map_err(db("event", "events"))
    }

    /// An event's changes, in the order they were written.
    pub async fn event_changes(&self, event_id: &str) -> Result<Vec<EventChangeRow>> {
        const SQL: &str = "SELECT event_id, change, at_ms, wall_ms, json FROM event_changes \
            WHERE event_id = $1 ORDER BY seq";
        on_pool!(self, p => sqlx::query_as(SQL).bind(event_id).fetch_all(p).await)
            .map_err(db("event_changes", "event_changes"))
    }

    /// Actions, newest (highest id) first, optionally only those at or
    /// after `since_wall_ms`; at most `limit` (0 = 1000).
    pub async fn actions(&self, since_wall_ms: Option<i64>, limit: u32) -> Result<Vec<ActionRow>> {
        const SQL: &str = "SELECT id, at_ms, wall_ms, device, kind, json, event_id, reason, \
            mode, proposal_id FROM actions WHERE wall_ms >= $1 ORDER BY id DESC LIMIT $2";
        on_pool!(self, p => {
            sqlx::query_as(SQL)
                .bind(since_wall_ms.unwrap_or(i64::MIN))
                .bind(limit_or_default(limit))
                .fetch_all(p)
                .await
        })
        .map_err(db("actions", "actions"))
    }

    /// Each device's latest action that was to be sent (mode `auto`,
    /// `reconcile` or `confirmed`; not a `confirm` proposal), by device.
    /// After a restart the server sends it again under its own id when the
    /// device does not show it (a kill between the commit and the send).
    pub async fn last_sent_actions(&self) -> Result<Vec<ActionRow>> {
        const SQL: &str = "SELECT id, at_ms, wall_ms, device, kind, json, event_id, reason, \
            mode, proposal_id FROM actions WHERE id IN (SELECT MAX(id) FROM actions \
            WHERE mode IN ('auto', 'reconcile', 'confirmed') GROUP BY device) ORDER BY device";
        on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await)
            .map_err(db("last_sent_actions", "actions"))
    }

    /// Proposals, newest first, optionally only those with `status`.
    pub async fn proposals(&self, status: Option<&str>) -> Result<Vec<ProposalRow>> {
        on_pool!(self, p => {
            let mut qb = QueryBuilder::new(format!("SELECT {PROPOSAL_COLS} FROM proposals"));
            if let Some(status) = status {
                qb.push(" WHERE status = ").push_bind(status);
            }
            qb.push(" ORDER BY id DESC");
            qb.build_query_as().fetch_all(p).await
        })
        .map_err(db("proposals", "proposals"))
    }

    /// One proposal by id.
    pub async fn proposal(&self, id: i64) -> Result<Option<ProposalRow>> {
        const SQL: &str = "SELECT id, created_wall_ms, expires_wall_ms, at_ms, device, kind, \
            json, event_id, reason, status, decided_by, decided_wall_ms, decision_reason, \
            final_json, plan_id FROM proposals WHERE id = $1";
        on_pool!(self, p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await)
            .map_err(db("proposal", "proposals"))
    }

    /// Decides a proposal exactly once: in one transaction, applies `d` only
    /// if the proposal is still `pending` and appends `audit` (its seq is
    /// assigned here). Returns the decided row, or `None` — and appends
    /// nothing — when the proposal does not exist or was already decided
    /// (by another operator, or by expiry). Of concurrent calls exactly one
    /// gets `Some`.
    pub async fn decide_proposal(
        &self,
        id: i64,
        d: &ProposalDecision,
        audit: &AuditEntry,
    ) -> Result<Option<ProposalRow>> {
        const OP: &str = "decide_proposal";
        const SQL: &str = "UPDATE proposals SET status = $1, decided_by = $2, \
            decided_wall_ms = $3, decision_reason = $4, final_json = $5 \
            WHERE id = $6 AND status = 'pending' \
            RETURNING id, created_wall_ms, expires_wall_ms, at_ms, device, kind, json, \
            event_id, reason, status, decided_by, decided_wall_ms, decision_reason, final_json, \
            plan_id";
        let row: Option<ProposalRow> = in_tx!(self, OP, tx => {
            let row: Option<ProposalRow> = sqlx::query_as(SQL)
                .bind(d.status.as_str())
                .bind(d.by.as_str())
                .bind(d.wall_ms)
                .bind(d.reason.as_deref())
                .bind(d.final_json.as_deref())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(OP, "proposals"))?;
            if row.is_none() {
                // Not pending: nothing to record (dropping `tx` rolls back).
                return Ok(None);
            }
            audit_in_tx!(tx, audit, OP);
            row
        });
        Ok(row)
    }

    /// Pending proposals whose expiry is at or before `now_wall_ms`, oldest
    /// first.
    pub async fn pending_expired(&self, now_wall_ms: i64) -> Result<Vec<ProposalRow>> {
        const SQL: &str = "SELECT id, created_wall_ms, expires_wall_ms, at_ms, device, kind, \
            json, event_id, reason, status, decided_by, decided_wall_ms, decision_reason, \
            final_json, plan_id FROM proposals WHERE status = 'pending' AND expires_wall_ms <= $1 \
            ORDER BY id";
        on_pool!(self, p => sqlx::query_as(SQL).bind(now_wall_ms).fetch_all(p).await)
            .map_err(db("pending_expired", "proposals"))
    }

    /// Appends one audit entry and returns the seq the store assigned
    /// (`e.seq` is ignored).
    pub async fn append_audit(&self, e: &AuditEntry) -> Result<i64> {
        const SQL: &str = "INSERT INTO audit (wall_ms, actor, action, target, detail) \
            VALUES ($1, $2, $3, $4, $5) RETURNING seq";
        on_pool!(self, p => {
            sqlx::query_scalar(SQL)
                .bind(e.wall_ms)
                .bind(e.actor.as_str())
                .bind(e.action.as_str())
                .bind(e.target.as_str())
                .bind(e.detail.as_str())
                .fetch_one(p)
                .await
        })
        .map_err(db("append_audit", "audit"))
    }

    /// Audit entries with `seq > after_seq`, ascending, at most `limit`
    /// (0 = 1000).
    pub async fn audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        const SQL: &str = "SELECT seq, wall_ms, actor, action, target, detail FROM audit \
            WHERE seq > $1 ORDER BY seq LIMIT $2";
        on_pool!(self, p => {
            sqlx::query_as(SQL)
            .bind(after_seq)
            .bind(limit_or_default(limit))
            .fetch_all(p)
            .await
        })
        .map_err(db("audit", "audit"))
    }

    /// Audit entries newest first, before `before_seq` (all when `None`),
    /// whose actor, action, target or detail contains `q` (case-insensitive
    /// for Latin letters; `%` and `_` in `q` match themselves).
    pub async fn audit_search(
        &self,
        q: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        const SQL: &str = "SELECT seq, wall_ms, actor, action, target, detail FROM audit \
            WHERE seq < $1 AND LOWER(actor || ' ' || action || ' ' || target || ' ' || detail) \
            LIKE $2 ESCAPE '\\' ORDER BY seq DESC LIMIT $3";
        let mut pat = String::with_capacity(q.len() + 2);
        pat.push('%');
        for c in q.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pat.push('\\');
            }
            pat.push(c);
        }
        pat.push('%');
        on_pool!(self, p => {
            sqlx::query_as(SQL)
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(&pat)
            .bind(limit_or_default(limit))
            .fetch_all(p)
            .await
        })
        .map_err(db("audit_search", "audit"))
    }
}
