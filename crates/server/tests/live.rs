//! The live centre end to end on a simulated fog-and-ice morning: readings
//! in over HTTP, events and proposals out, operators deciding, simulated
//! devices confirming, a restart in the middle. Runs on SQLite, and on
//! PostgreSQL when ZHILU_TEST_PG_URL is set.

mod common;

use std::time::Duration;

use common::{TestServer, day_batches};
use serde_json::{Value, json};
use zhilu_server::config::{CommandKind, DeadlineAction};

async fn day_with_operators(backend: &str) {
    let Some(mut s) = TestServer::start(backend, |c| c.decisions.proposal_expiry_s = 3600).await
    else {
        return;
    };
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    let batches = day_batches(&s.dir, 400);
    let half = batches.len() / 2;
    for (kind, body) in &batches[..half] {
        let (st, a) = s.post_csv(&op, kind, body.clone()).await;
        assert_eq!(st, 200, "{a}");
        assert_eq!(a["rejected"], 0, "{a}");
    }
    s.settle(&viewer).await;
    // Fog is up by the middle of the morning, with lawful limits applied
    // automatically and confirmed by the (simulated) signs.
    let events = s
        .wait_for(&viewer, "/api/events?active=true", 10, |v| {
            v.as_array().unwrap().iter().any(|e| e["kind"] == "fog")
        })
        .await;
    let before: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let devices = s
        .wait_for(&viewer, "/api/devices", 10, |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|d| d["state"]["action"] == "speed_limit")
        })
        .await;
    for d in devices.as_array().unwrap() {
        if d["state"]["action"] == "speed_limit" {
            let v = d["state"]["value"].as_u64().unwrap();
            assert!(v <= 100, "{d}");
            assert_eq!(d["online"], true);
        }
    }
    let actions = s.get(&viewer, "/api/actions").await;
    assert!(
        actions
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["mode"] == "auto" && a["command"]["action"] == "speed_limit")
    );

    // A restart in the middle: open events keep their ids, confirmed device
    // states stay, nothing is replayed twice into the log.
    let devices_before = s.get(&viewer, "/api/devices").await;
    let resumed = s.restart().await;
    assert!(resumed > 0);
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    let after = s.get(&viewer, "/api/events?active=true").await;
    let after: Vec<String> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    // (The engine may still have been catching up when `before` was read:
    // an event can have ended from the data since, never from the restart.)
    for id in &before {
        let e = s.get(&viewer, &format!("/api/events/{id}")).await;
        assert_eq!(e["event"]["id"], id.as_str());
        assert!(
            e["event"]["end_reason"].is_null(),
            "event {id} lost across the restart: {e}"
        );
        assert!(after.contains(id) || !e["event"]["end"].is_null(), "{e}");
    }
    let devices_after = s.get(&viewer, "/api/devices").await;
    for (a, b) in devices_before
        .as_array()
        .unwrap()
        .iter()
        .zip(devices_after.as_array().unwrap())
    {
        assert_eq!(a["device"], b["device"]);
        assert_eq!(a["state"], b["state"], "{}", a["device"]);
    }

    // The rest of the morning up to 06:50, while the fog still closes the
    // entries (it lifts before 07:00 and the closures give way to releases).
    for (kind, body) in &batches[half..] {
        let body = rows_before(body, "2026-11-23T06:50");
        if body.lines().count() < 2 {
            continue;
        }
        let (st, a) = s.post_csv(&op, kind, body).await;
        assert_eq!(st, 200, "{a}");
    }
    s.settle(&viewer).await;
    // Entry closures wait for an operator.
    let pending = s
        .wait_for(&viewer, "/api/proposals?status=pending", 10, |v| {
            v.as_array().unwrap().len() >= 2
        })
        .await;
    let pending = pending.as_array().unwrap().clone();
    assert!(pending.iter().all(|p| p["kind"] == "entry"), "{pending:?}");
    let p0 = pending[0]["id"].as_str().unwrap();
    let p1 = pending[1]["id"].as_str().unwrap();
    // A viewer cannot decide; an operator must give a reason to reject.
    let r = s
        .http
        .post(format!("{}/api/proposals/{p0}/approve", s.url))
        .bearer_auth(&viewer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = s
        .http
        .post(format!("{}/api/proposals/{p1}/reject", s.url))
        .bearer_auth(&op)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    // Approve one; the entry's device confirms it.
    let r = s
        .http
        .post(format!("{}/api/proposals/{p0}/approve", s.url))
        .bearer_auth(&op)
        .json(&json!({"reason": "fog confirmed by CCTV"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let device = pending[0]["device"].as_str().unwrap().to_string();
    let value = pending[0]["command"]["value"].clone();
    s.wait_for(&viewer, "/api/devices", 10, |v| {
        v.as_array()
            .unwrap()
            .iter()
            .any(|d| d["device"] == device.as_str() && d["state"]["value"] == value)
    })
    .await;
    // Deciding twice is a conflict.
    let r = s
        .http
        .post(format!("{}/api/proposals/{p0}/reject", s.url))
        .bearer_auth(&op)
        .json(&json!({"reason": "late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    // Edit the other: never less safe than the plan (the law's floor) for
    // an operator, not even with an override; an admin may override, audited.
    let proposed = pending[1]["command"]["value"].as_str().unwrap().to_string();
    assert_ne!(proposed, "open", "{pending:?}");
    for (who, edit) in [
        (&op, json!({"value": "bogus"})),
        (&op, json!({"value": "open"})),
        (&op, json!({"value": "open", "override": true})),
    ] {
        let r = s
            .http
            .post(format!("{}/api/proposals/{p1}/edit", s.url))
            .bearer_auth(who)
            .json(&json!({"reason": "metering is enough", "edit": edit}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422, "{edit}");
    }
    let admin = s.login("admin").await;
    let r = s
        .http
        .post(format!("{}/api/proposals/{p1}/edit", s.url))
        .bearer_auth(&admin)
        .json(&json!({"reason": "police on site, entry stays open", "edit": {"value": "open", "override": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], "edited");
    assert_eq!(p["applied"]["value"], "open");
    // The audit log has who, what and why.
    let audit = s.get(&admin, "/api/audit?limit=10000").await;
    let audit = audit.as_array().unwrap();
    assert!(audit.iter().any(|a| a["action"] == "proposal.approve"
        && a["actor"] == "op"
        && a["target"] == p0
        && a["detail"]["reason"] == "fog confirmed by CCTV"));
    assert!(audit.iter().any(|a| a["action"] == "proposal.override"
        && a["actor"] == "admin"
        && a["target"] == p1
        && a["detail"]["proposed"]["value"] == proposed.as_str()
        && a["detail"]["applied"]["value"] == "open"));
    assert!(audit.iter().any(|a| a["action"] == "action.auto"));
    assert!(audit.iter().any(|a| a["action"] == "proposal.created"));
    // Event lifecycles: the fog event was opened and has changes.
    let fog = before.iter().find(|_| true).unwrap();
    let e = s.get(&viewer, &format!("/api/events/{fog}")).await;
    assert_eq!(e["changes"][0]["change"], "opened", "{e}");
}

/// The header and the rows of a CSV batch dated before `t` (same offset).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_with_operators_sqlite() {
    day_with_operators("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_with_operators_postgres() {
    day_with_operators("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_expire_where_configured() {
    let s = TestServer::start("sqlite", |c| {
        c.decisions.proposal_expiry_s = 1;
        for k in CommandKind::ALL {
            c.decisions.on_deadline.insert(k, DeadlineAction::Drop);
        }
    })
    .await
    .unwrap();
    let op = s.login("op").await;
    s.send_day(&op, 2000).await;
    let admin = s.login("admin").await;
    s.wait_for(&admin, "/api/proposals?status=expired", 15, |v| {
        !v.as_array().unwrap().is_empty()
    })
    .await;
    let audit = s.get(&admin, "/api/audit?limit=10000").await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "proposal.expired" && a["actor"] == "system")
    );
}

/// By default an unanswered proposal never lapses: past its deadline it
/// stays pending and an alarm repeats on the stream with a rising level,
/// audited; nothing reads as expired or applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_proposals_escalate_instead_of_expiring() {
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
    s.send_day(&op, 2000).await;
    let admin = s.login("admin").await;
    // The same proposal escalated at least twice (levels 1 and 2).
    let audit = s
        .wait_for(&admin, "/api/audit?limit=10000", 20, |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|a| a["action"] == "proposal.escalated" && a["detail"]["level"] == 2)
        })
        .await;
    let entries = audit.as_array().unwrap();
    assert!(!entries.iter().any(|a| a["action"] == "proposal.expired"));
    let escalated: Vec<&str> = entries
        .iter()
        .filter(|a| a["action"] == "proposal.escalated")
        .map(|a| a["target"].as_str().unwrap())
        .collect();
    // Each escalated proposal is still waiting for an answer, or the brain
    // has since replaced it with a newer one for the same device (the day
    // goes on while the test reads; under load that happens first): none
    // lapsed.
    let all = s.get(&admin, "/api/proposals").await;
    let status_of = |id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .map(|p| p["status"].as_str().unwrap_or("").to_string())
    };
    for id in &escalated {
        let st = status_of(id);
        assert!(
            matches!(st.as_deref(), Some("pending") | Some("superseded")),
            "escalated {id} must still be pending or superseded, is {st:?}"
        );
    }
    assert!(
        s.get(&admin, "/api/proposals?status=expired")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The alarm reached the stream.
    let mut text = String::new();
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while !text.contains("event: alarm") && std::time::Instant::now() < until {
        match tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
    }
    assert!(text.contains("event: alarm"), "no alarm on the stream");
    assert!(text.contains("proposal_unanswered"));
}

/// The law from the first reading, live: a weather reading that puts a
/// station in dense fog has its limits sent at once, without waiting for
/// the detectors' tick to close (the grace here is two minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fog_reading_is_acted_on_at_once() {
    let s = TestServer::start("sqlite", |c| c.ingest.tick_grace_s = 120.0)
        .await
        .unwrap();
    let op = s.login("op").await;
    let obs = std::fs::read_to_string(s.dir.join("OBS.csv")).unwrap();
    let (st, a) = s
        .post_csv(
            &op,
            "observations",
            rows_before(&obs, "2026-11-23T05:05:01"),
        )
        .await;
    assert_eq!(st, 200, "{a}");
    s.wait_for(&op, "/api/health", 10, |h| {
        h["last_tick_ms"].as_i64().is_some_and(|t| t > 0)
    })
    .await;
    assert!(
        !s.get(&op, "/api/actions")
            .await
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["command"]["action"] == "speed_limit"),
        "no fog yet"
    );
    let station = &s.road.weather()[0].id;
    let wx = format!(
        "time,station,visibility_m,surface_temp_c,air_temp_c,humidity_pct,surface_state\n\
         2026-11-23T05:05:10+08:00,{station},40,5,5,99,wet\n"
    );
    let (st, a) = s.post_csv(&op, "weather", wx).await;
    assert_eq!(st, 200, "{a}");
    let actions = s
        .wait_for(&op, "/api/actions", 5, |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|a| a["command"]["action"] == "speed_limit")
        })
        .await;
    for a in actions.as_array().unwrap() {
        if a["command"]["action"] == "speed_limit" {
            assert!(
                a["command"]["value"].as_u64().is_some_and(|v| v <= 60),
                "{a}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_with_the_reason() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let op = s.login("op").await;
    let header = "time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct\n";
    let body = format!(
        "{header}2026-11-23T05:00:20+08:00,D00001U,1,20,5,90,4\n2026-11-23T05:00:20+08:00,NOPE,1,20,5,90,4\n2026-11-23T05:00:20+08:00,D00001U,2,20,5,900,4\nnot a row\n"
    );
    let (st, a) = s.post_csv(&op, "observations", body).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["accepted"], 2, "{a}");
    assert_eq!(a["flagged"], 1, "{a}");
    assert_eq!(a["rejected"], 2, "{a}");
    let kinds: Vec<&str> = a["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"unknown_device"), "{a}");
    assert!(kinds.contains(&"out_of_range"), "{a}");
    let text = a.to_string();
    assert!(text.contains("line 3 (detector)"), "{a}");
    assert!(text.contains("line 4 (speed_kmh)"), "{a}");
    // Nothing usable: 422; a wrong header: 400 naming the column; a wrong type: 415.
    let (st, _) = s
        .post_csv(&op, "observations", format!("{header}garbage,,,\n"))
        .await;
    assert_eq!(st, 422);
    let (st, a) = s
        .post_csv(&op, "observations", "time,detector\n1,2\n".into())
        .await;
    assert_eq!(st, 400);
    assert!(a["error"].as_str().unwrap().contains("lane"), "{a}");
    let r = s
        .http
        .post(format!("{}/api/ingest/observations", s.url))
        .bearer_auth(&op)
        .header("content-type", "image/png")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // JSON rows go through the same checks, answered by row.
    let r = s
        .http
        .post(format!("{}/api/ingest/observations", s.url))
        .bearer_auth(&op)
        .json(&json!([
            {"time": "2026-11-23T05:00:40+08:00", "detector": "D00001U", "lane": 1, "interval_s": 20, "volume": 4, "speed_kmh": 88.5, "occupancy_pct": 3.0},
            {"time": "2026-11-23T05:00:40+08:00", "detector": "D00001U", "lane": 9, "interval_s": 20, "volume": 4, "speed_kmh": 88.5, "occupancy_pct": 3.0}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["accepted"], 1, "{a}");
    assert!(a.to_string().contains("row 2 (lane)"), "{a}");
    let r = s
        .http
        .post(format!("{}/api/ingest/observations", s.url))
        .bearer_auth(&op)
        .json(&json!([{"time": "x", "detektor": "D1"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let a: Value = r.json().await.unwrap();
    assert!(a["error"].as_str().unwrap().contains("detektor"), "{a}");
    // Everything accepted is stored.
    let store = zhilu_store::Store::open(&s.cfg.storage.url).await.unwrap();
    assert_eq!(store.count_readings().await.unwrap().obs, 3);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_carries_state_and_events() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    let mut r = s
        .http
        .get(format!("{}/api/stream", s.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let sender = {
        let s2 = (s.url.clone(), s.dir.clone(), op.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for (kind, body) in day_batches(&s2.1, 1000) {
                http.post(format!("{}/api/ingest/{kind}", s2.0))
                    .bearer_auth(&s2.2)
                    .header("content-type", "text/csv")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    let mut text = String::new();
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while !(text.contains("event: state")
        && text.contains("event: event")
        && text.contains("event: device"))
    {
        assert!(
            std::time::Instant::now() < until,
            "stream so far: {}",
            &text[..text.len().min(2000)]
        );
        match tokio::time::timeout(Duration::from_secs(5), r.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
    }
    sender.await.unwrap();
    assert!(text.contains("event: state"));
    assert!(text.contains("event: event"));
    assert!(text.contains("\"change\":\"opened\""));
    assert!(text.contains("event: device"));
}

/// What the console reads besides events and devices: the road book with
/// positions, the vehicle board, the time–space matrix and the forecasts,
/// after a day sent through the ingest.
#[tokio::test]
async fn console_views_follow_the_day() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    // Before any data: no forecast yet, an empty vehicle board.
    let r = s
        .http
        .get(format!("{}/api/forecast", s.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    s.send_day(&op, 2000).await;
    s.settle(&viewer).await;

    let road = s.get(&viewer, "/api/road").await;
    let detectors = road["detectors"].as_array().unwrap();
    assert!(!detectors.is_empty());
    assert!(road["geometry"].as_array().unwrap().len() >= 2);
    for d in detectors {
        let ll = d["lonlat"].as_array().unwrap();
        assert!(ll[0].as_f64().unwrap().abs() <= 180.0 && ll[1].as_f64().unwrap().abs() <= 90.0);
    }

    // Vehicles: the day's probes, each map-matched to a carriageway, with tracks.
    let v = s.get(&viewer, "/api/vehicles?tracks=true").await;
    let rows = v["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{v}");
    assert_eq!(v["columns"][6], "direction");
    assert!(rows.iter().any(|r| r[6] == "up" || r[6] == "down"), "{v}");
    let id = rows[0][0].as_str().unwrap();
    assert!(!v["tracks"][id].as_array().unwrap().is_empty());
    let hazmat = s.get(&viewer, "/api/vehicles?class=hazmat").await;
    assert!(
        hazmat["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r[1] == "hazmat")
    );

    // The time–space matrix of the last 3 hours: every station of each
    // direction, speeds where the detectors had them.
    let ts = s.get(&viewer, "/api/timespace?step_s=300").await;
    let dirs = ts["directions"].as_array().unwrap();
    let stations: usize = dirs
        .iter()
        .map(|d| d["stations"].as_array().unwrap().len())
        .sum();
    assert_eq!(stations, detectors.len());
    let speeds = dirs
        .iter()
        .flat_map(|d| d["speed_kmh"].as_array().unwrap())
        .flat_map(|row| row.as_array().unwrap())
        .filter(|x| x.is_number())
        .count();
    assert!(speeds > 0, "{ts}");
    // 3 hours of 5-minute buckets; the window's ends need not be aligned.
    let n = ts["times"].as_array().unwrap().len();
    assert!((36..=37).contains(&n), "{n} buckets");
    for q in [
        "step_s=5",
        "from_ms=-9223372036854775808&to_ms=1000",
        "from_ms=1000&to_ms=500",
        "from_ms=0&to_ms=9223372036854775807",
    ] {
        let bad = s
            .http
            .get(format!("{}/api/timespace?{q}", s.url))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status().as_u16(), 422, "{q}");
    }

    // Forecasts once the data clock has passed a 5-minute interval.
    let until = std::time::Instant::now() + Duration::from_secs(60);
    let f = loop {
        let r = s
            .http
            .get(format!("{}/api/forecast", s.url))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        if r.status().is_success() {
            break r.json::<Value>().await.unwrap();
        }
        assert!(std::time::Instant::now() < until, "no forecast");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(f["stations"].as_array().unwrap().len(), detectors.len());
    assert_eq!(f["horizons"][11], 60);
    let st = &f["stations"].as_array().unwrap()[0];
    assert_eq!(st["speed_kmh"].as_array().unwrap().len(), 12);
}
