-- Travel plans (issue 15, point 3): people declare a trip ahead from their own page and
-- declare their return; where the campus's response level says so, a liaison approves or
-- refuses the plan first.

ALTER TABLE response_levels
    ADD COLUMN trips_need_approval boolean NOT NULL DEFAULT false;
UPDATE response_levels SET trips_need_approval = true
    WHERE name = 'lockdown' AND updated_by = 'migration';

ALTER TABLE travel_declarations DROP CONSTRAINT travel_declarations_source_check;
ALTER TABLE travel_declarations
    ADD CONSTRAINT travel_declarations_source_check CHECK (source IN ('api', 'csv', 'person')),
    -- Planned ahead by the person (source 'person'); false: a trip an operator filed.
    ADD COLUMN planned       boolean NOT NULL DEFAULT false,
    ADD COLUMN approval      text NOT NULL DEFAULT 'not_needed'
        CHECK (approval IN ('not_needed', 'pending', 'approved', 'refused')),
    ADD COLUMN approval_by   text,
    ADD COLUMN approval_at   timestamptz,
    ADD COLUMN approval_note text NOT NULL DEFAULT '',
    ADD COLUMN returned_at   timestamptz,  -- the person declared their return
    ADD COLUMN cancelled_at  timestamptz;  -- the person called the plan off before leaving
CREATE INDEX travel_declarations_pending ON travel_declarations (approval)
    WHERE approval = 'pending';
