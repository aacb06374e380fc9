-- Partitioned gateway workers (issue 14): doors are hashed into a fixed number of
-- partitions; a worker owns a partition while it holds its lease here. Leases are rows with
-- an expiry on the database's clock (one clock for all workers), renewed by their holder
-- every second or so; see docs/architecture.md "Partitions and leases" for why rows and not
-- advisory locks.

-- The campus's partition count, recorded by the first worker: every worker must agree.
CREATE TABLE gateway_partitioning (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    partitions  integer NOT NULL CHECK (partitions BETWEEN 1 AND 4096),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Live workers: a worker counts towards the fair share while its row has not expired.
CREATE TABLE gateway_workers (
    worker     text PRIMARY KEY,
    instance   uuid NOT NULL,          -- this process: a second process with the same id is refused
    host       text NOT NULL,
    pid        integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE TABLE partition_leases (
    partition   integer PRIMARY KEY,
    worker      text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX partition_leases_worker ON partition_leases (worker);
