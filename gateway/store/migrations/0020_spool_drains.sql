-- The local spool (issue 13, point 4): while PostgreSQL is away the gateway journals to a
-- file under its data dir and drains it here when the database is back. Each drain
-- transaction writes its rows and moves this mark in one commit, so a gateway killed
-- mid-drain resumes after the mark: no spooled row is logged twice (the access log has
-- no unique key on device and event to lean on).
CREATE TABLE spool_drains (
    spool      text PRIMARY KEY,
    seq        bigint NOT NULL,
    drained_at timestamptz NOT NULL DEFAULT now()
);
