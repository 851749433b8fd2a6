//! What the process-level tests (kill9, chaos) share: a scratch folder, an
//! operator account, a `zhilu serve` child on a free port, a login.
#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_zhilu");

/// A fresh folder under the system's temporary one, named by `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("zhilu-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Adds the operator `op` with `password` to the database at `db`.
pub fn add_operator(db: &str, password: &str) {
    let mut add = Command::new(BIN)
        .args(["user", "add", "op", "--role", "operator", "--database", db])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{password}").unwrap();
    assert!(add.wait().unwrap().success());
}

/// Starts `zhilu serve` on a free loopback port and returns the child and
/// the address it printed on its first line.
pub fn serve(road: &Path, config: Option<&Path>, db: &str, log: &str) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--road"]).arg(road);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .args(["--database", db, "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, url)
}

/// Logs `op` in and returns the session token.
pub async fn login(http: &reqwest::Client, url: &str, password: &str) -> String {
    let v: Value = http
        .post(format!("{url}/api/login"))
        .json(&json!({"username": "op", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["token"].as_str().unwrap().to_string()
}
