//! The in-process simulated adapter (no broker needed).

mod common;

use std::time::{Duration, Instant};

use common::{Reports, cmd, device_of, devices};
use serde_json::json;
use zhilu_devices::{
    DeviceAdapter, DeviceError, DeviceReport, DeviceState, Failsafe, IngestConfig, MqttAdapter,
    MqttConfig, MqttIngest, SimAdapter, SimOpts,
};

const T: Duration = Duration::from_secs(5);

fn opts() -> SimOpts {
    SimOpts {
        confirm_delay: Duration::from_millis(50),
        heartbeat: Duration::ZERO,
        device_timeout: Duration::from_millis(200),
        ..SimOpts::default()
    }
}

fn start(o: SimOpts, n: usize) -> (SimAdapter, Reports) {
    let (tx, reports) = Reports::channel(64);
    let (a, _task) = SimAdapter::start(o, devices(n), tx).unwrap();
    (a, reports)
}

#[tokio::test]
async fn confirms_after_the_delay_with_the_payload_as_state() {
    let (a, mut reports) = start(opts(), 2);
    // The server holds adapters as trait objects.
    let a: std::sync::Arc<dyn DeviceAdapter> = std::sync::Arc::new(a);
    assert_eq!(a.name(), "sim");
    let t0 = Instant::now();
    a.dispatch(cmd(
        1,
        "d1",
        json!({"limit_kmh": 60}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    let r = reports
        .wait_for("confirmation", T, |r| {
            matches!(r, DeviceReport::Confirmed { .. })
        })
        .await;
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(
        matches!(r, DeviceReport::Confirmed { device, command_id: 1, state, .. }
        if device == "d1" && state.to_json() == json!({"limit_kmh": 60}))
    );
    assert_eq!(
        a.dispatch(cmd(2, "nope", json!({}), 10_000, Failsafe::Hold)),
        Err(DeviceError::UnknownDevice("nope".into()))
    );
}

#[tokio::test]
async fn expired_superseded_and_dropped_commands() {
    let mut o = opts();
    o.ignore_commands.insert("d2".into());
    let (a, mut reports) = start(o, 2);
    a.dispatch(cmd(1, "d1", json!(1), -1, Failsafe::Hold))
        .unwrap();
    reports
        .wait_for("expired at dispatch", T, |r| {
            matches!(r, DeviceReport::Expired { command_id: 1, .. })
        })
        .await;
    a.dispatch(cmd(2, "d1", json!(2), 20, Failsafe::Hold))
        .unwrap();
    reports
        .wait_for("expired before confirmation", T, |r| {
            matches!(r, DeviceReport::Expired { command_id: 2, .. })
        })
        .await;

    a.dispatch(cmd(3, "d1", json!(3), 10_000, Failsafe::Hold))
        .unwrap();
    a.dispatch(cmd(4, "d1", json!(4), 10_000, Failsafe::Hold))
        .unwrap();
    let r = reports
        .wait_for("3 superseded", T, |r| {
            matches!(r, DeviceReport::Failed { command_id: 3, .. })
        })
        .await;
    assert!(
        matches!(r, DeviceReport::Failed { reason, .. } if reason.contains("superseded by command 4"))
    );
    reports
        .wait_for("4 confirmed", T, |r| {
            matches!(r, DeviceReport::Confirmed { command_id: 4, .. })
        })
        .await;

    a.dispatch(cmd(5, "d2", json!(5), 10_000, Failsafe::Hold))
        .unwrap();
    reports
        .wait_for("ignored → failed", T, |r| {
            matches!(r, DeviceReport::Failed { command_id: 5, .. })
        })
        .await;
    assert!(!reports.history.iter().any(|r| matches!(
        r,
        DeviceReport::Confirmed {
            command_id: 3 | 5,
            ..
        }
    )));

    let (a, mut reports) = start(
        SimOpts {
            drop_probability: 1.0,
            ..opts()
        },
        1,
    );
    a.dispatch(cmd(6, "d1", json!(6), 10_000, Failsafe::Hold))
        .unwrap();
    reports
        .wait_for("dropped → failed", T, |r| {
            matches!(r, DeviceReport::Failed { command_id: 6, .. })
        })
        .await;
}

#[tokio::test]
async fn lost_contact_goes_offline_then_comes_back_in_failsafe() {
    let (a, mut reports) = start(
        SimOpts {
            heartbeat: Duration::from_millis(30),
            ..opts()
        },
        2,
    );
    a.dispatch(cmd(
        1,
        "d1",
        json!({"limit_kmh": 60}),
        10_000,
        Failsafe::Blank { after_s: 0 },
    ))
    .unwrap();
    reports
        .wait_for("confirmation", T, |r| {
            matches!(r, DeviceReport::Confirmed { .. })
        })
        .await;
    a.lose_contact("d1").unwrap();
    let t0 = Instant::now();
    let r = reports
        .wait_for("offline", T, |r| matches!(r, DeviceReport::Offline { .. }))
        .await;
    assert_eq!(device_of(&r), "d1");
    assert!(t0.elapsed() >= Duration::from_millis(150));
    reports.skip_unread();
    let later = reports.collect_for(Duration::from_millis(300)).await;
    assert!(
        !later.iter().any(|r| device_of(r) == "d1"),
        "nothing from d1 while cut off, Offline once: {later:?}"
    );
    assert!(
        later
            .iter()
            .any(|r| matches!(r, DeviceReport::State { device, .. } if device == "d2"))
    );

    // A command to an unreachable device fails.
    a.dispatch(cmd(
        2,
        "d1",
        json!({"limit_kmh": 80}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    reports
        .wait_for("unreachable", T, |r| {
            matches!(r, DeviceReport::Failed { command_id: 2, .. })
        })
        .await;

    a.restore_contact("d1").unwrap();
    reports
        .wait_for(
            "online",
            T,
            |r| matches!(r, DeviceReport::Online { device, .. } if device == "d1"),
        )
        .await;
    let blank = DeviceState::Blank;
    reports
        .wait_for("fail-safe state", T, |r| matches!(r, DeviceReport::State { device, state, .. } if device == "d1" && *state == blank))
        .await;
}

#[tokio::test]
async fn a_full_queue_is_busy_and_a_dropped_receiver_stops_it() {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let (a, task) = SimAdapter::start(
        SimOpts {
            confirm_delay: Duration::ZERO,
            ..opts()
        },
        devices(1),
        tx,
    )
    .unwrap();
    // Nobody reads reports: the adapter blocks on them and its queue fills.
    let mut busy = false;
    for i in 0..2000 {
        match a.dispatch(cmd(i, "d1", json!(i), 10_000, Failsafe::Hold)) {
            Ok(()) => tokio::task::yield_now().await,
            Err(DeviceError::Busy) => {
                busy = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(busy, "a bounded queue says Busy");
    drop(rx);
    tokio::time::timeout(T, task)
        .await
        .expect("task ends without a report receiver")
        .unwrap();
    assert_eq!(
        a.dispatch(cmd(9999, "d1", json!(0), 10_000, Failsafe::Hold)),
        Err(DeviceError::Stopped)
    );
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    assert!(matches!(
        SimAdapter::start(opts(), devices(1), tx.clone()),
        Err(DeviceError::NoRuntime)
    ));
    assert!(matches!(
        MqttAdapter::start(MqttConfig::default(), devices(1), tx),
        Err(DeviceError::NoRuntime)
    ));
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    assert!(matches!(
        MqttIngest::start(IngestConfig::default(), tx),
        Err(DeviceError::NoRuntime)
    ));
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let bad = MqttConfig {
        prefix: "zhilu/#".into(),
        ..MqttConfig::default()
    };
    assert!(matches!(
        MqttAdapter::start(bad, devices(1), tx.clone()),
        Err(DeviceError::Config(_))
    ));
    let bad_device = vec!["VMS/1".to_string()];
    assert!(matches!(
        MqttAdapter::start(MqttConfig::default(), bad_device, tx.clone()),
        Err(DeviceError::Config(_))
    ));
    let bad = SimOpts {
        drop_probability: 2.0,
        ..opts()
    };
    assert!(matches!(
        SimAdapter::start(bad, devices(1), tx),
        Err(DeviceError::Config(_))
    ));
}

/// A device state from its JSON.
#[allow(dead_code)]
fn st(v: serde_json::Value) -> DeviceState {
    DeviceState::from_json(&v).unwrap()
}
