-- Event time (issue #9, item 3; contract section 3): `received_at` is the time of an
-- event in the log, the one contact tracing, occupancy and reports read: the device's
-- `ts` when it is plausible (an event queued at the broker while the gateway was down
-- keeps the time it happened), otherwise the gateway's receipt time. `gateway_ts` is
-- the gateway's receipt time, kept beside `device_ts`; NULL in rows written before
-- this migration, whose `received_at` was always the receipt time.
ALTER TABLE access_events ADD COLUMN gateway_ts timestamptz;

-- A passage logged late (its device time well before it reached the gateway) may change
-- stays already stored for tracing: the oldest such passage, until the stays job has
-- rebuilt the stays from a max stay before it (gateway/store/tracing_stays.py).
ALTER TABLE presence_stays_watermark ADD COLUMN stale_from timestamptz;

-- A caretaker's case list shows each person's last isolation_breach (free egress: a
-- held person leaving is admitted, and the caretaker follows up).
CREATE INDEX alerts_person_kind ON alerts (person, kind, ts) WHERE person IS NOT NULL;
