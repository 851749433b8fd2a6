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

/// Raw rows and roll-ups, bucketed by `$3` ms from `$1` (inclusive) to `$2`
/// (exclusive). A roll-up's `bucket_ms` is the end of its 5 minutes, so it
/// is placed by `bucket_ms - 1`. Speeds outside 0–250 km/h are ignored.
const SQL: &str = "\
SELECT b AS bucket_ms, detector, \
       CAST(SUM(vol) AS BIGINT) AS volume, \
       SUM(sw * spd) / NULLIF(SUM(sw), 0) AS speed_kmh, \
       SUM(occ) / NULLIF(SUM(occ_n), 0) AS occupancy_pct, \
       CAST(SUM(n) AS BIGINT) AS samples \
FROM ( \
    SELECT (ts_ms / $3) * $3 AS b, detector, volume AS vol, \
           CASE WHEN speed_kmh IS NULL OR speed_kmh < 0 OR speed_kmh > 250 THEN 0 \
                WHEN volume < 1 THEN 1 ELSE volume END AS sw, \
           CASE WHEN speed_kmh IS NULL OR speed_kmh < 0 OR speed_kmh > 250 THEN 0.0 \
                ELSE speed_kmh END AS spd, \
           COALESCE(occupancy_pct, 0.0) AS occ, \
           CASE WHEN occupancy_pct IS NULL THEN 0 ELSE 1 END AS occ_n, \
           1 AS n \
    FROM obs WHERE ts_ms >= $1 AND ts_ms < $2 \
    UNION ALL \
    SELECT ((bucket_ms - 1) / $3) * $3 AS b, detector, volume AS vol, \
           CASE WHEN speed_kmh IS NULL THEN 0 WHEN speed_weight < 1 THEN 1 \
                ELSE speed_weight END AS sw, \
           COALESCE(speed_kmh, 0.0) AS spd, \
           COALESCE(occupancy_pct, 0.0) * occupancy_n AS occ, \
           occupancy_n AS occ_n, samples AS n \
    FROM obs_5min WHERE bucket_ms > $1 AND bucket_ms <= $2 \
) r \
GROUP BY b, detector \
ORDER BY b, detector";

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
        on_pool!(self, p => sqlx::query_as(SQL)
            .bind(from_ms)
            .bind(to_ms)
            .bind(step)
            .fetch_all(p)
            .await)
        .map_err(db("station_history", "obs"))
    }
}
