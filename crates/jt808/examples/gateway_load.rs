//! Load benchmark of the JT/T 808 gateway over loopback, gateway and
//! terminals in separate processes so the gateway's memory is its own:
//!
//! ```text
//! ulimit -n 65536   # each side holds one socket per terminal
//! cargo run --release -p zhilu-jt808 --example gateway_load -- 10000 30
//! ```
//!
//! K terminals (default 10,000) connect over a ramp-up, register,
//! authenticate, then each reports a 0x0200 every second for S seconds
//! (default 30) along a short centre line. Prints the reply latency
//! quantiles measured by the terminals and the gateway process's resident
//! memory (sampled VmRSS peak and the kernel's VmHWM).
//!
//! Measured on the 2-core development machine (shared with other builds,
//! load average ~4.5): 10,000 terminals × 30 reports = 300,000 reports, all
//! answered with result 0; reply latency p50 0.26 ms, p90 0.69 ms, p99
//! 3.3 ms, max 17 ms; gateway VmHWM 66.5 MiB (3.2 MiB idle, ~6.5 KiB per
//! connection).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zhilu_jt808::gateway::{Gateway, GatewayConfig, GatewayEvent, MemoryRegistry};
use zhilu_jt808::sim::{FleetConfig, run_fleet};

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The gateway side: prints `ADDR host:port`, counts events, stops at end of stdin.
fn serve() -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(65_536);
        let cfg = GatewayConfig {
            max_connections: 60_000,
            ..Default::default()
        };
        let (h, _task) = Gateway::start(cfg, Arc::new(MemoryRegistry::new()), tx)
            .await
            .map_err(|e| e.to_string())?;
        println!("ADDR {}", h.local_addr());
        let _ = std::io::stdout().flush();
        let counter = tokio::spawn(async move {
            let mut positions = 0u64;
            while let Some(ev) = rx.recv().await {
                if matches!(ev, GatewayEvent::Position { .. }) {
                    positions += 1;
                }
            }
            positions
        });
        // Wait for stdin to close (the driver is done).
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin()
                .read_line(&mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                line.clear();
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        let s = h.stats();
        h.shutdown();
        drop(h);
        counter.abort();
        eprintln!(
            "gateway: accepted {} refused {} frames {} bad {} positions {}",
            s.accepted, s.refused, s.frames, s.bad_frames, s.positions
        );
        Ok(())
    })
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return serve();
    }
    let terminals: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seconds: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the gateway process: {e}"))?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no gateway stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .strip_prefix("ADDR ")
        .ok_or(format!("gateway said {line:?}"))?;
    let addr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let idle_rss = status_kb(pid, "VmRSS:").unwrap_or(0);

    let ramp = Duration::from_secs((terminals as u64 / 1000).clamp(1, 20));
    let cfg = FleetConfig {
        addr,
        terminals,
        period: Duration::from_secs(1),
        reports: seconds,
        // A 2 km stretch of centre line, one point per ~28 m (100 km/h).
        points: (0..72)
            .map(|i| (39.0 + f64::from(i) * 0.00025, 116.0 + f64::from(i) * 0.0001))
            .collect(),
        ramp_up: ramp,
        reply_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(idle_rss));
    let sampler = {
        let peak = peak.clone();
        std::thread::spawn(move || {
            while let Some(kb) = status_kb(pid, "VmRSS:") {
                peak.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let rep = rt.block_on(run_fleet(cfg));
    let elapsed = started.elapsed();
    let hwm = status_kb(pid, "VmHWM:").unwrap_or(0);
    let end_rss = status_kb(pid, "VmRSS:").unwrap_or(0);
    drop(child.stdin.take());
    let _ = child.wait();
    let _ = sampler.join();
    let q = |p| {
        rep.latency_quantile_us(p).map_or("-".to_string(), |us| {
            format!("{:.2} ms", f64::from(us) / 1000.0)
        })
    };
    println!("terminals {terminals}, {seconds} reports each, ramp-up {ramp:?}, run {elapsed:.1?}");
    println!(
        "authenticated {} reports {} ok {} errors {} ({:.0} reports/s)",
        rep.authenticated,
        rep.reports,
        rep.ok,
        rep.error_count,
        rep.reports as f64 / elapsed.as_secs_f64()
    );
    for e in &rep.errors {
        println!("  error: {e}");
    }
    println!(
        "reply latency p50 {} p90 {} p99 {} max {}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
    println!(
        "gateway RSS: idle {:.1} MiB, peak sampled {:.1} MiB, VmHWM {:.1} MiB, at end {:.1} MiB ({:.1} KiB per terminal above idle)",
        idle_rss as f64 / 1024.0,
        peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
        hwm as f64 / 1024.0,
        end_rss as f64 / 1024.0,
        (hwm.saturating_sub(idle_rss)) as f64 / terminals.max(1) as f64
    );
    Ok(())
}
