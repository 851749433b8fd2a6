-- A reading is stored once (same change as ../sqlite/0004_reading_keys.sql).
-- Each raw reading has a natural key — what was measured, where and when —
-- unique in its table: a batch re-sent after a lost acknowledgement, or a
-- replay of the same rows, finds its rows already there and the insert
-- skips them (ON CONFLICT DO NOTHING). Copies stored before this change
-- are removed first (the one with the lowest seq, the first stored, stays).
-- The new keys begin with ts_ms, so they replace the time indexes.
DELETE FROM obs WHERE seq NOT IN
    (SELECT MIN(seq) FROM obs GROUP BY ts_ms, detector, lane);
DELETE FROM weather WHERE seq NOT IN
    (SELECT MIN(seq) FROM weather GROUP BY ts_ms, station);
DELETE FROM positions WHERE seq NOT IN
    (SELECT MIN(seq) FROM positions GROUP BY ts_ms, vehicle);
DELETE FROM camera WHERE seq NOT IN
    (SELECT MIN(seq) FROM camera
     GROUP BY ts_ms, camera, kind, direction, COALESCE(lane, -1));
DROP INDEX obs_ts;
DROP INDEX weather_ts;
DROP INDEX positions_ts;
DROP INDEX camera_ts;
CREATE UNIQUE INDEX obs_key ON obs (ts_ms, detector, lane);
CREATE UNIQUE INDEX weather_key ON weather (ts_ms, station);
CREATE UNIQUE INDEX positions_key ON positions (ts_ms, vehicle);
CREATE UNIQUE INDEX camera_key ON camera
    (ts_ms, camera, kind, direction, COALESCE(lane, -1));
