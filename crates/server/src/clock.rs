//! Time is checked, never trusted (时间校验). Three guards keep one wrong
//! clock from stopping the centre:
//!
//! 1. **At the door** ([`screen`]): a row dated before 2000 (a device
//!    without a clock) is refused; with the wall clock (`[time] clock =
//!    "wall"`, the default) so is a row dated more than `max_ahead_s`
//!    after the server's clock. Refused rows are named in the answer,
//!    counted (`zhilu_ingest_clock_refused_total`) and kept in the
//!    quarantine table (`GET /api/quarantine`); they are never stored as
//!    readings, so they cannot move anything, now or after a restart. Past
//!    rows are not judged against the wall clock: replay and backfill
//!    post them on purpose, and the brain treats late rows as late.
//! 2. **Before the brain** ([`Gate`]): the data clock moves with a quorum
//!    of sources, not with the newest row. The quorum clock is the time a
//!    `quorum` share of the detector stations (of every source while no
//!    detector has reported) has reached; a row more than one tick ahead of
//!    it is held back in a bounded buffer and fed once the quorum gets
//!    there. So weather five minutes ahead of the detectors, or a
//!    simulated clock that jumps, cannot make the brain skip ticks.
//! 3. **Who is off** ([`SourceClocks`]): a source with rows refused or
//!    held is off; the engine opens a `source_clock` fault event for it and
//!    health says so, until it has sent nothing out of time for
//!    `recover_s`.
//!
//! Retention never uses a data clock ahead of the wall clock (`lib.rs`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use zhilu_store::{QuarantineRow, Reading, ReadingBatch, SourceClockRow};

use crate::config::{ClockMode, TimeSection};
use crate::convert::RowRef;

/// 2000-01-01T00:00:00Z: anything earlier is a clock that was never set.
pub const EARLIEST_MS: i64 = 946_684_800_000;

/// Why a row's time is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFault {
    /// Before 2000 (1970 is a terminal without a fix or a clock).
    Unset,
    /// After the server's clock by this much (ms).
    Ahead(i64),
}

impl TimeFault {
    /// The problem kind in answers.
    pub fn kind(self) -> &'static str {
        match self {
            TimeFault::Unset => "time_unset",
            TimeFault::Ahead(_) => "time_ahead",
        }
    }

    /// Words for the quarantine and the answer.
    pub fn reason(self) -> String {
        match self {
            TimeFault::Unset => "dated before 2000: the source's clock is not set".into(),
            TimeFault::Ahead(ms) => format!(
                "dated {} s after the server's clock",
                (ms as f64 / 1000.0).round()
            ),
        }
    }
}

/// Judges one row's time against the wall clock `now_ms`.
pub fn judge(ts_ms: i64, now_ms: i64, cfg: &TimeSection) -> Option<TimeFault> {
    if ts_ms < EARLIEST_MS {
        return Some(TimeFault::Unset);
    }
    if cfg.clock == ClockMode::Wall {
        let ahead = ts_ms.saturating_sub(now_ms);
        if ahead as f64 > cfg.max_ahead_s * 1000.0 {
            return Some(TimeFault::Ahead(ahead));
        }
    }
    None
}

/// Rows a screen refused, by problem kind, for the answer.
#[derive(Debug, Default)]
pub struct Refused {
    /// Quarantine rows (one per refused row).
    pub rows: Vec<QuarantineRow>,
    /// kind → (count, first places).
    pub problems: BTreeMap<&'static str, (u64, Vec<String>)>,
}

impl Refused {
    /// Rows refused.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether nothing was refused.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Takes the rows whose time cannot be trusted out of `batch` (see the
/// module doc). `kind` names the ingest route; `clocks` learns which
/// sources are off.
pub fn screen(
    batch: &mut ReadingBatch,
    kind: &'static str,
    now_ms: i64,
    cfg: &TimeSection,
    clocks: &SourceClocks,
) -> Refused {
    let mut out = Refused::default();
    let tz = 0;
    let mut take = |ts: i64, source: &str, json: String| -> bool {
        let Some(f) = judge(ts, now_ms, cfg) else {
            return true;
        };
        clocks.refused(source, now_ms, f);
        let e = out.problems.entry(f.kind()).or_default();
        e.0 += 1;
        if e.1.len() < 5 {
            e.1.push(format!(
                "{source} at {} ({})",
                zhilu_io::jsonl::format_time(ts, tz),
                f.reason()
            ));
        }
        out.rows.push(QuarantineRow {
            id: 0,
            wall_ms: now_ms,
            kind: kind.to_string(),
            source: source.to_string(),
            ts_ms: ts,
            reason: f.reason(),
            row_json: json,
        });
        metrics::counter!("zhilu_ingest_clock_refused_total", "kind" => kind, "why" => f.kind())
            .increment(1);
        false
    };
    let js = |v: &dyn erased_serde_free::Json| v.json();
    batch.obs.retain(|r| take(r.ts_ms, &r.detector, js(r)));
    batch.weather.retain(|r| take(r.ts_ms, &r.station, js(r)));
    batch.positions.retain(|r| take(r.ts_ms, &r.vehicle, js(r)));
    batch.camera.retain(|r| take(r.ts_ms, &r.camera, js(r)));
    out
}

mod erased_serde_free {
    /// A row as JSON, whatever its kind.
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

/// A source whose clock is off, as the engine and health see it.
#[derive(Debug, Clone, PartialEq)]
pub struct OffSource {
    /// Source id (detector, station, vehicle, camera).
    pub source: String,
    /// How far ahead it was last seen (ms), if known.
    pub ahead_ms: Option<i64>,
    /// Why: refused against the wall clock, before 2000, or ahead of the quorum.
    pub why: &'static str,
    /// Since (wall ms).
    pub since_wall_ms: i64,
}

#[derive(Debug, Clone)]
struct SourceState {
    ahead_ms: Option<i64>,
    why: &'static str,
    first_bad_ms: i64,
    last_bad_ms: i64,
}

/// Which sources' clocks are off now (shared by ingest, the engine and
/// health). The engine stores the set (`source_clocks`, migration 0008)
/// whenever it changes, and a restart brings it back, so a fault and its
/// `source_clock` event outlive a restart and end only when the source
/// has been on time for `recover_s`.
#[derive(Debug, Default)]
pub struct SourceClocks {
    recover_ms: i64,
    off: Mutex<HashMap<String, SourceState>>,
    /// The set as last stored.
    saved: Mutex<Vec<SourceClockRow>>,
}

/// The reasons a source is off, as stored text and back.
const WHYS: [&str; 3] = [
    "clock not set (before 2000)",
    "ahead of the server clock",
    "ahead of the other sources",
];

/// Stored rows whose `last_bad_wall_ms` differ by less than this are the
/// same for storing (a source sending bad rows all along is written about
/// once a second, not at every row).
const SAVE_EVERY_MS: i64 = 1_000;

fn same_for_saving(a: &[SourceClockRow], b: &[SourceClockRow]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (
                &x.source,
                &x.why,
                x.ahead_ms,
                x.first_bad_wall_ms,
                &x.event_id,
            ) == (
                &y.source,
                &y.why,
                y.ahead_ms,
                y.first_bad_wall_ms,
                &y.event_id,
            ) && (x.last_bad_wall_ms - y.last_bad_wall_ms).abs() < SAVE_EVERY_MS
        })
}

impl SourceClocks {
    /// A tracker; a source recovers after `recover_s` without a bad row.
    pub fn new(recover_s: f64) -> SourceClocks {
        SourceClocks {
            recover_ms: (recover_s * 1000.0) as i64,
            off: Mutex::new(HashMap::new()),
            saved: Mutex::new(Vec::new()),
        }
    }

    /// Brings back the set stored before a restart (sources already
    /// recovered by `now_ms` are forgotten at the next look).
    pub fn restore(&self, rows: &[SourceClockRow]) {
        if let Ok(mut m) = self.off.lock() {
            for r in rows {
                let why = WHYS
                    .iter()
                    .find(|w| **w == r.why)
                    .copied()
                    .unwrap_or("ahead of the other sources");
                m.insert(
                    r.source.clone(),
                    SourceState {
                        ahead_ms: r.ahead_ms,
                        why,
                        first_bad_ms: r.first_bad_wall_ms,
                        last_bad_ms: r.last_bad_wall_ms,
                    },
                );
            }
        }
        if let Ok(mut s) = self.saved.lock() {
            *s = rows.to_vec();
        }
    }

    /// The set to store now, when it differs from what was last stored
    /// (`event_of` names each source's open `source_clock` event); call
    /// [`SourceClocks::saved`] once it is written.
    pub fn to_save(
        &self,
        now_ms: i64,
        event_of: impl Fn(&str) -> Option<String>,
    ) -> Option<Vec<SourceClockRow>> {
        let off = self.off(now_ms);
        let rows: Vec<SourceClockRow> = {
            let m = self.off.lock().ok()?;
            off.iter()
                .filter_map(|o| {
                    let s = m.get(&o.source)?;
                    Some(SourceClockRow {
                        source: o.source.clone(),
                        why: s.why.to_string(),
                        ahead_ms: s.ahead_ms,
                        first_bad_wall_ms: s.first_bad_ms,
                        last_bad_wall_ms: s.last_bad_ms,
                        event_id: event_of(&o.source),
                    })
                })
                .collect()
        };
        let saved = self.saved.lock().ok()?;
        (!same_for_saving(&rows, &saved)).then_some(rows)
    }

    /// `rows` (from [`SourceClocks::to_save`]) are stored.
    pub fn saved(&self, rows: Vec<SourceClockRow>) {
        if let Ok(mut s) = self.saved.lock() {
            *s = rows;
        }
    }

    fn mark(&self, source: &str, now_ms: i64, ahead_ms: Option<i64>, why: &'static str) {
        if let Ok(mut m) = self.off.lock() {
            if m.len() > 100_000 && !m.contains_key(source) {
                return;
            }
            let e = m.entry(source.to_string()).or_insert(SourceState {
                ahead_ms,
                why,
                first_bad_ms: now_ms,
                last_bad_ms: now_ms,
            });
            e.ahead_ms = ahead_ms;
            e.why = why;
            e.last_bad_ms = now_ms;
        }
    }

    /// A row of `source` was refused at the door.
    pub fn refused(&self, source: &str, now_ms: i64, f: TimeFault) {
        match f {
            TimeFault::Unset => self.mark(source, now_ms, None, WHYS[0]),
            TimeFault::Ahead(a) => self.mark(source, now_ms, Some(a), WHYS[1]),
        }
    }

    /// A row of `source` was held back, `ahead_ms` ahead of the quorum.
    pub fn held(&self, source: &str, now_ms: i64, ahead_ms: i64) {
        self.mark(source, now_ms, Some(ahead_ms), WHYS[2]);
    }

    /// The sources off now; forgets those recovered.
    pub fn off(&self, now_ms: i64) -> Vec<OffSource> {
        let Ok(mut m) = self.off.lock() else {
            return Vec::new();
        };
        m.retain(|_, s| now_ms - s.last_bad_ms < self.recover_ms);
        let mut v: Vec<OffSource> = m
            .iter()
            .map(|(k, s)| OffSource {
                source: k.clone(),
                ahead_ms: s.ahead_ms,
                why: s.why,
                since_wall_ms: s.first_bad_ms,
            })
            .collect();
        v.sort_by(|a, b| a.source.cmp(&b.source));
        v
    }
}

/// The quorum gate between the stored rows and the brain (see the module
/// doc). Rows it holds are owned copies; rows it passes are fed at once.
pub struct Gate {
    quorum: f64,
    max_ahead_ms: i64,
    max_held: usize,
    /// Tick length (ms) once a detector row said it; 30 s before.
    step_ms: i64,
    /// Latest time per detector station.
    detectors: HashMap<String, i64>,
    /// Latest time per other source (used while no detector reported).
    others: HashMap<String, i64>,
    /// The quorum clock (data time), once known.
    clock: Option<i64>,
    held: VecDeque<Reading>,
    /// Rows not fed because the buffer was full.
    pub dropped: u64,
}

/// What the gate says about a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Feed it now.
    Now,
    /// Hold it: it is `ahead_ms` ahead of the quorum clock; `off` when
    /// that is beyond `max_ahead_of_quorum_s` (the source's clock is off,
    /// not merely a tick early).
    Hold {
        /// How far ahead of the quorum clock (ms).
        ahead_ms: i64,
        /// Beyond the tolerance.
        off: bool,
    },
}

impl Gate {
    /// A gate with the `[time]` settings.
    pub fn new(cfg: &TimeSection) -> Gate {
        Gate {
            quorum: cfg.quorum,
            max_ahead_ms: (cfg.max_ahead_of_quorum_s * 1000.0) as i64,
            max_held: cfg.max_held_rows,
            step_ms: 30_000,
            detectors: HashMap::new(),
            others: HashMap::new(),
            clock: None,
            held: VecDeque::new(),
            dropped: 0,
        }
    }

    /// The quorum clock (data time).
    pub fn clock(&self) -> Option<i64> {
        self.clock
    }

    /// Rows held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn source(r: RowRef<'_>) -> (&str, i64, bool) {
        match r {
            RowRef::Obs(o) => (o.detector.as_str(), o.ts_ms, true),
            RowRef::Weather(w) => (w.station.as_str(), w.ts_ms, false),
            RowRef::Position(p) => (p.vehicle.as_str(), p.ts_ms, false),
            RowRef::Camera(c) => (c.camera.as_str(), c.ts_ms, false),
        }
    }

    /// The tick a time belongs to (its end).
    fn tick(&self, t: i64) -> i64 {
        (t + self.step_ms - 1).div_euclid(self.step_ms) * self.step_ms
    }

    /// Learns the row's source time and says whether to feed it now.
    pub fn admit(&mut self, r: RowRef<'_>) -> Admit {
        if let RowRef::Obs(o) = r
            && o.interval_s > 0
        {
            self.step_ms = i64::from(o.interval_s) * 1000;
        }
        let (src, ts, det) = Self::source(r);
        let map = if det {
            &mut self.detectors
        } else {
            &mut self.others
        };
        let moved = match map.get_mut(src) {
            Some(t) if *t >= ts => false,
            Some(t) => {
                *t = ts;
                true
            }
            None => {
                if map.len() < 200_000 {
                    map.insert(src.to_string(), ts);
                }
                true
            }
        };
        if moved {
            self.recompute();
        }
        let q = self.clock.unwrap_or(ts);
        // A row of the next tick closes the current one, as without the
        // gate; a row further ahead would make the brain skip ticks: it
        // waits for the quorum.
        if self.tick(ts) <= self.tick(q) + self.step_ms {
            Admit::Now
        } else {
            Admit::Hold {
                ahead_ms: ts - q,
                off: ts - q > self.max_ahead_ms,
            }
        }
    }

    /// Holds an owned copy of a row the gate said to hold.
    pub fn hold(&mut self, r: Reading) {
        let ts = r.ts_ms();
        // Sorted by time (then arrival): released in time order.
        let at = self.held.partition_point(|h| h.ts_ms() <= ts);
        self.held.insert(at, r);
        while self.held.len() > self.max_held {
            // The rows furthest ahead go first.
            self.held.pop_back();
            self.dropped += 1;
            metrics::counter!("zhilu_clock_held_dropped_total").increment(1);
        }
    }

    /// Rows the quorum clock has now reached, in time order.
    pub fn release(&mut self) -> Vec<Reading> {
        let Some(q) = self.clock else {
            return Vec::new();
        };
        let allowed = self.tick(q) + self.step_ms;
        let n = self
            .held
            .partition_point(|h| self.tick(h.ts_ms()) <= allowed);
        self.held.drain(..n).collect()
    }

    fn recompute(&mut self) {
        let src = if self.detectors.is_empty() {
            &self.others
        } else {
            &self.detectors
        };
        let mut times: Vec<i64> = src.values().copied().collect();
        if times.is_empty() {
            return;
        }
        times.sort_unstable_by(|a, b| b.cmp(a));
        let k = |n: usize| ((n as f64 * self.quorum).ceil() as usize).clamp(1, n);
        let first = times[k(times.len()) - 1];
        // Sources silent for long (a dead station) do not hold the clock back.
        let stale = 10 * self.step_ms.max(self.max_ahead_ms);
        debug_assert!(stale > 0);
        let live = times.partition_point(|&t| t >= first - stale);
        let q = times[k(live) - 1];
        // The quorum clock never runs backwards.
        self.clock = Some(self.clock.map_or(q, |c| c.max(q)));
    }
}

/// A row's time and kind (stored rows).
pub trait ReadingTime {
    /// Data time.
    fn ts_ms(&self) -> i64;
}

impl ReadingTime for Reading {
    fn ts_ms(&self) -> i64 {
        match self {
            Reading::Obs(o) => o.ts_ms,
            Reading::Weather(o) => o.ts_ms,
            Reading::Position(o) => o.ts_ms,
            Reading::Camera(o) => o.ts_ms,
        }
    }
}

/// An owned copy of a borrowed row.
pub fn owned(r: RowRef<'_>) -> Reading {
    match r {
        RowRef::Obs(o) => Reading::Obs(o.clone()),
        RowRef::Weather(o) => Reading::Weather(o.clone()),
        RowRef::Position(o) => Reading::Position(o.clone()),
        RowRef::Camera(o) => Reading::Camera(o.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhilu_store::{ObsRow, WeatherRow};

    const T0: i64 = 1_780_000_000_000 / 30_000 * 30_000;

    #[test]
    fn the_off_set_is_stored_when_it_changes_and_comes_back() {
        let c = SourceClocks::new(60.0);
        let none = |_: &str| None;
        assert_eq!(c.to_save(T0, none), None, "nothing off, nothing stored yet");
        c.refused("D1", T0, TimeFault::Ahead(5_000_000));
        let rows = c.to_save(T0, none).expect("a new source off");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].why, "ahead of the server clock");
        c.saved(rows);
        // More bad rows within a second: the same for storing.
        c.refused("D1", T0 + 500, TimeFault::Ahead(5_000_000));
        assert_eq!(c.to_save(T0 + 500, none), None);
        // Its event opened: stored again, with the id.
        let rows = c
            .to_save(T0 + 500, |_| Some("E7".into()))
            .expect("the event id is new");
        assert_eq!(rows[0].event_id.as_deref(), Some("E7"));
        c.saved(rows.clone());
        // A restart brings it back, still off until recover_s after its
        // last bad row, then forgotten (and the empty set stored).
        let again = SourceClocks::new(60.0);
        again.restore(&rows);
        assert_eq!(again.off(T0 + 30_000).len(), 1);
        assert_eq!(again.off(T0 + 30_000)[0].why, "ahead of the server clock");
        assert_eq!(again.to_save(T0 + 30_000, |_| Some("E7".into())), None);
        assert!(again.off(T0 + 61_000).is_empty());
        assert_eq!(again.to_save(T0 + 61_000, none), Some(Vec::new()));
    }

    fn obs(det: &str, ts: i64) -> ObsRow {
        ObsRow {
            seq: 0,
            ts_ms: ts,
            detector: det.into(),
            lane: 1,
            interval_s: 30,
            volume: 5,
            speed_kmh: Some(90.0),
            occupancy_pct: Some(5.0),
        }
    }

    fn wx(ts: i64) -> WeatherRow {
        WeatherRow {
            seq: 0,
            ts_ms: ts,
            station: "W1".into(),
            visibility_m: Some(80.0),
            surface_temp_c: None,
            air_temp_c: None,
            humidity_pct: None,
            surface_state: String::new(),
        }
    }

    #[test]
    fn judge_cases() {
        let cfg = TimeSection::default();
        let now = T0;
        for (ts, want) in [
            (now, None),
            (now - 86_400_000 * 400, None), // backfill: a year ago is fine
            (now + 60_000, None),
            (now + 121_000, Some("time_ahead")),
            (now + 365 * 86_400_000, Some("time_ahead")),
            (0, Some("time_unset")),
            (EARLIEST_MS - 1, Some("time_unset")),
        ] {
            assert_eq!(judge(ts, now, &cfg).map(TimeFault::kind), want, "{ts}");
        }
        let sim = TimeSection {
            clock: ClockMode::Simulated,
            ..TimeSection::default()
        };
        assert_eq!(judge(now + 365 * 86_400_000, now, &sim), None);
        assert_eq!(judge(0, now, &sim), Some(TimeFault::Unset));
    }

    /// Weather five minutes ahead of twelve detectors is held until the
    /// detectors get there; the detectors' own rows pass.
    #[test]
    fn weather_ahead_is_held_until_the_quorum_reaches_it() {
        let mut g = Gate::new(&TimeSection::default());
        let dets: Vec<String> = (0..12).map(|i| format!("D{i}")).collect();
        for d in &dets {
            assert_eq!(g.admit(RowRef::Obs(&obs(d, T0))), Admit::Now);
        }
        let w = wx(T0 + 300_000);
        assert!(matches!(
            g.admit(RowRef::Weather(&w)),
            Admit::Hold { off: true, .. }
        ));
        g.hold(Reading::Weather(w));
        let mut released_at = None;
        for k in 1..=10 {
            for d in &dets {
                let o = obs(d, T0 + k * 30_000);
                assert_eq!(g.admit(RowRef::Obs(&o)), Admit::Now, "tick {k}");
                if !g.release().is_empty() {
                    released_at.get_or_insert(k);
                }
            }
        }
        // Released when the detectors' next tick is its tick: the brain
        // skips none of theirs.
        assert_eq!(released_at, Some(9));
    }

    /// One detector a year ahead does not move the quorum clock; its row
    /// is held, the others pass.
    #[test]
    fn one_source_far_ahead_does_not_move_the_clock() {
        let mut g = Gate::new(&TimeSection::default());
        for i in 0..6 {
            assert_eq!(g.admit(RowRef::Obs(&obs(&format!("D{i}"), T0))), Admit::Now);
        }
        let far = obs("D6", T0 + 365 * 86_400_000);
        assert!(matches!(g.admit(RowRef::Obs(&far)), Admit::Hold { .. }));
        assert_eq!(g.clock(), Some(T0));
        assert_eq!(g.admit(RowRef::Obs(&obs("D0", T0 + 30_000))), Admit::Now);
    }

    #[test]
    fn the_held_buffer_is_bounded() {
        let mut g = Gate::new(&TimeSection {
            max_held_rows: 3,
            ..TimeSection::default()
        });
        g.admit(RowRef::Obs(&obs("D0", T0)));
        for k in 0..5 {
            g.hold(Reading::Weather(wx(T0 + 3_600_000 + k)));
        }
        assert_eq!(g.held(), 3);
        assert_eq!(g.dropped, 2);
    }
}
