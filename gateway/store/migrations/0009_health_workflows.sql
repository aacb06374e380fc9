-- Epidemic workflows (issue #5, items 1 and 2): manual re-measurements, epidemic
-- areas and travel declarations. Health statuses themselves stay in health_status
-- and health_history (0002), whose roster trigger tells the gateways.

-- A guard's manual re-measurement of a person (usually on fever_watch).
CREATE TABLE health_readings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id   text NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    celsius     numeric(4, 1) NOT NULL CHECK (celsius BETWEEN 30.0 AND 45.0),
    fever       boolean NOT NULL,           -- at or above the fever threshold when recorded
    measured_at timestamptz NOT NULL,
    recorded_by text NOT NULL,              -- the operator who entered it
    note        text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX health_readings_person ON health_readings (person_id, measured_at);
CREATE INDEX health_readings_measured ON health_readings (measured_at);

-- Areas a return from which isolates. `match` is a case-insensitive text looked for
-- in a trip's destination; effective dates are campus-local and inclusive.
CREATE TABLE epidemic_areas (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (length(btrim(name)) > 0),
    match           text NOT NULL CHECK (length(btrim(match)) > 0),
    effective_from  date NOT NULL,
    effective_until date,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (effective_until IS NULL OR effective_until >= effective_from)
);

-- One trip of one person. Isolation runs from the start of return_date (campus time)
-- for isolation_days; the evaluation columns say what the declaration did last.
CREATE TABLE travel_declarations (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id      text NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    destination    text NOT NULL CHECK (length(btrim(destination)) > 0),
    departure_date date NOT NULL,
    return_date    date NOT NULL,
    note           text NOT NULL DEFAULT '',
    declared_by    text NOT NULL,
    declared_at    timestamptz NOT NULL DEFAULT now(),
    source         text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'csv')),
    matched_areas  text[] NOT NULL DEFAULT '{}',  -- names of listed areas that matched last
    evaluated_at   timestamptz,
    isolated_at    timestamptz,                   -- when it put (or kept) the person in isolation
    lifted_at      timestamptz,                   -- when its isolation was lifted (area removed)
    waived_by      text,                          -- a health officer exempted it
    waived_at      timestamptz,
    CHECK (return_date >= departure_date),
    UNIQUE (person_id, destination, departure_date, return_date)
);
CREATE INDEX travel_declarations_person ON travel_declarations (person_id);
CREATE INDEX travel_declarations_return ON travel_declarations (return_date);
