//! Storage errors heal (issue 19): after a disk-full episode the same
//! store writes again, without a restart. The "disk" is SQLite's page
//! limit (`Store::set_page_limit`), which fails writes exactly as a full
//! volume does (SQLITE_FULL) and needs no root. Also: the database file
//! is created readable by its owner only, and commits are `FULL` sync.

use zhilu_store::{ObsRow, ReadingBatch, Store};

/// `n` rows; a single row carries a long id so that it needs new pages
/// (a one-row statement has no statement journal: SQLITE_FULL then rolls
/// the whole transaction back, as a failed COMMIT on a full volume does).
fn batch(first_seq: i64, n: usize) -> ReadingBatch {
    let pad = if n == 1 {
        "x".repeat(20_000)
    } else {
        String::new()
    };
    ReadingBatch {
        obs: (0..n)
            .map(|i| ObsRow {
                seq: first_seq + i as i64,
                // Distinct readings: a reading is stored once.
                ts_ms: 1_795_383_600_000 + (first_seq + i as i64) * 30_000,
                detector: format!("D{:04}{pad}", i % 97),
                lane: 1,
                interval_s: 30,
                volume: 7,
                speed_kmh: Some(88.5),
                occupancy_pct: Some(6.25),
            })
            .collect(),
        ..ReadingBatch::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_heals_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("zhilu.db").display());
    let store = Store::open(&url).await.unwrap();
    store.append_readings(&batch(1, 100)).await.unwrap();
    let mut seq = 101;

    // The disk fills: every write fails, on every pooled connection.
    let pages = store.page_count().await.unwrap();
    store.set_page_limit(Some(pages));
    for k in 0..40 {
        let n = if k % 2 == 0 { 1 } else { 5_000 };
        let e = store.append_readings(&batch(seq, n)).await.unwrap_err();
        seq += n as i64;
        let text = e.to_string();
        assert!(
            !text.contains("transaction depth"),
            "a connection was left inside a transaction: {text}"
        );
    }

    // Space is back: the same store writes again, on every connection.
    store.set_page_limit(None);
    for _ in 0..20 {
        store
            .append_readings(&batch(seq, 500))
            .await
            .unwrap_or_else(|e| panic!("still failing after space came back: {e}"));
        seq += 500;
    }
    assert_eq!(store.count_readings().await.unwrap().obs, 100 + 20 * 500);
    store.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_file_is_private_and_commits_are_durable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zhilu.db");
    let store = Store::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    store.append_readings(&batch(1, 10)).await.unwrap();
    for f in ["zhilu.db", "zhilu.db-wal"] {
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} is readable by others: {mode:o}");
    }
    store.close().await;
    // An existing world-readable file is tightened on open.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "not tightened: {mode:o}");
    // synchronous = FULL on the store's connections (NORMAL on request).
    assert_eq!(store.durability().await.unwrap(), Some("full"));
    store.close().await;
    let store = Store::open_with(
        &format!("sqlite://{}", file.display()),
        zhilu_store::OpenOptions { sync_full: false },
    )
    .await
    .unwrap();
    assert_eq!(store.durability().await.unwrap(), Some("normal"));
    store.close().await;
}
