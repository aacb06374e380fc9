from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction, EventType
from gateway.store.access_log import (
    ensure_partitions,
    recent_decisions,
    write_access_records,
    zone_occupancy,
)

T0 = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)


def card(
    n: int,
    verdict: Verdict | None,
    reason: Reason | None,
    *,
    zone: str = "dorm",
    direction: Direction = Direction.IN,
    at: datetime = T0,
) -> AccessRecord:
    return AccessRecord(
        device_id="term-1",
        event_id=f"e{n}",
        type=EventType.CARD,
        device_ts=at - timedelta(seconds=1),
        received_at=at,
        door_id="dorm-in",
        zone_id=zone,
        person_id="s1",
        card_uid="04A1B2C3D4",
        direction=direction,
        celsius=36.5,
        verdict=verdict,
        reason=reason,
        decided_at=at + timedelta(milliseconds=2) if verdict else None,
        latency_us=1800 if verdict else None,
        detail={"pending_for_ms": 0, "note": "ok"},
    )


async def test_records_round_trip_through_copy(conn) -> None:
    await ensure_partitions(conn, T0)
    record = card(1, Verdict.ADMIT, Reason.OK)
    temperature = AccessRecord("term-1", "t1", EventType.TEMPERATURE, T0, T0, celsius=36.9)
    await write_access_records(conn, [record, temperature])
    await write_access_records(conn, [])
    rows = await conn.fetch("SELECT * FROM access_events ORDER BY event_id")
    assert [r["event_id"] for r in rows] == ["e1", "t1"]
    first = rows[0]
    assert (first["decision"], first["reason"], first["direction"]) == ("admit", "ok", "in")
    assert first["detail"] == {"pending_for_ms": 0, "note": "ok"}
    assert first["received_at"] == T0 and first["latency_us"] == 1800
    assert rows[1]["detail"] == {} and rows[1]["decision"] is None


async def test_recent_decisions_lists_final_card_decisions_only(conn) -> None:
    await write_access_records(
        conn,
        [
            card(1, Verdict.ADMIT, Reason.OK, at=T0 - timedelta(hours=2)),  # too old
            card(2, Verdict.DENY, Reason.UNKNOWN_CARD),
            card(3, Verdict.PENDING, Reason.TEMPERATURE_REQUIRED),
            card(4, None, None),
            card(5, Verdict.ADMIT, Reason.OK, at=T0 + timedelta(minutes=1)),
            AccessRecord("term-1", "t9", EventType.TEMPERATURE, T0, T0, celsius=36.9),
        ],
    )
    got = await recent_decisions(conn, T0 - timedelta(hours=1))
    assert got == [
        ("term-1", "e2", "deny", "unknown_card"),
        ("term-1", "e5", "admit", "ok"),
    ]


async def test_zone_occupancy_counts_admitted_in_minus_out(conn) -> None:
    records = [
        card(1, Verdict.ADMIT, Reason.OK),
        card(2, Verdict.ADMIT, Reason.OK),
        card(3, Verdict.ADMIT, Reason.OK),
        card(4, Verdict.ADMIT, Reason.OK, direction=Direction.OUT),
        card(5, Verdict.DENY, Reason.ZONE_FULL),  # denied: not inside
        card(6, Verdict.ADMIT, Reason.OK, zone="lab", direction=Direction.OUT),  # clamps at 0
    ]
    await write_access_records(conn, records)
    assert await zone_occupancy(conn) == {"dorm": 2, "lab": 0}
    assert await zone_occupancy(conn, since=T0 + timedelta(seconds=1)) == {}
