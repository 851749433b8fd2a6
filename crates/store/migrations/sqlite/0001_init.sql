-- zhilu store schema, SQLite flavour. The PostgreSQL flavour in
-- ../postgres/0001_init.sql holds the same tables, columns and rules; keep
-- them in step (same file name, same logical change).
--
-- Times are BIGINT-range epoch milliseconds: *_ms / ts_ms / at_ms are data
-- time, *_wall_ms the server's clock. Tables are STRICT so a wrongly typed
-- bind fails here as it would in PostgreSQL. `seq INTEGER PRIMARY KEY` is
-- SQLite's 64-bit rowid (no second index).

-- Raw readings: seq is the global ingest order, unique across the four tables.
CREATE TABLE obs (
    seq           INTEGER PRIMARY KEY,
    ts_ms         INTEGER NOT NULL,
    detector      TEXT    NOT NULL,
    lane          INTEGER NOT NULL,
    interval_s    INTEGER NOT NULL,
    volume        INTEGER NOT NULL,
    speed_kmh     REAL,
    occupancy_pct REAL
) STRICT;
CREATE INDEX obs_ts ON obs (ts_ms);

CREATE TABLE weather (
    seq            INTEGER PRIMARY KEY,
    ts_ms          INTEGER NOT NULL,
    station        TEXT    NOT NULL,
    visibility_m   REAL,
    surface_temp_c REAL,
    air_temp_c     REAL,
    humidity_pct   REAL,
    surface_state  TEXT    NOT NULL
) STRICT;
CREATE INDEX weather_ts ON weather (ts_ms);

CREATE TABLE positions (
    seq         INTEGER PRIMARY KEY,
    ts_ms       INTEGER NOT NULL,
    vehicle     TEXT    NOT NULL,
    class       TEXT    NOT NULL,
    lat         REAL    NOT NULL,
    lon         REAL    NOT NULL,
    speed_kmh   REAL,
    heading_deg REAL
) STRICT;
CREATE INDEX positions_ts ON positions (ts_ms);

CREATE TABLE camera (
    seq        INTEGER PRIMARY KEY,
    ts_ms      INTEGER NOT NULL,
    camera     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    direction  TEXT    NOT NULL,
    stake_m    REAL    NOT NULL,
    lane       INTEGER,
    confidence REAL    NOT NULL
) STRICT;
CREATE INDEX camera_ts ON camera (ts_ms);

-- Roll-ups kept after retention. bucket_ms is the END of the 5-minute bucket
-- (a reading belongs to the bucket ending at or after its time). Means are
-- stored with their weights so a later pass can merge into the same bucket.
CREATE TABLE obs_5min (
    bucket_ms     INTEGER NOT NULL,
    detector      TEXT    NOT NULL,
    lane          INTEGER NOT NULL,
    volume        INTEGER NOT NULL,        -- sum of volume
    speed_kmh     REAL,                    -- volume-weighted mean speed
    speed_weight  INTEGER NOT NULL,        -- sum of volume over rows with a speed
    occupancy_pct REAL,                    -- mean occupancy
    occupancy_n   INTEGER NOT NULL,        -- rows with an occupancy
    samples       INTEGER NOT NULL,        -- raw rows rolled up
    PRIMARY KEY (bucket_ms, detector, lane)
) STRICT;

CREATE TABLE weather_5min (
    bucket_ms          INTEGER NOT NULL,
    station            TEXT    NOT NULL,
    visibility_min_m   REAL,
    surface_temp_min_c REAL,
    air_temp_mean_c    REAL,
    air_temp_n         INTEGER NOT NULL,
    humidity_mean_pct  REAL,
    humidity_n         INTEGER NOT NULL,
    surface_state      TEXT    NOT NULL,   -- last non-empty state, or empty
    surface_state_ms   INTEGER,            -- time of that state (for merging)
    samples            INTEGER NOT NULL,
    PRIMARY KEY (bucket_ms, station)
) STRICT;

-- Events and decisions (never touched by retention).
CREATE TABLE events (
    id              TEXT    PRIMARY KEY,
    kind            TEXT    NOT NULL,
    direction       TEXT    NOT NULL,
    from_m          REAL    NOT NULL,
    to_m            REAL    NOT NULL,
    start_ms        INTEGER NOT NULL,
    detected_ms     INTEGER NOT NULL,
    end_ms          INTEGER,
    severity        INTEGER NOT NULL,
    rule            TEXT    NOT NULL,
    "key"           TEXT    NOT NULL,
    json            TEXT    NOT NULL,
    updated_wall_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX events_active ON events (detected_ms) WHERE end_ms IS NULL;
CREATE INDEX events_detected ON events (detected_ms);

CREATE TABLE event_changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT    NOT NULL REFERENCES events (id),
    change   TEXT    NOT NULL,
    at_ms    INTEGER NOT NULL,
    wall_ms  INTEGER NOT NULL,
    json     TEXT    NOT NULL
) STRICT;
CREATE INDEX event_changes_event ON event_changes (event_id, seq);

CREATE TABLE actions (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    wall_ms     INTEGER NOT NULL,
    device      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    json        TEXT    NOT NULL,
    event_id    TEXT,
    reason      TEXT    NOT NULL,
    mode        TEXT    NOT NULL,
    proposal_id INTEGER
) STRICT;
CREATE INDEX actions_wall ON actions (wall_ms);

CREATE TABLE proposals (
    id              INTEGER PRIMARY KEY,
    created_wall_ms INTEGER NOT NULL,
    expires_wall_ms INTEGER NOT NULL,
    at_ms           INTEGER NOT NULL,
    device          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    json            TEXT    NOT NULL,
    event_id        TEXT,
    reason          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    decided_by      TEXT,
    decided_wall_ms INTEGER,
    decision_reason TEXT,
    final_json      TEXT
) STRICT;
CREATE INDEX proposals_status ON proposals (status, expires_wall_ms);

-- Append-only audit log: the database itself refuses UPDATE and DELETE.
CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    wall_ms INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    detail  TEXT    NOT NULL
) STRICT;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

-- Accounts.
CREATE TABLE users (
    name            TEXT    PRIMARY KEY,
    role            TEXT    NOT NULL,
    pw_hash         TEXT    NOT NULL,
    created_wall_ms INTEGER NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;

CREATE TABLE sessions (
    token_hash      TEXT    PRIMARY KEY,
    user_name       TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_wall_ms INTEGER NOT NULL,
    expires_wall_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expires ON sessions (expires_wall_ms);

-- What each device last confirmed.
CREATE TABLE device_states (
    device            TEXT    PRIMARY KEY,
    state_json        TEXT    NOT NULL,
    confirmed_wall_ms INTEGER,
    online            INTEGER NOT NULL CHECK (online IN (0, 1)),
    last_seen_wall_ms INTEGER,
    pending_json      TEXT,
    updated_wall_ms   INTEGER NOT NULL
) STRICT;

CREATE TABLE state_snapshots (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    json  TEXT    NOT NULL
) STRICT;
CREATE INDEX state_snapshots_ts ON state_snapshots (ts_ms);

-- Small key/value facts: last_tick_ms, reading_seq_hwm (highest seq ever
-- rolled up or archived, so seq never goes back after retention).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
