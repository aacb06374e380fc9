-- Daily reports (issue 5, item 6): one row per generation of a (day, org unit, audience)
-- report, holding everything needed to render it again identically (the renderers are
-- deterministic over `summary` and `lists`), and every delivery attempt of it.
-- The retention job deletes reports older than CAMPUSGATE_RETENTION_REPORTS_DAYS by
-- these table names; deliveries go with their report (ON DELETE CASCADE).

CREATE TABLE daily_reports (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    day          date NOT NULL,                -- a campus-local day (CAMPUSGATE_TIMEZONE)
    org_unit_id  text,                         -- NULL: the campus-wide roll-up
    org_unit_key text NOT NULL GENERATED ALWAYS AS (coalesce(org_unit_id, '*')) STORED,
    audience     text NOT NULL CHECK (audience IN ('student', 'staff')),
    generated_at timestamptz NOT NULL DEFAULT now(),
    generated_by text NOT NULL,                -- an operator's name, 'schedule' or 'demo'
    scheduled    boolean NOT NULL DEFAULT false,
    cutoff       timestamptz NOT NULL,         -- facts up to here (the day's end, or now)
    summary      jsonb NOT NULL,               -- the numbers
    lists        jsonb NOT NULL                -- the lists behind the numbers
);
-- No foreign key to org_units: a report outlives a unit that is later removed.
CREATE INDEX daily_reports_day ON daily_reports (day, org_unit_key, audience, generated_at DESC);
CREATE INDEX daily_reports_generated ON daily_reports (generated_at);

CREATE TABLE report_deliveries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id  bigint NOT NULL REFERENCES daily_reports (id) ON DELETE CASCADE,
    channel    text NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient  text NOT NULL,                  -- mailto:... or the webhook URL
    sent_at    timestamptz NOT NULL DEFAULT now(),  -- when the attempt was made
    status     text NOT NULL CHECK (status IN ('ok', 'failed')),
    error      text,
    sent_by    text NOT NULL                   -- who asked: 'schedule', an operator, 'demo'
);
CREATE INDEX report_deliveries_report ON report_deliveries (report_id, recipient, sent_at DESC);
