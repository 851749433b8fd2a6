//! `POST /api/whatif` on a live centre fed a simulated morning: the plans
//! the centre builds, plans sent by the caller, and the refusals.

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn whatif(s: &TestServer, token: &str, body: Value) -> (u16, Value) {
    let r = s
        .http
        .post(format!("{}/api/whatif", s.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatif_compares_plans_from_the_live_state() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    let (status, body) = whatif(&s, &viewer, json!({"horizon_min": 30})).await;
    assert_eq!(status, 404, "before any tick: {body}");

    s.send_day(&op, 4000).await;
    s.settle(&op).await;

    let signs: serde_json::Map<String, Value> = s
        .road
        .vsl()
        .iter()
        .map(|v| (v.id.clone(), json!({"limit_kmh": 40})))
        .collect();
    let entry = s.road.interchanges()[0].id.clone();
    let (status, body) = whatif(
        &s,
        &viewer,
        json!({"horizon_min": 30, "plans": [
            {"name": "all signs 40", "devices": signs},
            {"name": "close an entry", "devices": {entry.clone(): {"state": "closed"}}},
            {"name": "close one side", "devices": {format!("{entry}:up"): {"state": "closed"}}},
            {"name": "one lane shut", "devices": {}, "lane_closures": [
                {"direction": "up", "from_m": 9000, "to_m": 9000, "lanes": 2}
            ]},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let plans = body["plans"].as_array().unwrap();
    let names: Vec<&str> = plans.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let pending = s.get(&viewer, "/api/proposals?status=pending").await;
    let mut expect = vec!["do nothing", "current"];
    if !pending.as_array().unwrap().is_empty() {
        expect.push("pending");
    }
    expect.extend([
        "all signs 40",
        "close an entry",
        "close one side",
        "one lane shut",
    ]);
    assert_eq!(names, expect);
    assert_eq!(body["horizon_min"], 30);
    assert!(body["computed_ms"].as_u64().is_some());
    let by = |n: &str| plans.iter().find(|p| p["name"] == n).unwrap();
    let none = by("do nothing");
    for p in plans {
        let ttt = p["total_travel_time_veh_h"].as_f64().unwrap();
        let b = &p["band"]["total_travel_time_veh_h"];
        assert!(ttt > 0.0, "{p}");
        assert!(
            b["p10"].as_f64() <= b["p50"].as_f64() && b["p50"].as_f64() <= b["p90"].as_f64(),
            "{b}"
        );
        assert!(p["delay_veh_h"].as_f64().unwrap() <= ttt);
        // Rows every 5 minutes from now to the horizon, one grid per carriageway.
        for g in p["timespace"].as_array().unwrap() {
            assert_eq!(g["speed_kmh"].as_array().unwrap().len(), 7, "{g}");
        }
        assert_eq!(
            p["timespace"].as_array().unwrap().len(),
            s.road.directions().len()
        );
    }
    // 40 km/h everywhere slows everyone; the closed entry turns drivers away;
    // two of three lanes shut build a queue "do nothing" does not have.
    let slow = by("all signs 40");
    assert!(slow["total_travel_time_veh_h"].as_f64() > none["total_travel_time_veh_h"].as_f64());
    let shut = by("close an entry");
    assert!(shut["turned_away_veh"].as_f64().unwrap() > 0.0, "{shut}");
    assert!(
        shut["entries_closed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with(&entry))
    );
    assert_eq!(
        by("close one side")["entries_closed"],
        json!([format!("{entry}:up")])
    );
    let lane = by("one lane shut");
    assert!(
        lane["max_queue_m"].as_f64() > none["max_queue_m"].as_f64(),
        "{lane}"
    );

    // Refusals, each with a clear reason.
    for (body, needle) in [
        (json!({"horizon_min": 61}), "horizon_min"),
        (json!({"horizon_min": 0}), "horizon_min"),
        (
            json!({"horizon_min": 30, "plans": [{"name": "x", "devices": {"NOPE": {"limit_kmh": 60}}}]}),
            "NOPE",
        ),
        (
            json!({"horizon_min": 30, "plans": [{"name": "x", "devices": {entry.clone(): {"limit_kmh": 60}}}]}),
            "cannot show",
        ),
        (
            json!({"horizon_min": 30, "plans": [{"name": "x", "devices": {entry.clone(): {"what": 1}}}]}),
            "x",
        ),
        (
            json!({"horizon_min": 30, "plans": (0..9).map(|i| json!({"name": format!("p{i}")})).collect::<Vec<_>>()}),
            "at most 8",
        ),
    ] {
        let (status, answer) = whatif(&s, &viewer, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{body}: {answer}"
        );
    }
}
