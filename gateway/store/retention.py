"""Retention: delete or anonymize personal data older than the configured periods.

Each step runs in its own short transaction, so dropping an access-log partition (which
locks the parent table) never waits behind, or holds up, a long delete elsewhere. A
step with `dry_run` only counts what it would change. Tables owned by other workflows
(readings, travel declarations, daily reports) are skipped while they do not exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import asyncpg

from gateway.store.person_accounts import DEPARTED_PERSON

_LOGGER = logging.getLogger(__name__)

# Dropping a partition takes an exclusive lock on access_events: give up quickly rather
# than queue the gateway's log writes behind us; the rows then go row by row instead.
_PARTITION_LOCK_TIMEOUT = "5s"


class AccessMode(StrEnum):
    """What happens to access events (and alerts) past their period.

    `delete` (the default) drops whole old month partitions and deletes older rows of
    the month the cut-off falls in: the daily reports keep the statistics. `anonymize`
    keeps every row but clears person_id and card_uid, so counts per door, zone, day and
    decision survive (the table then keeps growing).
    """

    DELETE = "delete"
    ANONYMIZE = "anonymize"


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Data strictly older than these goes."""

    access: datetime  # access events, alerts' person
    health: datetime  # health history, manual readings
    travel: date  # travel declarations whose isolation ended before this campus day
    isolation_days: int  # a declaration's isolation: return_date + this many days
    reports: datetime  # daily reports and their deliveries
    accounts: datetime  # person accounts of people who left the roster before this


async def table_exists(conn: asyncpg.Connection, table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


async def old_access_partitions(conn: asyncpg.Connection, cutoff: datetime) -> list[str]:
    """Month partitions of access_events whose every row is older than `cutoff`."""
    rows = await conn.fetch(
        """
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]
                   ::timestamptz AS upper_bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'access_events'::regclass
        """
    )
    found = [(r[1], r[0]) for r in rows if r[1] is not None and r[1] <= cutoff]
    return [name for _, name in sorted(found)]


async def purge_access_events(
    conn: asyncpg.Connection, cutoff: datetime, mode: AccessMode, *, dry_run: bool
) -> dict[str, int]:
    """Old access events: whole partitions dropped (delete mode), then older rows.

    Contact tracing's stays stored from them (presence_stays) and the record of uploaded
    offline events (offline_uploads) go in either mode.
    """
    counts: dict[str, int] = {}
    if await table_exists(conn, "presence_stays"):
        counts["presence_stays"] = await _delete(conn, "presence_stays", "s < $1", cutoff, dry_run)
    if await table_exists(conn, "offline_uploads"):  # which offline events were logged (issue 13)
        counts["offline_uploads"] = await _delete(
            conn, "offline_uploads", "device_ts < $1", cutoff, dry_run
        )
    if mode is AccessMode.ANONYMIZE:
        where = "received_at < $1 AND (person_id IS NOT NULL OR card_uid IS NOT NULL)"
        if dry_run:
            n = await conn.fetchval(f"SELECT count(*) FROM access_events WHERE {where}", cutoff)
        else:
            status = await conn.execute(
                "UPDATE access_events SET person_id = NULL, card_uid = NULL,"
                f" detail = detail - 'card_uid' WHERE {where}",
                cutoff,
            )
            n = _affected(status)
        return counts | {"access_events_anonymized": int(n)}
    dropped = rows_in_dropped = 0
    for name in await old_access_partitions(conn, cutoff):
        rows = int(await conn.fetchval(f'SELECT count(*) FROM "{name}"'))
        if not dry_run and not await _drop_partition(conn, name):
            continue
        dropped += 1
        rows_in_dropped += rows
    counts["access_partitions_dropped"] = dropped
    # What is left older than the cut-off: the partly older month and the default partition.
    if dry_run:
        skipped = await old_access_partitions(conn, cutoff)
        rest = await conn.fetchval(
            "SELECT count(*) FROM access_events WHERE received_at < $1"
            " AND tableoid::regclass::text <> ALL($2::text[])",
            cutoff,
            skipped,
        )
    else:
        rest = _affected(
            await conn.execute("DELETE FROM access_events WHERE received_at < $1", cutoff)
        )
    counts["access_events"] = rows_in_dropped + int(rest)
    return counts


async def _drop_partition(conn: asyncpg.Connection, name: str) -> bool:
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{_PARTITION_LOCK_TIMEOUT}'")
            await conn.execute(f'DROP TABLE "{name}"')
    except asyncpg.LockNotAvailableError:
        _LOGGER.warning("retention: %s is busy; its rows are deleted one by one instead", name)
        return False
    return True


async def anonymize_alerts(
    conn: asyncpg.Connection, cutoff: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Alerts older than the cut-off lose the person and card they named."""
    where = "ts < $1 AND (person IS NOT NULL OR detail ? 'card_uid')"
    if dry_run:
        n = await conn.fetchval(f"SELECT count(*) FROM alerts WHERE {where}", cutoff)
    else:
        n = _affected(
            await conn.execute(
                "UPDATE alerts SET person = NULL, detail = detail - 'card_uid',"
                f" updated_at = now() WHERE {where}",
                cutoff,
            )
        )
    return {"alerts_anonymized": int(n)}


# The history row that set a person's current status: their newest one.
_HEALTH_HISTORY_OLD = """
FROM health_history h
WHERE h.changed_at < $1
  AND NOT EXISTS (
      SELECT 1 FROM health_status s
      WHERE s.person_id = h.person_id
        AND h.id = (SELECT x.id FROM health_history x WHERE x.person_id = h.person_id
                    ORDER BY x.changed_at DESC, x.id DESC LIMIT 1))
"""


async def purge_health_history(
    conn: asyncpg.Connection, cutoff: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Old history rows, keeping the one that set each person's current status."""
    if dry_run:
        return {
            "health_history": int(
                await conn.fetchval("SELECT count(*) " + _HEALTH_HISTORY_OLD, cutoff)
            )
        }
    async with conn.transaction():
        # health_history is append-only; only this switch, local to the transaction, lets
        # the retention job delete from it (migration 0001, campusgate_append_only).
        await conn.execute("SET LOCAL campusgate.retention_purge = 'on'")
        status = await conn.execute(
            "DELETE FROM health_history WHERE id IN (SELECT h.id " + _HEALTH_HISTORY_OLD + ")",
            cutoff,
        )
    return {"health_history": _affected(status)}


# People who left the roster before the cut-off, with a status unchanged since then that
# no longer holds them: a hold (isolation, a suspected case) stays, so that a person put
# back on the roster is still held until an officer clears them.
_DEPARTED_STATUSES = (
    "SELECT s.person_id FROM health_status s JOIN people p ON p.id = s.person_id"
    f" WHERE s.updated_at < $1 AND {DEPARTED_PERSON}"
    " AND (s.status IN ('clear', 'recovered') OR (s.until IS NOT NULL AND s.until <= now()))"
)
# The history row that set such a status (purge_health_history keeps it while it does).
_DEPARTED_SETTERS = f"""
FROM health_history h
WHERE h.changed_at < $1 AND h.person_id IN ({_DEPARTED_STATUSES})
  AND h.id = (SELECT x.id FROM health_history x WHERE x.person_id = h.person_id
              ORDER BY x.changed_at DESC, x.id DESC LIMIT 1)
"""


async def purge_departed_statuses(
    conn: asyncpg.Connection, cutoff: datetime, *, dry_run: bool
) -> dict[str, int]:
    """The current status of people who left the roster (deactivated or expired) before
    the health cut-off, unchanged since then and no longer a hold, with the history row
    that set it: no door or case list needs them. A hold is kept (a person re-activated
    must not come back unheld). Their other history goes with purge_health_history."""
    statuses = f"FROM health_status WHERE person_id IN ({_DEPARTED_STATUSES})"
    if dry_run:
        return {
            "health_status_departed": int(
                await conn.fetchval(f"SELECT count(*) {statuses}", cutoff)
            ),
            "health_history_departed": int(
                await conn.fetchval(f"SELECT count(*) {_DEPARTED_SETTERS}", cutoff)
            ),
        }
    async with conn.transaction():
        await conn.execute("SET LOCAL campusgate.retention_purge = 'on'")  # as purge_health_history
        history = await conn.execute(
            f"DELETE FROM health_history WHERE id IN (SELECT h.id {_DEPARTED_SETTERS})", cutoff
        )
        status = await conn.execute(f"DELETE {statuses}", cutoff)
    return {
        "health_status_departed": _affected(status),
        "health_history_departed": _affected(history),
    }


async def purge_readings(
    conn: asyncpg.Connection, cutoff: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Manual re-measurements older than the health period."""
    if not await table_exists(conn, "health_readings"):
        return {}
    return {
        "health_readings": await _delete(
            conn, "health_readings", "measured_at < $1", cutoff, dry_run
        )
    }


async def purge_care_contacts(
    conn: asyncpg.Connection, cutoff: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Caretakers' recorded contacts older than the health period (they are health data)."""
    if not await table_exists(conn, "care_contacts"):
        return {}
    return {"care_contacts": await _delete(conn, "care_contacts", "at < $1", cutoff, dry_run)}


async def purge_travel(
    conn: asyncpg.Connection, cutoff: date, isolation_days: int, *, dry_run: bool
) -> dict[str, int]:
    """Travel declarations whose isolation (return date + isolation days) ended before `cutoff`."""
    if not await table_exists(conn, "travel_declarations"):
        return {}
    where = f"return_date + {int(isolation_days)} < $1"
    return {
        "travel_declarations": await _delete(conn, "travel_declarations", where, cutoff, dry_run)
    }


async def purge_visitor_passes(
    conn: asyncpg.Connection, cutoff: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Visitor passes that ended before the access period; their visitors (roster people
    of no use any more) lose name, grants and cards' validity: `visitor_people` counts them."""
    if not await table_exists(conn, "visitor_passes"):
        return {}
    old = "SELECT visitor_person_id FROM visitor_passes WHERE ends_at < $1"
    if dry_run:
        return {
            "visitor_passes": await _delete(conn, "visitor_passes", "ends_at < $1", cutoff, True),
            "visitor_people": int(
                await conn.fetchval(f"SELECT count(visitor_person_id) FROM ({old}) o", cutoff)
            ),
        }
    async with conn.transaction():
        people = [r[0] for r in await conn.fetch(old, cutoff) if r[0] is not None]
        await conn.execute("DELETE FROM grants WHERE subject_person = ANY($1::text[])", people)
        await conn.execute(
            "UPDATE cards SET revoked = true, updated_at = now()"
            " WHERE person_id = ANY($1::text[]) AND NOT revoked",
            people,
        )
        renamed = _affected(
            await conn.execute(
                "UPDATE people SET name = 'visitor (pass expired)', active = false,"
                " phone = NULL, id_number = NULL, updated_at = now()"
                " WHERE id = ANY($1::text[])",
                people,
            )
        )
        deleted = await _delete(conn, "visitor_passes", "ends_at < $1", cutoff, False)
    return {"visitor_passes": deleted, "visitor_people": renamed}


async def purge_reports(
    conn: asyncpg.Connection, cutoff: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Daily reports generated before the cut-off, and their deliveries (cascade)."""
    if not await table_exists(conn, "daily_reports"):
        return {}
    counts: dict[str, int] = {}
    async with conn.transaction():
        if await table_exists(conn, "report_deliveries"):
            counts["report_deliveries"] = int(
                await conn.fetchval(
                    "SELECT count(*) FROM report_deliveries d JOIN daily_reports r"
                    " ON r.id = d.report_id WHERE r.generated_at < $1",
                    cutoff,
                )
            )
        counts["daily_reports"] = await _delete(
            conn, "daily_reports", "generated_at < $1", cutoff, dry_run
        )
    return counts


async def _delete(
    conn: asyncpg.Connection, table: str, where: str, value: object, dry_run: bool
) -> int:
    if dry_run:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where}", value))
    return _affected(await conn.execute(f"DELETE FROM {table} WHERE {where}", value))


def _affected(status: str) -> int:
    """Rows touched, from a command tag such as 'DELETE 12' or 'UPDATE 3'."""
    return int(status.rsplit(" ", 1)[-1])
