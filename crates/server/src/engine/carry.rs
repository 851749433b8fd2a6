//! The output of ticks whose commit failed (未写入的节拍输出). Nothing of a
//! tick is published or sent before it is written, so while commits fail
//! (a full disk, a lost database) each tick's output waits in memory and
//! goes out with the next commit that succeeds. It waits within a bound:
//! past [`MAX_ITEMS`] rows the history that can be rebuilt or that only
//! watchers saw — stream messages, then event changes, then audit entries,
//! oldest first — is dropped, and health and the log say how much. What
//! safety depends on is never dropped: the events' latest forms, the
//! proposals and the actions with the commands they send (events and
//! proposals are kept once each, in their latest form, so they do not
//! grow with the ticks).

use std::collections::HashSet;

use zhilu_core::Action;
use zhilu_store::{ActionRow, TickCommit};

use crate::stream::StreamKind;

/// Rows a carry holds at most before it drops history.
pub const MAX_ITEMS: usize = 20_000;

/// What a tick produced that is not yet written.
#[derive(Debug, Default)]
pub struct Carry {
    /// The rows to write.
    pub commit: TickCommit,
    /// Stream messages to publish once written.
    pub published: Vec<(StreamKind, String)>,
    /// Commands to send once written.
    pub dispatch: Vec<(ActionRow, Action)>,
}

/// What a merge dropped to stay within its bound.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Stream messages never published.
    pub published: usize,
    /// Event changes (history) never written.
    pub changes: usize,
    /// Audit entries never written.
    pub audit: usize,
}

impl Dropped {
    /// Rows dropped in all.
    pub fn total(&self) -> usize {
        self.published + self.changes + self.audit
    }
}

impl Carry {
    /// Rows held.
    pub fn items(&self) -> usize {
        let c = &self.commit;
        c.events.len()
            + c.changes.len()
            + c.actions.len()
            + c.proposals.len()
            + c.plans.len()
            + c.audit.len()
            + self.published.len()
            + self.dispatch.len()
    }

    /// This carry with `next` (a later tick's output) after it, held to
    /// `max_items` rows.
    pub fn merge(self, next: Carry, max_items: usize) -> (Carry, Dropped) {
        let Carry {
            commit: mut c,
            mut published,
            mut dispatch,
        } = self;
        let mut n = next.commit;
        c.events.append(&mut n.events);
        c.changes.append(&mut n.changes);
        c.actions.append(&mut n.actions);
        c.proposals.append(&mut n.proposals);
        c.plans.append(&mut n.plans);
        c.audit.append(&mut n.audit);
        c.tick_ms = n.tick_ms;
        c.state_json = n.state_json.or(c.state_json);
        // Written as upserts: only the latest form of each counts.
        keep_last(&mut c.events, |e| e.id.clone());
        keep_last(&mut c.proposals, |p| p.id);
        keep_last(&mut c.plans, |p| p.id);
        published.extend(next.published);
        dispatch.extend(next.dispatch);
        let mut carry = Carry {
            commit: c,
            published,
            dispatch,
        };
        let mut dropped = Dropped::default();
        let mut over = carry.items().saturating_sub(max_items);
        dropped.published = drop_oldest(&mut carry.published, &mut over);
        dropped.changes = drop_oldest(&mut carry.commit.changes, &mut over);
        dropped.audit = drop_oldest(&mut carry.commit.audit, &mut over);
        (carry, dropped)
    }
}

/// Keeps the last of the items with the same key, in their order.
fn keep_last<T, K: std::hash::Hash + Eq>(v: &mut Vec<T>, key: impl Fn(&T) -> K) {
    let mut seen = HashSet::new();
    let mut keep: Vec<bool> = v.iter().rev().map(|x| seen.insert(key(x))).collect();
    keep.reverse();
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

/// Drops up to `over` of the oldest items of `v`; returns how many.
fn drop_oldest<T>(v: &mut Vec<T>, over: &mut usize) -> usize {
    let k = (*over).min(v.len());
    v.drain(..k);
    *over -= k;
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhilu_store::{AuditEntry, EventChangeRow, EventRow, ProposalRow};

    fn event(id: &str, json: &str) -> EventRow {
        EventRow {
            id: id.into(),
            json: json.into(),
            ..EventRow::default()
        }
    }

    fn change(i: usize) -> EventChangeRow {
        EventChangeRow {
            event_id: "E1".into(),
            change: "updated".into(),
            at_ms: i as i64,
            wall_ms: 0,
            json: String::new(),
        }
    }

    fn audit(i: usize) -> AuditEntry {
        AuditEntry {
            seq: 0,
            wall_ms: i as i64,
            actor: "system".into(),
            action: "x".into(),
            target: String::new(),
            detail: String::new(),
        }
    }

    fn action(id: i64) -> ActionRow {
        ActionRow {
            id,
            ..ActionRow::default()
        }
    }

    /// One tick's output: an update of event E1, ten changes, ten audit
    /// entries, ten stream messages, one action (every fifth tick).
    fn tick(t: usize) -> Carry {
        Carry {
            commit: TickCommit {
                tick_ms: t as i64,
                events: vec![event("E1", &format!("v{t}"))],
                changes: (0..10).map(|i| change(t * 10 + i)).collect(),
                actions: if t % 5 == 0 {
                    vec![action(t as i64)]
                } else {
                    vec![]
                },
                proposals: vec![ProposalRow {
                    id: 7,
                    status: format!("s{t}"),
                    ..ProposalRow::default()
                }],
                audit: (0..10).map(|i| audit(t * 10 + i)).collect(),
                state_json: (t % 2 == 0).then(|| format!("state {t}")),
                plans: vec![],
            },
            published: (0..10)
                .map(|i| (StreamKind::Event, format!("{t}/{i}")))
                .collect(),
            dispatch: vec![],
        }
    }

    #[test]
    fn a_long_failure_is_held_to_the_bound_and_keeps_what_safety_needs() {
        let max = 500;
        let mut carry = tick(0);
        let mut dropped = Dropped::default();
        for t in 1..=200 {
            let (c, d) = carry.merge(tick(t), max);
            carry = c;
            dropped.published += d.published;
            dropped.changes += d.changes;
            dropped.audit += d.audit;
            assert!(carry.items() <= max, "tick {t}: {} rows", carry.items());
        }
        let c = &carry.commit;
        // Events and proposals once each, in their latest form.
        assert_eq!(c.events.len(), 1);
        assert_eq!(c.events[0].json, "v200");
        assert_eq!(c.proposals.len(), 1);
        assert_eq!(c.proposals[0].status, "s200");
        // Every action kept.
        assert_eq!(c.actions.len(), 41);
        assert_eq!(c.tick_ms, 200);
        assert_eq!(c.state_json.as_deref(), Some("state 200"));
        // The stream went first, then the event changes, then the oldest
        // audit entries; what is kept is the newest.
        assert!(carry.published.is_empty());
        assert_eq!(dropped.published, 2010);
        assert_eq!(dropped.changes, 2010);
        assert!(dropped.audit > 0);
        assert_eq!(c.audit.last().unwrap().wall_ms, 2009);
        assert!(c.audit.len() > 400, "{}", c.audit.len());
        assert_eq!(
            dropped.total() + carry.items(),
            // All that was produced, less the events and proposals merged
            // into their latest forms.
            201 * 32 + 41 - 2 * 200
        );
    }

    #[test]
    fn a_short_failure_drops_nothing() {
        let (c, d) = tick(0).merge(tick(1), MAX_ITEMS);
        assert_eq!(d, Dropped::default());
        assert_eq!(c.commit.changes.len(), 20);
        assert_eq!(c.published.len(), 20);
        assert_eq!(c.commit.state_json.as_deref(), Some("state 0"));
    }
}
