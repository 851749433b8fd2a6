-- The clocks' judgement survives a restart (issue 19): each source whose
-- clock is off, why, since when, when it last sent a row out of time, and
-- its open `source_clock` event, so a restart neither ends that event nor
-- forgets the fault (same change as ../sqlite/0008_source_clocks.sql).
-- Written by the server whenever the set changes; small (one row a source
-- that is off now).
CREATE TABLE source_clocks (
    source            TEXT   PRIMARY KEY,
    why               TEXT   NOT NULL,
    ahead_ms          BIGINT,
    first_bad_wall_ms BIGINT NOT NULL,
    last_bad_wall_ms  BIGINT NOT NULL,
    event_id          TEXT
);
