-- The station roll-up packed per reading time (issue 17; same change as
-- ../sqlite/0009_obs_packed.sql): one row per
-- time holding every station's sums as text — stations separated by
-- U+001E, their fields (detector, volume, speed_sum, speed_weight,
-- occupancy_sum, occupancy_n, samples, as in obs_station) by U+001F —
-- rewritten from obs_station in the same transaction whenever a batch
-- touches that time, removed with it by retention. The time–space query
-- reads 540 of these for 3 hours of the demo corridor instead of 64,260
-- station rows: per-row work in the database, not the scan, was its cost.
CREATE TABLE obs_packed (
    ts_ms    BIGINT PRIMARY KEY,
    stations TEXT    NOT NULL
);

INSERT INTO obs_packed (ts_ms, stations)
SELECT ts_ms, string_agg(detector || chr(31) || volume || chr(31) || speed_sum || chr(31) || speed_weight || chr(31) || occupancy_sum || chr(31) || occupancy_n || chr(31) || samples, chr(30))
FROM obs_station GROUP BY ts_ms;
