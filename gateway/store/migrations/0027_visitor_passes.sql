-- Visitor passes (issue 15, point 5): a staff host asks for a pass for an outsider; the
-- host's liaison or an admin approves, refuses or revokes it. An approved pass is roster
-- data (a person of kind visitor, a card, grants within the window): the door path reads
-- nothing here. Phone and ID number are kept as people's are (0013): full, shown masked.
CREATE TABLE visitor_passes (
    id                 bigserial PRIMARY KEY,
    host_id            text NOT NULL REFERENCES people (id) ON DELETE RESTRICT,
    host_unit_id       text REFERENCES org_units (id) ON DELETE RESTRICT,
    visitor_name       text NOT NULL,
    phone              text NOT NULL CHECK (phone ~ '^\+?[0-9]{3,30}$'),
    id_number          text NOT NULL CHECK (id_number ~ '^[0-9A-Z]{4,32}$'),
    reason             text NOT NULL,
    zones              text[] NOT NULL CHECK (cardinality(zones) > 0),
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz NOT NULL CHECK (ends_at > starts_at),
    places             text[] NOT NULL DEFAULT '{}',
    -- Epidemic areas the places matched when requested (names), shown to the approver.
    area_matches       text[] NOT NULL DEFAULT '{}',
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'approved', 'refused', 'revoked')),
    requested_by       text NOT NULL,
    requested_at       timestamptz NOT NULL DEFAULT now(),
    decided_by         text,
    decided_at         timestamptz,
    note               text,
    -- Set on approval: the visitor's roster person and card.
    visitor_person_id  text UNIQUE,
    card_uid           text UNIQUE,
    overstay_alerted_at timestamptz
);
CREATE INDEX visitor_passes_status ON visitor_passes (status, ends_at);
CREATE INDEX visitor_passes_host ON visitor_passes (host_id);
CREATE INDEX visitor_passes_ends ON visitor_passes (ends_at);
