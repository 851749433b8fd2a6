//! End-to-end: `zhilu gen-day` then `zhilu replay` on a small generated
//! day, checked against the day's ground truth and the replay contract.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn zhilu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zhilu"))
        .args(args)
        .output()
        .expect("run zhilu")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zhilu-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn gen_day(dir: &Path, extra: &[&str]) {
    let mut args = vec![
        "gen-day",
        "--out",
        s(dir),
        "--stations",
        "24",
        "--seed",
        "7",
    ];
    args.extend_from_slice(extra);
    let out = zhilu(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn replay(dir: &Path, obs: &Path, tag: &str) -> (Output, Vec<Value>, String) {
    let events = dir.join(format!("EVENTS{tag}.jsonl"));
    let actions = dir.join(format!("ACTIONS{tag}.jsonl"));
    let road = dir.join("ROAD.toml");
    let out = zhilu(&[
        "replay",
        "--road",
        s(&road),
        "--observations",
        s(obs),
        "--weather",
        s(&dir.join("WEATHER.csv")),
        "--positions",
        s(&dir.join("POS.csv")),
        "--camera-events",
        s(&dir.join("CAM.csv")),
        "--events-out",
        s(&events),
        "--actions-out",
        s(&actions),
    ]);
    let text = std::fs::read_to_string(&events).unwrap_or_default();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("each line is JSON"))
        .collect();
    let actions_text = std::fs::read_to_string(&actions).unwrap_or_default();
    (out, lines, actions_text)
}

fn epoch_ms(t: &str) -> i64 {
    zhilu_io_time(t)
}

// The test parses times the same way the platform does.
fn zhilu_io_time(t: &str) -> i64 {
    zhilu_io::parse_time(t.as_bytes()).unwrap_or_else(|| panic!("bad time {t}"))
}

#[test]
fn replay_finds_every_injected_fault_and_nothing_else() {
    let dir = scratch("day");
    gen_day(&dir, &[]);
    let (out, events, actions) = replay(&dir, &dir.join("OBS.csv"), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("rows/s") && stderr.contains("detector_fault"),
        "summary: {stderr}"
    );
    // The generated morning has a fog bank: a fog event, lawful limits, lights, entries.
    assert!(
        events.iter().any(|e| e["kind"] == "fog"),
        "fog expected: {events:#?}"
    );
    let mut last_at = i64::MIN;
    for l in actions.lines() {
        let a: Value = serde_json::from_str(l).expect("each action line is JSON");
        for key in ["at", "device", "action"] {
            assert!(a.get(key).is_some(), "missing {key}: {a}");
        }
        let kind = a["action"].as_str().unwrap();
        let known = [
            "speed_limit",
            "message",
            "fog_lights",
            "entry",
            "deicing",
            "tunnel_plan",
            "lane_control",
        ];
        assert!(known.contains(&kind), "{a}");
        let at = epoch_ms(a["at"].as_str().unwrap());
        assert!(at >= last_at, "actions in time order: {a}");
        last_at = at;
    }
    assert!(actions.contains("\"fog_lights\""), "fog lights commanded");

    // Contract: required fields on every line.
    for e in &events {
        for key in [
            "id",
            "kind",
            "direction",
            "from_m",
            "to_m",
            "start",
            "detected_at",
            "end",
        ] {
            assert!(e.get(key).is_some(), "missing {key}: {e}");
        }
        match e["kind"].as_str().unwrap() {
            "detector_fault" => assert!(e["detector"].is_string(), "{e}"),
            "fog" => assert!(
                e["visibility_m"].is_number() && e["direction"] == "both",
                "{e}"
            ),
            "ice" => assert!(
                e["surface_temp_c"].is_number() && e["direction"] == "both",
                "{e}"
            ),
            "hazmat_speeding"
            | "hazmat_stopped"
            | "hazmat_restricted_zone"
            | "hazmat_driving_time"
            | "wrong_way" => assert!(e["vehicle"].is_string(), "{e}"),
            "congestion" => assert!(e["trend"].is_string(), "{e}"),
            "incident" => panic!(
                "a day without incidents (its bottleneck jams every morning) raised one: {e}"
            ),
            other => panic!("unexpected kind {other}: {e}"),
        }
        assert!(
            epoch_ms(e["start"].as_str().unwrap()) <= epoch_ms(e["detected_at"].as_str().unwrap())
        );
    }

    let events: Vec<Value> = events
        .into_iter()
        .filter(|e| e["kind"] == "detector_fault")
        .collect();
    let truth: Vec<Value> = std::fs::read_to_string(dir.join("TRUTH.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|t| t["kind"] == "detector_fault")
        .collect();
    assert!(truth.len() >= 5);
    let mut matched = vec![false; events.len()];
    for t in &truth {
        let start = epoch_ms(t["start"].as_str().unwrap());
        let hit = events.iter().position(|e| {
            e["detector"] == t["detector"] && {
                let d = epoch_ms(e["detected_at"].as_str().unwrap());
                d >= start && d - start <= 5 * 60_000
            }
        });
        let i = hit.unwrap_or_else(|| {
            panic!("injected fault not found within 5 min: {t}\nevents: {events:#?}")
        });
        matched[i] = true;
        let e = &events[i];
        assert!(
            e["evidence"]["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == &t["rule"]),
            "rule: {t} vs {e}"
        );
    }
    let false_alarms: Vec<&Value> = events
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(e, _)| e)
        .collect();
    assert!(
        false_alarms.is_empty(),
        "faults raised where none was injected: {false_alarms:#?}"
    );

    // Deterministic: a second run writes the same events.
    let (_, again, _) = replay(&dir, &dir.join("OBS.csv"), "2");
    let again: Vec<Value> = again
        .into_iter()
        .filter(|e| e["kind"] == "detector_fault")
        .collect();
    assert_eq!(events, again);
}

#[test]
fn an_event_is_raised_from_data_up_to_its_detected_at() {
    // Contract: replaying the input cut at `detected_at` must raise it too.
    let dir = scratch("cut");
    gen_day(&dir, &["--hours", "24"]);
    let (_, events, _) = replay(&dir, &dir.join("OBS.csv"), "");
    let files = ["OBS.csv", "WEATHER.csv", "POS.csv", "CAM.csv"];
    let full: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect();
    let cut_dir = dir.join("cut");
    std::fs::create_dir_all(&cut_dir).unwrap();
    std::fs::copy(dir.join("ROAD.toml"), cut_dir.join("ROAD.toml")).unwrap();
    assert!(events.len() >= 3);
    for e in events.iter().take(3) {
        let cut_at = epoch_ms(e["detected_at"].as_str().unwrap());
        for (f, text) in files.iter().zip(&full) {
            let cut: String = text
                .lines()
                .enumerate()
                .filter(|(i, l)| *i == 0 || epoch_ms(l.split(',').next().unwrap()) <= cut_at)
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            std::fs::write(cut_dir.join(f), cut).unwrap();
        }
        let cut_path = cut_dir.join("OBS.csv");
        let (out, cut_events, _) = replay(&cut_dir, &cut_path, "");
        assert!(out.status.success());
        assert!(
            cut_events.iter().any(|c| c["detector"] == e["detector"]
                && c["detected_at"] == e["detected_at"]
                && c["end"].is_null()),
            "{e} not raised on the cut input: {cut_events:#?}"
        );
    }
}

#[test]
fn bad_rows_are_counted_and_do_not_stop_the_replay() {
    let dir = scratch("bad");
    gen_day(&dir, &["--hours", "1", "--no-faults"]);
    let obs = std::fs::read_to_string(dir.join("OBS.csv")).unwrap();
    let mut lines: Vec<String> = obs.lines().map(String::from).collect();
    let t = lines[1].split(',').next().unwrap().to_string();
    lines.insert(2, format!("{t},NOPE,1,20,5,90.0,8.0"));
    lines.insert(3, format!("{t},D00001U,1,20,5,300,8.0"));
    lines.insert(4, "not a time,D00001U,1,20,5,90,8".into());
    lines.insert(5, "\"unterminated,quote".into());
    let path = dir.join("OBS_BAD.csv");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let (out, _, _) = replay(&dir, &path, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("unknown_device 1 (line 3 detector)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("out_of_range 1 (line 4 speed_kmh)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad_time 2 (line 5 time, line 6 time)"),
        "a stray quote spoils its own row only: {stderr}"
    );
    assert!(
        !stderr.contains("duplicate"),
        "a flagged row is counted once: {stderr}"
    );
}

#[test]
fn bad_input_exits_non_zero_with_one_line_naming_the_place() {
    let dir = scratch("fatal");
    gen_day(&dir, &["--hours", "1"]);
    // A typo in the road book.
    let road = std::fs::read_to_string(dir.join("ROAD.toml"))
        .unwrap()
        .replacen("stake_m", "stake_mm", 1);
    let bad_road = dir.join("BAD_ROAD.toml");
    std::fs::write(&bad_road, road).unwrap();
    let e = dir.join("E.jsonl");
    let a = dir.join("A.jsonl");
    let obs = dir.join("OBS.csv");
    let out = zhilu(&[
        "replay",
        "--road",
        s(&bad_road),
        "--observations",
        s(&obs),
        "--events-out",
        s(&e),
        "--actions-out",
        s(&a),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("BAD_ROAD.toml:") && err.contains("stake_mm"),
        "{err}"
    );

    // A missing column.
    let bad_obs = dir.join("NOCOL.csv");
    std::fs::write(&bad_obs, "time,detector,lane,interval_s,volume,speed_kmh\n").unwrap();
    let out = zhilu(&[
        "replay",
        "--road",
        s(&dir.join("ROAD.toml")),
        "--observations",
        s(&bad_obs),
        "--events-out",
        s(&e),
        "--actions-out",
        s(&a),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("NOCOL.csv") && err.contains("occupancy_pct") && err.contains("line 1"),
        "{err}"
    );

    // A file that is not there.
    let out = zhilu(&[
        "replay",
        "--road",
        s(&dir.join("ROAD.toml")),
        "--observations",
        "/nonexistent/OBS.csv",
        "--events-out",
        s(&e),
        "--actions-out",
        s(&a),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("/nonexistent/OBS.csv"), "{err}");
}

#[test]
fn every_staged_vehicle_violation_is_found_within_two_minutes_and_no_other() {
    let dir = scratch("vehicles");
    gen_day(&dir, &[]);
    let (out, events, _) = replay(&dir, &dir.join("OBS.csv"), "");
    assert!(out.status.success());
    let vehicle_kinds = [
        "hazmat_speeding",
        "hazmat_stopped",
        "hazmat_restricted_zone",
        "hazmat_driving_time",
        "wrong_way",
    ];
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| vehicle_kinds.contains(&e["kind"].as_str().unwrap()))
        .collect();
    let truth: Vec<Value> = std::fs::read_to_string(dir.join("TRUTH.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|t| vehicle_kinds.contains(&t["kind"].as_str().unwrap()))
        .collect();
    assert!(truth.iter().any(|t| t["kind"] == "hazmat_speeding"));
    assert!(truth.iter().any(|t| t["kind"] == "hazmat_stopped"));
    assert!(truth.iter().any(|t| t["kind"] == "wrong_way"));
    let mut used = vec![false; found.len()];
    for t in &truth {
        let start = epoch_ms(t["start"].as_str().unwrap());
        let i = found
            .iter()
            .position(|e| {
                e["kind"] == t["kind"] && e["vehicle"] == t["vehicle"] && {
                    let d = epoch_ms(e["detected_at"].as_str().unwrap());
                    d >= start - 30_000 && d <= start + 120_000
                }
            })
            .unwrap_or_else(|| panic!("not found within 2 min: {t}\n{found:#?}"));
        used[i] = true;
    }
    let extra: Vec<&&Value> = found
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(e, _)| e)
        .collect();
    assert!(
        extra.is_empty(),
        "violations raised that were not staged: {extra:#?}"
    );
}

/// `zhilu sim` writes the demo corridor's morning as contract files that
/// `zhilu replay` reads without a bad row, and the scripted episodes in
/// TRUTH.jsonl are found.
#[test]
fn sim_writes_a_day_replay_reads_and_its_episodes_are_found() {
    let dir = scratch("sim");
    let out = zhilu(&[
        "sim",
        "--out",
        s(&dir),
        "--from-hour",
        "5",
        "--hours",
        "3.5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, events, actions) = replay(&dir, &dir.join("OBS.csv"), "");
    let summary = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{summary}");
    assert!(!summary.contains("bad rows"), "{summary}");
    let truth = std::fs::read_to_string(dir.join("TRUTH.jsonl")).unwrap();
    let truth: Vec<Value> = truth
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for t in &truth {
        let want = match t["kind"].as_str().unwrap() {
            "fog" => "fog",
            "ice" => "ice",
            "incident" => "incident",
            "hazmat_stop" | "hazmat_stopped" => "hazmat_stopped",
            _ => continue,
        };
        assert!(
            kinds.contains(&want),
            "{want} from {t} not found in {kinds:?}"
        );
    }
    assert!(actions.contains("\"speed_limit\""));
}
