//! Kill -9 under load, three times: every acknowledged reading is in the
//! database afterwards, exactly as sent; events open before a kill are
//! still known after it (never dropped as "not found again"); device states
//! are what the devices confirmed before the kill unless a new command went
//! out after the restart.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{BIN, add_operator, login, serve, temp_dir};

const PASSWORD: &str = "kill nine password";

async fn get(http: &reqwest::Client, url: &str, token: &str, path: &str) -> Value {
    http.get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_across_three_kills() {
    let dir = temp_dir("kill9");
    let st = Command::new(BIN)
        .args(["gen-day", "--out"])
        .arg(dir.join("day"))
        .args([
            "--stations",
            "16",
            "--from-hour",
            "5",
            "--hours",
            "2",
            "--vehicles",
            "20",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let db = format!("sqlite://{}", dir.join("zhilu.db").display());
    add_operator(&db, PASSWORD);

    // Detector and weather rows merged in time order, 240 rows a request.
    let mut rows: Vec<(String, &'static str, String)> = Vec::new();
    let mut headers = HashMap::new();
    for (file, kind) in [("OBS.csv", "observations"), ("WEATHER.csv", "weather")] {
        let text = std::fs::read_to_string(dir.join("day").join(file)).unwrap();
        let mut lines = text.lines();
        headers.insert(kind, lines.next().unwrap().to_string());
        for l in lines {
            rows.push((
                l.split(',').next().unwrap().to_string(),
                kind,
                l.to_string(),
            ));
        }
    }
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then((a.1 != "observations").cmp(&(b.1 != "observations")))
    });
    let mut batches: Vec<(&'static str, Vec<String>)> = Vec::new();
    for (_, kind, l) in rows {
        match batches.last_mut() {
            Some((k, b)) if *k == kind && b.len() < 240 => b.push(l),
            _ => batches.push((kind, vec![l])),
        }
    }
    let http = reqwest::Client::new();
    // (first seq, last seq) → the rows acknowledged under them.
    let acked: Arc<Mutex<Vec<((i64, i64), &'static str, Vec<String>)>>> = Arc::default();
    let mut next = 0usize;
    // Kill in the fog (from about 05:45) and the ice, with events open.
    let kills_after = [
        batches.len() * 55 / 100,
        batches.len() * 70 / 100,
        batches.len() * 85 / 100,
    ];
    let (mut checked_events, mut checked_devices) = (0, 0);
    for run in 0..=kills_after.len() {
        let (mut child, url) = serve(&dir.join("day/ROAD.toml"), None, &db, "warn");
        let restarted = wall_ms();
        let token = login(&http, &url, PASSWORD).await;
        if run > 0 {
            // What was known before the kill is known after it.
            let before: Vec<(String, Value)> = std::mem::take(&mut *PREV.lock().unwrap());
            for (what, v) in before {
                if let Some(id) = what.strip_prefix("event:") {
                    let e = get(&http, &url, &token, &format!("/api/events/{id}")).await;
                    assert!(
                        e["event"]["id"] == id,
                        "event {id} unknown after restart {run}: {e}"
                    );
                    assert!(
                        e["event"]["end_reason"].is_null(),
                        "event {id} dropped after restart {run}: {e}"
                    );
                    checked_events += 1;
                } else if let Some(dev) = what.strip_prefix("device:") {
                    let now = get(&http, &url, &token, "/api/devices").await;
                    let d = now
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|d| d["device"] == dev)
                        .unwrap()
                        .clone();
                    // Read after the device: a reconciliation sent between
                    // the two reads must be seen (it raced under load).
                    let actions = get(&http, &url, &token, "/api/actions?limit=10000").await;
                    let commanded_since = actions.as_array().unwrap().iter().any(|a| {
                        a["command"]["device"] == dev
                            && a["wall_ms"].as_i64().unwrap_or(0) >= restarted
                    });
                    assert!(
                        d["state"] == v || commanded_since,
                        "device {dev} after restart {run}: {d} vs {v}"
                    );
                    checked_devices += 1;
                }
            }
        }
        // Send with 3 requests in flight until the kill point (or the end).
        let stop_at = kills_after.get(run).copied().unwrap_or(batches.len());
        let mut set = tokio::task::JoinSet::new();
        let started = Instant::now();
        while next < stop_at.min(batches.len()) || !set.is_empty() {
            while set.len() < 3 && next < stop_at.min(batches.len()) {
                let (kind, rows) = batches[next].clone();
                let body = format!("{}\n{}\n", headers[kind], rows.join("\n"));
                let (http, url, token, acked) =
                    (http.clone(), url.clone(), token.clone(), acked.clone());
                set.spawn(async move {
                    let r = http
                        .post(format!("{url}/api/ingest/{kind}"))
                        .bearer_auth(&token)
                        .header("content-type", "text/csv")
                        .body(body)
                        .send()
                        .await;
                    if let Ok(r) = r {
                        if r.status().is_success() {
                            let v: Value = r.json().await.unwrap();
                            let s = (v["seq"][0].as_i64().unwrap(), v["seq"][1].as_i64().unwrap());
                            acked.lock().unwrap().push((s, kind, rows));
                        }
                    }
                });
                next += 1;
            }
            if run < kills_after.len() && next >= stop_at {
                // Kill with requests still in flight.
                break;
            }
            set.join_next().await;
            assert!(started.elapsed() < Duration::from_secs(120));
        }
        if run < kills_after.len() {
            // Remember what must survive, then SIGKILL mid-flight.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let active = get(&http, &url, &token, "/api/events?active=true").await;
            let devices = get(&http, &url, &token, "/api/devices").await;
            {
                let mut prev = PREV.lock().unwrap();
                // Every open event, `source_clock` faults too (the clocks'
                // judgement is stored: migration 0008).
                for e in active.as_array().unwrap() {
                    prev.push((format!("event:{}", e["id"].as_str().unwrap()), Value::Null));
                }
                for d in devices.as_array().unwrap() {
                    if d["pending"].is_null() && !d["state"].is_null() {
                        prev.push((
                            format!("device:{}", d["device"].as_str().unwrap()),
                            d["state"].clone(),
                        ));
                    }
                }
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            set.abort_all();
            while set.join_next().await.is_some() {}
            // Requests cut off by the kill are sent again after the restart.
            let done = acked.lock().unwrap().len();
            let _ = done;
        } else {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    eprintln!(
        "kill9: {checked_events} open events and {checked_devices} device states checked across the restarts"
    );
    assert!(
        checked_events >= 3 && checked_devices >= 3,
        "{checked_events} events, {checked_devices} devices"
    );
    // Every acknowledged row is stored, under its sequence number, as sent.
    let store = zhilu_store::Store::open(&db).await.unwrap();
    let mut stored: HashMap<i64, zhilu_store::ObsRow> = HashMap::new();
    let mut weather: HashMap<i64, zhilu_store::WeatherRow> = HashMap::new();
    let mut after = 0;
    loop {
        let page = store.readings_after(after, i64::MIN, 50_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq();
        for r in page {
            match r {
                zhilu_store::Reading::Obs(o) => {
                    stored.insert(o.seq, o);
                }
                zhilu_store::Reading::Weather(w) => {
                    weather.insert(w.seq, w);
                }
                _ => {}
            }
        }
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() >= 40,
        "only {} batches acknowledged",
        acked.len()
    );
    let mut n = 0;
    for ((first, last), kind, rows) in acked.iter() {
        assert_eq!((last - first + 1) as usize, rows.len());
        if *kind == "weather" {
            for (i, line) in rows.iter().enumerate() {
                let w = weather
                    .get(&(first + i as i64))
                    .unwrap_or_else(|| panic!("acknowledged weather row lost: {line}"));
                assert_eq!(line.split(',').nth(1), Some(w.station.as_str()));
            }
            continue;
        }
        for (i, line) in rows.iter().enumerate() {
            let o = stored
                .get(&(first + i as i64))
                .unwrap_or_else(|| panic!("acknowledged row {} lost: {line}", first + i as i64));
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(o.detector, f[1], "{line}");
            assert_eq!(o.lane.to_string(), f[2], "{line}");
            assert_eq!(o.volume.to_string(), f[4], "{line}");
            assert_eq!(
                zhilu_io::parse_time(f[0].as_bytes()),
                Some(o.ts_ms),
                "{line}"
            );
            n += 1;
        }
    }
    assert!(n >= 40 * 240);
    store.close().await;
}

static PREV: Mutex<Vec<(String, Value)>> = Mutex::new(Vec::new());

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A kill can fall between writing a decision and sending it, or between a
/// device's confirmation and its storing: after the restart the device's
/// stored state is not what its plan requires. The centre sends the
/// written decision again under its own command id (MQTT.md, "Delivery of
/// decisions") — not a second decision for the same thing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_cut_off_by_a_kill_is_sent_again_under_its_own_id() {
    let dir = temp_dir("kill9-resend");
    let st = Command::new(BIN)
        .args(["gen-day", "--out"])
        .arg(dir.join("day"))
        .args(["--stations", "16", "--from-hour", "5", "--hours", "2"])
        .args(["--vehicles", "0", "--seed", "3"])
        .output()
        .unwrap();
    assert!(st.status.success());
    let db = format!("sqlite://{}", dir.join("zhilu.db").display());
    add_operator(&db, PASSWORD);
    let http = reqwest::Client::new();
    let (mut child, url) = serve(&dir.join("day/ROAD.toml"), None, &db, "warn");
    let token = login(&http, &url, PASSWORD).await;
    // The morning up to the fog, in time order.
    let mut rows: Vec<(String, &'static str, String)> = Vec::new();
    let mut headers = HashMap::new();
    for (file, kind) in [("OBS.csv", "observations"), ("WEATHER.csv", "weather")] {
        let text = std::fs::read_to_string(dir.join("day").join(file)).unwrap();
        let mut lines = text.lines();
        headers.insert(kind, lines.next().unwrap().to_string());
        for l in lines {
            rows.push((l.split(',').next().unwrap().to_string(), kind, l.into()));
        }
    }
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then((a.1 != "observations").cmp(&(b.1 != "observations")))
    });
    let upto = rows.len() * 60 / 100;
    let mut i = 0;
    while i < upto {
        let kind = rows[i].1;
        let mut body = format!("{}\n", headers[kind]);
        while i < upto && rows[i].1 == kind && body.len() < 64 << 10 {
            body.push_str(&rows[i].2);
            body.push('\n');
            i += 1;
        }
        let r = http
            .post(format!("{url}/api/ingest/{kind}"))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    eprintln!("resend: {upto} rows sent");
    // Settled: every device shows its last decision.
    let (device, action) = {
        let t0 = Instant::now();
        loop {
            let devices = get(&http, &url, &token, "/api/devices").await;
            let actions = get(&http, &url, &token, "/api/actions?limit=10000").await;
            let settled = devices
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["pending"].is_null());
            // The newest decision for a speed-limit sign that shows it.
            let pick = actions.as_array().unwrap().iter().find_map(|a| {
                let dev = a["command"]["device"].as_str()?;
                let d = devices
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|d| d["device"] == dev)?;
                (a["command"]["action"] == "speed_limit" && d["shows"]["limit_kmh"].is_u64())
                    .then(|| (dev.to_string(), a.clone()))
            });
            if settled && let Some(p) = pick {
                break p;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "never settled: {devices}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let store = zhilu_store::Store::open(&db).await.unwrap();
    let before = store.actions(None, 1_000_000).await.unwrap();
    let last_id = before.iter().map(|a| a.id).max().unwrap();
    let mine = before
        .iter()
        .filter(|a| a.device == device)
        .map(|a| a.id)
        .max()
        .unwrap();
    // The device's confirmation never written (or the command never sent).
    let mut row = store
        .device_states()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.device == device)
        .unwrap();
    row.state_json = "null".into();
    row.pending_json = None;
    store.upsert_device_state(&row).await.unwrap();
    store.close().await;

    let (mut child, url) = serve(&dir.join("day/ROAD.toml"), None, &db, "warn");
    let token = login(&http, &url, PASSWORD).await;
    let t0 = Instant::now();
    let shown = loop {
        let devices = get(&http, &url, &token, "/api/devices").await;
        let d = devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device"] == device.as_str())
            .unwrap()
            .clone();
        if d["pending"].is_null() && !d["state"].is_null() {
            break d;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "not re-sent: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        shown["shows"]["limit_kmh"], action["command"]["value"],
        "{shown} vs {action}"
    );
    let store = zhilu_store::Store::open(&db).await.unwrap();
    let after = store.actions(None, 1_000_000).await.unwrap();
    let audit = store.audit(0, 1_000_000).await.unwrap();
    store.close().await;
    let new: Vec<String> = after
        .iter()
        .filter(|a| a.id > last_id && a.device == device)
        .map(|a| format!("{} {} {}", a.id, a.mode, a.reason))
        .collect();
    assert!(
        new.is_empty(),
        "a second decision for {device} (its last was {mine}): {new:?}"
    );
    let _ = audit;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A source's clock fault outlives a restart: its `source_clock` event
/// stays open (not ended "not found again after a restart") and health
/// still names the source, until it has been on time for `recover_s`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_fault_outlives_a_kill() {
    let dir = temp_dir("kill9-clock");
    let st = Command::new(BIN)
        .args(["gen-day", "--out"])
        .arg(dir.join("day"))
        .args(["--stations", "4", "--from-hour", "5", "--hours", "1"])
        .args(["--vehicles", "0", "--seed", "3"])
        .output()
        .unwrap();
    assert!(st.status.success());
    let config = dir.join("zhilu.toml");
    std::fs::write(&config, "[time]\nrecover_s = 120.0\n").unwrap();
    let db = format!("sqlite://{}", dir.join("zhilu.db").display());
    add_operator(&db, PASSWORD);
    let http = reqwest::Client::new();
    let road = dir.join("day/ROAD.toml");
    let (mut child, url) = serve(&road, Some(&config), &db, "warn");
    let token = login(&http, &url, PASSWORD).await;
    let text = std::fs::read_to_string(dir.join("day/OBS.csv")).unwrap();
    let mut lines = text.lines();
    let head = lines.next().unwrap();
    let rows: Vec<&str> = lines.take(400).collect();
    let post = |body: String| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            http.post(format!("{url}/api/ingest/observations"))
                .bearer_auth(&token)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(format!("{head}\n{}\n", rows.join("\n"))).await, 200);
    // One detector's row dated a year ahead: refused, its clock is off.
    let (t, rest) = rows[0].split_once(',').unwrap();
    let source = rest.split(',').next().unwrap().to_string();
    let ahead = zhilu_io::parse_time(t.as_bytes()).unwrap().max(wall_ms()) + 365 * 86_400_000;
    let bad = format!("{},{rest}", zhilu_io::jsonl::format_time(ahead, 8 * 3600));
    assert_eq!(post(format!("{head}\n{bad}\n")).await, 422);
    let open_fault = |url: String, token: String| {
        let http = http.clone();
        async move {
            let active = get(&http, &url, &token, "/api/events?active=true").await;
            active
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["kind"] == "source_clock")
                .cloned()
        }
    };
    let t0 = Instant::now();
    let event = loop {
        if let Some(e) = open_fault(url.clone(), token.clone()).await {
            break e;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no source_clock event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = event["id"].as_str().unwrap().to_string();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (mut child, url) = serve(&road, Some(&config), &db, "warn");
    let token = login(&http, &url, PASSWORD).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let e = get(&http, &url, &token, &format!("/api/events/{id}")).await;
    let h: Value = http
        .get(format!("{url}/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        e["event"]["end"].is_null() && e["event"]["end_reason"].is_null(),
        "the clock fault of {source} ended by the restart: {e}"
    );
    assert!(
        h["sources_off"].to_string().contains(&source),
        "health forgot {source}: {h}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
