"""Daily check-ins (issue #15): the day's latest per person, the history, the reviews of
reported case contacts, the reminders sent, and the per-unit figures liaisons read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from gateway.domain.checkin import CheckIn
from gateway.store.org_tree import subtree_cte

_FIELDS = (
    "location, dormitory, city, temperature_c::float8 AS temperature_c, symptoms,"
    " case_contact, travel_plans"
)


@dataclass(frozen=True, slots=True)
class Eligibility:
    """What decides whether a person may check in."""

    active: bool
    valid_until: datetime | None
    kind: str
    org_unit_id: str | None


async def lock_person(conn: asyncpg.Connection, person_id: str) -> Eligibility | None:
    """The person's row, locked for this transaction (check-ins of one person serialise)."""
    row = await conn.fetchrow(
        "SELECT active, valid_until, kind, org_unit_id FROM people WHERE id = $1 FOR NO KEY UPDATE",
        person_id,
    )
    return None if row is None else Eligibility(row[0], row[1], row[2], row[3])


async def versions_of_day(conn: asyncpg.Connection, person_id: str, day: date) -> int:
    """How many check-ins the person made on `day` (0: none yet)."""
    version: int | None = await conn.fetchval(
        "SELECT version FROM daily_checkins WHERE person_id = $1 AND day = $2", person_id, day
    )
    return version or 0


async def save_checkin(
    conn: asyncpg.Connection, person_id: str, day: date, checkin: CheckIn, at: datetime
) -> int:
    """Insert or replace the person's check-in of `day` and append it to the history;
    returns its version (1: the first of the day). Call inside a transaction."""
    values = (
        person_id,
        day,
        checkin.location.value,
        checkin.dormitory,
        checkin.city,
        checkin.temperature_c,
        [s.value for s in checkin.symptoms],
        checkin.case_contact,
        checkin.travel_plans,
        at,
    )
    version: int = await conn.fetchval(
        """
        INSERT INTO daily_checkins AS c (person_id, day, location, dormitory, city,
            temperature_c, symptoms, case_contact, travel_plans, submitted_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (person_id, day) DO UPDATE SET location = EXCLUDED.location,
            dormitory = EXCLUDED.dormitory, city = EXCLUDED.city,
            temperature_c = EXCLUDED.temperature_c, symptoms = EXCLUDED.symptoms,
            case_contact = EXCLUDED.case_contact, travel_plans = EXCLUDED.travel_plans,
            submitted_at = EXCLUDED.submitted_at, version = c.version + 1
        RETURNING version
        """,
        *values,
    )
    await conn.execute(
        """
        INSERT INTO daily_checkin_history (person_id, day, location, dormitory, city,
            temperature_c, symptoms, case_contact, travel_plans, submitted_at, version)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        """,
        *values,
        version,
    )
    return version


async def checkin_of(conn: asyncpg.Connection, person_id: str, day: date) -> dict[str, Any] | None:
    """The person's check-in of `day`, or None."""
    row = await conn.fetchrow(
        f"SELECT day, version, submitted_at, {_FIELDS} FROM daily_checkins"
        " WHERE person_id = $1 AND day = $2",
        person_id,
        day,
    )
    return None if row is None else dict(row)


async def checkin_history(
    conn: asyncpg.Connection, person_id: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    """Every check-in the person made, newest first (each version of a day)."""
    rows = await conn.fetch(
        f"SELECT day, version, submitted_at, {_FIELDS} FROM daily_checkin_history"
        " WHERE person_id = $1 ORDER BY submitted_at DESC, id DESC LIMIT $2",
        person_id,
        limit,
    )
    return [dict(r) for r in rows]


async def recent_checkin_days(conn: asyncpg.Connection, since: date) -> list[tuple[str, date]]:
    """(person, day) of every check-in on or after `since` (the gateway's roster load)."""
    rows = await conn.fetch("SELECT person_id, day FROM daily_checkins WHERE day >= $1", since)
    return [(r[0], r[1]) for r in rows]


async def open_contact_review(conn: asyncpg.Connection, person_id: str, day: date) -> bool:
    """Put the person on the case-contact review list for `day`; False if already there."""
    status = await conn.execute(
        "INSERT INTO checkin_contact_reviews (person_id, day) VALUES ($1, $2)"
        " ON CONFLICT (person_id, day) DO NOTHING",
        person_id,
        day,
    )
    return status.endswith(" 1")


async def contact_reviews(
    conn: asyncpg.Connection, *, open_only: bool = True, limit: int = 200
) -> list[dict[str, Any]]:
    """Reported case contacts, oldest open first, with the person's name and unit."""
    rows = await conn.fetch(
        """
        SELECT r.id, r.person_id, p.name, p.org_unit_id, r.day, r.raised_at,
               r.resolved_at, r.resolved_by, r.outcome
        FROM checkin_contact_reviews r JOIN people p ON p.id = r.person_id
        WHERE NOT $1 OR r.resolved_at IS NULL
        ORDER BY r.resolved_at IS NOT NULL, r.raised_at, r.id LIMIT $2
        """,
        open_only,
        limit,
    )
    return [dict(r) for r in rows]


async def resolve_contact_review(
    conn: asyncpg.Connection, review_id: int, *, by: str, outcome: str, at: datetime
) -> dict[str, Any] | None:
    """Close an open review; None when there is no open review with that id."""
    row = await conn.fetchrow(
        """
        UPDATE checkin_contact_reviews SET resolved_at = $2, resolved_by = $3, outcome = $4
        WHERE id = $1 AND resolved_at IS NULL
        RETURNING id, person_id, day, raised_at, resolved_at, resolved_by, outcome
        """,
        review_id,
        at,
        by,
        outcome,
    )
    return None if row is None else dict(row)


async def review_exists(conn: asyncpg.Connection, review_id: int) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM checkin_contact_reviews WHERE id = $1", review_id)
    )


# Who is expected to check in: active students and staff (visitors come by pass).
_EXPECTED = """
SELECT p.id, p.name, p.kind, p.org_unit_id, c.submitted_at
FROM people p LEFT JOIN daily_checkins c ON c.person_id = p.id AND c.day = $1
WHERE p.active AND p.kind IN ('student', 'staff')
  AND (p.valid_until IS NULL OR p.valid_until > $3)
  AND ($2::text IS NULL OR p.org_unit_id IN (SELECT id FROM scope))
ORDER BY p.org_unit_id NULLS LAST, p.id
"""


async def expected_people(
    conn: asyncpg.Connection, day: date, org_scope: str | None, now: datetime
) -> list[dict[str, Any]]:
    """Everyone expected to check in on `day` (within `org_scope`'s subtree when given),
    each with `submitted_at` (None: not checked in)."""
    rows = await conn.fetch(subtree_cte(2) + _EXPECTED, day, org_scope, now)
    return [dict(r) for r in rows]


async def mark_reminded(conn: asyncpg.Connection, person_ids: list[str], day: date) -> list[str]:
    """Record reminders for `day`; returns those not reminded before (to send to now)."""
    rows = await conn.fetch(
        """
        INSERT INTO checkin_reminders (person_id, day)
        SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING RETURNING person_id
        """,
        person_ids,
        day,
    )
    return [r[0] for r in rows]


async def forget_reminded(conn: asyncpg.Connection, person_ids: list[str], day: date) -> None:
    """Undo `mark_reminded` for reminders that could not be delivered (sent again later)."""
    await conn.execute(
        "DELETE FROM checkin_reminders WHERE person_id = ANY($1::text[]) AND day = $2",
        person_ids,
        day,
    )


async def day_numbers(
    conn: asyncpg.Connection, day: date, now: datetime, threshold_c: float
) -> dict[str, Any]:
    """The campus's check-in figures for `day`, by kind (the daily report's)."""
    rows = await conn.fetch(
        """
        SELECT p.kind, count(*) AS expected, count(c.person_id) AS checked_in,
               count(*) FILTER (WHERE c.temperature_c >= $3 OR cardinality(c.symptoms) > 0)
                   AS flagged,
               count(*) FILTER (WHERE c.case_contact) AS case_contacts,
               count(*) FILTER (WHERE c.location = 'off_campus') AS off_campus
        FROM people p LEFT JOIN daily_checkins c ON c.person_id = p.id AND c.day = $1
        WHERE p.active AND p.kind IN ('student', 'staff')
          AND (p.valid_until IS NULL OR p.valid_until > $2)
        GROUP BY p.kind
        """,
        day,
        now,
        threshold_c,
    )
    return {r["kind"]: dict(r) for r in rows}


async def checkins_of_day(
    conn: asyncpg.Connection, day: date, threshold_c: float
) -> dict[str, tuple[bool, bool]]:
    """person -> (fever or symptom reported, case contact reported) for `day`'s check-ins."""
    rows = await conn.fetch(
        """
        SELECT person_id, temperature_c >= $2 OR cardinality(symptoms) > 0, case_contact
        FROM daily_checkins WHERE day = $1
        """,
        day,
        threshold_c,
    )
    return {r[0]: (bool(r[1]), bool(r[2])) for r in rows}


async def purge_checkins(
    conn: asyncpg.Connection, cutoff: date, *, dry_run: bool
) -> dict[str, int]:
    """Check-ins, their history, reviews and reminders of campus days before `cutoff`."""
    counts: dict[str, int] = {}
    tables = (
        ("daily_checkins", "day < $1"),
        ("checkin_contact_reviews", "day < $1"),
        ("checkin_reminders", "day < $1"),
    )
    async with conn.transaction():
        for table, where in tables:
            counts[table] = await _delete(conn, table, where, cutoff, dry_run)
        # The history is append-only; only this switch, local to the transaction, lets
        # the retention job delete from it (migration 0001, campusgate_append_only).
        await conn.execute("SET LOCAL campusgate.retention_purge = 'on'")
        counts["daily_checkin_history"] = await _delete(
            conn, "daily_checkin_history", "day < $1", cutoff, dry_run
        )
    return counts


async def _delete(
    conn: asyncpg.Connection, table: str, where: str, value: object, dry_run: bool
) -> int:
    if dry_run:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where}", value))
    status = await conn.execute(f"DELETE FROM {table} WHERE {where}", value)
    return int(status.rsplit(" ", 1)[-1])


async def person_checkins(conn: asyncpg.Connection, person_id: str) -> dict[str, Any]:
    """Everything check-in related held about one person (the data-subject export)."""
    history = await checkin_history(conn, person_id, limit=100_000)
    reviews = await conn.fetch(
        "SELECT day, raised_at, resolved_at, resolved_by, outcome"
        " FROM checkin_contact_reviews WHERE person_id = $1 ORDER BY day",
        person_id,
    )
    reminders = await conn.fetch(
        "SELECT day, sent_at FROM checkin_reminders WHERE person_id = $1 ORDER BY day",
        person_id,
    )
    return {
        "checkins": history,
        "contact_reviews": [dict(r) for r in reviews],
        "reminders": [dict(r) for r in reminders],
    }
