//! The centre over a real MQTT broker (Debian's mosquitto): roadside
//! readings published on the broker are stored and drive the brain;
//! commands go out on the command topics and the device state the centre
//! shows is what the (simulated MQTT) devices confirmed; a device that goes
//! silent is shown offline.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestServer;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use zhilu_devices::{DeviceSim, SimOpts};

struct Broker {
    child: Child,
    port: u16,
    bin: PathBuf,
    conf: PathBuf,
}

impl Broker {
    /// Stops the broker (SIGKILL).
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port.
    fn start_again(&mut self) {
        self.child = spawn_broker(&self.bin, &self.conf, self.port);
    }
}

fn spawn_broker(bin: &std::path::Path, conf: &std::path::Path, port: u16) -> Child {
    let child = Command::new(bin)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "mosquitto did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn broker() -> Option<Broker> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(bin) = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
    else {
        assert!(
            std::env::var("ZHILU_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "mosquitto not installed but ZHILU_REQUIRE_SERVICES=1"
        );
        eprintln!("skipped: mosquitto not installed");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = common::temp_dir("mqtt");
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let child = spawn_broker(&bin, &conf, port);
    Some(Broker {
        child,
        port,
        bin,
        conf,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_and_commands_over_mqtt() {
    let Some(b) = broker() else { return };
    let prefix = "zhilu/test";
    let s = TestServer::start("sqlite", |c| {
        c.mqtt.ingest = true;
        c.mqtt.port = b.port;
        c.mqtt.prefix = prefix.into();
        c.mqtt.ack_timeout_s = 0.5;
        c.mqtt.heartbeat_s = 0.5;
        c.mqtt.device_timeout_s = 1.5;
        c.devices.adapter = zhilu_server::config::AdapterKind::Mqtt;
    })
    .await
    .unwrap();
    let devices = zhilu_server::engine::fleet::commandable_devices(&s.road);
    let sim = DeviceSim::start(
        "127.0.0.1",
        b.port,
        prefix,
        devices.clone(),
        SimOpts {
            confirm_delay: Duration::from_millis(20),
            heartbeat: Duration::from_millis(300),
            ..SimOpts::default()
        },
    )
    .unwrap();
    sim.wait_ready(Duration::from_secs(5)).await.unwrap();

    // A roadside gateway publishes the morning: weather and detector rows,
    // CSV without a header, a few hundred rows a message.
    let mut o = MqttOptions::new("gateway-1", "127.0.0.1", b.port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 64);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let mut published = 0usize;
    for (kind, body) in common::day_batches(&s.dir, 300) {
        let topic = match kind {
            "observations" => "obs",
            "weather" => "weather",
            _ => "positions",
        };
        let rows: String = body.lines().skip(1).map(|l| format!("{l}\n")).collect();
        published += rows.lines().count();
        client
            .publish(
                format!("{prefix}/readings/{topic}"),
                QoS::AtLeastOnce,
                false,
                rows,
            )
            .await
            .unwrap();
    }
    // Everything published is stored.
    let store = zhilu_store::Store::open(&s.cfg.storage.url).await.unwrap();
    let t0 = Instant::now();
    loop {
        let c = store.count_readings().await.unwrap();
        let n = (c.obs + c.weather + c.positions) as usize;
        if n == published {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{n} of {published} stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Fog limits went out over MQTT and the signs confirmed them: the centre
    // shows exactly what each device reports.
    let viewer = s.login("viewer").await;
    s.settle(&viewer).await;
    let shown = s
        .wait_for(&viewer, "/api/devices", 15, |v| {
            v.as_array()
                .unwrap()
                .iter()
                .filter(|d| d["state"]["action"] == "speed_limit")
                .count()
                >= 3
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown = {
        let _ = shown;
        s.get(&viewer, "/api/devices").await
    };
    let mut compared = 0;
    for d in shown.as_array().unwrap() {
        let id = d["device"].as_str().unwrap();
        if d["state"]["action"] == "speed_limit" {
            assert_eq!(
                Some(d["shows"].clone()),
                sim.state(id).map(|s| s.to_json()),
                "{id}"
            );
            assert_eq!(d["online"], true);
            compared += 1;
        }
    }
    assert!(compared >= 3);
    // A sign that goes silent is shown offline.
    let silent = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["state"]["action"] == "speed_limit")
        .unwrap()["device"]
        .as_str()
        .unwrap()
        .to_string();
    sim.go_silent(&silent).unwrap();
    s.wait_for(&viewer, "/api/devices", 10, |v| {
        v.as_array()
            .unwrap()
            .iter()
            .any(|d| d["device"] == silent.as_str() && d["online"] == false)
    })
    .await;
    let admin = s.login("admin").await;
    let audit = s.get(&admin, "/api/audit?limit=10000").await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "device.offline" && a["target"] == silent.as_str())
    );
    store.close().await;
}

/// The limit each speed-limit sign shows, as the centre's API reports it.
fn limits(devices: &serde_json::Value) -> std::collections::BTreeMap<String, u64> {
    devices
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| {
            Some((
                d["device"].as_str()?.to_string(),
                d["shows"]["limit_kmh"].as_u64()?,
            ))
        })
        .collect()
}

/// Killed during a fog plan with the signs on MQTT: the signs hold their
/// fog limits through the centre's last will (no blanking on a short
/// outage); and when they come back blank (the gantries lost power too),
/// the restarted centre re-commands every sign to its plan's limit within
/// seconds — before the next tick — and counts them out of plan until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_fog_recommands_every_sign() {
    let Some(b) = broker() else { return };
    let prefix = "zhilu/restart";
    let mut s = TestServer::start("sqlite", |c| {
        c.mqtt.port = b.port;
        c.mqtt.prefix = prefix.into();
        c.mqtt.ack_timeout_s = 0.5;
        c.mqtt.heartbeat_s = 0.2;
        c.mqtt.device_timeout_s = 1.5;
        c.devices.adapter = zhilu_server::config::AdapterKind::Mqtt;
        c.devices.fog_hold_s = 2;
        c.devices.fog_safe_kmh = 20;
        c.devices.failsafe_after_s = 1;
        c.devices.out_of_plan_alarm_s = 1;
    })
    .await
    .unwrap();
    let devices = zhilu_server::engine::fleet::commandable_devices(&s.road);
    let opts = SimOpts {
        confirm_delay: Duration::from_millis(20),
        heartbeat: Duration::from_millis(200),
        ..SimOpts::default()
    };
    let sim = DeviceSim::start("127.0.0.1", b.port, prefix, devices.clone(), opts.clone()).unwrap();
    sim.wait_ready(Duration::from_secs(5)).await.unwrap();

    // Feed the morning until the fog plan has limits on several signs.
    let op = s.login("op").await;
    let viewer = s.login("viewer").await;
    let mut plan = Default::default();
    for (kind, body) in common::day_batches(&s.dir, 500) {
        let (st, a) = s.post_csv(&op, kind, body).await;
        assert_eq!(st, 200, "{a}");
        plan = limits(&s.get(&viewer, "/api/devices").await);
        if plan.len() >= 4 {
            break;
        }
    }
    s.settle(&viewer).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let plan = {
        let _ = plan;
        limits(&s.get(&viewer, "/api/devices").await)
    };
    assert!(plan.len() >= 4, "fog limits in force: {plan:?}");
    let events = s.get(&viewer, "/api/events?active=true&kind=fog").await;
    assert!(
        !events.as_array().unwrap().is_empty(),
        "a fog event is open"
    );
    for (id, v) in &plan {
        assert_eq!(
            sim.state(id).map(|x| x.to_json()),
            Some(serde_json::json!({"limit_kmh": v}))
        );
    }

    // kill: the broker publishes the centre's last will at once.
    s.kill().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for (id, v) in &plan {
        assert_eq!(
            sim.state(id).map(|x| x.to_json()),
            Some(serde_json::json!({"limit_kmh": v})),
            "{id}: a fog limit holds through the centre's `offline`"
        );
    }
    // The gantries lose power as well: they come back blank (one of them
    // broken: it ignores every command).
    drop(sim);
    let stubborn = plan.keys().next().unwrap().clone();
    let mut opts = opts;
    opts.ignore_commands.insert(stubborn.clone());
    let sim = DeviceSim::start("127.0.0.1", b.port, prefix, devices.clone(), opts).unwrap();
    sim.wait_ready(Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in plan.keys() {
        assert_eq!(sim.state(id), Some(zhilu_devices::DeviceState::Blank));
    }

    // Restart: no reading arrives (no tick closes), yet every sign shows its
    // plan's limit again within a few seconds.
    let t0 = Instant::now();
    s.boot_again().await;
    loop {
        let wrong: Vec<(&String, Option<serde_json::Value>)> = plan
            .iter()
            .filter(|(id, _)| **id != stubborn)
            .map(|(id, _)| (id, sim.state(id).map(|x| x.to_json())))
            .filter(|(id, shown)| {
                *shown != Some(serde_json::json!({"limit_kmh": plan[id.as_str()]}))
            })
            .collect();
        if wrong.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "not re-commanded after the restart: {wrong:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t0.elapsed();
    eprintln!("every sign back to its plan {took:?} after the restart");
    let viewer = s.login("viewer").await;
    let reconciles = |actions: &serde_json::Value, id: &str| {
        actions
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["mode"] == "reconcile" && a["command"]["device"] == id)
            .count()
    };
    // Each sign re-commanded: its written decision sent again under its
    // own id (audited `action.resent`), or a new one (`reconcile`) once it
    // reported showing less (MQTT.md, "Delivery of decisions").
    let actions = s.get(&viewer, "/api/actions?limit=10000").await;
    let audit = s
        .get(&s.login("admin").await, "/api/audit?limit=10000")
        .await;
    for id in plan.keys() {
        let resent = audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "action.resent" && e["target"] == id.as_str());
        assert!(resent || reconciles(&actions, id) >= 1, "{id} re-commanded");
    }
    // The broken sign shows less than its plan: an alarm until it complies.
    let alarm = s
        .wait_for(
            &viewer,
            "/api/events?active=true&kind=device_out_of_plan",
            5,
            |v| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["device"] == stubborn.as_str())
            },
        )
        .await;
    assert_eq!(alarm.as_array().unwrap().len(), 1, "{alarm}");

    // A sign that loses power longer than the fog hold comes back showing
    // the fog-safe limit (20 here); once it reports, it is re-commanded.
    {
        let (cut, limit) = plan
            .iter()
            .find(|(id, v)| **id != stubborn && **v > 20)
            .expect("a sign above the fog-safe limit");
        sim.go_silent(cut).unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        sim.wake(cut).unwrap();
        let t1 = Instant::now();
        loop {
            let shown = sim.state(cut).map(|x| x.to_json());
            if shown == Some(serde_json::json!({"limit_kmh": limit})) {
                break;
            }
            assert!(t1.elapsed() < Duration::from_secs(5), "{cut}: {shown:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = reconciles(&actions, cut);
        let actions = s.get(&viewer, "/api/actions?limit=10000").await;
        assert!(
            reconciles(&actions, cut) > before,
            "{cut} re-commanded on its return"
        );
    }
    // The centre shows the signs as confirmed, in plan (but the broken one).
    s.wait_for(&viewer, "/api/devices", 5, |v| {
        let mut want = plan.clone();
        want.remove(&stubborn);
        let mut got = limits(v);
        got.remove(&stubborn);
        got == want
    })
    .await;
}

/// Readings on MQTT are screened for their time as over HTTP: a row dated
/// a year ahead is refused into the quarantine (never stored as a reading,
/// never moving the data clock), the message is still acknowledged (not
/// redelivered forever), the rows beside it are stored, and health names
/// the source. Health says the device broker is unreachable while it is
/// down, and ok once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_rows_are_screened_and_health_knows_the_broker() {
    let Some(mut b) = broker() else { return };
    let prefix = "zhilu/screen";
    let s = TestServer::start("sqlite", |c| {
        c.mqtt.ingest = true;
        c.mqtt.port = b.port;
        c.mqtt.prefix = prefix.into();
        c.mqtt.heartbeat_s = 0.2;
        c.devices.adapter = zhilu_server::config::AdapterKind::Mqtt;
        c.storage.min_free_mb = 0;
        c.time.recover_s = 1.0;
    })
    .await
    .unwrap();
    let op = s.login("op").await;
    s.wait_for(&op, "/api/health", 10, |h| h["status"] == "ok")
        .await;
    let mut o = MqttOptions::new("gateway-screen", "127.0.0.1", b.port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 64);
    tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    // A weather row of the morning and one a year ahead.
    let (_, body) = common::day_batches(&s.dir, 10)
        .into_iter()
        .find(|(k, _)| *k == "weather")
        .unwrap();
    let line = body.lines().nth(1).unwrap();
    let station = line.split(',').nth(1).unwrap().to_string();
    let (t, rest) = line.split_once(',').unwrap();
    let ms = zhilu_io::parse_time(t.as_bytes()).unwrap();
    let ahead = format!(
        "{},{rest}",
        zhilu_io::jsonl::format_time(ms + 365 * 86_400_000, 8 * 3600)
    );
    // (Again until the centre's ingest has subscribed: the broker keeps
    // nothing for a session it does not know yet. A copy is stored once.)
    let mut q = serde_json::Value::Null;
    for _ in 0..20 {
        // (In messages of their own: within one, a year's jump is a bad row.)
        for row in [&ahead, line] {
            client
                .publish(
                    format!("{prefix}/readings/weather"),
                    QoS::AtLeastOnce,
                    false,
                    format!("{row}\n"),
                )
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        q = s.get(&op, "/api/quarantine").await;
        if !q.as_array().unwrap().is_empty() {
            break;
        }
    }
    assert_eq!(q[0]["source"], station.as_str(), "{q}");
    assert_eq!(q[0]["ts_ms"], ms + 365 * 86_400_000, "{q}");
    let h = s
        .wait_for(&op, "/api/health", 5, |h| {
            h["sources_off"].to_string().contains(&station)
        })
        .await;
    assert_eq!(h["status"], "degraded", "{h}");
    let store = s.state().store.clone();
    let t0 = Instant::now();
    while store.count_readings().await.unwrap().weather != 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the good row not stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.wait_for(&op, "/api/health", 10, |h| h["status"] == "ok")
        .await;
    let quarantined = s
        .get(&op, "/api/quarantine")
        .await
        .as_array()
        .unwrap()
        .len();

    // The broker goes down: health says so; back: ok.
    b.stop();
    let h = s
        .wait_for(&op, "/api/health", 10, |h| {
            h["reasons"]
                .to_string()
                .contains("device broker unreachable")
        })
        .await;
    assert_eq!(h["status"], "degraded", "{h}");
    b.start_again();
    s.wait_for(&op, "/api/health", 15, |h| h["status"] == "ok")
        .await;
    // The refused row was acknowledged with its message: nothing came
    // again after the reconnect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.count_readings().await.unwrap().weather, 1);
    let again = s.get(&op, "/api/quarantine").await;
    assert_eq!(again.as_array().unwrap().len(), quarantined, "{again}");
}
