//! Rows the store reads and writes. Times: `*_ms` fields are epoch
//! milliseconds; `at_ms` / `ts_ms` are data time (what the readings say),
//! `wall_ms` / `created_ms` / `decided_ms` are the server's clock.

use serde::Serialize;

/// One detector reading as received (a row of the contract's OBS.csv).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ObsRow {
    /// Global ingest order (assigned by the server, unique across kinds).
    pub seq: i64,
    /// Data time of the reading (end of its interval).
    pub ts_ms: i64,
    /// Detector id.
    pub detector: String,
    /// Lane number.
    pub lane: i16,
    /// Length of the counting interval.
    pub interval_s: i32,
    /// Vehicles counted in the interval.
    pub volume: i32,
    /// Mean speed, if measured.
    pub speed_kmh: Option<f64>,
    /// Occupancy, if measured.
    pub occupancy_pct: Option<f64>,
}

/// One road-weather reading (WEATHER.csv).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WeatherRow {
    /// Global ingest order (unique across kinds).
    pub seq: i64,
    /// Data time of the reading.
    pub ts_ms: i64,
    /// Weather station id.
    pub station: String,
    /// Visibility, if measured.
    pub visibility_m: Option<f64>,
    /// Road surface temperature, if measured.
    pub surface_temp_c: Option<f64>,
    /// Air temperature, if measured.
    pub air_temp_c: Option<f64>,
    /// Relative humidity, if measured.
    pub humidity_pct: Option<f64>,
    /// Contract spelling (`dry`, `ice`, …) or empty.
    pub surface_state: String,
}

/// One vehicle position (POS.csv).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PositionRow {
    /// Global ingest order (unique across kinds).
    pub seq: i64,
    /// Data time of the report.
    pub ts_ms: i64,
    /// Vehicle id (plate).
    pub vehicle: String,
    /// Vehicle class as the contract spells it.
    pub class: String,
    /// Latitude (WGS-84 degrees).
    pub lat: f64,
    /// Longitude (WGS-84 degrees).
    pub lon: f64,
    /// Reported speed, if any.
    pub speed_kmh: Option<f64>,
    /// Reported heading, if any.
    pub heading_deg: Option<f64>,
}

/// One camera-analytics event (CAM.csv).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CameraRow {
    /// Global ingest order (unique across kinds).
    pub seq: i64,
    /// Data time of the detection.
    pub ts_ms: i64,
    /// Camera id.
    pub camera: String,
    /// What was detected (`congestion`, `stopped_vehicle`, …).
    pub kind: String,
    /// `up` / `down` / empty.
    pub direction: String,
    /// Where, as a stake in metres.
    pub stake_m: f64,
    /// Lane, if the camera names one.
    pub lane: Option<i16>,
    /// Detection confidence (0–1).
    pub confidence: f64,
}

/// Raw readings accepted together (one ingest request or one group commit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadingBatch {
    /// Detector readings.
    pub obs: Vec<ObsRow>,
    /// Weather readings.
    pub weather: Vec<WeatherRow>,
    /// Vehicle positions.
    pub positions: Vec<PositionRow>,
    /// Camera events.
    pub camera: Vec<CameraRow>,
}

impl ReadingBatch {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.obs.len() + self.weather.len() + self.positions.len() + self.camera.len()
    }
    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`crate::Store::append_readings`] did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// Seqs of the batch's rows not stored because the same reading was
    /// already stored (a re-sent or replayed row: stored once), ascending.
    /// Every other row of the batch is stored.
    pub duplicates: Vec<i64>,
}

/// One stored reading, read back in ingest order (for resuming the brain).
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A detector reading.
    Obs(ObsRow),
    /// A weather reading.
    Weather(WeatherRow),
    /// A vehicle position.
    Position(PositionRow),
    /// A camera event.
    Camera(CameraRow),
}

impl Reading {
    /// Its ingest sequence number.
    pub fn seq(&self) -> i64 {
        match self {
            Reading::Obs(r) => r.seq,
            Reading::Weather(r) => r.seq,
            Reading::Position(r) => r.seq,
            Reading::Camera(r) => r.seq,
        }
    }
}

/// Rows stored per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReadingCounts {
    /// Rows in `obs`.
    pub obs: i64,
    /// Rows in `weather`.
    pub weather: i64,
    /// Rows in `positions`.
    pub positions: i64,
    /// Rows in `camera`.
    pub camera: i64,
}

/// An event and its latest form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct EventRow {
    /// `E17` — the server's id, stable across restarts.
    pub id: String,
    /// Event kind (`fog`, `ice`, `congestion`, `incident`, …).
    pub kind: String,
    /// `up` / `down` / `both`.
    pub direction: String,
    /// Start of the affected stretch (stake, metres).
    pub from_m: f64,
    /// End of the affected stretch (stake, metres).
    pub to_m: f64,
    /// Data time the event began.
    pub start_ms: i64,
    /// Data time it was detected.
    pub detected_ms: i64,
    /// Data time it ended; `None` while open.
    pub end_ms: Option<i64>,
    /// Severity level.
    pub severity: i16,
    /// The rule that raised it.
    pub rule: String,
    /// Identity key the server uses to recognise the event after a restart.
    pub key: String,
    /// The replay contract's JSON line for the event (latest form).
    pub json: String,
    /// When the server last wrote it.
    pub updated_wall_ms: i64,
}

/// One step in an event's life.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct EventChangeRow {
    /// The event (`E17`).
    pub event_id: String,
    /// `opened` / `updated` / `ended`.
    pub change: String,
    /// Data time of the change.
    pub at_ms: i64,
    /// Server time of the change.
    pub wall_ms: i64,
    /// The event's JSON line after the change.
    pub json: String,
}

/// A device command the brain decided (auto-applied or proposed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct ActionRow {
    /// Assigned by the server, increasing.
    pub id: i64,
    /// Data time of the decision.
    pub at_ms: i64,
    /// Server time of the decision.
    pub wall_ms: i64,
    /// Target device id.
    pub device: String,
    /// Command kind (`speed_limit`, `vms`, `fog_lights`, `entry`, …).
    pub kind: String,
    /// The contract's ACTIONS.jsonl line.
    pub json: String,
    /// The event that caused it, if any.
    pub event_id: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// `auto` or `confirm`.
    pub mode: String,
    /// The proposal it came from (`confirm` mode), if any.
    pub proposal_id: Option<i64>,
}

/// A proposed action waiting for (or decided by) an operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct ProposalRow {
    /// Assigned by the server, increasing.
    pub id: i64,
    /// Server time it was proposed.
    pub created_wall_ms: i64,
    /// Server time it expires if undecided.
    pub expires_wall_ms: i64,
    /// Data time of the decision that proposed it.
    pub at_ms: i64,
    /// Target device id.
    pub device: String,
    /// Command kind.
    pub kind: String,
    /// The proposed command (ACTIONS.jsonl line).
    pub json: String,
    /// The event that caused it, if any.
    pub event_id: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// `pending`, `approved`, `edited`, `rejected`, `expired`, `superseded`.
    pub status: String,
    /// Who decided (user name, or `system`).
    pub decided_by: Option<String>,
    /// Server time of the decision.
    pub decided_wall_ms: Option<i64>,
    /// The decider's reason, if given.
    pub decision_reason: Option<String>,
    /// What was applied (the proposal, or the operator's edit).
    pub final_json: Option<String>,
    /// The response plan it is a step of (`None` before migration 0006).
    pub plan_id: Option<i64>,
}

/// A response plan (处置预案): the brain's proposals for one event (or one
/// cause) from one decision pass, and the steps that joined it later while
/// it was pending. Its steps are the proposals whose `plan_id` is its id;
/// its status is derived from theirs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct PlanRow {
    /// The id of its first step (proposal), so a plan needs no counter.
    pub id: i64,
    /// Server time it was made.
    pub created_wall_ms: i64,
    /// Server time a step last joined it.
    pub updated_wall_ms: i64,
    /// Data time of the decision pass that made it.
    pub at_ms: i64,
    /// The event it answers, if any.
    pub event_id: Option<String>,
    /// What groups its steps: the event id, else the rule.
    pub cause: String,
    /// 名称: a readable name ("团雾 K45+200–K52+000 下行 处置预案").
    pub name: String,
}

/// An operator's (or the expiry clock's) decision on a pending proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalDecision {
    /// New status (`approved`, `edited`, `rejected`, `expired`, …).
    pub status: String,
    /// Who decides (user name, or `system`).
    pub by: String,
    /// Server time of the decision.
    pub wall_ms: i64,
    /// The decider's reason, if given.
    pub reason: Option<String>,
    /// What is applied (the proposal, or the edit), if anything.
    pub final_json: Option<String>,
}

/// One line of the append-only audit log: who did what, when, why.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    /// Assigned by the store (0 when appending).
    pub seq: i64,
    /// Server time.
    pub wall_ms: i64,
    /// User name, or `system`.
    pub actor: String,
    /// What was done (`login`, `proposal.approve`, `action.auto`, …).
    pub action: String,
    /// What it was done to (`P12`, `E17`, `VSL-K12`, a user name).
    pub target: String,
    /// Details as JSON text (reason, old/new values).
    pub detail: String,
}

/// An account.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    /// Login name (unique).
    pub name: String,
    /// `viewer` / `operator` / `admin`.
    pub role: String,
    /// argon2 PHC string.
    pub pw_hash: String,
    /// Server time the account was made.
    pub created_wall_ms: i64,
    /// A disabled account cannot log in and its sessions stop resolving.
    pub disabled: bool,
}

/// A login session (the token itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SessionRow {
    /// Hash of the session token.
    pub token_hash: String,
    /// The account's name.
    pub user: String,
    /// The user's role, joined from the account.
    pub role: String,
    /// Server time of the login.
    pub created_wall_ms: i64,
    /// Server time it expires.
    pub expires_wall_ms: i64,
}

/// What a device last confirmed (not what was sent).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DeviceStateRow {
    /// Device id.
    pub device: String,
    /// Confirmed state as JSON text (`null` before the first confirmation).
    pub state_json: String,
    /// Server time of the last confirmation.
    pub confirmed_wall_ms: Option<i64>,
    /// Whether the device is reachable.
    pub online: bool,
    /// Server time it was last heard from.
    pub last_seen_wall_ms: Option<i64>,
    /// The command sent and not yet confirmed, as JSON text.
    pub pending_json: Option<String>,
    /// Server time the row was written.
    pub updated_wall_ms: i64,
}

/// Everything one closed tick produced, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickCommit {
    /// Data time of the tick.
    pub tick_ms: i64,
    /// Events opened or changed (latest form).
    pub events: Vec<EventRow>,
    /// Their changes, in order.
    pub changes: Vec<EventChangeRow>,
    /// Actions decided.
    pub actions: Vec<ActionRow>,
    /// Proposals made or changed.
    pub proposals: Vec<ProposalRow>,
    /// Plans made or joined (written before the proposals).
    pub plans: Vec<PlanRow>,
    /// Audit entries (seq assigned by the store).
    pub audit: Vec<AuditEntry>,
    /// Corridor state as JSON text, when a snapshot is due.
    pub state_json: Option<String>,
}

/// Filter for listing events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    /// Only events not ended.
    pub active_only: bool,
    /// Only events of this kind.
    pub kind: Option<String>,
    /// Only events updated / started at or after this data time.
    pub since_ms: Option<i64>,
    /// At most this many (0 = 1000).
    pub limit: u32,
}

/// Highest ids in use, for the server's counters after a restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaxIds {
    /// Highest reading seq ever stored (retention included).
    pub reading_seq: i64,
    /// Highest `n` of event ids `E{n}`.
    pub event_num: i64,
    /// Highest action id.
    pub action_id: i64,
    /// Highest proposal id.
    pub proposal_id: i64,
}

/// What a retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RetentionReport {
    /// Detector rows rolled up into `obs_5min` and removed.
    pub obs_rolled_up: i64,
    /// Weather rows rolled up into `weather_5min` and removed.
    pub weather_rolled_up: i64,
    /// Position rows removed (archived when a directory was given).
    pub positions_archived: i64,
    /// Camera rows removed (archived when a directory was given).
    pub camera_archived: i64,
    /// Archive files written.
    pub files: Vec<String>,
}

/// A row refused for its time, kept for an operator.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct QuarantineRow {
    /// Order of arrival (assigned by the store; 0 when writing).
    pub id: i64,
    /// When it was refused (server clock).
    pub wall_ms: i64,
    /// `observations`, `weather`, `positions`, `camera-events`.
    pub kind: String,
    /// The source: detector, station, vehicle or camera id.
    pub source: String,
    /// The time the row claimed.
    pub ts_ms: i64,
    /// Why (`ahead of the server clock by 31536000 s`, `before 2000`).
    pub reason: String,
    /// The row as received.
    pub row_json: String,
}

/// A source whose clock is off, as the server judged it (survives a
/// restart: migration 0008).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SourceClockRow {
    /// Source id (detector, station, vehicle, camera).
    pub source: String,
    /// Why (`ahead of the server clock`, `ahead of the other sources`, …).
    pub why: String,
    /// How far ahead it was last seen (ms), if known.
    pub ahead_ms: Option<i64>,
    /// First row out of time (server clock).
    pub first_bad_wall_ms: i64,
    /// Last row out of time (server clock): it recovers `recover_s` later.
    pub last_bad_wall_ms: i64,
    /// Its open `source_clock` event, if one is open.
    pub event_id: Option<String>,
}
