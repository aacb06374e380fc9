"""Stored stays (presence_stays) change no trace result, wherever the watermark stands.

Each trace is compared with the same trace over the log alone (no watermark): on the
hand-made passages of the rules tests and on a simulated campus, with the watermark
before, inside and after stays, built in one go or in steps, and with a max stay other
than the one the stays were built with. Then the job: incremental, idempotent, locked;
and retention deletes old stays.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import test_second_generation as second_rows
import test_trace_rules as rule_rows
from tracing_rows import at, passage, seed

from firmware_sim.presence import simulate
from gateway.cli.trace_bench import load_week
from gateway.domain.decisions import Verdict
from gateway.domain.events import Direction
from gateway.services.tracing import TraceRequest, trace
from gateway.services.tracing_stays import SETTLE, refresh_stays, stays_upto
from gateway.settings import Settings
from gateway.store import tracing_stays
from gateway.store.access_log import write_access_records
from gateway.store.locks import LockKey
from gateway.store.retention import AccessMode, purge_access_events

SETTINGS = Settings(trace_entry_gap_s=900, trace_max_stay_h=12)
MAX_STAY_S = SETTINGS.trace_max_stay_h * 3600.0


async def forget_stays(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE presence_stays")
    await conn.execute("DELETE FROM presence_stays_watermark")


async def stays_upto_mark(
    conn: asyncpg.Connection, upto: datetime, max_stay_s: float = MAX_STAY_S
) -> tracing_stays.Materialized:
    await forget_stays(conn)
    return await tracing_stays.materialize(conn, max_stay_s, upto)


async def stored_rows(conn: asyncpg.Connection) -> list[tuple]:
    rows = await conn.fetch(
        "SELECT person_id, zone_id, s, e FROM presence_stays ORDER BY person_id, zone_id, s, e"
    )
    return [tuple(r) for r in rows]


async def traces(conn, requests, settings=SETTINGS):
    return [(await trace(conn, r, settings, by="test")).contacts for r in requests]


HAND_MADE = [
    # The rules tests: A's capped stay (200-260) and G's overlapping it, a gate, a hall.
    (
        rule_rows.ROWS,
        rule_rows.PEOPLE,
        [TraceRequest(p, start=at(-200), end=at(1000), generations=2) for p in "ABG"],
        [-300, -95, 0, 30, 59.75, 60, 65, 95.5, 200, 230, 259, 261, 290, 405, 2000],
    ),
    # The second-generation tests: via through B and D in the shared office.
    (
        second_rows.ROWS,
        second_rows.PEOPLE,
        [TraceRequest(p, start=at(-60), end=at(600), generations=2) for p in "XB"],
        [-1, 0, 30, 55, 100, 120, 155, 160, 175, 200, 219, 221, 1000],
    ),
]


@pytest.mark.parametrize(("rows", "people", "requests", "marks"), HAND_MADE)
async def test_hand_made_traces_match_the_log_wherever_the_watermark_is(
    conn, rows, people, requests, marks
):
    await conn.execute(
        "INSERT INTO zones (id, name, kind) VALUES ('gate', 'Gate', 'gate') ON CONFLICT DO NOTHING"
    )
    await seed(conn, people, rows)
    from_log = await traces(conn, requests)
    assert any(c.generation == 2 and c.via for t in from_log for c in t)
    for minutes in marks:
        done = await stays_upto_mark(conn, at(minutes))
        assert done.upto == at(minutes) or (done.upto is None and done.stays == 0)
        assert await traces(conn, requests) == from_log, f"watermark at {minutes} min"


async def test_stays_built_in_steps_equal_one_build(conn):
    await seed(conn, rule_rows.PEOPLE, rule_rows.ROWS)
    await stays_upto_mark(conn, at(2000))
    whole = await stored_rows(conn)
    assert len(whole) == sum(
        1 for r in rule_rows.ROWS if r.direction == Direction.IN and r.verdict == Verdict.ADMIT
    )
    await forget_stays(conn)
    for minutes in (-150, 30, 30, 230, 2000):
        await tracing_stays.materialize(conn, MAX_STAY_S, at(minutes))
    assert await stored_rows(conn) == whole
    # A's lab stay from 200 ends at the canteen (260); B's lab stay at B's out.
    assert ("A", "lab", at(200), at(260)) in whole and ("B", "lab", at(30), at(90)) in whole
    # Tiny chunks (each its own transaction) give the same rows.
    await forget_stays(conn)
    await tracing_stays.materialize(conn, MAX_STAY_S, at(2000), chunk=timedelta(minutes=7))
    assert await stored_rows(conn) == whole


async def test_a_changed_max_stay_ignores_then_rebuilds_the_stays(conn):
    await seed(conn, rule_rows.PEOPLE, rule_rows.ROWS)
    short = Settings(trace_entry_gap_s=900, trace_max_stay_h=0.5)
    requests = [TraceRequest("A", start=at(-200), end=at(1000), generations=2)]
    from_log = await traces(conn, requests, short)
    # G's stay with A is cut to 30 minutes by the short max stay: a different answer.
    assert from_log != await traces(conn, requests, SETTINGS)
    await stays_upto_mark(conn, at(2000))  # built with 12 hours
    assert await tracing_stays.usable_upto(conn, 1800.0) is None
    assert await traces(conn, requests, short) == from_log
    done = await tracing_stays.materialize(conn, 1800.0, at(2000))
    assert done.rebuilt and done.upto == at(2000)
    assert await tracing_stays.usable_upto(conn, 1800.0) == at(2000)
    assert await traces(conn, requests, short) == from_log


async def test_simulated_campus_traces_match_the_log(conn):
    week = simulate(people=400, days=3, seed=11)
    await load_week(conn, week)
    people = random.Random(3).sample([p.id for p in week.people], 6)
    requests = [
        TraceRequest(p, start=week.window_start, end=week.window_end, generations=2) for p in people
    ]
    from_log = await traces(conn, requests)
    assert sum(len(t) for t in from_log) > 100
    assert any(c.generation == 2 and c.via for t in from_log for c in t)
    # Midday and evening marks fall inside many stays (lectures, labs, dormitories).
    for hours in (-30, 0, 13.3, 21.75, 40.1, 60.5, 200):
        upto = week.window_start + timedelta(hours=hours)
        await stays_upto_mark(conn, upto)
        assert await traces(conn, requests) == from_log, f"watermark at {hours} h"


async def test_a_passage_logged_late_is_seen_through_stored_stays(conn):
    """B's lab `out` at 90 min reaches the log after the stays were stored (queued while
    the gateway was down): traces see it at once, and the job rebuilds the stays."""
    late_out = next(
        r for r in rule_rows.ROWS if (r.person_id, r.zone_id, r.received_at) == ("B", "lab", at(90))
    )
    # T1 is in the lab after B left: B's contact only while B's `out` is missing.
    t1_in_lab = [passage("T1", "lab", 95), passage("T1", "lab", 115, "out")]
    rows = [*(r for r in rule_rows.ROWS if r is not late_out), *t1_in_lab]
    await seed(conn, rule_rows.PEOPLE, rows)
    requests = [
        TraceRequest(p, start=at(-200), end=at(1000), generations=2) for p in ("A", "B", "T1")
    ]
    await stays_upto_mark(conn, at(2000))
    assert ("B", "lab", at(30), at(90)) not in await stored_rows(conn)
    on_time = replace(late_out, gateway_ts=late_out.received_at + timedelta(seconds=30))
    await write_access_records(conn, [on_time])  # a few seconds late: not marked
    assert await tracing_stays.usable_upto(conn, MAX_STAY_S) == at(2000)
    await conn.execute(
        "DELETE FROM access_events WHERE device_id = $1 AND event_id = $2",
        late_out.device_id,
        late_out.event_id,
    )

    await write_access_records(conn, [replace(late_out, gateway_ts=at(2100))])
    assert await tracing_stays.usable_upto(conn, MAX_STAY_S) == at(90) - timedelta(
        seconds=MAX_STAY_S
    )
    await forget_stays(conn)
    from_log = await traces(conn, requests)
    assert "T1" not in {c.person_id for c in from_log[1]}
    await stays_upto_mark(conn, at(2000))
    whole = await stored_rows(conn)
    assert ("B", "lab", at(30), at(90)) in whole

    # Again with the stays stored before the late passage: the same answers.
    await conn.execute(
        "DELETE FROM access_events WHERE device_id = $1 AND event_id = $2",
        late_out.device_id,
        late_out.event_id,
    )
    await stays_upto_mark(conn, at(2000))
    await write_access_records(conn, [replace(late_out, gateway_ts=at(2100))])
    assert await traces(conn, requests) == from_log
    done = await tracing_stays.materialize(conn, MAX_STAY_S, at(2000))
    assert done.upto == at(2000) and done.stays > 0
    assert await stored_rows(conn) == whole
    mark = await tracing_stays.watermark(conn)
    assert mark is not None and mark.stale_from is None
    assert await traces(conn, requests) == from_log


async def test_job_is_incremental_and_idempotent(conn):
    await seed(conn, rule_rows.PEOPLE, rule_rows.ROWS)
    max_stay = timedelta(hours=SETTINGS.trace_max_stay_h)
    first_now = at(100) + max_stay + SETTLE
    assert stays_upto(SETTINGS, first_now) == at(100)
    first = await refresh_stays(conn, SETTINGS, first_now)
    assert first["upto"] == at(100).isoformat() and not first["rebuilt"]
    assert all(s < at(100) for _, _, s, _ in await stored_rows(conn))
    assert first["stays"] == len(await stored_rows(conn)) > 0
    again = await refresh_stays(conn, SETTINGS, first_now)
    assert again["stays"] == 0 and again["upto"] == first["upto"]
    later = await refresh_stays(conn, SETTINGS, at(2000) + max_stay + SETTLE)
    assert later["stays"] > 0
    stepwise = await stored_rows(conn)
    await stays_upto_mark(conn, at(2000))
    assert stepwise == await stored_rows(conn)


async def test_job_on_an_empty_log_stores_nothing(conn):
    done = await refresh_stays(conn, SETTINGS, datetime.now(UTC))
    assert done == {"stays": 0, "upto": None, "rebuilt": False}
    assert await tracing_stays.watermark(conn) is None


async def test_job_skips_while_another_run_holds_the_lock(conn, fresh_db):
    await seed(conn, rule_rows.PEOPLE, rule_rows.ROWS)
    other = await asyncpg.connect(fresh_db)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LockKey.PRESENCE_STAYS)
        skipped = await refresh_stays(conn, SETTINGS, datetime.now(UTC))
        assert "skipped" in skipped
        assert await tracing_stays.watermark(conn) is None
        await other.execute("SELECT pg_advisory_unlock($1)", LockKey.PRESENCE_STAYS)
        done = await refresh_stays(conn, SETTINGS, datetime.now(UTC))
        assert done["stays"] == len(await stored_rows(conn)) > 0
    finally:
        await other.close()
    # The run released its lock: another session can take it.
    other = await asyncpg.connect(fresh_db)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LockKey.PRESENCE_STAYS)
    finally:
        await other.close()


@pytest.mark.parametrize("mode", list(AccessMode))
async def test_retention_deletes_stays_with_their_passages(conn, mode):
    await seed(conn, rule_rows.PEOPLE, rule_rows.ROWS)
    await stays_upto_mark(conn, at(2000))
    before = await stored_rows(conn)
    dry = await purge_access_events(conn, at(100), mode, dry_run=True)
    expected = sum(1 for _, _, s, _ in before if s < at(100))
    assert dry["presence_stays"] == expected > 0
    assert await stored_rows(conn) == before
    real = await purge_access_events(conn, at(100), mode, dry_run=False)
    assert real["presence_stays"] == expected
    assert await stored_rows(conn) == [r for r in before if r[2] >= at(100)]
    # What is left still traces like the log.
    requests = [TraceRequest("A", start=at(100), end=at(1000), generations=2)]
    with_stays = await traces(conn, requests)
    await forget_stays(conn)
    assert with_stays == await traces(conn, requests)
