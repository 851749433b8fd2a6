//! Accounts changed by another process (`zhilu user disable / passwd`,
//! which call `zhilu_server::accounts` on the same database) reach a
//! running server: logins fail, sessions end and open streams close.

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, TestServer};
use serde_json::json;

/// Reads the stream until the server ends it; panics after `within`.
async fn stream_ends(mut r: reqwest::Response, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the stream is still open");
        match tokio::time::timeout(left, r.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None) | Err(_)) => return,
            Err(_) => panic!("the stream is still open after {within:?}"),
        }
    }
}

async fn login_status(s: &TestServer, user: &str, password: &str) -> u16 {
    s.http
        .post(format!("{}/api/login", s.url))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn open_stream(s: &TestServer, token: &str) -> reqwest::Response {
    let r = s
        .http
        .get(format!("{}/api/stream", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r
}

async fn status(s: &TestServer, token: &str, path: &str) -> u16 {
    s.http
        .get(format!("{}{path}", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_from_the_command_line_ends_streams_and_logins() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    let r = open_stream(&s, &op).await;
    let other = open_stream(&s, &viewer).await;

    let ended = zhilu_server::accounts::set_disabled(&s.cfg, "op", true)
        .await
        .unwrap();
    assert_eq!(ended, 1, "op's one session");
    stream_ends(r, Duration::from_secs(5)).await;
    assert_eq!(status(&s, &op, "/api/road").await, 401);
    assert_eq!(login_status(&s, "op", PASSWORD).await, 401);
    // Another user's stream goes on.
    assert_eq!(status(&s, &viewer, "/api/road").await, 200);
    drop(other);

    // The last enabled admin stays.
    let err = zhilu_server::accounts::set_disabled(&s.cfg, "admin", true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("last enabled admin"), "{err}");
    assert_eq!(login_status(&s, "admin", PASSWORD).await, 200);

    // Enabled again: a new login works, the old token stays dead.
    zhilu_server::accounts::set_disabled(&s.cfg, "op", false)
        .await
        .unwrap();
    assert_eq!(login_status(&s, "op", PASSWORD).await, 200);
    assert_eq!(status(&s, &op, "/api/road").await, 401);

    let audit = s.get(&s.login("admin").await, "/api/audit").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["actor"] == "cli" && a["target"] == "op")
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user.add", "user.disable", "user.enable"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_password_from_the_command_line_ends_sessions() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let op = s.login("op").await;
    let r = open_stream(&s, &op).await;

    let err = zhilu_server::accounts::set_password(&s.cfg, "op", "short")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least 10 characters"), "{err}");
    let err = zhilu_server::accounts::set_password(&s.cfg, "op", "password password")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("too easy"), "{err}");
    let err = zhilu_server::accounts::set_password(&s.cfg, "ghost", "fog at K23 again")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no user \"ghost\""), "{err}");
    assert_eq!(status(&s, &op, "/api/road").await, 200, "nothing changed");

    let ended = zhilu_server::accounts::set_password(&s.cfg, "op", "fog at K23 again")
        .await
        .unwrap();
    assert_eq!(ended, 1);
    stream_ends(r, Duration::from_secs(5)).await;
    assert_eq!(status(&s, &op, "/api/road").await, 401);
    assert_eq!(login_status(&s, "op", PASSWORD).await, 401);
    assert_eq!(login_status(&s, "op", "fog at K23 again").await, 200);
}
