-- Rows refused for their time (dated ahead of the server's clock, or
-- before 2000: a device without a clock), kept for an operator to see
-- (same change as ../postgres/0003_quarantine.sql). Bounded by the server.
CREATE TABLE quarantine (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    wall_ms  INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    source   TEXT    NOT NULL,
    ts_ms    INTEGER NOT NULL,
    reason   TEXT    NOT NULL,
    row_json TEXT    NOT NULL
) STRICT;
CREATE INDEX quarantine_wall ON quarantine (wall_ms);
