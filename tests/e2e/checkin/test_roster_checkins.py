"""Check-ins reach a gateway's in-memory roster by their NOTIFY alone: no query, no
reload, within the debounce. Figures are printed (run with -s), not asserted."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg

from gateway.domain.checkin import campus_day
from gateway.pipeline.roster_state import RosterState
from gateway.settings import Settings
from gateway.store.db import create_pool

PEOPLE = 20_000
BURST = 2_000


async def _wait(predicate, within_s: float = 10.0) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    while not predicate():
        assert time.perf_counter() - started < within_s, "the roster never learned of it"
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


async def test_a_burst_of_checkins_reaches_the_roster_without_a_reload(
    conn: asyncpg.Connection, fresh_db: str
) -> None:
    await conn.execute("INSERT INTO org_units (id, name) VALUES ('u', 'U')")
    await conn.copy_records_to_table(
        "people",
        records=[(f"P{n:06d}", "student", f"Person {n}", "u") for n in range(PEOPLE)],
        columns=("id", "kind", "name", "org_unit_id"),
    )
    day = campus_day(datetime.now(UTC), Settings().tz)
    pool = await create_pool(fresh_db, min_size=1, max_size=2)
    state = RosterState(pool, fresh_db)
    await state.start()
    try:
        reloads = state.reloads
        started = time.perf_counter()
        await conn.execute(
            "INSERT INTO daily_checkins (person_id, day, location, dormitory, temperature_c)"
            " VALUES ('P000001', $1, 'on_campus', 'D1', 36.5)",
            day,
        )
        one = await _wait(lambda: state.index.checked_in("P000001", day))
        committed = time.perf_counter() - started
        # A burst: one statement a check-in, as the API makes them.
        ids = [f"P{n:06d}" for n in range(2, 2 + BURST)]
        started = time.perf_counter()
        for person_id in ids:
            await conn.execute(
                "INSERT INTO daily_checkins (person_id, day, location, dormitory, temperature_c)"
                " VALUES ($1, $2, 'on_campus', 'D1', 36.5)",
                person_id,
                day,
            )
        sent = time.perf_counter() - started
        last = await _wait(lambda: all(state.index.checked_in(p, day) for p in ids[-10:]))
        assert all(state.index.checked_in(p, day) for p in ids)
        assert not state.index.checked_in("P000000", day)
        # Malformed payloads are logged and ignored; none of this reloaded the roster.
        await conn.execute("NOTIFY campusgate_roster, 'daily_checkins:P000000:not-a-day'")
        await asyncio.sleep(0.2)
        assert state.reloads == reloads
        assert state.checkins_applied == 1 + BURST
        print(
            f"\nroster of {PEOPLE} people: one check-in known {one * 1000:.1f} ms after its"
            f" commit returned ({committed * 1000:.1f} ms from the insert); {BURST} check-ins"
            f" sent in {sent:.2f} s, all known {last * 1000:.1f} ms after the last commit"
        )
    finally:
        await state.stop()
        await pool.close()


async def test_only_a_new_person_day_notifies_not_a_same_day_correction(
    conn: asyncpg.Connection, fresh_db: str
) -> None:
    """Security review: a re-submit in a loop must not make every gateway copy the
    check-in map; doors only need to know that a person checked in on a day."""
    await conn.execute(
        "INSERT INTO org_units (id, name) VALUES ('u', 'U');"
        "INSERT INTO people (id, kind, name, org_unit_id) VALUES ('P1', 'student', 'P', 'u')"
    )
    heard: list[str] = []
    listener = await asyncpg.connect(fresh_db)
    await listener.add_listener("campusgate_roster", lambda *args: heard.append(args[3]))
    try:
        upsert = (
            "INSERT INTO daily_checkins AS c (person_id, day, location, dormitory, temperature_c)"
            " VALUES ('P1', $1, 'on_campus', 'D1', $2) ON CONFLICT (person_id, day) DO UPDATE"
            " SET temperature_c = EXCLUDED.temperature_c, version = c.version + 1"
        )
        day = campus_day(datetime.now(UTC), Settings().tz)
        for n in range(5):
            await conn.execute(upsert, day, 36.0 + n / 10)
        moved = day.replace(year=day.year - 1)
        await conn.execute("UPDATE daily_checkins SET day = $1 WHERE person_id = 'P1'", moved)
        await asyncio.sleep(0.3)
    finally:
        await listener.close()
    assert heard == [f"daily_checkins:P1:{day.isoformat()}", f"daily_checkins:P1:{moved}"]
