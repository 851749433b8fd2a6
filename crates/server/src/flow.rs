//! The operator's side of an event (issue 17): its severity class as the
//! console shows it, which of the brain's updates are worth a line in the
//! event's history, and the legal basis or rule source of every kind.
//!
//! Everything here reads an event's stored JSON line (the replay contract's
//! record plus the server's `id`), so live, stored and resumed events are
//! judged alike. The judgement itself is the core's
//! ([`zhilu_core::event::judge_severity`]).

use serde_json::Value;
use zhilu_core::event::{EventKind, Severity, SeverityFacts, SeverityTable, judge_severity};
use zhilu_road::RoadBook;
use zhilu_store::WorkflowRow;

/// Which of the brain's updates of an open event make a history line: the
/// rest (a queue's head moving a few metres, the lowest speed seen) only
/// refresh the event.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryTable {
    /// An end of the extent moved at least this far (m) since the last line.
    pub extent_step_m: f64,
}

impl Default for HistoryTable {
    fn default() -> Self {
        HistoryTable {
            extent_step_m: 500.0,
        }
    }
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn rule_of(v: &Value) -> &str {
    v["evidence"]["rule"].as_str().unwrap_or("")
}

/// Whether the stretch `from_m`–`to_m` touches a tunnel of the road book.
pub fn in_tunnel(road: &RoadBook, from_m: f64, to_m: f64) -> bool {
    let (lo, hi) = (from_m.min(to_m), from_m.max(to_m));
    road.tunnels()
        .iter()
        .any(|t| t.from_m.min(t.to_m) <= hi && t.from_m.max(t.to_m) >= lo)
}

/// The severity class of a stored event line. The brain's kinds are judged
/// by the core's table; the server's own kinds: a terminal's emergency
/// button is critical, its danger warning major, its other alarms minor; a
/// device showing other than the plan asks major; a source's clock minor.
pub fn level(v: &Value, road: &RoadBook) -> Severity {
    let kind = v["kind"].as_str().unwrap_or("");
    let rule = rule_of(v);
    let Some(k) = EventKind::parse(kind) else {
        return match (kind, rule) {
            ("terminal_alarm", "jt808.emergency") => Severity::Critical,
            ("terminal_alarm", "jt808.danger_warning") => Severity::Major,
            ("terminal_alarm", _) => Severity::Minor,
            ("device_out_of_plan", _) => Severity::Major,
            ("source_clock", _) => Severity::Minor,
            _ => Severity::Info,
        };
    };
    let from = num(v, "from_m").unwrap_or(0.0);
    let to = num(v, "to_m").unwrap_or(from);
    let mut f = SeverityFacts::of_kind(k, rule);
    f.extent_m = (to - from).abs();
    f.visibility_m = num(v, "visibility_m").map(|x| x as f32);
    f.ice_observed = v["observed"].as_bool();
    let lanes = v["evidence"]["lanes"].as_array().map_or(0, Vec::len);
    f.fault_lanes = if lanes == 0 && v.get("lane").is_some() {
        1
    } else {
        lanes
    };
    f.fault_station = rule == "quality.station_zero"
        || v["evidence"]["rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "station_zero"));
    f.in_tunnel = in_tunnel(road, from, to);
    judge_severity(&f, &SeverityTable::default())
}

/// Adds the severity class (`"level": "critical"`) to an event line.
pub fn decorate(v: &mut Value, road: &RoadBook) {
    let l = level(v, road);
    if let Value::Object(o) = v {
        o.insert("level".into(), Value::from(l.as_str()));
    }
}

/// An event's stored line, read once: what the history and the severity
/// class judge (the engine keeps the last recorded line of each open event).
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine(Value);

impl EventLine {
    /// Reads a stored line; text that is not JSON judges as nothing
    /// (class `info`, and every later line a change).
    pub fn read(json: &str) -> EventLine {
        EventLine(serde_json::from_str(json).unwrap_or(Value::Null))
    }

    /// Its severity class ([`level`]).
    pub fn level(&self, road: &RoadBook) -> Severity {
        level(&self.0, road)
    }

    /// What changed since `old` that an operator cares about ([`what_changed`]).
    pub fn changed_since(
        &self,
        old: &EventLine,
        road: &RoadBook,
        t: &HistoryTable,
    ) -> Vec<&'static str> {
        what_changed(&old.0, &self.0, road, t)
    }
}

/// What an operator would care about that changed between two lines of
/// the same event: `extent` (an end moved a step or the carriageway
/// changed), `severity` (the class or the detector's score), `band` (fog),
/// `lanes` (faulty or blocked lanes), `status` (ended, or ice now
/// observed). Empty when nothing did.
pub fn what_changed(
    old: &Value,
    new: &Value,
    road: &RoadBook,
    t: &HistoryTable,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    let moved = |k: &str| match (num(old, k), num(new, k)) {
        (Some(a), Some(b)) => (a - b).abs() >= t.extent_step_m,
        (a, b) => a.is_some() != b.is_some(),
    };
    if moved("from_m") || moved("to_m") || old["direction"] != new["direction"] {
        out.push("extent");
    }
    if level(old, road) != level(new, road) || old["severity"] != new["severity"] {
        out.push("severity");
    }
    if old["band"] != new["band"] {
        out.push("band");
    }
    if old["evidence"]["lanes"] != new["evidence"]["lanes"]
        || old["lane"] != new["lane"]
        || old["lanes_blocked"] != new["lanes_blocked"]
    {
        out.push("lanes");
    }
    if old["end"] != new["end"] || old["observed"] != new["observed"] {
        out.push("status");
    }
    out
}

/// Where a kind's measures and thresholds come from (法规依据 / 规则来源):
/// the law where one applies, else the standard or the platform's own rule
/// table. Every kind has one.
pub fn basis(kind: &str) -> &'static str {
    match kind {
        "fog" => {
            "《道路交通安全法实施条例》第八十一条 (能见度 <200/100/50 m: ≤60/40/20 km/h, \
             <50 m 尽快驶离); 第八十一条末款 管理部门发布限速提示; 雾区分级参照 GB/T 31445-2015"
        }
        "ice" => {
            "路面状况按 GB/T 33697-2017 (干/潮湿/积水/积雪/结冰); 结冰风险与除冰触发为平台规则 \
             (zhilu-core weather: 路面温度 ≤ 0 °C 且潮湿); 管制参照 江苏《恶劣天气条件下高速公路交通管理工作方案(试行)》(部分结冰: 一级管制 40 km/h)"
        }
        "congestion" => {
            "平台规则 (zhilu-core congestion: 路段速度低于阈值的连续区段); \
             交通阻断信息报送: 预计中断 > 2 h 报送 (交通运输部公路交通阻断信息报送)"
        }
        "incident" => {
            "《道路交通安全法》第六十八条 (故障车辆警示); 《高速公路交通应急管理程序规定》(公通字〔2008〕54号); \
             检测为平台规则 (zhilu-core incident)"
        }
        "hazmat_speeding" => "《危险货物道路运输安全管理办法》第四十六条 (高速公路 ≤ 80 km/h)",
        "hazmat_stopped" => {
            "《危险货物道路运输安全管理办法》; 《道路交通安全法》第六十八条 (停车警示)"
        }
        "hazmat_restricted_zone" => {
            "《危险货物道路运输安全管理办法》第四十九条 (特长隧道、特大桥梁等限行)"
        }
        "hazmat_driving_time" => {
            "《道路交通安全法实施条例》第六十二条第(七)项 (连续驾驶 > 4 h 须停车休息 ≥ 20 min)"
        }
        "wrong_way" => "《道路交通安全法实施条例》第八十二条 (高速公路上不得倒车、逆行)",
        "detector_fault" => "平台数据质量规则 (zhilu-core quality, docs/QUALITY.md)",
        "device_out_of_plan" => "平台设备核对规则 (设备显示与方案不符)",
        "terminal_alarm" => "JT/T 808 报警标志位 (表 24)",
        "source_clock" => "平台时钟核对规则 (数据源时钟偏差)",
        _ => "平台规则",
    }
}

/// One operator step on an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// 确认: I have seen it.
    Ack,
    /// 指派: to this user.
    Assign(String),
    /// 备注: a note.
    Note(String),
    /// 关闭: with this reason.
    Close(String),
}

impl Step {
    /// The history line's `change` and the audit log's action.
    pub fn names(&self) -> (&'static str, &'static str) {
        match self {
            Step::Ack => ("acknowledged", "event.ack"),
            Step::Assign(_) => ("assigned", "event.assign"),
            Step::Note(_) => ("note", "event.note"),
            Step::Close(_) => ("closed", "event.close"),
        }
    }
}

/// Why a step cannot be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    /// The operators closed the event: nothing but notes.
    #[error("{0} is closed (by {1}): only notes may be added")]
    Closed(String, String),
    /// Someone acknowledged it already.
    #[error("{0} was already acknowledged by {1}")]
    AlreadyAcked(String, String),
    /// A text the step needs is empty.
    #[error("{0} is required")]
    Empty(&'static str),
    /// A text is longer than allowed.
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
}

/// Longest note, reason or user name accepted (characters).
pub const MAX_TEXT: usize = 2000;

fn text(s: &str, what: &'static str) -> Result<String, StepError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(StepError::Empty(what));
    }
    if t.chars().count() > MAX_TEXT {
        return Err(StepError::TooLong(what, MAX_TEXT));
    }
    Ok(t.to_string())
}

/// The event's workflow after `step` by `by` at `wall_ms` (server time),
/// from where it stands (`None`: nobody has touched it). Acknowledge once;
/// assign and acknowledge not after closing; notes always; close needs a
/// reason and happens once.
pub fn apply(
    cur: Option<&WorkflowRow>,
    event_id: &str,
    step: &Step,
    by: &str,
    wall_ms: i64,
) -> Result<WorkflowRow, StepError> {
    let mut w = cur.cloned().unwrap_or_else(|| WorkflowRow {
        event_id: event_id.to_string(),
        status: "open".into(),
        ..WorkflowRow::default()
    });
    let closed = w.status == "closed";
    let closer = || w.closed_by.clone().unwrap_or_default();
    match step {
        Step::Note(t) => {
            text(t, "a note's text")?;
        }
        _ if closed => return Err(StepError::Closed(event_id.into(), closer())),
        Step::Ack => {
            if let Some(a) = &w.acked_by {
                return Err(StepError::AlreadyAcked(event_id.into(), a.clone()));
            }
            w.status = "acknowledged".into();
            w.acked_by = Some(by.into());
            w.acked_wall_ms = Some(wall_ms);
        }
        Step::Assign(user) => {
            w.assigned_to = Some(text(user, "the user to assign")?);
            w.assigned_by = Some(by.into());
            w.assigned_wall_ms = Some(wall_ms);
        }
        Step::Close(reason) => {
            w.close_reason = Some(text(reason, "a reason to close")?);
            w.status = "closed".into();
            w.closed_by = Some(by.into());
            w.closed_wall_ms = Some(wall_ms);
        }
    }
    w.updated_wall_ms = wall_ms;
    Ok(w)
}

/// When a lane at an incident's site counts as blocked (the card's 占用车道).
#[derive(Debug, Clone, PartialEq)]
pub struct LaneTable {
    /// A lane this slow (km/h) with its loop this occupied (%) stands
    /// still over the loop …
    pub stopped_below_kmh: f64,
    /// … at this occupancy or more.
    pub stopped_occupancy_pct: f64,
    /// A lane that counts nothing while the other lanes together count at
    /// least this many vehicles in the interval is emptied (blocked
    /// upstream of the loop).
    pub empty_when_others_count: i32,
}

impl Default for LaneTable {
    fn default() -> Self {
        LaneTable {
            stopped_below_kmh: 10.0,
            stopped_occupancy_pct: 50.0,
            empty_when_others_count: 6,
        }
    }
}

/// The lanes blocked at one detector by its latest rows (`(lane, volume,
/// speed, occupancy)`, one reading time): lanes standing still over the
/// loop, or counting nothing while the others carry traffic. Ascending.
pub fn blocked_lanes(rows: &[(i16, i32, Option<f64>, Option<f64>)], t: &LaneTable) -> Vec<i16> {
    let total: i32 = rows.iter().map(|r| r.1).sum();
    let mut out: Vec<i16> = rows
        .iter()
        .filter(|(_, vol, speed, occ)| {
            let stopped = speed.is_some_and(|s| s < t.stopped_below_kmh)
                && occ.is_some_and(|o| o >= t.stopped_occupancy_pct);
            let emptied = *vol == 0 && total - vol >= t.empty_when_others_count;
            stopped || emptied
        })
        .map(|r| r.0)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn road() -> RoadBook {
        let day = zhilu_traffic::bulk::Day::new(zhilu_traffic::bulk::DayConfig {
            stations: 4,
            hours: 1,
            ..Default::default()
        })
        .expect("day");
        let mut w = Vec::new();
        day.write_road(&mut w).expect("road");
        RoadBook::from_toml(std::str::from_utf8(&w).expect("utf8"), "ROAD.toml").expect("book")
    }

    #[test]
    fn stored_lines_get_the_cores_class() {
        let r = road();
        let cases = [
            (
                json!({"kind": "fog", "from_m": 0, "to_m": 900, "visibility_m": 45, "band": 4, "evidence": {"rule": "weather.fog"}}),
                "critical",
            ),
            (
                json!({"kind": "fog", "from_m": 0, "to_m": 900, "visibility_m": 150, "band": 2, "evidence": {"rule": "weather.fog"}}),
                "minor",
            ),
            (
                json!({"kind": "ice", "from_m": 0, "to_m": 0, "observed": true, "evidence": {"rule": "weather.ice"}}),
                "major",
            ),
            (
                json!({"kind": "congestion", "from_m": 1000, "to_m": 7000, "evidence": {"rule": "congestion"}}),
                "major",
            ),
            (
                json!({"kind": "incident", "from_m": 1000, "to_m": 1000, "evidence": {"rule": "incident.camera_fire"}}),
                "critical",
            ),
            (
                json!({"kind": "detector_fault", "from_m": 0, "to_m": 0, "lane": 2, "evidence": {"rule": "quality.stuck", "lanes": [2]}}),
                "info",
            ),
            (
                json!({"kind": "detector_fault", "from_m": 0, "to_m": 0, "evidence": {"rule": "quality.station_zero", "lanes": [1, 2, 3]}}),
                "minor",
            ),
            (
                json!({"kind": "terminal_alarm", "evidence": {"rule": "jt808.emergency"}}),
                "critical",
            ),
            (
                json!({"kind": "device_out_of_plan", "evidence": {"rule": "devices.out_of_plan"}}),
                "major",
            ),
            (json!({"kind": "something_new"}), "info"),
        ];
        for (v, want) in cases {
            let mut d = v.clone();
            decorate(&mut d, &r);
            assert_eq!(d["level"], want, "{v}");
        }
    }

    #[test]
    fn only_what_an_operator_cares_about_makes_a_line() {
        let r = road();
        let t = HistoryTable::default();
        let base = json!({"kind": "congestion", "direction": "up", "from_m": 10_000, "to_m": 12_000,
            "severity": 2, "min_speed_kmh": 30, "trend": "growing", "end": null, "evidence": {"rule": "congestion"}});
        let with = |k: &str, x: Value| {
            let mut v = base.clone();
            v[k] = x;
            v
        };
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("same line", base.clone(), vec![]),
            (
                "speed and trend only",
                with("min_speed_kmh", json!(12)),
                vec![],
            ),
            ("head moved 200 m", with("to_m", json!(12_200)), vec![]),
            (
                "head moved 600 m",
                with("to_m", json!(12_600)),
                vec!["extent"],
            ),
            // 5 km: the class goes from minor to major.
            (
                "grew to 5 km",
                with("from_m", json!(7_000)),
                vec!["extent", "severity"],
            ),
            ("score", with("severity", json!(3)), vec!["severity"]),
            (
                "ended",
                with("end", json!("2026-12-08T07:00:00+08:00")),
                vec!["status"],
            ),
        ];
        for (name, new, want) in cases {
            assert_eq!(what_changed(&base, &new, &r, &t), want, "{name}");
        }
        let fog = |band: u8, vis: u32| json!({"kind": "fog", "from_m": 0, "to_m": 900, "visibility_m": vis, "band": band, "evidence": {"rule": "weather.fog"}});
        assert_eq!(
            what_changed(&fog(2, 150), &fog(2, 120), &r, &t),
            Vec::<&str>::new()
        );
        assert_eq!(
            what_changed(&fog(2, 150), &fog(3, 90), &r, &t),
            vec!["severity", "band"]
        );
    }

    #[test]
    fn every_kind_has_a_basis() {
        for k in EventKind::ALL {
            assert_ne!(basis(k.as_str()), "平台规则", "{k}");
        }
        assert!(basis("fog").contains("第八十一条"));
    }

    #[test]
    fn workflow_steps() {
        let ack = apply(None, "E1", &Step::Ack, "op", 10).expect("ack");
        assert_eq!(
            (ack.status.as_str(), ack.acked_by.as_deref()),
            ("acknowledged", Some("op"))
        );
        assert_eq!(
            apply(Some(&ack), "E1", &Step::Ack, "op2", 11),
            Err(StepError::AlreadyAcked("E1".into(), "op".into()))
        );
        let asg =
            apply(Some(&ack), "E1", &Step::Assign("patrol".into()), "op", 12).expect("assign");
        assert_eq!(asg.assigned_to.as_deref(), Some("patrol"));
        assert_eq!(asg.status, "acknowledged", "assigning keeps the status");
        assert_eq!(
            apply(Some(&asg), "E1", &Step::Close("  ".into()), "op", 13),
            Err(StepError::Empty("a reason to close"))
        );
        assert_eq!(
            apply(Some(&asg), "E1", &Step::Note(String::new()), "op", 13),
            Err(StepError::Empty("a note's text"))
        );
        let closed = apply(
            Some(&asg),
            "E1",
            &Step::Close("cleared by patrol".into()),
            "op",
            14,
        )
        .expect("close");
        assert_eq!(closed.status, "closed");
        assert_eq!(closed.close_reason.as_deref(), Some("cleared by patrol"));
        for s in [
            Step::Ack,
            Step::Assign("x".into()),
            Step::Close("again".into()),
        ] {
            assert_eq!(
                apply(Some(&closed), "E1", &s, "op", 15),
                Err(StepError::Closed("E1".into(), "op".into())),
                "{s:?}"
            );
        }
        let noted =
            apply(Some(&closed), "E1", &Step::Note("towed".into()), "op", 16).expect("note");
        assert_eq!(
            noted.status, "closed",
            "a note after closing changes nothing else"
        );
        assert_eq!(
            apply(None, "E1", &Step::Note("x".repeat(MAX_TEXT + 1)), "op", 1),
            Err(StepError::TooLong("a note's text", MAX_TEXT))
        );
    }

    #[test]
    fn lanes_blocked_at_a_detector() {
        let t = LaneTable::default();
        type Rows = Vec<(i16, i32, Option<f64>, Option<f64>)>;
        let cases: Vec<(&str, Rows, Vec<i16>)> = vec![
            (
                "free flow",
                vec![
                    (1, 10, Some(95.0), Some(8.0)),
                    (2, 12, Some(90.0), Some(9.0)),
                ],
                vec![],
            ),
            (
                "lane 2 stands over the loop",
                vec![
                    (1, 10, Some(60.0), Some(15.0)),
                    (2, 0, Some(3.0), Some(95.0)),
                ],
                vec![2],
            ),
            (
                "lane 1 emptied",
                vec![
                    (1, 0, None, Some(0.0)),
                    (2, 14, Some(50.0), Some(30.0)),
                    (3, 9, Some(55.0), Some(25.0)),
                ],
                vec![1],
            ),
            (
                "night: nobody counts",
                vec![(1, 0, None, Some(0.0)), (2, 1, Some(90.0), Some(1.0))],
                vec![],
            ),
            (
                "a jam: slow but not standing",
                vec![
                    (1, 4, Some(15.0), Some(60.0)),
                    (2, 5, Some(18.0), Some(55.0)),
                ],
                vec![],
            ),
            (
                "all standing",
                vec![(1, 0, Some(2.0), Some(98.0)), (2, 0, Some(1.0), Some(99.0))],
                vec![1, 2],
            ),
        ];
        for (name, rows, want) in cases {
            assert_eq!(blocked_lanes(&rows, &t), want, "{name}");
        }
    }
}
