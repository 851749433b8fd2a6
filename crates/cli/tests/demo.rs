//! `zhilu demo` end to end: the real binary at a high time acceleration;
//! the scripted morning (fog bank, ice on the bridge, a hazmat truck
//! stopping in the tunnel, a crash blocking a lane) must show up over the
//! live API as the expected events and actions, and the simulated devices
//! must confirm what the centre commanded.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_zhilu");

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripted_morning_is_seen_over_the_live_api() {
    let err_path = std::env::temp_dir().join(format!("zhilu-demo-test-{}.err", std::process::id()));
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--speed",
            "600",
            "--listen",
            "127.0.0.1:0",
            "--start",
            "05:00",
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _guard = Kill(child);
    assert!(line.contains("demo / demo"), "{line}");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{url}/api/login"))
        .json(&json!({"username": "demo", "password": "demo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_string();
    assert_eq!(login["role"], "operator");
    let get = |path: &str| {
        let req = http.get(format!("{url}{path}")).bearer_auth(&token);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    // Run the simulated clock past 08:20 (3 h 20 min at 600× ≈ 20 s).
    let t0 = Instant::now();
    loop {
        let h = get("/api/health").await;
        let last = h["last_tick_ms"].as_i64().unwrap_or(0);
        let state = get("/api/state").await;
        let time = state["time"].as_str().unwrap_or("");
        if time >= "0" && time.get(11..16).is_some_and(|hm| hm >= "08:20") && last > 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "the demo clock did not reach 08:20: {state}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events = get("/api/events?limit=10000").await;
    let events = events.as_array().unwrap();
    let find = |kind: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let hm = |e: &Value, k: &str| {
        e[k].as_str()
            .and_then(|t| t.get(11..16))
            .unwrap_or("")
            .to_string()
    };

    // Fog bank 05:30–07:30 around K20–K30, with the lawful limits.
    let fog = find("fog");
    assert!(
        fog.iter().any(|e| e["from_m"].as_f64().unwrap() <= 30_000.0
            && e["to_m"].as_f64().unwrap() >= 20_000.0
            && hm(e, "detected_at") >= "05:30".to_string()
            && hm(e, "detected_at") <= "06:30".to_string()),
        "no fog event in the bank: {fog:?}"
    );
    assert!(
        fog.iter()
            .any(|e| e["visibility_m"].as_f64().unwrap_or(1e9) < 50.0),
        "{fog:?}"
    );
    // Ice on the bridge before 06:30.
    let ice = find("ice");
    assert!(
        ice.iter()
            .any(|e| hm(e, "detected_at") <= "06:30".to_string()),
        "{ice:?}"
    );
    // The hazmat truck stopping in the tunnel.
    let hz: Vec<Value> = find("hazmat_stopped")
        .into_iter()
        .chain(find("hazmat_restricted_zone"))
        .collect();
    assert!(hz.iter().any(|e| e["kind"] == "hazmat_stopped"), "{hz:?}");
    // The crash at ~07:40 near K35 (up): an incident there, after it began.
    let inc = find("incident");
    assert!(
        inc.iter().any(|e| e["direction"] == "up"
            && e["from_m"].as_f64().unwrap() <= 36_000.0
            && e["to_m"].as_f64().unwrap() >= 34_000.0
            && hm(e, "detected_at") >= "07:40".to_string()),
        "no incident for the 07:40 crash: {inc:?}"
    );

    // Actions: lawful fog limits applied automatically, de-icers switched
    // on, entry closures proposed to the operator.
    let actions = get("/api/actions?limit=10000").await;
    let actions = actions.as_array().unwrap();
    let fog_limit = actions.iter().any(|a| {
        a["mode"] == "auto"
            && a["command"]["action"] == "speed_limit"
            && a["command"]["value"].as_u64().is_some_and(|v| v <= 40)
    });
    assert!(fog_limit, "no limit ≤ 40 km/h");
    assert!(
        actions
            .iter()
            .any(|a| a["command"]["action"] == "deicing" && a["command"]["value"] == "on")
    );
    let proposals = get("/api/proposals").await;
    assert!(
        proposals
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "entry"),
        "{proposals}"
    );
    // The operator approves an entry proposal; the entry confirms it and
    // the simulated traffic obeys it (no command the simulator refused).
    let pending: Vec<Value> = proposals
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "pending")
        .cloned()
        .collect();
    if let Some(p) = pending.first() {
        let r = http
            .post(format!(
                "{url}/api/proposals/{}/approve",
                p["id"].as_str().unwrap()
            ))
            .bearer_auth(&token)
            .json(&json!({"reason": "fog at the entry, confirmed"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let dev = p["device"].as_str().unwrap();
        let want = p["command"]["value"].clone();
        let t1 = Instant::now();
        loop {
            let d = get("/api/devices").await;
            if d.as_array()
                .unwrap()
                .iter()
                .any(|x| x["device"] == dev && x["state"]["value"] == want)
            {
                break;
            }
            assert!(
                t1.elapsed() < Duration::from_secs(30),
                "entry {dev} never confirmed {want}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(!err.contains("not applied"), "{err}");
    assert!(!err.contains("not accepted"), "{err}");
    // The simulated signs confirmed what they were told.
    let devices = get("/api/devices").await;
    assert!(
        devices.as_array().unwrap().iter().any(|d| d["device"]
            .as_str()
            .is_some_and(|x| x.starts_with('S'))
            && d["shows"].is_object()
            && d["online"] == true),
        "{devices}"
    );
}

/// Ctrl-C ends the demo cleanly: exit 0, no error about the closed port,
/// its temporary database removed; status lines came before it.
#[test]
fn ctrl_c_stops_cleanly_and_removes_the_temporary_database() {
    let err_path = std::env::temp_dir().join(format!("zhilu-demo-int-{}.err", std::process::id()));
    let mut child = Command::new(BIN)
        .args(["demo", "--speed", "60", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("zhilu-demo-{}", child.id()));
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("demo / demo"), "{first}");
    assert!(
        dir.join("demo.db").exists(),
        "no database in {}",
        dir.display()
    );
    let mut status = String::new();
    out.read_line(&mut status).unwrap();
    assert!(status.starts_with("demo: 20"), "no status line: {status:?}");
    assert!(status.contains("open events"), "{status}");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let code = child.wait().unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(code.success(), "exit {code:?}: {err}");
    assert!(!err.contains("error"), "{err}");
    assert!(!dir.exists(), "{} left behind", dir.display());
    let _ = std::fs::remove_file(&err_path);
}
