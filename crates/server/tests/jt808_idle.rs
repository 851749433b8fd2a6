//! 20,000 idle JT/T 808 connections must leave `/api/health` answering
//! (issue 19: the gateway's 20,000 equalled the process's descriptor
//! limit, so idle terminals starved the API). The clients run in two child
//! processes (this test binary again, 10,000 connections each from ten
//! loopback addresses), so the server's descriptors are the server's: the
//! gateway is held below the limit (`net::limits`), HTTP keeps its share.

mod common;

use std::io::BufRead;
use std::time::{Duration, Instant};

use common::TestServer;

const CHILD_ENV: &str = "ZHILU_TEST_IDLE_CLIENT";
const PER_CHILD: usize = 10_000;

/// The child: opens idle connections, says how many, holds them until
/// its stdin closes.
#[test]
fn idle_client() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut it = spec.split(';');
    let addr: std::net::SocketAddr = it.next().unwrap().parse().unwrap();
    let first_ip: u8 = it.next().unwrap().parse().unwrap();
    let n: usize = it.next().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conns = Vec::with_capacity(n);
        let mut failed = 0;
        for i in 0..n {
            let ip = std::net::Ipv4Addr::new(127, 0, 1, first_ip + (i / 1000) as u8);
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            if s.bind((ip, 0).into()).is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(2), s.connect(addr)).await {
                Ok(Ok(c)) => conns.push(c),
                r => {
                    // A busy machine: skip it, give up after many.
                    failed += 1;
                    if failed > 200 {
                        eprintln!("connection {i} failed: {r:?}; stopping");
                        break;
                    }
                }
            }
        }
        println!("CONNECTED {}", conns.len());
        // Hold them until the parent is done.
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
        drop(conns);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_idle_terminals_leave_health_answering() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let s = TestServer::start("sqlite", |c| {
        c.jt808.listen = "127.0.0.1:0".into();
        c.storage.min_free_mb = 0;
    })
    .await
    .unwrap();
    let limits = s.state().limits;
    let fd = zhilu_server::net::fd_limit().unwrap_or(0);
    assert!(
        limits.jt808 as u64 + limits.http as u64 + zhilu_server::net::FD_RESERVE <= fd.max(1),
        "{limits:?} do not fit the fd limit {fd}"
    );
    let addr = s.jt808_addr().unwrap();
    eprintln!("server up: {limits:?}");
    let exe = std::env::current_exe().unwrap();
    let mut children = Vec::new();
    for first_ip in [1u8, 11] {
        let child = std::process::Command::new(&exe)
            .args(["--exact", "idle_client", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{addr};{first_ip};{PER_CHILD}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    let mut opened = 0;
    let mut readers = Vec::new();
    for c in &mut children {
        let out = c.stdout.take().unwrap();
        // Blocking reads off the runtime's workers (the server runs on them).
        let (n, reader) = tokio::task::spawn_blocking(move || {
            let mut r = std::io::BufReader::new(out);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                // The harness prints "test idle_client ... " first, same line.
                if let Some(n) = line.split("CONNECTED ").nth(1) {
                    return (n.trim().parse::<usize>().ok(), r);
                }
                line.clear();
            }
            (None, r)
        })
        .await
        .unwrap();
        opened += n.expect("child said nothing");
        readers.push(reader);
    }
    eprintln!("children: {opened}");
    // More than the gateway may hold, so its cap is what keeps HTTP alive.
    assert!(
        opened > limits.jt808 + 100,
        "only {opened} connections opened"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The API still answers, quickly.
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            s.http.get(format!("{}/api/health", s.url)).send(),
        )
        .await
        .expect("health timed out")
        .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        worst = worst.max(t.elapsed());
    }
    eprintln!(
        "{opened} idle JT/T 808 connections (gateway limit {}): /api/health worst of 5 {worst:?}",
        limits.jt808
    );
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    // An operator can still log in.
    let _ = s.login("op").await;
    for mut c in children {
        drop(c.stdin.take());
        let _ = tokio::task::spawn_blocking(move || c.wait()).await;
    }
}
