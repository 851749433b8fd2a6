//! Chaos under load (issue 19): one run of the real `zhilu serve` fed a
//! simulated morning over HTTP (detector rows) and MQTT (weather rows, a
//! real mosquitto on loopback, devices on MQTT too), during which a
//! source's clock is poisoned (rows a year ahead), the server is killed
//! with SIGKILL mid-flight and restarted, the broker restarts, and the
//! database's disk (a small tmpfs) fills up and is freed. Afterwards every
//! row that was acknowledged (HTTP 2xx, MQTT PUBACK) is stored, as sent,
//! once; health said `degraded` with the right reason at each stage and
//! `ok` after it; and every device shows what the centre's plans require.
//!
//! Needs mosquitto and the right to mount a tmpfs (root); without them it
//! is skipped, unless ZHILU_REQUIRE_SERVICES=1 (CI), where it fails.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use serde_json::Value;
use tokio::sync::mpsc;
use zhilu_devices::{DeviceSim, SimOpts};

mod common;
use common::{BIN, add_operator, login, serve, temp_dir};

const PASSWORD: &str = "chaos test password";
const PREFIX: &str = "zhilu/chaos";
const YEAR_MS: i64 = 365 * 86_400_000;

fn required() -> bool {
    std::env::var("ZHILU_REQUIRE_SERVICES").as_deref() == Ok("1")
}

fn skip(why: &str) {
    assert!(!required(), "{why} but ZHILU_REQUIRE_SERVICES=1");
    eprintln!("skipped: {why}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A size-limited file system for the database: a tmpfs, unmounted (and
/// the folder removed) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, mb: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A real mosquitto that keeps its sessions and queued messages across a
/// restart (persistence on, saved at shutdown), as a production broker.
struct Broker {
    bin: PathBuf,
    conf: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn start(dir: &Path) -> Option<Broker> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let bin = std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|d| d.join("mosquitto"))
            .find(|p| p.is_file())?;
        let port = free_port();
        let data = dir.join("mosquitto");
        std::fs::create_dir_all(&data).unwrap();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nautosave_interval 0\nmax_queued_messages 0\n",
                data.display()
            ),
        )
        .unwrap();
        let mut b = Broker {
            bin,
            conf,
            port,
            child: None,
        };
        b.up();
        Some(b)
    }

    fn up(&mut self) {
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "mosquitto did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker as an operator would (SIGTERM: it saves its state).
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_sigterm(c.id());
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// A roadside gateway on MQTT: publishes one message at a time (QoS 1)
/// and knows which ones the broker acknowledged.
struct Gateway {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Gateway {
    fn start(port: u16) -> Gateway {
        let mut o = MqttOptions::new("chaos-gateway", "127.0.0.1", port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut el) = AsyncClient::new(o, 64);
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(ev) => {
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Gateway { client, events }
    }

    /// Publishes and waits (≤ 2 s) for the broker's PUBACK of this very
    /// message: `true` when the broker took it.
    async fn publish(&mut self, topic: &str, payload: String) -> bool {
        while self.events.try_recv().is_ok() {}
        if self
            .client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .is_err()
        {
            return false;
        }
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut pkid = None;
        loop {
            let ev = match tokio::time::timeout_at(until, self.events.recv()).await {
                Ok(Some(ev)) => ev,
                _ => return false,
            };
            match ev {
                Event::Outgoing(Outgoing::Publish(id)) if pkid.is_none() => pkid = Some(id),
                Event::Incoming(Packet::PubAck(a)) if Some(a.pkid) == pkid => return true,
                _ => {}
            }
        }
    }
}

/// Every command the centre publishes to a device, as the broker delivers
/// it: a subscriber on `{prefix}/devices/+/cmd` with a persistent session
/// (QoS 1, clean session off), so nothing published while it reconnects
/// after the broker's restart is missed.
struct CommandWatch {
    seen: Arc<Mutex<Vec<(Instant, Value)>>>,
    subscribed: Arc<std::sync::atomic::AtomicBool>,
}

impl CommandWatch {
    fn start(port: u16) -> CommandWatch {
        let mut o = MqttOptions::new("chaos-command-watch", "127.0.0.1", port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_clean_session(false);
        let (client, mut el) = AsyncClient::new(o, 64);
        let seen: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
        let subscribed: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (s2, sub2) = (seen.clone(), subscribed.clone());
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client
                            .subscribe(format!("{PREFIX}/devices/+/cmd"), QoS::AtLeastOnce)
                            .await;
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        sub2.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(v) = serde_json::from_slice::<Value>(&p.payload) {
                            s2.lock().unwrap().push((Instant::now(), v));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        CommandWatch { seen, subscribed }
    }

    async fn wait_ready(&self) {
        let t0 = Instant::now();
        while !self.subscribed.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "command watch not subscribed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Fills the file system at `dir` through `f` until at most `leave`
/// bytes are free (0: to the last byte).
fn fill(f: &mut std::fs::File, dir: &Path, leave: u64) {
    let free = || {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .unwrap()
    };
    for chunk in [64usize << 10, 4 << 10, 512, 1] {
        let buf = vec![0u8; chunk];
        if leave > 0 {
            let room = free().saturating_sub(leave) as usize;
            for _ in 0..room / chunk {
                if f.write_all(&buf).is_err() {
                    break;
                }
            }
        } else {
            while f.write_all(&buf).is_ok() {}
        }
        let _ = f.sync_all();
    }
}

/// Reads a live stream, keeping each message (but keep-alives) with the
/// time it arrived.
async fn listen(mut r: reqwest::Response, heard: Arc<Mutex<Vec<(Instant, String)>>>) {
    let mut buf = String::new();
    while let Ok(Some(chunk)) = r.chunk().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find("\n\n") {
            let m: String = buf.drain(..i + 2).collect();
            let m = m.trim().to_string();
            if m.starts_with("event:") && !m.starts_with("event: hello") {
                heard.lock().unwrap().push((Instant::now(), m));
            }
        }
    }
}

/// The server process.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path, db: &str) -> Server {
        let config = dir.join("zhilu.toml");
        let (child, url) = serve(
            &dir.join("day/ROAD.toml"),
            Some(&config),
            db,
            &std::env::var("CHAOS_LOG").unwrap_or("error".into()),
        );
        Server { child, url }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A row's natural key and the line as sent.
type Sent = BTreeMap<String, String>;

fn obs_key(line: &str) -> String {
    let f: Vec<&str> = line.split(',').collect();
    let t = zhilu_io::parse_time(f[0].as_bytes()).unwrap();
    format!("{t}/{}/{}", f[1], f[2])
}

fn weather_key(line: &str) -> String {
    let f: Vec<&str> = line.split(',').collect();
    let t = zhilu_io::parse_time(f[0].as_bytes()).unwrap();
    format!("{t}/{}", f[1])
}

fn retime(line: &str, by_ms: i64) -> String {
    let (t, rest) = line.split_once(',').unwrap();
    let ms = zhilu_io::parse_time(t.as_bytes()).unwrap();
    format!(
        "{},{rest}",
        zhilu_io::jsonl::format_time(ms + by_ms, 8 * 3600)
    )
}

async fn health(http: &reqwest::Client, url: &str) -> Value {
    match http.get(format!("{url}/api/health")).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Waits until health satisfies `pred` (≤ `secs`).
async fn health_until(
    http: &reqwest::Client,
    url: &str,
    secs: u64,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let h = health(http, url).await;
        if pred(&h) {
            return h;
        }
        assert!(Instant::now() < until, "health never {what}: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ok(h: &Value) -> bool {
    h["status"] == "ok"
}

fn degraded_by(h: &Value, words: &str) -> bool {
    h["status"] == "degraded"
        && h["reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x.as_str().unwrap_or("").contains(words)))
}

/// One step of the morning's feed.
#[derive(Clone)]
enum Step {
    /// Detector rows over HTTP.
    Obs(Vec<String>),
    /// Weather rows over MQTT.
    Weather(Vec<String>),
}

/// HTTP posts in flight: what was acknowledged, what must be sent again.
#[derive(Default)]
struct Ledger {
    obs: Sent,
    weather: Sent,
    resend: VecDeque<Step>,
    refused_503: u64,
    /// The last detector rows acknowledged.
    last_acked: Vec<String>,
    duplicates: u64,
}

async fn post_obs(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    header: &str,
    rows: &[String],
) -> Result<Value, u16> {
    let body = format!("{header}\n{}\n", rows.join("\n"));
    let r = http
        .post(format!("{url}/api/ingest/observations"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|_| 0u16)?;
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if (200..300).contains(&s) {
        Ok(v)
    } else {
        Err(s)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_under_load_loses_nothing_and_health_tells_the_truth() {
    let dir = temp_dir("chaos");
    let Some(mut broker) = Broker::start(&dir) else {
        return skip("mosquitto not installed");
    };
    let Some(disk) = Tmpfs::mount(&dir.join("disk"), 48) else {
        return skip("cannot mount a tmpfs (not root?)");
    };
    let t_start = Instant::now();

    // A 16-station morning with fog (the devices' plans) and ice.
    let st = Command::new(BIN)
        .args(["gen-day", "--out"])
        .arg(dir.join("day"))
        .args(["--stations", "16", "--from-hour", "5", "--hours", "2"])
        .args(["--vehicles", "0", "--seed", "3"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let road = zhilu_road::RoadBook::from_toml(
        &std::fs::read_to_string(dir.join("day/ROAD.toml")).unwrap(),
        "ROAD.toml",
    )
    .unwrap();
    let modes = [
        "speed_limit",
        "message",
        "fog_lights",
        "entry",
        "deicing",
        "tunnel_plan",
    ]
    .map(|k| format!("{k} = \"auto\""))
    .join("\n");
    std::fs::write(
        dir.join("zhilu.toml"),
        format!(
            "[storage]\nmin_free_mb = 0\n\
             [ingest]\ntick_grace_s = 1.0\n\
             [time]\nrecover_s = 2.0\n\
             [devices]\nadapter = \"mqtt\"\nout_of_plan_alarm_s = 2\n\
             [mqtt]\ningest = true\nport = {}\nprefix = \"{PREFIX}\"\nack_timeout_s = 0.5\n\
             heartbeat_s = 0.5\ndevice_timeout_s = 5.0\n\
             [decisions.modes]\n{modes}\n",
            broker.port
        ),
    )
    .unwrap();
    let db = format!("sqlite://{}", disk.0.join("zhilu.db").display());
    add_operator(&db, PASSWORD);

    // The feed: detector rows (120 a request) and weather rows (one
    // message a time step), merged in time order.
    let read = |f: &str| -> (String, Vec<String>) {
        let text = std::fs::read_to_string(dir.join("day").join(f)).unwrap();
        let mut lines = text.lines().map(str::to_string);
        let head = lines.next().unwrap();
        (head, lines.collect())
    };
    let (obs_head, obs_rows) = read("OBS.csv");
    let (wx_head, wx_rows) = read("WEATHER.csv");
    let mut timed: Vec<(i64, bool, String)> = obs_rows
        .into_iter()
        .map(|l| {
            (
                zhilu_io::parse_time(l.split(',').next().unwrap().as_bytes()).unwrap(),
                false,
                l,
            )
        })
        .chain(wx_rows.into_iter().map(|l| {
            (
                zhilu_io::parse_time(l.split(',').next().unwrap().as_bytes()).unwrap(),
                true,
                l,
            )
        }))
        .collect();
    timed.sort_by_key(|(t, w, _)| (*t, *w));
    let mut steps: Vec<Step> = Vec::new();
    for (_, is_wx, l) in timed {
        match (steps.last_mut(), is_wx) {
            (Some(Step::Obs(v)), false) if v.len() < 120 => v.push(l),
            (Some(Step::Weather(v)), true) => v.push(l),
            (_, false) => steps.push(Step::Obs(vec![l])),
            (_, true) => steps.push(Step::Weather(vec![l])),
        }
    }
    let n = steps.len();
    eprintln!("chaos: {n} steps");

    // The devices, on the broker.
    let devices = zhilu_server::engine::fleet::commandable_devices(&road);
    let sim = DeviceSim::start(
        "127.0.0.1",
        broker.port,
        PREFIX,
        devices.clone(),
        SimOpts {
            confirm_delay: Duration::from_millis(20),
            heartbeat: Duration::from_millis(300),
            ..SimOpts::default()
        },
    )
    .unwrap();
    sim.wait_ready(Duration::from_secs(5)).await.unwrap();
    let mut gateway = Gateway::start(broker.port);
    let watch = CommandWatch::start(broker.port);
    watch.wait_ready().await;

    let http = reqwest::Client::new();
    let mut server = Server::start(&dir, &db);
    let mut token = login(&http, &server.url, PASSWORD).await;
    health_until(&http, &server.url, 10, "ok at start", ok).await;

    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    let mut inflight = tokio::task::JoinSet::new();
    let (poison_at, kill_at, broker_at, disk_at) =
        (n * 15 / 100, n * 35 / 100, n * 55 / 100, n * 75 / 100);
    let mut stages_seen = Vec::new();
    let mut next = 0usize;
    let mut mqtt_paused_until = Instant::now();
    let mut wx_backlog: VecDeque<Vec<String>> = VecDeque::new();
    while next < n
        || !inflight.is_empty()
        || !ledger.lock().unwrap().resend.is_empty()
        || !wx_backlog.is_empty()
    {
        assert!(
            t_start.elapsed() < Duration::from_secs(150),
            "chaos run too slow"
        );

        // ---- the stages of bad luck, each at its point in the morning.
        if next == poison_at && !stages_seen.contains(&"poison") {
            stages_seen.push("poison");
            // One detector's rows dated a year ahead (HTTP), one weather
            // station's too (MQTT): refused, named, quarantined.
            let Step::Obs(rows) = steps[next..]
                .iter()
                .find(|s| matches!(s, Step::Obs(_)))
                .unwrap()
                .clone()
            else {
                unreachable!()
            };
            let det = rows[0].split(',').nth(1).unwrap().to_string();
            let poisoned: Vec<String> = rows
                .iter()
                .filter(|l| l.split(',').nth(1) == Some(det.as_str()))
                .map(|l| retime(l, YEAR_MS))
                .collect();
            let r = http
                .post(format!("{}/api/ingest/observations", server.url))
                .bearer_auth(&token)
                .header("content-type", "text/csv")
                .body(format!("{obs_head}\n{}\n", poisoned.join("\n")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 422, "a year ahead is refused");
            let a: Value = r.json().await.unwrap();
            assert_eq!(a["refused"].as_u64(), Some(poisoned.len() as u64), "{a}");
            let wx_line = match steps[next..].iter().find(|s| matches!(s, Step::Weather(_))) {
                Some(Step::Weather(w)) => w[0].clone(),
                _ => unreachable!(),
            };
            assert!(
                gateway
                    .publish(
                        &format!("{PREFIX}/readings/weather"),
                        format!("{}\n", retime(&wx_line, YEAR_MS))
                    )
                    .await
            );
            let h = health_until(&http, &server.url, 5, "degraded by the clock", |h| {
                degraded_by(h, "source clocks off") && h["sources_off"].to_string().contains(&det)
            })
            .await;
            eprintln!("chaos: poisoned clock: {}", h["reasons"]);
        }
        if next == kill_at && !stages_seen.contains(&"kill") {
            stages_seen.push("kill");
            // The clock poisoning is over: health came back.
            health_until(&http, &server.url, 10, "ok after the poisoned clock", ok).await;
            // SIGKILL with requests in flight, and right after the broker
            // took a weather message (which the centre may be storing):
            // the requests are sent again after the restart (those stored
            // before the kill come back as duplicates, stored once); the
            // broker keeps the message until the centre has stored it.
            let j = next
                + steps[next..]
                    .iter()
                    .position(|s| matches!(s, Step::Weather(_)))
                    .unwrap();
            // Sent now, not again later.
            let Step::Weather(wx) = std::mem::replace(&mut steps[j], Step::Weather(Vec::new()))
            else {
                unreachable!()
            };
            tokio::time::sleep(Duration::from_millis(10)).await;
            let took = gateway
                .publish(
                    &format!("{PREFIX}/readings/weather"),
                    format!("{}\n", wx.join("\n")),
                )
                .await;
            server.kill9();
            if took {
                let mut l = ledger.lock().unwrap();
                for r in &wx {
                    l.weather.insert(weather_key(r), r.clone());
                }
            }
            while inflight.join_next().await.is_some() {}
            server = Server::start(&dir, &db);
            token = login(&http, &server.url, PASSWORD).await;
            health_until(&http, &server.url, 15, "ok after the restart", ok).await;
            // A gateway whose answer was lost in the kill sends its last
            // batch again: stored once, the answer says so.
            let again = ledger.lock().unwrap().last_acked.clone();
            assert!(!again.is_empty());
            let v = post_obs(&http, &server.url, &token, &obs_head, &again)
                .await
                .expect("re-sent batch accepted");
            assert_eq!(v["duplicates"].as_u64(), Some(again.len() as u64), "{v}");
            ledger.lock().unwrap().duplicates += again.len() as u64;
            eprintln!("chaos: killed and restarted at {:?}", t_start.elapsed());
        }
        if next == broker_at && !stages_seen.contains(&"broker") {
            stages_seen.push("broker");
            while inflight.join_next().await.is_some() {}
            broker.down();
            let h = health_until(&http, &server.url, 10, "degraded by the broker", |h| {
                degraded_by(h, "broker")
            })
            .await;
            eprintln!("chaos: broker down: {}", h["reasons"]);
            // Readings keep arriving over HTTP meanwhile.
            for s in steps.iter().skip(next).take(6) {
                if let Step::Obs(rows) = s {
                    match post_obs(&http, &server.url, &token, &obs_head, rows).await {
                        Ok(v) => {
                            let mut l = ledger.lock().unwrap();
                            l.duplicates += v["duplicates"].as_u64().unwrap_or(0);
                            for r in rows {
                                l.obs.insert(obs_key(r), r.clone());
                            }
                        }
                        Err(_) => ledger.lock().unwrap().resend.push_back(s.clone()),
                    }
                } else if let Step::Weather(rows) = s {
                    wx_backlog.push_back(rows.clone());
                }
                next += 1;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            broker.up();
            health_until(&http, &server.url, 15, "ok after the broker came back", ok).await;
            eprintln!("chaos: broker back at {:?}", t_start.elapsed());
            continue;
        }
        if next == disk_at && !stages_seen.contains(&"disk") {
            stages_seen.push("disk");
            while inflight.join_next().await.is_some() {}
            // The stream, watched through the episode.
            let stream = http
                .get(format!("{}/api/stream", server.url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(stream.status().as_u16(), 200);
            let heard: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
            let listener = tokio::spawn(listen(stream, heard.clone()));
            // A tick is left open (half its rows acknowledged); the
            // database's write-ahead log is emptied into its file (so every
            // write needs new room: SQLite otherwise goes on writing into
            // the room its log already has) and the volume fills to the
            // last byte — another process, or a watermark set too low
            // (this run has none, `min_free_mb = 0`; the watermark itself
            // is tested in `crates/server/tests/hardening.rs`). The open
            // tick's commit, due when its grace time ends, fails for real.
            let ahead: Vec<String> = steps[next..]
                .iter()
                .filter_map(|s| match s {
                    Step::Obs(r) => Some(r.clone()),
                    Step::Weather(_) => None,
                })
                .flatten()
                .take(1000)
                .collect();
            let t_of =
                |l: &String| zhilu_io::parse_time(l.split(',').next().unwrap().as_bytes()).unwrap();
            let t1 = t_of(&ahead[0]);
            let t2 = ahead.iter().map(t_of).find(|t| *t > t1).unwrap();
            let first: Vec<String> = ahead.iter().filter(|l| t_of(l) == t1).cloned().collect();
            let second: Vec<String> = ahead.iter().filter(|l| t_of(l) == t2).cloned().collect();
            for rows in [&first[..], &second[..second.len() / 2]] {
                let v = post_obs(&http, &server.url, &token, &obs_head, rows)
                    .await
                    .expect("accepted before the disk fills");
                let mut l = ledger.lock().unwrap();
                l.duplicates += v["duplicates"].as_u64().unwrap_or(0);
                for r in rows {
                    l.obs.insert(obs_key(r), r.clone());
                }
            }
            {
                let store = zhilu_store::Store::open(&db).await.unwrap();
                store.truncate_log().await.unwrap();
                store.close().await;
            }
            let filler = disk.0.join("filler");
            let mut f = std::fs::File::create(&filler).unwrap();
            fill(&mut f, &disk.0, 0);
            let h = health_until(&http, &server.url, 10, "degraded by a failed tick", |h| {
                degraded_by(h, "unwritten ticks waiting")
            })
            .await;
            let failed_at = Instant::now();
            assert!(degraded_by(&h, "commits failing"), "{h}");
            assert_eq!(h["disk_free_bytes"].as_u64(), Some(0), "{h}");
            eprintln!("chaos: disk full, a tick commit failed: {}", h["reasons"]);
            let mut refused = 0u64;
            // While it stays full: refused, nothing acknowledged.
            for _ in 0..3 {
                let Some(Step::Obs(rows)) = steps[next..]
                    .iter()
                    .find(|s| matches!(s, Step::Obs(_)))
                    .cloned()
                else {
                    break;
                };
                match post_obs(&http, &server.url, &token, &obs_head, &rows).await {
                    Ok(v) => panic!("acknowledged on a full disk after a failure: {v}"),
                    Err(503) => refused += 1,
                    Err(e) => panic!("full disk answered {e}"),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert_eq!(refused, 3);
            ledger.lock().unwrap().refused_503 += refused;
            let h = health(&http, &server.url).await;
            assert!(degraded_by(&h, "unwritten ticks waiting"), "{h}");
            // Nothing of the unwritten tick went out: no corridor state,
            // event, action or proposal on the stream (devices' own
            // reports still are), no device command.
            let tick_output = |m: &String| {
                ["state", "event", "action", "proposal"]
                    .iter()
                    .any(|k| m.starts_with(&format!("event: {k}\n")))
            };
            let out: Vec<String> = heard
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, m)| *t >= failed_at && tick_output(m))
                .map(|(_, m)| m.clone())
                .collect();
            assert!(
                out.is_empty(),
                "published while the tick is unwritten: {out:?}"
            );
            let sent: Vec<Value> = watch
                .seen
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, _)| *t >= failed_at)
                .map(|(_, c)| c.clone())
                .collect();
            assert!(
                sent.is_empty(),
                "sent while the tick is unwritten: {sent:?}"
            );
            // Space is back: the unwritten tick is written and goes out
            // without waiting for more readings, and the same server takes
            // readings again.
            drop(f);
            std::fs::remove_file(&filler).unwrap();
            health_until(&http, &server.url, 15, "ok after the disk was freed", ok).await;
            let after: Vec<String> = heard
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, _)| *t >= failed_at)
                .map(|(_, m)| m.clone())
                .collect();
            assert!(
                after.iter().any(tick_output),
                "the written tick never went out: {after:?}"
            );
            listener.abort();
            eprintln!(
                "chaos: disk freed at {:?}: the unwritten tick went out ({} stream messages)",
                t_start.elapsed(),
                after.len()
            );
            continue;
        }

        // ---- the feed: HTTP up to 3 in flight; weather after them.
        let resend = ledger.lock().unwrap().resend.pop_front();
        let step = match resend {
            Some(s) => Some(s),
            None if next < n => {
                next += 1;
                Some(steps[next - 1].clone())
            }
            None => None,
        };
        match step {
            Some(Step::Obs(rows)) => {
                while inflight.len() >= 3 {
                    inflight.join_next().await;
                }
                let (http, url, token, ledger, head) = (
                    http.clone(),
                    server.url.clone(),
                    token.clone(),
                    ledger.clone(),
                    obs_head.clone(),
                );
                inflight.spawn(async move {
                    match post_obs(&http, &url, &token, &head, &rows).await {
                        Ok(v) => {
                            let mut l = ledger.lock().unwrap();
                            l.duplicates += v["duplicates"].as_u64().unwrap_or(0);
                            for r in &rows {
                                l.obs.insert(obs_key(r), r.clone());
                            }
                            l.last_acked = rows;
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            ledger.lock().unwrap().resend.push_back(Step::Obs(rows));
                        }
                    }
                });
            }
            Some(Step::Weather(rows)) if !rows.is_empty() => wx_backlog.push_back(rows),
            Some(Step::Weather(_)) => {}
            None => {
                inflight.join_next().await;
            }
        }
        if Instant::now() >= mqtt_paused_until && !wx_backlog.is_empty() {
            while inflight.join_next().await.is_some() {}
            while let Some(rows) = wx_backlog.pop_front() {
                if gateway
                    .publish(
                        &format!("{PREFIX}/readings/weather"),
                        format!("{}\n", rows.join("\n")),
                    )
                    .await
                {
                    let mut l = ledger.lock().unwrap();
                    for r in &rows {
                        l.weather.insert(weather_key(r), r.clone());
                    }
                } else {
                    wx_backlog.push_front(rows);
                    mqtt_paused_until = Instant::now() + Duration::from_millis(500);
                    break;
                }
            }
        }
    }
    assert_eq!(stages_seen, ["poison", "kill", "broker", "disk"]);
    let _ = wx_head;

    // The end: everything taken, health ok, every device as planned.
    let rows_total = {
        let l = ledger.lock().unwrap();
        l.obs.len() + l.weather.len()
    };
    // What the broker acknowledged reaches the database: the centre
    // drains the broker's backlog (the weather held while the disk was
    // full), in order.
    {
        let store = zhilu_store::Store::open(&db).await.unwrap();
        let t0 = Instant::now();
        loop {
            let c = store.count_readings().await.unwrap();
            if (c.obs + c.weather) as usize >= rows_total {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{} of {rows_total} acknowledged rows stored",
                c.obs + c.weather
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        store.close().await;
    }
    let settle = Instant::now();
    let mut last = (-1i64, -1i64);
    loop {
        let h = health(&http, &server.url).await;
        let now = (
            h["rows"].as_i64().unwrap_or(0),
            h["ticks"].as_i64().unwrap_or(0),
        );
        if now == last && ok(&h) {
            break;
        }
        last = now;
        assert!(
            settle.elapsed() < Duration::from_secs(30),
            "never settled: {h}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let shown: Value = http
            .get(format!("{}/api/devices", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let metrics = http
            .get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let out_of_plan = metrics
            .lines()
            .find(|l| l.starts_with("zhilu_devices_out_of_plan "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok());
        let mismatched: Vec<String> = shown
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                let id = d["device"].as_str().unwrap();
                !d["pending"].is_null()
                    || sim.state(id).map(|s| s.to_json()).unwrap_or(Value::Null) != d["shows"]
            })
            .map(|d| d.to_string())
            .collect();
        if mismatched.is_empty() && out_of_plan == Some(0.0) {
            let limits = shown
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["shows"]["limit_kmh"].is_u64())
                .count();
            eprintln!(
                "chaos: {} devices in plan ({limits} speed limits)",
                devices.len()
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "devices not in plan: out_of_plan {out_of_plan:?}, {mismatched:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.kill9();
    drop(sim);

    // Every acknowledged row is stored, as sent, once.
    let store = zhilu_store::Store::open(&db).await.unwrap();
    let mut obs: HashMap<String, u32> = HashMap::new();
    let mut weather: HashMap<String, u32> = HashMap::new();
    let mut obs_rows: HashMap<String, zhilu_store::ObsRow> = HashMap::new();
    let mut after = 0;
    loop {
        let page = store.readings_after(after, i64::MIN, 50_000).await.unwrap();
        let Some(l) = page.last() else { break };
        after = l.seq();
        for r in page {
            match r {
                zhilu_store::Reading::Obs(o) => {
                    let k = format!("{}/{}/{}", o.ts_ms, o.detector, o.lane);
                    *obs.entry(k.clone()).or_default() += 1;
                    obs_rows.insert(k, o);
                }
                zhilu_store::Reading::Weather(w) => {
                    *weather
                        .entry(format!("{}/{}", w.ts_ms, w.station))
                        .or_default() += 1;
                }
                _ => {}
            }
        }
    }
    store.close().await;
    let l = ledger.lock().unwrap();
    for (k, line) in &l.obs {
        let o = obs_rows
            .get(k)
            .unwrap_or_else(|| panic!("acknowledged row lost: {line}"));
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(
            (o.detector.as_str(), o.lane.to_string()),
            (f[1], f[2].to_string()),
            "{line}"
        );
    }
    let lost: Vec<&String> = l
        .weather
        .iter()
        .filter(|(k, _)| !weather.contains_key(*k))
        .map(|(_, line)| line)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged weather rows lost ({} stored), first: {:?}",
        lost.len(),
        l.weather.len(),
        weather.len(),
        &lost[..lost.len().min(5)]
    );
    let dup_obs: Vec<&String> = obs
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(k, _)| k)
        .collect();
    let dup_wx: Vec<&String> = weather
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(
        dup_obs.is_empty() && dup_wx.is_empty(),
        "stored twice: {dup_obs:?} {dup_wx:?}"
    );
    // Nothing beyond what was sent (the poisoned rows never got in).
    assert_eq!(
        obs.len(),
        l.obs.len(),
        "obs stored that were never acknowledged"
    );
    eprintln!(
        "chaos: {rows_total} acknowledged rows all stored once ({} obs, {} weather; {} refused with 503 and re-sent; {} re-sent rows found stored already) in {:?}",
        l.obs.len(),
        l.weather.len(),
        l.refused_503,
        l.duplicates,
        t_start.elapsed()
    );
    drop(l);

    // Every committed decision reached its device once (MQTT.md, "Delivery
    // of decisions"): each command on the wire is a stored action, as
    // stored; each stored action for a device went out under its own
    // command id (repeats of one id are the adapter's retries, which a
    // device applies once), unless a newer command superseded it before
    // it could be published; and no decision went out under two ids.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wire: Vec<Value> = std::mem::take(&mut *watch.seen.lock().unwrap())
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let store = zhilu_store::Store::open(&db).await.unwrap();
    let actions = store.actions(None, 1_000_000).await.unwrap();
    let audit = store.audit(0, 1_000_000).await.unwrap();
    store.close().await;
    let stored: HashMap<i64, &zhilu_store::ActionRow> = actions.iter().map(|a| (a.id, a)).collect();
    let mut sent: BTreeMap<i64, (Value, u32)> = BTreeMap::new();
    for c in &wire {
        let id = c["command_id"].as_i64().unwrap();
        let a = stored
            .get(&id)
            .unwrap_or_else(|| panic!("sent but never committed: {c}"));
        let (cmd, dir) = zhilu_io::jsonl::parse_action_command(&a.json).unwrap();
        let want = zhilu_devices::DeviceState::from_command(&cmd, dir);
        assert_eq!(
            (c["device"].as_str(), c["kind"].as_str(), &c["payload"]),
            (Some(a.device.as_str()), Some(want.kind()), &want.to_json()),
            "sent other than committed (action {id}: {})",
            a.json
        );
        let e = sent.entry(id).or_insert((c.clone(), 0));
        assert_eq!(e.0, *c, "one command id, two different commands");
        e.1 += 1;
    }
    // command id → the command that superseded it before it was published.
    let superseded: HashMap<i64, i64> = audit
        .iter()
        .filter(|e| e.action == "device.failed")
        .filter_map(|e| serde_json::from_str::<Value>(&e.detail).ok())
        .filter_map(|d| {
            let by = d["reason"]
                .as_str()?
                .strip_prefix("superseded by command ")?
                .parse::<i64>()
                .ok()?;
            Some((d["command_id"].as_i64()?, by))
        })
        .collect();
    let managed: std::collections::HashSet<&String> = devices.iter().collect();
    let mut unsent = Vec::new();
    for a in &actions {
        if !managed.contains(&a.device)
            || !["auto", "reconcile", "confirmed"].contains(&a.mode.as_str())
        {
            continue;
        }
        if sent.contains_key(&a.id) {
            continue;
        }
        // Superseded before it could be published (the broker down, the
        // centre not yet connected): only by a command that was sent, for
        // the same device, kind and carriageway.
        let by_sent = superseded
            .get(&a.id)
            .and_then(|by| sent.get(by))
            .is_some_and(|(c, _)| {
                let (cmd, dir) = zhilu_io::jsonl::parse_action_command(&a.json).unwrap();
                let mine = zhilu_devices::DeviceState::from_command(&cmd, dir);
                c["device"] == a.device.as_str()
                    && c["kind"] == mine.kind()
                    && c["payload"]["direction"] == mine.to_json()["direction"]
            });
        if !by_sent {
            unsent.push(format!("{} {} {} ({})", a.id, a.device, a.json, a.mode));
        }
    }
    assert!(unsent.is_empty(), "committed but never sent: {unsent:#?}");
    // The same state under a new id to a device whose last command already
    // carried it is a decision sent twice.
    let mut last: HashMap<(String, String), (i64, Value)> = HashMap::new();
    let mut twice = Vec::new();
    for (id, (c, _)) in &sent {
        let target = (
            c["device"].as_str().unwrap().to_string(),
            format!("{}{}", c["kind"], c["payload"]["direction"]),
        );
        if let Some((prev, p)) = last.get(&target)
            && *p == c["payload"]
        {
            twice.push(format!("{prev} and {id}: {c}"));
        }
        last.insert(target, (*id, c["payload"].clone()));
    }
    assert!(twice.is_empty(), "a decision sent twice: {twice:#?}");
    let retries: u32 = sent.values().map(|(_, n)| n - 1).sum();
    eprintln!(
        "chaos: {} committed decisions, each sent once ({} publications: {retries} retries of the same id; {} superseded before sending; {} reconciliations)",
        sent.len(),
        wire.len(),
        superseded.len(),
        actions.iter().filter(|a| a.mode == "reconcile").count()
    );
    drop(disk);
    let _ = std::fs::remove_dir_all(&dir);
}
