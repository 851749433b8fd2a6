//! Health that tells the truth: `/api/health` says `degraded`, with the
//! reasons, when ticks stall while rows arrive, a commit failed recently,
//! the database's disk is low, the broker is unreachable, or a source's
//! clock is off; and while ticks wait unwritten in memory, or their
//! history had to be dropped to bound it. Each reason is also a metric (`zhilu_health_*`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use zhilu_contract::HealthCode;

/// How long (ms) after a failed commit health still reports it, unless a
/// commit succeeded since.
const COMMIT_FAILURE_MEMORY_MS: i64 = 300_000;

/// What the engine, the writer and the adapters report (shared, lock-free
/// except for the last error text).
#[derive(Debug, Default)]
pub struct HealthState {
    /// Wall time of the last tick closed.
    pub last_tick_wall_ms: AtomicI64,
    /// Wall time of the first row fed to the brain since the last tick
    /// closed (0 = none).
    pub rows_since_tick_wall_ms: AtomicI64,
    /// Wall time of the last failed commit (tick or readings), 0 = none.
    pub last_failure_wall_ms: AtomicI64,
    /// Wall time of the last successful commit.
    pub last_ok_wall_ms: AtomicI64,
    /// Failed commits since start.
    pub failures: AtomicU64,
    /// Rows held back by the quorum gate.
    pub held_rows: AtomicU64,
    /// The last storage error.
    pub last_error: Mutex<String>,
    /// Rows of unwritten ticks waiting in memory for a commit.
    pub carry_items: AtomicU64,
    /// Rows of unwritten ticks dropped to bound that memory, since start.
    pub carry_dropped: AtomicU64,
    /// Wall time they were last dropped (0 = never).
    pub carry_dropped_wall_ms: AtomicI64,
}

impl HealthState {
    /// A commit (tick or readings) failed.
    pub fn commit_failed(&self, now_ms: i64, error: &str) {
        self.last_failure_wall_ms.store(now_ms, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = error.chars().take(300).collect();
        }
    }

    /// History of unwritten ticks was dropped (`n` rows) to bound memory.
    pub fn carry_dropped(&self, now_ms: i64, n: u64) {
        self.carry_dropped.fetch_add(n, Ordering::Relaxed);
        self.carry_dropped_wall_ms.store(now_ms, Ordering::Relaxed);
        metrics::counter!("zhilu_carry_dropped_total").increment(n);
    }

    /// A commit succeeded.
    pub fn commit_ok(&self, now_ms: i64) {
        self.last_ok_wall_ms.store(now_ms, Ordering::Relaxed);
    }

    /// A tick closed (and was committed or not).
    pub fn tick_closed(&self, now_ms: i64, committed: bool) {
        self.last_tick_wall_ms.store(now_ms, Ordering::Relaxed);
        self.rows_since_tick_wall_ms.store(0, Ordering::Relaxed);
        if committed {
            self.commit_ok(now_ms);
        }
    }

    /// A row reached the brain.
    pub fn row_fed(&self, now_ms: i64) {
        if self.rows_since_tick_wall_ms.load(Ordering::Relaxed) == 0 {
            self.rows_since_tick_wall_ms
                .store(now_ms, Ordering::Relaxed);
        }
    }

    /// Whether a commit failed recently and none succeeded since.
    pub fn storage_failing(&self, now_ms: i64) -> bool {
        let f = self.last_failure_wall_ms.load(Ordering::Relaxed);
        f != 0
            && f >= self.last_ok_wall_ms.load(Ordering::Relaxed)
            && now_ms - f < COMMIT_FAILURE_MEMORY_MS
    }
}

/// Free bytes on the file system holding `path` (or its folder).
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `s` a valid out-pointer.
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
        if rc != 0 {
            return None;
        }
        Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// One reason for `degraded` as a code with its parameters (only those
/// it has), for a console to say in its language.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct HealthReason {
    /// `zhilu_contract::HealthCode`: `ticks_stalled`, `commits_failing`,
    /// `ticks_waiting`, `history_dropped`, `disk_low`, `broker_down`,
    /// `source_clocks_off`.
    pub code: &'static str,
    /// Ticks stalled: for how long (s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<i64>,
    /// Commits failing: the last storage error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rows of unwritten ticks waiting, or dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Disk low: free megabytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_mb: Option<u64>,
    /// Disk low: ingest stops below this many megabytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_mb: Option<u64>,
    /// Source clocks off: which sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
}

impl HealthReason {
    fn of(code: HealthCode) -> HealthReason {
        HealthReason {
            code: code.as_str(),
            ..HealthReason::default()
        }
    }
}

/// Health as answered.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Report {
    /// `ok` or `degraded`.
    pub status: String,
    /// Why degraded (empty when ok).
    pub reasons: Vec<String>,
    /// The same reasons as codes with parameters, in the same order
    /// (`{"code": "disk_low", "free_mb": 900, "min_mb": 500}`).
    pub codes: Vec<HealthReason>,
    /// Free bytes where the database lives (SQLite).
    pub disk_free_bytes: Option<u64>,
    /// Sources whose clocks are off now.
    pub sources_off: Vec<String>,
    /// Rows held back by the quorum of sources.
    pub held_rows: u64,
    /// Failed commits since start.
    pub commit_failures: u64,
}

/// Whether there is room to accept readings (`storage.min_free_mb`):
/// `Err` with the free megabytes when not.
pub fn disk_room(st: &crate::AppState) -> Result<Option<u64>, u64> {
    let Some(free) = st.store.file().and_then(free_bytes) else {
        return Ok(None);
    };
    let min = st.cfg.storage.min_free_mb.saturating_mul(1 << 20);
    if min > 0 && free < min {
        return Err(free >> 20);
    }
    Ok(Some(free))
}

/// Judges health now (and sets the `zhilu_health_*` metrics).
pub fn report(st: &crate::AppState) -> Report {
    let h = &st.health;
    let now = crate::wall_ms();
    let mut reasons = Vec::new();
    let mut codes = Vec::new();
    let first_row = h.rows_since_tick_wall_ms.load(Ordering::Relaxed);
    let stall_ms = (st.cfg.ingest.stall_after_s * 1000.0) as i64;
    let stalled = first_row != 0 && now - first_row > stall_ms;
    if stalled {
        codes.push(HealthReason {
            seconds: Some((now - first_row) / 1000),
            ..HealthReason::of(HealthCode::TicksStalled)
        });
        reasons.push(format!(
            "ticks stalled: rows arriving for {} s, no tick closed",
            (now - first_row) / 1000
        ));
    }
    let failing = h.storage_failing(now);
    if failing {
        let e = h.last_error.lock().map(|e| e.clone()).unwrap_or_default();
        codes.push(HealthReason {
            error: Some(e.clone()),
            ..HealthReason::of(HealthCode::CommitsFailing)
        });
        reasons.push(format!("storage: commits failing ({e})"));
    }
    let carried = h.carry_items.load(Ordering::Relaxed);
    if carried > 0 {
        codes.push(HealthReason {
            rows: Some(carried),
            ..HealthReason::of(HealthCode::TicksWaiting)
        });
        reasons.push(format!(
            "storage: {carried} rows of unwritten ticks waiting (nothing of them published or sent yet)"
        ));
    }
    let dropped_at = h.carry_dropped_wall_ms.load(Ordering::Relaxed);
    if dropped_at != 0 && now - dropped_at < COMMIT_FAILURE_MEMORY_MS {
        codes.push(HealthReason {
            rows: Some(h.carry_dropped.load(Ordering::Relaxed)),
            ..HealthReason::of(HealthCode::HistoryDropped)
        });
        reasons.push(format!(
            "storage: {} rows of unwritten ticks' history dropped (stream messages, event changes, audit; events, proposals and actions kept)",
            h.carry_dropped.load(Ordering::Relaxed)
        ));
    }
    let free = st.store.file().and_then(free_bytes);
    let min = st.cfg.storage.min_free_mb.saturating_mul(1 << 20);
    let low = free.is_some_and(|f| min > 0 && f < min.saturating_mul(2));
    if let (true, Some(f)) = (low, free) {
        codes.push(HealthReason {
            free_mb: Some(f >> 20),
            min_mb: Some(st.cfg.storage.min_free_mb),
            ..HealthReason::of(HealthCode::DiskLow)
        });
        reasons.push(format!(
            "disk low: {} MB free (ingest stops below {} MB)",
            f >> 20,
            st.cfg.storage.min_free_mb
        ));
    }
    let broker_down = st.broker.as_ref().is_some_and(|b| !b.is_connected());
    if broker_down {
        codes.push(HealthReason::of(HealthCode::BrokerDown));
        reasons.push("device broker unreachable".into());
    }
    let off = st.clocks.off(now);
    if !off.is_empty() {
        let names: Vec<String> = off
            .iter()
            .take(10)
            .map(|o| format!("{} ({})", o.source, o.why))
            .collect();
        codes.push(HealthReason {
            sources: Some(off.iter().map(|o| o.source.clone()).collect()),
            ..HealthReason::of(HealthCode::SourceClocksOff)
        });
        reasons.push(format!(
            "source clocks off: {}{}",
            names.join(", "),
            if off.len() > 10 { ", …" } else { "" }
        ));
    }
    let held = h.held_rows.load(Ordering::Relaxed);
    metrics::gauge!("zhilu_health_degraded").set(if reasons.is_empty() { 0.0 } else { 1.0 });
    metrics::gauge!("zhilu_health_ticks_stalled").set(f64::from(u8::from(stalled)));
    metrics::gauge!("zhilu_health_storage_failing").set(f64::from(u8::from(failing)));
    metrics::gauge!("zhilu_carry_rows").set(carried as f64);
    metrics::gauge!("zhilu_health_disk_low").set(f64::from(u8::from(low)));
    metrics::gauge!("zhilu_health_broker_down").set(f64::from(u8::from(broker_down)));
    metrics::gauge!("zhilu_health_source_clocks_off").set(off.len() as f64);
    metrics::gauge!("zhilu_clock_held_rows").set(held as f64);
    if let Some(f) = free {
        metrics::gauge!("zhilu_disk_free_bytes").set(f as f64);
    }
    Report {
        status: if reasons.is_empty() { "ok" } else { "degraded" }.into(),
        reasons,
        codes,
        disk_free_bytes: free,
        sources_off: off.into_iter().map(|o| o.source).collect(),
        held_rows: held,
        commit_failures: h.failures.load(Ordering::Relaxed),
    }
}

/// Keeps the health metrics fresh for scrapers that never call
/// `/api/health` (every 5 s).
pub async fn watch(st: crate::AppState) {
    let mut t = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        t.tick().await;
        let _ = report(&st);
    }
}
