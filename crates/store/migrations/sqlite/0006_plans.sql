-- Response plans (处置预案), same change as ../postgres/0006_plans.sql: the
-- brain's proposals for one event (or one cause when there is no event)
-- made in one decision pass form one plan; steps that come later for the
-- same event while the plan is still pending join it. A plan's id is the id
-- of its first proposal; its status is derived from its steps' statuses.
CREATE TABLE plans (
    id              INTEGER PRIMARY KEY,
    created_wall_ms INTEGER NOT NULL,
    updated_wall_ms INTEGER NOT NULL,
    at_ms           INTEGER NOT NULL,   -- data time of the pass that made it
    event_id        TEXT,               -- the event it answers, if any
    cause           TEXT    NOT NULL,   -- grouping key: the event id, else the rule
    name            TEXT    NOT NULL    -- 名称, e.g. "团雾 K45+200–K52+000 下行 处置预案"
) STRICT;
CREATE INDEX plans_event ON plans (event_id);

-- Each proposal is a step of one plan (NULL for proposals made before 0006).
ALTER TABLE proposals ADD COLUMN plan_id INTEGER;
CREATE INDEX proposals_plan ON proposals (plan_id, id);
