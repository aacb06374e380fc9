"""The demo's offline showcase (issue 13): a door decides alone while the gateway is stopped.

The gate's simulated terminal is swapped for an `OfflineTerminal` (the same device id,
its list and journal under the data dir). The gateway stops; the door keeps an isolated
person and an outsider out and lets a student in; a resident isolated meanwhile is let in
on the stale list. The gateway starts again, the door uploads its journal, and the
showcase checks that every offline event is logged once and the stale admit raised
`offline_mismatch`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from firmware_sim.campus import Campus
from firmware_sim.fleet import Fleet
from firmware_sim.offline import OfflineTerminal
from firmware_sim.scenarios import ScenarioResult
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.pipeline.door_worker import Gateway
from gateway.store.db import connect
from gateway.store.health import set_health
from gateway.store.roster_write import holder_of_card


async def _until(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _set_status(dsn: str, person_id: str, status: HealthStatus) -> None:
    conn = await connect(dsn)
    try:
        record = HealthRecord(person_id, status, datetime.now(UTC), reason="demo: offline showcase")
        await set_health(conn, record, changed_by="demo")
    finally:
        await conn.close()


async def offline_showcase(
    gateway: Gateway,
    fleet: Fleet,
    campus: Campus,
    dsn: str,
    pin: str,
    state_dir: Path,
    console: Console,
) -> ScenarioResult:
    """Stop the gateway, decide at the gate alone, start it again and reconcile."""
    result = ScenarioResult("offline: the gate decides alone while the gateway is stopped")
    facts = campus.facts
    device = facts.gate_device
    student, stale_card = facts.resident_cards[0], facts.resident_cards[-1]
    conn = await connect(dsn)
    try:
        stale_person = await holder_of_card(conn, stale_card)
    finally:
        await conn.close()
    if stale_person is None:
        result.expect("the resident's card on the roster", "found", "not found")
        return result
    usual = fleet[device]
    await usual.stop()
    door = OfflineTerminal(
        fleet.address,
        device,
        prefix=fleet.prefix,
        command_key=pin,
        state_dir=state_dir,
        **fleet.identity(device),  # the gate's own broker account where the demo enforces them
    )
    await door.start()
    try:
        got_list = await _until(lambda: door.holder.current is not None, 30)
        result.expect("the gate holds a signed allowlist", "yes", "yes" if got_list else "no")
        console.print("  gateway stopping: the gate decides from its allowlist")
        await gateway.stop()
        await _until(lambda: door.gateway_online is False, 10)
        await _set_status(dsn, stale_person, HealthStatus.HOME_ISOLATION)
        cards = {
            # Held people are not in the list (it must not reveal them): unknown offline.
            "isolated person": (facts.isolated_card, "deny unknown_card"),
            "outsider": (facts.outsider_card, "deny unknown_card"),
            "student": (student, "admit ok"),
            "resident isolated after the list was sent": (stale_card, "admit ok"),
        }
        for name, (card, expected) in cards.items():
            decided = await door.decision(door.swipe(card), timeout=5)
            result.expect(
                f"offline: {name}", expected, f"{decided['decision']} {decided['reason']}"
            )
        journaled = len(door.journal)
        console.print(f"  {journaled} offline decisions journalled; gateway starting again")
        await gateway.start()
        uploads = gateway.offline.uploads if gateway.offline else None
        drained = await _until(lambda: len(door.journal) == 0, 30)
        result.expect("the journal is uploaded and acknowledged", "yes", "yes" if drained else "no")
        result.expect(
            "offline events logged once",
            str(journaled),
            str(uploads.logged if uploads else 0),
        )
        result.expect(
            "offline_mismatch for the stale admit",
            "1",
            str(uploads.mismatches if uploads else 0),
        )
    finally:
        await door.stop()
        await _set_status(dsn, stale_person, HealthStatus.CLEAR)
        await usual.start()
    return result
