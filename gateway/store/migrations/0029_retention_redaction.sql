-- Retention review (health data is kept no longer than configured):
-- 1. the audit log keeps who did what to which object and when for good, but the personal
--    details in its snapshots (a visitor's name and places, a status's reason) must not
--    outlive the data they describe: the retention job redacts `before`/`after` of old
--    entries, and nothing else of a row may change;
-- 2. a person's own sign-in account is deleted some time after the person left the
--    roster: `deactivated_at` says since when.

ALTER TABLE audit_log ADD COLUMN redacted_at timestamptz;

-- A snapshot redacted: the keys it had, none of the values.
CREATE FUNCTION campusgate_audit_redacted(snapshot jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN snapshot IS NULL THEN NULL
        WHEN jsonb_typeof(snapshot) = 'object' THEN jsonb_build_object('redacted',
            (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]'::jsonb)
             FROM jsonb_object_keys(snapshot) k))
        ELSE '{"redacted": []}'::jsonb END
$$;

-- audit_log stays append-only (0004) except for one change: with
-- `SET LOCAL campusgate.retention_redact = 'on'` (the retention job's transaction) an
-- entry may be redacted, once. The trigger writes the redacted snapshots itself, from the
-- old ones, whatever the UPDATE said: a session that sets the (unprivileged) setting can
-- blank an entry's values, never write others. Operator, action, entity, entity_id and ts
-- never change.
CREATE FUNCTION campusgate_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('campusgate.retention_redact', true) = 'on'
       AND OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL
       AND NEW.id = OLD.id AND NEW.operator = OLD.operator AND NEW.action = OLD.action
       AND NEW.entity = OLD.entity AND NEW.entity_id IS NOT DISTINCT FROM OLD.entity_id
       AND NEW.ts = OLD.ts THEN
        NEW.before := campusgate_audit_redacted(OLD.before);
        NEW.after := campusgate_audit_redacted(OLD.after);
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' AND current_setting('campusgate.retention_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION campusgate_audit_append_only();

-- When a person was deactivated (NULL while active). Set by the same update that
-- deactivates them, whichever path it takes (import, admin API, SQL).
ALTER TABLE people ADD COLUMN deactivated_at timestamptz;
UPDATE people SET deactivated_at = updated_at WHERE NOT active;

CREATE FUNCTION campusgate_people_deactivated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.active THEN
        NEW.deactivated_at := NULL;
    ELSIF TG_OP = 'INSERT' OR OLD.active THEN
        NEW.deactivated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER people_deactivated_at BEFORE INSERT OR UPDATE OF active ON people
    FOR EACH ROW EXECUTE FUNCTION campusgate_people_deactivated_at();

-- The retention job looks deactivated and expired people up by these.
CREATE INDEX people_deactivated_at ON people (deactivated_at) WHERE deactivated_at IS NOT NULL;
CREATE INDEX audit_log_unredacted ON audit_log (ts) WHERE redacted_at IS NULL;
