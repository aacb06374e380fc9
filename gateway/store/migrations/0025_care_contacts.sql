-- Caretakers' follow-up (issue 15, point 4): each contact a caretaker records with a
-- person in isolation. Health data: read by health officers and the person's own
-- caretaker; purged with the health history (retention's health period).
-- No foreign key on person_id: like health_history, a contact outlives a roster edit.
CREATE TABLE care_contacts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id     text NOT NULL,
    caretaker_id  text,
    channel       text NOT NULL CHECK (channel IN ('phone', 'message', 'visit')),
    at            timestamptz NOT NULL,
    feeling       text NOT NULL CHECK (feeling IN ('well', 'unwell', 'needs_help')),
    temperature_c numeric(4, 1),
    note          text NOT NULL DEFAULT '',
    recorded_by   text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX care_contacts_person ON care_contacts (person_id, at DESC);
CREATE INDEX care_contacts_at ON care_contacts (at);
