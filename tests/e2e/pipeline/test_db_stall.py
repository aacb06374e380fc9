"""A database connection that hangs: the doors must not freeze with it (issue #10, point 1).

The gateway reaches PostgreSQL through a proxy the test controls. `black_hole()` makes the
connections open at that moment carry nothing more, while new ones pass: the journal's
connection, the pool's and the roster's LISTEN connection all hang without an error.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from db_proxy import FaultyProxy

from firmware_sim.fleet import AlertWatch, Fleet
from gateway.pipeline.door_worker import Gateway

STALL_BUDGET_S = 25.0  # generous on a loaded machine; the deadlines are a few seconds


async def _logged(dsn: str, device_id: str, event_ids: list[str]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM access_events WHERE device_id = $1 AND event_id = ANY($2)",
            device_id,
            event_ids,
        )
    finally:
        await conn.close()


async def test_a_black_holed_connection_is_dropped_and_every_door_goes_on(
    campus_dsn, mqtt_url, prefix, campus, config_factory, caplog
):
    caplog.set_level(logging.INFO, logger="gateway")
    facts = campus.facts
    async with FaultyProxy(campus_dsn) as proxy:
        gateway = Gateway(config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"))
        await gateway.start()
        try:
            async with (
                Fleet(mqtt_url, [facts.gate_device], prefix=prefix) as fleet,
                AlertWatch(mqtt_url, prefix=prefix) as alerts,
            ):
                terminal = fleet[facts.gate_device]
                first = terminal.swipe(facts.resident_cards[0])
                assert (await terminal.decision(first))["decision"] == "admit"

                assert proxy.black_hole() >= 2  # the journal's, the pool's, the listener's
                holed_at = time.perf_counter()
                during = [terminal.swipe(facts.resident_cards[k % 10]) for k in range(20)]
                answers = [await terminal.decision(eid, timeout=STALL_BUDGET_S) for eid in during]
                first_after = min(
                    terminal.decided_at[eid] for eid in during if eid in terminal.decided_at
                )
                assert [a["decision"] for a in answers] == ["admit"] * len(during)

                stall = await alerts.wait_for("database_stall", timeout=10)
                assert stall is not None, "the stall was not alerted"
                resolved = [
                    a for a in alerts.matching("database_stall") if a["status"] == "resolved"
                ]
                assert resolved or await _wait_resolved(alerts), "the stall alert was not resolved"
                stall_logs = [r for r in caplog.records if "database stalled" in r.getMessage()]
                assert len(stall_logs) == 1, [r.getMessage() for r in stall_logs]
                logging.getLogger(__name__).warning(
                    "first decision %.2f s after the black hole", first_after - holed_at
                )
                # New connections after the fault: the stalled ones were given up.
                assert proxy.accepted >= 4
        finally:
            proxy.heal()  # today's code would otherwise wait on those connections for ever
            await gateway.stop()

    assert await _logged(campus_dsn, facts.gate_device, during) == len(during), (
        "every event logged exactly once"
    )


async def _wait_resolved(alerts: AlertWatch) -> bool:
    for _ in range(50):
        if any(a["status"] == "resolved" for a in alerts.matching("database_stall")):
            return True
        await asyncio.sleep(0.2)
    return False


async def _set_revoked(dsn: str, card_uid: str, revoked: bool) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE cards SET revoked = $2 WHERE uid = $1", card_uid, revoked)
    finally:
        await conn.close()


async def test_roster_changes_still_reach_the_doors_after_the_listener_hangs(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    """The LISTEN connection hangs silently: no notification ever comes on it. The roster
    must notice (it pings), listen again and reload, so a revoked card is denied."""
    facts = campus.facts
    card = facts.resident_cards[-1]
    async with FaultyProxy(campus_dsn) as proxy:
        gateway = Gateway(config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"))
        await gateway.start()
        try:
            async with Fleet(mqtt_url, [facts.gate_device], prefix=prefix) as fleet:
                terminal = fleet[facts.gate_device]
                assert (await terminal.decision(terminal.swipe(card)))["decision"] == "admit"
                proxy.black_hole()
                await _set_revoked(campus_dsn, card, True)
                answer: dict[str, object] = {}
                for _ in range(60):  # bounded: about 30 s at most
                    answer = await terminal.decision(terminal.swipe(card), timeout=STALL_BUDGET_S)
                    if answer["decision"] == "deny":
                        break
                    await asyncio.sleep(0.5)
                assert answer["reason"] == "card_revoked", "the revocation never reached the door"
        finally:
            proxy.heal()
            await _set_revoked(campus_dsn, card, False)
            await gateway.stop()
