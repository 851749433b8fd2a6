//! The TCP gateway: terminals connect, register, authenticate and report;
//! positions and alarms leave as [`GatewayEvent`]s on a bounded channel.
//!
//! Per connection (one task, nothing shared but the lock-out table):
//!
//! - frames are cut from the stream by a bounded [`Framer`]; a bad frame gets
//!   a 0x8001 with result 2 (message error) when its header is readable and
//!   never disturbs the frames around it;
//! - 0x0100 registration goes to the [`TerminalRegistry`], whose auth code
//!   (or refusal) is sent back in a 0x8100;
//! - 0x0102 authentication is checked with the registry; a phone that fails
//!   `auth_failures` times in a row is refused for `auth_lockout` (its
//!   attempts get result 1 without reaching the registry, and the connection
//!   is closed);
//! - every message that needs one gets a 0x8001 general reply: result 0 for
//!   heartbeats, deregistration and location reports of an authenticated
//!   terminal, 1 for reports before authentication, 3 for messages the
//!   gateway does not handle; each packet of a sub-packaged message is
//!   acknowledged, and the whole message is handled once reassembled;
//! - 0x0200 and every item of 0x0704 become [`GatewayEvent::Position`], and a
//!   change of the alarm bits a [`GatewayEvent::Alarm`] (reports whose BCD
//!   time is not a real date, as terminals without a fix send, are
//!   acknowledged but not forwarded);
//! - a connection silent for `idle_timeout` is closed, and one that has
//!   not authenticated within `auth_timeout`; past `max_connections` in
//!   all, or `max_per_ip` from one address, new connections are closed at
//!   once;
//! - [`GatewayHandle::command`] sends a platform message (e.g. 0x8202
//!   temporary tracking, 0x8103 set parameters, 0x8104 query parameters) to
//!   an authenticated terminal and returns its answer (0x0001 or 0x0104).
//!
//! Replies are written after each read's frames are handled, so a slow
//! terminal slows only its own task; events wait for room in the channel,
//! so a slow consumer slows the gateway rather than growing memory.

use crate::body::{Body, RegisterReply, ReplyResult, register_result};
use crate::codec::{Decoder, Message, error_reply, general_reply};
use crate::error::EncodeError;
use crate::header::Header;
use crate::header::{Phone, Version};
use crate::location::Location;
use crate::reassembly::{Reassembler, ReassemblyConfig};
use crate::wire::Framer;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// A boxed future, so [`TerminalRegistry`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a terminal said about itself when registering (0x0100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Phone number (digits without leading zeros).
    pub phone: String,
    /// Plate number (or VIN when `plate_color` is 0).
    pub plate: String,
    /// Plate colour.
    pub plate_color: u8,
    /// Terminal id.
    pub terminal_id: String,
    /// Manufacturer id.
    pub maker: String,
    /// Terminal model.
    pub model: String,
    /// Province id.
    pub province: u16,
    /// City id.
    pub city: u16,
}

/// The registry's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// Registered: the terminal authenticates with this code from now on.
    Accepted {
        /// The authentication code to send in the 0x8100.
        auth_code: String,
    },
    /// Refused with a 0x8100 result code (see [`register_result`]).
    Refused(u8),
}

/// What the registry knows about an authenticated terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalInfo {
    /// Plate number the terminal registered with.
    pub plate: String,
}

/// Where the gateway keeps terminals and their auth codes (the server implements it on its database).
pub trait TerminalRegistry: Send + Sync {
    /// Registers a terminal and issues its auth code, or refuses it.
    fn register<'a>(&'a self, reg: &'a Registration) -> BoxFuture<'a, RegisterOutcome>;
    /// Checks an auth code; `Some` with the terminal's details when it is right.
    fn check_auth<'a>(
        &'a self,
        phone: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Option<TerminalInfo>>;
    /// Forgets a terminal (0x0003); its auth code stops working.
    fn deregister<'a>(&'a self, phone: &'a str) -> BoxFuture<'a, ()>;
}

#[derive(Debug, Clone)]
struct MemoryEntry {
    auth_code: String,
    plate: String,
}

/// An in-memory [`TerminalRegistry`] for tests and the simulator.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    terminals: Mutex<HashMap<String, MemoryEntry>>,
    issued: AtomicU64,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registered terminals.
    pub fn len(&self) -> usize {
        self.terminals.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// Whether no terminal is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The auth code issued to `phone`, if registered.
    pub fn auth_code(&self, phone: &str) -> Option<String> {
        self.terminals
            .lock()
            .ok()?
            .get(phone)
            .map(|e| e.auth_code.clone())
    }

    fn new_code(&self, phone: &str) -> String {
        use std::hash::{BuildHasher, Hasher};
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(phone.as_bytes());
        h.write_u64(n);
        format!("{:016x}", h.finish())
    }
}

impl TerminalRegistry for MemoryRegistry {
    fn register<'a>(&'a self, reg: &'a Registration) -> BoxFuture<'a, RegisterOutcome> {
        Box::pin(async move {
            let code = self.new_code(&reg.phone);
            match self.terminals.lock() {
                Ok(mut t) => {
                    t.insert(
                        reg.phone.clone(),
                        MemoryEntry {
                            auth_code: code.clone(),
                            plate: reg.plate.clone(),
                        },
                    );
                    RegisterOutcome::Accepted { auth_code: code }
                }
                Err(_) => RegisterOutcome::Refused(register_result::NO_TERMINAL),
            }
        })
    }

    fn check_auth<'a>(
        &'a self,
        phone: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Option<TerminalInfo>> {
        Box::pin(async move {
            let t = self.terminals.lock().ok()?;
            let e = t.get(phone)?;
            (e.auth_code == code).then(|| TerminalInfo {
                plate: e.plate.clone(),
            })
        })
    }

    fn deregister<'a>(&'a self, phone: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(mut t) = self.terminals.lock() {
                t.remove(phone);
            }
        })
    }
}

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Address to listen on (port 0 picks a free one).
    pub bind: SocketAddr,
    /// Most connections at once; more are closed on accept.
    pub max_connections: usize,
    /// A connection that sends nothing this long is closed.
    pub idle_timeout: Duration,
    /// Most connections from one address at once.
    pub max_per_ip: usize,
    /// A connection that has not authenticated within this time is closed.
    pub auth_timeout: Duration,
    /// Longest frame accepted (escaped bytes); longer ones are dropped as errors.
    pub max_frame: usize,
    /// Bytes read from the socket at a time.
    pub read_buffer: usize,
    /// Failed authentications in a row after which a phone is locked out.
    pub auth_failures: u32,
    /// How long a locked-out phone is refused.
    pub auth_lockout: Duration,
    /// Limits on sub-package reassembly per connection.
    pub reassembly: ReassemblyConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections: 20_000,
            idle_timeout: Duration::from_secs(180),
            max_per_ip: 1_000,
            auth_timeout: Duration::from_secs(60),
            max_frame: 4096,
            read_buffer: 2048,
            auth_failures: 5,
            auth_lockout: Duration::from_secs(300),
            reassembly: ReassemblyConfig {
                timeout_ms: 60_000,
                max_packets: 128,
                max_message_bytes: 128 * 1024,
                max_pending_bytes: 256 * 1024,
                max_pending: 4,
            },
        }
    }
}

/// What the gateway tells the server.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayEvent {
    /// A terminal registered (0x0100 accepted).
    Registered {
        /// Phone (digits without leading zeros).
        phone: String,
        /// Plate.
        plate: String,
        /// Terminal id.
        terminal_id: String,
    },
    /// A terminal authenticated (0x0102 accepted).
    Authenticated {
        /// Phone.
        phone: String,
        /// Plate from the registry.
        plate: String,
    },
    /// An authentication failed; `locked` when this failure locked the phone out.
    AuthFailed {
        /// Phone.
        phone: String,
        /// Failures in a row so far.
        failures: u32,
        /// Whether the phone is now refused for the lock-out time.
        locked: bool,
    },
    /// A position from a 0x0200 or an item of a 0x0704.
    Position {
        /// Phone.
        phone: String,
        /// Plate.
        plate: String,
        /// Fix time, epoch ms.
        time_ms: i64,
        /// Latitude, degrees (south negative).
        lat: f64,
        /// Longitude, degrees (west negative).
        lon: f64,
        /// Speed, km/h.
        speed_kmh: f64,
        /// Heading, degrees clockwise from north.
        heading_deg: f64,
        /// Alarm bits (see [`crate::location::ALARM_NAMES`]).
        alarm_bits: u32,
        /// Status bits (see [`crate::location::STATUS_NAMES`]).
        status_bits: u32,
    },
    /// The alarm bits of a terminal changed (e.g. bit 0 emergency button, bit 1 over-speed).
    Alarm {
        /// Phone.
        phone: String,
        /// Plate.
        plate: String,
        /// Fix time of the report, epoch ms.
        time_ms: i64,
        /// Latitude, degrees.
        lat: f64,
        /// Longitude, degrees.
        lon: f64,
        /// All alarm bits now set.
        alarm_bits: u32,
        /// Bits set now that were not in the previous report.
        raised: u32,
        /// Bits set before that are clear now.
        cleared: u32,
    },
    /// A connection ended.
    Disconnected {
        /// Phone, when the connection had authenticated.
        phone: Option<String>,
        /// Why: `closed`, `idle`, `locked out`, `shutdown` or an I/O error.
        reason: String,
    },
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Binding the listen address failed.
    #[error("jt808 gateway: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A setting that cannot work.
    #[error("jt808 gateway: invalid configuration: {0}")]
    Config(&'static str),
}

/// Counters of a running gateway.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    frames: AtomicU64,
    bad_frames: AtomicU64,
    positions: AtomicU64,
    active: AtomicUsize,
}

/// A snapshot of the gateway's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewayStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed at once because of `max_connections`.
    pub refused: u64,
    /// Frames received (good or bad).
    pub frames: u64,
    /// Frames that failed to decode.
    pub bad_frames: u64,
    /// Positions forwarded.
    pub positions: u64,
    /// Connections open now.
    pub active: usize,
}

/// Why a command to a terminal got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No authenticated connection for this phone.
    #[error("terminal {0} is not connected")]
    NotConnected(String),
    /// The terminal's command queue is full.
    #[error("terminal {0}: too many commands waiting")]
    Busy(String),
    /// The terminal did not answer in time.
    #[error("terminal {phone}: no answer within {timeout:?}")]
    Timeout {
        /// The terminal.
        phone: String,
        /// How long the gateway waited.
        timeout: Duration,
    },
    /// The connection ended before the answer.
    #[error("terminal {0}: connection ended before the answer")]
    Closed(String),
    /// The command could not be encoded.
    #[error("terminal {phone}: {source}")]
    Encode {
        /// The terminal.
        phone: String,
        /// Why.
        source: EncodeError,
    },
}

/// A platform message on its way to a connection, and where its answer goes
/// (boxed in the queue, which then costs each connection a few hundred bytes).
struct Command {
    body: Body,
    reply: oneshot::Sender<Result<Body, CommandError>>,
}

/// The sending end of a connection's command queue.
type CommandTx = mpsc::Sender<Box<Command>>;

/// Command queues of authenticated connections, by phone (digits without leading zeros).
#[derive(Default)]
struct CommandMap {
    by_phone: Mutex<HashMap<String, (u64, CommandTx)>>,
}

impl CommandMap {
    fn insert(&self, phone: &str, conn: u64, tx: mpsc::Sender<Box<Command>>) {
        if let Ok(mut m) = self.by_phone.lock() {
            m.insert(phone.to_string(), (conn, tx));
        }
    }

    /// Removes the entry only if it still belongs to connection `conn`.
    fn remove(&self, phone: &str, conn: u64) {
        if let Ok(mut m) = self.by_phone.lock()
            && m.get(phone).is_some_and(|(c, _)| *c == conn)
        {
            m.remove(phone);
        }
    }

    fn get(&self, phone: &str) -> Option<mpsc::Sender<Box<Command>>> {
        self.by_phone
            .lock()
            .ok()?
            .get(phone)
            .map(|(_, tx)| tx.clone())
    }
}

/// Controls a running gateway; dropping every clone of it stops the gateway too.
#[derive(Clone)]
pub struct GatewayHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    counters: Arc<Counters>,
    commands: Arc<CommandMap>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl GatewayHandle {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Sends a platform message to the authenticated terminal `phone` and
    /// waits for its answer: the 0x0001 general reply, or the 0x0104 for a
    /// parameter query.
    pub async fn command(
        &self,
        phone: &str,
        body: Body,
        timeout: Duration,
    ) -> Result<Body, CommandError> {
        let key = Phone::new(phone).map_or_else(|| phone.to_string(), |p| p.trimmed().to_string());
        let tx = self
            .commands
            .get(&key)
            .ok_or_else(|| CommandError::NotConnected(key.clone()))?;
        let (reply, answer) = oneshot::channel();
        tx.try_send(Box::new(Command { body, reply }))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => CommandError::Busy(key.clone()),
                mpsc::error::TrySendError::Closed(_) => CommandError::NotConnected(key.clone()),
            })?;
        match tokio::time::timeout(timeout, answer).await {
            Err(_) => Err(CommandError::Timeout {
                phone: key,
                timeout,
            }),
            Ok(Err(_)) => Err(CommandError::Closed(key)),
            Ok(Ok(r)) => r,
        }
    }

    /// The counters now.
    pub fn stats(&self) -> GatewayStats {
        let c = &self.counters;
        GatewayStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            frames: c.frames.load(Ordering::Relaxed),
            bad_frames: c.bad_frames.load(Ordering::Relaxed),
            positions: c.positions.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
        }
    }
}

/// Failed authentications per phone, and lock-outs.
#[derive(Debug, Default)]
struct Lockouts {
    by_phone: Mutex<HashMap<String, (u32, Option<Instant>)>>,
}

impl Lockouts {
    fn locked(&self, phone: &str, now: Instant) -> bool {
        let Ok(mut m) = self.by_phone.lock() else {
            return false;
        };
        match m.get(phone) {
            Some((_, Some(until))) if *until > now => true,
            Some((_, Some(_))) => {
                m.remove(phone);
                false
            }
            _ => false,
        }
    }

    /// Records a failure; returns the failures in a row and whether the phone is now locked.
    fn fail(&self, phone: &str, now: Instant, max: u32, lockout: Duration) -> (u32, bool) {
        let Ok(mut m) = self.by_phone.lock() else {
            return (0, false);
        };
        if m.len() > 100_000 {
            m.retain(|_, (_, until)| until.is_some_and(|u| u > now));
        }
        let e = m.entry(phone.to_string()).or_insert((0, None));
        e.0 += 1;
        if e.0 >= max {
            e.1 = Some(now + lockout);
            (e.0, true)
        } else {
            (e.0, false)
        }
    }

    fn succeed(&self, phone: &str) {
        if let Ok(mut m) = self.by_phone.lock() {
            m.remove(phone);
        }
    }
}

struct Shared {
    cfg: GatewayConfig,
    registry: Arc<dyn TerminalRegistry>,
    out: mpsc::Sender<GatewayEvent>,
    counters: Arc<Counters>,
    lockouts: Lockouts,
    commands: Arc<CommandMap>,
    next_conn: AtomicU64,
    per_ip: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
}

/// A connection's place in the per-address count; given back on drop.
struct IpSlot {
    ip: std::net::IpAddr,
    map: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
}

impl IpSlot {
    fn take(
        map: &Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
        max: usize,
    ) -> Option<IpSlot> {
        let mut m = map.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            map: map.clone(),
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// The JT/T 808 TCP gateway.
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// Binds and starts accepting; returns a handle and the accept loop's task.
    pub async fn start(
        cfg: GatewayConfig,
        registry: Arc<dyn TerminalRegistry>,
        out: mpsc::Sender<GatewayEvent>,
    ) -> Result<(GatewayHandle, JoinHandle<()>), GatewayError> {
        if cfg.max_connections == 0 || cfg.max_per_ip == 0 {
            return Err(GatewayError::Config(
                "max_connections and max_per_ip must be at least 1",
            ));
        }
        if cfg.read_buffer == 0 || cfg.max_frame < 32 {
            return Err(GatewayError::Config(
                "read_buffer must be positive and max_frame at least 32",
            ));
        }
        if cfg.auth_failures == 0 {
            return Err(GatewayError::Config("auth_failures must be at least 1"));
        }
        let listener = TcpListener::bind(cfg.bind)
            .await
            .map_err(|source| GatewayError::Bind {
                addr: cfg.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| GatewayError::Bind {
            addr: cfg.bind,
            source,
        })?;
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let slots = Arc::new(Semaphore::new(cfg.max_connections));
        let commands = Arc::new(CommandMap::default());
        let shared = Arc::new(Shared {
            cfg,
            registry,
            out,
            counters: counters.clone(),
            lockouts: Lockouts::default(),
            commands: commands.clone(),
            next_conn: AtomicU64::new(0),
            per_ip: Arc::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared, slots, stop_rx));
        tracing::debug!(%addr, "jt808 gateway: listening");
        Ok((
            GatewayHandle {
                addr,
                stop,
                counters,
                commands,
            },
            task,
        ))
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                tracing::warn!(error = %e, "jt808 gateway: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "jt808 gateway: connection limit reached, closing");
            drop(stream);
            continue;
        };
        let Some(ip_slot) = IpSlot::take(&shared.per_ip, peer.ip(), shared.cfg.max_per_ip) else {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "jt808 gateway: per-address limit reached, closing");
            drop(stream);
            continue;
        };
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        shared.counters.active.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut conn = Connection::new(&shared);
            let reason = conn.run(stream, stop).await;
            shared.counters.active.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
            drop(ip_slot);
            let phone = conn.session.map(|s| s.phone);
            if let Some(p) = &phone {
                shared.commands.remove(p, conn.id);
            }
            let _ = shared
                .out
                .send(GatewayEvent::Disconnected { phone, reason })
                .await;
        });
    }
}

struct Session {
    phone: String,
    plate: String,
    last_alarm: u32,
    /// Edition and phone as the terminal sends them, for messages to it.
    version: Version,
    wire_phone: Phone,
}

/// Most commands awaiting an answer per connection; the oldest is dropped beyond.
const MAX_PENDING_COMMANDS: usize = 16;

enum Wake {
    Read(usize),
    Command(Box<Command>),
}

async fn next_command(rx: &mut Option<mpsc::Receiver<Box<Command>>>) -> Option<Box<Command>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

struct Connection<'s> {
    shared: &'s Shared,
    decoder: Decoder,
    reassembler: Reassembler,
    session: Option<Session>,
    serial: u16,
    replies: Vec<u8>,
    close_after_write: Option<&'static str>,
    started: Instant,
    id: u64,
    commands: Option<mpsc::Receiver<Box<Command>>>,
    pending: VecDeque<(u16, oneshot::Sender<Result<Body, CommandError>>)>,
}

impl<'s> Connection<'s> {
    fn new(shared: &'s Shared) -> Self {
        Connection {
            shared,
            // Grows to the largest escaped frame seen, not the protocol maximum.
            decoder: Decoder::default(),
            reassembler: Reassembler::new(shared.cfg.reassembly),
            session: None,
            serial: 0,
            replies: Vec::new(),
            close_after_write: None,
            started: Instant::now(),
            id: shared.next_conn.fetch_add(1, Ordering::Relaxed),
            commands: None,
            pending: VecDeque::new(),
        }
    }

    async fn run(&mut self, mut stream: TcpStream, mut stop: watch::Receiver<bool>) -> String {
        let shared = self.shared;
        let cfg = &shared.cfg;
        let mut framer = Framer::new(cfg.max_frame);
        let mut buf = vec![0u8; cfg.read_buffer];
        let mut idle_at = tokio::time::Instant::now() + cfg.idle_timeout;
        let auth_by = tokio::time::Instant::now() + cfg.auth_timeout;
        loop {
            let (deadline, why) = if self.session.is_none() && auth_by < idle_at {
                (auth_by, "not authenticated in time")
            } else {
                (idle_at, "idle")
            };
            let wake = tokio::select! {
                r = stream.read(&mut buf) => match r {
                    Err(e) => return format!("read error: {e}"),
                    Ok(0) => return "closed".into(),
                    Ok(n) => Wake::Read(n),
                },
                _ = tokio::time::sleep_until(deadline) => return why.into(),
                _ = stop.changed() => return "shutdown".into(),
                Some(cmd) = next_command(&mut self.commands) => Wake::Command(cmd),
            };
            let n = match wake {
                Wake::Read(n) => n,
                Wake::Command(cmd) => {
                    self.send_command(*cmd);
                    0
                }
            };
            if n > 0 {
                idle_at = tokio::time::Instant::now() + cfg.idle_timeout;
            }
            framer.push(&buf[..n]);
            while let Some(seg) = framer.next_frame() {
                self.shared.counters.frames.fetch_add(1, Ordering::Relaxed);
                match seg {
                    Ok(seg) => self.on_frame(seg).await,
                    Err(e) => {
                        self.shared
                            .counters
                            .bad_frames
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, "jt808 gateway: frame dropped");
                    }
                }
            }
            if !self.replies.is_empty() {
                if let Err(e) = stream.write_all(&self.replies).await {
                    return format!("write error: {e}");
                }
                self.replies.clear();
                if self.replies.capacity() > 64 * 1024 {
                    self.replies.shrink_to(4096);
                }
            }
            if let Some(reason) = self.close_after_write {
                return reason.into();
            }
        }
    }

    fn next_serial(&mut self) -> u16 {
        let s = self.serial;
        self.serial = self.serial.wrapping_add(1);
        s
    }

    fn send(&mut self, msg: &Message) {
        if let Err(e) = msg.encode(&mut self.replies) {
            tracing::warn!(error = %e, "jt808 gateway: cannot encode reply");
        }
    }

    fn send_command(&mut self, cmd: Command) {
        let Some(s) = &self.session else {
            let _ = cmd
                .reply
                .send(Err(CommandError::NotConnected(String::new())));
            return;
        };
        let (version, phone, key) = (s.version, s.wire_phone, s.phone.clone());
        let serial = self.next_serial();
        let mark = self.replies.len();
        match Message::new(version, phone, serial, cmd.body).encode(&mut self.replies) {
            Ok(()) => {
                if self.pending.len() >= MAX_PENDING_COMMANDS {
                    self.pending.pop_front();
                }
                self.pending.push_back((serial, cmd.reply));
            }
            Err(source) => {
                self.replies.truncate(mark);
                let _ = cmd
                    .reply
                    .send(Err(CommandError::Encode { phone: key, source }));
            }
        }
    }

    /// Hands a terminal's answer to the command it answers, if one is waiting.
    fn answer(&mut self, reply_serial: u16, body: Body) {
        if let Some(i) = self.pending.iter().position(|(s, _)| *s == reply_serial)
            && let Some((_, tx)) = self.pending.remove(i)
        {
            let _ = tx.send(Ok(body));
        }
    }

    fn reply(&mut self, to: &Header, result: ReplyResult) {
        let serial = self.next_serial();
        let m = general_reply(to, result, serial);
        self.send(&m);
    }

    async fn emit(&self, ev: GatewayEvent) {
        let _ = self.shared.out.send(ev).await;
    }

    async fn on_frame(&mut self, seg: &[u8]) {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let frame = match self.decoder.frame(seg) {
            Ok(f) => f,
            Err(e) => {
                self.bad_frame(seg, &e);
                return;
            }
        };
        let header = frame.header;
        if header.package.is_some() {
            match self.reassembler.push(&frame, now_ms) {
                Ok(done) => {
                    self.reply(&header, ReplyResult::Ok);
                    if let Some(done) = done {
                        match done.decode() {
                            Ok(m) => self.on_message(m.header, m.body, false).await,
                            Err(e) => {
                                self.shared
                                    .counters
                                    .bad_frames
                                    .fetch_add(1, Ordering::Relaxed);
                                tracing::debug!(error = %e, "jt808 gateway: reassembled message bad");
                            }
                        }
                    }
                }
                Err(e) => {
                    self.shared
                        .counters
                        .bad_frames
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "jt808 gateway: packet refused");
                    self.reply(&header, ReplyResult::MessageError);
                }
            }
            return;
        }
        match frame.decode_body() {
            Ok(body) => self.on_message(header, body, true).await,
            Err(e) => self.bad_frame(seg, &e),
        }
    }

    fn bad_frame(&mut self, seg: &[u8], e: &crate::DecodeError) {
        self.shared
            .counters
            .bad_frames
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(error = %e, "jt808 gateway: bad frame");
        let serial = self.serial;
        if let Some(m) = error_reply(seg, serial) {
            self.next_serial();
            self.send(&m);
        }
    }

    async fn on_message(&mut self, header: Header, body: Body, reply: bool) {
        let phone = header.phone.trimmed().to_string();
        match body {
            Body::Register(r) => {
                let reg = Registration {
                    phone: phone.clone(),
                    plate: r.plate,
                    plate_color: r.plate_color,
                    terminal_id: r.terminal_id,
                    maker: r.maker,
                    model: r.model,
                    province: r.province,
                    city: r.city,
                };
                let outcome = self.shared.registry.register(&reg).await;
                let (result, auth_code) = match &outcome {
                    RegisterOutcome::Accepted { auth_code } => {
                        (register_result::OK, auth_code.clone())
                    }
                    RegisterOutcome::Refused(code) => (*code, String::new()),
                };
                let serial = self.next_serial();
                let m = Message::new(
                    header.version,
                    header.phone,
                    serial,
                    Body::RegisterReply(RegisterReply {
                        reply_serial: header.serial,
                        result,
                        auth_code,
                    }),
                );
                self.send(&m);
                if result == register_result::OK {
                    self.emit(GatewayEvent::Registered {
                        phone,
                        plate: reg.plate,
                        terminal_id: reg.terminal_id,
                    })
                    .await;
                }
            }
            Body::Authenticate(a) => {
                let now = Instant::now();
                let lock = &self.shared.lockouts;
                if lock.locked(&phone, now) {
                    self.reply(&header, ReplyResult::Fail);
                    self.close_after_write = Some("locked out");
                    return;
                }
                match self.shared.registry.check_auth(&phone, &a.code).await {
                    Some(info) => {
                        lock.succeed(&phone);
                        self.reply(&header, ReplyResult::Ok);
                        self.session = Some(Session {
                            phone: phone.clone(),
                            plate: info.plate.clone(),
                            last_alarm: 0,
                            version: header.version,
                            wire_phone: header.phone,
                        });
                        let (tx, rx) = mpsc::channel(8);
                        self.shared.commands.insert(&phone, self.id, tx);
                        self.commands = Some(rx);
                        self.emit(GatewayEvent::Authenticated {
                            phone,
                            plate: info.plate,
                        })
                        .await;
                    }
                    None => {
                        let cfg = &self.shared.cfg;
                        let (failures, locked) =
                            lock.fail(&phone, now, cfg.auth_failures, cfg.auth_lockout);
                        self.reply(&header, ReplyResult::Fail);
                        if locked {
                            self.close_after_write = Some("locked out");
                        }
                        self.emit(GatewayEvent::AuthFailed {
                            phone,
                            failures,
                            locked,
                        })
                        .await;
                    }
                }
            }
            Body::Heartbeat => self.reply(&header, ReplyResult::Ok),
            Body::Deregister => {
                self.shared.registry.deregister(&phone).await;
                self.shared.commands.remove(&phone, self.id);
                self.commands = None;
                self.session = None;
                self.reply(&header, ReplyResult::Ok);
            }
            Body::Location(l) => {
                if self.session_for(&phone).is_none() {
                    if reply {
                        self.reply(&header, ReplyResult::Fail);
                    }
                    return;
                }
                if reply {
                    self.reply(&header, ReplyResult::Ok);
                }
                self.position(&l).await;
            }
            Body::BatchLocation(b) => {
                if self.session_for(&phone).is_none() {
                    if reply {
                        self.reply(&header, ReplyResult::Fail);
                    }
                    return;
                }
                if reply {
                    self.reply(&header, ReplyResult::Ok);
                }
                for l in &b.items {
                    self.position(l).await;
                }
            }
            // Answers to our commands need no reply.
            Body::TerminalReply(g) => self.answer(g.reply_serial, Body::TerminalReply(g)),
            Body::ParamsReply(p) => self.answer(p.reply_serial, Body::ParamsReply(p)),
            _ => {
                if reply {
                    self.reply(&header, ReplyResult::Unsupported);
                }
            }
        }
    }

    fn session_for(&self, phone: &str) -> Option<&Session> {
        self.session.as_ref().filter(|s| s.phone == phone)
    }

    async fn position(&mut self, l: &Location) {
        let Some(time_ms) = l.time.epoch_ms() else {
            tracing::debug!(time = %l.time, "jt808 gateway: location without a valid time dropped");
            return;
        };
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let (phone, plate) = (s.phone.clone(), s.plate.clone());
        let alarm = l.alarm.0;
        let (raised, cleared) = (alarm & !s.last_alarm, s.last_alarm & !alarm);
        s.last_alarm = alarm;
        self.shared
            .counters
            .positions
            .fetch_add(1, Ordering::Relaxed);
        let (lat, lon) = (l.lat_deg(), l.lon_deg());
        if raised != 0 || cleared != 0 {
            let ev = GatewayEvent::Alarm {
                phone: phone.clone(),
                plate: plate.clone(),
                time_ms,
                lat,
                lon,
                alarm_bits: alarm,
                raised,
                cleared,
            };
            self.emit(ev).await;
        }
        self.emit(GatewayEvent::Position {
            phone,
            plate,
            time_ms,
            lat,
            lon,
            speed_kmh: l.speed_kmh(),
            heading_deg: f64::from(l.direction),
            alarm_bits: alarm,
            status_bits: l.status.0,
        })
        .await;
    }
}
