//! `zhilu` — the command line of the platform.
//!
//! Owns argument parsing and error reporting at the edge; every command is a
//! thin shell over the library crates.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zhilu_core::BrainConfig;
use zhilu_io::{ReplayPaths, load_road, replay_files};
use zhilu_traffic::bulk::{Day, DayConfig};

#[derive(Parser)]
#[command(
    name = "zhilu",
    version,
    about = "智路 zhilu — smart-expressway cloud control"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replays a recorded or simulated day (replay contract v1) as fast as the machine allows.
    Replay {
        /// The road book.
        #[arg(long)]
        road: PathBuf,
        /// Detector observations (OBS.csv).
        #[arg(long)]
        observations: PathBuf,
        /// Road-weather readings (WEATHER.csv).
        #[arg(long)]
        weather: Option<PathBuf>,
        /// Vehicle positions (POS.csv).
        #[arg(long)]
        positions: Option<PathBuf>,
        /// Camera-analytics events (CAM.csv).
        #[arg(long = "camera-events")]
        camera_events: Option<PathBuf>,
        /// Where to write the events (EVENTS.jsonl).
        #[arg(long = "events-out")]
        events_out: PathBuf,
        /// Where to write the actions (ACTIONS.jsonl).
        #[arg(long = "actions-out")]
        actions_out: PathBuf,
        /// Also write the estimated state per tick (STATE.csv) for time–space diagrams.
        #[arg(long = "state-out")]
        state_out: Option<PathBuf>,
        /// Tick length in seconds (default: the detectors' interval).
        #[arg(long = "step-s")]
        step_s: Option<u16>,
    },
    /// Generates a contract-conformant test day: ROAD.toml, OBS.csv, WEATHER.csv, POS.csv, CAM.csv, TRUTH.jsonl.
    GenDay {
        /// Output folder (created).
        #[arg(long)]
        out: PathBuf,
        /// Detector stations in total (both directions).
        #[arg(long, default_value_t = 1000)]
        stations: u32,
        /// Lanes per direction.
        #[arg(long, default_value_t = 3)]
        lanes: u8,
        /// Detector interval (s).
        #[arg(long = "interval-s", default_value_t = 20)]
        interval_s: u16,
        /// Station spacing (m).
        #[arg(long = "spacing-m", default_value_t = 1000.0)]
        spacing_m: f64,
        /// Days.
        #[arg(long, default_value_t = 1)]
        days: u32,
        /// First local hour of each day.
        #[arg(long = "from-hour", default_value_t = 0)]
        from_hour: u32,
        /// Hours per day.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// First local date.
        #[arg(long, default_value = "2026-11-23")]
        date: String,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Do not inject detector faults.
        #[arg(long = "no-faults")]
        no_faults: bool,
        /// Vehicles reporting positions.
        #[arg(long, default_value_t = 200)]
        vehicles: u32,
        /// Write only ROAD.toml and OBS.csv.
        #[arg(long = "obs-only")]
        obs_only: bool,
    },
    /// Measures a replay against a bare parse of the same file with the csv crate.
    Bench {
        /// The road book.
        #[arg(long)]
        road: PathBuf,
        /// Detector observations (OBS.csv).
        #[arg(long)]
        observations: PathBuf,
        /// Repeat each measurement this many times (best is reported).
        #[arg(long, default_value_t = 1)]
        repeat: u32,
    },
    /// Runs the live cloud-control centre (HTTP API, stream, devices) on the embedded defaults.
    Serve {
        /// The road book.
        #[arg(long)]
        road: PathBuf,
        /// Configuration file (TOML; every key optional, see docs/SERVER.md).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides the file's server.listen).
        #[arg(long)]
        listen: Option<String>,
        /// Database URL (overrides storage.url): sqlite://FILE or postgres://…
        #[arg(long)]
        database: Option<String>,
        /// Also run the JT/T 808 gateway on this address (overrides jt808.listen).
        #[arg(long = "jt808-listen")]
        jt808_listen: Option<String>,
    },
    /// JT/T 808 tools.
    Jt808 {
        #[command(subcommand)]
        command: Jt808Cmd,
    },
    /// Simulated JT/T 808 terminals: each registers, authenticates and reports along the road.
    Jt808Sim {
        /// The gateway.
        #[arg(long, default_value = "127.0.0.1:6808")]
        addr: String,
        /// The road book whose centre line the terminals drive along.
        #[arg(long)]
        road: PathBuf,
        /// How many terminals.
        #[arg(long, default_value_t = 10)]
        terminals: usize,
        /// Seconds between reports of one terminal.
        #[arg(long = "period-s", default_value_t = 1.0)]
        period_s: f64,
        /// Reports per terminal.
        #[arg(long, default_value_t = 60)]
        reports: u32,
        /// Protocol edition: 2013 or 2019.
        #[arg(long, default_value = "2019")]
        version: String,
    },
    /// Manages accounts.
    User {
        #[command(subcommand)]
        command: UserCmd,
    },
    /// Sends a recorded day to a running server at a steady rate and measures the
    /// latency from an accepted observation to the resulting message on the live stream.
    Loadgen(loadgen::Args),
    /// The whole platform in one command: the live centre on the embedded defaults with the
    /// built-in simulator playing the 60-km demo corridor (fog, ice, an incident, a hazmat truck).
    Demo(demo::Args),
    /// Trains the forecaster on the first rows of a wide speed CSV and scores it on the rest
    /// (MAE / RMSE / MAPE at 15, 30 and 60 min beside persistence and the historical average).
    ForecastEval(forecast_eval::Args),
    /// Writes a simulated day of a road book as replay-contract files (OBS, WEATHER, POS, CAM, TRUTH).
    Sim {
        /// The road book (default: the built-in demo corridor, also written to DIR).
        #[arg(long)]
        road: Option<PathBuf>,
        /// Output folder (created).
        #[arg(long)]
        out: PathBuf,
        /// Local date of the day (YYYY-MM-DD).
        #[arg(long, default_value = "2026-11-23")]
        date: String,
        /// First local hour.
        #[arg(long = "from-hour", default_value_t = 0)]
        from_hour: u32,
        /// Hours to simulate.
        #[arg(long, default_value_t = 24.0)]
        hours: f64,
        /// Scenario: `morning` or `random`.
        #[arg(long, default_value = "morning")]
        scenario: String,
        /// Random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum Jt808Cmd {
    /// Prints a frame as JSON (header, body fields, alarm and status bits, items) or a precise error.
    Decode {
        /// The frame in hex (spaces allowed, with or without the 7e delimiters).
        #[arg(required = true, num_args = 1..)]
        hex: Vec<String>,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Creates an account; the password is read from stdin (one line).
    Add {
        /// User name.
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
        /// Configuration file (for the database).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides storage.url).
        #[arg(long)]
        database: Option<String>,
    },
}

fn server_config(
    path: Option<&std::path::Path>,
    database: Option<String>,
) -> anyhow::Result<zhilu_server::config::ServerConfig> {
    let mut cfg = match path {
        Some(p) => zhilu_server::config::ServerConfig::load(p)?,
        None => zhilu_server::config::ServerConfig::default(),
    };
    if let Some(d) = database {
        cfg.storage.url = d;
    }
    Ok(cfg)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zhilu: error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The reason with its context chain on one line, each cause once: a
/// cause whose text its parent already ends with (an error that prints its
/// source, like `path: No such file…`) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Logs to standard error at `default_level` (or `RUST_LOG`), with colour
/// codes only when standard error is a terminal (never into a log file).
fn init_logging(default_level: &str) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Checks that an input file named on the command line can be read, so a
/// wrong path is reported with the argument that named it.
fn input_file(flag: &str, path: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => anyhow::bail!("{flag} {}: not a file", path.display()),
        Err(e) => {
            let reason = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            anyhow::bail!("{flag} {}: {reason}", path.display())
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Replay {
            road,
            observations,
            weather,
            positions,
            camera_events,
            events_out,
            actions_out,
            state_out,
            step_s,
        } => {
            input_file("--road", &road)?;
            input_file("--observations", &observations)?;
            for (flag, p) in [
                ("--weather", &weather),
                ("--positions", &positions),
                ("--camera-events", &camera_events),
            ] {
                if let Some(p) = p {
                    input_file(flag, p)?;
                }
            }
            let paths = ReplayPaths {
                road,
                observations,
                weather,
                positions,
                camera_events,
                events_out,
                actions_out,
                state_out,
            };
            let cfg = BrainConfig {
                step_s,
                ..BrainConfig::default()
            };
            let summary = replay_files(&paths, cfg)?;
            eprintln!("{summary}");
            Ok(())
        }
        Cmd::GenDay {
            out,
            stations,
            lanes,
            interval_s,
            spacing_m,
            days,
            from_hour,
            hours,
            date,
            seed,
            no_faults,
            vehicles,
            obs_only,
        } => {
            let cfg = DayConfig {
                stations,
                lanes,
                interval_s,
                spacing_m,
                days,
                from_hour,
                hours,
                date,
                seed,
                faults: !no_faults,
                vehicles,
            };
            gen_day(&out, cfg, obs_only)
        }
        Cmd::Bench {
            road,
            observations,
            repeat,
        } => {
            input_file("--road", &road)?;
            input_file("--observations", &observations)?;
            bench::run(&road, &observations, repeat)
        }
        Cmd::Serve {
            road,
            config,
            listen,
            database,
            jt808_listen,
        } => {
            input_file("--road", &road)?;
            if let Some(c) = &config {
                input_file("--config", c)?;
            }
            let mut cfg = server_config(config.as_deref(), database)?;
            if let Some(l) = listen {
                cfg.server.listen = l;
            }
            if let Some(l) = jt808_listen {
                cfg.jt808.listen = l;
            }
            let road = std::sync::Arc::new(load_road(&road)?);
            init_logging("info");
            runtime()?.block_on(zhilu_server::serve(road, cfg))
        }
        Cmd::User {
            command:
                UserCmd::Add {
                    name,
                    role,
                    config,
                    database,
                },
        } => {
            let cfg = server_config(config.as_deref(), database)?;
            let role = zhilu_server::auth::Role::parse(&role)
                .with_context(|| format!("--role {role:?}: expected admin, operator or viewer"))?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']);
            runtime()?.block_on(zhilu_server::add_user(&cfg, &name, role, password))?;
            eprintln!("user {name} ({}) created", role.as_str());
            Ok(())
        }
        Cmd::Loadgen(args) => runtime()?.block_on(loadgen::run(args)),
        Cmd::ForecastEval(a) => forecast_eval::run(a),
        Cmd::Jt808 {
            command: Jt808Cmd::Decode { hex },
        } => {
            let v = zhilu_jt808::frame_to_json(&hex.join(" "))
                .map_err(|e| anyhow::anyhow!("not a JT/T 808 frame: {e}"))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Cmd::Jt808Sim {
            addr,
            road,
            terminals,
            period_s,
            reports,
            version,
        } => {
            input_file("--road", &road)?;
            let road = load_road(&road)?;
            let addr: std::net::SocketAddr = addr.parse().context("--addr")?;
            let version = match version.as_str() {
                "2013" => zhilu_jt808::Version::V2013,
                "2019" => zhilu_jt808::Version::V2019_1,
                v => anyhow::bail!("--version {v:?}: expected 2013 or 2019"),
            };
            anyhow::ensure!(period_s > 0.0, "--period-s must be positive");
            let g = road.geometry();
            let n = 200;
            let points = (0..=n)
                .map(|i| {
                    let stake = g.start_m() + (g.end_m() - g.start_m()) * i as f64 / n as f64;
                    let (lon, lat) = g.lonlat(stake);
                    (lat, lon)
                })
                .collect();
            let cfg = zhilu_jt808::sim::FleetConfig {
                addr,
                terminals,
                period: std::time::Duration::from_secs_f64(period_s),
                reports,
                points,
                version,
                ..zhilu_jt808::sim::FleetConfig::default()
            };
            let r = runtime()?.block_on(zhilu_jt808::sim::run_fleet(cfg));
            let q = |p: f64| {
                r.latency_quantile_us(p)
                    .map_or("-".into(), |u| format!("{:.2} ms", u as f64 / 1000.0))
            };
            println!(
                "jt808-sim: {} of {terminals} terminals authenticated, {} reports, {} answered ok; reply latency p50 {} p99 {}; {} errors",
                r.authenticated,
                r.reports,
                r.ok,
                q(0.5),
                q(0.99),
                r.error_count
            );
            for e in &r.errors {
                println!("  {e}");
            }
            Ok(())
        }
        Cmd::Demo(args) => {
            init_logging("warn");
            runtime()?.block_on(demo::run(args))
        }
        Cmd::Sim {
            road,
            out,
            date,
            from_hour,
            hours,
            scenario,
            seed,
        } => {
            if let Some(r) = &road {
                input_file("--road", r)?;
            }
            sim_day(road, &out, &date, from_hour, hours, &scenario, seed)
        }
    }
}

fn sim_day(
    road: Option<PathBuf>,
    out: &std::path::Path,
    date: &str,
    from_hour: u32,
    hours: f64,
    scenario: &str,
    seed: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let road = match road {
        Some(p) => {
            let r = load_road(&p)?;
            std::fs::copy(&p, out.join("ROAD.toml"))
                .with_context(|| format!("copying {} to {}", p.display(), out.display()))?;
            r
        }
        None => {
            write_file(&out.join("ROAD.toml"), |w| {
                w.write_all(demo::DEMO_ROAD.as_bytes())
            })?;
            zhilu_road::RoadBook::from_toml(demo::DEMO_ROAD, "demo ROAD.toml (built in)")?
        }
    };
    let d = jiff::civil::Date::strptime("%Y-%m-%d", date)
        .with_context(|| format!("--date {date:?}: expected YYYY-MM-DD"))?;
    anyhow::ensure!(from_hour < 24, "--from-hour {from_hour}: expected 0–23");
    let from_ms = zhilu_traffic::local_time_ms(
        d.year() as i32,
        d.month() as u32,
        d.day() as u32,
        from_hour,
        0,
        road.tz_offset_s(),
    );
    let scenario = match scenario {
        "morning" => zhilu_traffic::Scenario::demo_morning(&road),
        "random" => zhilu_traffic::Scenario::random(&road, seed),
        s => anyhow::bail!("--scenario {s:?}: expected morning or random"),
    };
    let s = zhilu_traffic::write_day(&road, &scenario, from_ms, hours, seed, out)?;
    eprintln!(
        "sim: wrote {} with {} observation rows, {} weather rows, {} position rows, {} camera rows and {} truth records in {:.1} s",
        out.display(),
        s.obs_rows,
        s.weather_rows,
        s.position_rows,
        s.camera_rows,
        s.truth_records,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn create(path: &std::path::Path) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::with_capacity(
        1 << 20,
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ))
}

/// Creates `path`, lets `body` write it, flushes; errors name the file.
fn write_file<T>(
    path: &std::path::Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>,
) -> anyhow::Result<T> {
    let mut w = create(path)?;
    let value = body(&mut w).and_then(|v| w.flush().map(|()| v));
    value.with_context(|| format!("writing {}", path.display()))
}

fn gen_day(out: &std::path::Path, cfg: DayConfig, obs_only: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let day = Day::new(cfg).map_err(anyhow::Error::msg)?;
    let road_path = out.join("ROAD.toml");
    write_file(&road_path, |w| day.write_road(w))?;
    // Check what we wrote against the road-book rules.
    let road = load_road(&road_path).context("the generated road book does not validate")?;
    let rows = write_file(&out.join("OBS.csv"), |w| day.write_obs(w))?;
    let mut extra = String::new();
    let mut truth_lines: Vec<String> = Vec::new();
    if !obs_only {
        let n = write_file(&out.join("WEATHER.csv"), |w| day.write_weather(w))?;
        let (p, vehicle_truth) = write_file(&out.join("POS.csv"), |w| {
            day.write_positions(w, road.geometry())
        })?;
        truth_lines = vehicle_truth;
        let c = write_file(&out.join("CAM.csv"), |w| day.write_cameras(w))?;
        extra = format!(", {n} weather rows, {p} position rows, {c} camera rows");
    }
    write_file(&out.join("TRUTH.jsonl"), |w| {
        day.write_truth(w)?;
        truth_lines.iter().try_for_each(|l| writeln!(w, "{l}"))
    })?;
    eprintln!(
        "gen-day: wrote {} with {} stations, {rows} observation rows{extra} and {} injected faults in {:.1} s",
        out.display(),
        day.stations.len(),
        day.faults.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

mod bench;
mod demo;
mod forecast_eval;
mod loadgen;
mod sse;
