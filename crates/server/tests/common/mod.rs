//! A real server on a loopback port over a temporary SQLite file (or the
//! PostgreSQL of `ZHILU_TEST_PG_URL`), fed a small simulated day.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use zhilu_road::RoadBook;
use zhilu_server::Centre;
use zhilu_server::auth::Role;
use zhilu_server::config::ServerConfig;
use zhilu_traffic::bulk::{Day, DayConfig};

pub const PASSWORD: &str = "test password 123";

pub struct TestServer {
    pub url: String,
    pub dir: PathBuf,
    pub road: Arc<RoadBook>,
    pub cfg: ServerConfig,
    pub http: reqwest::Client,
    centre: Option<Centre>,
    server: tokio::task::JoinHandle<()>,
}

/// A fresh temporary folder.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("zhilu-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a small simulated day (16 stations, 05:00–07:00 with fog, ice,
/// staged hazmat and wrong-way, faults) into `dir`.
pub fn write_day(dir: &std::path::Path) -> Arc<RoadBook> {
    let day = Day::new(DayConfig {
        stations: 16,
        from_hour: 5,
        hours: 2,
        vehicles: 20,
        seed: 3,
        ..DayConfig::default()
    })
    .unwrap();
    let mut w = Vec::new();
    day.write_road(&mut w).unwrap();
    std::fs::write(dir.join("ROAD.toml"), &w).unwrap();
    let road = RoadBook::from_toml(std::str::from_utf8(&w).unwrap(), "ROAD.toml").unwrap();
    let mut o = Vec::new();
    day.write_obs(&mut o).unwrap();
    std::fs::write(dir.join("OBS.csv"), o).unwrap();
    let mut wx = Vec::new();
    day.write_weather(&mut wx).unwrap();
    std::fs::write(dir.join("WEATHER.csv"), wx).unwrap();
    let mut p = Vec::new();
    day.write_positions(&mut p, road.geometry()).unwrap();
    std::fs::write(dir.join("POS.csv"), p).unwrap();
    Arc::new(road)
}

/// The database URL for a test: PostgreSQL when `backend` is "postgres"
/// (a fresh database on ZHILU_TEST_PG_URL), else a SQLite file in `dir`.
pub async fn database_url(backend: &str, dir: &std::path::Path) -> Option<String> {
    if backend != "postgres" {
        return Some(format!("sqlite://{}", dir.join("zhilu.db").display()));
    }
    let Ok(admin) = std::env::var("ZHILU_TEST_PG_URL") else {
        if std::env::var("ZHILU_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("ZHILU_REQUIRE_SERVICES=1 but ZHILU_TEST_PG_URL is not set");
        }
        eprintln!("skipped: set ZHILU_TEST_PG_URL to run against PostgreSQL");
        return None;
    };
    let name = format!(
        "zhilu_srv_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let out = std::process::Command::new("psql")
        .args([&admin, "-q", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_string();
    Some(format!("{base}/{name}"))
}

impl TestServer {
    /// Starts a server; `tweak` adjusts the configuration.
    pub async fn start(backend: &str, tweak: impl FnOnce(&mut ServerConfig)) -> Option<TestServer> {
        let dir = temp_dir("srv");
        let road = write_day(&dir);
        let mut cfg = ServerConfig::default();
        cfg.storage.url = database_url(backend, &dir).await?;
        cfg.storage.archive_dir = dir.join("archive").display().to_string();
        cfg.devices.sim_confirm_ms = 20;
        cfg.ingest.tick_grace_s = 0.5;
        tweak(&mut cfg);
        for (name, role) in [
            ("admin", Role::Admin),
            ("op", Role::Operator),
            ("viewer", Role::Viewer),
        ] {
            zhilu_server::add_user(&cfg, name, role, PASSWORD)
                .await
                .unwrap();
        }
        let mut s = TestServer {
            url: String::new(),
            dir,
            road,
            cfg,
            http: reqwest::Client::new(),
            centre: None,
            server: tokio::spawn(async {}),
        };
        s.boot().await;
        Some(s)
    }

    async fn boot(&mut self) {
        let centre = Centre::start(self.road.clone(), self.cfg.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.url = format!("http://{}", listener.local_addr().unwrap());
        let app = centre.router();
        // The server's own accept loop: connection limits, header timeout.
        let limits = centre.state.limits;
        let header = Duration::from_secs_f64(self.cfg.server.header_timeout_s);
        self.server = tokio::spawn(zhilu_server::net::serve_http(
            listener,
            app,
            limits,
            header,
            std::future::pending(),
        ));
        self.centre = Some(centre);
    }

    /// Stops the server (tasks aborted) and starts it again on the same database.
    pub async fn restart(&mut self) -> u64 {
        self.server.abort();
        if let Some(c) = self.centre.take() {
            c.stop();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.boot().await;
        self.centre.as_ref().map_or(0, |c| c.resumed_rows)
    }

    /// The running centre's handler state (store, hub, health).
    pub fn state(&self) -> &zhilu_server::AppState {
        &self.centre.as_ref().unwrap().state
    }

    /// Stops the server at once (every task aborted, connections dropped
    /// without goodbye, as a kill would); `boot_again` starts it on the
    /// same database.
    pub async fn kill(&mut self) {
        self.server.abort();
        if let Some(c) = self.centre.take() {
            c.stop();
        }
    }

    /// Starts the server again after `kill`.
    pub async fn boot_again(&mut self) {
        self.boot().await;
    }

    /// Where the JT/T 808 gateway listens, when configured.
    pub fn jt808_addr(&self) -> Option<std::net::SocketAddr> {
        self.centre.as_ref().and_then(|c| c.jt808_addr)
    }

    pub async fn login(&self, user: &str) -> String {
        let r: Value = self
            .http
            .post(format!("{}/api/login", self.url))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login {user}: {r}"))
            .to_string()
    }

    pub async fn get(&self, token: &str, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{}", self.url, path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn post_csv(&self, token: &str, kind: &str, body: String) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/api/ingest/{kind}", self.url))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends the whole day (weather, positions and detector rows merged in
    /// time order, `batch` rows a request) as an operator.
    pub async fn send_day(&self, token: &str, batch: usize) {
        for (kind, rows) in day_batches(&self.dir, batch) {
            let (s, a) = self.post_csv(token, kind, rows).await;
            assert_eq!(s, 200, "{kind}: {a}");
        }
    }

    /// Waits until the engine has taken every acknowledged row (the count
    /// of rows it took stops moving).
    pub async fn settle(&self, token: &str) {
        let mut last = -1i64;
        for _ in 0..200 {
            let h = self.get(token, "/api/health").await;
            let rows =
                h["rows"].as_i64().unwrap_or(0) * 1_000_000 + h["ticks"].as_i64().unwrap_or(0);
            if rows == last {
                return;
            }
            last = rows;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("engine never settled");
    }

    /// Waits until `pred` holds for GET `path`, or panics after `secs`.
    pub async fn wait_for(
        &self,
        token: &str,
        path: &str,
        secs: u64,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let until = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.get(token, path).await;
            if pred(&v) {
                return v;
            }
            if std::time::Instant::now() > until {
                panic!("timed out waiting on {path}: {v}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The day's files as requests in time order: (kind, CSV body).
pub fn day_batches(dir: &std::path::Path, batch: usize) -> Vec<(&'static str, String)> {
    let mut rows: Vec<(String, &'static str, String)> = Vec::new();
    let mut headers = std::collections::HashMap::new();
    for (file, kind) in [
        ("OBS.csv", "observations"),
        ("WEATHER.csv", "weather"),
        ("POS.csv", "positions"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let mut lines = text.lines();
        headers.insert(kind, lines.next().unwrap().to_string());
        for l in lines {
            let t = l.split(',').next().unwrap().to_string();
            rows.push((t, kind, l.to_string()));
        }
    }
    // Stable: detector rows keep their order within a time.
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then((a.1 != "observations").cmp(&(b.1 != "observations")))
    });
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut n = 0;
    for (_, kind, l) in rows {
        match out.last_mut() {
            Some((k, body)) if *k == kind && n < batch => {
                body.push_str(&l);
                body.push('\n');
                n += 1;
            }
            _ => {
                out.push((kind, format!("{}\n{l}\n", headers[kind])));
                n = 1;
            }
        }
    }
    out
}
