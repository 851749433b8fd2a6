//! Station history for the console's time–space diagram and for training
//! the forecaster: each detector station's speed and volume per time bucket,
//! summed over its lanes, from the packed station roll-up (`obs_packed`,
//! one row per reading time) and, where retention has rolled the raw rows
//! up, from the 5-minute roll-ups.

use crate::Result;
use crate::Store;
use crate::error::db;

/// One station in one bucket.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StationBucket {
    /// Start of the bucket (epoch ms, a multiple of the step).
    pub bucket_ms: i64,
    /// Detector station id.
    pub detector: String,
    /// Vehicles counted over all lanes in the bucket.
    pub volume: i64,
    /// Mean speed (km/h), weighted by volume (a row with a speed and no
    /// vehicles weighs as one, so a standing queue still has a speed);
    /// `None` when no row had a plausible speed.
    pub speed_kmh: Option<f64>,
    /// Mean occupancy (%) over the rows that had one.
    pub occupancy_pct: Option<f64>,
    /// Raw rows behind the bucket.
    pub samples: i64,
}

/// The packed station rows (`obs_packed`, one per reading time, written
/// with `obs_station` at ingest: every station's sums as text, stations
/// split by U+001E, fields by U+001F) from `$1` (inclusive) to `$2`
/// (exclusive). 3 hours of the demo corridor are 540 rows instead of
/// 64,260 station rows: the per-row work in the database, not the scan,
/// was most of the query's time. Read by primary key range.
const PACKED: &str = "SELECT ts_ms AS t, stations AS packed FROM obs_packed \
    WHERE ts_ms >= $1 AND ts_ms < $2";

/// The 5-minute roll-ups left by retention in `($1, $2]`, one row per
/// station (summed over lanes). A roll-up's `bucket_ms` is the end of its
/// 5 minutes, so it is placed at `bucket_ms - 1`; its speed weighs as its
/// `speed_weight` (at least one when it has a speed), like the raw rows it
/// came from.
const ROLLED_UP: &str = "\
SELECT bucket_ms - 1 AS t, detector, volume, \
       COALESCE(speed_kmh, 0.0) * (CASE WHEN speed_kmh IS NULL THEN 0 \
           WHEN speed_weight < 1 THEN 1 ELSE speed_weight END) AS speed_sum, \
       CASE WHEN speed_kmh IS NULL THEN 0 WHEN speed_weight < 1 THEN 1 \
           ELSE speed_weight END AS speed_weight, \
       COALESCE(occupancy_pct, 0.0) * occupancy_n AS occupancy_sum, occupancy_n, samples \
FROM obs_5min WHERE bucket_ms > $1 AND bucket_ms <= $2";

/// One row of [`ROLLED_UP`].
#[derive(sqlx::FromRow)]
struct RolledUp {
    t: i64,
    detector: String,
    volume: i64,
    speed_sum: f64,
    speed_weight: i64,
    occupancy_sum: f64,
    occupancy_n: i64,
    samples: i64,
}

/// One row of [`PACKED`].
#[derive(sqlx::FromRow)]
struct PackedText {
    t: i64,
    packed: String,
}

/// One station at one time (a station row or a roll-up), its station
/// numbered in order of first appearance.
struct Part {
    t: i64,
    station: usize,
    volume: i64,
    speed_sum: f64,
    speed_weight: i64,
    occupancy_sum: f64,
    occupancy_n: i64,
    samples: i64,
}

/// The parts of one query, stations numbered as they first appear.
#[derive(Default)]
struct Parts {
    names: Vec<String>,
    index: std::collections::HashMap<String, usize>,
    parts: Vec<Part>,
}

impl Parts {
    fn station(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.names.len();
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    fn rolled_up(&mut self, rows: Vec<RolledUp>) {
        for r in rows {
            let station = self.station(&r.detector);
            self.parts.push(Part {
                t: r.t,
                station,
                volume: r.volume,
                speed_sum: r.speed_sum,
                speed_weight: r.speed_weight,
                occupancy_sum: r.occupancy_sum,
                occupancy_n: r.occupancy_n,
                samples: r.samples,
            });
        }
    }

    /// Reads [`PACKED`] rows; a station that does not read as seven
    /// fields is an error (the store wrote it: it never happens).
    fn packed_text(&mut self, rows: Vec<PackedText>) -> std::result::Result<(), String> {
        for r in rows {
            for one in r.packed.split('\u{1e}') {
                let mut f = one.split('\u{1f}');
                let mut next = || f.next().ok_or_else(|| format!("short station row {one:?}"));
                let name = next()?;
                let int = |s: &str| {
                    s.parse::<i64>()
                        .or_else(|_| s.parse::<f64>().map(|v| v as i64))
                        .map_err(|e| format!("{s:?}: {e}"))
                };
                let real = |s: &str| s.parse::<f64>().map_err(|e| format!("{s:?}: {e}"));
                let (volume, speed_sum, speed_weight) =
                    (int(next()?)?, real(next()?)?, int(next()?)?);
                let (occupancy_sum, occupancy_n, samples) =
                    (real(next()?)?, int(next()?)?, int(next()?)?);
                let station = self.station(name);
                self.parts.push(Part {
                    t: r.t,
                    station,
                    volume,
                    speed_sum,
                    speed_weight,
                    occupancy_sum,
                    occupancy_n,
                    samples,
                });
            }
        }
        Ok(())
    }
}

/// The parts summed per (bucket, station), ordered by bucket then station
/// name. Each part is keyed by (bucket index, the station's rank by name),
/// so summing is a sort of plain keys and one pass — no string keys hashed
/// or compared per row.
fn buckets(all: Parts, step_ms: i64) -> Vec<StationBucket> {
    let Parts { names, parts, .. } = all;
    let Some(first) = parts.iter().map(|p| p.t.div_euclid(step_ms)).min() else {
        return Vec::new();
    };
    let mut by_name: Vec<usize> = (0..names.len()).collect();
    by_name.sort_unstable_by(|a, b| names[*a].cmp(&names[*b]));
    let mut rank = vec![0usize; names.len()];
    for (r, i) in by_name.iter().enumerate() {
        rank[*i] = r;
    }
    let mut keyed: Vec<((i64, usize), usize)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| ((p.t.div_euclid(step_ms) - first, rank[p.station]), i))
        .collect();
    keyed.sort_unstable();
    let mut out: Vec<StationBucket> = Vec::new();
    let mut i = 0;
    while i < keyed.len() {
        let key = keyed[i].0;
        let (mut volume, mut speed_sum, mut speed_weight) = (0i64, 0.0f64, 0i64);
        let (mut occupancy_sum, mut occupancy_n, mut samples) = (0.0f64, 0i64, 0i64);
        while i < keyed.len() && keyed[i].0 == key {
            let p = &parts[keyed[i].1];
            volume += p.volume;
            speed_sum += p.speed_sum;
            speed_weight += p.speed_weight;
            occupancy_sum += p.occupancy_sum;
            occupancy_n += p.occupancy_n;
            samples += p.samples;
            i += 1;
        }
        out.push(StationBucket {
            bucket_ms: (first + key.0) * step_ms,
            detector: names[by_name[key.1]].clone(),
            volume,
            speed_kmh: (speed_weight > 0).then(|| speed_sum / speed_weight as f64),
            occupancy_pct: (occupancy_n > 0).then(|| occupancy_sum / occupancy_n as f64),
            samples,
        });
    }
    out
}

impl Store {
    /// Every station's speed and volume per `step_ms` bucket in
    /// `[from_ms, to_ms)`, ordered by bucket then station. `step_ms` must be
    /// positive; buckets start at multiples of it (epoch-aligned).
    pub async fn station_history(
        &self,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<StationBucket>> {
        let step = step_ms.max(1);
        let mut parts = Parts::default();
        let rolled: Vec<RolledUp> = on_pool!(self, p => sqlx::query_as(ROLLED_UP)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(p)
            .await)
        .map_err(db("station_history", "obs_5min"))?;
        parts.rolled_up(rolled);
        let rows: Vec<PackedText> = on_pool!(self, p => sqlx::query_as(PACKED)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(p)
            .await)
        .map_err(db("station_history", "obs_packed"))?;
        parts.packed_text(rows).map_err(|e| crate::StoreError::Db {
            op: "station_history",
            table: "obs_packed",
            source: sqlx::Error::Decode(e.into()),
        })?;
        Ok(buckets(parts, step))
    }
}
