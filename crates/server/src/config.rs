//! The server's configuration file (TOML). Every key is optional and has a
//! documented default; an unknown key is an error that names the file,
//! line, column and key. `docs/SERVER.md` lists every option.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
pub use zhilu_core::event::CommandKind;
use zhilu_core::forecast::{ServiceConfig, ServiceError};

/// Whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listening, mode.
    pub server: ServerSection,
    /// Database and retention.
    pub storage: StorageSection,
    /// Live ingest.
    pub ingest: IngestSection,
    /// Operator approval per decision kind.
    pub decisions: DecisionSection,
    /// Roadside devices.
    pub devices: DeviceSection,
    /// MQTT broker (readings in, device commands out).
    pub mqtt: MqttSection,
    /// Accounts and sessions.
    pub auth: AuthSection,
    /// JT/T 808 gateway for commercial-vehicle terminals.
    pub jt808: Jt808Section,
    /// Live traffic forecasts (`GET /api/forecast`).
    pub forecast: ForecastSection,
    /// How sources' clocks are checked.
    pub time: TimeSection,
}

/// `[forecast]`: the live forecasts (`docs/FORECAST.md`). What they are is
/// `zhilu_core::forecast::ServiceConfig` (the same keys, documented there);
/// when they run is here. Data time everywhere: in `zhilu demo` it runs
/// faster than wall time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastSection {
    /// Whether the server runs forecasts at all.
    pub enabled: bool,
    /// History loaded for training (days before the data clock).
    pub history_days: f64,
    /// Days with readings needed before the model is trained; below, the
    /// time-of-day profile is used.
    pub min_model_days: f64,
    /// The last part of the history held out of training to calibrate the
    /// band (days).
    pub calibration_days: f64,
    /// Lower quantile of the forecast errors that makes the band's lower edge.
    pub band_lower: f64,
    /// Upper quantile of the forecast errors that makes the band's upper edge.
    pub band_upper: f64,
    /// Errors kept per regime, station and horizon.
    pub band_window: usize,
    /// Errors a station needs at a horizon before its own band is used.
    pub band_min_samples: usize,
    /// Not used: the forecast task follows the engine's closed ticks
    /// instead of polling; accepted so that older files still load.
    pub poll_ms: u64,
    /// A bucket is read once the data clock is this far past its end (s),
    /// so that readings of its last seconds are stored.
    pub grace_s: f64,
    /// Retraining interval when the model runs (data-time hours; 0 = never).
    pub retrain_hours: f64,
    /// Retraining interval while on the profile or persistence, so that the
    /// model takes over once enough history is stored (data-time hours).
    pub fallback_retrain_hours: f64,
    /// Training reads at most about this many station-intervals.
    pub max_train_samples: usize,
    /// Boosted trees per horizon in the model (0 = the ridge alone).
    pub trees: usize,
    /// Profile method: the current departure is carried ahead multiplied by
    /// this per 5-minute step.
    pub profile_decay: f32,
    /// At most this many buckets are replayed when the clock jumped ahead;
    /// older ones are skipped (counted as missing).
    pub max_catchup_buckets: usize,
}

impl Default for ForecastSection {
    fn default() -> ForecastSection {
        ForecastSection::with(&ServiceConfig::default())
    }
}

impl ForecastSection {
    /// The section with the service's settings `s` and the task's defaults.
    fn with(s: &ServiceConfig) -> ForecastSection {
        ForecastSection {
            enabled: true,
            history_days: s.history_days,
            min_model_days: s.min_model_days,
            calibration_days: s.calibration_days,
            band_lower: s.band_lower,
            band_upper: s.band_upper,
            band_window: s.band_window,
            band_min_samples: s.band_min_samples,
            poll_ms: 1000,
            grace_s: 30.0,
            retrain_hours: 24.0,
            fallback_retrain_hours: 1.0,
            max_train_samples: s.max_train_samples,
            trees: s.trees,
            profile_decay: s.profile_decay,
            max_catchup_buckets: 288,
        }
    }

    /// The service's settings.
    pub fn service(&self) -> ServiceConfig {
        ServiceConfig {
            history_days: self.history_days,
            min_model_days: self.min_model_days,
            calibration_days: self.calibration_days,
            band_lower: self.band_lower,
            band_upper: self.band_upper,
            band_window: self.band_window,
            band_min_samples: self.band_min_samples,
            max_train_samples: self.max_train_samples,
            trees: self.trees,
            profile_decay: self.profile_decay,
        }
    }

    /// Checks the settings are usable; an error's message starts with the
    /// name of the setting it is about.
    pub fn validate(&self) -> Result<(), ServiceError> {
        self.service().validate()?;
        let bad = |w| Err(ServiceError::Config(w));
        if !(self.grace_s.is_finite() && self.grace_s >= 0.0) {
            return bad("grace_s must not be negative");
        }
        if !(self.retrain_hours.is_finite() && self.retrain_hours >= 0.0) {
            return bad("retrain_hours must not be negative");
        }
        if !(self.fallback_retrain_hours.is_finite() && self.fallback_retrain_hours >= 0.0) {
            return bad("fallback_retrain_hours must not be negative");
        }
        Ok(())
    }
}

/// Which clock the centre trusts as "now".
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    /// Readings come from the real world: a row dated later than the wall
    /// clock plus `max_ahead_s` is refused.
    Wall,
    /// Readings come from a simulation running at its own (accelerated)
    /// clock (`zhilu demo`): no check against the wall clock; the quorum of
    /// sources still keeps one source's clock from moving the brain.
    Simulated,
}

/// `[time]`: a source's clock is checked, never trusted.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeSection {
    /// `wall` (default) or `simulated` (`zhilu demo` sets it).
    pub clock: ClockMode,
    /// A row dated more than this (s) after the server's wall clock is
    /// refused and quarantined (`wall` clock only).
    pub max_ahead_s: f64,
    /// A row of a source more than this (s) ahead of the quorum of
    /// sources is held back from the brain until the quorum reaches it,
    /// and the source gets a `source_clock` fault event.
    pub max_ahead_of_quorum_s: f64,
    /// Share of the sources (detector stations, else every source) whose
    /// clock must reach a time before the brain moves to it.
    pub quorum: f64,
    /// Rows held back at most; beyond it the rows furthest ahead are not
    /// fed to the brain (they stay stored).
    pub max_held_rows: usize,
    /// A source's `source_clock` fault ends after this long (s, wall
    /// clock) without a row out of time.
    pub recover_s: f64,
}

impl Default for TimeSection {
    fn default() -> Self {
        TimeSection {
            clock: ClockMode::Wall,
            max_ahead_s: 120.0,
            max_ahead_of_quorum_s: 90.0,
            quorum: 0.5,
            max_held_rows: 200_000,
            recover_s: 60.0,
        }
    }
}

/// `[jt808]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Jt808Section {
    /// Address of the gateway (e.g. `127.0.0.1:6808`); empty = off.
    /// `--jt808-listen` overrides.
    pub listen: String,
    /// Most terminal connections at once (also kept below the process's
    /// file-descriptor limit).
    pub max_connections: usize,
    /// Most terminal connections from one address at once.
    pub max_connections_per_ip: usize,
    /// A connection that has not authenticated within this time (s) is closed.
    pub auth_timeout_s: f64,
    /// A connection silent this long (s) is closed.
    pub idle_timeout_s: f64,
    /// Failed authentications in a row before a terminal is refused.
    pub auth_failures: u32,
    /// How long (s) such a terminal is refused.
    pub auth_lockout_s: f64,
    /// Class of a JT/T 808 vehicle not listed in `classes`
    /// (`hazmat`, `truck`, `bus`, `car`).
    pub default_class: String,
    /// Class per plate, e.g. `"冀A12345" = "bus"`.
    pub classes: BTreeMap<String, String>,
    /// Positions are written in batches of at most this many, or every 200 ms.
    pub batch_rows: usize,
}

impl Default for Jt808Section {
    fn default() -> Self {
        Jt808Section {
            listen: String::new(),
            max_connections: 20_000,
            max_connections_per_ip: 1_000,
            auth_timeout_s: 60.0,
            idle_timeout_s: 180.0,
            auth_failures: 5,
            auth_lockout_s: 300.0,
            default_class: "hazmat".into(),
            classes: BTreeMap::new(),
            batch_rows: 2_000,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address to listen on.
    pub listen: String,
    /// `production` (no account without `zhilu user add`) or `development`.
    pub mode: Mode,
    /// HTTP connections at once, at most (also kept below the process's
    /// file-descriptor limit).
    pub max_connections: usize,
    /// HTTP connections from one address at once, at most.
    pub max_connections_per_ip: usize,
    /// A client must send a request's headers within this time (s); a
    /// kept-alive connection with no new request is closed after it too.
    pub header_timeout_s: f64,
    /// A request body must arrive within this time (s).
    pub body_timeout_s: f64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            mode: Mode::Production,
            max_connections: 2_048,
            max_connections_per_ip: 256,
            header_timeout_s: 10.0,
            body_timeout_s: 60.0,
        }
    }
}

/// Run mode.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Accounts only from `zhilu user add`.
    Production,
    /// Same account rules; internal errors (500) carry their text.
    Development,
    /// `zhilu demo` only: a `demo` / `demo` operator account exists.
    Demo,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// `sqlite://zhilu.db` (embedded, default) or `postgres://user@host/db`.
    pub url: String,
    /// Raw readings older than this (data time, days) are rolled up into
    /// 5-minute aggregates (detectors, weather) or archived (positions,
    /// camera events).
    pub raw_retention_days: f64,
    /// Where archived positions / camera events go (CSV per day); empty =
    /// deleted after the retention age.
    pub archive_dir: String,
    /// How often the retention pass runs (minutes).
    pub retention_every_min: u64,
    /// A corridor-state snapshot every this many ticks.
    pub snapshot_every_ticks: u32,
    /// On restart, replay at most this much stored data (hours) to bring the
    /// brain back to where it was.
    pub resume_window_h: f64,
    /// Ingest is refused (503) while the database's file system has less
    /// free space than this (MB; SQLite only). 0 = no check.
    pub min_free_mb: u64,
    /// SQLite: `full` (default: a commit acknowledged survives a power
    /// cut) or `normal` (faster; a power cut may lose the last commits,
    /// never corrupts).
    pub sync: SyncMode,
}

/// SQLite durability.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// `synchronous=FULL`.
    Full,
    /// `synchronous=NORMAL`.
    Normal,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            url: "sqlite://zhilu.db".into(),
            raw_retention_days: 30.0,
            archive_dir: "archive".into(),
            retention_every_min: 60,
            snapshot_every_ticks: 10,
            resume_window_h: 6.0,
            min_free_mb: 256,
            sync: SyncMode::Full,
        }
    }
}

/// `[ingest]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Largest request body (bytes).
    pub max_body_bytes: usize,
    /// Requests that may wait for the database writer; beyond it ingest
    /// answers 503 with `Retry-After` (back-pressure, never an unbounded queue).
    pub queue_requests: usize,
    /// Rows written in one transaction at most (group commit).
    pub max_rows_per_commit: usize,
    /// How long an ingest request may wait for a queue slot (ms) before 503.
    pub queue_wait_ms: u64,
    /// A tick closes when every lane has reported, when a row of a later tick
    /// arrives, or this long (s, wall clock) after its first row.
    pub tick_grace_s: f64,
    /// Health says ticks stall when rows reach the brain but no tick has
    /// closed for this long (s, wall clock).
    pub stall_after_s: f64,
    /// Request bodies being read or parsed at once, at most (bytes); a
    /// request beyond it waits up to `queue_wait_ms`, then gets 503 with
    /// `Retry-After`.
    pub max_inflight_bytes: usize,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            max_body_bytes: 16 << 20,
            queue_requests: 256,
            max_rows_per_commit: 50_000,
            queue_wait_ms: 2_000,
            tick_grace_s: 10.0,
            stall_after_s: 90.0,
            max_inflight_bytes: 64 << 20,
        }
    }
}

/// Whether a decision kind is applied at once or waits for an operator.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// Applied at once (and audited).
    Auto,
    /// Proposed; an operator approves, edits or rejects.
    Confirm,
}

/// `[decisions]`: the mode per command kind, and proposal expiry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionSection {
    /// Per command kind (`speed_limit`, `message`, `fog_lights`, `entry`,
    /// `deicing`, `tunnel_plan` — the spelling of [`CommandKind::as_str`]):
    /// `auto` or `confirm`.
    #[serde(deserialize_with = "by_kind")]
    pub modes: BTreeMap<CommandKind, ApprovalMode>,
    /// A proposal's deadline (s): what happens when it passes unanswered
    /// is `on_deadline`.
    pub proposal_expiry_s: u64,
    /// Per command kind: `escalate` (default: stays pending, an `alarm`
    /// repeats every `escalation_repeat_s`), `apply`, or `drop` (expires).
    #[serde(deserialize_with = "by_kind")]
    pub on_deadline: BTreeMap<CommandKind, DeadlineAction>,
    /// How often an escalated proposal's alarm repeats (s).
    pub escalation_repeat_s: u64,
}

/// What happens when a proposal's deadline passes unanswered.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineAction {
    /// Stays pending; an alarm repeats with a rising level until answered.
    Escalate,
    /// Applied as proposed, audited as applied at the deadline.
    Apply,
    /// Expires: nothing is sent.
    Drop,
}

/// A `[decisions.modes]` / `[decisions.on_deadline]` key: a command kind
/// in the core's spelling.
struct KindKey(CommandKind);

impl<'de> Deserialize<'de> for KindKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KindKey, D::Error> {
        let s = String::deserialize(d)?;
        CommandKind::parse(&s).map(KindKey).ok_or_else(|| {
            let names: Vec<&str> = CommandKind::ALL.iter().map(|k| k.as_str()).collect();
            serde::de::Error::custom(format!(
                "unknown command kind `{s}`, expected one of {}",
                names.join(", ")
            ))
        })
    }
}

impl PartialEq for KindKey {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for KindKey {}
impl PartialOrd for KindKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for KindKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

fn by_kind<'de, D: serde::Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<BTreeMap<CommandKind, V>, D::Error> {
    let m = BTreeMap::<KindKey, V>::deserialize(d)?;
    Ok(m.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// Default: entry closures and tunnel plans wait for an operator; fog
/// speed limits, texts, lights and de-icers go out at once (they are the
/// law or are harmless, and minutes matter).
pub fn default_mode(k: CommandKind) -> ApprovalMode {
    match k {
        CommandKind::Entry | CommandKind::TunnelPlan => ApprovalMode::Confirm,
        _ => ApprovalMode::Auto,
    }
}

impl Default for DecisionSection {
    fn default() -> Self {
        DecisionSection {
            modes: BTreeMap::new(),
            proposal_expiry_s: 300,
            on_deadline: BTreeMap::new(),
            escalation_repeat_s: 60,
        }
    }
}

impl DecisionSection {
    /// What happens at a proposal's deadline for a kind (default: escalate).
    pub fn on_deadline(&self, k: CommandKind) -> DeadlineAction {
        self.on_deadline
            .get(&k)
            .copied()
            .unwrap_or(DeadlineAction::Escalate)
    }

    /// The mode for a kind (configured, else the default).
    pub fn mode(&self, k: CommandKind) -> ApprovalMode {
        self.modes.get(&k).copied().unwrap_or(default_mode(k))
    }
}

/// `[devices]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceSection {
    /// `sim` (in-process simulated devices, the default), `mqtt`, or `none`.
    pub adapter: AdapterKind,
    /// A command not confirmed within this time (s) is dropped.
    pub command_expiry_s: u64,
    /// Signs showing a default (non-fog) limit or a text blank / fall back
    /// when they hear nothing from the centre for this long (s).
    pub failsafe_after_s: u32,
    /// What a VMS shows on loss of contact; empty = blank.
    pub vms_fallback: String,
    /// A fog limit is held this long (s) without the centre, then falls to
    /// `fog_safe_kmh` (never blank).
    pub fog_hold_s: u32,
    /// The limit a fog-limited sign falls to after `fog_hold_s` (km/h; a
    /// lower commanded limit is kept). 20–60 (Art. 81).
    pub fog_safe_kmh: u16,
    /// A device that shows less than its plan requires for this long (s)
    /// opens a `device_out_of_plan` alarm until it complies.
    pub out_of_plan_alarm_s: u32,
    /// Simulated devices: confirmation delay (ms).
    pub sim_confirm_ms: u64,
}

impl Default for DeviceSection {
    fn default() -> Self {
        DeviceSection {
            adapter: AdapterKind::Sim,
            command_expiry_s: 120,
            failsafe_after_s: 120,
            vms_fallback: "谨慎驾驶 注意安全".into(),
            fog_hold_s: 1800,
            fog_safe_kmh: 40,
            out_of_plan_alarm_s: 15,
            sim_confirm_ms: 200,
        }
    }
}

/// Which device adapter commands go through.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    /// In-process simulated devices.
    Sim,
    /// MQTT (see crates/devices/MQTT.md).
    Mqtt,
    /// No devices: actions are recorded only.
    None,
}

/// `[mqtt]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSection {
    /// Subscribe to readings on the broker.
    pub ingest: bool,
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topic prefix (`{prefix}/readings/obs`, `{prefix}/devices/{id}/cmd`).
    pub prefix: String,
    /// Client id of the centre.
    pub client_id: String,
    /// Seconds to wait for a device's confirmation before a retry.
    pub ack_timeout_s: f64,
    /// Retries before a command is reported failed.
    pub max_retries: u32,
    /// Centre heartbeat period (s).
    pub heartbeat_s: f64,
    /// A device not heard from for this long (s) is offline.
    pub device_timeout_s: f64,
}

impl Default for MqttSection {
    fn default() -> Self {
        MqttSection {
            ingest: false,
            host: "127.0.0.1".into(),
            port: 1883,
            prefix: "zhilu".into(),
            client_id: "zhilu-centre".into(),
            ack_timeout_s: 5.0,
            max_retries: 3,
            heartbeat_s: 5.0,
            device_timeout_s: 30.0,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Session lifetime (h).
    pub session_hours: f64,
    /// Failed logins allowed per client address per minute; beyond it the
    /// address waits. A user name's failures only slow its logins down
    /// (an exponential delay), so the account's owner is never locked out.
    pub login_failures_per_min: u32,
    /// The longest delay (s) a user name's failed logins impose.
    pub login_delay_max_s: f64,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            session_hours: 12.0,
            login_failures_per_min: 5,
            login_delay_max_s: 30.0,
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid, with the place.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong (names the key).
        message: String,
    },
}

impl ServerConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        ServerConfig::parse(&text, &file)
    }

    /// Parses configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<ServerConfig, ConfigError> {
        let cfg: ServerConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.check(text, file)?;
        Ok(cfg)
    }

    fn check(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| {
            let (line, column) = text.find(key).map(|i| line_col(text, i)).unwrap_or((1, 1));
            Err(ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                message: format!("{key}: {message}"),
            })
        };
        let bad_in = |section: &str, key: &str, message: String| {
            let (line, column) = locate(text, section, key)
                .or_else(|| text.find(key).map(|i| line_col(text, i)))
                .unwrap_or((1, 1));
            Err(ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                message: format!("[{section}] {key}: {message}"),
            })
        };
        if let Err(ServiceError::Config(m)) = self.forecast.validate() {
            // The message starts with the key it is about.
            let key = m.split_whitespace().next().unwrap_or("forecast");
            return bad(key, format!("[forecast] {m}"));
        }
        if !self.jt808.listen.is_empty()
            && self.jt808.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return bad("listen", format!("not an address: {:?}", self.jt808.listen));
        }
        for c in std::iter::once(&self.jt808.default_class).chain(self.jt808.classes.values()) {
            if zhilu_core::VehicleClass::parse(c).is_none() {
                return bad(
                    c,
                    format!("vehicle class {c:?}: expected car, bus, truck or hazmat"),
                );
            }
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(
                "listen",
                format!("not an address: {:?}", self.server.listen),
            );
        }
        let url = &self.storage.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return bad(
                "url",
                format!("must start with sqlite: or postgres:// (got {url:?})"),
            );
        }
        let positive = [
            ("raw_retention_days", self.storage.raw_retention_days),
            ("resume_window_h", self.storage.resume_window_h),
            ("tick_grace_s", self.ingest.tick_grace_s),
            ("session_hours", self.auth.session_hours),
            ("ack_timeout_s", self.mqtt.ack_timeout_s),
            ("heartbeat_s", self.mqtt.heartbeat_s),
            ("device_timeout_s", self.mqtt.device_timeout_s),
        ];
        for (k, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(k, format!("must be a positive number (got {v})"));
            }
        }
        // Ranges: a value outside is a mistake, not a wish (1e13 hours
        // overflows the expiry; 0 failures locks after one).
        let ranges: [(&str, &str, f64, f64, f64); 18] = [
            (
                "auth",
                "session_hours",
                self.auth.session_hours,
                1.0 / 60.0,
                24.0 * 31.0,
            ),
            (
                "auth",
                "login_failures_per_min",
                f64::from(self.auth.login_failures_per_min),
                1.0,
                1000.0,
            ),
            (
                "auth",
                "login_delay_max_s",
                self.auth.login_delay_max_s,
                0.0,
                3600.0,
            ),
            (
                "storage",
                "raw_retention_days",
                self.storage.raw_retention_days,
                0.01,
                36_600.0,
            ),
            (
                "storage",
                "resume_window_h",
                self.storage.resume_window_h,
                0.01,
                24.0 * 31.0,
            ),
            (
                "ingest",
                "tick_grace_s",
                self.ingest.tick_grace_s,
                0.01,
                3600.0,
            ),
            (
                "ingest",
                "stall_after_s",
                self.ingest.stall_after_s,
                0.1,
                86_400.0,
            ),
            ("time", "max_ahead_s", self.time.max_ahead_s, 0.0, 86_400.0),
            (
                "time",
                "max_ahead_of_quorum_s",
                self.time.max_ahead_of_quorum_s,
                1.0,
                86_400.0,
            ),
            ("time", "quorum", self.time.quorum, 0.01, 1.0),
            ("time", "recover_s", self.time.recover_s, 1.0, 86_400.0),
            (
                "server",
                "header_timeout_s",
                self.server.header_timeout_s,
                0.1,
                3600.0,
            ),
            (
                "server",
                "body_timeout_s",
                self.server.body_timeout_s,
                0.1,
                3600.0,
            ),
            (
                "jt808",
                "auth_timeout_s",
                self.jt808.auth_timeout_s,
                0.1,
                3600.0,
            ),
            (
                "jt808",
                "idle_timeout_s",
                self.jt808.idle_timeout_s,
                0.1,
                86_400.0,
            ),
            (
                "mqtt",
                "ack_timeout_s",
                self.mqtt.ack_timeout_s,
                0.01,
                3600.0,
            ),
            ("mqtt", "heartbeat_s", self.mqtt.heartbeat_s, 0.01, 3600.0),
            (
                "mqtt",
                "device_timeout_s",
                self.mqtt.device_timeout_s,
                0.01,
                86_400.0,
            ),
        ];
        for (section, k, v, lo, hi) in ranges {
            if !(v.is_finite() && v >= lo && v <= hi) {
                return bad_in(
                    section,
                    k,
                    format!("must be between {lo} and {hi} (got {v})"),
                );
            }
        }
        if self.ingest.max_inflight_bytes < self.ingest.max_body_bytes {
            return bad_in(
                "ingest",
                "max_inflight_bytes",
                format!(
                    "must be at least max_body_bytes ({})",
                    self.ingest.max_body_bytes
                ),
            );
        }
        let counts = [
            ("max_body_bytes", self.ingest.max_body_bytes as u64),
            ("queue_requests", self.ingest.queue_requests as u64),
            (
                "max_rows_per_commit",
                self.ingest.max_rows_per_commit as u64,
            ),
            ("proposal_expiry_s", self.decisions.proposal_expiry_s),
            ("escalation_repeat_s", self.decisions.escalation_repeat_s),
            ("command_expiry_s", self.devices.command_expiry_s),
            (
                "snapshot_every_ticks",
                self.storage.snapshot_every_ticks as u64,
            ),
            ("max_connections", self.server.max_connections as u64),
            (
                "max_connections_per_ip",
                self.server.max_connections_per_ip as u64,
            ),
            ("max_inflight_bytes", self.ingest.max_inflight_bytes as u64),
            ("max_held_rows", self.time.max_held_rows as u64),
        ];
        for (k, v) in counts {
            if v == 0 {
                return bad(k, "must be at least 1".into());
            }
        }
        if !self.devices.vms_fallback.is_empty()
            && let Err(m) = crate::signs::check_vms_text(&self.devices.vms_fallback)
        {
            return bad("vms_fallback", m);
        }
        let safe = self.devices.fog_safe_kmh;
        if !(20..=60).contains(&safe) || !safe.is_multiple_of(10) {
            return bad(
                "fog_safe_kmh",
                format!("{safe}: a fog-safe limit is 20–60 km/h in steps of 10 (Art. 81)"),
            );
        }
        Ok(())
    }
}

/// Line and column of `key = …` inside `[section]`.
fn locate(text: &str, section: &str, key: &str) -> Option<(usize, usize)> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if let Some(h) = t.strip_prefix('[') {
            current = h.split(']').next().unwrap_or("").trim().to_string();
            continue;
        }
        if current == section
            && let Some(rest) = t.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some((i + 1, line.len() - t.len() + 1));
        }
    }
    None
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = ServerConfig::parse("", "x.toml").unwrap();
        assert_eq!(c, ServerConfig::default());
        assert_eq!(c.decisions.mode(CommandKind::Entry), ApprovalMode::Confirm);
        assert_eq!(
            c.decisions.mode(CommandKind::TunnelPlan),
            ApprovalMode::Confirm
        );
        assert_eq!(
            c.decisions.mode(CommandKind::SpeedLimit),
            ApprovalMode::Auto
        );
    }

    #[test]
    fn modes_are_configurable() {
        let c = ServerConfig::parse("[decisions.modes]\nspeed_limit = \"confirm\"\n", "x.toml")
            .unwrap();
        assert_eq!(
            c.decisions.mode(CommandKind::SpeedLimit),
            ApprovalMode::Confirm
        );
        assert_eq!(c.decisions.mode(CommandKind::Entry), ApprovalMode::Confirm);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = ServerConfig::parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", "z.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("z.toml:3:1:"), "{e}");
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn unknown_command_kind_is_rejected() {
        let e = ServerConfig::parse("[decisions.modes]\nspeed = \"auto\"\n", "z.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("z.toml:2:"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = ServerConfig::parse("[ingest]\ntick_grace_s = -1\n", "z.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("z.toml:2:1: tick_grace_s"), "{e}");
        let e = ServerConfig::parse("[storage]\nurl = \"mysql://x\"\n", "z.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2:1: url"), "{e}");
    }

    /// Issue 19: values that parse but cannot be meant are refused with
    /// the place and the key.
    #[test]
    fn out_of_range_values_name_file_line_and_key() {
        for (text, place) in [
            (
                "[auth]\nsession_hours = 1e13\n",
                "z.toml:2:1: [auth] session_hours",
            ),
            (
                "[auth]\n\nlogin_failures_per_min = 0\n",
                "z.toml:3:1: [auth] login_failures_per_min",
            ),
            (
                "[server]\nheader_timeout_s = 5\n[jt808]\nidle_timeout_s = 0\n",
                "z.toml:4:1: [jt808] idle_timeout_s",
            ),
            ("[time]\nquorum = 1.5\n", "z.toml:2:1: [time] quorum"),
            (
                "[ingest]\nmax_body_bytes = 1000\nmax_inflight_bytes = 10\n",
                "z.toml:3:1: [ingest] max_inflight_bytes",
            ),
        ] {
            let e = ServerConfig::parse(text, "z.toml").unwrap_err().to_string();
            assert!(e.starts_with(place), "{text:?}: {e}");
        }
        let ok = ServerConfig::parse(
            "[auth]\nsession_hours = 8\n[time]\nclock = \"simulated\"\n",
            "z.toml",
        )
        .unwrap();
        assert_eq!(ok.time.clock, ClockMode::Simulated);
    }
}
