-- Offline decisions (issue 13): every event a terminal decided offline and uploaded,
-- once. The access log is partitioned by time and has no unique key on (device, event);
-- this table is what makes an upload that is sent again (a lost ack, a restart) a no-op.
CREATE TABLE offline_uploads (
    device_id         text NOT NULL,
    event_id          text NOT NULL,
    device_ts         timestamptz NOT NULL,
    uploaded_at       timestamptz NOT NULL DEFAULT now(),
    local_decision    text NOT NULL,
    local_reason      text NOT NULL,
    gateway_decision  text,
    gateway_reason    text,
    allowlist_version bigint,
    PRIMARY KEY (device_id, event_id)
);
CREATE INDEX offline_uploads_uploaded ON offline_uploads (uploaded_at);
