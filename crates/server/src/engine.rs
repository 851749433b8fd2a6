//! The engine: one task that owns the brain. Stored readings come in (in
//! ingest order), ticks close, and what each tick produced — event
//! openings, updates and endings, device commands, proposals — is written
//! in one transaction, then published on the live stream and sent to the
//! devices. Operator decisions and device reports go through the same
//! task, so there is one writer of decisions and no race between them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use zhilu_core::event::Severity;
use zhilu_core::{Action, Brain, BrainConfig, Command, Event, EventDetail, EventKind};
use zhilu_devices::{DeviceAdapter, DeviceCommand, DeviceReport, DeviceState};
use zhilu_io::jsonl::{action_record, event_json, parse_action_command};
use zhilu_road::{Direction, RoadBook};
use zhilu_store::{
    ActionRow, AuditEntry, DeviceStateRow, EventChangeRow, EventRow, ProposalDecision, ProposalRow,
    ReadingBatch, Store, TickCommit,
};

use crate::clock::{Admit, Gate, SourceClocks};
use crate::config::{ApprovalMode, CommandKind, DeadlineAction, ServerConfig};

pub mod carry;
pub mod fleet;
pub mod plans;
use crate::convert::{Ids, RowRef};
use crate::health::HealthState;
use crate::records::{self, AuditDetail, Evidence, ServerEvent};
use crate::stream::{Hub, StreamKind};
use crate::vehicles::VehicleBoard;
use crate::views::{StateView, device_json, proposal_json};
use carry::Carry;
use fleet::{Desired, Edit, Fleet, Target};

pub use crate::wall_ms;

/// What an operator decided on a proposal.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Apply as proposed.
    Approve,
    /// Apply with a changed value (e.g. a lower limit, another text).
    Edit(Value),
    /// Do not apply.
    Reject,
}

/// Why a decision was not taken.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecideError {
    /// No such proposal.
    #[error("no proposal P{0}")]
    NotFound(i64),
    /// Already decided / expired / superseded.
    #[error("proposal P{0} is {1}, not pending")]
    NotPending(i64, String),
    /// The edit is not a lawful or sensible value.
    #[error("{0}")]
    BadEdit(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(String),
}

/// Messages to the engine.
pub enum Msg {
    /// Readings already stored (seq assigned).
    Readings(Arc<ReadingBatch>),
    /// An operator's decision.
    Decide {
        /// Proposal id.
        id: i64,
        /// What.
        verdict: Verdict,
        /// Who.
        by: String,
        /// Why (required for rejections and edits).
        reason: Option<String>,
        /// The answer.
        reply: oneshot::Sender<Result<ProposalRow, DecideError>>,
    },
    /// An operator's decision on steps of one response plan, taken in
    /// order with nothing in between; every listed step must be pending.
    DecidePlan {
        /// Plan id (the id of its first step).
        plan: i64,
        /// The steps (proposal ids), in order.
        steps: Vec<i64>,
        /// What (the same for every step).
        verdict: Verdict,
        /// Who.
        by: String,
        /// Why (required for rejections and edits).
        reason: Option<String>,
        /// The steps as decided.
        reply: oneshot::Sender<Result<Vec<ProposalRow>, DecideError>>,
    },
    /// A device adapter's report.
    Device(DeviceReport),
    /// A JT/T 808 terminal's alarm bits changed.
    TerminalAlarm {
        /// Plate (or phone).
        vehicle: String,
        /// Fix time (epoch ms).
        time_ms: i64,
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
        /// Alarm bits now set.
        bits: u32,
        /// Newly set.
        raised: u32,
        /// Newly clear.
        cleared: u32,
    },
}

/// Terminal alarm bits that open a `terminal_alarm` event (JT/T 808 table
/// 24): bit, rule, severity, words.
const ALARM_EVENTS: [(u32, &str, i16, &str); 4] = [
    (0, "jt808.emergency", 5, "紧急报警 emergency button"),
    (1, "jt808.overspeed", 3, "超速报警 over-speed (terminal)"),
    (2, "jt808.fatigue", 3, "疲劳驾驶 fatigue driving"),
    (3, "jt808.danger_warning", 4, "危险预警 danger warning"),
];

/// Shared read-only view the API serves from.
#[derive(Default)]
pub struct Snapshot {
    /// Latest corridor state.
    pub state: Option<Arc<StateView>>,
    /// Data time of the last closed tick.
    pub last_tick_ms: Option<i64>,
    /// Ticks closed since start.
    pub ticks: u64,
    /// Rows the brain has taken since start.
    pub rows: u64,
    /// Device targets (device, command kind, carriageway) showing less than
    /// their plan requires (also the gauge `zhilu_devices_out_of_plan`).
    pub devices_out_of_plan: u64,
}

impl Snapshot {
    /// How many device targets show less than their plan requires (for
    /// `/api/health`).
    pub fn devices_out_of_plan(&self) -> u64 {
        self.devices_out_of_plan
    }
}

/// The engine's state.
pub struct Engine {
    road: Arc<RoadBook>,
    cfg: ServerConfig,
    store: Store,
    hub: Hub,
    brain: Brain,
    ids: Ids,
    /// brain seq → (server id, last published JSON).
    events: HashMap<u64, (String, String)>,
    next_event: i64,
    next_action: i64,
    next_proposal: i64,
    ticks_seen: u64,
    tick_rows: u32,
    tick_started: Option<Instant>,
    total_lanes: u32,
    devices: HashMap<String, DeviceStateRow>,
    adapter: Option<Arc<dyn DeviceAdapter>>,
    snapshot: Arc<std::sync::RwLock<Snapshot>>,
    /// While bringing the brain back: ticks up to this data time were
    /// already written before the restart.
    resume_until_ms: Option<i64>,
    /// Stored events by identity key (filled while resuming).
    known: HashMap<String, String>,
    known_loose: HashMap<String, Vec<String>>,
    /// Open terminal alarms: (vehicle, bit) → event row.
    alarms: HashMap<(String, u32), EventRow>,
    /// Where every vehicle is (for the console).
    vehicles: Arc<std::sync::RwLock<VehicleBoard>>,
    vehicles_published: Instant,
    /// Unanswered proposals past their deadline: id → how often escalated.
    escalations: HashMap<i64, u32>,
    /// Open events' last history line (id → its JSON): an update makes a
    /// new line only when it differs in what an operator cares about.
    recorded: HashMap<String, crate::flow::EventLine>,
    /// What counts as such a difference.
    history_table: crate::flow::HistoryTable,
    /// Commandable devices: desired vs shown state, reconciliation.
    fleet: Fleet,
    /// Event kind by server event id (why a command was sent).
    causes: HashMap<String, EventKind>,
    /// Open `device_out_of_plan` alarms by event id (row, its JSON).
    plan_alarms: HashMap<String, EventRow>,
    /// The quorum gate between stored rows and the brain (`clock.rs`).
    gate: Gate,
    /// Sources whose clocks are off (shared with ingest and health).
    clocks: Arc<SourceClocks>,
    /// Open `source_clock` events: source → event row.
    clock_events: HashMap<String, EventRow>,
    /// What health reports (commit failures, ticks).
    health: Arc<HealthState>,
    /// A tick whose commit failed: written, published and sent with the
    /// next tick that commits (nothing goes out for an unwritten tick).
    carry: Option<Carry>,
    /// The data time of the last closed tick, for the tasks that follow the
    /// data clock (the forecasts): sent with the snapshot.
    ticks: tokio::sync::watch::Sender<Option<i64>>,
}

/// Ends an event row the server makes itself (a terminal alarm, a source's
/// clock) at `end_ms`: its JSON gets `end`; returns the change to record
/// (dated `at_ms`).
fn end_row(row: &mut EventRow, end_ms: i64, at_ms: i64, now: i64, tz: i32) -> EventChangeRow {
    row.end_ms = Some(end_ms);
    row.json = records::event_ended(&row.json, &zhilu_io::jsonl::format_time(end_ms, tz));
    row.updated_wall_ms = now;
    EventChangeRow {
        event_id: row.id.clone(),
        change: "ended".into(),
        at_ms,
        wall_ms: now,
        json: row.json.clone(),
    }
}

/// Why the engine writes the brain's outputs: a tick closed, or a reading
/// decided between ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drain {
    Tick,
    Reading,
}

/// Identity of an event across a restart: kind, carriageway, rule, first
/// evidence and the data time it was raised.
fn event_key(e: &Event, ids: &Ids) -> (String, String) {
    let who = match &e.detail {
        EventDetail::Vehicle { vehicle, .. } => ids.vehicles.name(*vehicle).to_string(),
        _ => e.detectors.first().map_or(String::new(), |d| d.to_string()),
    };
    let loose = format!(
        "{}|{}|{}|{}",
        e.kind.as_str(),
        e.direction.map_or("both", |d| d.as_str()),
        e.rule,
        who
    );
    (format!("{loose}|{}", e.detected_ms), loose)
}

impl Engine {
    /// An engine over a store; call [`Engine::resume`] before serving.
    pub fn new(
        road: Arc<RoadBook>,
        cfg: ServerConfig,
        store: Store,
        hub: Hub,
        adapter: Option<Arc<dyn DeviceAdapter>>,
        snapshot: Arc<std::sync::RwLock<Snapshot>>,
    ) -> Engine {
        let brain = Brain::new(road.clone(), BrainConfig::default());
        let cfg_time = cfg.time.clone();
        let recover_s = cfg.time.recover_s;
        let ids = Ids::new(&road);
        let total_lanes = road.total_lanes();
        let fleet = Fleet::new(&road);
        Engine {
            road,
            cfg,
            store,
            hub,
            brain,
            ids,
            events: HashMap::new(),
            next_event: 1,
            next_action: 1,
            next_proposal: 1,
            ticks_seen: 0,
            tick_rows: 0,
            tick_started: None,
            total_lanes,
            devices: HashMap::new(),
            adapter,
            snapshot,
            resume_until_ms: None,
            known: HashMap::new(),
            known_loose: HashMap::new(),
            alarms: HashMap::new(),
            vehicles: Arc::new(std::sync::RwLock::new(VehicleBoard::new())),
            vehicles_published: Instant::now(),
            escalations: HashMap::new(),
            recorded: HashMap::new(),
            history_table: crate::flow::HistoryTable::default(),
            fleet,
            causes: HashMap::new(),
            plan_alarms: HashMap::new(),
            gate: Gate::new(&cfg_time),
            clocks: Arc::new(SourceClocks::new(recover_s)),
            clock_events: HashMap::new(),
            health: Arc::new(HealthState::default()),
            carry: None,
            ticks: tokio::sync::watch::Sender::new(None),
        }
    }

    /// The data time of each closed tick as it closes (`None` before the
    /// first): the clock of the tasks that follow data time.
    pub fn ticks(&self) -> tokio::sync::watch::Receiver<Option<i64>> {
        self.ticks.subscribe()
    }

    /// Shares the source-clock tracker and the health state with the
    /// rest of the server.
    pub fn watch(&mut self, clocks: Arc<SourceClocks>, health: Arc<HealthState>) {
        self.clocks = clocks;
        self.health = health;
    }

    /// Feeds one stored row through the quorum gate: now, or held until
    /// the quorum of sources reaches its time (then with the rows it
    /// releases).
    async fn feed_gated(&mut self, r: RowRef<'_>) {
        match self.gate.admit(r) {
            Admit::Now => {
                self.health.row_fed(wall_ms());
                self.feed(r).await;
                if self.gate.held() > 0 {
                    for h in self.gate.release() {
                        self.feed(RowRef::of(&h)).await;
                    }
                }
            }
            Admit::Hold { ahead_ms, off } => {
                if off {
                    let src = match r {
                        RowRef::Obs(o) => &o.detector,
                        RowRef::Weather(w) => &w.station,
                        RowRef::Position(p) => &p.vehicle,
                        RowRef::Camera(c) => &c.camera,
                    };
                    self.clocks.held(src, wall_ms(), ahead_ms);
                }
                metrics::counter!("zhilu_clock_held_total").increment(1);
                self.gate.hold(crate::clock::owned(r));
            }
        }
        self.health.held_rows.store(
            self.gate.held() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The vehicle board this engine fills (for `GET /api/vehicles`).
    pub fn vehicles(&self) -> Arc<std::sync::RwLock<VehicleBoard>> {
        self.vehicles.clone()
    }

    /// Publishes the vehicles that moved since the last batch.
    fn publish_vehicles(&mut self) {
        self.vehicles_published = Instant::now();
        let update = self.vehicles.write().ok().and_then(|mut b| b.take_update());
        if let Some(u) = update {
            self.hub.publish(StreamKind::Vehicles, u);
        }
    }

    /// Brings the brain back to where it was before a stop: counters from
    /// the store, device states as last confirmed, and the stored readings
    /// of the resume window replayed. Ticks that were already written are
    /// not written, published or sent again; events still open are matched
    /// to their stored ids; ticks after the last written one are processed
    /// as usual (their readings were acknowledged, their outcome not yet
    /// written). Returns the rows replayed.
    pub async fn resume(&mut self) -> anyhow::Result<u64> {
        let max = self.store.max_ids().await?;
        self.next_event = max.event_num + 1;
        self.next_action = max.action_id + 1;
        self.next_proposal = max.proposal_id + 1;
        let now = wall_ms();
        for id in fleet::commandable_devices(&self.road) {
            self.devices.insert(id.clone(), unheard_device(id, now));
        }
        for d in self.store.device_states().await? {
            if !self.fleet.manages(&d.device) {
                continue;
            }
            if let Ok(s) = DeviceState::from_json_str(&d.state_json) {
                self.fleet
                    .set_shown(&d.device, &s, d.confirmed_wall_ms.unwrap_or(0));
            }
            self.devices.insert(d.device.clone(), d);
        }
        // Sources whose clocks were off stay off, their events open, until
        // they have been on time for `recover_s` (migration 0008).
        let off = self.store.source_clocks().await?;
        self.clocks.restore(&off);
        for e in self.store.active_events().await? {
            if let Some(o) = off
                .iter()
                .find(|o| o.event_id.as_deref() == Some(e.id.as_str()))
            {
                self.clock_events.insert(o.source.clone(), e);
            }
        }
        // What operators applied stays in force (the brain's replay below
        // brings back what it applied itself).
        let mut decided = self.store.proposals(None).await?;
        decided.sort_by_key(|p| p.id);
        for p in decided {
            let Some(j) = p.final_json.as_deref() else {
                continue;
            };
            if let Ok((command, direction)) = parse_action_command(j) {
                self.set_desired(&p.device, command, direction, p.event_id.as_deref());
            }
        }
        let last_tick = self
            .store
            .get_meta("last_tick_ms")
            .await?
            .and_then(|s| s.parse::<i64>().ok());
        let Some(last_tick) = last_tick else {
            // Nothing written yet; replay whatever was stored (a crash
            // before the first tick closed).
            return self.replay_from(i64::MIN).await;
        };
        for e in self.store.active_events().await? {
            self.known_loose
                .entry(e.key.split('|').take(4).collect::<Vec<_>>().join("|"))
                .or_default()
                .push(e.id.clone());
            self.known.insert(e.key.clone(), e.id.clone());
        }
        self.resume_until_ms = Some(last_tick);
        let window_ms = (self.cfg.storage.resume_window_h * 3_600_000.0) as i64;
        let n = self.replay_from(last_tick - window_ms).await?;
        if self.resume_until_ms.is_some() {
            // Everything stored was already written: reconcile now.
            self.finish_resume(last_tick).await?;
        }
        // A decision written but perhaps never sent (killed between the
        // commit and the send) goes out again under its own id; then
        // devices showing other than their plans are commanded at once.
        self.resend_written().await?;
        self.reconcile().await;
        Ok(n)
    }

    /// Sends each device's latest written action again, under its own
    /// command id, when it is still the device's plan and the device does
    /// not show it (`MQTT.md`, "Delivery of decisions"): the same decision,
    /// not a new one; a device that had applied it confirms it again.
    async fn resend_written(&mut self) -> anyhow::Result<()> {
        if self.adapter.is_none() || self.resume_until_ms.is_some() {
            return Ok(());
        }
        for a in self.store.last_sent_actions().await? {
            let Ok((command, direction)) = parse_action_command(&a.json) else {
                continue;
            };
            let t = fleet::Target {
                device: a.device.clone(),
                kind: command.kind(),
                direction,
            };
            let Some(d) = self.fleet.desired(&t).filter(|d| d.command == command) else {
                continue;
            };
            if !self.fleet.manages(&a.device) || self.fleet.shows(&t) == command {
                continue;
            }
            let cause = d.cause;
            tracing::info!(device = %a.device, command_id = a.id, "re-sending a written decision after a restart");
            self.send_to_device(&a.device, a.id, &command, direction, cause)
                .await;
        }
        Ok(())
    }

    async fn replay_from(&mut self, from_ts: i64) -> anyhow::Result<u64> {
        let mut after = 0i64;
        let mut n = 0u64;
        loop {
            let page = self.store.readings_after(after, from_ts, 20_000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq();
            n += page.len() as u64;
            for r in &page {
                self.feed_gated(RowRef::of(r)).await;
            }
        }
        Ok(n)
    }

    /// Ends a resume: events the replay has open get their stored ids (or
    /// new ones), stored events the replay did not find again are ended.
    async fn finish_resume(&mut self, last_tick: i64) -> anyhow::Result<()> {
        self.resume_until_ms = None;
        let now = wall_ms();
        let mut commit = TickCommit {
            tick_ms: last_tick,
            ..TickCommit::default()
        };
        let open: Vec<Event> = self.brain.open_events().cloned().collect();
        let mut still: std::collections::HashSet<String> = Default::default();
        for e in &open {
            let (key, loose) = event_key(e, &self.ids);
            let id = self
                .known
                .get(&key)
                .cloned()
                .or_else(|| self.known_loose.get_mut(&loose).and_then(|v| v.pop()));
            let (id, change) = match id {
                Some(id) => (id, "updated"),
                None => (self.new_event_id(), "opened"),
            };
            still.insert(id.clone());
            self.causes.insert(id.clone(), e.kind);
            let (row, json) = self.event_row(e, &id, &key, now);
            commit.changes.push(EventChangeRow {
                event_id: id.clone(),
                change: change.into(),
                at_ms: last_tick,
                wall_ms: now,
                json: json.clone(),
            });
            commit.events.push(row);
            self.events.insert(e.seq, (id, json));
        }
        for stored in self.store.active_events().await? {
            if still.contains(&stored.id) || self.clock_events.values().any(|r| r.id == stored.id) {
                continue;
            }
            let mut row = stored.clone();
            row.end_ms = Some(last_tick);
            row.json = records::event_ended_for(
                &row.json,
                &zhilu_io::jsonl::format_time(last_tick, self.road.tz_offset_s()),
                "not found again after a restart",
            );
            row.updated_wall_ms = now;
            commit.changes.push(EventChangeRow {
                event_id: row.id.clone(),
                change: "ended".into(),
                at_ms: last_tick,
                wall_ms: now,
                json: row.json.clone(),
            });
            commit.events.push(row);
        }
        self.known.clear();
        self.known_loose.clear();
        self.store.commit_tick(&commit).await?;
        Ok(())
    }

    /// An event the operators closed while the brain still saw it got
    /// worse (its severity class rose): it reopens — their close does not
    /// hide it — with a history line and an audit entry by `system`.
    async fn reopen_if_closed(
        &self,
        id: &str,
        was: Severity,
        is: Severity,
        event_json: String,
        tick_ms: i64,
        now: i64,
    ) {
        let change = EventChangeRow {
            event_id: id.to_string(),
            change: "reopened".into(),
            at_ms: tick_ms,
            wall_ms: now,
            json: records::reopened_line(was, is),
        };
        let audit = AuditEntry {
            seq: 0,
            wall_ms: now,
            actor: "system".into(),
            action: "event.reopen".into(),
            target: id.to_string(),
            detail: AuditDetail::Reopen { from: was, to: is }.json(),
        };
        match self.store.reopen_event(&change, &audit).await {
            Ok(true) => self.hub.publish(
                StreamKind::Event,
                records::reopened_message(tick_ms, &event_json, &self.road),
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(message = "Reopening a closed event failed.", event = id, error = %e)
            }
        }
    }

    fn new_event_id(&mut self) -> String {
        let id = format!("E{}", self.next_event);
        self.next_event += 1;
        id
    }

    fn event_row(&self, e: &Event, id: &str, key: &str, now: i64) -> (EventRow, String) {
        let vehicles = &self.ids.vehicles;
        let raw = event_json(e, &self.road, &|v| vehicles.name(v).to_string());
        let json = records::event_with_id(&raw, id);
        let row = EventRow {
            id: id.to_string(),
            kind: e.kind.as_str().into(),
            direction: e.direction.map_or("both", |d| d.as_str()).into(),
            from_m: e.from_m,
            to_m: e.to_m,
            start_ms: e.start_ms,
            detected_ms: e.detected_ms,
            end_ms: e.end_ms,
            severity: e.severity as i16,
            rule: e.rule.into(),
            key: key.to_string(),
            json: json.clone(),
            updated_wall_ms: now,
        };
        (row, json)
    }

    /// Feeds one stored reading; closes ticks as they complete.
    async fn feed(&mut self, r: RowRef<'_>) {
        match r {
            RowRef::Obs(o) => {
                if let Some(obs) = self.ids.obs(o) {
                    let before = self.brain.open_tick_ms();
                    self.brain.observe(&obs);
                    if self.brain.open_tick_ms() != before {
                        self.tick_rows = 0;
                        self.tick_started = Some(Instant::now());
                    }
                    self.tick_rows += 1;
                }
            }
            RowRef::Weather(w) => {
                if let Some(w) = self.ids.weather(w) {
                    self.brain.weather(&w);
                    // A reading that changed a fog band decided at its own
                    // time (the law from the first reading): write, publish
                    // and send that now, not when the detectors' tick closes.
                    if self.brain.has_output() {
                        self.after_tick(Drain::Reading).await;
                    }
                }
            }
            RowRef::Position(p) => {
                if let Ok(mut b) = self.vehicles.write() {
                    b.observe(&self.road, p);
                }
                if let Some(p) = self.ids.position(p) {
                    self.brain.position(&p);
                }
            }
            RowRef::Camera(c) => {
                if let Some(c) = self.ids.camera(c) {
                    self.brain.camera(&c);
                }
            }
        }
        if self.brain.stats().ticks != self.ticks_seen {
            self.after_tick(Drain::Tick).await;
        }
        // Every lane has reported: close the tick now rather than wait
        // for the next one.
        if self.total_lanes > 0
            && self.tick_rows >= self.total_lanes
            && self.brain.close_open_tick()
        {
            self.tick_rows = 0;
            self.tick_started = None;
            self.after_tick(Drain::Tick).await;
        }
    }

    /// Closes the open tick when it has waited longer than the grace time.
    async fn on_timer(&mut self) {
        let grace = Duration::from_secs_f64(self.cfg.ingest.tick_grace_s);
        if self.tick_started.is_some_and(|t| t.elapsed() >= grace) && self.brain.close_open_tick() {
            self.tick_rows = 0;
            self.tick_started = None;
            self.after_tick(Drain::Tick).await;
        }
        // Positions without detector ticks (a JT/T 808-only corridor)
        // still reach the console, once a second.
        if self.vehicles_published.elapsed() >= Duration::from_secs(1) {
            self.publish_vehicles();
        }
        self.proposals_at_deadline().await;
        self.check_plan().await;
        self.source_clock_events().await;
    }

    /// Opens and ends `source_clock` events, then stores the set of
    /// sources off when it changed (a restart brings it back).
    async fn source_clock_events(&mut self) {
        self.open_close_clock_events().await;
        let events = &self.clock_events;
        if let Some(rows) = self
            .clocks
            .to_save(wall_ms(), |s| events.get(s).map(|e| e.id.clone()))
        {
            match self.store.save_source_clocks(&rows).await {
                Ok(()) => self.clocks.saved(rows),
                Err(e) => tracing::warn!(message = "Source clocks not stored.", error = %e),
            }
        }
    }

    /// Opens a `source_clock` fault event for each source whose clock is
    /// off and ends it when the source is back (`clock.rs`).
    async fn open_close_clock_events(&mut self) {
        let now = wall_ms();
        let off = self.clocks.off(now);
        // Dated at the last tick written (a commit moves `last_tick_ms`):
        // nothing to date it by before the first one.
        let Some(tick_ms) = self.snapshot.read().ok().and_then(|s| s.last_tick_ms) else {
            return;
        };
        let tz = self.road.tz_offset_s();
        let t = |ms: i64| zhilu_io::jsonl::format_time(ms, tz);
        let mut commit = TickCommit {
            tick_ms,
            ..TickCommit::default()
        };
        for o in &off {
            if self.clock_events.contains_key(&o.source) {
                continue;
            }
            let stake = self
                .road
                .detectors()
                .iter()
                .find(|d| d.id == o.source)
                .map(|d| d.stake_m)
                .unwrap_or(0.0);
            let id = self.new_event_id();
            let json = records::server_event(
                &ServerEvent {
                    id: &id,
                    kind: "source_clock",
                    direction: "both",
                    from_m: stake,
                    to_m: stake,
                    start: t(tick_ms),
                    detected_at: t(tick_ms),
                    end: None,
                    severity: 2,
                    evidence: Evidence::rule("clock.checked"),
                },
                &records::SourceClock {
                    source: &o.source,
                    clock: o.why,
                    ahead_s: o.ahead_ms.map(|a| (a as f64 / 1000.0).round()),
                },
            );
            let row = EventRow {
                id: id.clone(),
                kind: "source_clock".into(),
                direction: "both".into(),
                from_m: stake,
                to_m: stake,
                start_ms: tick_ms,
                detected_ms: tick_ms,
                end_ms: None,
                severity: 2,
                rule: "clock.checked".into(),
                key: format!("source_clock|both|clock.checked|{}|{tick_ms}", o.source),
                json,
                updated_wall_ms: now,
            };
            commit.changes.push(EventChangeRow {
                event_id: id,
                change: "opened".into(),
                at_ms: tick_ms,
                wall_ms: now,
                json: row.json.clone(),
            });
            commit.events.push(row.clone());
            self.clock_events.insert(o.source.clone(), row);
            metrics::counter!("zhilu_events_opened_total", "kind" => "source_clock").increment(1);
        }
        let back: Vec<String> = self
            .clock_events
            .keys()
            .filter(|k| !off.iter().any(|o| &o.source == *k))
            .cloned()
            .collect();
        for k in back {
            if let Some(mut row) = self.clock_events.remove(&k) {
                let end = tick_ms.max(row.start_ms);
                commit
                    .changes
                    .push(end_row(&mut row, end, tick_ms, now, tz));
                commit.events.push(row);
            }
        }
        if commit.events.is_empty() {
            return;
        }
        if let Err(e) = self.store.commit_tick(&commit).await {
            tracing::error!(message = "Source clock events not stored.", error = %e);
            self.health.commit_failed(now, &e.to_string());
            // Tried again at the next timer.
            for c in &commit.changes {
                if c.change == "opened" {
                    self.clock_events.retain(|_, r| r.id != c.event_id);
                }
            }
            return;
        }
        for c in &commit.changes {
            self.hub.publish(
                StreamKind::Event,
                records::event_message(&c.change, commit.tick_ms, &c.json, &self.road),
            );
        }
    }

    /// Everything after a closed tick — or after a reading that decided
    /// between ticks (`Drain::Reading`: a fog band changed at a weather
    /// row): diff events, decide modes, write, publish, dispatch. Only a
    /// closed tick counts as a tick and carries the corridor state.
    async fn after_tick(&mut self, drain: Drain) {
        let closed = drain == Drain::Tick;
        self.ticks_seen = self.brain.stats().ticks;
        let tick_ms = self.brain.state().map(|s| s.ts_ms).unwrap_or_default();
        let out = self.brain.drain();
        let now = wall_ms();
        if let Some(until) = self.resume_until_ms {
            if tick_ms <= until {
                // Already written before the restart: only learn the ids.
                for e in self.brain.open_events().chain(out.events.iter()) {
                    let (key, _) = event_key(e, &self.ids);
                    if let Some(id) = self.known.get(&key) {
                        self.events
                            .entry(e.seq)
                            .or_insert_with(|| (id.clone(), String::new()));
                    }
                }
                // What the brain applied then is what the devices must show now.
                for a in &out.actions {
                    if self.cfg.decisions.mode(a.command.kind()) == ApprovalMode::Auto {
                        let event_id = a
                            .event_seq
                            .and_then(|s| self.events.get(&s).map(|(id, _)| id.clone()));
                        let cause = self.cause_of_seq(a.event_seq, &out.events);
                        if let (Some(id), Some(k)) = (&event_id, cause) {
                            self.causes.insert(id.clone(), k);
                        }
                        self.set_desired_cause(&a.device, a.command.clone(), a.direction, cause);
                    }
                }
                for e in &out.events {
                    self.events.remove(&e.seq);
                }
                if closed {
                    let state = self.state_view();
                    self.publish_snapshot(tick_ms, state, false);
                }
                return;
            }
            if let Err(e) = self.finish_resume(until).await {
                tracing::error!(message = "Resume reconciliation failed.", error = %e);
            }
        }
        let mut commit = TickCommit {
            tick_ms,
            ..TickCommit::default()
        };
        let mut published: Vec<(StreamKind, String)> = Vec::new();
        // Events: openings and updates from the open set, endings drained.
        let open: Vec<Event> = self.brain.open_events().cloned().collect();
        let mut worse: Vec<(String, Severity, Severity, String)> = Vec::new();
        for e in open.iter().chain(out.events.iter()) {
            let (key, _) = event_key(e, &self.ids);
            let (id, change) = match self.events.get(&e.seq) {
                Some((id, _)) => (
                    id.clone(),
                    if e.end_ms.is_some() {
                        "ended"
                    } else {
                        "updated"
                    },
                ),
                None => (
                    self.new_event_id(),
                    if e.end_ms.is_some() {
                        "ended"
                    } else {
                        "opened"
                    },
                ),
            };
            let (row, json) = self.event_row(e, &id, &key, now);
            let unchanged = self
                .events
                .get(&e.seq)
                .is_some_and(|(_, last)| *last == json);
            if unchanged && e.end_ms.is_none() {
                continue;
            }
            if change == "opened" {
                metrics::counter!("zhilu_events_opened_total", "kind" => e.kind.as_str())
                    .increment(1);
            }
            let line = crate::flow::EventLine::read(&json);
            // The history gets a line when the event opens or ends, and for
            // an update only when something an operator cares about changed
            // (`flow::EventLine::changed_since`); every update still
            // refreshes the stored event and goes out on the stream.
            let worth = change != "updated"
                || self.recorded.get(&id).is_none_or(|last| {
                    !line
                        .changed_since(last, &self.road, &self.history_table)
                        .is_empty()
                });
            // Worse than its last line: an operator's close does not hold.
            if change == "updated"
                && let Some(last) = self.recorded.get(&id)
            {
                let (was, is) = (last.level(&self.road), line.level(&self.road));
                if is < was {
                    worse.push((id.clone(), was, is, json.clone()));
                }
            }
            if worth {
                commit.changes.push(EventChangeRow {
                    event_id: id.clone(),
                    change: change.into(),
                    at_ms: tick_ms,
                    wall_ms: now,
                    json: json.clone(),
                });
                if e.end_ms.is_some() {
                    self.recorded.remove(&id);
                } else {
                    self.recorded.insert(id.clone(), line);
                }
            }
            published.push((
                StreamKind::Event,
                records::event_message(change, tick_ms, &json, &self.road),
            ));
            commit.events.push(row);
            self.causes.insert(id.clone(), e.kind);
            if e.end_ms.is_some() {
                self.events.remove(&e.seq);
            } else {
                self.events.insert(e.seq, (id, json));
            }
        }
        for (id, was, is, v) in worse {
            self.reopen_if_closed(&id, was, is, v, tick_ms, now).await;
        }
        // Decisions: auto-applied or proposed. Events ended this tick
        // still name the actions they caused.
        let mut ended_ids: HashMap<u64, String> = HashMap::new();
        for (seq, (id, _)) in &self.events {
            ended_ids.insert(*seq, id.clone());
        }
        for e in &out.events {
            if let Some(r) = commit
                .events
                .iter()
                .rev()
                .find(|r| r.key == event_key(e, &self.ids).0)
            {
                ended_ids.insert(e.seq, r.id.clone());
            }
        }
        let mut dispatch: Vec<(ActionRow, Action)> = Vec::new();
        let mut pass = plans::Pass::default();
        for a in &out.actions {
            let event_id = a.event_seq.and_then(|s| ended_ids.get(&s).cloned());
            let json = action_record(a, &self.road, event_id.as_deref());
            let kind = a.command.kind();
            let mode = self.cfg.decisions.mode(kind);
            let id = self.next_action;
            self.next_action += 1;
            let mut row = ActionRow {
                id,
                at_ms: a.at_ms,
                wall_ms: now,
                device: a.device.clone(),
                kind: kind.as_str().into(),
                json,
                event_id: event_id.clone(),
                reason: a.reason.text(),
                mode: match mode {
                    ApprovalMode::Auto => "auto".into(),
                    ApprovalMode::Confirm => "confirm".into(),
                },
                proposal_id: None,
            };
            match mode {
                ApprovalMode::Auto => {
                    commit.audit.push(AuditEntry {
                        seq: 0,
                        wall_ms: now,
                        actor: "system".into(),
                        action: "action.auto".into(),
                        target: a.device.clone(),
                        detail: AuditDetail::Action {
                            action: Some(id),
                            command: Some(&row.json),
                            reason: &a.reason.text(),
                            plan: None,
                            code: None,
                        }
                        .json(),
                    });
                    published.push((StreamKind::Action, row.json.clone()));
                    dispatch.push((row.clone(), a.clone()));
                }
                ApprovalMode::Confirm => {
                    // A newer proposal for the same device supersedes a pending one.
                    let pending = match self.store.proposals(Some("pending")).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(message = "Listing proposals failed.", error = %e);
                            Vec::new()
                        }
                    };
                    let pending_before = pending.clone();
                    for mut p in pending {
                        if p.device != a.device {
                            continue;
                        }
                        pass.touch(p.plan_id);
                        p.status = "superseded".into();
                        p.decided_by = Some("system".into());
                        p.decided_wall_ms = Some(now);
                        p.decision_reason = Some(format!("superseded by P{}", self.next_proposal));
                        commit.audit.push(AuditEntry {
                            seq: 0,
                            wall_ms: now,
                            actor: "system".into(),
                            action: "proposal.superseded".into(),
                            target: format!("P{}", p.id),
                            detail: AuditDetail::Superseded {
                                by: format!("P{}", self.next_proposal),
                            }
                            .json(),
                        });
                        published.push((StreamKind::Proposal, proposal_json(&p)));
                        commit.proposals.push(p);
                    }
                    let pid = self.next_proposal;
                    self.next_proposal += 1;
                    row.proposal_id = Some(pid);
                    let mut p = ProposalRow {
                        id: pid,
                        created_wall_ms: now,
                        expires_wall_ms: now + self.cfg.decisions.proposal_expiry_s as i64 * 1000,
                        at_ms: a.at_ms,
                        device: a.device.clone(),
                        kind: kind.as_str().into(),
                        json: row.json.clone(),
                        event_id,
                        reason: a.reason.text(),
                        status: "pending".into(),
                        decided_by: None,
                        decided_wall_ms: None,
                        decision_reason: None,
                        final_json: None,
                        plan_id: None,
                    };
                    // One plan per event and pass (module `plans`).
                    let stored;
                    let event = match p.event_id.as_deref() {
                        Some(id) => match commit.events.iter().rev().find(|r| r.id == id) {
                            Some(r) => Some(r),
                            None => {
                                stored = self.store.event(id).await.ok().flatten();
                                stored.as_ref()
                            }
                        },
                        None => None,
                    };
                    if let Some(audit) = pass.join(&mut p, &pending_before, event, now) {
                        commit.audit.push(audit);
                    }
                    commit.audit.push(AuditEntry {
                        seq: 0,
                        wall_ms: now,
                        actor: "system".into(),
                        action: "proposal.created".into(),
                        target: format!("P{pid}"),
                        detail: AuditDetail::Action {
                            action: None,
                            command: Some(&row.json),
                            reason: &a.reason.text(),
                            plan: p.plan_id,
                            code: None,
                        }
                        .json(),
                    });
                    published.push((StreamKind::Proposal, proposal_json(&p)));
                    commit.proposals.push(p);
                }
            }
            commit.actions.push(row);
        }
        let plan_changes = std::mem::take(&mut pass.changes);
        commit.plans = pass.rows;
        let snap_due = closed
            && self
                .ticks_seen
                .is_multiple_of(self.cfg.storage.snapshot_every_ticks as u64);
        let state = if closed { self.state_view() } else { None };
        if snap_due {
            commit.state_json = state.as_ref().map(|s| s.json());
        }
        // A tick whose commit failed before goes out with this one (held
        // within a bound: module `carry`).
        if let Some(c) = self.carry.take() {
            let next = Carry {
                commit,
                published,
                dispatch,
            };
            let (merged, dropped) = c.merge(next, carry::MAX_ITEMS);
            if dropped.total() > 0 {
                tracing::error!(
                    message = "Commits still failing: history of unwritten ticks dropped to bound memory (events, proposals and actions kept).",
                    stream_messages = dropped.published,
                    event_changes = dropped.changes,
                    audit_entries = dropped.audit,
                    tick_ms
                );
                self.health.carry_dropped(wall_ms(), dropped.total() as u64);
            }
            Carry {
                commit,
                published,
                dispatch,
            } = merged;
        }
        let started = Instant::now();
        let mut tries = 0;
        let committed = loop {
            match self.store.commit_tick(&commit).await {
                Ok(()) => break true,
                Err(e) if tries < 3 => {
                    tries += 1;
                    tracing::warn!(message = "Tick commit failed, retrying.", error = %e, tick_ms);
                    tokio::time::sleep(Duration::from_millis(50 << tries)).await;
                }
                Err(e) => {
                    tracing::error!(message = "Tick commit failed; nothing of it is published or sent until a commit succeeds.", error = %e, tick_ms);
                    metrics::counter!("zhilu_commit_failures_total").increment(1);
                    self.health.commit_failed(wall_ms(), &e.to_string());
                    break false;
                }
            }
        };
        metrics::histogram!("zhilu_tick_commit_seconds").record(started.elapsed().as_secs_f64());
        if closed {
            metrics::counter!("zhilu_ticks_total").increment(1);
            self.health.tick_closed(wall_ms(), committed);
        } else if committed {
            self.health.commit_ok(wall_ms());
        }
        if !committed {
            let c = Carry {
                commit,
                published,
                dispatch,
            };
            self.health
                .carry_items
                .store(c.items() as u64, std::sync::atomic::Ordering::Relaxed);
            self.carry = Some(c);
            if closed {
                self.publish_snapshot(tick_ms, state, false);
            }
            return;
        }
        self.health
            .carry_items
            .store(0, std::sync::atomic::Ordering::Relaxed);
        for (k, data) in published {
            self.hub.publish(k, data);
        }
        let mut plan_changes: Vec<(i64, &str)> = plan_changes.into_iter().collect();
        plan_changes.sort_unstable();
        for (id, change) in plan_changes {
            self.publish_plan(id, change).await;
        }
        if closed {
            self.publish_snapshot(tick_ms, state, true);
            self.publish_vehicles();
        }
        for (row, a) in dispatch {
            let cause = row
                .event_id
                .as_ref()
                .and_then(|e| self.causes.get(e))
                .copied();
            self.set_desired_cause(&a.device, a.command.clone(), a.direction, cause);
            self.send_to_device(&a.device, row.id, &a.command, a.direction, cause)
                .await;
        }
        self.reconcile().await;
    }

    /// The kind of the event with brain seq `seq` (open, or ended this tick).
    fn cause_of_seq(&self, seq: Option<u64>, ended: &[Event]) -> Option<EventKind> {
        let seq = seq?;
        self.brain
            .open_events()
            .chain(ended.iter())
            .find(|e| e.seq == seq)
            .map(|e| e.kind)
    }

    /// Records what a device must show (`event_id`: the server event behind it).
    fn set_desired(
        &mut self,
        device: &str,
        command: Command,
        direction: Option<Direction>,
        event_id: Option<&str>,
    ) {
        let cause = event_id.and_then(|e| self.causes.get(e)).copied();
        self.set_desired_cause(device, command, direction, cause);
    }

    fn set_desired_cause(
        &mut self,
        device: &str,
        command: Command,
        direction: Option<Direction>,
        cause: Option<EventKind>,
    ) {
        if !self.fleet.manages(device) {
            return;
        }
        let t = Target {
            device: device.to_string(),
            kind: command.kind(),
            direction,
        };
        self.fleet.set_desired(t, Desired { command, cause });
    }

    /// Re-commands every target whose device shows other than its plan
    /// (module `fleet`), recording each as an action (`mode: reconcile`).
    async fn reconcile(&mut self) {
        if self.adapter.is_none() || self.resume_until_ms.is_some() {
            return;
        }
        let now = wall_ms();
        let todo = self.fleet.to_recommand(now);
        if todo.is_empty() {
            return;
        }
        let tick_ms = self
            .snapshot
            .read()
            .ok()
            .and_then(|s| s.last_tick_ms)
            .unwrap_or(0);
        let mut commit = TickCommit {
            tick_ms,
            ..TickCommit::default()
        };
        let mut out = Vec::new();
        for (t, d) in todo {
            let shows = self.fleet.shows(&t);
            let id = self.next_action;
            self.next_action += 1;
            let a = Action {
                at_ms: tick_ms,
                device: t.device.clone(),
                direction: t.direction,
                command: d.command.clone(),
                event_seq: None,
                reason: zhilu_core::Reason {
                    shows: Some(fleet::describe(&shows)),
                    requires: Some(fleet::describe(&d.command)),
                    ..zhilu_core::Reason::new(zhilu_core::ReasonCode::Reconcile)
                },
            };
            let row = ActionRow {
                id,
                at_ms: tick_ms,
                wall_ms: now,
                device: t.device.clone(),
                kind: t.kind.as_str().into(),
                json: action_record(&a, &self.road, None),
                event_id: None,
                reason: a.reason.text(),
                mode: "reconcile".into(),
                proposal_id: None,
            };
            commit.audit.push(AuditEntry {
                seq: 0,
                wall_ms: now,
                actor: "system".into(),
                action: "action.reconcile".into(),
                target: t.device.clone(),
                detail: AuditDetail::Action {
                    action: Some(id),
                    command: None,
                    reason: &a.reason.text(),
                    plan: None,
                    code: Some(&a.reason),
                }
                .json(),
            });
            commit.actions.push(row.clone());
            out.push((row, t, d));
        }
        if let Err(e) = self.store.commit_tick(&commit).await {
            // Nothing is sent that is not recorded: tried again later.
            tracing::error!(message = "Recording reconciliation commands failed; not sent.", error = %e);
            self.health.commit_failed(now, &e.to_string());
            return;
        }
        metrics::counter!("zhilu_device_reconciles_total").increment(out.len() as u64);
        for (row, t, d) in out {
            tracing::info!(device = %t.device, kind = t.kind.as_str(), reason = %row.reason, "re-commanding a device");
            self.hub.publish(StreamKind::Action, row.json.clone());
            self.send_to_device(&t.device, row.id, &d.command, t.direction, d.cause)
                .await;
        }
    }

    /// Opens a `device_out_of_plan` alarm for each target out of plan for
    /// `devices.out_of_plan_alarm_s`, ends those back in plan; updates the
    /// count.
    async fn check_plan(&mut self) {
        if self.adapter.is_none() {
            // No devices: actions are recorded only, nothing shows anything.
            return;
        }
        let now = wall_ms();
        let after = i64::from(self.cfg.devices.out_of_plan_alarm_s) * 1000;
        let (raise, back) = self.fleet.check_plan(now, after);
        let n = self.fleet.out_of_plan.len() as u64;
        metrics::gauge!("zhilu_devices_out_of_plan").set(n as f64);
        if let Ok(mut s) = self.snapshot.write() {
            s.devices_out_of_plan = n;
        }
        if raise.is_empty() && back.is_empty() {
            return;
        }
        let tz = self.road.tz_offset_s();
        let tick_ms = self
            .snapshot
            .read()
            .ok()
            .and_then(|s| s.last_tick_ms)
            .unwrap_or(0);
        let mut commit = TickCommit {
            tick_ms,
            ..TickCommit::default()
        };
        let mut published: Vec<String> = Vec::new();
        for t in raise {
            let id = self.new_event_id();
            let shows = self.fleet.shows(&t);
            let requires = self
                .fleet
                .desired(&t)
                .map(|d| d.command.clone())
                .unwrap_or_else(|| Command::default_of(t.kind));
            let stake = self.road.device(&t.device).map_or(0.0, |d| {
                let i = d.index as usize;
                match d.kind {
                    zhilu_road::DeviceKind::Vsl => self.road.vsl()[i].stake_m,
                    zhilu_road::DeviceKind::Vms => self.road.vms()[i].stake_m,
                    zhilu_road::DeviceKind::FogLights => self.road.fog_lights()[i].from_m,
                    zhilu_road::DeviceKind::Deicer => self.road.deicers()[i].from_m,
                    zhilu_road::DeviceKind::Interchange => self.road.interchanges()[i].stake_m,
                    zhilu_road::DeviceKind::Tunnel => self.road.tunnels()[i].from_m,
                    _ => 0.0,
                }
            });
            let since = self.fleet.out_of_plan.get(&t).map_or(now, |o| o.since_ms);
            let dir = t.direction.map_or("both", |d| d.as_str());
            let json = records::server_event(
                &ServerEvent {
                    id: &id,
                    kind: "device_out_of_plan",
                    direction: dir,
                    from_m: stake.round(),
                    to_m: stake.round(),
                    start: zhilu_io::jsonl::format_time(since, tz),
                    detected_at: zhilu_io::jsonl::format_time(now, tz),
                    end: None,
                    severity: 4,
                    evidence: Evidence::rule("devices.out_of_plan"),
                },
                &records::OutOfPlan {
                    device: &t.device,
                    command: t.kind.as_str(),
                    shows: fleet::describe(&shows),
                    requires: fleet::describe(&requires),
                },
            );
            let row = EventRow {
                id: id.clone(),
                kind: "device_out_of_plan".into(),
                direction: dir.into(),
                from_m: stake,
                to_m: stake,
                start_ms: since,
                detected_ms: now,
                end_ms: None,
                severity: 4,
                rule: "devices.out_of_plan".into(),
                key: format!(
                    "device_out_of_plan|{dir}|devices.out_of_plan|{}|{since}",
                    t.device
                ),
                json,
                updated_wall_ms: now,
            };
            tracing::warn!(device = %t.device, kind = t.kind.as_str(), shows = %fleet::describe(&shows), requires = %fleet::describe(&requires), "device out of plan");
            commit.changes.push(EventChangeRow {
                event_id: id.clone(),
                change: "opened".into(),
                at_ms: now,
                wall_ms: now,
                json: row.json.clone(),
            });
            commit.events.push(row.clone());
            if let Some(o) = self.fleet.out_of_plan.get_mut(&t) {
                o.alarm = Some(id.clone());
            }
            published.push(records::event_message(
                "opened", tick_ms, &row.json, &self.road,
            ));
            self.plan_alarms.insert(id, row);
            metrics::counter!("zhilu_events_opened_total", "kind" => "device_out_of_plan")
                .increment(1);
        }
        for (_, id) in back {
            let Some(mut row) = self.plan_alarms.remove(&id) else {
                continue;
            };
            row.end_ms = Some(now);
            row.updated_wall_ms = now;
            row.json = records::event_ended(&row.json, &zhilu_io::jsonl::format_time(now, tz));
            published.push(records::event_message(
                "ended", tick_ms, &row.json, &self.road,
            ));
            commit.changes.push(EventChangeRow {
                event_id: id,
                change: "ended".into(),
                at_ms: now,
                wall_ms: now,
                json: row.json.clone(),
            });
            commit.events.push(row);
        }
        if let Err(e) = self.store.commit_tick(&commit).await {
            tracing::error!(message = "Out-of-plan alarm not stored.", error = %e);
            return;
        }
        for p in published {
            self.hub.publish(StreamKind::Event, p);
        }
    }

    /// The corridor state after the last tick, as the API and the stream
    /// show it.
    fn state_view(&self) -> Option<Arc<StateView>> {
        let s = self.brain.state()?;
        Some(Arc::new(StateView::of(s, self.road.tz_offset_s())))
    }

    /// Puts a closed tick's corridor state (from [`Engine::state_view`]) in
    /// the shared snapshot, and on the stream when `publish`.
    fn publish_snapshot(&mut self, tick_ms: i64, state: Option<Arc<StateView>>, publish: bool) {
        if publish && let Some(s) = &state {
            self.hub.publish(StreamKind::State, s.json());
        }
        if let Ok(mut snap) = self.snapshot.write() {
            snap.state = state;
            snap.last_tick_ms = Some(tick_ms);
            snap.ticks = self.ticks_seen;
        }
        self.ticks.send_replace(Some(tick_ms));
    }

    async fn send_to_device(
        &mut self,
        device: &str,
        command_id: i64,
        command: &Command,
        direction: Option<Direction>,
        cause: Option<EventKind>,
    ) {
        let Some(adapter) = self.adapter.clone() else {
            return;
        };
        if !self.fleet.manages(device) {
            tracing::warn!(message = "Command for a device that takes none.", device);
            return;
        }
        let now = wall_ms();
        let state = DeviceState::from_command(command, direction);
        let cmd = DeviceCommand {
            command_id: command_id as u64,
            device: device.to_string(),
            state: state.clone(),
            issued_ms: now,
            expires_ms: now + self.cfg.devices.command_expiry_s as i64 * 1000,
            failsafe: fleet::failsafe_for(command, cause, &self.cfg.devices),
        };
        let target = Target {
            device: device.to_string(),
            kind: command.kind(),
            direction,
        };
        self.fleet.sent(&target, command_id as u64, state, now);
        let pending = cmd.to_json_string();
        if let Err(e) = adapter.dispatch(cmd) {
            self.fleet.settled(device, command_id as u64);
            tracing::warn!(message = "Device command not queued.", device, error = %e);
            metrics::counter!("zhilu_device_dispatch_failures_total").increment(1);
            return;
        }
        let row = self
            .devices
            .entry(device.to_string())
            .or_insert_with(|| unheard_device(device.to_string(), now));
        row.pending_json = Some(pending);
        row.updated_wall_ms = now;
        let row = row.clone();
        self.save_device(row).await;
    }

    async fn save_device(&mut self, row: DeviceStateRow) {
        if let Err(e) = self.store.upsert_device_state(&row).await {
            tracing::error!(message = "Saving device state failed.", device = row.device, error = %e);
        }
        self.hub.publish(StreamKind::Device, device_json(&row));
    }

    async fn on_device(&mut self, r: DeviceReport) {
        let now = wall_ms();
        let device = r.device().to_string();
        let audit = matches!(
            r,
            DeviceReport::Failed { .. }
                | DeviceReport::Expired { .. }
                | DeviceReport::Offline { .. }
        );
        let Some(row) = self.devices.get_mut(&device) else {
            tracing::warn!(
                message = "Report from a device the centre does not command.",
                device
            );
            return;
        };
        row.updated_wall_ms = now;
        let mut shown = None;
        match &r {
            DeviceReport::Confirmed {
                command_id,
                state,
                wall_ms,
                ..
            } => {
                row.state_json = state.to_json_string();
                row.confirmed_wall_ms = Some(*wall_ms);
                row.online = true;
                row.last_seen_wall_ms = Some(*wall_ms);
                settle_pending(row, *command_id);
                self.fleet.settled(&device, *command_id);
                shown = Some(state);
            }
            DeviceReport::State { state, wall_ms, .. } => {
                row.state_json = state.to_json_string();
                row.confirmed_wall_ms = Some(*wall_ms);
                row.online = true;
                row.last_seen_wall_ms = Some(*wall_ms);
                shown = Some(state);
            }
            DeviceReport::Failed { command_id, .. } | DeviceReport::Expired { command_id, .. } => {
                settle_pending(row, *command_id);
                self.fleet.settled(&device, *command_id);
            }
            DeviceReport::Online { wall_ms, .. } => {
                row.online = true;
                row.last_seen_wall_ms = Some(*wall_ms);
            }
            DeviceReport::Offline { .. } => row.online = false,
        }
        let row = row.clone();
        if let Some(s) = shown {
            self.fleet.set_shown(&device, s, now);
        }
        if audit {
            let entry = AuditEntry {
                seq: 0,
                wall_ms: now,
                actor: "system".into(),
                action: format!(
                    "device.{}",
                    match &r {
                        DeviceReport::Failed { .. } => "failed",
                        DeviceReport::Expired { .. } => "expired",
                        _ => "offline",
                    }
                ),
                target: device.clone(),
                detail: r.to_json_string(),
            };
            if let Err(e) = self.store.append_audit(&entry).await {
                tracing::error!(message = "Audit append failed.", error = %e);
            }
        }
        self.save_device(row).await;
        if shown.is_some() {
            self.reconcile().await;
        }
    }

    /// Opens a `terminal_alarm` event for each alarm bit raised, ends it
    /// when the bit clears. (Raised by the terminal, not the brain: the
    /// brain's own hazmat rules run on the positions.)
    #[allow(clippy::too_many_arguments)]
    async fn on_terminal_alarm(
        &mut self,
        vehicle: &str,
        time_ms: i64,
        lat: f64,
        lon: f64,
        bits: u32,
        raised: u32,
        cleared: u32,
    ) {
        let now = wall_ms();
        let m = self.road.geometry().locate(lon, lat);
        let dir = if m.offset_m >= 0.0 { "up" } else { "down" };
        let tz = self.road.tz_offset_s();
        let t = |ms: i64| zhilu_io::jsonl::format_time(ms, tz);
        let mut commit = TickCommit {
            tick_ms: self
                .snapshot
                .read()
                .ok()
                .and_then(|s| s.last_tick_ms)
                .unwrap_or(time_ms),
            ..TickCommit::default()
        };
        for (bit, rule, severity, words) in ALARM_EVENTS {
            let mask = 1u32 << bit;
            let key = (vehicle.to_string(), bit);
            if raised & mask != 0 && !self.alarms.contains_key(&key) {
                let id = self.new_event_id();
                let json = records::server_event(
                    &ServerEvent {
                        id: &id,
                        kind: "terminal_alarm",
                        direction: dir,
                        from_m: m.stake_m.round(),
                        to_m: m.stake_m.round(),
                        start: t(time_ms),
                        detected_at: t(time_ms),
                        end: None,
                        severity,
                        evidence: Evidence {
                            alarm_bits: Some(bits),
                            ..Evidence::rule(rule)
                        },
                    },
                    &records::TerminalAlarm {
                        vehicle,
                        alarm: words,
                    },
                );
                let row = EventRow {
                    id: id.clone(),
                    kind: "terminal_alarm".into(),
                    direction: dir.into(),
                    from_m: m.stake_m,
                    to_m: m.stake_m,
                    start_ms: time_ms,
                    detected_ms: time_ms,
                    end_ms: None,
                    severity,
                    rule: rule.into(),
                    key: format!("terminal_alarm|{dir}|{rule}|{vehicle}|{time_ms}"),
                    json,
                    updated_wall_ms: now,
                };
                commit.changes.push(EventChangeRow {
                    event_id: id,
                    change: "opened".into(),
                    at_ms: time_ms,
                    wall_ms: now,
                    json: row.json.clone(),
                });
                commit.events.push(row.clone());
                self.alarms.insert(key, row);
                metrics::counter!("zhilu_events_opened_total", "kind" => "terminal_alarm")
                    .increment(1);
            } else if (cleared & mask != 0 || bits & mask == 0) && raised & mask == 0 {
                if let Some(mut row) = self.alarms.remove(&key) {
                    let tz = self.road.tz_offset_s();
                    commit
                        .changes
                        .push(end_row(&mut row, time_ms, time_ms, now, tz));
                    commit.events.push(row);
                }
            }
        }
        if commit.events.is_empty() {
            return;
        }
        if let Err(e) = self.store.commit_tick(&commit).await {
            tracing::error!(message = "Terminal alarm not stored.", vehicle, error = %e);
            return;
        }
        for c in &commit.changes {
            self.hub.publish(
                StreamKind::Event,
                records::event_message(&c.change, commit.tick_ms, &c.json, &self.road),
            );
        }
    }

    async fn decide(
        &mut self,
        id: i64,
        verdict: Verdict,
        by: String,
        reason: Option<String>,
    ) -> Result<ProposalRow, DecideError> {
        self.decide_step(id, verdict, by, reason, true).await
    }

    /// Decides steps of plan `plan` in order: every listed step must be a
    /// pending step of the plan (else nothing is decided); one audit entry
    /// for the plan, one `plan` message after the last step. An edit that
    /// fails the law's checks stops there (steps before it stay decided).
    async fn decide_plan(
        &mut self,
        plan: i64,
        steps: Vec<i64>,
        verdict: Verdict,
        by: String,
        reason: Option<String>,
    ) -> Result<Vec<ProposalRow>, DecideError> {
        let rows = self
            .store
            .plan_steps(&[plan])
            .await
            .map_err(|e| DecideError::Store(e.to_string()))?;
        for id in &steps {
            match rows.iter().find(|r| r.id == *id) {
                None => return Err(DecideError::NotFound(*id)),
                Some(r) if r.status != "pending" => {
                    return Err(DecideError::NotPending(*id, r.status.clone()));
                }
                Some(_) => {}
            }
        }
        let mut out = Vec::with_capacity(steps.len());
        let mut failed = None;
        for id in &steps {
            match self
                .decide_step(*id, verdict.clone(), by.clone(), reason.clone(), false)
                .await
            {
                Ok(r) => out.push(r),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if !out.is_empty() {
            let action = match &verdict {
                Verdict::Approve => "plan.approve",
                Verdict::Reject => "plan.reject",
                Verdict::Edit(_) => "plan.edit",
            };
            let audit = AuditEntry {
                seq: 0,
                wall_ms: wall_ms(),
                actor: by,
                action: action.into(),
                target: format!("PL{plan}"),
                detail: AuditDetail::PlanDecision {
                    steps: out.iter().map(|r| format!("P{}", r.id)).collect(),
                    reason: reason.as_deref(),
                }
                .json(),
            };
            if let Err(e) = self.store.append_audit(&audit).await {
                tracing::error!(message = "Recording a plan decision failed.", plan, error = %e);
            }
            self.publish_plan(plan, "changed").await;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Publishes plan `id` as it is stored (`change`: `created`, or
    /// `changed` — sent as `decided` once no step is pending).
    async fn publish_plan(&mut self, id: i64, change: &str) {
        let Ok(Some(plan)) = self.store.plan(id).await else {
            return;
        };
        let Ok(steps) = self.store.plan_steps(&[id]).await else {
            return;
        };
        let event = match plan.event_id.as_deref() {
            Some(e) => self.store.event(e).await.ok().flatten(),
            None => None,
        };
        let view = crate::views::PlanView::of(&plan, &steps, event.as_ref(), &self.road);
        let change = if change == "changed" && view.status != "pending" {
            "decided"
        } else {
            change
        };
        self.hub
            .publish(StreamKind::Plan, records::plan_message(change, &view));
    }

    async fn decide_step(
        &mut self,
        id: i64,
        verdict: Verdict,
        by: String,
        reason: Option<String>,
        publish_plan: bool,
    ) -> Result<ProposalRow, DecideError> {
        let p = self
            .store
            .proposal(id)
            .await
            .map_err(|e| DecideError::Store(e.to_string()))?
            .ok_or(DecideError::NotFound(id))?;
        if p.status != "pending" {
            return Err(DecideError::NotPending(id, p.status));
        }
        let now = wall_ms();
        let (proposed, direction) =
            parse_action_command(&p.json).map_err(|e| DecideError::Store(format!("P{id}: {e}")))?;
        let mut overridden = false;
        let (status, applied) = match &verdict {
            Verdict::Approve => ("approved", Some(proposed.clone())),
            Verdict::Reject => ("rejected", None),
            Verdict::Edit(v) => {
                let edit = Edit::from_value(v).map_err(DecideError::BadEdit)?;
                let admin = if edit.override_floor {
                    self.store
                        .user(&by)
                        .await
                        .map_err(|e| DecideError::Store(e.to_string()))?
                        .is_some_and(|u| u.role == "admin" && !u.disabled)
                } else {
                    false
                };
                let (c, o) =
                    fleet::apply_edit(&proposed, &edit, self.road.speed_limit_kmh(), admin)
                        .map_err(DecideError::BadEdit)?;
                overridden = o;
                ("edited", Some(c))
            }
        };
        let final_json = match &applied {
            Some(c) if *c == proposed => Some(p.json.clone()),
            Some(c) => Some(
                zhilu_io::jsonl::with_command(&p.json, c, direction)
                    .map_err(|e| DecideError::Store(format!("P{id}: {e}")))?,
            ),
            None => None,
        };
        let action = match &verdict {
            Verdict::Approve => "proposal.approve",
            Verdict::Reject => "proposal.reject",
            Verdict::Edit(_) if overridden => "proposal.override",
            Verdict::Edit(_) => "proposal.edit",
        };
        let audit = AuditEntry {
            seq: 0,
            wall_ms: now,
            actor: by.clone(),
            action: action.into(),
            target: format!("P{id}"),
            detail: AuditDetail::Decision {
                reason: reason.as_deref(),
                proposed: &p.json,
                applied: final_json.as_deref(),
                plan: p.plan_id,
            }
            .json(),
        };
        let d = ProposalDecision {
            status: status.into(),
            by,
            wall_ms: now,
            reason,
            final_json: final_json.clone(),
        };
        let row = self
            .store
            .decide_proposal(id, &d, &audit)
            .await
            .map_err(|e| DecideError::Store(e.to_string()))?
            .ok_or_else(|| DecideError::NotPending(id, "decided".into()))?;
        self.hub.publish(StreamKind::Proposal, proposal_json(&row));
        self.escalations.remove(&id);
        if publish_plan && let Some(plan) = row.plan_id {
            self.publish_plan(plan, "changed").await;
        }
        if let Some(j) = final_json {
            // The command carries the id of the action the proposal came from.
            let action_id = self.next_action;
            self.next_action += 1;
            let act = ActionRow {
                id: action_id,
                at_ms: row.at_ms,
                wall_ms: now,
                device: row.device.clone(),
                kind: row.kind.clone(),
                json: j.clone(),
                event_id: row.event_id.clone(),
                reason: format!("{} ({} by {})", row.reason, row.status, d.by),
                mode: "confirmed".into(),
                proposal_id: Some(id),
            };
            let commit = TickCommit {
                tick_ms: self
                    .snapshot
                    .read()
                    .ok()
                    .and_then(|s| s.last_tick_ms)
                    .unwrap_or(0),
                actions: vec![act.clone()],
                ..TickCommit::default()
            };
            if let Err(e) = self.store.commit_tick(&commit).await {
                tracing::error!(message = "Recording an approved action failed.", error = %e);
            }
            self.hub.publish(StreamKind::Action, act.json.clone());
            if let Some(c) = applied {
                let cause = row
                    .event_id
                    .as_ref()
                    .and_then(|e| self.causes.get(e))
                    .copied();
                self.set_desired_cause(&row.device, c.clone(), direction, cause);
                self.send_to_device(&row.device, action_id, &c, direction, cause)
                    .await;
            }
        }
        Ok(row)
    }

    /// Proposals whose deadline passed unanswered: each is escalated,
    /// applied or dropped as `[decisions] on_deadline` says for its kind
    /// (default: escalate — an unanswered safety proposal never lapses).
    async fn proposals_at_deadline(&mut self) {
        let now = wall_ms();
        let Ok(due) = self.store.pending_expired(now).await else {
            return;
        };
        for p in due {
            let on_deadline = CommandKind::parse(&p.kind).map_or(DeadlineAction::Escalate, |k| {
                self.cfg.decisions.on_deadline(k)
            });
            match on_deadline {
                DeadlineAction::Drop => self.expire_proposal(p, now).await,
                DeadlineAction::Escalate => self.escalate_proposal(p, now).await,
                DeadlineAction::Apply => {
                    let id = p.id;
                    let reason = Some("deadline passed unanswered: applied as configured".into());
                    if let Err(e) = self
                        .decide(id, Verdict::Approve, "system".into(), reason)
                        .await
                    {
                        tracing::error!(message = "Applying a proposal at its deadline failed.", proposal = id, error = %e);
                    }
                }
            }
        }
    }

    /// Drops an unanswered proposal (`on_deadline = "drop"`).
    async fn expire_proposal(&mut self, p: ProposalRow, now: i64) {
        let d = ProposalDecision {
            status: "expired".into(),
            by: "system".into(),
            wall_ms: now,
            reason: Some("not decided in time".into()),
            final_json: None,
        };
        let audit = AuditEntry {
            seq: 0,
            wall_ms: now,
            actor: "system".into(),
            action: "proposal.expired".into(),
            target: format!("P{}", p.id),
            detail: AuditDetail::Expired {
                expires_wall_ms: p.expires_wall_ms,
            }
            .json(),
        };
        if let Ok(Some(row)) = self.store.decide_proposal(p.id, &d, &audit).await {
            self.hub.publish(StreamKind::Proposal, proposal_json(&row));
            if let Some(plan) = row.plan_id {
                self.publish_plan(plan, "changed").await;
            }
        }
    }

    /// Keeps an unanswered proposal pending and raises an alarm that
    /// repeats every `escalation_repeat_s` with a rising level, audited.
    async fn escalate_proposal(&mut self, mut p: ProposalRow, now: i64) {
        let level = {
            let l = self.escalations.entry(p.id).or_insert(0);
            *l += 1;
            *l
        };
        p.expires_wall_ms = now + self.cfg.decisions.escalation_repeat_s as i64 * 1000;
        let plan_name = match p.plan_id {
            Some(id) => self.store.plan(id).await.ok().flatten().map(|r| r.name),
            None => None,
        };
        let alarm = records::Unanswered {
            alarm: "proposal_unanswered",
            proposal: format!("P{}", p.id),
            device: &p.device,
            kind: &p.kind,
            device_name: plans::device_name(&self.road, &p.device),
            plan: p.plan_id.map(|id| format!("PL{id}")),
            plan_name,
            event_id: p.event_id.as_deref(),
            level,
            pending_since_wall_ms: p.created_wall_ms,
            next_wall_ms: p.expires_wall_ms,
        }
        .json();
        let commit = TickCommit {
            tick_ms: self
                .snapshot
                .read()
                .ok()
                .and_then(|s| s.last_tick_ms)
                .unwrap_or(0),
            audit: vec![AuditEntry {
                seq: 0,
                wall_ms: now,
                actor: "system".into(),
                action: "proposal.escalated".into(),
                target: format!("P{}", p.id),
                detail: alarm.clone(),
            }],
            proposals: vec![p],
            ..TickCommit::default()
        };
        match self.store.commit_tick(&commit).await {
            Ok(()) => {
                if level == 1 {
                    tracing::warn!(message = "A proposal is unanswered past its deadline.", alarm = %alarm);
                } else {
                    tracing::info!(message = "A proposal is still unanswered.", alarm = %alarm);
                }
                self.hub.publish(StreamKind::Alarm, alarm);
            }
            Err(e) => tracing::error!(message = "Recording an escalation failed.", error = %e),
        }
    }

    /// Runs until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut timer = tokio::time::interval(Duration::from_millis(250));
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                m = rx.recv() => {
                    let Some(m) = m else { break };
                    match m {
                        Msg::Readings(b) => {
                            let rows = b.len() as u64;
                            for (kind, i) in ingest_order(&b) {
                                let r = match kind {
                                    0 => RowRef::Obs(&b.obs[i]),
                                    1 => RowRef::Weather(&b.weather[i]),
                                    2 => RowRef::Position(&b.positions[i]),
                                    _ => RowRef::Camera(&b.camera[i]),
                                };
                                self.feed_gated(r).await;
                            }
                            if let Ok(mut s) = self.snapshot.write() {
                                s.rows += rows;
                            }
                        }
                        Msg::Decide { id, verdict, by, reason, reply } => {
                            let r = self.decide(id, verdict, by, reason).await;
                            let _ = reply.send(r);
                        }
                        Msg::DecidePlan { plan, steps, verdict, by, reason, reply } => {
                            let r = self.decide_plan(plan, steps, verdict, by, reason).await;
                            let _ = reply.send(r);
                        }
                        Msg::Device(r) => self.on_device(r).await,
                        Msg::TerminalAlarm { vehicle, time_ms, lat, lon, bits, raised, cleared } => {
                            self.on_terminal_alarm(&vehicle, time_ms, lat, lon, bits, raised, cleared).await;
                        }
                    }
                }
                _ = timer.tick() => self.on_timer().await,
            }
        }
    }
}

/// A batch's rows in ingest (seq) order, as on replay after a restart:
/// (kind 0–3 = obs, weather, positions, camera; index in its list).
pub fn ingest_order(b: &ReadingBatch) -> Vec<(u8, usize)> {
    let mut v: Vec<(i64, u8, usize)> = Vec::with_capacity(b.len());
    for (i, r) in b.obs.iter().enumerate() {
        v.push((r.seq, 0, i));
    }
    for (i, r) in b.weather.iter().enumerate() {
        v.push((r.seq, 1, i));
    }
    for (i, r) in b.positions.iter().enumerate() {
        v.push((r.seq, 2, i));
    }
    for (i, r) in b.camera.iter().enumerate() {
        v.push((r.seq, 3, i));
    }
    v.sort_unstable();
    v.into_iter().map(|(_, k, i)| (k, i)).collect()
}

/// A road-book device nothing has been heard from yet.
fn unheard_device(device: String, now: i64) -> DeviceStateRow {
    DeviceStateRow {
        device,
        state_json: "null".into(),
        confirmed_wall_ms: None,
        online: false,
        last_seen_wall_ms: None,
        pending_json: None,
        updated_wall_ms: now,
    }
}

/// A report about `command_id` ends the device's pending command if it is
/// that one (a report about an older, superseded command does not).
fn settle_pending(row: &mut DeviceStateRow, command_id: u64) {
    let pending_id = row
        .pending_json
        .as_deref()
        .and_then(zhilu_devices::command_id_of);
    if pending_id == Some(command_id) {
        row.pending_json = None;
    }
}
