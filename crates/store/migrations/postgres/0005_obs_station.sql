-- Station roll-up of the raw detector rows (same change as
-- ../sqlite/0005_obs_station.sql): one row per station and reading time,
-- summed over its lanes, written with the raw rows in the same transaction
-- and removed with them by retention. The time–space diagram and the
-- forecaster's history read it instead of grouping the raw rows (3 hours
-- of the demo corridor: 64,260 rows instead of 192,780 to group and sort).
-- Speeds outside 0–250 km/h count as none; a row with a speed and no
-- vehicles weighs as one (a standing queue still has a speed).
CREATE TABLE obs_station (
    ts_ms         BIGINT NOT NULL,
    detector      TEXT    NOT NULL,
    volume        BIGINT NOT NULL,   -- sum of volume
    speed_sum     DOUBLE PRECISION    NOT NULL,   -- sum of weight × speed
    speed_weight  BIGINT NOT NULL,   -- sum of weights (rows with a plausible speed)
    occupancy_sum DOUBLE PRECISION    NOT NULL,   -- sum of occupancy
    occupancy_n   BIGINT NOT NULL,   -- rows with an occupancy
    samples       BIGINT NOT NULL,   -- raw rows
    PRIMARY KEY (ts_ms, detector)
);

INSERT INTO obs_station (ts_ms, detector, volume, speed_sum, speed_weight,
    occupancy_sum, occupancy_n, samples)
SELECT ts_ms, detector, SUM(volume),
    SUM(CASE WHEN speed_kmh IS NULL OR speed_kmh < 0 OR speed_kmh > 250 THEN 0.0
             WHEN volume < 1 THEN speed_kmh ELSE speed_kmh * volume END),
    SUM(CASE WHEN speed_kmh IS NULL OR speed_kmh < 0 OR speed_kmh > 250 THEN 0
             WHEN volume < 1 THEN 1 ELSE volume END),
    SUM(COALESCE(occupancy_pct, 0.0)),
    SUM(CASE WHEN occupancy_pct IS NULL THEN 0 ELSE 1 END),
    COUNT(*)
FROM obs GROUP BY ts_ms, detector;
