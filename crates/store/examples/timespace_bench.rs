//! The console's time–space query (`Store::station_history`, behind
//! `GET /api/timespace`) over 3 hours of a corridor shaped like the demo's
//! (119 detector stations × 3 lanes, a reading every 20 s: 192,780 rows),
//! in 20-second buckets as the console asks for them, on a fresh SQLite
//! file and, when `ZHILU_TEST_PG_URL` is set, a fresh PostgreSQL database.
//! Before the 3 hours, 21 more hours of the same day are stored (the query
//! must not pay for them). Prints the best and the median of the runs.
//!
//! ```text
//! cargo run --release -p zhilu-store --example timespace_bench [RUNS]
//! ```

use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection};
use zhilu_store::{ObsRow, ReadingBatch, Store};

const STATIONS: i64 = 119;
const LANES: i64 = 3;
const INTERVAL_MS: i64 = 20_000;
const T0: i64 = 1_796_688_000_000; // 2026-12-08 00:00 UTC
const HOURS_BEFORE: i64 = 21;
const HOURS: i64 = 3;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(20), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!("zhilu-ts-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let r = run("sqlite", &url, runs).await;
    std::fs::remove_dir_all(&dir)?;
    r?;

    if let Ok(admin) = std::env::var("ZHILU_TEST_PG_URL") {
        let name = format!("zhilu_ts_bench_{}", std::process::id());
        let mut c = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await?;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let r = run("postgres", &format!("{base}/{name}"), runs).await;
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .execute(&mut c)
            .await?;
        r?;
    } else {
        println!("postgres: skipped (set ZHILU_TEST_PG_URL)");
    }
    Ok(())
}

async fn run(label: &str, url: &str, runs: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open_with(url, zhilu_store::OpenOptions { sync_full: false }).await?;
    let mut seq = 0i64;
    let t_load = Instant::now();
    let end = T0 + (HOURS_BEFORE + HOURS) * 3_600_000;
    let mut ts = T0;
    let mut rows = Vec::new();
    while ts < end {
        for s in 0..STATIONS {
            for lane in 1..=LANES {
                seq += 1;
                // Slower in the middle of the corridor, some lanes empty.
                let speed = 60.0 + ((s * 7 + lane * 13 + ts / INTERVAL_MS) % 60) as f64;
                rows.push(ObsRow {
                    seq,
                    ts_ms: ts,
                    detector: format!("D{:03}{}", s / 2 + 1, if s % 2 == 0 { "U" } else { "D" }),
                    lane: lane as i16,
                    interval_s: (INTERVAL_MS / 1000) as i32,
                    volume: ((s + lane + ts / INTERVAL_MS) % 9) as i32,
                    speed_kmh: (seq % 50 != 0).then_some(speed),
                    occupancy_pct: Some(speed / 10.0),
                });
            }
        }
        ts += INTERVAL_MS;
        // One batch per minute of readings, as an ingest would commit them.
        if (ts - T0) % 60_000 == 0 {
            store
                .append_readings(&ReadingBatch {
                    obs: std::mem::take(&mut rows),
                    ..ReadingBatch::default()
                })
                .await?;
        }
    }
    if !rows.is_empty() {
        store
            .append_readings(&ReadingBatch {
                obs: rows,
                ..ReadingBatch::default()
            })
            .await?;
    }
    println!(
        "{label}: {seq} obs rows stored in {:.1} s ({HOURS_BEFORE} h + {HOURS} h, {STATIONS} stations × {LANES} lanes, every {} s)",
        t_load.elapsed().as_secs_f64(),
        INTERVAL_MS / 1000
    );
    let from = end - HOURS * 3_600_000;
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let got = store.station_history(from, end, INTERVAL_MS).await?;
        times.push(t.elapsed());
        n = got.len();
    }
    times.sort();
    println!(
        "{label}: station_history 3 h in 20 s buckets ({n} station-buckets): best {:.1} ms, median {:.1} ms over {} runs",
        times[0].as_secs_f64() * 1000.0,
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times.len()
    );
    store.close().await;
    Ok(())
}
