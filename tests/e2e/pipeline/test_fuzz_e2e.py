"""Mutated payloads through the real broker never stall the gateway or lose a good event."""

from __future__ import annotations

import asyncio
import json
import random


def mutate(rng: random.Random, good: bytes) -> bytes:
    data = bytearray(good)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randrange(len(data)) if data else 0
        if choice < 0.4 and data:
            data[position] = rng.randrange(256)
        elif choice < 0.6:
            data.insert(position, rng.randrange(256))
        elif choice < 0.8 and data:
            del data[position]
        else:
            data = data[: rng.randrange(len(data) + 1)]
    return bytes(data)


async def test_fuzzed_payloads(gateway, fleet, campus):
    rng = random.Random(20261128)
    terminal = fleet[campus.facts.gate_device]
    good = json.dumps(
        {
            "event_id": "fz",
            "ts": "2026-11-28T10:00:00+08:00",
            "type": "card",
            "card_uid": campus.facts.resident_cards[3],
        }
    ).encode()
    before = gateway.counters.snapshot()
    sent = 300
    for _ in range(sent):
        terminal.send_raw(mutate(rng, good))
    eid = terminal.swipe(campus.facts.resident_cards[3])
    decision = await terminal.decision(eid, timeout=10)
    assert decision["decision"] == "admit"
    for _ in range(
        100
    ):  # everything sent before the good swipe has been read by now; let counters settle
        if gateway.counters.received - before["received"] >= sent + 1:
            break
        await asyncio.sleep(0.05)
    after = gateway.counters.snapshot()
    assert after["received"] - before["received"] == sent + 1
    assert after["rejected"] > before["rejected"]
    assert "internal_error" not in after["rejected_by_cause"]
