//! Crash safety on SQLite: a writer process appends batches and reports each
//! committed seq on stdout; it is killed with SIGKILL mid-run; every seq it
//! reported must be in the database afterwards, and the file must be sound.
//!
//! The writer is this test binary itself, re-run with `--exact
//! crash_writer_child` and `ZHILU_STORE_CRASH_CHILD=<url>` (without that
//! variable the child test does nothing).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;
use zhilu_store::{ObsRow, Reading, ReadingBatch, Store};

const CHILD_ENV: &str = "ZHILU_STORE_CRASH_CHILD";
const BATCH: i64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_writer_child() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return; // only meaningful as the child of the test below
    };
    let store = Store::open(&url).await.expect("child: open");
    let mut seq = 0;
    loop {
        let batch = ReadingBatch {
            obs: (seq + 1..=seq + BATCH)
                .map(|s| ObsRow {
                    seq: s,
                    ts_ms: s * 1000,
                    detector: format!("D{}", s % 7),
                    lane: (s % 3) as i16 + 1,
                    interval_s: 30,
                    volume: (s % 40) as i32,
                    speed_kmh: Some(80.0 + (s % 20) as f64),
                    occupancy_pct: None,
                })
                .collect(),
            ..Default::default()
        };
        store.append_readings(&batch).await.expect("child: append");
        seq += BATCH;
        // Printed only after the commit returned.
        println!("COMMITTED {seq}");
    }
}

#[test]
fn committed_batches_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let mut committed: Vec<i64> = Vec::new();
    // Let it commit a while, then kill it at some point inside a later batch.
    let wanted = 20 + fastrand::usize(..20);
    for line in lines.by_ref() {
        let line = line.expect("read child stdout");
        if let Some(n) = line.strip_prefix("COMMITTED ") {
            committed.push(n.parse().expect("seq"));
        }
        if committed.len() >= wanted {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "writer too slow: {} batches in 8 s",
            committed.len()
        );
    }
    std::thread::sleep(Duration::from_millis(fastrand::u64(..15)));
    child.kill().expect("SIGKILL the writer");
    let status = child.wait().expect("reap writer");
    assert!(!status.success(), "the writer was killed, not finished");
    // Lines already in the pipe were printed after their commits too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("COMMITTED ") {
            committed.push(n.parse().expect("seq"));
        }
    }
    assert!(committed.len() >= 20, "{committed:?}");
    let last = *committed.last().expect("some commits");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // The file is sound after the crash.
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("raw open");
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut c)
            .await
            .expect("integrity_check");
        assert_eq!(check, "ok");
        c.close().await.expect("close");

        let store = Store::open(&url).await.expect("reopen after crash");
        let stored: Vec<i64> = store
            .readings_after(0, i64::MIN, u32::MAX)
            .await
            .expect("read back")
            .iter()
            .map(Reading::seq)
            .collect();
        // Every reported seq is there, and batches are whole: the stored
        // seqs are exactly 1..=n for some n ≥ the last reported one, n a
        // multiple of the batch size.
        let n = stored.len() as i64;
        println!("crash test: writer reported {last} rows committed; {n} stored after SIGKILL");
        assert!(
            n >= last,
            "lost committed rows: stored {n}, reported {last}"
        );
        assert_eq!(n % BATCH, 0, "a batch was half stored");
        assert!(stored.iter().copied().eq(1..=n), "gaps in the stored seqs");
        assert_eq!(store.max_ids().await.expect("max_ids").reading_seq, n);
        store.close().await;
    });
}
