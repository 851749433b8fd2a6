//! Ingest memory is bounded by bytes (issue 19): ten 16 MB JSON bodies
//! posted at once keep the whole process (server and clients) under
//! 300 MB resident. Each body is streamed by its client (chunked), so the
//! figure is the server's. Beyond `ingest.max_inflight_bytes` a request
//! gets 503 with `Retry-After`. Its own test binary: the peak resident
//! size (`VmHWM`) is the process's.

mod common;

use std::time::Duration;

use common::TestServer;

/// Peak resident set of this process (kB).
fn peak_rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A JSON array of detector rows of about `bytes`, made chunk by chunk.
fn body_stream(
    rows: std::sync::Arc<Vec<String>>,
    bytes: usize,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let mut sent = 0usize;
    let mut i = 0usize;
    let mut done = false;
    futures_util::stream::poll_fn(move |_| {
        if done {
            return std::task::Poll::Ready(None);
        }
        let mut chunk = Vec::with_capacity(70_000);
        if sent == 0 {
            chunk.push(b'[');
        }
        while chunk.len() < 64 * 1024 {
            if sent + chunk.len() >= bytes {
                chunk.push(b']');
                done = true;
                break;
            }
            if sent + chunk.len() > 1 {
                chunk.push(b',');
            }
            chunk.extend_from_slice(rows[i % rows.len()].as_bytes());
            i += 1;
        }
        sent += chunk.len();
        std::task::Poll::Ready(Some(Ok(chunk)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_16_mb_bodies_at_once_stay_under_300_mb() {
    let s = TestServer::start("sqlite", |c| {
        c.storage.min_free_mb = 0;
        c.devices.adapter = zhilu_server::config::AdapterKind::None;
        c.forecast.enabled = false;
    })
    .await
    .unwrap();
    let op = s.login("op").await;
    // Rows of the test day as JSON objects (the contract's keys).
    let obs = std::fs::read_to_string(s.dir.join("OBS.csv")).unwrap();
    let mut lines = obs.lines();
    let cols: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<String> = lines
        .take(20_000)
        .map(|l| {
            let o: serde_json::Map<String, serde_json::Value> = cols
                .iter()
                .zip(l.split(','))
                .map(|(c, v)| (c.to_string(), serde_json::Value::from(v)))
                .collect();
            serde_json::Value::Object(o).to_string()
        })
        .collect();
    let rows = std::sync::Arc::new(rows);
    let before = peak_rss_kb();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let http = s.http.clone();
        let url = format!("{}/api/ingest/observations", s.url);
        let op = op.clone();
        let rows = rows.clone();
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .bearer_auth(op)
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(body_stream(rows, 16_000_000)))
                .send()
                .await
                .unwrap();
            let retry = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), retry)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, retry) = t.await.unwrap();
        match status {
            200 => ok += 1,
            503 => assert!(retry, "503 without Retry-After"),
            s => panic!("{s}"),
        }
    }
    assert!(ok >= 1, "nothing accepted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak_mb = peak_rss_kb() / 1024;
    eprintln!(
        "ten 16 MB bodies: {ok} accepted, peak RSS {peak_mb} MB (before: {} MB)",
        before / 1024
    );
    assert!(peak_mb < 300, "peak RSS {peak_mb} MB");
}
