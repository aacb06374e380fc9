-- Contact tracing (issue #5, item 3) reads only admitted card passages, by person and by
-- zone over a time range. Partial covering indexes let both reads be index-only scans
-- of a small part of the log (denials, temperatures and door events are left out).

CREATE INDEX access_events_trace_person ON access_events (person_id, received_at)
    INCLUDE (zone_id, direction) WHERE type = 'card' AND decision = 'admit';
CREATE INDEX access_events_trace_zone ON access_events (zone_id, received_at)
    INCLUDE (person_id, direction) WHERE type = 'card' AND decision = 'admit';
