//! Test harness: a real mosquitto broker per test, a raw MQTT client to watch
//! and poke the wire, and a report collector that waits with timeouts.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use zhilu_devices::{DeviceCommand, DeviceReport, DeviceState, Failsafe};

static N: AtomicU64 = AtomicU64::new(0);

fn find_mosquitto() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// A mosquitto broker on a free loopback port, killed on drop.
pub struct Broker {
    bin: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    /// The port it listens on (kept across restarts).
    pub port: u16,
}

impl Broker {
    /// Start a broker, or `None` (test skipped) when mosquitto is not
    /// installed, unless `ZHILU_REQUIRE_SERVICES=1`.
    pub fn start() -> Option<Broker> {
        let Some(bin) = find_mosquitto() else {
            if std::env::var("ZHILU_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("mosquitto not installed but ZHILU_REQUIRE_SERVICES=1");
            }
            eprintln!("skipped: mosquitto not installed");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "zhilu-devices-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type all\n"
        );
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("write config");
        let mut b = Broker {
            bin,
            dir,
            child: None,
            port,
        };
        b.spawn();
        Some(b)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .expect("log file");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mosquitto");
        self.child = Some(child);
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if t0.elapsed() > Duration::from_secs(10) {
                panic!(
                    "mosquitto did not listen on {} (log: {})",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kill the broker (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Dir for test files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One message seen by a [`Raw`] client.
#[derive(Debug, Clone)]
pub struct Seen {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// A plain MQTT client: records everything on its subscriptions, publishes anything.
pub struct Raw {
    pub client: AsyncClient,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Raw {
    /// Connect and subscribe to `filters` (QoS 1); returns once subscribed.
    pub async fn start(port: u16, filters: &[String]) -> Raw {
        let id = format!("raw-{}", N.fetch_add(1, Ordering::Relaxed));
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut el) = AsyncClient::new(o, 1024);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (sub_tx, mut sub_rx) = mpsc::channel(8);
        let s2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => s2.lock().unwrap().push(Seen {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                    }),
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.try_send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for f in filters {
            client
                .subscribe(f.clone(), QoS::AtLeastOnce)
                .await
                .expect("subscribe");
            tokio::time::timeout(Duration::from_secs(5), sub_rx.recv())
                .await
                .expect("suback in time");
        }
        Raw { client, seen, task }
    }

    /// Publish at QoS 1.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The `command_id`s of commands seen on `topic`, in arrival order.
    pub fn command_ids(&self, topic: &str) -> Vec<u64> {
        self.seen()
            .iter()
            .filter(|s| s.topic == topic)
            .filter_map(|s| serde_json::from_slice::<DeviceCommand>(&s.payload).ok())
            .map(|c| c.command_id)
            .collect()
    }

    /// Wait until `pred` holds over what was seen.
    pub async fn wait_until(&self, what: &str, timeout: Duration, pred: impl Fn(&[Seen]) -> bool) {
        let t0 = Instant::now();
        loop {
            if pred(&self.seen.lock().unwrap()) {
                return;
            }
            if t0.elapsed() > timeout {
                panic!("timed out waiting for {what}; seen: {:?}", self.seen());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `seen` holds the command `id` on `topic`.
pub fn saw_command(seen: &[Seen], topic: &str, id: u64) -> bool {
    seen.iter().any(|m| {
        m.topic == topic
            && serde_json::from_slice::<DeviceCommand>(&m.payload).is_ok_and(|c| c.command_id == id)
    })
}

/// Collects reports and waits for the ones a test expects.
pub struct Reports {
    rx: mpsc::Receiver<DeviceReport>,
    /// Received but not yet returned by `wait_for` or `collect_for`, in order.
    unread: std::collections::VecDeque<DeviceReport>,
    /// Every report received so far, in order.
    pub history: Vec<DeviceReport>,
}

impl Reports {
    /// A bounded report channel and its collector.
    pub fn channel(cap: usize) -> (mpsc::Sender<DeviceReport>, Reports) {
        let (tx, rx) = mpsc::channel(cap);
        (
            tx,
            Reports {
                rx,
                unread: Default::default(),
                history: Vec::new(),
            },
        )
    }

    /// Wait for the first unread report that `pred` accepts (others stay unread).
    pub async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&DeviceReport) -> bool,
    ) -> DeviceReport {
        if let Some(i) = self.unread.iter().position(&pred) {
            return self.unread.remove(i).expect("index in range");
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(r)) => {
                    self.history.push(r.clone());
                    if pred(&r) {
                        return r;
                    }
                    self.unread.push_back(r);
                }
                Ok(None) => panic!(
                    "report channel closed waiting for {what}; history: {:#?}",
                    self.history
                ),
                Err(_) => panic!("timed out waiting for {what}; history: {:#?}", self.history),
            }
        }
    }

    /// Forget the unread reports (what comes next is what counts).
    pub fn skip_unread(&mut self) {
        self.unread.clear();
    }

    /// Every unread report plus whatever arrives during `d` (for "this does
    /// not happen" checks); all of them count as read.
    pub async fn collect_for(&mut self, d: Duration) -> Vec<DeviceReport> {
        let deadline = tokio::time::Instant::now() + d;
        let mut got: Vec<DeviceReport> = self.unread.drain(..).collect();
        while let Ok(Some(r)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.history.push(r.clone());
            got.push(r);
        }
        got
    }
}

/// Epoch ms now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A command to `device` valid for `valid_ms` (`payload`: a device state's
/// JSON, or a number standing for a limit).
pub fn cmd(
    id: u64,
    device: &str,
    payload: serde_json::Value,
    valid_ms: i64,
    failsafe: Failsafe,
) -> DeviceCommand {
    let now = now_ms();
    // A device state, or a number standing for a speed limit.
    let state = DeviceState::from_json(&payload).unwrap_or(DeviceState::SpeedLimit {
        limit_kmh: (payload.as_u64().unwrap_or(0) % 200 + 1) as u16,
    });
    DeviceCommand {
        command_id: id,
        device: device.into(),
        state,
        issued_ms: now,
        expires_ms: now + valid_ms,
        failsafe,
    }
}

/// Device ids `d1..=dn`.
pub fn devices(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("d{i}")).collect()
}

/// Which device a report is about.
pub fn device_of(r: &DeviceReport) -> &str {
    match r {
        DeviceReport::Confirmed { device, .. }
        | DeviceReport::State { device, .. }
        | DeviceReport::Failed { device, .. }
        | DeviceReport::Expired { device, .. }
        | DeviceReport::Online { device, .. }
        | DeviceReport::Offline { device, .. } => device,
    }
}
