-- JT/T 808 terminals registered through the gateway (same change as
-- ../sqlite/0002_terminals.sql). The auth code is stored as its SHA-256.
CREATE TABLE terminals (
    phone              TEXT   PRIMARY KEY,
    plate              TEXT   NOT NULL,
    terminal_id        TEXT   NOT NULL,
    auth_hash          TEXT   NOT NULL,
    registered_wall_ms BIGINT NOT NULL
);
