"""Hand-made access-log rows and a tiny roster for the tracing tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction, EventType
from gateway.store.access_log import write_access_records

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
_counter = iter(range(1, 10**9))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def passage(
    person: str,
    zone: str,
    minutes: float,
    direction: str = "in",
    *,
    admitted: bool = True,
) -> AccessRecord:
    when = at(minutes)
    device = f"term-{zone}-{direction}"
    return AccessRecord(
        device_id=device,
        event_id=f"e{next(_counter)}",
        type=EventType.CARD,
        device_ts=when,
        received_at=when,
        door_id=f"{zone}-{direction}",
        zone_id=zone,
        person_id=person,
        card_uid="0A0B0C0D",
        direction=Direction(direction),
        verdict=Verdict.ADMIT if admitted else Verdict.DENY,
        reason=Reason.OK if admitted else Reason.NOT_AUTHORIZED,
        decided_at=when,
    )


async def seed(conn: asyncpg.Connection, people: list[str], rows: list[AccessRecord]) -> None:
    await conn.execute(
        "INSERT INTO org_units (id, name) VALUES ('u', 'Unit') ON CONFLICT DO NOTHING"
    )
    await conn.executemany(
        "INSERT INTO people (id, kind, name, org_unit_id) VALUES ($1, $2, $3, 'u') "
        "ON CONFLICT DO NOTHING",
        [(p, "staff" if p.startswith("T") else "student", f"Name {p}") for p in people],
    )
    await conn.fetchval("SELECT campusgate_ensure_access_partition($1)", T0)
    await write_access_records(conn, rows)
