//! `zhilu loadgen`: a second process that feeds a running server from a
//! recorded (or generated) OBS.csv at a steady rate and measures, for each
//! tick, the time from the moment the server accepted the request that
//! completed the tick to the moment the tick's messages (state, events)
//! arrived on the live stream.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::Value;

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Account (operator or admin).
    #[arg(long)]
    user: String,
    /// Password (or set ZHILU_PASSWORD).
    #[arg(long, env = "ZHILU_PASSWORD")]
    password: String,
    /// Detector observations to send (OBS.csv, in time order).
    #[arg(long)]
    observations: PathBuf,
    /// Rows per second.
    #[arg(long, default_value_t = 20_000)]
    rate: u32,
    /// Rows per request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Stop after this many seconds of sending.
    #[arg(long = "duration-s", default_value_t = 60)]
    duration_s: u64,
    /// Skip rows before this time (as written in the file, e.g. 2026-11-23T06:00).
    #[arg(long)]
    from: Option<String>,
}

#[derive(Default)]
struct Shared {
    /// tick (data ms) → wall instant the request holding its last row was acknowledged.
    acked: HashMap<i64, Instant>,
    /// tick → same, from when that request was sent.
    sent: HashMap<i64, Instant>,
    /// (kind, tick) → when its first message arrived.
    seen: Vec<(String, i64, Instant)>,
}

fn tick_of(ts_ms: i64, step_ms: i64) -> i64 {
    (ts_ms + step_ms - 1).div_euclid(step_ms) * step_ms
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.observations)
        .with_context(|| format!("reading {}", a.observations.display()))?;
    let mut lines = text.lines();
    let header = lines.next().context("empty observations file")?.to_string();
    let rows: Vec<&str> = lines
        .filter(|l| {
            a.from
                .as_deref()
                .is_none_or(|f| l.as_bytes() >= f.as_bytes() || !l.starts_with("20"))
        })
        .collect();
    if rows.is_empty() {
        bail!("no rows to send");
    }
    let client = reqwest::Client::builder().build()?;
    let login: Value = client
        .post(format!("{}/api/login", a.url))
        .json(&serde_json::json!({"username": a.user, "password": a.password}))
        .send()
        .await?
        .error_for_status()
        .context("login")?
        .json()
        .await?;
    let token = login["token"]
        .as_str()
        .context("no token in the login answer")?
        .to_string();
    let shared = Arc::new(Mutex::new(Shared::default()));

    // The stream listener.
    let stream = client
        .get(format!("{}/api/stream", a.url))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    let sh = shared.clone();
    let listener = tokio::spawn(async move {
        let mut body = stream.bytes_stream();
        let mut sse = crate::sse::SseReader::default();
        let mut msgs = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            let now = Instant::now();
            msgs.clear();
            sse.push(&chunk, &mut msgs);
            for (kind, d) in &msgs {
                let v: Value = serde_json::from_str(d).unwrap_or(Value::Null);
                let tick = match kind.as_str() {
                    "state" => v["ts_ms"].as_i64(),
                    "event" => v["tick_ms"].as_i64(),
                    _ => None,
                };
                if let (Some(t), Ok(mut s)) = (tick, sh.lock()) {
                    s.seen.push((kind.clone(), t, now));
                }
            }
        }
    });

    // Interval of the data: from the first row.
    let interval_ms = rows[0]
        .split(',')
        .nth(3)
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(30)
        * 1000;
    let batches: Vec<Vec<&str>> = rows.chunks(a.batch).map(|c| c.to_vec()).collect();
    let per_batch = Duration::from_secs_f64(a.batch as f64 / a.rate as f64);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.duration_s);
    let mut sent_rows = 0u64;
    let mut inflight = tokio::task::JoinSet::new();
    let mut failures = 0u64;
    for (i, b) in batches.into_iter().enumerate() {
        let due = started + per_batch * i as u32;
        if due > deadline {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let mut body = String::with_capacity(header.len() + b.len() * 48);
        body.push_str(&header);
        body.push('\n');
        for l in &b {
            body.push_str(l);
            body.push('\n');
        }
        // The last row's tick is what this request may complete.
        let last_ts = b
            .last()
            .and_then(|l| l.split(',').next())
            .and_then(|t| zhilu_io::parse_time(t.as_bytes()));
        sent_rows += b.len() as u64;
        let req = client
            .post(format!("{}/api/ingest/observations", a.url))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(body);
        let sh = shared.clone();
        let t0 = Instant::now();
        inflight.spawn(async move {
            let ok = matches!(req.send().await, Ok(r) if r.status().is_success());
            let t1 = Instant::now();
            if let (true, Some(ts)) = (ok, last_ts) {
                let tick = tick_of(ts, interval_ms);
                if let Ok(mut s) = sh.lock() {
                    s.acked.insert(tick, t1);
                    s.sent.insert(tick, t0);
                }
            }
            ok
        });
        while inflight.len() > 64 {
            if let Some(Ok(false)) = inflight.join_next().await {
                failures += 1;
            }
        }
    }
    while let Some(r) = inflight.join_next().await {
        if let Ok(false) = r {
            failures += 1;
        }
    }
    let send_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    listener.abort();

    let s = shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let report = |kind: &str| {
        let mut first: HashMap<i64, Instant> = HashMap::new();
        for (k, t, at) in &s.seen {
            if k == kind {
                first.entry(*t).or_insert(*at);
            }
        }
        let mut from_ack: Vec<f64> = Vec::new();
        let mut from_send: Vec<f64> = Vec::new();
        for (t, at) in &first {
            if let Some(ack) = s.acked.get(t) {
                // A tick closed by its last row: the message cannot precede the ack
                // by more than the answer's trip; count it as 0 then.
                from_ack.push(at.saturating_duration_since(*ack).as_secs_f64() * 1000.0);
            }
            if let Some(sent) = s.sent.get(t) {
                from_send.push(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
            }
        }
        for (name, v) in [("accepted", &mut from_ack), ("sent", &mut from_send)] {
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                println!("{kind:>6} from {name}: no samples");
                continue;
            }
            let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
            println!(
                "{kind:>6} from {name:>8}: n={:5}  p50={:6.1} ms  p99={:6.1} ms  max={:6.1} ms",
                v.len(),
                q(0.5),
                q(0.99),
                v[v.len() - 1]
            );
        }
    };
    println!(
        "sent {sent_rows} rows in {send_s:.1} s = {:.0} rows/s ({failures} failed requests)",
        sent_rows as f64 / send_s
    );
    report("state");
    report("event");
    Ok(())
}
