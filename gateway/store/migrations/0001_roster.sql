-- The campus roster: org units, zones, doors, devices, people, cards, grants.
-- Every roster table tells listeners when it changed (channel campusgate_roster),
-- but only when a statement really touched rows, so an idempotent re-import is silent.

CREATE FUNCTION campusgate_notify_roster() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        PERFORM pg_notify('campusgate_roster', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION campusgate_notify_roster_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('campusgate_roster', TG_TABLE_NAME);
    RETURN NULL;
END $$;

-- Attach the three statement-level triggers (transition tables allow one event each).
CREATE FUNCTION campusgate_watch_roster(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS changed '
                   'FOR EACH STATEMENT EXECUTE FUNCTION campusgate_notify_roster()',
                   tbl::text || '_notify_ins', tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING NEW TABLE AS changed '
                   'FOR EACH STATEMENT EXECUTE FUNCTION campusgate_notify_roster()',
                   tbl::text || '_notify_upd', tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS changed '
                   'FOR EACH STATEMENT EXECUTE FUNCTION campusgate_notify_roster()',
                   tbl::text || '_notify_del', tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION campusgate_notify_roster_truncate()',
                   tbl::text || '_notify_trunc', tbl);
END $$;

-- Append-only tables refuse UPDATE and DELETE. A retention job may delete old rows
-- after `SET LOCAL campusgate.retention_purge = 'on'`; nothing may rewrite a row.
CREATE FUNCTION campusgate_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('campusgate.retention_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TABLE org_units (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    parent_id  text REFERENCES org_units (id) ON DELETE RESTRICT,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS DISTINCT FROM id)
);
CREATE INDEX org_units_parent ON org_units (parent_id);

CREATE TABLE zones (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('dormitory', 'lab', 'office', 'teaching', 'gate', 'other')),
    capacity   integer CHECK (capacity IS NULL OR capacity >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE doors (
    id                   text PRIMARY KEY,
    zone_id              text NOT NULL REFERENCES zones (id) ON DELETE RESTRICT,
    direction            text NOT NULL DEFAULT 'both' CHECK (direction IN ('in', 'out', 'both')),
    requires_temperature boolean NOT NULL DEFAULT false,
    name                 text,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX doors_zone ON doors (zone_id);

-- Roster columns only: what a device is and where it hangs. Its live state
-- (online, last_seen, firmware) is in device_status so heartbeats never reload the roster.
CREATE TABLE devices (
    id         text PRIMARY KEY,
    door_id    text NOT NULL REFERENCES doors (id) ON DELETE RESTRICT,
    kind       text NOT NULL
               CHECK (kind IN ('terminal', 'card_reader', 'temperature_scanner', 'thermal_camera')),
    transport  text NOT NULL DEFAULT 'mqtt' CHECK (transport IN ('mqtt', 'serial')),
    port       text,
    protocol   text CHECK (protocol IS NULL OR protocol IN ('rdm6300', 'wiegand', 'osdp')),
    baud       integer CHECK (baud IS NULL OR baud > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_door ON devices (door_id);

CREATE TABLE device_status (
    device_id text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    online    boolean NOT NULL DEFAULT false,
    last_seen timestamptz,
    firmware  text
);

CREATE TABLE people (
    id          text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('student', 'staff', 'visitor')),
    name        text NOT NULL,
    org_unit_id text REFERENCES org_units (id) ON DELETE RESTRICT,
    active      boolean NOT NULL DEFAULT true,
    valid_until timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX people_org_unit ON people (org_unit_id);

CREATE TABLE cards (
    uid         text PRIMARY KEY CHECK (uid ~ '^([0-9A-F]{8}|[0-9A-F]{10}|[0-9A-F]{14}|[0-9A-F]{20})$'),
    person_id   text NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    revoked     boolean NOT NULL DEFAULT false,
    valid_until timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cards_person ON cards (person_id);

CREATE TABLE grants (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_person   text REFERENCES people (id) ON DELETE CASCADE,
    subject_org_unit text REFERENCES org_units (id) ON DELETE CASCADE,
    subject_kind     text CHECK (subject_kind IN ('student', 'staff', 'visitor')),
    subject_key      text NOT NULL GENERATED ALWAYS AS (
        CASE
            WHEN subject_person IS NOT NULL THEN 'person:' || subject_person
            WHEN subject_org_unit IS NOT NULL THEN 'org_unit:' || subject_org_unit
            ELSE 'kind:' || subject_kind
        END) STORED,
    zone_id          text NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    schedule         text,
    valid_from       timestamptz,
    valid_until      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(subject_person, subject_org_unit, subject_kind) = 1),
    UNIQUE (subject_key, zone_id)
);
CREATE INDEX grants_zone ON grants (zone_id);

SELECT campusgate_watch_roster('org_units');
SELECT campusgate_watch_roster('zones');
SELECT campusgate_watch_roster('doors');
SELECT campusgate_watch_roster('devices');
SELECT campusgate_watch_roster('people');
SELECT campusgate_watch_roster('cards');
SELECT campusgate_watch_roster('grants');
