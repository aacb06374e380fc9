"""An admit with no log row (issue #10, point 4), end to end through a real gateway.

A time whose UTC instant falls before year 1 is refused by the codec; and should any
event still reach the journal with a row the database cannot take, its decision is
never sent: the door stays shut rather than open with nothing in the log.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import asyncpg

from devices.codecs import contract_json
from gateway.pipeline import ingest


async def _rows(dsn: str, device_id: str, event_ids: list[str]) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_id FROM access_events WHERE device_id = $1 AND event_id = ANY($2)",
            device_id,
            event_ids,
        )
    finally:
        await conn.close()
    return sorted(r[0] for r in rows)


async def test_a_time_outside_the_years_is_refused_at_the_codec(gateway, fleet, campus, campus_dsn):
    facts = campus.facts
    terminal = fleet[facts.gate_device]
    for ts in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-12:00"):
        event = {
            "event_id": f"far-{ts[:4]}",
            "ts": ts,
            "type": "card",
            "card_uid": facts.resident_cards[0],
        }
        terminal.send_raw(json.dumps(event).encode())
    after = terminal.swipe(facts.resident_cards[1])
    assert (await terminal.decision(after))["decision"] == "admit"
    assert terminal.finals("far-0001") == [] and terminal.finals("far-9999") == []
    assert gateway.counters.rejected_by_cause["bad_value"] == 2
    assert await _rows(campus_dsn, facts.gate_device, ["far-0001", "far-9999"]) == []


async def test_no_admit_is_sent_for_a_row_the_database_refused(
    gateway, fleet, campus, campus_dsn, monkeypatch
):
    """The codec is bypassed (as a codec bug would): the door desk admits, the COPY fails
    with OverflowError, and the admit must not go out."""
    real_decode = contract_json.decode_event
    year_zero = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))

    def leaky_decode(device_id: str, payload: bytes):
        event = real_decode(device_id, payload)
        if event.event_id.startswith("leak-"):
            event = dataclasses.replace(event, ts=year_zero)
        return event

    monkeypatch.setattr(ingest, "decode_event", leaky_decode)
    facts = campus.facts
    terminal = fleet[facts.gate_device]
    logged_before = gateway.counters.logged
    leaked = terminal.swipe(facts.resident_cards[2], event_id="leak-1")
    fine = terminal.swipe(facts.resident_cards[3])
    assert (await terminal.decision(fine))["decision"] == "admit"
    await gateway.journal.drain()
    # The follow-ups of a batch run in order, and the leaked event came first.
    assert terminal.finals(leaked) == [], "an admit was sent for a row that is not in the log"
    assert await _rows(campus_dsn, facts.gate_device, [leaked, fine]) == [fine]
    assert gateway.counters.logged - logged_before == 1
    assert gateway.counters.rejected_by_cause["journal_refused"] == 1
    # A repeat of the event is answered from what was recorded: nothing.
    terminal.resend(leaked)
    again = terminal.swipe(facts.resident_cards[4])
    assert (await terminal.decision(again))["decision"] == "admit"
    assert terminal.finals(leaked) == []
