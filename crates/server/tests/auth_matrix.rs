//! Every endpoint × every role, anonymous included: who gets in, who is
//! turned away (401 without a session, 403 with too small a role). The
//! matrix is checked against the OpenAPI document so that a new endpoint
//! cannot be added without a row here.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Need {
    Anyone,
    Viewer,
    Operator,
    Admin,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_times_every_role() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let obs = "time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct\n2026-11-23T05:00:20+08:00,D00001U,1,20,5,90,4\n";
    let matrix: Vec<(Method, &str, Option<Value>, Option<&str>, Need)> = vec![
        (Method::GET, "/api/health", None, None, Need::Anyone),
        (
            Method::POST,
            "/api/login",
            Some(json!({"username": "viewer", "password": common::PASSWORD})),
            None,
            Need::Anyone,
        ),
        (Method::GET, "/api/openapi.json", None, None, Need::Anyone),
        (Method::GET, "/metrics", None, None, Need::Anyone),
        (Method::POST, "/api/logout", None, None, Need::Viewer),
        (Method::GET, "/api/events", None, None, Need::Viewer),
        (Method::GET, "/api/events/E1", None, None, Need::Viewer),
        (Method::GET, "/api/devices", None, None, Need::Viewer),
        (Method::GET, "/api/proposals", None, None, Need::Viewer),
        (Method::GET, "/api/plans", None, None, Need::Viewer),
        (Method::GET, "/api/plans/PL999", None, None, Need::Viewer),
        (Method::GET, "/api/actions", None, None, Need::Viewer),
        (Method::GET, "/api/state", None, None, Need::Viewer),
        (Method::GET, "/api/road", None, None, Need::Viewer),
        (Method::GET, "/api/vehicles", None, None, Need::Viewer),
        (Method::GET, "/api/timespace", None, None, Need::Viewer),
        (Method::GET, "/api/forecast", None, None, Need::Viewer),
        (Method::GET, "/api/kpi", None, None, Need::Viewer),
        (Method::GET, "/api/kpi/history", None, None, Need::Viewer),
        (Method::GET, "/api/stream", None, None, Need::Viewer),
        (Method::POST, "/api/stream/ticket", None, None, Need::Viewer),
        (
            Method::POST,
            "/api/whatif",
            Some(json!({"horizon_min": 10})),
            None,
            Need::Viewer,
        ),
        (
            Method::POST,
            "/api/ingest/observations",
            None,
            Some(obs),
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/ingest/weather",
            None,
            Some(
                "time,station,visibility_m,surface_temp_c,air_temp_c,humidity_pct,surface_state\n",
            ),
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/ingest/positions",
            None,
            Some("time,vehicle,class,lat,lon,speed_kmh,heading_deg\n"),
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/ingest/camera-events",
            None,
            Some("time,camera,kind,direction,stake_m,lane,confidence\n"),
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/proposals/P999/approve",
            Some(json!({})),
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/proposals/P999/reject",
            Some(json!({"reason": "test"})),
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/proposals/P999/edit",
            Some(json!({"reason": "test", "edit": {"value": 40}})),
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/events/E1/ack",
            None,
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/events/E1/assign",
            Some(json!({"user": "op"})),
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/events/E1/note",
            Some(json!({"text": "test"})),
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/events/E1/close",
            Some(json!({"reason": "test"})),
            None,
            Need::Operator,
        ),
        (Method::GET, "/api/handover", None, None, Need::Viewer),
        (Method::GET, "/api/handovers", None, None, Need::Viewer),
        (
            Method::POST,
            "/api/handover/sign",
            Some(json!({"note": "test"})),
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/handover/H999/ack",
            Some(json!({})),
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/plans/PL999/approve",
            Some(json!({})),
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/plans/PL999/reject",
            Some(json!({"reason": "test"})),
            None,
            Need::Operator,
        ),
        (
            Method::POST,
            "/api/plans/PL999/edit",
            Some(json!({"reason": "test", "step": "P999", "edit": {"value": 40}})),
            None,
            Need::Operator,
        ),
        (Method::GET, "/api/audit", None, None, Need::Admin),
        (Method::GET, "/api/quarantine", None, None, Need::Operator),
        (
            Method::PATCH,
            "/api/users/nobody",
            Some(json!({"disabled": false})),
            None,
            Need::Admin,
        ),
        (Method::GET, "/api/users", None, None, Need::Admin),
        (
            Method::POST,
            "/api/users",
            Some(json!({"name": "x", "role": "viewer", "password": "short"})),
            None,
            Need::Admin,
        ),
    ];

    // The matrix covers the OpenAPI document exactly.
    let doc: Value = s
        .http
        .get(format!("{}/api/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            documented.insert((
                m.to_uppercase(),
                path.replace("{id}", "*").replace("{name}", "*"),
            ));
        }
    }
    documented.insert(("GET".into(), "/api/openapi.json".into()));
    let covered: BTreeSet<(String, String)> = matrix
        .iter()
        .map(|(m, p, ..)| {
            let p = p
                .replace("/E1", "/*")
                .replace("/P999/", "/*/")
                .replace("/H999/", "/*/")
                .replace("/PL999/", "/*/")
                .replace("/plans/PL999", "/plans/*")
                .replace("/users/nobody", "/users/*");
            (m.to_string(), p)
        })
        .collect();
    assert_eq!(covered, documented, "matrix and OpenAPI document differ");

    let roles: Vec<(Need, Option<String>)> = vec![
        (Need::Anyone, None),
        (Need::Viewer, Some(s.login("viewer").await)),
        (Need::Operator, Some(s.login("op").await)),
        (Need::Admin, Some(s.login("admin").await)),
    ];
    let mut checked = 0;
    for (method, path, json_body, csv_body, need) in &matrix {
        for (role, token) in &roles {
            // Logging out ends the session the other rows still use.
            if *path == "/api/logout" && token.is_some() {
                continue;
            }
            let mut req = s.http.request(method.clone(), format!("{}{}", s.url, path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = json_body {
                req = req.json(b);
            }
            if let Some(b) = csv_body {
                req = req.header("content-type", "text/csv").body(b.to_string());
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            drop(r);
            let allowed = role >= need;
            if allowed {
                assert!(
                    status != 401 && status != 403 && status < 500,
                    "{method} {path} as {role:?}: {status}"
                );
            } else if token.is_none() {
                assert_eq!(status, 401, "{method} {path} anonymous");
            } else {
                assert_eq!(status, 403, "{method} {path} as {role:?}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 80, "{checked}");

    // Logout ends the session: the token no longer works.
    let t = s.login("viewer").await;
    let r = s
        .http
        .post(format!("{}/api/logout", s.url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = s
        .http
        .get(format!("{}/api/events", s.url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A garbage or forged token is 401, not 500.
    for bad in ["x", &"0".repeat(64), "Bearer", "ÿÿÿ"] {
        let r = s
            .http
            .get(format!("{}/api/events", s.url))
            .header("authorization", format!("Bearer {bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_rate_limited_and_audited() {
    let s = TestServer::start("sqlite", |c| c.auth.login_failures_per_min = 3)
        .await
        .unwrap();
    let url = format!("{}/api/login", s.url);
    for _ in 0..3 {
        let r = s
            .http
            .post(&url)
            .json(&json!({"username": "op", "password": "wrong password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        // One answer, with a code a console says in its own language.
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["code"], "bad_login", "{e}");
    }
    // Even the right password waits now.
    let r = s
        .http
        .post(&url)
        .json(&json!({"username": "op", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    // Other users from the same address are limited too (per-address key).
    let r = s
        .http
        .post(&url)
        .json(&json!({"username": "viewer", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // The failures are in the audit log.
    let c = zhilu_store::Store::open(&s.cfg.storage.url).await.unwrap();
    let audit = c.audit(0, 100).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "login.failed" && a.actor == "op")
            .count(),
        3
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_managed_by_admins() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let admin = s.login("admin").await;
    let url = format!("{}/api/users", s.url);
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(
            &json!({"name": "zhang.san", "role": "operator", "password": "a long enough password"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"name": "zhang.san", "role": "viewer", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"name": "li", "role": "viewer", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"name": "li", "role": "root", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let users = s.get(&admin, "/api/users").await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"zhang.san"));
    let audit = s.get(&admin, "/api/audit").await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "user.add"
                && a["target"] == "zhang.san"
                && a["actor"] == "admin")
    );
    // The console's search: newest first, by any text of the entry.
    let hits = s.get(&admin, "/api/audit?q=ZHANG&limit=5").await;
    let hits = hits.as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(
        hits.iter()
            .all(|a| a.to_string().to_lowercase().contains("zhang"))
    );
    assert!(
        hits.windows(2)
            .all(|w| w[0]["seq"].as_i64() > w[1]["seq"].as_i64())
    );
    let none = s.get(&admin, "/api/audit?q=no-such-text-anywhere").await;
    assert_eq!(none.as_array().map(Vec::len), Some(0));
}
