//! The command line's error messages: one line, the argument that named the
//! file, the reason once; exit code 2.

use std::process::Command;

fn zhilu(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zhilu"))
        .args(args)
        .output()
        .expect("run zhilu");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn demo_road() -> String {
    format!(
        "{}/../../examples/demo/ROAD.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn a_missing_road_names_the_argument_once() {
    let (code, err) = zhilu(&[
        "replay",
        "--road",
        "/nonexistent/ROAD.toml",
        "--observations",
        "/nonexistent/OBS.csv",
        "--events-out",
        "/tmp/zhilu-cli-errors-e.jsonl",
        "--actions-out",
        "/tmp/zhilu-cli-errors-a.jsonl",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.trim(),
        "zhilu: error: --road /nonexistent/ROAD.toml: no such file"
    );
}

#[test]
fn a_missing_input_names_its_argument() {
    let road = demo_road();
    for flag in [
        "--observations",
        "--weather",
        "--positions",
        "--camera-events",
    ] {
        let mut args = vec![
            "replay",
            "--road",
            &road,
            "--events-out",
            "/tmp/zhilu-cli-errors-e.jsonl",
            "--actions-out",
            "/tmp/zhilu-cli-errors-a.jsonl",
        ];
        if flag != "--observations" {
            args.extend(["--observations", &road]);
        }
        args.extend([flag, "/nonexistent/X.csv"]);
        let (code, err) = zhilu(&args);
        assert_eq!(code, 2, "{err}");
        assert_eq!(
            err.trim(),
            format!("zhilu: error: {flag} /nonexistent/X.csv: no such file"),
        );
    }
}

#[test]
fn a_directory_is_not_a_file() {
    let (code, err) = zhilu(&["serve", "--road", "/tmp"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim(), "zhilu: error: --road /tmp: not a file");
}

#[test]
fn gen_day_with_ten_stations_terminates() {
    // Once drew fault stations forever (100 % CPU) at 10 stations.
    let dir = std::env::temp_dir().join(format!("zhilu-gen10-{}", std::process::id()));
    let d = dir.to_string_lossy().into_owned();
    let (code, err) = zhilu(&["gen-day", "--out", &d, "--stations", "10", "--hours", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.join("OBS.csv").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
