//! Issue 19, attacked as an attacker and bad luck would: a wrong clock
//! must not stop the centre, a full disk must heal, health must tell the
//! truth, sessions must end when they end, and no door stays open.

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, TestServer, day_batches};
use futures_util::StreamExt;
use serde_json::{Value, json};
use zhilu_server::engine::wall_ms;

const YEAR_MS: i64 = 365 * 86_400_000;
const TZ: i32 = 8 * 3600;

/// The line with its time (first field) changed by `f`.
fn retime(line: &str, f: impl Fn(i64) -> i64) -> String {
    let (t, rest) = line.split_once(',').unwrap();
    let ms = zhilu_io::parse_time(t.as_bytes()).unwrap();
    format!("{},{rest}", zhilu_io::jsonl::format_time(f(ms), TZ))
}

/// Distinct detector times in a set of requests (the ticks they make).
fn obs_ticks(batches: &[(&'static str, String)]) -> u64 {
    let mut t = std::collections::BTreeSet::new();
    for (k, body) in batches {
        if *k == "observations" {
            for l in body.lines().skip(1) {
                t.insert(l.split(',').next().unwrap().to_string());
            }
        }
    }
    t.len() as u64
}

async fn post_all(s: &TestServer, token: &str, batches: &[(&'static str, String)]) {
    for (kind, body) in batches {
        let (st, a) = s.post_csv(token, kind, body.clone()).await;
        assert_eq!(st, 200, "{kind}: {a}");
    }
}

async fn ticks(s: &TestServer, token: &str) -> u64 {
    s.get(token, "/api/health").await["ticks"].as_u64().unwrap()
}

/// One detector row dated a year ahead, posted by an operator: refused
/// (422, named, quarantined, counted), and the ticks keep closing; the
/// detector gets a `source_clock` event and health says why it is degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_dated_row_is_refused_and_ticks_keep_closing() {
    let s = TestServer::start("sqlite", |c| c.storage.min_free_mb = 0)
        .await
        .unwrap();
    let op = s.login("op").await;
    let batches = day_batches(&s.dir, 2000);
    let (first, rest) = batches.split_at(batches.len() / 3);
    post_all(&s, &op, first).await;
    s.settle(&op).await;
    let before = ticks(&s, &op).await;

    let obs = std::fs::read_to_string(s.dir.join("OBS.csv")).unwrap();
    let mut lines = obs.lines();
    let head = lines.next().unwrap();
    let row = lines.next().unwrap();
    let detector = row.split(',').nth(1).unwrap().to_string();
    let now = wall_ms();
    let poisoned = retime(row, |_| now + YEAR_MS);
    let unset = retime(row, |_| 0); // 1970: a clock never set
    for (line, kind) in [(&poisoned, "time_ahead"), (&unset, "time_unset")] {
        let (st, a) = s
            .post_csv(&op, "observations", format!("{head}\n{line}\n"))
            .await;
        assert_eq!(st, 422, "{a}");
        assert_eq!(a["accepted"], 0, "{a}");
        assert_eq!(a["refused"], 1, "{a}");
        assert_eq!(a["problems"][0]["kind"], kind, "{a}");
        assert!(a.to_string().contains(&detector), "{a}");
    }

    post_all(&s, &op, rest).await;
    s.settle(&op).await;
    let after = ticks(&s, &op).await;
    let expected = obs_ticks(rest);
    assert!(
        after - before + 2 >= expected,
        "ticks stopped: {before} → {after}, expected about {expected} more"
    );

    // The operator can see what was refused, and why.
    let q = s.get(&op, "/api/quarantine").await;
    let q = q.as_array().unwrap();
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(q.iter().all(|r| r["source"] == detector.as_str()));
    assert!(q.iter().any(|r| {
        r["reason"]
            .as_str()
            .unwrap()
            .contains("after the server's clock")
    }));
    // Health names the source; a source_clock event is open for it.
    let h = s.get(&op, "/api/health").await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(h["sources_off"].to_string().contains(&detector), "{h}");
    let ev = s
        .wait_for(&op, "/api/events?kind=source_clock", 5, |v| {
            !v.as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(ev[0]["source"], detector.as_str(), "{ev}");
    let m = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("zhilu_ingest_clock_refused_total"), "{m}");
}

/// Weather stamped five minutes ahead of the detectors (a source whose
/// clock runs fast, inside any wall-clock tolerance: a simulated clock
/// here) does not make the brain skip the detectors' ticks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weather_ahead_of_the_detectors_does_not_skip_ticks() {
    let s = TestServer::start("sqlite", |c| {
        c.time.clock = zhilu_server::config::ClockMode::Simulated;
        c.storage.min_free_mb = 0;
    })
    .await
    .unwrap();
    let op = s.login("op").await;
    let mut batches = day_batches(&s.dir, 500);
    batches.truncate(batches.len() / 2);
    for (kind, body) in &mut batches {
        if *kind == "weather" {
            let mut lines = body.lines();
            let mut out = format!("{}\n", lines.next().unwrap());
            for l in lines {
                out.push_str(&retime(l, |t| t + 300_000));
                out.push('\n');
            }
            *body = out;
        }
    }
    post_all(&s, &op, &batches).await;
    s.settle(&op).await;
    let got = ticks(&s, &op).await;
    let expected = obs_ticks(&batches);
    assert!(
        got + 2 >= expected,
        "{got} ticks for {expected} detector intervals"
    );
    let h = s.get(&op, "/api/health").await;
    assert!(h["held_rows"].as_u64().unwrap() > 0, "{h}");
}

/// A freshly registered JT/T 808 terminal sends a fix dated 2099: it is
/// acknowledged to the terminal, never stored as a position, quarantined,
/// and the detectors' ticks keep closing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_fix_dated_2099_moves_nothing() {
    use zhilu_jt808::sim::{Terminal, location_at};
    use zhilu_jt808::{Phone, ReplyResult, Version};
    let s = TestServer::start("sqlite", |c| c.jt808.listen = "127.0.0.1:0".into())
        .await
        .unwrap();
    let op = s.login("op").await;
    let batches = day_batches(&s.dir, 2000);
    let (first, rest) = batches.split_at(batches.len() / 3);
    post_all(&s, &op, first).await;
    s.settle(&op).await;
    let before = ticks(&s, &op).await;

    let t = Duration::from_secs(5);
    let mut term = Terminal::connect(
        s.jt808_addr().unwrap(),
        Phone::new("13900000099").unwrap(),
        Version::V2019_1,
    )
    .await
    .unwrap();
    let code = term.register("冀Z99999", "T9999", t).await.unwrap();
    assert_eq!(term.authenticate(&code, t).await.unwrap(), ReplyResult::Ok);
    let (lon, lat) = s
        .road
        .geometry()
        .lonlat(s.road.geometry().start_m() + 500.0);
    let y2099 = 4_084_000_000_000i64; // 2099-06-01
    let r = term
        .report(location_at(lat, lon, 60.0, 90.0, y2099, 1), t)
        .await
        .unwrap();
    assert_eq!(r, ReplyResult::Ok);
    s.wait_for(&op, "/api/quarantine", 5, |v| {
        v.as_array()
            .unwrap()
            .iter()
            .any(|r| r["source"] == "冀Z99999")
    })
    .await;

    post_all(&s, &op, rest).await;
    s.settle(&op).await;
    let after = ticks(&s, &op).await;
    assert!(
        after - before + 2 >= obs_ticks(rest),
        "ticks stopped after the 2099 fix: {before} → {after}"
    );
    let future = s
        .state()
        .store
        .readings_after(0, wall_ms() + YEAR_MS, 100)
        .await
        .unwrap();
    assert!(future.is_empty(), "the 2099 fix was stored: {future:?}");
    // Nor did its alarm bit open an event dated 2099.
    let ev = s.get(&op, "/api/events?kind=terminal_alarm").await;
    assert!(ev.as_array().unwrap().is_empty(), "{ev}");
}

/// Retention counts back from the data clock but never from later than
/// the wall clock: a poisoned `last_tick_ms` deletes nothing recent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_never_trusts_a_data_clock_ahead_of_the_wall_clock() {
    let mut s = TestServer::start("sqlite", |c| {
        c.storage.raw_retention_days = 1.0;
        c.storage.min_free_mb = 0;
    })
    .await
    .unwrap();
    let op = s.login("op").await;
    // One interval of detector rows, an hour ago.
    let obs = std::fs::read_to_string(s.dir.join("OBS.csv")).unwrap();
    let mut lines = obs.lines();
    let head = lines.next().unwrap().to_string();
    let t0 = lines
        .clone()
        .next()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let hour_ago = (wall_ms() - 3_600_000) / 30_000 * 30_000;
    let body: String = lines
        .take_while(|l| l.starts_with(&t0))
        .map(|l| retime(l, |_| hour_ago) + "\n")
        .collect();
    let n = body.lines().count() as i64;
    let (st, a) = s
        .post_csv(&op, "observations", format!("{head}\n{body}"))
        .await;
    assert_eq!(st, 200, "{a}");
    s.settle(&op).await;
    // The data clock poisoned (as one bad row did before it was refused).
    s.state()
        .store
        .set_meta("last_tick_ms", &(wall_ms() + YEAR_MS).to_string())
        .await
        .unwrap();
    // A restart runs a retention pass at once.
    s.restart().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.state().store.count_readings().await.unwrap().obs, n);
    assert_eq!(
        zhilu_server::retention_cutoff(wall_ms() + YEAR_MS, 1_000_000_000_000, 1.0),
        1_000_000_000_000 - 86_400_000
    );
}

/// A full disk: a tick whose commit fails is neither published nor sent,
/// ingest answers 503, health says why; once space is back ingest works
/// again without a restart, the held-back tick goes out, health is ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_heals_and_health_tells_the_truth() {
    let s = TestServer::start("sqlite", |c| {
        c.storage.snapshot_every_ticks = 1;
        c.storage.min_free_mb = 0;
        c.ingest.tick_grace_s = 2.0;
    })
    .await
    .unwrap();
    let op = s.login("op").await;
    let batches = day_batches(&s.dir, 1000);
    let (first, rest) = batches.split_at(batches.len() / 3);
    post_all(&s, &op, first).await;
    s.settle(&op).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let store = s.state().store.clone();
    let mut published = s.state().hub.subscribe();

    // Half of the next interval's detector rows: a tick opens, and waits
    // for its grace time.
    let next = rest.iter().find(|(k, _)| *k == "observations").unwrap();
    let mut lines = next.1.lines();
    let head = lines.next().unwrap();
    let t = lines
        .clone()
        .next()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let part: Vec<&str> = lines.filter(|l| l.starts_with(&t)).collect();
    let part = part[..part.len() / 2].join("\n");
    let (st, a) = s
        .post_csv(&op, "observations", format!("{head}\n{part}\n"))
        .await;
    assert_eq!(st, 200, "{a}");

    // The disk fills, to the last page of the snapshot table too (every
    // tick writes a snapshot here), before the tick closes.
    store.set_page_limit(Some(store.page_count().await.unwrap()));
    let last: i64 = store
        .get_meta("last_tick_ms")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let mut filled = false;
    for _ in 0..200 {
        let c = zhilu_store::TickCommit {
            tick_ms: last,
            state_json: Some("x".repeat(900)),
            ..zhilu_store::TickCommit::default()
        };
        if store.commit_tick(&c).await.is_err() {
            filled = true;
            break;
        }
    }
    assert!(filled);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let h = s.get(&op, "/api/health").await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(h["reasons"].to_string().contains("commit_tick"), "{h}");
    // Readings are refused (503) once the free pages are gone.
    let mut resume_at = None;
    for (i, (kind, body)) in rest.iter().enumerate().take(60) {
        let (st, a) = s.post_csv(&op, kind, body.clone()).await;
        assert!(st == 503 || st == 200, "{kind}: {st} {a}");
        if st == 503 {
            let h = s.get(&op, "/api/health").await;
            assert_eq!(h["status"], "degraded", "{h}");
            assert!(h["reasons"].to_string().contains("storage"), "{h}");
            resume_at = Some(i);
            break;
        }
    }
    let resume_at = resume_at.expect("nothing refused on a full disk");
    // Nothing published beyond the last tick written.
    let last_committed: i64 = store
        .get_meta("last_tick_ms")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let mut states = 0;
    while let Ok(m) = published.try_recv() {
        if m.kind == zhilu_server::stream::StreamKind::State {
            states += 1;
            let v: Value = serde_json::from_str(&m.data).unwrap();
            assert!(
                v["ts_ms"].as_i64().unwrap() <= last_committed,
                "published a tick that was not committed: {} > {last_committed}",
                v["ts_ms"]
            );
        }
    }
    assert_eq!(states, 0, "a state went out while no tick could be written");

    // Space is back: the same server takes readings again.
    store.set_page_limit(None);
    post_all(&s, &op, &rest[resume_at..]).await;
    s.settle(&op).await;
    let after: i64 = store
        .get_meta("last_tick_ms")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(after > last_committed);
    let h = s
        .wait_for(&op, "/api/health", 5, |h| h["status"] == "ok")
        .await;
    assert!(h["commit_failures"].as_u64().unwrap() > 0, "{h}");
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

/// Reads the stream until it ends; the time it took.
async fn until_closed(r: reqwest::Response, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut body = r.bytes_stream();
    loop {
        match tokio::time::timeout(limit.saturating_sub(t.elapsed()), body.next()).await {
            Ok(Some(Ok(_))) => {}
            Ok(_) => return Some(t.elapsed()),
            Err(_) => return None,
        }
    }
}

/// Sessions end when they end: a stream closes within a second of logout
/// and of a role change; a token in the query string works on the stream
/// only; the role is checked before the body; the owner of an attacked
/// account is delayed, never locked out; trivial passwords are refused;
/// the demo account does not log in outside demo mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_they_end_and_no_door_stays_open() {
    let s = TestServer::start("sqlite", |c| {
        c.auth.login_failures_per_min = 5;
        c.auth.login_delay_max_s = 1.0;
    })
    .await
    .unwrap();
    // Logout ends the stream.
    let v = s.login("viewer").await;
    let r = open_stream(&s, &v).await;
    let closed = tokio::spawn(until_closed(r, Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lo = s
        .http
        .post(format!("{}/api/logout", s.url))
        .bearer_auth(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(lo.status().as_u16(), 204);
    let took = closed
        .await
        .unwrap()
        .expect("stream still open after logout");
    assert!(took < Duration::from_millis(1300), "{took:?}");

    // A role change ends the stream too.
    let admin = s.login("admin").await;
    let o = s.login("op").await;
    let r = open_stream(&s, &o).await;
    let closed = tokio::spawn(until_closed(r, Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ch = s
        .http
        .patch(format!("{}/api/users/op", s.url))
        .bearer_auth(&admin)
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ch.status().as_u16(), 200);
    assert!(
        closed.await.unwrap().is_some(),
        "stream outlived a role change"
    );

    // The session token never rides in the query string: not on the
    // stream (browsers use the one-use ticket) ...
    let r = s
        .http
        .get(format!("{}/api/stream?token={admin}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "?token= opens no stream");
    // ... and not on a write.
    let r = s
        .http
        .post(format!("{}/api/users?token={admin}", s.url))
        .json(&json!({"name": "mallory", "role": "admin", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // The role before the body: a viewer learns nothing of the schema.
    let v = s.login("viewer").await;
    let r = s
        .http
        .post(format!("{}/api/users", s.url))
        .bearer_auth(&v)
        .json(&json!({"what": "ever"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // Blank and trivial passwords are refused.
    for pw in ["          ", "1234567890", "password123"] {
        let r = s
            .http
            .post(format!("{}/api/users", s.url))
            .bearer_auth(&admin)
            .json(&json!({"name": "li.si", "role": "viewer", "password": pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422, "{pw:?}");
    }

    // An attacker (127.0.0.2) guesses the admin's password.
    let attacker = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let url = format!("{}/api/login", s.url);
    for _ in 0..6 {
        let _ = attacker
            .post(&url)
            .json(&json!({"username": "admin", "password": "guess guess guess"}))
            .send()
            .await
            .unwrap();
    }
    let r = attacker
        .post(&url)
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        429,
        "the attacker's address is stopped"
    );
    // The owner, elsewhere, is only delayed.
    let t = Instant::now();
    let ok = loop {
        let r = s
            .http
            .post(&url)
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => break true,
            429 => {
                let wait: f64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait <= 1.0, "{wait}");
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
            st => panic!("{st}"),
        }
        if t.elapsed() > Duration::from_secs(5) {
            break false;
        }
    };
    assert!(ok, "the owner is locked out");
}

/// A demo database reused by `zhilu serve`: `demo` / `demo` does not log in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_account_is_for_demo_mode_only() {
    let dir = common::temp_dir("demo");
    let mut cfg = zhilu_server::config::ServerConfig::default();
    cfg.server.mode = zhilu_server::config::Mode::Demo;
    cfg.storage.url = format!("sqlite://{}", dir.join("demo.db").display());
    zhilu_server::ensure_demo_account(&cfg).await.unwrap();
    cfg.server.mode = zhilu_server::config::Mode::Production;
    let road = common::write_day(&dir);
    let centre = zhilu_server::Centre::start(road, cfg.clone())
        .await
        .unwrap();
    let store = centre.state.store.clone();
    let u = store.user("demo").await.unwrap().unwrap();
    assert!(u.disabled, "demo account still enabled in production");
    centre.stop();
    // Back in demo mode it works again.
    cfg.server.mode = zhilu_server::config::Mode::Demo;
    zhilu_server::ensure_demo_account(&cfg).await.unwrap();
    assert!(!store.user("demo").await.unwrap().unwrap().disabled);
}

/// A header-only CSV is 422 (nothing usable), as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_only_csv_is_unprocessable() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let op = s.login("op").await;
    let head = zhilu_io::OBS_COLS.join(",");
    let (st, a) = s.post_csv(&op, "observations", format!("{head}\n")).await;
    assert_eq!(st, 422, "{a}");
}

/// Slow clients cannot hold the door: a connection that does not finish
/// its headers is closed after `header_timeout_s`, one address gets at
/// most `max_connections_per_ip`, and health answers meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_limited_per_address() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start("sqlite", |c| {
        c.server.header_timeout_s = 0.5;
        c.server.max_connections_per_ip = 20;
    })
    .await
    .unwrap();
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(c);
    }
    // The 21st from the same address is closed at once.
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf))
        .await
        .expect("not closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // Another address is served.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = other
        .get(format!("{}/api/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The slow ones are cut off after the header timeout.
    for c in &mut slow {
        let got = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf)).await;
        assert!(got.is_ok(), "a slowloris connection is still open");
    }
    // And the address may connect again.
    let r = s
        .http
        .get(format!("{}/api/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// A batch re-sent after its answer was lost (or a replay of the same
/// rows) is stored once and fed to the brain once: the answer names the
/// copies, the store and the engine's row count do not grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_batch_is_stored_once() {
    let s = TestServer::start("sqlite", |c| c.storage.min_free_mb = 0)
        .await
        .unwrap();
    let op = s.login("op").await;
    let batches = day_batches(&s.dir, 300);
    let (kind, body) = batches
        .iter()
        .find(|(k, _)| *k == "observations")
        .unwrap()
        .clone();
    let n = body.lines().count() as u64 - 1;
    let (st, a) = s.post_csv(&op, kind, body.clone()).await;
    assert_eq!((st, a["duplicates"].as_u64()), (200, Some(0)), "{a}");
    s.settle(&op).await;
    let rows = s.get(&op, "/api/health").await["rows"].as_u64().unwrap();
    // Sent again, and half of it once more beside one new row.
    let (st, a) = s.post_csv(&op, kind, body.clone()).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["accepted"].as_u64(), Some(n), "{a}");
    assert_eq!(a["duplicates"].as_u64(), Some(n), "{a}");
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    lines.truncate(1 + n as usize / 2);
    let new_row = retime(&lines[1], |t| t + 7_000);
    lines.push(new_row);
    let (st, a) = s.post_csv(&op, kind, lines.join("\n") + "\n").await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["duplicates"].as_u64(), Some(n / 2), "{a}");
    s.settle(&op).await;
    let c = s.state().store.count_readings().await.unwrap();
    assert_eq!(c.obs as u64, n + 1);
    let rows_after = s.get(&op, "/api/health").await["rows"].as_u64().unwrap();
    assert_eq!(rows_after, rows + 1, "copies fed to the brain again");
}

/// The free-space watermark: below `storage.min_free_mb` ingest is refused
/// (503 with Retry-After, before the disk is full) and health says the
/// disk is low; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_stops_at_the_disk_watermark() {
    // More than any disk here has free.
    let s = TestServer::start("sqlite", |c| c.storage.min_free_mb = 1 << 40)
        .await
        .unwrap();
    let op = s.login("op").await;
    let (kind, body) = day_batches(&s.dir, 100).into_iter().next().unwrap();
    let r = s
        .http
        .post(format!("{}/api/ingest/{kind}", s.url))
        .bearer_auth(&op)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("30")
    );
    let e: Value = r.json().await.unwrap();
    assert!(e.to_string().contains("min_free_mb"), "{e}");
    let h = s.get(&op, "/api/health").await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(h["reasons"].to_string().contains("disk low"), "{h}");
    // The same reason as a code with its figures, for the console.
    let disk = h["codes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["code"] == "disk_low"))
        .unwrap_or_else(|| panic!("no disk_low code: {h}"));
    assert!(
        disk["free_mb"].is_u64() && disk["min_mb"].is_u64(),
        "{disk}"
    );
    let c = s.state().store.count_readings().await.unwrap();
    assert_eq!(c.obs + c.weather + c.positions, 0);
}

/// The stream opens with a short-lived one-use ticket instead of the
/// session token in the URL: a ticket opens one stream, once; a used or
/// made-up ticket is 401; no other route takes a ticket; the stream it
/// opened ends with its session (logout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ticket_opens_one_stream_once() {
    let s = TestServer::start("sqlite", |_| {}).await.unwrap();
    let viewer = s.login("viewer").await;
    let ticket = |token: String| {
        let s = &s;
        async move {
            let r = s
                .http
                .post(format!("{}/api/stream/ticket", s.url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let v: Value = r.json().await.unwrap();
            let left = v["expires_ms"].as_i64().unwrap() - wall_ms();
            assert!((20_000..=31_000).contains(&left), "{v}");
            v["ticket"].as_str().unwrap().to_string()
        }
    };
    let status = |url: String| {
        let s = &s;
        async move { s.http.get(url).send().await.unwrap() }
    };
    // Without a session, no ticket.
    let r = s
        .http
        .post(format!("{}/api/stream/ticket", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let t = ticket(viewer.clone()).await;
    // Not on another route.
    let r = status(format!("{}/api/events?ticket={t}", s.url)).await;
    assert_eq!(r.status().as_u16(), 401);
    let open = status(format!("{}/api/stream?ticket={t}", s.url)).await;
    assert_eq!(open.status().as_u16(), 200);
    // Once only.
    let again = status(format!("{}/api/stream?ticket={t}", s.url)).await;
    assert_eq!(again.status().as_u16(), 401);
    let made_up = status(format!("{}/api/stream?ticket={}", s.url, "ab".repeat(32))).await;
    assert_eq!(made_up.status().as_u16(), 401);
    // The stream lives with its session.
    let r = s
        .http
        .post(format!("{}/api/logout", s.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let took = until_closed(open, Duration::from_secs(3)).await;
    assert!(took.is_some_and(|d| d < Duration::from_secs(1)), "{took:?}");
}
