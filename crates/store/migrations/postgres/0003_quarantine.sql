-- Rows refused for their time (dated ahead of the server's clock, or
-- before 2000: a device without a clock), kept for an operator to see
-- (same change as ../sqlite/0003_quarantine.sql). Bounded by the server.
CREATE TABLE quarantine (
    id       BIGSERIAL PRIMARY KEY,
    wall_ms  BIGINT NOT NULL,
    kind     TEXT   NOT NULL,
    source   TEXT   NOT NULL,
    ts_ms    BIGINT NOT NULL,
    reason   TEXT   NOT NULL,
    row_json TEXT   NOT NULL
);
CREATE INDEX quarantine_wall ON quarantine (wall_ms);
