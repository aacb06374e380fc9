from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.services.caretaking import choose_caretakers
from gateway.store.health import set_health


async def _isolate(conn: asyncpg.Connection, pid: str, caretaker: str, *, days: int = 5) -> None:
    now = datetime.now(UTC)
    record = HealthRecord(
        pid, HealthStatus.HOME_ISOLATION, now, now + timedelta(days=days), "t", caretaker, "t"
    )
    await set_health(conn, record, changed_by="t")


async def test_nearest_unit_with_active_staff(campus: asyncpg.Connection) -> None:
    # cs-1-a has no staff; cs-1 only an inactive one; cs has T1 and T2 (ties by id).
    chosen = await choose_caretakers(campus, ["S1", "S4", "S5", "nobody"])
    assert chosen == {"S1": "T1", "S4": "T3", "S5": None, "nobody": None}


async def test_least_loaded_and_spread_within_one_call(campus: asyncpg.Connection) -> None:
    await _isolate(campus, "S3", "T1")
    chosen = await choose_caretakers(campus, ["S1", "S2"])
    # T1 holds one case already: T2 gets the first, then they are even again (T1 by id).
    assert chosen == {"S1": "T2", "S2": "T1"}


async def test_expired_cases_do_not_count_as_load(campus: asyncpg.Connection) -> None:
    await _isolate(campus, "S3", "T1", days=-1)
    assert await choose_caretakers(campus, ["S1"]) == {"S1": "T1"}


async def test_never_the_person_themself(campus: asyncpg.Connection) -> None:
    chosen = await choose_caretakers(campus, ["T3", "T1"])
    assert chosen == {"T3": None, "T1": "T2"}
