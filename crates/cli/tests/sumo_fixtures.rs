//! Replays the small Eclipse SUMO fixtures committed under
//! `scenarios/fixtures/` (made by `scenarios/make_fixtures.sh`): real
//! microscopic-simulation loop data, so these pin down behaviour the
//! synthetic generator cannot show. The full suite is a benchmark
//! (`scenarios/run_suite.sh`), not a test.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios/fixtures")
        .join(name)
}

fn replay(name: &str, cameras: bool) -> (Vec<Value>, String) {
    let dir = fixture(name);
    let out = std::env::temp_dir().join(format!(
        "zhilu-sumo-{}-{name}-{cameras}",
        std::process::id()
    ));
    std::fs::create_dir_all(&out).unwrap();
    let mut args: Vec<String> = vec![
        "replay".into(),
        "--road".into(),
        dir.join("ROAD.toml").display().to_string(),
        "--observations".into(),
        dir.join("OBS.csv").display().to_string(),
        "--positions".into(),
        dir.join("POS.csv").display().to_string(),
        "--events-out".into(),
        out.join("EVENTS.jsonl").display().to_string(),
        "--actions-out".into(),
        out.join("ACTIONS.jsonl").display().to_string(),
    ];
    if cameras {
        args.push("--camera-events".into());
        args.push(dir.join("CAM.csv").display().to_string());
    }
    let o = Command::new(env!("CARGO_BIN_EXE_zhilu"))
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{stderr}");
    let events = std::fs::read_to_string(out.join("EVENTS.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (events, stderr)
}

fn t(s: &str) -> i64 {
    zhilu_io::parse_time(s.as_bytes()).unwrap()
}

#[test]
fn sumo_rows_are_all_good() {
    for name in ["incident-small", "bottleneck-small"] {
        let (_, stderr) = replay(name, true);
        assert!(!stderr.contains("Bad rows"), "{name}: {stderr}");
    }
}

#[test]
fn a_recurrent_merge_jam_is_congestion_not_an_incident() {
    let (events, _) = replay("bottleneck-small", false);
    assert!(
        events.iter().any(|e| e["kind"] == "congestion"),
        "the merge jams: {events:#?}"
    );
    assert!(
        events.iter().all(|e| e["kind"] != "incident"),
        "{events:#?}"
    );
}

#[test]
fn a_two_lane_block_is_found_from_the_loops_and_at_once_with_a_camera() {
    let truth: Value = serde_json::from_str(
        std::fs::read_to_string(fixture("incident-small").join("TRUTH.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let (stake, start) = (
        truth["stake_m"].as_f64().unwrap(),
        t(truth["start"].as_str().unwrap()),
    );
    let covers = |e: &Value| {
        e["kind"] == "incident"
            && e["from_m"].as_f64().unwrap() - 1000.0 <= stake
            && e["to_m"].as_f64().unwrap() + 1000.0 >= stake
    };
    // Loops only.
    let (events, _) = replay("incident-small", false);
    let hit = events
        .iter()
        .filter(|e| covers(e))
        .map(|e| t(e["detected_at"].as_str().unwrap()))
        .min()
        .expect("found from the loops");
    assert!(
        hit - start <= 300_000,
        "loops: {} s after the start",
        (hit - start) / 1000
    );
    // With the camera that saw the stopped vehicles: one event, never
    // later (on this fixture the loops find the block at 67 s, before the
    // camera's report at 105 s).
    let (events, _) = replay("incident-small", true);
    let hits: Vec<&Value> = events.iter().filter(|e| covers(e)).collect();
    let first = hits
        .iter()
        .map(|e| t(e["detected_at"].as_str().unwrap()))
        .min()
        .unwrap();
    assert!(first <= hit, "the camera never makes it later");
    let merged = hits
        .iter()
        .filter(|e| {
            e["evidence"]["detectors"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
        })
        .count();
    assert!(
        merged >= 1,
        "the detector alarm joined the camera's event: {hits:#?}"
    );
    let ids: std::collections::HashSet<&str> = hits
        .iter()
        .filter(|e| t(e["start"].as_str().unwrap()) <= start + 300_000)
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "one incident, one event: {hits:#?}");
}
