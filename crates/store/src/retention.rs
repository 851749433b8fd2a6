//! Retention: raw rows older than a cutoff leave the live tables. Detector
//! and weather rows are rolled up into 5-minute buckets; positions and
//! camera rows are appended to daily CSV files in the replay contract's
//! format (or dropped when no archive directory is given).
//!
//! Each kind is one transaction: the roll-up (or the archive files, synced
//! to disk) is written before the raw rows are deleted, and both commit
//! together, so a crash mid-pass loses nothing (a crash after the files were
//! written but before the commit archives those rows again on the next pass:
//! at least once, never zero times). On PostgreSQL the pass reads one
//! snapshot (REPEATABLE READ), so rows ingested meanwhile are neither rolled
//! up nor deleted; on SQLite the pass holds the write lock, so run it often
//! enough that one pass stays short (ingest waits up to the 5 s busy
//! timeout). Events, actions, proposals and the audit log are never touched.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::error::db;
use crate::readings::SEQ_HWM_KEY;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::{CameraRow, PositionRow, Result, RetentionReport, Store, StoreError};

/// One detector lane over one 5-minute bucket, after retention.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Obs5MinRow {
    /// End of the bucket (epoch ms, a multiple of 5 min): readings with
    /// `bucket_ms - 5 min < ts_ms <= bucket_ms`.
    pub bucket_ms: i64,
    /// Detector id.
    pub detector: String,
    /// Lane number.
    pub lane: i16,
    /// Sum of the volumes.
    pub volume: i64,
    /// Volume-weighted mean speed over the readings that had a speed.
    pub speed_kmh: Option<f64>,
    /// The weight behind `speed_kmh`: volume of the readings with a speed.
    pub speed_weight: i64,
    /// Mean occupancy over the readings that had one.
    pub occupancy_pct: Option<f64>,
    /// Readings with an occupancy.
    pub occupancy_n: i64,
    /// Raw readings rolled up.
    pub samples: i64,
}

/// One weather station over one 5-minute bucket, after retention.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Weather5MinRow {
    /// End of the bucket (epoch ms, a multiple of 5 min).
    pub bucket_ms: i64,
    /// Station id.
    pub station: String,
    /// Lowest visibility.
    pub visibility_min_m: Option<f64>,
    /// Lowest surface temperature.
    pub surface_temp_min_c: Option<f64>,
    /// Mean air temperature.
    pub air_temp_mean_c: Option<f64>,
    /// Readings with an air temperature.
    pub air_temp_n: i64,
    /// Mean humidity.
    pub humidity_mean_pct: Option<f64>,
    /// Readings with a humidity.
    pub humidity_n: i64,
    /// The last non-empty surface state, or empty.
    pub surface_state: String,
    /// Data time of that surface state.
    pub surface_state_ms: Option<i64>,
    /// Raw readings rolled up.
    pub samples: i64,
}

/// Rolls raw obs older than `$1` into obs_5min, merging into buckets an
/// earlier pass already wrote (means re-weighted by their weights).
const OBS_ROLLUP: &str = "INSERT INTO obs_5min (bucket_ms, detector, lane, volume, speed_kmh, \
    speed_weight, occupancy_pct, occupancy_n, samples) \
    SELECT ((ts_ms + 299999) / 300000) * 300000, detector, lane, SUM(volume), \
    SUM(CASE WHEN speed_kmh IS NOT NULL THEN speed_kmh * volume END) \
        / NULLIF(SUM(CASE WHEN speed_kmh IS NOT NULL THEN volume ELSE 0 END), 0), \
    SUM(CASE WHEN speed_kmh IS NOT NULL THEN volume ELSE 0 END), \
    AVG(occupancy_pct), COUNT(occupancy_pct), COUNT(*) \
    FROM obs WHERE ts_ms < $1 GROUP BY 1, 2, 3 \
    ON CONFLICT (bucket_ms, detector, lane) DO UPDATE SET \
    volume = obs_5min.volume + excluded.volume, \
    speed_kmh = CASE WHEN obs_5min.speed_weight + excluded.speed_weight > 0 THEN \
        (COALESCE(obs_5min.speed_kmh, 0.0) * obs_5min.speed_weight \
         + COALESCE(excluded.speed_kmh, 0.0) * excluded.speed_weight) \
        / (obs_5min.speed_weight + excluded.speed_weight) END, \
    speed_weight = obs_5min.speed_weight + excluded.speed_weight, \
    occupancy_pct = CASE WHEN obs_5min.occupancy_n + excluded.occupancy_n > 0 THEN \
        (COALESCE(obs_5min.occupancy_pct, 0.0) * obs_5min.occupancy_n \
         + COALESCE(excluded.occupancy_pct, 0.0) * excluded.occupancy_n) \
        / (obs_5min.occupancy_n + excluded.occupancy_n) END, \
    occupancy_n = obs_5min.occupancy_n + excluded.occupancy_n, \
    samples = obs_5min.samples + excluded.samples";

/// Rolls raw weather older than `$1` into weather_5min, merging likewise
/// (minima of minima, re-weighted means, the later surface state).
const WEATHER_ROLLUP: &str = "INSERT INTO weather_5min (bucket_ms, station, visibility_min_m, \
    surface_temp_min_c, air_temp_mean_c, air_temp_n, humidity_mean_pct, humidity_n, \
    surface_state, surface_state_ms, samples) \
    SELECT g.bucket_ms, g.station, g.vis, g.surf, g.air, g.air_n, g.hum, g.hum_n, \
    COALESCE((SELECT w.surface_state FROM weather w WHERE w.station = g.station \
        AND w.ts_ms = g.state_ms AND w.surface_state <> '' ORDER BY w.seq DESC LIMIT 1), ''), \
    g.state_ms, g.samples \
    FROM (SELECT ((ts_ms + 299999) / 300000) * 300000 AS bucket_ms, station, \
        MIN(visibility_m) AS vis, MIN(surface_temp_c) AS surf, \
        AVG(air_temp_c) AS air, COUNT(air_temp_c) AS air_n, \
        AVG(humidity_pct) AS hum, COUNT(humidity_pct) AS hum_n, \
        MAX(CASE WHEN surface_state <> '' THEN ts_ms END) AS state_ms, COUNT(*) AS samples \
        FROM weather WHERE ts_ms < $1 GROUP BY 1, 2) g \
    WHERE 1 = 1 \
    ON CONFLICT (bucket_ms, station) DO UPDATE SET \
    visibility_min_m = CASE WHEN weather_5min.visibility_min_m IS NULL \
        OR excluded.visibility_min_m < weather_5min.visibility_min_m \
        THEN COALESCE(excluded.visibility_min_m, weather_5min.visibility_min_m) \
        ELSE weather_5min.visibility_min_m END, \
    surface_temp_min_c = CASE WHEN weather_5min.surface_temp_min_c IS NULL \
        OR excluded.surface_temp_min_c < weather_5min.surface_temp_min_c \
        THEN COALESCE(excluded.surface_temp_min_c, weather_5min.surface_temp_min_c) \
        ELSE weather_5min.surface_temp_min_c END, \
    air_temp_mean_c = CASE WHEN weather_5min.air_temp_n + excluded.air_temp_n > 0 THEN \
        (COALESCE(weather_5min.air_temp_mean_c, 0.0) * weather_5min.air_temp_n \
         + COALESCE(excluded.air_temp_mean_c, 0.0) * excluded.air_temp_n) \
        / (weather_5min.air_temp_n + excluded.air_temp_n) END, \
    air_temp_n = weather_5min.air_temp_n + excluded.air_temp_n, \
    humidity_mean_pct = CASE WHEN weather_5min.humidity_n + excluded.humidity_n > 0 THEN \
        (COALESCE(weather_5min.humidity_mean_pct, 0.0) * weather_5min.humidity_n \
         + COALESCE(excluded.humidity_mean_pct, 0.0) * excluded.humidity_n) \
        / (weather_5min.humidity_n + excluded.humidity_n) END, \
    humidity_n = weather_5min.humidity_n + excluded.humidity_n, \
    surface_state = CASE WHEN excluded.surface_state_ms IS NOT NULL \
        AND (weather_5min.surface_state_ms IS NULL \
             OR excluded.surface_state_ms >= weather_5min.surface_state_ms) \
        THEN excluded.surface_state ELSE weather_5min.surface_state END, \
    surface_state_ms = CASE WHEN excluded.surface_state_ms IS NOT NULL \
        AND (weather_5min.surface_state_ms IS NULL \
             OR excluded.surface_state_ms >= weather_5min.surface_state_ms) \
        THEN excluded.surface_state_ms ELSE weather_5min.surface_state_ms END, \
    samples = weather_5min.samples + excluded.samples";

/// A raw kind that retention rolls up.
struct RollUp {
    /// The raw table.
    table: &'static str,
    /// The roll-up table.
    into: &'static str,
    /// Highest seq older than `$1`.
    max_seq: &'static str,
    /// Rolls the rows older than `$1` up (merging).
    insert: &'static str,
    /// Deletes the rows older than `$1`.
    delete: &'static str,
    /// Deletes what else was derived from the rows older than `$1`
    /// (table, statement).
    derived: &'static [(&'static str, &'static str)],
}

const OBS: RollUp = RollUp {
    table: "obs",
    into: "obs_5min",
    max_seq: "SELECT MAX(seq) FROM obs WHERE ts_ms < $1",
    insert: OBS_ROLLUP,
    delete: "DELETE FROM obs WHERE ts_ms < $1",
    derived: &[
        ("obs_station", "DELETE FROM obs_station WHERE ts_ms < $1"),
        ("obs_packed", "DELETE FROM obs_packed WHERE ts_ms < $1"),
    ],
};

const WEATHER: RollUp = RollUp {
    table: "weather",
    into: "weather_5min",
    max_seq: "SELECT MAX(seq) FROM weather WHERE ts_ms < $1",
    insert: WEATHER_ROLLUP,
    delete: "DELETE FROM weather WHERE ts_ms < $1",
    derived: &[],
};

/// Raises the meta high-water mark of removed seqs to `$2` (never lowers it).
const RAISE_SEQ_HWM: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
    ON CONFLICT (key) DO UPDATE SET value = CASE \
    WHEN CAST(excluded.value AS BIGINT) > CAST(meta.value AS BIGINT) \
    THEN excluded.value ELSE meta.value END";

/// A raw row kind that retention archives to CSV.
trait ArchiveRow:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
    /// Its table.
    const TABLE: &'static str;
    /// File name prefix (`POS` → `POS-2026-11-24.csv`).
    const PREFIX: &'static str;
    /// The replay contract's header line.
    const HEADER: &'static str;
    /// Highest seq older than `$1`.
    const MAX_SEQ: &'static str;
    /// One page older than `$1`, after `($2, $3)` in (ts_ms, seq) order, at most `$4`.
    const PAGE: &'static str;
    /// Deletes the rows older than `$1`.
    const DELETE: &'static str;
    fn ts_ms(&self) -> i64;
    fn seq(&self) -> i64;
    /// Writes the fields after `time`, each preceded by its comma.
    fn write_fields(&self, line: &mut String);
}

impl ArchiveRow for PositionRow {
    const TABLE: &'static str = "positions";
    const PREFIX: &'static str = "POS";
    const HEADER: &'static str = zhilu_contract::POS_HEADER;
    const MAX_SEQ: &'static str = "SELECT MAX(seq) FROM positions WHERE ts_ms < $1";
    const PAGE: &'static str = "SELECT seq, ts_ms, vehicle, class, lat, lon, speed_kmh, \
        heading_deg FROM positions WHERE ts_ms < $1 \
        AND (ts_ms > $2 OR (ts_ms = $2 AND seq > $3)) ORDER BY ts_ms, seq LIMIT $4";
    const DELETE: &'static str = "DELETE FROM positions WHERE ts_ms < $1";
    fn ts_ms(&self) -> i64 {
        self.ts_ms
    }
    fn seq(&self) -> i64 {
        self.seq
    }
    fn write_fields(&self, line: &mut String) {
        let _ = write!(
            line,
            ",{},{},{},{},{},{}",
            self.vehicle,
            self.class,
            self.lat,
            self.lon,
            Opt(self.speed_kmh),
            Opt(self.heading_deg)
        );
    }
}

impl ArchiveRow for CameraRow {
    const TABLE: &'static str = "camera";
    const PREFIX: &'static str = "CAM";
    const HEADER: &'static str = zhilu_contract::CAM_HEADER;
    const MAX_SEQ: &'static str = "SELECT MAX(seq) FROM camera WHERE ts_ms < $1";
    const PAGE: &'static str = "SELECT seq, ts_ms, camera, kind, direction, stake_m, lane, \
        confidence FROM camera WHERE ts_ms < $1 \
        AND (ts_ms > $2 OR (ts_ms = $2 AND seq > $3)) ORDER BY ts_ms, seq LIMIT $4";
    const DELETE: &'static str = "DELETE FROM camera WHERE ts_ms < $1";
    fn ts_ms(&self) -> i64 {
        self.ts_ms
    }
    fn seq(&self) -> i64 {
        self.seq
    }
    fn write_fields(&self, line: &mut String) {
        let _ = write!(
            line,
            ",{},{},{},{},{},{}",
            self.camera,
            self.kind,
            self.direction,
            self.stake_m,
            Opt(self.lane),
            self.confidence
        );
    }
}

/// Rows read per query while archiving (memory stays flat).
const ARCHIVE_PAGE: i64 = 10_000;
const DAY_MS: i64 = 86_400_000;

impl Store {
    /// Moves raw rows with `ts_ms < cutoff_ts_ms` out of the live tables:
    /// obs and weather into their 5-minute roll-ups, positions and camera
    /// rows appended to `archive_dir/POS-YYYY-MM-DD.csv` /
    /// `CAM-YYYY-MM-DD.csv` (UTC day of the row; header only in a new file)
    /// or, without `archive_dir`, dropped. One transaction per kind; see the
    /// module doc for the crash guarantees.
    pub async fn apply_retention(
        &self,
        cutoff_ts_ms: i64,
        archive_dir: Option<&Path>,
    ) -> Result<RetentionReport> {
        let mut report = RetentionReport {
            obs_rolled_up: self.roll_up(cutoff_ts_ms, &OBS).await?,
            weather_rolled_up: self.roll_up(cutoff_ts_ms, &WEATHER).await?,
            ..RetentionReport::default()
        };
        if let Some(dir) = archive_dir {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| StoreError::Archive {
                    op: "apply_retention",
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let mut pos = archive_dir.map(Archive::new::<PositionRow>);
        report.positions_archived = self
            .archive_kind::<PositionRow>(cutoff_ts_ms, pos.as_mut())
            .await?;
        let mut cam = archive_dir.map(Archive::new::<CameraRow>);
        report.camera_archived = self
            .archive_kind::<CameraRow>(cutoff_ts_ms, cam.as_mut())
            .await?;
        report.files = pos
            .into_iter()
            .chain(cam)
            .flat_map(|a| a.written)
            .map(|p| p.display().to_string())
            .collect();
        tracing::info!(
            cutoff_ts_ms,
            obs = report.obs_rolled_up,
            weather = report.weather_rolled_up,
            positions = report.positions_archived,
            camera = report.camera_archived,
            "store: retention pass"
        );
        Ok(report)
    }

    /// One roll-up transaction: aggregate into the roll-up table, remember
    /// the highest seq, delete. Returns the rows removed.
    async fn roll_up(&self, cutoff: i64, k: &RollUp) -> Result<i64> {
        const OP: &str = "apply_retention";
        let deleted = in_tx!(self, OP, snapshot, tx => {
            let top: Option<i64> = sqlx::query_scalar(k.max_seq)
                .bind(cutoff)
                .fetch_one(&mut *tx)
                .await
                .map_err(db(OP, k.table))?;
            let Some(top) = top else {
                return Ok(0);
            };
            sqlx::query(k.insert)
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(db(OP, k.into))?;
            sqlx::query(RAISE_SEQ_HWM)
                .bind(SEQ_HWM_KEY)
                .bind(top.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db(OP, "meta"))?;
            for (table, sql) in k.derived {
                sqlx::query(*sql)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(OP, table))?;
            }
            sqlx::query(k.delete)
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(db(OP, k.table))?
                .rows_affected()
        });
        Ok(i64::try_from(deleted).unwrap_or(i64::MAX))
    }

    /// One transaction: rows of `R`'s table older than `cutoff` appended to
    /// the archive (if any), then deleted. Returns the rows removed.
    async fn archive_kind<R: ArchiveRow>(
        &self,
        cutoff: i64,
        archive: Option<&mut Archive>,
    ) -> Result<i64> {
        const OP: &str = "apply_retention";
        let deleted = in_tx!(self, OP, snapshot, tx => {
            let top: Option<i64> = sqlx::query_scalar(R::MAX_SEQ)
                .bind(cutoff)
                .fetch_one(&mut *tx)
                .await
                .map_err(db(OP, R::TABLE))?;
            let Some(top) = top else {
                return Ok(0);
            };
            if let Some(archive) = archive {
                // Keyset paging in (ts_ms, seq) order: files come out in time order.
                let (mut after_ts, mut after_seq) = (i64::MIN, i64::MIN);
                loop {
                    let rows: Vec<R> = sqlx::query_as(R::PAGE)
                        .bind(cutoff)
                        .bind(after_ts)
                        .bind(after_seq)
                        .bind(ARCHIVE_PAGE)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db(OP, R::TABLE))?;
                    let Some(last) = rows.last() else { break };
                    (after_ts, after_seq) = (last.ts_ms(), last.seq());
                    for r in &rows {
                        archive.add(r.ts_ms(), |line| r.write_fields(line))?;
                    }
                    archive.write_out().await?;
                    if (rows.len() as i64) < ARCHIVE_PAGE {
                        break;
                    }
                }
                archive.sync().await?;
            }
            sqlx::query(RAISE_SEQ_HWM)
                .bind(SEQ_HWM_KEY)
                .bind(top.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db(OP, "meta"))?;
            sqlx::query(R::DELETE)
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(db(OP, R::TABLE))?
                .rows_affected()
        });
        Ok(i64::try_from(deleted).unwrap_or(i64::MAX))
    }

    /// Detector roll-ups with `from_ms <= bucket_ms < to_ms`, by bucket,
    /// detector, lane.
    pub async fn obs_5min(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Obs5MinRow>> {
        const SQL: &str = "SELECT bucket_ms, detector, lane, volume, speed_kmh, speed_weight, \
            occupancy_pct, occupancy_n, samples FROM obs_5min \
            WHERE bucket_ms >= $1 AND bucket_ms < $2 ORDER BY bucket_ms, detector, lane";
        on_pool!(self, p => sqlx::query_as(SQL).bind(from_ms).bind(to_ms).fetch_all(p).await)
            .map_err(db("obs_5min", "obs_5min"))
    }

    /// Weather roll-ups with `from_ms <= bucket_ms < to_ms`, by bucket and
    /// station.
    pub async fn weather_5min(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Weather5MinRow>> {
        const SQL: &str = "SELECT bucket_ms, station, visibility_min_m, surface_temp_min_c, \
            air_temp_mean_c, air_temp_n, humidity_mean_pct, humidity_n, surface_state, \
            surface_state_ms, samples FROM weather_5min \
            WHERE bucket_ms >= $1 AND bucket_ms < $2 ORDER BY bucket_ms, station";
        on_pool!(self, p => sqlx::query_as(SQL).bind(from_ms).bind(to_ms).fetch_all(p).await)
            .map_err(db("weather_5min", "weather_5min"))
    }
}

/// An optional CSV field: the value, or empty.
struct Opt<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Opt<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => Ok(()),
        }
    }
}

/// Daily CSV files of one kind being appended to.
struct Archive {
    dir: PathBuf,
    table: &'static str,
    prefix: &'static str,
    header: &'static str,
    /// Lines not yet written, per UTC day.
    pending: BTreeMap<i64, String>,
    /// Files opened in this pass, per UTC day.
    open: BTreeMap<i64, (PathBuf, tokio::fs::File)>,
    /// Every file written to, in the order first written.
    written: Vec<PathBuf>,
}

impl Archive {
    fn new<R: ArchiveRow>(dir: &Path) -> Archive {
        Archive {
            dir: dir.to_path_buf(),
            table: R::TABLE,
            prefix: R::PREFIX,
            header: R::HEADER,
            pending: BTreeMap::new(),
            open: BTreeMap::new(),
            written: Vec::new(),
        }
    }

    /// Queues one line: the RFC 3339 UTC time, then what `rest` writes
    /// (starting with its comma).
    fn add(&mut self, ts_ms: i64, rest: impl FnOnce(&mut String)) -> Result<()> {
        // A time no calendar can show (a corrupt row) is refused, not written.
        jiff::Timestamp::from_millisecond(ts_ms).map_err(|e| StoreError::Corrupt {
            op: "apply_retention",
            table: self.table,
            detail: format!("ts_ms {ts_ms}: {e}"),
        })?;
        let line = self.pending.entry(ts_ms.div_euclid(DAY_MS)).or_default();
        zhilu_contract::format_time_utc(ts_ms, line);
        rest(line);
        line.push('\n');
        Ok(())
    }

    /// Appends the queued lines to their files (opening each file once; a
    /// new file gets the header first).
    async fn write_out(&mut self) -> Result<()> {
        for (day, lines) in std::mem::take(&mut self.pending) {
            if !self.open.contains_key(&day) {
                let date = zhilu_contract::date_string(day * DAY_MS, 0);
                let path = self.dir.join(format!("{}-{date}.csv", self.prefix));
                let mut file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .await
                    .map_err(|e| archive_err(&path, e))?;
                let len = file
                    .metadata()
                    .await
                    .map_err(|e| archive_err(&path, e))?
                    .len();
                if len == 0 {
                    file.write_all(format!("{}\n", self.header).as_bytes())
                        .await
                        .map_err(|e| archive_err(&path, e))?;
                }
                self.written.push(path.clone());
                self.open.insert(day, (path, file));
            }
            if let Some((path, file)) = self.open.get_mut(&day) {
                file.write_all(lines.as_bytes())
                    .await
                    .map_err(|e| archive_err(path, e))?;
            }
        }
        Ok(())
    }

    /// Flushes every file to disk (before the rows are deleted).
    async fn sync(&mut self) -> Result<()> {
        for (path, file) in self.open.values_mut() {
            file.flush().await.map_err(|e| archive_err(path, e))?;
            file.sync_all().await.map_err(|e| archive_err(path, e))?;
        }
        Ok(())
    }
}

fn archive_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Archive {
        op: "apply_retention",
        path: path.to_path_buf(),
        source,
    }
}
