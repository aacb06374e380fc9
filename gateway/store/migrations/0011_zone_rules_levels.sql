-- Issue #5, items 4 and 5: per-zone capacity mode and gathering watch; campus response levels.

-- Capacity: `enforce` denies with zone_full at capacity; `alert` admits and raises zone_full.
-- Gathering: an alert when the zone holds at least gathering_threshold people for
-- gathering_minutes (no threshold: no watch).
ALTER TABLE zones
    ADD COLUMN capacity_mode text NOT NULL DEFAULT 'enforce'
        CHECK (capacity_mode IN ('enforce', 'alert')),
    ADD COLUMN gathering_threshold integer CHECK (gathering_threshold IS NULL OR gathering_threshold >= 1),
    ADD COLUMN gathering_minutes integer NOT NULL DEFAULT 10
        CHECK (gathering_minutes >= 0 AND gathering_minutes <= 1440);

-- Named response levels: what each one tightens. Administrators define and edit them.
CREATE TABLE response_levels (
    name                text PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]{1,40}$'),
    rank                integer NOT NULL DEFAULT 0,  -- display order, and "how strict"
    title_zh            text NOT NULL,
    title_en            text NOT NULL,
    description         text NOT NULL DEFAULT '',
    bar_visitors        boolean NOT NULL DEFAULT false,  -- visitors: not_authorized
    require_temperature boolean NOT NULL DEFAULT false,  -- every door as if requires_temperature
    capacity_factor     numeric(4, 3) NOT NULL DEFAULT 1
        CHECK (capacity_factor > 0 AND capacity_factor <= 1),  -- floor(capacity x factor)
    labs_named_only     boolean NOT NULL DEFAULT false,  -- labs: only grants to a person count
    updated_by          text NOT NULL DEFAULT 'migration',
    updated_at          timestamptz NOT NULL DEFAULT now()
);

INSERT INTO response_levels
    (name, rank, title_zh, title_en, description,
     bar_visitors, require_temperature, capacity_factor, labs_named_only)
VALUES
    ('normal', 0, '常态', 'Normal', 'Everyday rules.', false, false, 1, false),
    ('elevated', 1, '加强防控', 'Elevated',
     'Temperature at every door; capacities at three quarters.', false, true, 0.75, false),
    ('lockdown', 2, '封闭管理', 'Lockdown',
     'Visitors barred; temperature at every door; capacities halved; '
     'labs open only to people named in a grant.', true, true, 0.5, true);

-- The active level: one campus-wide row (zone_id NULL) and a row per zone that has its own.
-- A zone's effective rules are the stricter of both (see gateway/domain/levels.py).
CREATE TABLE response_level_state (
    zone_id text UNIQUE REFERENCES zones (id) ON DELETE CASCADE,
    level   text NOT NULL REFERENCES response_levels (name) ON DELETE RESTRICT,
    set_by  text NOT NULL,
    set_at  timestamptz NOT NULL DEFAULT now(),
    note    text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX response_level_state_campus ON response_level_state ((zone_id IS NULL))
    WHERE zone_id IS NULL;
INSERT INTO response_level_state (zone_id, level, set_by, note)
    VALUES (NULL, 'normal', 'migration', 'initial level');

-- Every change of an active level, never rewritten (the audit log has it too).
CREATE TABLE response_level_changes (
    id         bigserial PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL,
    zone_id    text,            -- NULL: campus-wide (no FK: history outlives a zone)
    from_level text,            -- NULL: the zone had no level of its own
    to_level   text,            -- NULL: the zone's own level was cleared
    note       text NOT NULL DEFAULT ''
);
CREATE INDEX response_level_changes_at ON response_level_changes (changed_at);

CREATE TRIGGER response_level_changes_append_only BEFORE UPDATE OR DELETE
    ON response_level_changes FOR EACH ROW EXECUTE FUNCTION campusgate_append_only();
CREATE TRIGGER response_level_changes_no_truncate BEFORE TRUNCATE ON response_level_changes
    FOR EACH STATEMENT EXECUTE FUNCTION campusgate_append_only();

-- The gateways reload the levels (only) when these change.
SELECT campusgate_watch_roster('response_levels');
SELECT campusgate_watch_roster('response_level_state');
