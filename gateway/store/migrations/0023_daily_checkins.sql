-- Issue #15, point 2: the daily health check-in each person makes on the phone.

-- One row per person per campus day: the latest check-in of that day.
CREATE TABLE daily_checkins (
    person_id     text NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    day           date NOT NULL,               -- the campus-local date (CAMPUSGATE_TIMEZONE)
    location      text NOT NULL CHECK (location IN ('on_campus', 'off_campus')),
    dormitory     text CHECK (char_length(dormitory) <= 100),
    city          text CHECK (char_length(city) <= 100),
    temperature_c numeric(3, 1) NOT NULL CHECK (temperature_c BETWEEN 34.0 AND 43.0),
    symptoms      text[] NOT NULL DEFAULT '{}' CHECK (symptoms <@ ARRAY[
        'fever', 'cough', 'sore_throat', 'fatigue', 'shortness_of_breath',
        'loss_of_taste_smell', 'diarrhea']::text[]),
    case_contact  boolean NOT NULL DEFAULT false,
    travel_plans  text CHECK (char_length(travel_plans) <= 1000),
    version       integer NOT NULL DEFAULT 1,  -- how many check-ins that day
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, day),
    CHECK ((location = 'on_campus' AND dormitory IS NOT NULL AND city IS NULL)
        OR (location = 'off_campus' AND city IS NOT NULL AND dormitory IS NULL))
);
CREATE INDEX daily_checkins_day ON daily_checkins (day);

-- Every check-in ever made, never rewritten (the retention job alone deletes old rows).
CREATE TABLE daily_checkin_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     text NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    day           date NOT NULL,
    version       integer NOT NULL,
    location      text NOT NULL,
    dormitory     text,
    city          text,
    temperature_c numeric(3, 1) NOT NULL,
    symptoms      text[] NOT NULL,
    case_contact  boolean NOT NULL,
    travel_plans  text,
    submitted_at  timestamptz NOT NULL,
    UNIQUE (person_id, day, version)
);
CREATE INDEX daily_checkin_history_at ON daily_checkin_history (submitted_at);
CREATE TRIGGER daily_checkin_history_append_only BEFORE UPDATE OR DELETE
    ON daily_checkin_history FOR EACH ROW EXECUTE FUNCTION campusgate_append_only();

-- People who reported contact with a confirmed case: the health officers' review list.
CREATE TABLE checkin_contact_reviews (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id   text NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    day         date NOT NULL,
    raised_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolved_by text,
    outcome     text CHECK (char_length(outcome) <= 500),
    UNIQUE (person_id, day)
);
CREATE INDEX checkin_contact_reviews_open ON checkin_contact_reviews (raised_at)
    WHERE resolved_at IS NULL;

-- Reminders sent to people who had not checked in by the cut-off (once a person a day).
CREATE TABLE checkin_reminders (
    person_id text NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    day       date NOT NULL,
    sent_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, day)
);

-- The gateways learn of each check-in without a roster reload: the payload names the
-- person and the day ('daily_checkins:<person>:<YYYY-MM-DD>'), which the in-memory
-- roster applies as is (gateway/pipeline/roster_state.py).
CREATE FUNCTION campusgate_notify_checkin() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('campusgate_roster',
                      'daily_checkins:' || NEW.person_id || ':' || NEW.day::text);
    RETURN NULL;
END $$;
CREATE TRIGGER daily_checkins_notify AFTER INSERT OR UPDATE ON daily_checkins
    FOR EACH ROW EXECUTE FUNCTION campusgate_notify_checkin();

-- A response level may require today's check-in at chosen zones (ids; a zone that goes
-- away simply stops matching).
ALTER TABLE response_levels
    ADD COLUMN checkin_zones text[] NOT NULL DEFAULT '{}';
