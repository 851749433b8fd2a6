//! The MQTT adapter and the simulated MQTT devices against a real mosquitto.

mod common;

use std::time::{Duration, Instant};

use common::{Broker, Raw, Reports, cmd, device_of, devices, saw_command};
use serde_json::json;
use zhilu_devices::{
    DeviceAdapter, DeviceCommand, DeviceError, DeviceReport, DeviceSim, DeviceState, Failsafe,
    MqttAdapter, MqttConfig, SimOpts,
};

const PREFIX: &str = "zhilu/test";
const T: Duration = Duration::from_secs(5);

fn cfg(port: u16) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port,
        client_id: "centre".into(),
        prefix: PREFIX.into(),
        ack_timeout: Duration::from_millis(100),
        max_retries: 3,
        heartbeat: Duration::from_millis(100),
        device_timeout: Duration::from_secs(10),
    }
}

/// Test devices boot showing `{"boot": true}` (not blank, so a fail-safe
/// blank is told apart from the boot state).
fn sim_opts() -> SimOpts {
    SimOpts {
        confirm_delay: Duration::from_millis(20),
        heartbeat: Duration::from_secs(60),
        initial_state: DeviceState::Vms {
            text: "boot".into(),
        },
        ..SimOpts::default()
    }
}

fn cmd_topic(d: &str) -> String {
    format!("{PREFIX}/devices/{d}/cmd")
}

async fn sim(b: &Broker, n: usize, opts: SimOpts) -> DeviceSim {
    let s = DeviceSim::start("127.0.0.1", b.port, PREFIX, devices(n), opts).expect("sim starts");
    s.wait_ready(T).await.expect("sim ready");
    s
}

async fn adapter(cfg: MqttConfig, n: usize) -> (MqttAdapter, tokio::task::JoinHandle<()>, Reports) {
    let (tx, reports) = Reports::channel(64);
    let (a, task) = MqttAdapter::start(cfg, devices(n), tx).expect("adapter starts");
    a.wait_connected(T).await.expect("adapter connected");
    (a, task, reports)
}

fn is_confirmed(id: u64) -> impl Fn(&DeviceReport) -> bool {
    move |r| matches!(r, DeviceReport::Confirmed { command_id, .. } if *command_id == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_is_confirmed_with_the_state_the_device_reports() {
    let Some(b) = Broker::start() else { return };
    let watch = Raw::start(b.port, &[format!("{PREFIX}/devices/+/cmd")]).await;
    let s = sim(&b, 2, sim_opts()).await;
    // d1 cannot show 60: it clamps to 80 and says so.
    s.set_override("d1", Some(st(json!({"limit_kmh": 80}))))
        .unwrap();
    let (a, _task, mut reports) = adapter(cfg(b.port), 2).await;
    assert_eq!(a.name(), "mqtt");

    let c1 = cmd(1, "d1", json!({"limit_kmh": 60}), 10_000, Failsafe::Hold);
    a.dispatch(c1.clone()).unwrap();
    a.dispatch(cmd(
        2,
        "d2",
        json!({"limit_kmh": 60}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    let r1 = reports
        .wait_for("confirmation of 1", T, is_confirmed(1))
        .await;
    let r2 = reports
        .wait_for("confirmation of 2", T, is_confirmed(2))
        .await;
    match (r1, r2) {
        (
            DeviceReport::Confirmed {
                device: d1,
                state: s1,
                ..
            },
            DeviceReport::Confirmed {
                device: d2,
                state: s2,
                ..
            },
        ) => {
            assert_eq!((d1.as_str(), d2.as_str()), ("d1", "d2"));
            assert_eq!(
                s1,
                st(json!({"limit_kmh": 80})),
                "state is what the device reported, not the payload"
            );
            assert_eq!(s2, st(json!({"limit_kmh": 60})));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(s.state("d1"), Some(st(json!({"limit_kmh": 80}))));
    // On the wire: the command as JSON (more than once only if a retry
    // raced the confirmation).
    let d1_topic = cmd_topic("d1");
    watch
        .wait_until("the command on the wire", T, |s| {
            s.iter().any(|m| m.topic == d1_topic)
        })
        .await;
    let wire: Vec<DeviceCommand> = watch
        .seen()
        .iter()
        .filter(|m| m.topic == cmd_topic("d1"))
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    assert!(
        !wire.is_empty() && wire.iter().all(|c| *c == c1),
        "{wire:?}"
    );

    let ghost = cmd(3, "ghost", json!({}), 10_000, Failsafe::Hold);
    assert_eq!(
        a.dispatch(ghost),
        Err(DeviceError::UnknownDevice("ghost".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_command_is_retried_then_failed() {
    let Some(b) = Broker::start() else { return };
    let watch = Raw::start(b.port, &[format!("{PREFIX}/devices/+/cmd")]).await;
    let mut o = sim_opts();
    o.ignore_commands.insert("d1".into());
    let _s = sim(&b, 1, o).await;
    let c = MqttConfig {
        ack_timeout: Duration::from_millis(80),
        max_retries: 2,
        ..cfg(b.port)
    };
    let (a, _task, mut reports) = adapter(c, 1).await;

    let t0 = Instant::now();
    a.dispatch(cmd(
        7,
        "d1",
        json!({"limit_kmh": 60}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    let r = reports
        .wait_for("failure of 7", T, |r| {
            matches!(r, DeviceReport::Failed { command_id: 7, .. })
        })
        .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(3 * 80),
        "failed only after every attempt timed out"
    );
    let DeviceReport::Failed { reason, .. } = r else {
        unreachable!()
    };
    assert!(reason.contains("3 attempts"), "{reason}");
    watch
        .wait_until("3 publications", T, |s| {
            s.iter().filter(|m| m.topic == cmd_topic("d1")).count() >= 3
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        watch.command_ids(&cmd_topic("d1")),
        vec![7, 7, 7],
        "1 send + max_retries, same command_id, then none"
    );
    assert!(
        !reports
            .history
            .iter()
            .any(|r| matches!(r, DeviceReport::Confirmed { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_commands_are_never_sent_or_retried() {
    let Some(b) = Broker::start() else { return };
    let watch = Raw::start(b.port, &[format!("{PREFIX}/devices/+/cmd")]).await;
    let mut o = sim_opts();
    o.ignore_commands.insert("d2".into());
    let _s = sim(&b, 2, o).await;
    let c = MqttConfig {
        ack_timeout: Duration::from_millis(60),
        max_retries: 1000,
        ..cfg(b.port)
    };
    let (a, _task, mut reports) = adapter(c, 2).await;

    // Already expired: reported, never published.
    a.dispatch(cmd(1, "d1", json!({"limit_kmh": 60}), -1, Failsafe::Hold))
        .unwrap();
    reports
        .wait_for("expiry of 1", T, |r| {
            matches!(r, DeviceReport::Expired { command_id: 1, .. })
        })
        .await;
    a.dispatch(cmd(
        2,
        "d1",
        json!({"limit_kmh": 80}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    reports
        .wait_for("confirmation of 2", T, is_confirmed(2))
        .await;
    // Commands leave the centre in order: once 2 is seen, 1 would have been.
    let d1_topic = cmd_topic("d1");
    watch
        .wait_until("command 2 on the wire", T, |s| saw_command(s, &d1_topic, 2))
        .await;
    let ids = watch.command_ids(&d1_topic);
    assert!(
        !ids.contains(&1),
        "the expired command never reached the wire: {ids:?}"
    );

    // Expires while being retried: Expired (not Failed), and no more sends.
    let t0 = Instant::now();
    a.dispatch(cmd(3, "d2", json!({"limit_kmh": 60}), 300, Failsafe::Hold))
        .unwrap();
    reports
        .wait_for("expiry of 3", T, |r| {
            matches!(r, DeviceReport::Expired { command_id: 3, .. })
        })
        .await;
    assert!(t0.elapsed() >= Duration::from_millis(250));
    // A marker sent after the expiry: every send of 3 is seen before it.
    a.dispatch(cmd(
        4,
        "d1",
        json!({"limit_kmh": 100}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    watch
        .wait_until("the marker", T, |s| saw_command(s, &d1_topic, 4))
        .await;
    let sent = watch.command_ids(&cmd_topic("d2")).len();
    assert!(sent >= 2, "it was retried before expiring ({sent} sends)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        watch.command_ids(&cmd_topic("d2")).len(),
        sent,
        "nothing sent after expiry"
    );
    assert!(
        !reports
            .history
            .iter()
            .any(|r| matches!(r, DeviceReport::Failed { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_command_supersedes_the_pending_one() {
    let Some(b) = Broker::start() else { return };
    let watch = Raw::start(b.port, &[format!("{PREFIX}/devices/+/cmd")]).await;
    // A slow device: A is retried before it could be confirmed.
    let _s = sim(
        &b,
        1,
        SimOpts {
            confirm_delay: Duration::from_millis(400),
            ..sim_opts()
        },
    )
    .await;
    let c = MqttConfig {
        ack_timeout: Duration::from_millis(100),
        max_retries: 20,
        ..cfg(b.port)
    };
    let (a, _task, mut reports) = adapter(c, 1).await;

    a.dispatch(cmd(
        10,
        "d1",
        json!({"limit_kmh": 60}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    watch
        .wait_until("a retry of A", T, |s| {
            s.iter().filter(|m| m.topic == cmd_topic("d1")).count() >= 2
        })
        .await;
    a.dispatch(cmd(
        11,
        "d1",
        json!({"limit_kmh": 40}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    let r = reports
        .wait_for("A superseded", T, |r| {
            matches!(r, DeviceReport::Failed { command_id: 10, .. })
        })
        .await;
    let DeviceReport::Failed { reason, .. } = r else {
        unreachable!()
    };
    assert!(reason.contains("superseded by command 11"), "{reason}");
    let r = reports.wait_for("B confirmed", T, is_confirmed(11)).await;
    assert!(
        matches!(r, DeviceReport::Confirmed { state, .. } if state.to_json() == json!({"limit_kmh": 40}))
    );
    let d1_topic = cmd_topic("d1");
    watch
        .wait_until("B on the wire", T, |s| saw_command(s, &d1_topic, 11))
        .await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let ids = watch.command_ids(&cmd_topic("d1"));
    let first_b = ids.iter().position(|&i| i == 11).expect("B was sent");
    assert!(
        ids[first_b..].iter().all(|&i| i == 11),
        "A not retried once superseded: {ids:?}"
    );
    assert!(!reports.history.iter().any(is_confirmed(10)));

    // An older command than the pending one is refused, not sent.
    a.dispatch(cmd(
        20,
        "d1",
        json!({"limit_kmh": 100}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    a.dispatch(cmd(
        19,
        "d1",
        json!({"limit_kmh": 120}),
        10_000,
        Failsafe::Hold,
    ))
    .unwrap();
    let r = reports
        .wait_for("19 refused", T, |r| {
            matches!(r, DeviceReport::Failed { command_id: 19, .. })
        })
        .await;
    assert!(matches!(r, DeviceReport::Failed { reason, .. } if reason.contains("stale")));
    reports.wait_for("20 confirmed", T, is_confirmed(20)).await;
    assert!(!watch.command_ids(&cmd_topic("d1")).contains(&19));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_device_goes_offline_once_and_comes_back() {
    let Some(b) = Broker::start() else { return };
    let s = sim(
        &b,
        2,
        SimOpts {
            heartbeat: Duration::from_millis(50),
            ..sim_opts()
        },
    )
    .await;
    let c = MqttConfig {
        device_timeout: Duration::from_millis(300),
        ..cfg(b.port)
    };
    let (_a, _task, mut reports) = adapter(c, 2).await;
    reports
        .wait_for(
            "d1 heard",
            T,
            |r| matches!(r, DeviceReport::State { device, .. } if device == "d1"),
        )
        .await;

    s.go_silent("d1").unwrap();
    let t0 = Instant::now();
    let r = reports
        .wait_for("d1 offline", T, |r| {
            matches!(r, DeviceReport::Offline { .. })
        })
        .await;
    assert_eq!(device_of(&r), "d1", "only the silent device goes offline");
    assert!(t0.elapsed() >= Duration::from_millis(200));
    let DeviceReport::Offline {
        since_ms, wall_ms, ..
    } = r
    else {
        unreachable!()
    };
    assert!(
        wall_ms - since_ms >= 300,
        "since_ms is when d1 was last heard"
    );
    reports.skip_unread();
    let later = reports.collect_for(Duration::from_millis(500)).await;
    assert!(
        !later
            .iter()
            .any(|r| matches!(r, DeviceReport::Offline { .. })),
        "Offline is reported once: {later:?}"
    );
    assert!(
        later.iter().any(|r| device_of(r) == "d2"),
        "d2 kept reporting"
    );
    assert!(!later.iter().any(|r| device_of(r) == "d1"), "d1 is silent");

    s.wake("d1").unwrap();
    reports
        .wait_for(
            "d1 online",
            T,
            |r| matches!(r, DeviceReport::Online { device, .. } if device == "d1"),
        )
        .await;
    reports
        .wait_for(
            "d1 state",
            T,
            |r| matches!(r, DeviceReport::State { device, .. } if device == "d1"),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_state_messages_are_ignored() {
    let Some(b) = Broker::start() else { return };
    let (_a, task, mut reports) = adapter(cfg(b.port), 1).await;
    let raw = Raw::start(b.port, &[]).await;
    let t = format!("{PREFIX}/devices/d1/state");
    raw.publish(&t, b"\xff\xfe not json".to_vec()).await;
    raw.publish(&t, "{}").await;
    raw.publish(&t, r#"{"command_id":"seven","state":1}"#).await;
    raw.publish(&t, "").await;
    raw.publish(
        &format!("{PREFIX}/devices/ghost/state"),
        r#"{"state":{"x":1}}"#,
    )
    .await;
    raw.publish(
        &format!("{PREFIX}/devices/d1/extra/state"),
        r#"{"state":{"x":1}}"#,
    )
    .await;
    raw.publish(&t, r#"{"state":{"on":true},"ts_ms":1}"#).await;
    let r = reports
        .wait_for("the valid state", T, |r| {
            matches!(r, DeviceReport::State { .. })
        })
        .await;
    assert_eq!(
        r,
        DeviceReport::State {
            device: "d1".into(),
            state: DeviceState::Deicing { on: true },
            wall_ms: match &r {
                DeviceReport::State { wall_ms, .. } => *wall_ms,
                _ => 0,
            }
        }
    );
    assert_eq!(
        reports.history.len(),
        1,
        "nothing reported for garbage: {:?}",
        reports.history
    );
    assert!(!task.is_finished(), "the adapter survived");
}

/// The centre's last will says contact is lost, but a device keeps what it
/// shows for the fail-safe's `after_s` (a centre restart of a few seconds
/// must not blank a fog limit), then takes the fail-safe; `hold` never
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_hold_through_the_centres_last_will_then_take_their_failsafe() {
    let Some(b) = Broker::start() else { return };
    let s = sim(&b, 2, sim_opts()).await;
    let (a, task, mut reports) = adapter(cfg(b.port), 2).await;
    let fog_safe = st(json!({"limit_kmh": 40}));
    let fs = Failsafe::Fallback {
        after_s: 2,
        state: fog_safe.clone(),
    };
    a.dispatch(cmd(1, "d1", json!({"limit_kmh": 60}), 10_000, fs))
        .unwrap();
    let closed = json!({"state": "closed", "direction": "up"});
    a.dispatch(cmd(2, "d2", closed.clone(), 10_000, Failsafe::Hold))
        .unwrap();
    reports.wait_for("confirmation", T, is_confirmed(1)).await;
    reports.wait_for("confirmation", T, is_confirmed(2)).await;
    let status = Raw::start(b.port, &[format!("{PREFIX}/centre/status")]).await;
    status
        .wait_until("retained online", T, |s| {
            s.iter().any(|m| m.payload == b"online" && m.retain)
        })
        .await;

    // The centre dies: its connection closes without a DISCONNECT.
    drop(a);
    tokio::time::timeout(T, task)
        .await
        .expect("adapter task ends when its handles are dropped")
        .unwrap();
    let t0 = Instant::now();
    status
        .wait_until("offline", T, |s| s.iter().any(|m| m.payload == b"offline"))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.state("d1"),
        Some(st(json!({"limit_kmh": 60}))),
        "the limit holds through `offline`"
    );
    while s.state("d1") != Some(fog_safe.clone()) {
        assert!(
            t0.elapsed() < T,
            "fail-safe not applied; state {:?}",
            s.state("d1")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "taken after after_s, not at once on `offline`"
    );
    assert_eq!(s.state("d2"), Some(st(closed)), "a closure holds");
    // A late subscriber sees the retained `offline`.
    let late = Raw::start(b.port, &[format!("{PREFIX}/centre/status")]).await;
    late.wait_until("retained offline", T, |s| {
        s.iter().any(|m| m.payload == b"offline" && m.retain)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_take_their_failsafe_when_heartbeats_stop() {
    let Some(b) = Broker::start() else { return };
    let _s = sim(&b, 1, sim_opts()).await;
    // One heartbeat at connect, then none for a minute; the centre stays online.
    let c = MqttConfig {
        heartbeat: Duration::from_secs(60),
        ..cfg(b.port)
    };
    let (a, _task, mut reports) = adapter(c, 1).await;
    let t0 = Instant::now();
    a.dispatch(cmd(
        1,
        "d1",
        json!({"limit_kmh": 60}),
        10_000,
        Failsafe::Blank { after_s: 1 },
    ))
    .unwrap();
    reports.wait_for("confirmation", T, is_confirmed(1)).await;
    reports.skip_unread();
    let blank = DeviceState::Blank;
    reports
        .wait_for(
            "blank",
            T,
            |r| matches!(r, DeviceReport::State { state, .. } if *state == blank),
        )
        .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "only after after_s without heartbeat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_devices_out_of_failsafe() {
    let Some(b) = Broker::start() else { return };
    let s = sim(
        &b,
        1,
        SimOpts {
            heartbeat: Duration::from_millis(200),
            ..sim_opts()
        },
    )
    .await;
    let (a, _task, mut reports) = adapter(cfg(b.port), 1).await;
    a.dispatch(cmd(
        1,
        "d1",
        json!({"limit_kmh": 60}),
        10_000,
        Failsafe::Blank { after_s: 1 },
    ))
    .unwrap();
    reports.wait_for("confirmation", T, is_confirmed(1)).await;
    reports.skip_unread();
    let later = reports.collect_for(Duration::from_millis(1500)).await;
    assert!(
        later
            .iter()
            .any(|r| matches!(r, DeviceReport::State { .. })),
        "device heartbeats arrive"
    );
    let blank = DeviceState::Blank;
    assert!(
        !later
            .iter()
            .any(|r| matches!(r, DeviceReport::State { state, .. } if *state == blank)),
        "{later:?}"
    );
    assert_eq!(s.state("d1"), Some(st(json!({"limit_kmh": 60}))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapter_reconnects_after_a_broker_restart() {
    let Some(mut b) = Broker::start() else { return };
    let s = sim(&b, 1, sim_opts()).await;
    let c = MqttConfig {
        ack_timeout: Duration::from_millis(150),
        max_retries: 30,
        ..cfg(b.port)
    };
    let (a, _task, mut reports) = adapter(c, 1).await;
    a.dispatch(cmd(
        1,
        "d1",
        json!({"limit_kmh": 60}),
        20_000,
        Failsafe::Hold,
    ))
    .unwrap();
    reports
        .wait_for("confirmation of 1", T, is_confirmed(1))
        .await;

    b.kill();
    let t0 = Instant::now();
    while a.is_connected() {
        assert!(
            t0.elapsed() < T,
            "adapter did not notice the broker going away"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Dispatched while the broker is down: held, sent after the reconnect.
    a.dispatch(cmd(
        2,
        "d1",
        json!({"limit_kmh": 80}),
        20_000,
        Failsafe::Hold,
    ))
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.restart();
    a.wait_connected(Duration::from_secs(10))
        .await
        .expect("adapter reconnects");
    s.wait_ready(Duration::from_secs(10))
        .await
        .expect("devices reconnect");
    let r = reports
        .wait_for(
            "confirmation of 2",
            Duration::from_secs(10),
            is_confirmed(2),
        )
        .await;
    assert!(
        matches!(r, DeviceReport::Confirmed { state, .. } if state.to_json() == json!({"limit_kmh": 80}))
    );
    a.dispatch(cmd(
        3,
        "d1",
        json!({"limit_kmh": 100}),
        20_000,
        Failsafe::Hold,
    ))
    .unwrap();
    reports
        .wait_for("confirmation of 3", T, is_confirmed(3))
        .await;
    assert!(!reports.history.iter().any(|r| matches!(
        r,
        DeviceReport::Failed { .. } | DeviceReport::Expired { .. }
    )));
}

/// A device state from its JSON.
#[allow(dead_code)]
fn st(v: serde_json::Value) -> DeviceState {
    DeviceState::from_json(&v).unwrap()
}
