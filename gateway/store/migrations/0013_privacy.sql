-- Privacy (issue 5, item 7): a person's optional phone and ID number (national ID or
-- passport). They are shown masked by default; the full values leave the store only on
-- an audited request of an operator allowed to unmask. The door roster never loads them
-- (gateway/store/roster.py names its columns).
ALTER TABLE people
    ADD COLUMN phone     text CHECK (phone IS NULL OR phone ~ '^\+?[0-9]{3,30}$'),
    ADD COLUMN id_number text CHECK (id_number IS NULL OR id_number ~ '^[0-9A-Z]{4,32}$');

-- The retention job's own audit entries, and "who unmasked or exported this person",
-- are read by entity and id: audit_log_entity (0004) already serves both.
