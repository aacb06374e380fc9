"""Who is using the database right now, and how much it has committed and flushed: what
`campusgate bench --flood-windows` samples to say where an API flood's cost lands."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """A PostgreSQL server process: a backend of this database (with the client's
    `application_name`) or one of the server's own (WAL writer, checkpointer, ...)."""

    pid: int
    application: str
    own_database: bool
    backend_type: str


async def server_processes(conn: asyncpg.Connection) -> list[ServerProcess]:
    """The server processes serving this database, and the server's background ones."""
    rows = await conn.fetch(
        "SELECT pid, coalesce(application_name, '') AS application,"
        " datname IS NOT DISTINCT FROM current_database() AS own_database,"
        " coalesce(backend_type, '') AS backend_type"
        " FROM pg_stat_activity"
        " WHERE datname = current_database() OR datname IS NULL"
    )
    return [
        ServerProcess(r["pid"], r["application"], r["own_database"], r["backend_type"])
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class CommitCounts:
    """Cumulative counters: transactions committed in this database, WAL flushes (fsyncs)
    of the whole server."""

    commits: int
    wal_syncs: int


async def commit_counts(conn: asyncpg.Connection) -> CommitCounts:
    row = await conn.fetchrow(
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())"
        " AS commits, (SELECT wal_sync FROM pg_stat_wal) AS wal_syncs"
    )
    assert row is not None
    return CommitCounts(int(row["commits"] or 0), int(row["wal_syncs"] or 0))
