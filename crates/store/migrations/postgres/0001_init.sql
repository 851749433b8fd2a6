-- zhilu store schema, PostgreSQL flavour. The SQLite flavour in
-- ../sqlite/0001_init.sql holds the same tables, columns and rules; keep
-- them in step (same file name, same logical change).
--
-- Times are BIGINT epoch milliseconds: *_ms / ts_ms / at_ms are data time,
-- *_wall_ms the server's clock.

-- Raw readings: seq is the global ingest order, unique across the four tables.
CREATE TABLE obs (
    seq           BIGINT   PRIMARY KEY,
    ts_ms         BIGINT   NOT NULL,
    detector      TEXT     NOT NULL,
    lane          SMALLINT NOT NULL,
    interval_s    INTEGER  NOT NULL,
    volume        INTEGER  NOT NULL,
    speed_kmh     DOUBLE PRECISION,
    occupancy_pct DOUBLE PRECISION
);
CREATE INDEX obs_ts ON obs (ts_ms);

CREATE TABLE weather (
    seq            BIGINT PRIMARY KEY,
    ts_ms          BIGINT NOT NULL,
    station        TEXT   NOT NULL,
    visibility_m   DOUBLE PRECISION,
    surface_temp_c DOUBLE PRECISION,
    air_temp_c     DOUBLE PRECISION,
    humidity_pct   DOUBLE PRECISION,
    surface_state  TEXT   NOT NULL
);
CREATE INDEX weather_ts ON weather (ts_ms);

CREATE TABLE positions (
    seq         BIGINT PRIMARY KEY,
    ts_ms       BIGINT NOT NULL,
    vehicle     TEXT   NOT NULL,
    class       TEXT   NOT NULL,
    lat         DOUBLE PRECISION NOT NULL,
    lon         DOUBLE PRECISION NOT NULL,
    speed_kmh   DOUBLE PRECISION,
    heading_deg DOUBLE PRECISION
);
CREATE INDEX positions_ts ON positions (ts_ms);

CREATE TABLE camera (
    seq        BIGINT   PRIMARY KEY,
    ts_ms      BIGINT   NOT NULL,
    camera     TEXT     NOT NULL,
    kind       TEXT     NOT NULL,
    direction  TEXT     NOT NULL,
    stake_m    DOUBLE PRECISION NOT NULL,
    lane       SMALLINT,
    confidence DOUBLE PRECISION NOT NULL
);
CREATE INDEX camera_ts ON camera (ts_ms);

-- Roll-ups kept after retention. bucket_ms is the END of the 5-minute bucket
-- (a reading belongs to the bucket ending at or after its time). Means are
-- stored with their weights so a later pass can merge into the same bucket.
CREATE TABLE obs_5min (
    bucket_ms     BIGINT   NOT NULL,
    detector      TEXT     NOT NULL,
    lane          SMALLINT NOT NULL,
    volume        BIGINT   NOT NULL,           -- sum of volume
    speed_kmh     DOUBLE PRECISION,            -- volume-weighted mean speed
    speed_weight  BIGINT   NOT NULL,           -- sum of volume over rows with a speed
    occupancy_pct DOUBLE PRECISION,            -- mean occupancy
    occupancy_n   BIGINT   NOT NULL,           -- rows with an occupancy
    samples       BIGINT   NOT NULL,           -- raw rows rolled up
    PRIMARY KEY (bucket_ms, detector, lane)
);

CREATE TABLE weather_5min (
    bucket_ms          BIGINT NOT NULL,
    station            TEXT   NOT NULL,
    visibility_min_m   DOUBLE PRECISION,
    surface_temp_min_c DOUBLE PRECISION,
    air_temp_mean_c    DOUBLE PRECISION,
    air_temp_n         BIGINT NOT NULL,
    humidity_mean_pct  DOUBLE PRECISION,
    humidity_n         BIGINT NOT NULL,
    surface_state      TEXT   NOT NULL,        -- last non-empty state, or empty
    surface_state_ms   BIGINT,                 -- time of that state (for merging)
    samples            BIGINT NOT NULL,
    PRIMARY KEY (bucket_ms, station)
);

-- Events and decisions (never touched by retention).
CREATE TABLE events (
    id              TEXT     PRIMARY KEY,
    kind            TEXT     NOT NULL,
    direction       TEXT     NOT NULL,
    from_m          DOUBLE PRECISION NOT NULL,
    to_m            DOUBLE PRECISION NOT NULL,
    start_ms        BIGINT   NOT NULL,
    detected_ms     BIGINT   NOT NULL,
    end_ms          BIGINT,
    severity        SMALLINT NOT NULL,
    rule            TEXT     NOT NULL,
    "key"           TEXT     NOT NULL,
    json            TEXT     NOT NULL,
    updated_wall_ms BIGINT   NOT NULL
);
CREATE INDEX events_active ON events (detected_ms) WHERE end_ms IS NULL;
CREATE INDEX events_detected ON events (detected_ms);

CREATE TABLE event_changes (
    seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT   NOT NULL REFERENCES events (id),
    change   TEXT   NOT NULL,
    at_ms    BIGINT NOT NULL,
    wall_ms  BIGINT NOT NULL,
    json     TEXT   NOT NULL
);
CREATE INDEX event_changes_event ON event_changes (event_id, seq);

CREATE TABLE actions (
    id          BIGINT PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    wall_ms     BIGINT NOT NULL,
    device      TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    json        TEXT   NOT NULL,
    event_id    TEXT,
    reason      TEXT   NOT NULL,
    mode        TEXT   NOT NULL,
    proposal_id BIGINT
);
CREATE INDEX actions_wall ON actions (wall_ms);

CREATE TABLE proposals (
    id              BIGINT PRIMARY KEY,
    created_wall_ms BIGINT NOT NULL,
    expires_wall_ms BIGINT NOT NULL,
    at_ms           BIGINT NOT NULL,
    device          TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    json            TEXT   NOT NULL,
    event_id        TEXT,
    reason          TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    decided_by      TEXT,
    decided_wall_ms BIGINT,
    decision_reason TEXT,
    final_json      TEXT
);
CREATE INDEX proposals_status ON proposals (status, expires_wall_ms);

-- Append-only audit log: the database itself refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wall_ms BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    target  TEXT   NOT NULL,
    detail  TEXT   NOT NULL
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only';
END;
$$;
CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Accounts.
CREATE TABLE users (
    name            TEXT    PRIMARY KEY,
    role            TEXT    NOT NULL,
    pw_hash         TEXT    NOT NULL,
    created_wall_ms BIGINT  NOT NULL,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE sessions (
    token_hash      TEXT   PRIMARY KEY,
    user_name       TEXT   NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_wall_ms BIGINT NOT NULL,
    expires_wall_ms BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_wall_ms);

-- What each device last confirmed.
CREATE TABLE device_states (
    device            TEXT    PRIMARY KEY,
    state_json        TEXT    NOT NULL,
    confirmed_wall_ms BIGINT,
    online            BOOLEAN NOT NULL,
    last_seen_wall_ms BIGINT,
    pending_json      TEXT,
    updated_wall_ms   BIGINT  NOT NULL
);

CREATE TABLE state_snapshots (
    id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    json  TEXT   NOT NULL
);
CREATE INDEX state_snapshots_ts ON state_snapshots (ts_ms);

-- Small key/value facts: last_tick_ms, reading_seq_hwm (highest seq ever
-- rolled up or archived, so seq never goes back after retention).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
