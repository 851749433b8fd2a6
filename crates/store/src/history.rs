//! Station history for the console's time–space diagram and for training
//! the forecaster: each detector station's speed and volume per time bucket,
//! summed over its lanes, from the raw readings and, where retention has
//! rolled them up, from the 5-minute roll-ups.

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

/// Station rows (`obs_station`, one per station and reading time) from
/// `$1` (inclusive) to `$2` (exclusive), and the 5-minute roll-ups left by
/// retention, as (time, station, sums). A roll-up's `bucket_ms` is the end
/// of its 5 minutes, so it is placed at `bucket_ms - 1`; its speed weighs
/// as its `speed_weight` (at least one when it has a speed), like the raw
/// rows it came from. Both read by primary key ranges: no grouping or
/// sorting in the database (3 hours of the demo corridor in 20-second
/// buckets: 64,260 station rows).
const SQL: &str = "\
SELECT ts_ms AS t, detector, volume, speed_sum, speed_weight, occupancy_sum, occupancy_n, \
       samples \
FROM obs_station WHERE ts_ms >= $1 AND ts_ms < $2 \
UNION ALL \
SELECT bucket_ms - 1 AS t, detector, volume, \
       COALESCE(speed_kmh, 0.0) * (CASE WHEN speed_kmh IS NULL THEN 0 \
           WHEN speed_weight < 1 THEN 1 ELSE speed_weight END) AS speed_sum, \
       CASE WHEN speed_kmh IS NULL THEN 0 WHEN speed_weight < 1 THEN 1 \
           ELSE speed_weight END AS speed_weight, \
       COALESCE(occupancy_pct, 0.0) * occupancy_n AS occupancy_sum, occupancy_n, samples \
FROM obs_5min WHERE bucket_ms > $1 AND bucket_ms <= $2";

/// One row of [`SQL`].
#[derive(sqlx::FromRow)]
struct Part {
    t: i64,
    detector: String,
    volume: i64,
    speed_sum: f64,
    speed_weight: i64,
    occupancy_sum: f64,
    occupancy_n: i64,
    samples: i64,
}

/// The parts summed per (bucket, station), ordered by bucket then station.
/// Stations are numbered in name order and each part keyed by (bucket
/// index, station number), so summing is a sort of plain keys and one
/// pass — no string keys hashed or compared per row.
fn buckets(parts: Vec<Part>, step_ms: i64) -> Vec<StationBucket> {
    let Some(first) = parts.iter().map(|p| p.t.div_euclid(step_ms)).min() else {
        return Vec::new();
    };
    let mut names: Vec<&str> = parts.iter().map(|p| p.detector.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let rank: std::collections::HashMap<&str, usize> =
        names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut keyed: Vec<((i64, usize), usize)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                (p.t.div_euclid(step_ms) - first, rank[p.detector.as_str()]),
                i,
            )
        })
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
            detector: names[key.1].to_string(),
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
        let parts: Vec<Part> = on_pool!(self, p => sqlx::query_as(SQL)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(p)
            .await)
        .map_err(db("station_history", "obs_station, obs_5min"))?;
        Ok(buckets(parts, step))
    }
}
