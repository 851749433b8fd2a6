//! `zhilu serve`: the live cloud-control centre (云控中心). It owns the
//! running system around the pure domain core — HTTP and MQTT ingest with
//! back-pressure, the group-commit writer (a reading is acknowledged only
//! once it is in the database), the engine task that runs the brain and
//! writes what it decides, operator approval, device dispatch, accounts,
//! the live stream, metrics and the OpenAPI document. It must not make
//! domain decisions itself: detection and plans stay in `zhilu-core`.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod convert;
pub mod engine;
pub mod flow;
pub mod forecast;
pub mod health;
pub mod ingest;
pub mod jt808;
pub mod net;
pub mod records;
pub mod roadjson;
pub mod signs;
pub mod stream;
pub mod ticket;
pub mod vehicles;
pub mod views;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::{mpsc, oneshot};
use zhilu_devices::{DeviceAdapter, DeviceReport};
use zhilu_road::RoadBook;
use zhilu_store::{AuditEntry, ReadingBatch, Store, UserRow};

use crate::config::{AdapterKind, ServerConfig};
use crate::engine::{Engine, Msg, Snapshot};
use crate::stream::Hub;

/// Wall clock, epoch ms: what every part of the server means by "now" on
/// the wall (data time is the engine's ticks).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub use config::ConfigError;

/// Whether 500 answers carry the error text (development mode only).
pub(crate) static VERBOSE_ERRORS: OnceLock<bool> = OnceLock::new();

/// One ingest request waiting for the writer.
pub struct WriteReq {
    /// Its rows (seq not yet assigned).
    pub batch: ReadingBatch,
    /// What was stored, or why not.
    pub reply: oneshot::Sender<Result<Stored, String>>,
}

/// An ingest request's rows, stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The first and last seq given to its rows.
    pub seq: (i64, i64),
    /// Of its rows, those already stored before (a re-sent or replayed
    /// reading): kept once, not stored or processed again.
    pub duplicates: u64,
}

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    /// Database.
    pub store: Store,
    /// Road book.
    pub road: Arc<RoadBook>,
    /// Configuration.
    pub cfg: Arc<ServerConfig>,
    /// To the writer (ingest).
    pub writer: mpsc::Sender<WriteReq>,
    /// To the engine (decisions).
    pub engine: mpsc::Sender<Msg>,
    /// Live stream.
    pub hub: Hub,
    /// Latest state for reads.
    pub snapshot: Arc<RwLock<Snapshot>>,
    /// Failed-login limiter.
    pub limiter: Arc<auth::Limiter>,
    /// Sources whose clocks are off.
    pub clocks: Arc<clock::SourceClocks>,
    /// What health reports.
    pub health: Arc<health::HealthState>,
    /// Ingest bodies in flight (bytes).
    pub inflight: Arc<tokio::sync::Semaphore>,
    /// Bumped whenever sessions or accounts change: open streams check
    /// their session again.
    pub sessions: Arc<tokio::sync::watch::Sender<u64>>,
    /// The device broker, when devices are on MQTT.
    pub broker: Option<Arc<zhilu_devices::MqttAdapter>>,
    /// Connection limits in force.
    pub limits: net::Limits,
    /// Stream tickets not yet used.
    pub tickets: Arc<ticket::Tickets>,
    /// Where every vehicle is (filled by the engine).
    pub vehicles: Arc<RwLock<vehicles::VehicleBoard>>,
    /// The latest forecasts (filled by the forecast task).
    pub forecast: Arc<RwLock<Option<forecast::ForecastSnapshot>>>,
    /// Metrics.
    pub prom: PrometheusHandle,
}

fn prometheus() -> PrometheusHandle {
    static H: OnceLock<PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Several servers in one test process share the first recorder.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
    .clone()
}

/// A running centre (without its HTTP listener): the state for the router
/// and the background tasks.
pub struct Centre {
    /// Handler state.
    pub state: AppState,
    /// Rows replayed to bring the brain back.
    pub resumed_rows: u64,
    /// Where the JT/T 808 gateway listens, when it is on.
    pub jt808_addr: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Centre {
    /// Opens the store, brings the brain back, starts writer, engine,
    /// devices, MQTT ingest and retention.
    pub async fn start(road: Arc<RoadBook>, cfg: ServerConfig) -> anyhow::Result<Centre> {
        let store = Store::open_with(
            &cfg.storage.url,
            zhilu_store::OpenOptions {
                sync_full: cfg.storage.sync == config::SyncMode::Full,
            },
        )
        .await
        .with_context(|| format!("opening the database {}", cfg.storage.url))?;
        if cfg.server.mode != config::Mode::Demo {
            disable_demo_account(&store).await?;
        }
        let _ = VERBOSE_ERRORS.set(cfg.server.mode == config::Mode::Development);
        let hub = Hub::new(4096);
        let snapshot = Arc::new(RwLock::new(Snapshot::default()));
        let (engine_tx, engine_rx) = mpsc::channel::<Msg>(64);
        let (report_tx, mut report_rx) = mpsc::channel::<DeviceReport>(1024);
        let mut tasks = Vec::new();
        let mut broker = None;

        let devices = engine::fleet::commandable_devices(&road);
        let adapter: Option<Arc<dyn DeviceAdapter>> = match cfg.devices.adapter {
            AdapterKind::None => None,
            AdapterKind::Sim => {
                // Simulated devices keep what they showed before a restart,
                // as real ones do.
                let initial_states = store
                    .device_states()
                    .await?
                    .into_iter()
                    .filter_map(|d| {
                        let s = zhilu_devices::DeviceState::from_json_str(&d.state_json).ok()?;
                        Some((d.device, s))
                    })
                    .collect();
                let opts = zhilu_devices::SimOpts {
                    confirm_delay: Duration::from_millis(cfg.devices.sim_confirm_ms),
                    initial_states,
                    ..zhilu_devices::SimOpts::default()
                };
                let (a, h) =
                    zhilu_devices::SimAdapter::start(opts, devices.clone(), report_tx.clone())
                        .context("starting the simulated devices")?;
                tasks.push(h);
                Some(Arc::new(a))
            }
            AdapterKind::Mqtt => {
                let m = &cfg.mqtt;
                let mc = zhilu_devices::MqttConfig {
                    host: m.host.clone(),
                    port: m.port,
                    client_id: m.client_id.clone(),
                    prefix: m.prefix.clone(),
                    ack_timeout: Duration::from_secs_f64(m.ack_timeout_s),
                    max_retries: m.max_retries,
                    heartbeat: Duration::from_secs_f64(m.heartbeat_s),
                    device_timeout: Duration::from_secs_f64(m.device_timeout_s),
                };
                let (a, h) =
                    zhilu_devices::MqttAdapter::start(mc, devices.clone(), report_tx.clone())
                        .context("starting the MQTT device adapter")?;
                tasks.push(h);
                let a = Arc::new(a);
                broker = Some(a.clone());
                Some(a)
            }
        };

        let mut engine = Engine::new(
            road.clone(),
            cfg.clone(),
            store.clone(),
            hub.clone(),
            adapter,
            snapshot.clone(),
        );
        let clocks = Arc::new(clock::SourceClocks::new(cfg.time.recover_s));
        let health = Arc::new(health::HealthState::default());
        engine.watch(clocks.clone(), health.clone());
        let resumed_rows = engine
            .resume()
            .await
            .context("bringing the brain back from the database")?;
        let next_seq = store.max_ids().await?.reading_seq + 1;
        let vehicle_board = engine.vehicles();
        let ticks = engine.ticks();
        tasks.push(tokio::spawn(engine.run(engine_rx)));
        {
            let tx = engine_tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(r) = report_rx.recv().await {
                    if tx.send(Msg::Device(r)).await.is_err() {
                        break;
                    }
                }
            }));
        }
        let (writer_tx, writer_rx) = mpsc::channel::<WriteReq>(cfg.ingest.queue_requests);
        tasks.push(tokio::spawn(writer(
            store.clone(),
            writer_rx,
            engine_tx.clone(),
            next_seq,
            cfg.ingest.max_rows_per_commit,
            health.clone(),
        )));
        let limits = net::limits(&cfg, net::fd_limit());
        let cfg = Arc::new(cfg);
        let state = AppState {
            store: store.clone(),
            road: road.clone(),
            cfg: cfg.clone(),
            writer: writer_tx,
            engine: engine_tx,
            hub,
            snapshot,
            limiter: Arc::new(auth::Limiter::new(
                cfg.auth.login_failures_per_min,
                cfg.auth.login_delay_max_s,
            )),
            clocks,
            health,
            inflight: Arc::new(tokio::sync::Semaphore::new(cfg.ingest.max_inflight_bytes)),
            sessions: Arc::new(tokio::sync::watch::channel(0).0),
            broker,
            limits,
            tickets: Arc::default(),
            vehicles: vehicle_board,
            forecast: Arc::new(RwLock::new(None)),
            prom: prometheus(),
        };
        if cfg.mqtt.ingest {
            tasks.push(mqtt_ingest(&state).await?);
        }
        if cfg.forecast.enabled {
            tasks.push(tokio::spawn(forecast::run(
                store.clone(),
                road.clone(),
                ticks,
                state.forecast.clone(),
                cfg.forecast.clone(),
            )));
        }
        tasks.push(tokio::spawn(retention(store, cfg.clone())));
        tasks.push(tokio::spawn(health::watch(state.clone())));
        tasks.push(tokio::spawn(accounts::watch(state.clone())));
        let mut jt808_addr = None;
        if !cfg.jt808.listen.is_empty() {
            let listen: SocketAddr = cfg.jt808.listen.parse().context("jt808.listen")?;
            let (addr, t) = jt808::start(&state, listen)
                .await
                .context("starting the JT/T 808 gateway")?;
            tasks.extend(t);
            jt808_addr = Some(addr);
        }
        Ok(Centre {
            state,
            resumed_rows,
            jt808_addr,
            tasks,
        })
    }

    /// The HTTP router.
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Stops the background tasks.
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Runs the centre on `cfg.server.listen` until Ctrl-C / SIGTERM.
pub async fn serve(road: Arc<RoadBook>, cfg: ServerConfig) -> anyhow::Result<()> {
    let listen: SocketAddr = cfg.server.listen.parse().context("server.listen")?;
    if let Some(n) = net::raise_fd_limit() {
        tracing::info!(message = "File-descriptor limit.", limit = n);
    }
    let centre = Centre::start(road, cfg).await?;
    if centre.state.store.user_count().await? == 0 {
        tracing::warn!(
            message = "No accounts yet: create the first admin with `zhilu user add NAME --role admin` (password from stdin)."
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(message = "Serving.", %listen, resumed_rows = centre.resumed_rows, database = centre.state.store.backend());
    println!(
        "zhilu serving on http://{} (resumed {} stored rows){}",
        listener.local_addr()?,
        centre.resumed_rows,
        centre
            .jt808_addr
            .map_or(String::new(), |a| format!("; JT/T 808 gateway on {a}"))
    );
    serve_on(centre, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Group commit: takes every waiting request (up to `max_rows`), gives the
/// rows their ingest sequence numbers, writes them in one transaction,
/// hands them to the engine, and only then answers each request.
async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<WriteReq>,
    engine: mpsc::Sender<Msg>,
    mut next_seq: i64,
    max_rows: usize,
    health: Arc<health::HealthState>,
) {
    while let Some(first) = rx.recv().await {
        let mut reqs = vec![first];
        let mut rows = reqs[0].batch.len();
        while rows < max_rows {
            match rx.try_recv() {
                Ok(r) => {
                    rows += r.batch.len();
                    reqs.push(r);
                }
                Err(_) => break,
            }
        }
        let mut merged = ReadingBatch::default();
        let mut ranges = Vec::with_capacity(reqs.len());
        let mut replies = Vec::with_capacity(reqs.len());
        for r in reqs {
            let first = next_seq;
            let WriteReq { mut batch, reply } = r;
            for o in &mut batch.obs {
                o.seq = next_seq;
                next_seq += 1;
            }
            for o in &mut batch.weather {
                o.seq = next_seq;
                next_seq += 1;
            }
            for o in &mut batch.positions {
                o.seq = next_seq;
                next_seq += 1;
            }
            for o in &mut batch.camera {
                o.seq = next_seq;
                next_seq += 1;
            }
            ranges.push((first, next_seq - 1));
            replies.push(reply);
            merged.obs.append(&mut batch.obs);
            merged.weather.append(&mut batch.weather);
            merged.positions.append(&mut batch.positions);
            merged.camera.append(&mut batch.camera);
        }
        let started = std::time::Instant::now();
        let mut result = store.append_readings(&merged).await;
        if result.is_err() {
            // One retry (a busy database), then the requests are told.
            tokio::time::sleep(Duration::from_millis(100)).await;
            result = store.append_readings(&merged).await;
        }
        metrics::histogram!("zhilu_ingest_commit_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(appended) => {
                health.commit_ok(wall_ms());
                let dups = appended.duplicates;
                if !dups.is_empty() {
                    // Stored once: the copies are neither stored nor fed again.
                    metrics::counter!("zhilu_ingest_duplicates_total").increment(dups.len() as u64);
                    drop_seqs(&mut merged, &dups);
                }
                if !merged.is_empty() && engine.send(Msg::Readings(Arc::new(merged))).await.is_err()
                {
                    tracing::error!(
                        message =
                            "Engine stopped; readings stored but not processed until restart."
                    );
                }
                for (reply, range) in replies.into_iter().zip(ranges) {
                    let lo = dups.partition_point(|s| *s < range.0);
                    let hi = dups.partition_point(|s| *s <= range.1);
                    let _ = reply.send(Ok(Stored {
                        seq: range,
                        duplicates: (hi - lo) as u64,
                    }));
                }
            }
            Err(e) => {
                tracing::error!(message = "Storing readings failed.", error = %e);
                health.commit_failed(wall_ms(), &e.to_string());
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// Removes the rows whose seq is in `seqs` (ascending) from `b`.
fn drop_seqs(b: &mut ReadingBatch, seqs: &[i64]) {
    let keep = |s: i64| seqs.binary_search(&s).is_err();
    b.obs.retain(|r| keep(r.seq));
    b.weather.retain(|r| keep(r.seq));
    b.positions.retain(|r| keep(r.seq));
    b.camera.retain(|r| keep(r.seq));
}

async fn mqtt_ingest(st: &AppState) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let m = &st.cfg.mqtt;
    // One message at a time: the broker keeps what is not yet stored.
    let (tx, mut rx) = mpsc::channel::<zhilu_devices::IngestMessage>(1);
    let cfg = zhilu_devices::IngestConfig {
        host: m.host.clone(),
        port: m.port,
        client_id: format!("{}-ingest", m.client_id),
        prefix: m.prefix.clone(),
        ..zhilu_devices::IngestConfig::default()
    };
    let h = zhilu_devices::MqttIngest::start(cfg, tx).context("starting MQTT ingest")?;
    let st = st.clone();
    Ok(tokio::spawn(async move {
        let _keep = h;
        while let Some(msg) = rx.recv().await {
            let kind = match msg.kind {
                zhilu_devices::ReadingKind::Obs => ingest::ReadingKind::Obs,
                zhilu_devices::ReadingKind::Weather => ingest::ReadingKind::Weather,
                zhilu_devices::ReadingKind::Positions => ingest::ReadingKind::Positions,
                zhilu_devices::ReadingKind::Camera => ingest::ReadingKind::Camera,
            };
            let format = ingest::Format::sniff(&msg.payload);
            let body: &[u8] = &msg.payload;
            // CSV rows may come without a header line.
            let with_header;
            let body = if format == ingest::Format::Csv && !body.starts_with(b"time,") {
                with_header = [kind.columns().join(",").as_bytes(), b"\n", body].concat();
                &with_header[..]
            } else {
                body
            };
            match ingest::parse(kind, format, body, &st.road) {
                Ok(mut p) => {
                    let now = wall_ms();
                    let refused =
                        clock::screen(&mut p.batch, kind.as_str(), now, &st.cfg.time, &st.clocks);
                    if !refused.is_empty() {
                        tracing::warn!(
                            message = "MQTT readings refused for their time.",
                            topic = msg.topic,
                            refused = refused.len()
                        );
                        if let Err(e) = st.store.quarantine(&refused.rows, QUARANTINE_KEEP).await {
                            tracing::error!(message = "Quarantine not stored.", error = %e);
                        }
                    }
                    if p.rejected > 0 {
                        tracing::warn!(message = "MQTT readings rejected.", topic = msg.topic, rejected = p.rejected, problems = ?p.problems);
                    }
                    if !p.batch.is_empty() && !store_mqtt_batch(&st, &msg.topic, p.batch).await {
                        break;
                    }
                    msg.done();
                }
                Err(e) => {
                    tracing::warn!(message = "MQTT payload unreadable.", topic = msg.topic, error = %e);
                    msg.done();
                }
            }
        }
    }))
}

/// Stores one MQTT message's rows, however long it takes: while the disk
/// is below its watermark or a commit fails, the message waits (its
/// broker acknowledgement with it) and is tried again. `false` when the
/// writer has stopped.
async fn store_mqtt_batch(st: &AppState, topic: &str, batch: ReadingBatch) -> bool {
    let mut pause = Duration::from_millis(200);
    let mut told = false;
    loop {
        if let Err(free_mb) = health::disk_room(st) {
            if !told {
                tracing::warn!(
                    message = "MQTT ingest paused: disk nearly full.",
                    free_mb,
                    min_free_mb = st.cfg.storage.min_free_mb
                );
                told = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let (rtx, rrx) = oneshot::channel();
        let req = WriteReq {
            batch: batch.clone(),
            reply: rtx,
        };
        if st.writer.send(req).await.is_err() {
            return false;
        }
        match rrx.await {
            Ok(Ok(_)) => return true,
            Ok(Err(e)) => {
                tracing::error!(
                    message = "MQTT readings not stored yet; trying again.",
                    topic,
                    error = e,
                    retry_in_ms = pause.as_millis() as u64
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(_) => return false,
        }
    }
}

async fn retention(store: Store, cfg: Arc<ServerConfig>) {
    let every = Duration::from_secs(cfg.storage.retention_every_min.max(1) * 60);
    let mut t = tokio::time::interval(every);
    loop {
        t.tick().await;
        // The cutoff is in data time: the newest stored tick minus the age.
        let Ok(Some(last)) = store.get_meta("last_tick_ms").await else {
            continue;
        };
        let Ok(last) = last.parse::<i64>() else {
            continue;
        };
        // Never a data clock ahead of the wall clock: a poisoned
        // `last_tick_ms` must not delete today's readings.
        let cutoff = retention_cutoff(last, wall_ms(), cfg.storage.raw_retention_days);
        let dir = (!cfg.storage.archive_dir.is_empty())
            .then(|| std::path::PathBuf::from(&cfg.storage.archive_dir));
        if let Some(d) = &dir
            && let Err(e) = std::fs::create_dir_all(d)
        {
            tracing::error!(message = "Archive folder unusable.", dir = %d.display(), error = %e);
            continue;
        }
        match store.apply_retention(cutoff, dir.as_deref()).await {
            Ok(r) => tracing::info!(
                message = "Retention pass.",
                obs = r.obs_rolled_up,
                weather = r.weather_rolled_up,
                positions = r.positions_archived,
                camera = r.camera_archived
            ),
            Err(e) => tracing::error!(message = "Retention pass failed.", error = %e),
        }
    }
}

/// Quarantined rows kept at most.
pub const QUARANTINE_KEEP: i64 = 100_000;

/// Raw readings older than this (epoch ms) may go: the age counted back
/// from the last tick's data time, but never from later than the wall
/// clock.
pub fn retention_cutoff(last_tick_ms: i64, wall_ms: i64, days: f64) -> i64 {
    last_tick_ms.min(wall_ms) - (days * 86_400_000.0) as i64
}

/// The demo account exists for `zhilu demo` only: a demo database reused
/// by `zhilu serve` must not let `demo` / `demo` in, so it is disabled
/// (and audited) when found.
async fn disable_demo_account(store: &Store) -> anyhow::Result<()> {
    let Some(u) = store.user("demo").await? else {
        return Ok(());
    };
    if u.disabled {
        return Ok(());
    }
    let h = u.pw_hash.clone();
    let is_demo = tokio::task::spawn_blocking(move || auth::verify_password("demo", &h)).await?;
    if is_demo {
        store.set_user_disabled("demo", true).await?;
        store
            .append_audit(&AuditEntry {
                seq: 0,
                wall_ms: wall_ms(),
                actor: "system".into(),
                action: "user.disable".into(),
                target: "demo".into(),
                detail: serde_json::json!({"reason": "the demo account is for demo mode only"})
                    .to_string(),
            })
            .await?;
        tracing::warn!(message = "The demo account was disabled: this is not demo mode.");
    }
    Ok(())
}

/// The demo account (`demo` / `demo`, operator) — only in demo mode, never
/// in production: the short password is refused everywhere else.
pub async fn ensure_demo_account(cfg: &ServerConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        cfg.server.mode == config::Mode::Demo,
        "the demo account exists only in demo mode"
    );
    let store = Store::open(&cfg.storage.url)
        .await
        .with_context(|| format!("opening the database {}", cfg.storage.url))?;
    if let Some(u) = store.user("demo").await? {
        if u.disabled {
            store.set_user_disabled("demo", false).await?;
        }
    } else {
        let h = auth::hash_password("demo").map_err(anyhow::Error::msg)?;
        store
            .create_user(&UserRow {
                name: "demo".into(),
                role: auth::Role::Operator.as_str().into(),
                pw_hash: h,
                created_wall_ms: wall_ms(),
                disabled: false,
            })
            .await?;
    }
    store.close().await;
    Ok(())
}

/// Serves a started centre on a bound listener until `shutdown` resolves.
pub async fn serve_on(
    centre: Centre,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = centre.router();
    let header_timeout = Duration::from_secs_f64(centre.state.cfg.server.header_timeout_s);
    net::serve_http(listener, app, centre.state.limits, header_timeout, shutdown).await;
    centre.stop();
    Ok(())
}

/// `zhilu user add`: creates an account (the first admin comes from here).
pub async fn add_user(
    cfg: &ServerConfig,
    name: &str,
    role: auth::Role,
    password: &str,
) -> anyhow::Result<()> {
    auth::check_name(name).map_err(anyhow::Error::msg)?;
    auth::check_password_for(password, name).map_err(anyhow::Error::msg)?;
    let store = Store::open(&cfg.storage.url)
        .await
        .with_context(|| format!("opening the database {}", cfg.storage.url))?;
    let h = auth::hash_password(password).map_err(anyhow::Error::msg)?;
    let now = wall_ms();
    store
        .create_user(&UserRow {
            name: name.into(),
            role: role.as_str().into(),
            pw_hash: h,
            created_wall_ms: now,
            disabled: false,
        })
        .await?;
    store
        .append_audit(&AuditEntry {
            seq: 0,
            wall_ms: now,
            actor: "cli".into(),
            action: "user.add".into(),
            target: name.into(),
            detail: serde_json::json!({"role": role.as_str()}).to_string(),
        })
        .await?;
    store.close().await;
    Ok(())
}
