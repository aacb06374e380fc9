"""Health statuses: the current one per person, and the history that keeps every change."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.store.org_tree import subtree_cte
from gateway.store.roster_write import UpsertCounts

_COLUMNS = ("person_id", "status", "since", "until", "reason", "caretaker_id", "set_by")

_UPSERT_ONE = """
INSERT INTO health_status AS h (person_id, status, since, until, reason, caretaker_id, set_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (person_id) DO UPDATE SET
    status = EXCLUDED.status, since = EXCLUDED.since, until = EXCLUDED.until,
    reason = EXCLUDED.reason, caretaker_id = EXCLUDED.caretaker_id,
    set_by = EXCLUDED.set_by, updated_at = now()
"""

_HISTORY_ONE = """
INSERT INTO health_history
    (person_id, status, since, until, reason, caretaker_id, set_by, changed_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""


async def lock_people(
    conn: asyncpg.Connection, person_ids: Iterable[str], *, skip_locked: bool = False
) -> set[str]:
    """Lock the named people's rows for this transaction (in id order, so never a
    deadlock); returns those that exist. Every status change of a person holds it.

    `skip_locked`: leave out (and do not wait for) people another transaction holds,
    for a second round of locks taken while holding others, which could deadlock."""
    wait = " SKIP LOCKED" if skip_locked else ""
    rows = await conn.fetch(
        "SELECT id FROM people WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE" + wait,
        sorted(set(person_ids)),
    )
    return {r[0] for r in rows}


def _row(record: HealthRecord) -> tuple[object, ...]:
    return (
        record.person_id,
        record.status.value,
        record.since,
        record.until,
        record.reason,
        record.caretaker_id,
        record.set_by,
    )


async def current_health(
    conn: asyncpg.Connection, person_id: str
) -> tuple[HealthStatus, datetime | None, str | None, str | None, datetime] | None:
    """(status, until, set_by, caretaker_id, since) of the person's stored status, if any."""
    row = await conn.fetchrow(
        "SELECT status, until, set_by, caretaker_id, since FROM health_status WHERE person_id = $1",
        person_id,
    )
    if row is None:
        return None
    return HealthStatus(row[0]), row[1], row[2], row[3], row[4]


async def set_health(conn: asyncpg.Connection, record: HealthRecord, *, changed_by: str) -> None:
    """Replace the person's current status and append it to the history, in one transaction."""
    row = _row(record)
    async with conn.transaction():
        await conn.execute(_UPSERT_ONE, *row)
        await conn.execute(_HISTORY_ONE, *row, changed_by)


async def set_health_many(
    conn: asyncpg.Connection, records: Sequence[HealthRecord], *, changed_by: str
) -> UpsertCounts:
    """Set many statuses at once (one per person), skipping those equal to the current one.

    Equal means same status, until, reason and caretaker (`since` and `set_by`
    of an unchanged status are kept). Every change is appended to the history.
    """
    if not records:
        return UpsertCounts()
    async with conn.transaction():
        await conn.execute("DROP TABLE IF EXISTS _health_in")
        await conn.execute(
            "CREATE TEMP TABLE _health_in ON COMMIT DROP AS "
            f"SELECT {', '.join(_COLUMNS)} FROM health_status WITH NO DATA"
        )
        await conn.copy_records_to_table(
            "_health_in", records=[_row(r) for r in records], columns=_COLUMNS
        )
        row = await conn.fetchrow(
            """
            WITH changed AS (
                SELECT i.*, h.person_id IS NULL AS is_new FROM _health_in i LEFT JOIN health_status h USING (person_id)
                WHERE h.person_id IS NULL
                   OR (h.status, h.until, h.reason, h.caretaker_id)
                      IS DISTINCT FROM (i.status, i.until, i.reason, i.caretaker_id)
            ), upserted AS (
                INSERT INTO health_status AS h
                    (person_id, status, since, until, reason, caretaker_id, set_by)
                SELECT person_id, status, since, until, reason, caretaker_id, set_by FROM changed
                ON CONFLICT (person_id) DO UPDATE SET
                    status = EXCLUDED.status, since = EXCLUDED.since, until = EXCLUDED.until,
                    reason = EXCLUDED.reason, caretaker_id = EXCLUDED.caretaker_id,
                    set_by = EXCLUDED.set_by, updated_at = now()
                RETURNING 1
            ), logged AS (
                INSERT INTO health_history
                    (person_id, status, since, until, reason, caretaker_id, set_by, changed_by)
                SELECT person_id, status, since, until, reason, caretaker_id, set_by, $1
                FROM changed
                RETURNING 1
            )
            SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new)
            FROM changed
            """,
            changed_by,
        )
    inserted, updated = int(row[0]), int(row[1])
    return UpsertCounts(inserted, updated, len(records) - inserted - updated)


async def health_history(
    conn: asyncpg.Connection, person_id: str
) -> list[tuple[HealthRecord, str, datetime]]:
    """Every status the person had, oldest first, with who changed it and when."""
    rows = await conn.fetch(
        """
        SELECT person_id, status, since, until, reason, caretaker_id, set_by, changed_by, changed_at
        FROM health_history WHERE person_id = $1 ORDER BY changed_at, id
        """,
        person_id,
    )
    return [
        (HealthRecord(r[0], HealthStatus(r[1]), r[2], r[3], r[4], r[5], r[6]), r[7], r[8])
        for r in rows
    ]


async def is_recorded(conn: asyncpg.Connection, record: HealthRecord, *, changed_by: str) -> bool:
    """Whether this very change (person, status, since, who) is in the history already."""
    return bool(
        await conn.fetchval(
            """
            SELECT EXISTS (SELECT 1 FROM health_history
                           WHERE person_id = $1 AND status = $2 AND since = $3
                             AND set_by IS NOT DISTINCT FROM $4 AND changed_by = $5)
            """,
            record.person_id,
            record.status.value,
            record.since,
            record.set_by,
            changed_by,
        )
    )


async def expire_due(conn: asyncpg.Connection, now: datetime) -> list[str]:
    """Turn every status whose `until` has passed into `clear` (since = that `until`), with a
    history row changed by "expiry". Returns the people cleared. One statement, so an
    operator's change made meanwhile is either seen whole or not touched."""
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT person_id, status, until FROM health_status
            WHERE until IS NOT NULL AND until <= $1
            FOR UPDATE
        ), cleared AS (
            UPDATE health_status h SET
                status = 'clear', since = due.until, until = NULL,
                reason = 'expired: ' || due.status || ' ended at its until',
                caretaker_id = NULL, set_by = 'expiry', updated_at = now()
            FROM due WHERE h.person_id = due.person_id
            RETURNING h.person_id, h.since, h.reason
        ), logged AS (
            INSERT INTO health_history
                (person_id, status, since, until, reason, caretaker_id, set_by, changed_by)
            SELECT person_id, 'clear', since, NULL, reason, NULL, 'expiry', 'expiry' FROM cleared
        )
        SELECT person_id FROM cleared ORDER BY person_id
        """,
        now,
    )
    return [r[0] for r in rows]


async def health_of(conn: asyncpg.Connection, person_id: str) -> HealthRecord | None:
    """The person's stored status (None: never had one, which reads as clear)."""
    row = await conn.fetchrow(
        "SELECT person_id, status, since, until, reason, caretaker_id, set_by "
        "FROM health_status WHERE person_id = $1",
        person_id,
    )
    if row is None:
        return None
    return HealthRecord(row[0], HealthStatus(row[1]), *row[2:])


@dataclass(frozen=True, slots=True)
class HealthListing:
    """A stored status with the names of the person and the caretaker beside their ids."""

    person_id: str
    name: str
    org_unit_id: str | None
    status: str
    since: datetime
    until: datetime | None
    reason: str | None
    caretaker_id: str | None
    caretaker_name: str | None
    set_by: str | None


async def list_health(
    conn: asyncpg.Connection, *, status: str | None, org_scope: str | None, limit: int, offset: int
) -> list[HealthListing]:
    """Stored statuses, newest first; with `org_scope`, only people of that subtree."""
    rows = await conn.fetch(
        subtree_cte(1)
        + """
        SELECT h.person_id, p.name, p.org_unit_id, h.status, h.since, h.until, h.reason,
               h.caretaker_id, c.name AS caretaker_name, h.set_by
        FROM health_status h JOIN people p ON p.id = h.person_id
        LEFT JOIN people c ON c.id = h.caretaker_id
        WHERE ($2::text IS NULL OR p.org_unit_id IN (SELECT id FROM scope))
          AND ($3::text IS NULL OR h.status = $3)
        ORDER BY h.since DESC LIMIT $4 OFFSET $5
        """,
        org_scope,
        org_scope,
        status,
        limit,
        offset,
    )
    return [HealthListing(*r) for r in rows]
