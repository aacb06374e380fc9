from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from gateway.store.access_log import ensure_partitions
from gateway.store.migrate import apply_migrations, available_migrations, pending_migrations


async def test_migrations_apply_once_and_then_nothing(new_database) -> None:
    dsn = await new_database("mig")
    names = [m.name for m in available_migrations()]
    assert await apply_migrations(dsn) == names
    assert await apply_migrations(dsn) == []
    conn = await asyncpg.connect(dsn)
    try:
        assert await pending_migrations(conn) == []
    finally:
        await conn.close()


async def test_concurrent_migrations_do_not_race(new_database) -> None:
    dsn = await new_database("race")
    first, second = await asyncio.gather(apply_migrations(dsn), apply_migrations(dsn))
    assert sorted(first + second) == [m.name for m in available_migrations()]
    assert not (set(first) & set(second))


@pytest.mark.parametrize(
    ("table", "insert"),
    [
        (
            "health_history",
            "INSERT INTO health_history (person_id, status, since, changed_by) "
            "VALUES ('p1', 'clear', now(), 'test')",
        ),
        ("alert_history", "INSERT INTO alert_history (alert_id, status) VALUES ('a1', 'open')"),
        (
            "audit_log",
            "INSERT INTO audit_log (operator, action, entity) VALUES ('root', 'create', 'zone')",
        ),
    ],
)
async def test_history_tables_refuse_update_and_delete(conn, table: str, insert: str) -> None:
    await conn.execute(insert)
    for statement in (
        f"UPDATE {table} SET ts = ts"
        if table != "health_history"
        else f"UPDATE {table} SET reason = reason",
        f"DELETE FROM {table}",
        f"TRUNCATE {table}",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement)
    assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1
    # The retention purge is the one way out, and only for DELETE.
    async with conn.transaction():
        await conn.execute("SET LOCAL campusgate.retention_purge = 'on'")
        await conn.execute(f"DELETE FROM {table}")
    assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_partitions_are_created_and_take_rows_from_default(conn) -> None:
    now = datetime(2031, 12, 15, 8, 0, tzinfo=UTC)
    await conn.execute(
        "INSERT INTO access_events (device_id, event_id, type, device_ts, received_at) "
        "VALUES ('d', 'e1', 'card', $1, $1)",
        now,
    )
    names = await ensure_partitions(conn, now)
    assert names == ["access_events_2031m12", "access_events_2032m01"]
    assert await ensure_partitions(conn, now) == names
    where = await conn.fetchval("SELECT tableoid::regclass::text FROM access_events")
    assert where == "access_events_2031m12"
    assert await conn.fetchval("SELECT count(*) FROM access_events_default") == 0
