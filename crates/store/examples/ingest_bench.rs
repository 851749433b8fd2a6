//! Ingest throughput of `Store::append_readings`: 1,000,000 detector rows in
//! batches of 2,000 (one transaction each), into a fresh SQLite file and,
//! when `ZHILU_TEST_PG_URL` is set, a fresh PostgreSQL database.
//!
//! ```text
//! cargo run --release -p zhilu-store --example ingest_bench [ROWS] [BATCH]
//! ```

use std::time::Instant;

use sqlx::{AssertSqlSafe, Connection};
use zhilu_store::{ObsRow, ReadingBatch, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rows: i64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let batch: i64 = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let batches = make_batches(rows, batch);

    let dir = std::env::temp_dir().join(format!("zhilu-ingest-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    run(
        "sqlite (file, WAL, synchronous=NORMAL)",
        &url,
        &batches,
        rows,
    )
    .await?;
    std::fs::remove_dir_all(&dir)?;

    if let Ok(admin) = std::env::var("ZHILU_TEST_PG_URL") {
        let name = format!("zhilu_bench_{}", std::process::id());
        let mut c = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await?;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        run("postgres", &format!("{base}/{name}"), &batches, rows).await?;
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .execute(&mut c)
            .await?;
    } else {
        println!("postgres: skipped (set ZHILU_TEST_PG_URL)");
    }
    Ok(())
}

async fn run(
    label: &str,
    url: &str,
    batches: &[ReadingBatch],
    rows: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(url).await?;
    let t = Instant::now();
    for b in batches {
        store.append_readings(b).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    let stored = store.count_readings().await?.obs;
    assert_eq!(stored, rows, "every row stored");
    println!(
        "{label}: {rows} obs rows in {} batches of {}: {secs:.2} s, {:.0} rows/s",
        batches.len(),
        batches.first().map_or(0, |b| b.obs.len()),
        rows as f64 / secs
    );
    store.close().await;
    Ok(())
}

/// Rows shaped like a real feed: 200 detectors × 4 lanes every 30 s.
fn make_batches(rows: i64, batch: i64) -> Vec<ReadingBatch> {
    let all: Vec<ObsRow> = (0..rows)
        .map(|i| ObsRow {
            seq: i + 1,
            ts_ms: 1_764_000_000_000 + (i / 800) * 30_000,
            detector: format!("D{:03}", (i / 4) % 200),
            lane: (i % 4) as i16 + 1,
            interval_s: 30,
            volume: (i % 25) as i32,
            speed_kmh: (i % 10 != 0).then_some(60.0 + (i % 50) as f64 * 0.5),
            occupancy_pct: Some((i % 30) as f64 * 0.7),
        })
        .collect();
    all.chunks(batch.max(1) as usize)
        .map(|c| ReadingBatch {
            obs: c.to_vec(),
            ..Default::default()
        })
        .collect()
}
