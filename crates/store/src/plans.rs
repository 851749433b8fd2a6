//! Response plans (处置预案): one row per plan; its steps are the proposals
//! that name it (`proposals.plan_id`). Written with the tick that made or
//! joined them ([`crate::Store::commit_tick`]); a plan's status is not
//! stored but derived from its steps by the server.

use sqlx::QueryBuilder;

use crate::error::db;
use crate::{PlanRow, ProposalRow, Result, Store};

const PLAN_COLS: &str = "id, created_wall_ms, updated_wall_ms, at_ms, event_id, cause, name";
pub(crate) const PLAN_UPSERT_HEAD: &str = "INSERT INTO plans (id, created_wall_ms, updated_wall_ms, at_ms, \
    event_id, cause, name) ";
/// A plan's identity and name stay as made; a step joining it only moves
/// `updated_wall_ms`.
pub(crate) const PLAN_UPSERT_TAIL: &str =
    " ON CONFLICT (id) DO UPDATE SET updated_wall_ms = excluded.updated_wall_ms";
const STEP_COLS: &str = "id, created_wall_ms, expires_wall_ms, at_ms, device, kind, json, \
    event_id, reason, status, decided_by, decided_wall_ms, decision_reason, final_json, plan_id";

impl Store {
    /// Plans, newest first, at most `limit` (0 = 1000); with `pending_only`
    /// only those with a step still pending; with `event` only those
    /// answering that event.
    pub async fn plans(
        &self,
        pending_only: bool,
        event: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PlanRow>> {
        on_pool!(self, p => {
            let mut qb = QueryBuilder::new(format!("SELECT {PLAN_COLS} FROM plans WHERE 1 = 1"));
            if pending_only {
                qb.push(" AND EXISTS (SELECT 1 FROM proposals s WHERE s.plan_id = plans.id \
                    AND s.status = 'pending')");
            }
            if let Some(e) = event {
                qb.push(" AND event_id = ").push_bind(e);
            }
            qb.push(" ORDER BY id DESC LIMIT ")
                .push_bind(crate::limit_or_default(limit));
            qb.build_query_as().fetch_all(p).await
        })
        .map_err(db("plans", "plans"))
    }

    /// One plan by id.
    pub async fn plan(&self, id: i64) -> Result<Option<PlanRow>> {
        const SQL: &str = "SELECT id, created_wall_ms, updated_wall_ms, at_ms, event_id, cause, \
            name FROM plans WHERE id = $1";
        on_pool!(self, p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await)
            .map_err(db("plan", "plans"))
    }

    /// The steps of the plans `ids`, in plan order then step order.
    pub async fn plan_steps(&self, ids: &[i64]) -> Result<Vec<ProposalRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        on_pool!(self, p => {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {STEP_COLS} FROM proposals WHERE plan_id IN ("
            ));
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(") ORDER BY plan_id, id");
            qb.build_query_as().fetch_all(p).await
        })
        .map_err(db("plan_steps", "proposals"))
    }
}
