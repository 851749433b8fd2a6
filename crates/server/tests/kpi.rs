//! `GET /api/kpi` and `GET /api/kpi/history` on a real server fed a small
//! simulated day: before any data, then after it.

mod common;

use common::TestServer;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_figures_follow_the_day() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    let limit = f64::from(s.road.speed_limit_kmh());

    // Before any tick: the links, no travel times, nothing counted yet.
    let k = s.get(&viewer, "/api/kpi").await;
    assert!(k["at_ms"].is_null(), "{k}");
    let links = k["links"].as_array().unwrap();
    assert!(!links.is_empty(), "{k}");
    assert!(links.iter().all(|l| l["travel_s"].is_null()), "{k}");

    s.send_day(&op, 2000).await;
    s.settle(&viewer).await;

    let k = s.get(&viewer, "/api/kpi").await;
    let state = s.get(&viewer, "/api/state").await;
    assert_eq!(
        k["at_ms"], state["ts_ms"],
        "the figures are the last tick's"
    );
    let links = k["links"].as_array().unwrap();
    // Consecutive interchanges in travel order, each direction.
    for d in ["up", "down"] {
        let l: Vec<&Value> = links.iter().filter(|l| l["direction"] == d).collect();
        assert!(!l.is_empty(), "{d}: {k}");
        for w in l.windows(2) {
            assert_eq!(w[0]["to"], w[1]["from"], "{d}: consecutive");
            let (a, b) = (
                w[0]["from_m"].as_f64().unwrap(),
                w[1]["from_m"].as_f64().unwrap(),
            );
            assert!(if d == "up" { a < b } else { a > b }, "{d}: travel order");
        }
    }
    for l in links {
        let len = l["length_m"].as_f64().unwrap();
        let free = l["free_flow_s"].as_f64().unwrap();
        assert!((free - (len / (limit / 3.6)).round()).abs() <= 1.0, "{l}");
        if let Some(t) = l["travel_s"].as_f64() {
            assert!(t > 0.0);
            let delay = l["delay_s"].as_f64().unwrap();
            assert!((delay - (t - free).max(0.0)).abs() <= 1.0, "{l}");
        }
    }
    assert!(
        links.iter().filter(|l| l["travel_s"].is_number()).count() * 2 >= links.len(),
        "most links have a travel time: {k}"
    );
    assert_eq!(k["congestion"].as_array().unwrap().len(), 2);

    // The counts are the open events' and the pending proposals'.
    let open = s.get(&viewer, "/api/events?active=true").await;
    assert_eq!(
        k["events"]["total"].as_u64().unwrap() as usize,
        open.as_array().unwrap().len()
    );
    let ev = &k["events"];
    let sum: u64 = ["critical", "major", "minor", "info"]
        .iter()
        .map(|c| ev[*c].as_u64().unwrap())
        .sum();
    assert_eq!(sum, ev["total"].as_u64().unwrap());
    let pending = s.get(&viewer, "/api/proposals?status=pending").await;
    assert_eq!(
        k["pending"]["proposals"].as_u64().unwrap() as usize,
        pending.as_array().unwrap().len()
    );
    let dev = &k["devices"];
    assert!(dev["total"].as_u64().unwrap() >= s.road.detectors().len() as u64);

    // History: the day's readings in 5-minute buckets, the same links.
    let h = s.get(&viewer, "/api/kpi/history?step_s=300").await;
    assert_eq!(h["links"].as_array().unwrap().len(), links.len());
    let buckets = h["buckets"].as_array().unwrap();
    assert!(!buckets.is_empty(), "{h}");
    assert!(
        buckets.iter().any(|b| b["travel_s"]
            .as_array()
            .unwrap()
            .iter()
            .any(Value::is_number)),
        "{h}"
    );
    for q in [
        "step_s=5",
        "from_ms=1000&to_ms=500",
        "from_ms=0&to_ms=9223372036854775807",
    ] {
        let bad = s
            .http
            .get(format!("{}/api/kpi/history?{q}", s.url))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status().as_u16(), 422, "{q}");
    }
}
