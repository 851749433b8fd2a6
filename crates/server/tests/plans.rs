//! Response plans on the simulated fog morning (SQLite, and PostgreSQL
//! when ZHILU_TEST_PG_URL is set) (docs/SERVER.md, "Response
//! plans"): the brain's entry closures for one fog event arrive as one
//! plan with named steps, an operator rejects one step and approves the
//! rest in one request, and an unanswered safety step escalates and never
//! reads as applied anywhere.

mod common;

use std::time::Duration;

use common::{TestServer, day_batches};
use serde_json::{Value, json};

/// The CSV body with only the rows before data time `t` (the header kept).
fn rows_before(body: &str, t: &str) -> String {
    let mut lines = body.lines();
    let mut out = String::from(lines.next().unwrap_or(""));
    out.push('\n');
    for l in lines.filter(|l| l.get(..t.len()).is_some_and(|p| p < t)) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The morning up to 06:50, while the fog closes the entries.
async fn foggy_morning(s: &TestServer, op: &str) {
    for (kind, body) in day_batches(&s.dir, 1000) {
        let body = rows_before(&body, "2026-11-23T06:50");
        if body.lines().count() < 2 {
            continue;
        }
        let (st, a) = s.post_csv(op, kind, body).await;
        assert_eq!(st, 200, "{a}");
    }
}

async fn post(s: &TestServer, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = s
        .http
        .post(format!("{}{path}", s.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

fn steps(plan: &Value) -> &Vec<Value> {
    plan["steps"].as_array().unwrap()
}

/// Steps not superseded by a newer step on the same device.
fn live(plan: &Value) -> Vec<Value> {
    steps(plan)
        .iter()
        .filter(|s| s["status"] != "superseded")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fog_event_gives_one_plan_decided_as_a_whole_or_by_step_sqlite() {
    fog_plan("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fog_event_gives_one_plan_decided_as_a_whole_or_by_step_postgres() {
    fog_plan("postgres").await;
}

async fn fog_plan(backend: &str) {
    let Some(s) = TestServer::start(backend, |c| c.decisions.proposal_expiry_s = 3600).await else {
        return;
    };
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    foggy_morning(&s, &op).await;
    s.settle(&viewer).await;
    let plans = s
        .wait_for(&viewer, "/api/plans?status=pending", 10, |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|p| p["event_kind"] == "fog" && live(p).len() >= 2)
        })
        .await;
    let plans = plans.as_array().unwrap();
    // Every pending proposal is a step of exactly one pending plan, and no
    // event has two pending plans.
    let pending = s.get(&viewer, "/api/proposals?status=pending").await;
    for p in pending.as_array().unwrap() {
        let n = plans
            .iter()
            .filter(|pl| steps(pl).iter().any(|st| st["id"] == p["id"]))
            .count();
        assert_eq!(n, 1, "{} is in {n} plans", p["id"]);
    }
    let mut events: Vec<&str> = plans.iter().filter_map(|p| p["event"].as_str()).collect();
    let all = events.len();
    events.sort_unstable();
    events.dedup();
    assert_eq!(
        events.len(),
        all,
        "two pending plans for one event: {plans:?}"
    );

    let plan = plans
        .iter()
        .find(|p| p["event_kind"] == "fog" && live(p).len() >= 2)
        .unwrap()
        .clone();
    let id = plan["id"].as_str().unwrap().to_string();
    // 名称 with the event's kind, stakes and carriageway; steps with names
    // from the road book, the rule and the law.
    let name = plan["name"].as_str().unwrap();
    assert!(
        name.starts_with("团雾 K") && name.ends_with("处置预案"),
        "{name}"
    );
    assert!(name.contains("上行") || name.contains("下行") || name.contains("双向"));
    for st in steps(&plan) {
        let device = st["device"].as_str().unwrap();
        let ic = s
            .road
            .interchanges()
            .iter()
            .find(|i| i.id == device)
            .expect("fog steps are entries");
        assert_eq!(st["device_name"], ic.name.as_str(), "{st}");
        assert_ne!(st["device_name"], device);
        assert_eq!(st["rule"], "weather.fog_band", "{st}");
        assert!(st["basis"].as_str().unwrap().contains("第八十一条"), "{st}");
        assert!(
            matches!(st["status"].as_str(), Some("pending" | "superseded")),
            "{st}"
        );
        assert!(st["applied"].is_null());
    }
    assert_eq!(s.get(&viewer, &format!("/api/plans/{id}")).await["id"], id);
    let of_event = s
        .get(
            &viewer,
            &format!("/api/plans?event={}", plan["event"].as_str().unwrap()),
        )
        .await;
    assert!(
        of_event
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["event"] == plan["event"])
    );
    assert!(
        of_event
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );

    // Checks first: a viewer cannot decide; a step of another plan or an
    // unlawful edit is refused and decides nothing.
    let (st, _) = post(&s, &viewer, &format!("/api/plans/{id}/approve"), json!({})).await;
    assert_eq!(st, 403);
    let (st, _) = post(
        &s,
        &op,
        &format!("/api/plans/{id}/approve"),
        json!({"steps": ["P999999"]}),
    )
    .await;
    assert_eq!(st, 422);
    let first = live(&plan)[0]["id"].as_str().unwrap().to_string();
    let (st, _) = post(
        &s,
        &op,
        &format!("/api/plans/{id}/reject"),
        json!({"steps": [first]}),
    )
    .await;
    assert_eq!(st, 422, "a rejection needs a reason");
    let (st, a) = post(
        &s,
        &op,
        &format!("/api/plans/{id}/edit"),
        json!({"step": first, "reason": "metering is enough", "edit": {"value": "open"}}),
    )
    .await;
    assert_eq!(st, 422, "less safe than the law's floor: {a}");
    let still = s.get(&viewer, &format!("/api/plans/{id}")).await;
    assert!(
        live(&still).iter().all(|x| x["status"] == "pending"),
        "{still}"
    );

    // Reject one step: the others stay pending.
    let (st, after) = post(
        &s,
        &op,
        &format!("/api/plans/{id}/reject"),
        json!({"steps": [first], "reason": "police hold the entry open"}),
    )
    .await;
    assert_eq!(st, 200, "{after}");
    assert_eq!(after["status"], "pending");
    let by_id = |v: &Value, sid: &str| steps(v).iter().find(|x| x["id"] == sid).unwrap().clone();
    assert_eq!(by_id(&after, &first)["status"], "rejected");
    assert!(
        live(&after)
            .iter()
            .filter(|x| x["id"] != first.as_str())
            .all(|x| x["status"] == "pending")
    );
    // Deciding the rejected step again is a conflict, through either API.
    let (st, _) = post(
        &s,
        &op,
        &format!("/api/plans/{id}/approve"),
        json!({"steps": [first]}),
    )
    .await;
    assert_eq!(st, 409);
    let (st, _) = post(
        &s,
        &op,
        &format!("/api/proposals/{first}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(st, 409);
    // A list with a decided step decides none of it, not even the pending one.
    let second = live(&after)
        .iter()
        .find(|x| x["status"] == "pending")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _) = post(
        &s,
        &op,
        &format!("/api/plans/{id}/approve"),
        json!({"steps": [second, first]}),
    )
    .await;
    assert_eq!(st, 409);
    let v = s.get(&viewer, &format!("/api/plans/{id}")).await;
    assert_eq!(by_id(&v, &second)["status"], "pending");

    // Approve the rest in one request: every pending step applied.
    let (st, done) = post(&s, &op, &format!("/api/plans/{id}/approve"), json!({})).await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["status"], "partial", "{done}");
    for x in live(&done) {
        if x["id"] == first.as_str() {
            assert_eq!(x["status"], "rejected");
            assert!(x["applied"].is_null());
        } else {
            assert_eq!(x["status"], "approved", "{x}");
            assert_eq!(x["applied"]["value"], x["command"]["value"]);
        }
    }
    let (st, _) = post(&s, &op, &format!("/api/plans/{id}/approve"), json!({})).await;
    assert_eq!(st, 409, "nothing left to approve");
    // The devices of the approved steps confirm their states; the rejected
    // step's entry was never commanded.
    for x in steps(&done) {
        if x["status"] != "approved" {
            continue;
        }
        let device = x["device"].as_str().unwrap().to_string();
        let value = x["command"]["value"].clone();
        let dir = x["command"]["direction"].clone();
        s.wait_for(&viewer, "/api/devices", 10, |v| {
            v.as_array().unwrap().iter().any(|d| {
                d["device"] == device.as_str()
                    && d["state"]["value"] == value
                    && d["state"]["direction"] == dir
            })
        })
        .await;
    }
    let actions = s.get(&viewer, "/api/actions?limit=10000").await;
    let of_step = |sid: &str| -> Vec<Value> {
        actions
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["proposal"] == sid)
            .cloned()
            .collect()
    };
    let rejected = of_step(&first);
    assert!(!rejected.is_empty(), "the proposal is on record");
    assert!(
        rejected
            .iter()
            .all(|a| a["applied"] == false && a["mode"] == "confirm"),
        "a rejected step reads as applied: {rejected:?}"
    );
    let approved = steps(&done)
        .iter()
        .find(|x| x["status"] == "approved")
        .unwrap();
    assert!(
        of_step(approved["id"].as_str().unwrap())
            .iter()
            .any(|a| a["applied"] == true && a["mode"] == "confirmed")
    );
    // Audited: the plan made, and each decision on it.
    let admin = s.login("admin").await;
    let audit = s.get(&admin, "/api/audit?limit=10000").await;
    let has = |action: &str| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == action && a["target"] == id.as_str())
    };
    assert!(has("plan.created") && has("plan.reject") && has("plan.approve"));
    // Listed among decided plans, no longer among pending ones.
    let partial = s.get(&viewer, "/api/plans?status=partial").await;
    assert!(
        partial
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );
    let pending = s.get(&viewer, "/api/plans?status=pending").await;
    assert!(
        !pending
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );
    let r = s
        .http
        .get(format!("{}/api/plans?status=bogus", s.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
}

/// A safety step left unanswered past its deadline stays pending and
/// raises an alarm naming its plan, on the stream; a `plan` message came
/// before it; nothing of the step reads as applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_safety_step_escalates_and_never_reads_as_applied() {
    let s = TestServer::start("sqlite", |c| {
        c.decisions.proposal_expiry_s = 1;
        c.decisions.escalation_repeat_s = 1;
    })
    .await
    .unwrap();
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    let mut stream = s
        .http
        .get(format!("{}/api/stream", s.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    foggy_morning(&s, &op).await;
    let admin = s.login("admin").await;
    let audit = s
        .wait_for(&admin, "/api/audit?limit=10000", 20, |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|a| a["action"] == "proposal.escalated")
        })
        .await;
    let escalated = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "proposal.escalated")
        .unwrap()
        .clone();
    let detail: Value = escalated["detail"].clone();
    let plan = detail["plan"]
        .as_str()
        .expect("the alarm names its plan")
        .to_string();
    assert!(
        detail["plan_name"].as_str().unwrap().ends_with("处置预案"),
        "{detail}"
    );
    let step = escalated["target"].as_str().unwrap().to_string();
    // Read the plan, the actions and the devices: the step is pending (or
    // superseded by a newer step of the same plan), never applied.
    let v = s.get(&viewer, &format!("/api/plans/{plan}")).await;
    let st = steps(&v)
        .iter()
        .find(|x| x["id"] == step.as_str())
        .unwrap()
        .clone();
    assert!(
        matches!(st["status"].as_str(), Some("pending") | Some("superseded")),
        "{st}"
    );
    assert!(st["applied"].is_null(), "{st}");
    let actions = s.get(&viewer, "/api/actions?limit=10000").await;
    for a in actions.as_array().unwrap() {
        if a["proposal"] == step.as_str() {
            assert_eq!(a["applied"], false, "{a}");
            assert_ne!(a["mode"], "confirmed", "{a}");
        }
    }
    let device = st["device"].as_str().unwrap();
    let devices = s.get(&viewer, "/api/devices").await;
    let d = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == device)
        .unwrap();
    assert!(
        !(d["state"]["value"] == st["command"]["value"]
            && d["state"]["direction"] == st["command"]["direction"]
            && st["command"]["value"] != "open"),
        "the device shows a state nothing approved: {d}"
    );
    assert!(d["pending"].is_null(), "nothing was sent: {d}");
    // On the stream: the plan, then the alarm naming it.
    let mut text = String::new();
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while !(text.contains("event: alarm") && text.contains(&format!("\"plan\":\"{plan}\"")))
        && std::time::Instant::now() < until
    {
        match tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
    }
    assert!(
        text.contains("event: plan"),
        "no plan message on the stream"
    );
    assert!(text.contains("event: alarm"), "no alarm on the stream");
    let plan_at = text.find("event: plan").unwrap();
    let alarm_at = text.find("event: alarm").unwrap();
    assert!(plan_at < alarm_at);
    assert!(
        !s.get(&admin, "/api/audit?limit=10000")
            .await
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["target"] == step.as_str()
                && matches!(
                    a["action"].as_str(),
                    Some("proposal.approve") | Some("proposal.expired")
                )),
        "{step} was never approved nor lapsed"
    );
}
