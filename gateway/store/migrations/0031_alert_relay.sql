-- Alerts raised outside the gateway (the API process's scheduled jobs: visitor_overstay)
-- have no MQTT connection to publish them on P/alerts/{kind}. They are stored with
-- `publish_pending`; a gateway worker claims them (FOR UPDATE SKIP LOCKED, so one worker
-- publishes each) and publishes them as it does its own. Older alerts are not pending.
ALTER TABLE alerts ADD COLUMN publish_pending boolean NOT NULL DEFAULT false;
CREATE INDEX alerts_publish_pending ON alerts (ts) WHERE publish_pending;
