"""Contacts caretakers record with people in isolation (issue #15, point 4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.domain.care import CareContact, Channel, Feeling
from gateway.domain.health import ISOLATION_STATUSES
from gateway.store.org_tree import subtree_cte

_ISOLATION = [s.value for s in ISOLATION_STATUSES]


@dataclass(frozen=True, slots=True)
class RecordedContact:
    """A contact as stored."""

    id: int
    person_id: str
    caretaker_id: str | None
    channel: Channel
    at: datetime
    feeling: Feeling
    temperature_c: float | None
    note: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class IsolationCase:
    """A current isolation case as follow-up needs it."""

    person_id: str
    name: str
    org_unit_id: str | None
    phone: str | None
    status: str
    since: datetime
    caretaker_id: str | None
    caretaker_name: str | None
    last_contact_at: datetime | None


_CONTACT_COLUMNS = (
    "id, person_id, caretaker_id, channel, at, feeling, temperature_c::float8, note,"
    " recorded_by, recorded_at"
)


def _contact(row: asyncpg.Record) -> RecordedContact:
    return RecordedContact(
        row[0], row[1], row[2], Channel(row[3]), row[4], Feeling(row[5]), row[6], row[7],
        row[8], row[9],
    )  # fmt: skip


async def record_contact(
    conn: asyncpg.Connection,
    person_id: str,
    caretaker_id: str | None,
    contact: CareContact,
    recorded_by: str,
) -> RecordedContact:
    row = await conn.fetchrow(
        "INSERT INTO care_contacts"
        " (person_id, caretaker_id, channel, at, feeling, temperature_c, note, recorded_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING " + _CONTACT_COLUMNS,
        person_id,
        caretaker_id,
        contact.channel.value,
        contact.at,
        contact.feeling.value,
        contact.temperature_c,
        contact.note,
        recorded_by,
    )
    assert row is not None  # INSERT ... RETURNING always returns the row
    return _contact(row)


async def contacts_of(
    conn: asyncpg.Connection, person_id: str, *, since: datetime | None = None, limit: int = 200
) -> list[RecordedContact]:
    """The person's contacts, newest first (only those at or after `since` when given)."""
    rows = await conn.fetch(
        "SELECT " + _CONTACT_COLUMNS + " FROM care_contacts"
        " WHERE person_id = $1 AND ($2::timestamptz IS NULL OR at >= $2)"
        " ORDER BY at DESC, id DESC LIMIT $3",
        person_id,
        since,
        limit,
    )
    return [_contact(r) for r in rows]


async def isolation_cases(
    conn: asyncpg.Connection,
    now: datetime,
    *,
    caretaker_id: str | None = None,
    person_ids: Sequence[str] | None = None,
    org_scope: str | None = None,
) -> list[IsolationCase]:
    """Current isolation cases (not yet expired) with the last contact since each began;
    only one caretaker's, the named people's, or those of an org unit's subtree, when
    given. By person id."""
    rows = await conn.fetch(
        subtree_cte(5)
        + """
        SELECT h.person_id, p.name, p.org_unit_id, p.phone, h.status, h.since,
               h.caretaker_id, c.name,
               (SELECT max(k.at) FROM care_contacts k
                 WHERE k.person_id = h.person_id AND k.at >= h.since)
        FROM health_status h
        JOIN people p ON p.id = h.person_id
        LEFT JOIN people c ON c.id = h.caretaker_id
        WHERE h.status = ANY($1::text[]) AND (h.until IS NULL OR h.until > $2)
          AND ($3::text IS NULL OR h.caretaker_id = $3)
          AND ($4::text[] IS NULL OR h.person_id = ANY($4::text[]))
          AND ($5::text IS NULL OR p.org_unit_id IN (SELECT id FROM scope))
        ORDER BY h.person_id
        """,
        _ISOLATION,
        now,
        caretaker_id,
        None if person_ids is None else list(person_ids),
        org_scope,
    )
    return [IsolationCase(*r) for r in rows]
