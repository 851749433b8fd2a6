//! Response plans (处置预案): the proposals one decision pass makes for one
//! event (or one cause when there is no event) form one plan, with a
//! readable name; a proposal for the same event while its plan still has a
//! pending step joins that plan (a step on the same device is superseded
//! by the engine as before) instead of starting a second one.
//!
//! A plan's id is the id of its first step, so plans need no counter of
//! their own and survive a restart with the proposals. Its status is
//! derived from its steps (`crate::views::PlanView`).

use std::collections::HashMap;

use zhilu_road::Stake;
use zhilu_store::{AuditEntry, EventRow, PlanRow, ProposalRow};

pub use crate::views::{basis_of, device_name, rule_of};

/// What groups proposals into one plan: the event they answer, else the
/// rule their reason names (`[规则 …]`), else the reason's first words
/// (`released`).
pub fn cause_of(event_id: Option<&str>, reason: &str) -> String {
    if let Some(e) = event_id {
        return e.to_string();
    }
    if let Some(r) = rule_of(reason) {
        return r;
    }
    let head = reason
        .split([':', '：', ';'])
        .next()
        .unwrap_or(reason)
        .trim();
    if head.is_empty() {
        "other".into()
    } else {
        head.to_string()
    }
}

/// An event kind in Chinese, for plan names (the console renders its own
/// language from the plan's fields).
fn kind_zh(kind: &str) -> &str {
    match kind {
        "fog" => "团雾",
        "ice" => "路面结冰",
        "congestion" => "拥堵",
        "incident" => "交通事故",
        "wrong_way" => "逆行",
        "tunnel_emergency" => "隧道紧急事件",
        "hazmat_speeding" => "危化品车超速",
        "hazmat_stopped" => "危化品车违停",
        "hazmat_restricted_zone" => "危化品车驶入禁行隧道",
        "hazmat_driving_time" => "危化品车疲劳驾驶",
        "detector_fault" => "检测器故障",
        "terminal_alarm" => "车载终端报警",
        other => other,
    }
}

fn direction_zh(d: &str) -> &str {
    match d {
        "up" => "上行",
        "down" => "下行",
        _ => "双向",
    }
}

/// 名称 of a plan: `团雾 K45+200–K52+000 下行 处置预案` for an event;
/// `解除管控 处置预案` / `<rule> 处置预案` without one.
pub fn plan_name(event: Option<&EventRow>, cause: &str) -> String {
    match event {
        Some(e) => {
            let (a, b) = (e.from_m.min(e.to_m), e.from_m.max(e.to_m));
            let extent = if b - a < 1.0 {
                Stake(a).to_string()
            } else {
                format!("{}–{}", Stake(a), Stake(b))
            };
            format!(
                "{} {} {} 处置预案",
                kind_zh(&e.kind),
                extent,
                direction_zh(&e.direction)
            )
        }
        None if cause == "released" => "解除管控 处置预案".into(),
        None => format!("{cause} 处置预案"),
    }
}

/// The plans one decision pass makes or joins.
#[derive(Debug, Default)]
pub struct Pass {
    /// Plans made or joined, in order (the rows to write).
    pub rows: Vec<PlanRow>,
    /// Plan id → `created` or `changed`, for the stream.
    pub changes: HashMap<i64, &'static str>,
    /// Cause → plan id, within this pass.
    by_cause: HashMap<String, i64>,
}

impl Pass {
    /// Puts proposal `p` into a plan: this pass's plan for its cause, else
    /// a plan of the same cause that still has a pending step (`pending`:
    /// the pending proposals before this pass), else a new plan named from
    /// `event`. Sets `p.plan_id`; returns the audit entry of a new plan.
    pub fn join(
        &mut self,
        p: &mut ProposalRow,
        pending: &[ProposalRow],
        event: Option<&EventRow>,
        now: i64,
    ) -> Option<AuditEntry> {
        let cause = cause_of(p.event_id.as_deref(), &p.reason);
        if let Some(&id) = self.by_cause.get(&cause) {
            p.plan_id = Some(id);
            return None;
        }
        let open = pending
            .iter()
            .find(|q| q.plan_id.is_some() && cause_of(q.event_id.as_deref(), &q.reason) == cause);
        if let Some(id) = open.and_then(|q| q.plan_id) {
            p.plan_id = Some(id);
            self.by_cause.insert(cause.clone(), id);
            self.changes.entry(id).or_insert("changed");
            // Only `updated_wall_ms` of a stored plan is rewritten.
            self.rows.push(PlanRow {
                id,
                created_wall_ms: now,
                updated_wall_ms: now,
                at_ms: p.at_ms,
                event_id: p.event_id.clone(),
                cause,
                name: String::new(),
            });
            return None;
        }
        let id = p.id;
        p.plan_id = Some(id);
        let name = plan_name(event, &cause);
        self.by_cause.insert(cause.clone(), id);
        self.changes.insert(id, "created");
        self.rows.push(PlanRow {
            id,
            created_wall_ms: now,
            updated_wall_ms: now,
            at_ms: p.at_ms,
            event_id: p.event_id.clone(),
            cause: cause.clone(),
            name: name.clone(),
        });
        Some(AuditEntry {
            seq: 0,
            wall_ms: now,
            actor: "system".into(),
            action: "plan.created".into(),
            target: format!("PL{id}"),
            detail: crate::records::AuditDetail::PlanMade {
                name: &name,
                event: p.event_id.as_deref(),
                cause: &cause,
            }
            .json(),
        })
    }

    /// Marks a plan changed (a step of it was superseded).
    pub fn touch(&mut self, id: Option<i64>) {
        if let Some(id) = id {
            self.changes.entry(id).or_insert("changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(id: i64, device: &str, event: Option<&str>, reason: &str) -> ProposalRow {
        ProposalRow {
            id,
            device: device.into(),
            event_id: event.map(str::to_string),
            reason: reason.into(),
            status: "pending".into(),
            ..ProposalRow::default()
        }
    }

    fn fog_event() -> EventRow {
        EventRow {
            id: "E4".into(),
            kind: "fog".into(),
            direction: "down".into(),
            from_m: 45_200.0,
            to_m: 52_000.0,
            ..EventRow::default()
        }
    }

    const FOG: &str = "团雾4级: 能见度49米 (W3) [规则 weather.fog_band, 预案 national]; 依据: 《道路交通安全法实施条例》第八十一条";

    #[test]
    fn causes_rules_and_bases_come_from_the_reason() {
        // (event, reason, cause, rule, basis)
        type Case<'a> = (
            Option<&'a str>,
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (
                Some("E4"),
                FOG,
                "E4",
                Some("weather.fog_band"),
                Some("《道路交通安全法实施条例》第八十一条"),
            ),
            (
                None,
                FOG,
                "weather.fog_band",
                Some("weather.fog_band"),
                Some("《道路交通安全法实施条例》第八十一条"),
            ),
            (
                None,
                "released: no plan asks for this device any more",
                "released",
                None,
                None,
            ),
            (
                None,
                "拥堵: 1–2 米 [规则 state.congestion]",
                "state.congestion",
                Some("state.congestion"),
                None,
            ),
            (None, "", "other", None, None),
        ];
        for (event, reason, cause, rule, basis) in cases {
            assert_eq!(cause_of(*event, reason), *cause, "{reason}");
            assert_eq!(rule_of(reason).as_deref(), *rule, "{reason}");
            assert_eq!(basis_of(reason).as_deref(), *basis, "{reason}");
        }
    }

    #[test]
    fn names_read_as_a_duty_officer_says_them() {
        assert_eq!(
            plan_name(Some(&fog_event()), "E4"),
            "团雾 K45+200–K52+000 下行 处置预案"
        );
        let point = EventRow {
            kind: "incident".into(),
            direction: "up".into(),
            from_m: 12_345.0,
            to_m: 12_345.0,
            ..EventRow::default()
        };
        assert_eq!(
            plan_name(Some(&point), "E1"),
            "交通事故 K12+345 上行 处置预案"
        );
        assert_eq!(plan_name(None, "released"), "解除管控 处置预案");
        assert_eq!(
            plan_name(None, "state.congestion"),
            "state.congestion 处置预案"
        );
    }

    #[test]
    fn one_event_one_pass_is_one_plan() {
        let mut pass = Pass::default();
        let ev = fog_event();
        let mut a = proposal(10, "T_GA", Some("E4"), FOG);
        let mut b = proposal(11, "T_LX", Some("E4"), FOG);
        let mut c = proposal(12, "T_X", Some("E5"), FOG);
        assert!(pass.join(&mut a, &[], Some(&ev), 1).is_some());
        assert!(pass.join(&mut b, &[], Some(&ev), 1).is_none());
        assert!(pass.join(&mut c, &[], None, 1).is_some());
        assert_eq!(
            (a.plan_id, b.plan_id, c.plan_id),
            (Some(10), Some(10), Some(12))
        );
        assert_eq!(pass.rows.len(), 2);
        assert_eq!(pass.rows[0].name, "团雾 K45+200–K52+000 下行 处置预案");
        assert_eq!(pass.changes[&10], "created");
    }

    #[test]
    fn a_later_step_joins_the_pending_plan_of_its_event() {
        let mut pass = Pass::default();
        let old = ProposalRow {
            plan_id: Some(10),
            ..proposal(10, "T_GA", Some("E4"), FOG)
        };
        let mut late = proposal(20, "T_LX", Some("E4"), FOG);
        assert!(
            pass.join(&mut late, std::slice::from_ref(&old), Some(&fog_event()), 2)
                .is_none()
        );
        assert_eq!(late.plan_id, Some(10));
        assert_eq!(pass.changes[&10], "changed");
        // Another event's pending plan is not joined.
        let mut other = proposal(21, "T_Y", Some("E9"), FOG);
        pass.join(&mut other, std::slice::from_ref(&old), None, 2);
        assert_eq!(other.plan_id, Some(21));
    }
}
