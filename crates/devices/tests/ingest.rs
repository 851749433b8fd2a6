//! The MQTT ingest of readings against a real mosquitto.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Broker, Raw};
use tokio::sync::mpsc;
use zhilu_devices::{IngestConfig, IngestMessage, MqttIngest, ReadingKind};

const PREFIX: &str = "zhilu/test";
const T: Duration = Duration::from_secs(5);

fn cfg(port: u16, client_id: &str) -> IngestConfig {
    IngestConfig {
        port,
        client_id: client_id.into(),
        prefix: PREFIX.into(),
        ..IngestConfig::default()
    }
}

async fn start(
    port: u16,
    client_id: &str,
    cap: usize,
) -> (tokio::task::JoinHandle<()>, mpsc::Receiver<IngestMessage>) {
    let (tx, rx) = mpsc::channel(cap);
    let (task, status) =
        MqttIngest::start_with_status(cfg(port, client_id), tx).expect("ingest starts");
    status.wait_subscribed(T).await.expect("ingest subscribed");
    (task, rx)
}

async fn recv(rx: &mut mpsc::Receiver<IngestMessage>) -> IngestMessage {
    tokio::time::timeout(T, rx.recv())
        .await
        .expect("a message in time")
        .expect("channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_are_forwarded_by_kind() {
    let Some(b) = Broker::start() else { return };
    let (_task, mut rx) = start(b.port, "ingest-kinds", 16).await;
    let raw = Raw::start(b.port, &[]).await;
    let obs = "time,detector,lane,flow_veh_h,speed_kmh,occupancy_pct\n2024-01-05T08:00:00+08:00,D01,1,1200,88.5,9.1\n";
    raw.publish(&format!("{PREFIX}/readings/other"), "not ours")
        .await;
    raw.publish(&format!("{PREFIX}/readings/obs"), obs).await;
    raw.publish(
        &format!("{PREFIX}/readings/weather"),
        r#"[{"station":"W1","visibility_m":150}]"#,
    )
    .await;
    raw.publish(&format!("{PREFIX}/readings/positions"), "pos")
        .await;
    raw.publish(
        &format!("{PREFIX}/readings/camera"),
        b"\x00binary\xff".to_vec(),
    )
    .await;
    let got: Vec<IngestMessage> = [
        recv(&mut rx).await,
        recv(&mut rx).await,
        recv(&mut rx).await,
        recv(&mut rx).await,
    ]
    .into();
    let kinds: Vec<ReadingKind> = got.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, ReadingKind::ALL.to_vec());
    assert_eq!(got[0].topic, format!("{PREFIX}/readings/obs"));
    assert_eq!(
        &got[0].payload[..],
        obs.as_bytes(),
        "payload forwarded untouched"
    );
    assert_eq!(&got[3].payload[..], b"\x00binary\xff");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err(),
        "nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_loses_nothing() {
    let Some(b) = Broker::start() else { return };
    const CAP: usize = 4;
    const N: usize = 200;
    let (_task, mut rx) = start(b.port, "ingest-slow", CAP).await;
    let raw = Raw::start(b.port, &[]).await;
    let topic = format!("{PREFIX}/readings/obs");
    for i in 0..N {
        raw.publish(&topic, format!("row {i}")).await;
    }
    let mut got = Vec::new();
    let mut fullest = 0;
    while got.len() < N {
        fullest = fullest.max(rx.len());
        let m = match tokio::time::timeout(T, rx.recv()).await {
            Ok(Some(m)) => m,
            other => panic!(
                "after {} of {N} messages: {other:?}; broker log:\n{}",
                got.len(),
                b.log()
            ),
        };
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
        // Stored: acknowledged to the broker, which sends more.
        m.done();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let want: Vec<String> = (0..N).map(|i| format!("row {i}")).collect();
    assert_eq!(got, want, "all {N} arrive, in order");
    assert_eq!(
        fullest, CAP,
        "the channel was full: the broker, not the process, held the backlog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_not_handed_over_are_redelivered_after_a_crash() {
    let Some(b) = Broker::start() else { return };
    let (task, mut rx) = start(b.port, "ingest-crash", 1).await;
    let raw = Raw::start(b.port, &[]).await;
    let topic = format!("{PREFIX}/readings/weather");
    for i in 0..10 {
        raw.publish(&topic, format!("m{i}")).await;
    }
    // m0 fills the channel; the rest wait unacknowledged.
    let t0 = std::time::Instant::now();
    while rx.is_empty() {
        assert!(t0.elapsed() < T, "nothing arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    task.abort(); // the crash
    let _ = task.await;
    let first = recv(&mut rx).await;
    assert_eq!(&first.payload[..], b"m0");

    let (_task, mut rx) = start(b.port, "ingest-crash", 32).await;
    let mut got = BTreeSet::new();
    let want: BTreeSet<String> = (1..10).map(|i| format!("m{i}")).collect();
    while !want.is_subset(&got) {
        got.insert(String::from_utf8(recv(&mut rx).await.payload.to_vec()).unwrap());
    }
}
