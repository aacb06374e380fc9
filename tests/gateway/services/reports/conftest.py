"""A generated campus in a fresh database, and helpers to log door events and health changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from firmware_sim.campus import Campus, SimPerson, dump_manifest, generate_campus
from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction, EventType
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.services.importer import import_file
from gateway.store.access_log import write_access_records
from gateway.store.health import set_health

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="session")
def small_campus() -> Campus:
    return generate_campus(seed=5, people=300)


@pytest.fixture
async def campus_conn(
    conn: asyncpg.Connection,
    small_campus: Campus,
    tmp_path: Path,
) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a fresh database holding `small_campus`."""
    path = tmp_path / "campus.yaml"
    dump_manifest(small_campus.manifest, path)
    await import_file(conn, path, tz=TZ, operator="test")
    yield conn


def today() -> date:
    return datetime.now(TZ).date()


def at(day: date, seconds: int) -> datetime:
    """`seconds` after the campus-local midnight that begins `day`."""
    return datetime.combine(day, datetime.min.time(), tzinfo=TZ) + timedelta(seconds=seconds)


@dataclass
class Log:
    """Writes card decisions to the access log as the gateway would."""

    conn: asyncpg.Connection
    door_zones: dict[str, str]
    n: int = 0

    async def card(
        self,
        when: datetime,
        door: str,
        verdict: str,
        reason: str,
        *,
        person: str | None = None,
        card: str = "04AABBCC",
        celsius: float | None = None,
        direction: str = "in",
    ) -> None:
        self.n += 1
        record = AccessRecord(
            device_id=f"term-{door}",
            event_id=f"e{self.n}",
            type=EventType.CARD,
            device_ts=when,
            received_at=when.astimezone(UTC),
            door_id=door,
            zone_id=self.door_zones[door],
            person_id=person,
            card_uid=card,
            direction=Direction(direction),
            celsius=celsius,
            verdict=Verdict(verdict),
            reason=Reason(reason),
            decided_at=when,
        )
        await write_access_records(self.conn, [record])


async def set_status(
    db: asyncpg.Connection,
    person: str,
    status: str,
    *,
    caretaker: str | None = None,
    until: datetime | None = None,
    reason: str = "test",
) -> None:
    record = HealthRecord(
        person, HealthStatus(status), datetime.now(UTC), until, reason, caretaker, "officer"
    )
    await set_health(db, record, changed_by="officer")


def students_of(campus: Campus, college: str) -> list[SimPerson]:
    """Active, not isolated students of a college, in id order."""
    return sorted(
        (
            p
            for p in campus.facts.people
            if p.kind == "student" and p.college == college and p.active and not p.isolated
        ),
        key=lambda p: p.id,
    )
