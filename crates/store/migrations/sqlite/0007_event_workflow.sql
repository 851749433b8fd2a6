-- The operators' workflow on events and the shift handover (交接班); same
-- change as ../postgres/0007_event_workflow.sql. What the brain detects
-- stays in `events` / `event_changes`; what people did to an event
-- (acknowledge, assign, note, close) is kept here, and each step is also
-- a line of the event's history (`event_changes`) and of the audit log.
CREATE TABLE event_workflow (
    event_id         TEXT    PRIMARY KEY REFERENCES events (id),
    status           TEXT    NOT NULL CHECK (status IN ('open', 'acknowledged', 'closed')),
    acked_by         TEXT,
    acked_wall_ms    INTEGER,
    assigned_to      TEXT,
    assigned_by      TEXT,
    assigned_wall_ms INTEGER,
    closed_by        TEXT,
    closed_wall_ms   INTEGER,
    close_reason     TEXT,
    updated_wall_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE event_notes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT    NOT NULL REFERENCES events (id),
    wall_ms  INTEGER NOT NULL,
    author   TEXT    NOT NULL,
    text     TEXT    NOT NULL
) STRICT;
CREATE INDEX event_notes_event ON event_notes (event_id, seq);
CREATE INDEX event_notes_wall ON event_notes (wall_ms);

-- The shift log goes by server time of the changes.
CREATE INDEX event_changes_wall ON event_changes (wall_ms);

-- A signed handover: the log the outgoing operator signed (as JSON, as it
-- stood), and the incoming operator's acknowledgement.
CREATE TABLE handovers (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    from_wall_ms   INTEGER NOT NULL,
    signed_wall_ms INTEGER NOT NULL,
    signed_by      TEXT    NOT NULL,
    note           TEXT    NOT NULL,
    log_json       TEXT    NOT NULL,
    acked_by       TEXT,
    acked_wall_ms  INTEGER,
    ack_note       TEXT
) STRICT;
