//! Simulated terminals: one [`Terminal`] driven step by step (for tests), or
//! a fleet ([`run_fleet`]) that registers, authenticates and reports 0x0200
//! every `period` along a list of (lat, lon) points (for load benchmarks).

use crate::body::{
    Authenticate, Body, GeneralReply, Register, RegisterReply, ReplyResult, register_result,
};
use crate::codec::{Decoder, Message};
use crate::error::{DecodeError, EncodeError};
use crate::header::{Phone, Version};
use crate::location::{AlarmFlags, Location, StatusFlags};
use crate::time::BcdTime;
use crate::wire::Framer;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a simulated terminal's step failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Connecting, reading or writing failed.
    #[error("terminal {phone}: {source}")]
    Io {
        /// The terminal.
        phone: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("terminal {phone}: no {what} within {timeout:?}")]
    Timeout {
        /// The terminal.
        phone: String,
        /// What was awaited.
        what: &'static str,
        /// How long it waited.
        timeout: Duration,
    },
    /// The gateway closed the connection.
    #[error("terminal {0}: connection closed by the gateway")]
    Closed(String),
    /// The gateway sent a frame that does not decode.
    #[error("terminal {phone}: bad frame from the gateway: {source}")]
    Decode {
        /// The terminal.
        phone: String,
        /// The decode error.
        source: DecodeError,
    },
    /// A message could not be encoded.
    #[error("terminal {phone}: {source}")]
    Encode {
        /// The terminal.
        phone: String,
        /// The encode error.
        source: EncodeError,
    },
    /// The gateway refused a step (registration or authentication).
    #[error("terminal {phone}: {what} refused with result {result}")]
    Refused {
        /// The terminal.
        phone: String,
        /// The step.
        what: &'static str,
        /// The result code.
        result: u8,
    },
}

/// One simulated terminal on a TCP connection.
#[derive(Debug)]
pub struct Terminal {
    stream: TcpStream,
    framer: Framer,
    decoder: Decoder,
    inbox: VecDeque<Message>,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// The terminal's phone.
    pub phone: Phone,
    /// The protocol edition it speaks.
    pub version: Version,
    serial: u16,
}

impl Terminal {
    /// Connects to a gateway.
    pub async fn connect(
        addr: SocketAddr,
        phone: Phone,
        version: Version,
    ) -> Result<Terminal, SimError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| SimError::Io {
                phone: phone.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        Ok(Terminal {
            stream,
            framer: Framer::new(8192),
            decoder: Decoder::new(),
            inbox: VecDeque::new(),
            buf: vec![0; 2048],
            out: Vec::with_capacity(128),
            phone,
            version,
            serial: 0,
        })
    }

    fn io(&self, source: std::io::Error) -> SimError {
        SimError::Io {
            phone: self.phone.to_string(),
            source,
        }
    }

    /// Sends one message; returns the serial it used.
    pub async fn send(&mut self, body: Body) -> Result<u16, SimError> {
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        let m = Message::new(self.version, self.phone, serial, body);
        self.out.clear();
        m.encode(&mut self.out).map_err(|source| SimError::Encode {
            phone: self.phone.to_string(),
            source,
        })?;
        let out = std::mem::take(&mut self.out);
        let r = self.stream.write_all(&out).await;
        self.out = out;
        r.map_err(|e| self.io(e))?;
        Ok(serial)
    }

    /// Sends one message as packets of at most `max_body` bytes; returns their serials.
    pub async fn send_packets(
        &mut self,
        body: Body,
        max_body: usize,
    ) -> Result<Vec<u16>, SimError> {
        let m = Message::new(self.version, self.phone, self.serial, body);
        let mut frames = Vec::new();
        let n = m
            .encode_packets(max_body, &mut frames)
            .map_err(|source| SimError::Encode {
                phone: self.phone.to_string(),
                source,
            })?;
        let serials = (0..n).map(|i| self.serial.wrapping_add(i)).collect();
        self.serial = self.serial.wrapping_add(n);
        for f in frames {
            self.stream.write_all(&f).await.map_err(|e| self.io(e))?;
        }
        Ok(serials)
    }

    /// Sends raw bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), SimError> {
        self.stream.write_all(bytes).await.map_err(|e| self.io(e))
    }

    /// The next message from the gateway.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Message, SimError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(m);
            }
            while let Some(seg) = self.framer.next_frame() {
                let phone = self.phone.to_string();
                let seg = seg.map_err(|source| SimError::Decode {
                    phone: phone.clone(),
                    source,
                })?;
                let m = self
                    .decoder
                    .decode(seg)
                    .map_err(|source| SimError::Decode { phone, source })?;
                self.inbox.push_back(m);
            }
            if !self.inbox.is_empty() {
                continue;
            }
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut self.buf)).await {
                Err(_) => {
                    return Err(SimError::Timeout {
                        phone: self.phone.to_string(),
                        what: "message",
                        timeout,
                    });
                }
                Ok(Err(e)) => return Err(self.io(e)),
                Ok(Ok(0)) => return Err(SimError::Closed(self.phone.to_string())),
                Ok(Ok(n)) => n,
            };
            self.framer.push(&self.buf[..n]);
        }
    }

    /// Waits for the gateway's reply (0x8001 or 0x8100) to the message with `serial`, skipping others.
    pub async fn reply_to(&mut self, serial: u16, timeout: Duration) -> Result<Body, SimError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.recv(left).await.map_err(|e| match e {
                SimError::Timeout { phone, .. } => SimError::Timeout {
                    phone,
                    what: "reply",
                    timeout,
                },
                e => e,
            })?;
            match &m.body {
                Body::PlatformReply(GeneralReply { reply_serial, .. })
                | Body::RegisterReply(RegisterReply { reply_serial, .. })
                    if *reply_serial == serial =>
                {
                    return Ok(m.body);
                }
                _ => {}
            }
        }
    }

    /// Sends a general reply and returns its result code.
    async fn send_and_result(
        &mut self,
        body: Body,
        timeout: Duration,
    ) -> Result<ReplyResult, SimError> {
        let serial = self.send(body).await?;
        match self.reply_to(serial, timeout).await? {
            Body::PlatformReply(g) => Ok(g.result),
            _ => Ok(ReplyResult::Other(255)),
        }
    }

    /// Registers with a plate and terminal id; returns the auth code.
    pub async fn register(
        &mut self,
        plate: &str,
        terminal_id: &str,
        timeout: Duration,
    ) -> Result<String, SimError> {
        let body = Body::Register(Register {
            province: 13,
            city: 100,
            maker: "ZHILU".into(),
            model: "SIM-1".into(),
            terminal_id: terminal_id.into(),
            plate_color: 2,
            plate: plate.into(),
        });
        let serial = self.send(body).await?;
        match self.reply_to(serial, timeout).await? {
            Body::RegisterReply(r) if r.result == register_result::OK => Ok(r.auth_code),
            Body::RegisterReply(r) => Err(SimError::Refused {
                phone: self.phone.to_string(),
                what: "registration",
                result: r.result,
            }),
            Body::PlatformReply(g) => Err(SimError::Refused {
                phone: self.phone.to_string(),
                what: "registration",
                result: g.result.to_u8(),
            }),
            _ => Err(SimError::Refused {
                phone: self.phone.to_string(),
                what: "registration",
                result: 255,
            }),
        }
    }

    /// Authenticates with a code; returns the gateway's result.
    pub async fn authenticate(
        &mut self,
        code: &str,
        timeout: Duration,
    ) -> Result<ReplyResult, SimError> {
        let body = Body::Authenticate(Authenticate {
            code: code.into(),
            imei: self.version.is_2019().then(|| "860000000000001".into()),
            software_version: self.version.is_2019().then(|| "sim-1.0".into()),
        });
        self.send_and_result(body, timeout).await
    }

    /// Sends a location report and returns the gateway's result.
    pub async fn report(
        &mut self,
        loc: Location,
        timeout: Duration,
    ) -> Result<ReplyResult, SimError> {
        self.send_and_result(Body::Location(loc), timeout).await
    }

    /// Sends a heartbeat and returns the gateway's result.
    pub async fn heartbeat(&mut self, timeout: Duration) -> Result<ReplyResult, SimError> {
        self.send_and_result(Body::Heartbeat, timeout).await
    }

    /// Waits until the gateway closes the connection (true) or `timeout` passes (false).
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut self.buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// A location report at a point (degrees), with speed, heading, time and alarm bits.
pub fn location_at(
    lat: f64,
    lon: f64,
    speed_kmh: f64,
    heading_deg: f64,
    time_ms: i64,
    alarm: u32,
) -> Location {
    let mut status = StatusFlags::ACC_ON | StatusFlags::POSITIONED | (1 << 18) | (1 << 19);
    if lat < 0.0 {
        status |= StatusFlags::SOUTH;
    }
    if lon < 0.0 {
        status |= StatusFlags::WEST;
    }
    let mut l = Location {
        alarm: AlarmFlags(alarm),
        status: StatusFlags(status),
        lat: (lat.abs() * 1e6).round() as u32,
        lon: (lon.abs() * 1e6).round() as u32,
        altitude: 50,
        speed: (speed_kmh * 10.0).round().clamp(0.0, 65535.0) as u16,
        direction: heading_deg.rem_euclid(360.0).round() as u16 % 360,
        time: BcdTime::from_epoch_ms(time_ms).unwrap_or_default(),
        ..Location::default()
    };
    l.extras.satellites = Some(12);
    l.extras.signal_strength = Some(25);
    l
}

/// A fleet of simulated terminals.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The gateway.
    pub addr: SocketAddr,
    /// How many terminals.
    pub terminals: usize,
    /// Report period per terminal.
    pub period: Duration,
    /// Reports per terminal (after authenticating).
    pub reports: u32,
    /// Points (lat, lon in degrees) the terminals drive along, in order (e.g. a road's centre line).
    pub points: Vec<(f64, f64)>,
    /// Protocol edition.
    pub version: Version,
    /// Phone of terminal 0; terminal i gets `phone_base + i`.
    pub phone_base: u64,
    /// How long to wait for each reply.
    pub reply_timeout: Duration,
    /// Time over which the terminals' first connections are spread.
    pub ramp_up: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8808)),
            terminals: 10,
            period: Duration::from_secs(1),
            reports: 10,
            points: vec![(39.0, 116.0), (39.01, 116.0)],
            version: Version::V2013,
            phone_base: 13_800_000_000,
            reply_timeout: Duration::from_secs(10),
            ramp_up: Duration::from_secs(1),
        }
    }
}

/// What a fleet run measured.
#[derive(Debug, Clone, Default)]
pub struct FleetReport {
    /// Terminals that authenticated.
    pub authenticated: usize,
    /// Location reports sent.
    pub reports: u64,
    /// Reports answered with result 0.
    pub ok: u64,
    /// Reply latency of every answered report, microseconds.
    pub latencies_us: Vec<u32>,
    /// The first few errors, one line each.
    pub errors: Vec<String>,
    /// Errors in all.
    pub error_count: u64,
}

impl FleetReport {
    /// The `q`-quantile (0..=1) of the reply latencies, microseconds.
    pub fn latency_quantile_us(&self, q: f64) -> Option<u32> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        v.get(i).copied()
    }
}

/// Heading in degrees from point a to point b (lat, lon).
fn heading(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dy = b.0 - a.0;
    let dx = (b.1 - a.1) * a.0.to_radians().cos();
    dx.atan2(dy).to_degrees().rem_euclid(360.0)
}

/// Distance in metres between two points (lat, lon), equirectangular.
fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dy = (b.0 - a.0).to_radians();
    let dx = (b.1 - a.1).to_radians() * a.0.to_radians().cos();
    6_371_000.0 * (dx * dx + dy * dy).sqrt()
}

struct TerminalRun {
    authenticated: bool,
    reports: u64,
    ok: u64,
    latencies_us: Vec<u32>,
    error: Option<String>,
}

async fn run_terminal(cfg: Arc<FleetConfig>, i: usize) -> TerminalRun {
    let mut run = TerminalRun {
        authenticated: false,
        reports: 0,
        ok: 0,
        latencies_us: Vec::new(),
        error: None,
    };
    let result = async {
        let spread = cfg.ramp_up.mul_f64(i as f64 / cfg.terminals.max(1) as f64);
        tokio::time::sleep(spread).await;
        let phone = Phone::new(&(cfg.phone_base + i as u64).to_string())
            .unwrap_or_else(|| Phone::new("0").unwrap_or_else(|| unreachable!()));
        let mut t = Terminal::connect(cfg.addr, phone, cfg.version).await?;
        let code = t
            .register(
                &format!("冀SIM{i:05}"),
                &format!("T{i:06}"),
                cfg.reply_timeout,
            )
            .await?;
        match t.authenticate(&code, cfg.reply_timeout).await? {
            ReplyResult::Ok => run.authenticated = true,
            r => {
                return Err(SimError::Refused {
                    phone: phone.to_string(),
                    what: "authentication",
                    result: r.to_u8(),
                });
            }
        }
        let pts = &cfg.points;
        let n = pts.len().max(1);
        let mut k = i % n;
        let mut tick = tokio::time::interval(cfg.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for _ in 0..cfg.reports {
            tick.tick().await;
            let here = pts.get(k).copied().unwrap_or((0.0, 0.0));
            let next = pts.get((k + 1) % n).copied().unwrap_or(here);
            let speed =
                (distance_m(here, next) / cfg.period.as_secs_f64().max(1e-3) * 3.6).min(200.0);
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let loc = location_at(here.0, here.1, speed, heading(here, next), now_ms, 0);
            let sent = Instant::now();
            run.reports += 1;
            let r = t.report(loc, cfg.reply_timeout).await?;
            run.latencies_us
                .push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            if r == ReplyResult::Ok {
                run.ok += 1;
            }
            k = (k + 1) % n;
        }
        Ok::<(), SimError>(())
    }
    .await;
    if let Err(e) = result {
        run.error = Some(e.to_string());
    }
    run
}

/// Runs a fleet to the end and reports what it measured.
pub async fn run_fleet(cfg: FleetConfig) -> FleetReport {
    let cfg = Arc::new(cfg);
    let mut tasks = Vec::with_capacity(cfg.terminals);
    for i in 0..cfg.terminals {
        tasks.push(tokio::spawn(run_terminal(cfg.clone(), i)));
    }
    let mut rep = FleetReport::default();
    for t in tasks {
        match t.await {
            Ok(run) => {
                rep.authenticated += usize::from(run.authenticated);
                rep.reports += run.reports;
                rep.ok += run.ok;
                rep.latencies_us.extend_from_slice(&run.latencies_us);
                if let Some(e) = run.error {
                    rep.error_count += 1;
                    if rep.errors.len() < 10 {
                        rep.errors.push(e);
                    }
                }
            }
            Err(e) => {
                rep.error_count += 1;
                if rep.errors.len() < 10 {
                    rep.errors.push(format!("terminal task failed: {e}"));
                }
            }
        }
    }
    rep
}
