-- Travel (issue #9, item 4): destinations and areas resolved to China's administrative
-- divisions (GB/T 2260 codes, gateway/services/places.py), stored so that re-evaluating
-- open trips never parses text again. NULL place_match: not resolved yet (rows from
-- before this migration); the next evaluation resolves and stores them.

ALTER TABLE epidemic_areas
    ADD COLUMN division_code text CHECK (division_code ~ '^[0-9]{6}$'),
    ADD COLUMN place_match   text,    -- what `match` resolved to, for people
    ADD COLUMN match_terms   text[];  -- normalised texts a text match looks for

ALTER TABLE travel_declarations
    ADD COLUMN divisions   text[],    -- division codes the destination names ('{}': none)
    ADD COLUMN place_match text;      -- what the destination resolved to, for people
