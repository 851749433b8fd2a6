//! The operator's side of events and the shift handover (issue 17) on a
//! live centre fed the simulated fog-and-ice morning: severity classes,
//! acknowledge / assign / note / close (audited, viewers refused, a close
//! needs a reason and waits for pending proposals), a history without
//! per-tick lines, and the handover signed by one operator and
//! acknowledged by another.

mod common;

use common::{TestServer, day_batches};
use serde_json::{Value, json};

async fn post(s: &TestServer, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = s
        .http
        .post(format!("{}{}", s.url, path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

const LEVELS: [&str; 4] = ["critical", "major", "minor", "info"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_workflow_history_and_handover() {
    let Some(s) = TestServer::start("sqlite", |c| c.decisions.proposal_expiry_s = 3600).await
    else {
        return;
    };
    let op = s.login("op").await;
    let admin = s.login("admin").await;
    let viewer = s.login("viewer").await;
    s.send_day(&op, 500).await;
    s.settle(&viewer).await;

    // Every event carries its severity class and its workflow.
    let events = s.get(&viewer, "/api/events").await;
    let events = events.as_array().unwrap();
    assert!(events.len() >= 3, "{}", events.len());
    for e in events {
        assert!(LEVELS.contains(&e["level"].as_str().unwrap_or("")), "{e}");
        assert_eq!(e["workflow"]["status"], "open", "{e}");
    }
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "fog" && e["level"] != "info"),
        "a fog event under 200 m has a class above info"
    );

    // The history records changes, not ticks: every brain update in an
    // event's life says what an operator would see changed.
    let mut updated = 0;
    let mut lines = 0;
    for e in events {
        let id = e["id"].as_str().unwrap();
        let life = s.get(&viewer, &format!("/api/events/{id}")).await;
        assert!(!life["basis"].as_str().unwrap_or("").is_empty(), "{id}");
        for c in life["changes"].as_array().unwrap() {
            lines += 1;
            if c["change"] == "updated" {
                updated += 1;
                assert!(
                    !c["what"].as_array().unwrap().is_empty(),
                    "{id}: an update line with nothing an operator cares about: {c}"
                );
            }
        }
    }
    assert!(lines >= events.len(), "{lines}");
    eprintln!(
        "{} events, {lines} history lines, {updated} updates",
        events.len()
    );
    let fog = events.iter().find(|e| e["kind"] == "fog").unwrap();
    let fog_life = s
        .get(
            &viewer,
            &format!("/api/events/{}", fog["id"].as_str().unwrap()),
        )
        .await;
    assert!(fog_life["basis"].as_str().unwrap().contains("第八十一条"));

    // The event to work on: an active one without pending proposals.
    let pending = s.get(&viewer, "/api/proposals?status=pending").await;
    let waiting: Vec<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["event"].as_str())
        .collect();
    let target = events
        .iter()
        .find(|e| e["end"].is_null() && !waiting.contains(&e["id"].as_str().unwrap()))
        .or_else(|| {
            events
                .iter()
                .find(|e| !waiting.contains(&e["id"].as_str().unwrap()))
        })
        .expect("an event without pending proposals");
    let id = target["id"].as_str().unwrap().to_string();
    let path = |step: &str| format!("/api/events/{id}/{step}");

    // Viewers cannot work on events.
    for step in ["ack", "assign", "note", "close"] {
        let (st, _) = post(
            &s,
            &viewer,
            &path(step),
            json!({"user": "op", "text": "x", "reason": "x"}),
        )
        .await;
        assert_eq!(st, 403, "viewer {step}");
    }
    // Acknowledge once.
    let (st, a) = post(&s, &op, &path("ack"), json!({})).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["workflow"]["status"], "acknowledged");
    assert_eq!(a["workflow"]["acked_by"], "op");
    let (st, a) = post(&s, &admin, &path("ack"), json!({})).await;
    assert_eq!(st, 409, "{a}");
    // Assign to a user who exists.
    let (st, _) = post(&s, &op, &path("assign"), json!({"user": "nobody"})).await;
    assert_eq!(st, 422);
    let (st, a) = post(&s, &op, &path("assign"), json!({"user": "admin"})).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["workflow"]["assigned_to"], "admin");
    // A note needs text.
    let (st, _) = post(&s, &op, &path("note"), json!({"text": "  "})).await;
    assert_eq!(st, 422);
    let (st, a) = post(&s, &op, &path("note"), json!({"text": "巡逻车已到场"})).await;
    assert_eq!(st, 200, "{a}");
    // Close needs a reason.
    let (st, a) = post(&s, &op, &path("close"), json!({})).await;
    assert_eq!(st, 422, "{a}");
    assert!(a["error"].as_str().unwrap().contains("reason"), "{a}");
    let (st, a) = post(&s, &op, &path("close"), json!({"reason": "现场已清理"})).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["workflow"]["status"], "closed");
    assert_eq!(a["workflow"]["close_reason"], "现场已清理");
    assert_eq!(
        a["warning"].is_string(),
        target["end"].is_null(),
        "closing an event the brain still sees says so: {a}"
    );
    // Closed: nothing but notes.
    let (st, _) = post(&s, &op, &path("ack"), json!({})).await;
    assert_eq!(st, 409);
    let (st, _) = post(&s, &op, &path("note"), json!({"text": "拖车离开"})).await;
    assert_eq!(st, 200);

    // An event whose proposals wait cannot be closed.
    if let Some(w) = waiting.first() {
        let (st, a) = post(
            &s,
            &op,
            &format!("/api/events/{w}/close"),
            json!({"reason": "x"}),
        )
        .await;
        assert_eq!(st, 409, "{a}");
        assert!(a["error"].as_str().unwrap().contains("decide"), "{a}");
    }

    // The card: workflow, notes, and the operators' steps in the history.
    let life = s.get(&viewer, &format!("/api/events/{id}")).await;
    assert_eq!(life["workflow"]["status"], "closed");
    assert_eq!(life["workflow"]["closed_by"], "op");
    assert_eq!(life["event"]["workflow"]["status"], "closed");
    let notes: Vec<&str> = life["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(notes, ["巡逻车已到场", "拖车离开"]);
    let steps: Vec<(&str, &str)> = life["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["by"].is_null())
        .map(|c| (c["change"].as_str().unwrap(), c["by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("acknowledged", "op"),
            ("assigned", "op"),
            ("note", "op"),
            ("closed", "op"),
            ("note", "op")
        ]
    );

    // Audited: actor, action, event.
    let audit = s.get(&admin, "/api/audit?limit=10000").await;
    let audit = audit.as_array().unwrap();
    for (action, detail) in [
        ("event.ack", None),
        ("event.assign", Some(("user", "admin"))),
        ("event.note", Some(("text", "巡逻车已到场"))),
        ("event.close", Some(("reason", "现场已清理"))),
    ] {
        assert!(
            audit.iter().any(|a| a["action"] == action
                && a["actor"] == "op"
                && a["target"] == id.as_str()
                && detail.is_none_or(|(k, v)| a["detail"][k] == v)),
            "{action} audited"
        );
    }
    assert!(
        !audit
            .iter()
            .any(|a| a["action"].as_str().unwrap().starts_with("event.") && a["actor"] == "viewer"),
        "refused steps leave no audit"
    );

    // The shift's log: events opened, the operators' steps, what is open,
    // worst first.
    let h = s.get(&viewer, "/api/handover").await;
    assert!(h["last"].is_null(), "{}", h["last"]);
    let log = &h["log"];
    assert!(!log["opened"].as_array().unwrap().is_empty());
    let logged: Vec<&str> = log["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["event"] == id.as_str())
        .map(|x| x["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        logged,
        ["acknowledged", "assigned", "note", "closed", "note"]
    );
    let rank = |l: &Value| LEVELS.iter().position(|x| l == x).unwrap();
    let open_now = log["open_now"].as_array().unwrap();
    assert!(
        open_now
            .windows(2)
            .all(|w| rank(&w[0]["level"]) <= rank(&w[1]["level"])),
        "open events worst first"
    );
    assert_eq!(
        open_now.len(),
        s.get(&viewer, "/api/events?active=true")
            .await
            .as_array()
            .unwrap()
            .len()
    );

    // Signed by the outgoing operator, acknowledged by another.
    let (st, _) = post(&s, &viewer, "/api/handover/sign", json!({"note": "x"})).await;
    assert_eq!(st, 403);
    let (st, signed) = post(
        &s,
        &op,
        "/api/handover/sign",
        json!({"note": "雾区管制仍在执行"}),
    )
    .await;
    assert_eq!(st, 200, "{signed}");
    let hid = signed["id"].as_str().unwrap().to_string();
    assert_eq!(signed["signed_by"], "op");
    assert_eq!(
        signed["log"]["steps"], log["steps"],
        "the signed log is the shift's"
    );
    let ack = format!("/api/handover/{hid}/ack");
    let (st, a) = post(&s, &op, &ack, json!({})).await;
    assert_eq!(st, 422, "the signer cannot acknowledge: {a}");
    let (st, _) = post(&s, &viewer, &ack, json!({})).await;
    assert_eq!(st, 403);
    let (st, a) = post(&s, &admin, &ack, json!({"note": "已接班"})).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["acked_by"], "admin");
    let (st, _) = post(&s, &admin, &ack, json!({})).await;
    assert_eq!(st, 409);
    let (st, _) = post(&s, &admin, "/api/handover/H999/ack", json!({})).await;
    assert_eq!(st, 404);

    // The next shift's log starts at the signature.
    let h = s.get(&viewer, "/api/handover").await;
    assert_eq!(h["last"]["id"], hid.as_str());
    assert_eq!(h["last"]["acked_by"], "admin");
    assert!(
        h["log"]["steps"].as_array().unwrap().is_empty(),
        "{}",
        h["log"]
    );
    let (st, _) = post(&s, &admin, &path("note"), json!({"text": "交接后补充"})).await;
    assert_eq!(st, 200);
    let h = s.get(&viewer, "/api/handover").await;
    assert_eq!(h["log"]["steps"][0]["text"], "交接后补充");
    let list = s.get(&viewer, "/api/handovers").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let audit = s.get(&admin, "/api/audit?limit=10000").await;
    let audit = audit.as_array().unwrap();
    assert!(audit.iter().any(|a| a["action"] == "handover.sign"
        && a["actor"] == "op"
        && a["target"] == hid.as_str()));
    assert!(audit.iter().any(|a| a["action"] == "handover.ack"
        && a["actor"] == "admin"
        && a["target"] == hid.as_str()));
}

/// An operator closes the fog while it is light (info); the brain still
/// sees it, and when it thickens (its class rises) the close does not hold:
/// the event reopens, in its history and in the audit log, by `system`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_event_that_gets_worse_reopens() {
    let Some(s) = TestServer::start("sqlite", |c| c.decisions.proposal_expiry_s = 3600).await
    else {
        return;
    };
    let op = s.login("op").await;
    let admin = s.login("admin").await;
    let batches = day_batches(&s.dir, 500);
    let mut closed: Option<(String, String)> = None;
    let mut reopened = false;
    for (i, (kind, body)) in batches.iter().enumerate() {
        let (st, a) = s.post_csv(&op, kind, body.clone()).await;
        assert_eq!(st, 200, "{a}");
        if i % 10 != 9 {
            continue;
        }
        s.settle(&op).await;
        let events = s.get(&op, "/api/events?active=true&kind=fog").await;
        let Some(fog) = events.as_array().unwrap().first() else {
            continue;
        };
        let id = fog["id"].as_str().unwrap().to_string();
        match &closed {
            None => {
                let (st, a) = post(
                    &s,
                    &op,
                    &format!("/api/events/{id}/close"),
                    json!({"reason": "能见度尚可"}),
                )
                .await;
                assert_eq!(st, 200, "{a}");
                assert!(a["warning"].is_string(), "{a}");
                closed = Some((id, fog["level"].as_str().unwrap().to_string()));
            }
            Some((cid, level)) if *cid == id && fog["level"] != level.as_str() => {
                assert_eq!(fog["workflow"]["status"], "open", "{fog}");
                reopened = true;
                break;
            }
            Some(_) => {}
        }
    }
    let (id, _) = closed.expect("a fog event to close");
    assert!(reopened, "the fog got worse and {id} reopened");
    let life = s.get(&op, &format!("/api/events/{id}")).await;
    let steps: Vec<(&str, &str)> = life["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["by"].is_null())
        .map(|c| (c["change"].as_str().unwrap(), c["by"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("closed", "op"), ("reopened", "system")]);
    assert!(life["workflow"]["closed_by"].is_null());
    let audit = s.get(&admin, "/api/audit?limit=10000").await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "event.reopen"
                && a["actor"] == "system"
                && a["target"] == id.as_str())
    );
}
