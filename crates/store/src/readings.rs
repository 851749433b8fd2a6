//! Raw readings: batched appends, replay in ingest order, counts and the
//! highest ids in use.

use sqlx::{Executor, IntoArguments, QueryBuilder, Transaction};

use crate::error::db;
use crate::{
    Appended, Backend, CameraRow, MaxIds, ObsRow, PositionRow, Reading, ReadingBatch,
    ReadingCounts, Result, Store, StoreError, WeatherRow, insert_skipping, limit_or_default,
    stored_seqs,
};

const OBS_INSERT: &str = "INSERT INTO obs \
    (seq, ts_ms, detector, lane, interval_s, volume, speed_kmh, occupancy_pct) ";
const WEATHER_INSERT: &str = "INSERT INTO weather \
    (seq, ts_ms, station, visibility_m, surface_temp_c, air_temp_c, humidity_pct, surface_state) ";
const POSITION_INSERT: &str = "INSERT INTO positions \
    (seq, ts_ms, vehicle, class, lat, lon, speed_kmh, heading_deg) ";
const CAMERA_INSERT: &str = "INSERT INTO camera \
    (seq, ts_ms, camera, kind, direction, stake_m, lane, confidence) ";
/// A row already stored (same seq, or same natural key: see the unique
/// indexes of migration 0004) is skipped. Which were is asked only when a
/// statement inserted fewer rows than it carried (RETURNING on every
/// statement cost SQLite more than half its ingest rate).
const SKIP: &str = " ON CONFLICT DO NOTHING";

const OBS_AFTER: &str = "SELECT seq, ts_ms, detector, lane, interval_s, volume, speed_kmh, \
    occupancy_pct FROM obs WHERE seq > $1 AND ts_ms >= $2 ORDER BY seq LIMIT $3";
const WEATHER_AFTER: &str = "SELECT seq, ts_ms, station, visibility_m, surface_temp_c, \
    air_temp_c, humidity_pct, surface_state FROM weather \
    WHERE seq > $1 AND ts_ms >= $2 ORDER BY seq LIMIT $3";
const POSITIONS_AFTER: &str = "SELECT seq, ts_ms, vehicle, class, lat, lon, speed_kmh, \
    heading_deg FROM positions WHERE seq > $1 AND ts_ms >= $2 ORDER BY seq LIMIT $3";
const CAMERA_AFTER: &str = "SELECT seq, ts_ms, camera, kind, direction, stake_m, lane, \
    confidence FROM camera WHERE seq > $1 AND ts_ms >= $2 ORDER BY seq LIMIT $3";

/// Meta key of the highest seq ever removed by retention.
pub(crate) const SEQ_HWM_KEY: &str = "reading_seq_hwm";

impl Store {
    /// Appends a batch of raw readings in one transaction (all or nothing).
    /// Each reading is stored once: a row whose natural key (time and
    /// detector and lane; time and station; time and vehicle; time, camera,
    /// kind, direction and lane) is already stored — a batch re-sent after
    /// a lost acknowledgement, a replay — is skipped and its seq returned in
    /// [`Appended::duplicates`] (the first stored copy stays). A row whose
    /// seq is already stored is skipped too, without being a duplicate: a
    /// retried batch is harmless. seq must be unique across the four kinds
    /// (the caller assigns it).
    pub async fn append_readings(&self, b: &ReadingBatch) -> Result<Appended> {
        const OP: &str = "append_readings";
        if b.is_empty() {
            return Ok(Appended::default());
        }
        let mut duplicates = Vec::new();
        in_tx!(self, OP, tx => {
            if !b.obs.is_empty() {
                let short = insert_skipping(&mut tx, OBS_INSERT, SKIP, 8, &b.obs, |mut v, r| {
                    v.push_bind(r.seq)
                        .push_bind(r.ts_ms)
                        .push_bind(r.detector.as_str())
                        .push_bind(r.lane)
                        .push_bind(r.interval_s)
                        .push_bind(r.volume)
                        .push_bind(r.speed_kmh)
                        .push_bind(r.occupancy_pct);
                })
                .await
                .map_err(db(OP, "obs"))?;
                if !short.is_empty() {
                    let seqs = in_ranges(b.obs.iter().map(|r| r.seq), &short);
                    let stored = stored_seqs(&mut tx, "obs", &seqs).await.map_err(db(OP, "obs"))?;
                    duplicates.extend(not_in(seqs, stored));
                }
                refresh_stations(&mut tx, &b.obs)
                    .await
                    .map_err(db(OP, "obs_station"))?;
            }
            if !b.weather.is_empty() {
                let short = insert_skipping(&mut tx, WEATHER_INSERT, SKIP, 8, &b.weather, |mut v, r| {
                    v.push_bind(r.seq)
                        .push_bind(r.ts_ms)
                        .push_bind(r.station.as_str())
                        .push_bind(r.visibility_m)
                        .push_bind(r.surface_temp_c)
                        .push_bind(r.air_temp_c)
                        .push_bind(r.humidity_pct)
                        .push_bind(r.surface_state.as_str());
                })
                .await
                .map_err(db(OP, "weather"))?;
                if !short.is_empty() {
                    let seqs = in_ranges(b.weather.iter().map(|r| r.seq), &short);
                    let stored = stored_seqs(&mut tx, "weather", &seqs).await.map_err(db(OP, "weather"))?;
                    duplicates.extend(not_in(seqs, stored));
                }
            }
            if !b.positions.is_empty() {
                let short = insert_skipping(&mut tx, POSITION_INSERT, SKIP, 8, &b.positions, |mut v, r| {
                    v.push_bind(r.seq)
                        .push_bind(r.ts_ms)
                        .push_bind(r.vehicle.as_str())
                        .push_bind(r.class.as_str())
                        .push_bind(r.lat)
                        .push_bind(r.lon)
                        .push_bind(r.speed_kmh)
                        .push_bind(r.heading_deg);
                })
                .await
                .map_err(db(OP, "positions"))?;
                if !short.is_empty() {
                    let seqs = in_ranges(b.positions.iter().map(|r| r.seq), &short);
                    let stored = stored_seqs(&mut tx, "positions", &seqs).await.map_err(db(OP, "positions"))?;
                    duplicates.extend(not_in(seqs, stored));
                }
            }
            if !b.camera.is_empty() {
                let short = insert_skipping(&mut tx, CAMERA_INSERT, SKIP, 8, &b.camera, |mut v, r| {
                    v.push_bind(r.seq)
                        .push_bind(r.ts_ms)
                        .push_bind(r.camera.as_str())
                        .push_bind(r.kind.as_str())
                        .push_bind(r.direction.as_str())
                        .push_bind(r.stake_m)
                        .push_bind(r.lane)
                        .push_bind(r.confidence);
                })
                .await
                .map_err(db(OP, "camera"))?;
                if !short.is_empty() {
                    let seqs = in_ranges(b.camera.iter().map(|r| r.seq), &short);
                    let stored = stored_seqs(&mut tx, "camera", &seqs).await.map_err(db(OP, "camera"))?;
                    duplicates.extend(not_in(seqs, stored));
                }
            }
        });
        duplicates.sort_unstable();
        Ok(Appended { duplicates })
    }

    /// Readings of all four kinds with `seq > after_seq` and
    /// `ts_ms >= from_ts_ms`, in seq order, at most `limit` (0 = 1000). Page
    /// on by passing the last seq returned as `after_seq`. One call reads one
    /// snapshot; paging is gap-free as long as the caller commits batches in
    /// seq order (one writer assigning seq).
    pub async fn readings_after(
        &self,
        after_seq: i64,
        from_ts_ms: i64,
        limit: u32,
    ) -> Result<Vec<Reading>> {
        const OP: &str = "readings_after";
        let n = limit_or_default(limit);
        // The first `n` overall are among the first `n` of each kind.
        let mut out: Vec<Reading> = in_tx!(self, OP, read, tx => {
            let obs: Vec<ObsRow> = sqlx::query_as(OBS_AFTER)
                .bind(after_seq).bind(from_ts_ms).bind(n)
                .fetch_all(&mut *tx).await.map_err(db(OP, "obs"))?;
            let weather: Vec<WeatherRow> = sqlx::query_as(WEATHER_AFTER)
                .bind(after_seq).bind(from_ts_ms).bind(n)
                .fetch_all(&mut *tx).await.map_err(db(OP, "weather"))?;
            let positions: Vec<PositionRow> = sqlx::query_as(POSITIONS_AFTER)
                .bind(after_seq).bind(from_ts_ms).bind(n)
                .fetch_all(&mut *tx).await.map_err(db(OP, "positions"))?;
            let camera: Vec<CameraRow> = sqlx::query_as(CAMERA_AFTER)
                .bind(after_seq).bind(from_ts_ms).bind(n)
                .fetch_all(&mut *tx).await.map_err(db(OP, "camera"))?;
            obs.into_iter()
                .map(Reading::Obs)
                .chain(weather.into_iter().map(Reading::Weather))
                .chain(positions.into_iter().map(Reading::Position))
                .chain(camera.into_iter().map(Reading::Camera))
                .collect()
        });
        out.sort_unstable_by_key(Reading::seq);
        out.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        Ok(out)
    }

    /// Raw rows stored per kind (roll-ups and archives not counted).
    pub async fn count_readings(&self) -> Result<ReadingCounts> {
        const SQL: &str = "SELECT (SELECT COUNT(*) FROM obs), (SELECT COUNT(*) FROM weather), \
            (SELECT COUNT(*) FROM positions), (SELECT COUNT(*) FROM camera)";
        let (obs, weather, positions, camera): (i64, i64, i64, i64) = on_pool!(self, p => {
            sqlx::query_as(SQL).fetch_one(p).await
        })
        .map_err(db("count_readings", "obs, weather, positions, camera"))?;
        Ok(ReadingCounts {
            obs,
            weather,
            positions,
            camera,
        })
    }

    /// The highest ids in use, for the server's counters after a restart.
    /// `reading_seq` also counts rows retention has already removed, so a
    /// seq is never handed out twice.
    pub async fn max_ids(&self) -> Result<MaxIds> {
        const OP: &str = "max_ids";
        const SEQ: &str = "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM obs \
            UNION ALL SELECT MAX(seq) FROM weather UNION ALL SELECT MAX(seq) FROM positions \
            UNION ALL SELECT MAX(seq) FROM camera) t";
        const IDS: &str = "SELECT (SELECT MAX(id) FROM actions), (SELECT MAX(id) FROM proposals)";
        let (seq, ids, event_ids) = on_pool!(self, p => {
            let seq: Option<i64> = sqlx::query_scalar(SEQ)
                .fetch_one(p).await.map_err(db(OP, "obs, weather, positions, camera"))?;
            let ids: (Option<i64>, Option<i64>) = sqlx::query_as(IDS)
                .fetch_one(p).await.map_err(db(OP, "actions, proposals"))?;
            let event_ids: Vec<String> = sqlx::query_scalar("SELECT id FROM events")
                .fetch_all(p).await.map_err(db(OP, "events"))?;
            (seq, ids, event_ids)
        });
        let hwm = match self.get_meta(SEQ_HWM_KEY).await? {
            Some(v) => v.parse::<i64>().map_err(|e| StoreError::Corrupt {
                op: OP,
                table: "meta",
                detail: format!("{SEQ_HWM_KEY} = {v:?}: {e}"),
            })?,
            None => 0,
        };
        let event_num = event_ids
            .iter()
            .filter_map(|id| id.strip_prefix('E')?.parse::<i64>().ok())
            .max()
            .unwrap_or(0);
        Ok(MaxIds {
            reading_seq: seq.unwrap_or(0).max(hwm),
            event_num,
            action_id: ids.0.unwrap_or(0),
            proposal_id: ids.1.unwrap_or(0),
        })
    }
}

/// The station roll-up of the raw rows at some reading times (`IN (…)`
/// follows), replacing what was there.
const STATION_REFRESH_HEAD: &str = "INSERT INTO obs_station (ts_ms, detector, volume, \
    speed_sum, speed_weight, occupancy_sum, occupancy_n, samples) \
    SELECT ts_ms, detector, SUM(volume), \
    SUM(CASE WHEN speed_kmh IS NULL OR speed_kmh < 0 OR speed_kmh > 250 THEN 0.0 \
             WHEN volume < 1 THEN speed_kmh ELSE speed_kmh * volume END), \
    SUM(CASE WHEN speed_kmh IS NULL OR speed_kmh < 0 OR speed_kmh > 250 THEN 0 \
             WHEN volume < 1 THEN 1 ELSE volume END), \
    SUM(COALESCE(occupancy_pct, 0.0)), \
    SUM(CASE WHEN occupancy_pct IS NULL THEN 0 ELSE 1 END), \
    COUNT(*) FROM obs WHERE ts_ms IN (";
const STATION_REFRESH_TAIL: &str = " GROUP BY ts_ms, detector \
    ON CONFLICT (ts_ms, detector) DO UPDATE SET volume = excluded.volume, \
    speed_sum = excluded.speed_sum, speed_weight = excluded.speed_weight, \
    occupancy_sum = excluded.occupancy_sum, occupancy_n = excluded.occupancy_n, \
    samples = excluded.samples";
/// The packed row of each reading time (`obs_packed`, migration 0009)
/// rewritten from `obs_station` at some times (`IN (…)` follows): every
/// station's sums as text, stations split by U+001E, fields by U+001F.
/// `{c}` is the backend's code-point function (`char` / `chr`).
const PACKED_REFRESH_HEAD: &str = "INSERT INTO obs_packed (ts_ms, stations) \
    SELECT ts_ms, string_agg(detector || {c}(31) || volume || {c}(31) || speed_sum || {c}(31) \
    || speed_weight || {c}(31) || occupancy_sum || {c}(31) || occupancy_n || {c}(31) || samples, \
    {c}(30)) FROM obs_station WHERE ts_ms IN (";
const PACKED_REFRESH_TAIL: &str = ") GROUP BY ts_ms \
    ON CONFLICT (ts_ms) DO UPDATE SET stations = excluded.stations";
/// Reading times per refresh statement.
const STATION_REFRESH_TIMES: usize = 500;
/// Above this many stations in a batch, the refresh reads every station at
/// the batch's times instead of naming them.
const STATION_REFRESH_NAMED: usize = 2000;

/// Recomputes the station roll-up (`obs_station`) of every station and
/// reading time in `rows` from the raw rows now stored, and the packed
/// rows of those times (`obs_packed`) from it, inside the
/// caller's transaction: a lane that arrived in an earlier batch is
/// counted, a duplicate that was skipped is not, and running it twice
/// changes nothing.
async fn refresh_stations<DB>(
    tx: &mut Transaction<'_, DB>,
    rows: &[ObsRow],
) -> Result<(), sqlx::Error>
where
    DB: Backend + sqlx::database::HasStatementCache,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut times: Vec<i64> = rows.iter().map(|r| r.ts_ms).collect();
    times.sort_unstable();
    times.dedup();
    let mut stations: Vec<&str> = rows.iter().map(|r| r.detector.as_str()).collect();
    stations.sort_unstable();
    stations.dedup();
    let named = stations.len() <= STATION_REFRESH_NAMED;
    for chunk in times.chunks(STATION_REFRESH_TIMES) {
        let mut qb = QueryBuilder::<DB>::new(STATION_REFRESH_HEAD);
        let mut sep = qb.separated(", ");
        for t in chunk {
            sep.push_bind(*t);
        }
        qb.push(")");
        if named {
            qb.push(" AND detector IN (");
            let mut sep = qb.separated(", ");
            for d in &stations {
                sep.push_bind(*d);
            }
            qb.push(")");
        }
        qb.push(STATION_REFRESH_TAIL);
        qb.build().persistent(false).execute(&mut **tx).await?;
        let c = if DB::NAME == "PostgreSQL" {
            "chr"
        } else {
            "char"
        };
        let mut qb = QueryBuilder::<DB>::new(PACKED_REFRESH_HEAD.replace("{c}", c));
        let mut sep = qb.separated(", ");
        for t in chunk {
            sep.push_bind(*t);
        }
        qb.push(PACKED_REFRESH_TAIL);
        qb.build().persistent(false).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The seqs of the rows at the positions in `ranges`.
fn in_ranges(all: impl Iterator<Item = i64>, ranges: &[std::ops::Range<usize>]) -> Vec<i64> {
    all.enumerate()
        .filter(|(i, _)| ranges.iter().any(|r| r.contains(i)))
        .map(|(_, s)| s)
        .collect()
}

/// `seqs` without those in `drop`.
fn not_in(seqs: Vec<i64>, drop: Vec<i64>) -> impl Iterator<Item = i64> {
    let drop: std::collections::HashSet<i64> = drop.into_iter().collect();
    seqs.into_iter().filter(move |s| !drop.contains(s))
}
