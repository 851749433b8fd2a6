//! `zhilu demo`: the whole platform in one command. The live centre on the
//! embedded defaults, and the built-in traffic simulator (zhilu-traffic)
//! playing the demo corridor at an accelerated clock. The simulator feeds
//! the centre through the same HTTP ingest any roadside gateway uses, and
//! it obeys the devices: what a sign or an entry *confirmed* (read from the
//! live stream) changes the simulated traffic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use zhilu_contract::ReadingKind;
use zhilu_road::RoadBook;
use zhilu_traffic::{Command, CsvFormatter, EntryState, FogLightMode, Scenario, Sim, SimConfig};

/// The demo corridor, built into the binary.
/// How often the demo prints its status line (wall time).
const STATUS_EVERY: Duration = Duration::from_secs(5);

pub const DEMO_ROAD: &str = include_str!("../../../examples/demo/ROAD.toml");

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Time acceleration: simulated seconds per real second.
    #[arg(long, default_value_t = 10.0)]
    speed: f64,
    /// Road book (default: the built-in 60-km demo corridor).
    #[arg(long)]
    road: Option<PathBuf>,
    /// Database URL (default: a fresh SQLite file in a temporary folder).
    #[arg(long)]
    database: Option<String>,
    /// Simulated local start time (HH:MM) of today.
    #[arg(long, default_value = "05:00")]
    start: String,
    /// Scenario: `morning` (fog, ice, incident, hazmat in the tunnel) or `random`.
    #[arg(long, default_value = "morning")]
    scenario: String,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Stop after this many simulated minutes (default: run until stopped).
    #[arg(long = "duration-min")]
    duration_min: Option<f64>,
    /// An operator's deadline on a proposal, in real seconds (default: half
    /// an hour of simulated time, at least 60 s); past it an unanswered
    /// safety proposal escalates (an alarm that repeats every this many
    /// seconds too).
    #[arg(long = "deadline-s")]
    deadline_s: Option<u64>,
}

fn start_ms(road: &RoadBook, hhmm: &str) -> anyhow::Result<i64> {
    let (h, m) = hhmm
        .split_once(':')
        .and_then(|(h, m)| Some((h.parse::<i64>().ok()?, m.parse::<i64>().ok()?)))
        .filter(|(h, m)| (0..24).contains(h) && (0..60).contains(m))
        .with_context(|| format!("--start {hhmm:?}: expected HH:MM"))?;
    let off = road.tz_offset_s() as i64 * 1000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let local_midnight = (now + off).div_euclid(86_400_000) * 86_400_000 - off;
    Ok(local_midnight + (h * 60 + m) * 60_000)
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.speed > 0.0 && a.speed.is_finite(),
        "--speed must be positive"
    );
    let road = match &a.road {
        Some(p) => zhilu_io::load_road(p)?,
        None => RoadBook::from_toml(DEMO_ROAD, "demo ROAD.toml (built in)")?,
    };
    let road = Arc::new(road);
    let scenario = match a.scenario.as_str() {
        "morning" => Scenario::demo_morning(&road),
        "random" => Scenario::random(&road, a.seed),
        s => anyhow::bail!("--scenario {s:?}: expected morning or random"),
    };
    let t0 = start_ms(&road, &a.start)?;
    let sim = Sim::new(&road, &scenario, SimConfig::default(), t0, a.seed)?;

    let mut cfg = zhilu_server::config::ServerConfig::default();
    cfg.server.mode = zhilu_server::config::Mode::Demo;
    // The simulation runs at its own accelerated clock, ahead of the wall
    // clock: say so, so rows are not refused as dated in the future.
    cfg.time.clock = zhilu_server::config::ClockMode::Simulated;
    let dir = std::env::temp_dir().join(format!("zhilu-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    cfg.storage.url = a
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("demo.db").display()));
    cfg.storage.archive_dir = dir.join("archive").display().to_string();
    cfg.devices.sim_confirm_ms = (2000.0 / a.speed).clamp(5.0, 2000.0) as u64;
    // Proposals wait for the demo operator for half an hour of simulated time.
    cfg.decisions.proposal_expiry_s = ((1800.0 / a.speed) as u64).max(60);
    if let Some(d) = a.deadline_s.filter(|&d| d > 0) {
        cfg.decisions.proposal_expiry_s = d;
        cfg.decisions.escalation_repeat_s = d;
    }
    zhilu_server::ensure_demo_account(&cfg).await?;
    let listen: SocketAddr = a.listen.parse().context("--listen")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let centre = zhilu_server::Centre::start(road.clone(), cfg).await?;
    println!(
        "zhilu demo on http://{addr} — {} ({} km), simulated from {} at {}× — log in as demo / demo (operator)",
        road.name(),
        road_length_km(&road),
        a.start,
        a.speed
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(zhilu_server::serve_on(centre, listener, async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = stop_rx => {}
        }
    }));
    let url = format!("http://{addr}");
    // Ctrl-C stops the simulator first, then the server, so nothing posts to
    // a closed port; the temporary database goes with the demo.
    let driven = tokio::select! {
        r = drive(&url, road, sim, a.speed, a.duration_min) => r,
        _ = tokio::signal::ctrl_c() => {
            say("demo: stopping");
            Ok(())
        }
    };
    let _ = stop_tx.send(());
    let served = server.await;
    if a.database.is_none() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("demo: could not remove {}: {e}", dir.display());
        }
    }
    served??;
    driven
}

/// A line on standard output that never panics: whoever started the demo
/// may have stopped reading (a closed pipe must not stop the centre).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// One status line: data time, open events and pending proposals.
async fn status_line(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    data_time: &str,
) -> anyhow::Result<String> {
    let count = |path: &'static str| async move {
        let v: Value = http
            .get(format!("{url}{path}"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        anyhow::Ok(v.as_array().map_or(0, Vec::len))
    };
    let events = count("/api/events?active=true").await?;
    let pending = count("/api/proposals?status=pending").await?;
    Ok(format!(
        "demo: {data_time} · {events} open events · {pending} proposals waiting"
    ))
}

fn road_length_km(road: &RoadBook) -> String {
    let (lo, hi) = road
        .detectors()
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), d| {
            (lo.min(d.stake_m), hi.max(d.stake_m))
        });
    if lo <= hi {
        format!("{:.0}", (hi - lo) / 1000.0)
    } else {
        "0".into()
    }
}

/// The simulator's loop: step at the accelerated clock, post each step's
/// readings, apply what devices confirmed.
async fn drive(
    url: &str,
    road: Arc<RoadBook>,
    mut sim: Sim,
    speed: f64,
    duration_min: Option<f64>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{url}/api/login"))
        .json(&serde_json::json!({"username": "demo", "password": "demo"}))
        .send()
        .await?
        .error_for_status()
        .context("demo login")?
        .json()
        .await?;
    let token = login["token"].as_str().context("no token")?.to_string();

    // Confirmed device states from the live stream → simulator commands.
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(1024);
    let stream = http
        .get(format!("{url}/api/stream"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    let road2 = road.clone();
    tokio::spawn(async move {
        let mut body = stream.bytes_stream();
        let mut sse = crate::sse::SseReader::default();
        let mut msgs = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            msgs.clear();
            sse.push(&chunk, &mut msgs);
            for (kind, d) in &msgs {
                if kind == "device" {
                    let v: Value = serde_json::from_str(d).unwrap_or(Value::Null);
                    if let Some(c) = device_command(&road2, &v) {
                        if cmd_tx.send(c).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });

    let started = Instant::now();
    let sim_t0 = sim.now_ms();
    let until = duration_min.map(|m| sim_t0 + (m * 60_000.0) as i64);
    let mut fmt = CsvFormatter::new(&road);
    let (mut obs, mut wx, mut pos, mut cam) =
        (String::new(), String::new(), String::new(), String::new());
    let mut line = String::new();
    let mut last_status = Instant::now();
    loop {
        if last_status.elapsed() >= STATUS_EVERY {
            last_status = Instant::now();
            line.clear();
            zhilu_traffic::format_time(sim.now_ms(), road.tz_offset_s(), &mut line);
            match status_line(&http, url, &token, &line.replace('T', " ")[..19]).await {
                Ok(s) => say(&s),
                Err(e) => eprintln!("demo: status: {e}"),
            }
        }
        while let Ok(c) = cmd_rx.try_recv() {
            if let Err(e) = sim.apply(&c) {
                eprintln!("demo: device command not applied to the simulation: {e}");
            }
        }
        // Where the accelerated clock says the simulation should be.
        let target = sim_t0 + (started.elapsed().as_secs_f64() * speed * 1000.0) as i64;
        if until.is_some_and(|u| sim.now_ms() >= u) {
            return Ok(());
        }
        if sim.now_ms() >= target {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        obs.clear();
        wx.clear();
        pos.clear();
        cam.clear();
        while sim.now_ms() < target && until.is_none_or(|u| sim.now_ms() < u) {
            let out = sim.step();
            for r in out.obs() {
                line.clear();
                fmt.obs(r, &mut line);
                obs.push_str(&line);
                obs.push('\n');
            }
            for r in out.weather() {
                line.clear();
                fmt.weather(r, &mut line);
                wx.push_str(&line);
                wx.push('\n');
            }
            for r in out.positions() {
                line.clear();
                fmt.position(r, &mut line);
                pos.push_str(&line);
                pos.push('\n');
            }
            for r in out.cameras() {
                line.clear();
                fmt.camera(r, &mut line);
                cam.push_str(&line);
                cam.push('\n');
            }
        }
        // Weather and positions first: a tick closes when its last detector row arrives.
        for (kind, body) in [
            (ReadingKind::Weather, &wx),
            (ReadingKind::Positions, &pos),
            (ReadingKind::Camera, &cam),
            (ReadingKind::Obs, &obs),
        ] {
            if body.is_empty() {
                continue;
            }
            let (header, kind) = (kind.header(), kind.as_str());
            let r = http
                .post(format!("{url}/api/ingest/{kind}"))
                .bearer_auth(&token)
                .header("content-type", "text/csv")
                .body(format!("{header}\n{body}"))
                .send()
                .await?;
            if !r.status().is_success() {
                let s = r.status();
                let t = r.text().await.unwrap_or_default();
                eprintln!("demo: {kind} not accepted ({s}): {t}");
            }
        }
    }
}

/// A confirmed device state (from the stream) as a simulator command. A
/// blank speed-limit sign has no variable limit; a blank message sign no text.
pub fn device_command(road: &RoadBook, v: &Value) -> Option<Command> {
    let device = v["device"].as_str()?.to_string();
    let s = &v["state"];
    if s["blank"] == true {
        return match road.device(&device)?.kind {
            zhilu_road::DeviceKind::Vsl => Some(Command::SpeedLimit { device, kmh: None }),
            zhilu_road::DeviceKind::Vms => Some(Command::Message {
                device,
                text: String::new(),
            }),
            _ => None,
        };
    }
    // The API's `state` is the contract's command shape; io reads it.
    let (c, direction) = zhilu_io::jsonl::parse_action_command(&s.to_string()).ok()?;
    use zhilu_core::Command as C;
    Some(match c {
        C::SpeedLimit(kmh) => Command::SpeedLimit { device, kmh },
        C::Entry { state, .. } => Command::Entry {
            // Entries are named after their interchange.
            interchange: device,
            direction: direction?,
            state: match state {
                zhilu_core::EntryState::Open => EntryState::Open,
                zhilu_core::EntryState::Metered => EntryState::Metered,
                zhilu_core::EntryState::Closed => EntryState::Closed,
            },
        },
        C::Deicing(on) => Command::Deicing { device, on },
        C::FogLights(m) => Command::FogLights {
            device,
            mode: match m {
                zhilu_core::FogLightMode::Off => FogLightMode::Off,
                zhilu_core::FogLightMode::Guidance => FogLightMode::Guidance,
                zhilu_core::FogLightMode::TailMarking => FogLightMode::TailMarking,
                zhilu_core::FogLightMode::WarningFlash => FogLightMode::WarningFlash,
            },
        },
        C::Message(text) => Command::Message { device, text },
        C::TunnelPlan(_) => return None,
    })
}
