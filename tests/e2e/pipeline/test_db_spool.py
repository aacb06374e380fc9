"""The database down is not the doors down (issue 13, point 4).

With a spool, a gateway whose PostgreSQL is cut (the TCP proxy of tests/db_proxy.py)
keeps deciding from its in-memory roster, journals to a local SQLite file, and drains
it into the store in order once the database is back: every event in the log once,
no decision twice, also when the gateway is SIGKILLed while the spool holds rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess

import asyncpg
from db_proxy import FaultyProxy
from prometheus_client import generate_latest
from test_restart import spawn_gateway, wait_ready

from firmware_sim.fleet import Fleet
from gateway.pipeline.door_worker import Gateway
from gateway.pipeline.spool import decode, spool_path
from gateway.pipeline.telemetry import WorkerStatus
from gateway.store import access_log, spool_drains
from gateway.store.db import connect
from gateway.store.local_spool import LocalSpool

RATE = 60.0  # card events per second, across the doors
BEFORE_S, CUT_S, AFTER_S = 1.5, 6.0, 1.5
DRAIN_BUDGET_S = 60.0  # generous: the drain of a few hundred rows takes well under a second


async def _log_counts(dsn: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT device_id, event_id, count(*) AS n FROM access_events "
            "WHERE device_id = ANY($1) AND event_id = ANY($2) GROUP BY 1, 2",
            sorted({d for d, _ in keys}),
            [e for _, e in keys],
        )
    finally:
        await conn.close()
    return {(r["device_id"], r["event_id"]): r["n"] for r in rows}


async def _until(check, budget_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    while not await check():
        assert loop.time() < deadline, f"{what} within {budget_s} s"
        await asyncio.sleep(0.2)


async def test_doors_keep_deciding_while_the_database_is_cut(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    facts = campus.facts
    devices = [facts.gate_device, facts.office_device, facts.lab_device, facts.dorm_exit_device]
    cards = facts.resident_cards
    async with FaultyProxy(campus_dsn) as proxy:
        config = dataclasses.replace(
            config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
            spool_path=tmp_path / "spool.sqlite3",
        )
        gateway = Gateway(config)
        await gateway.start()
        status = WorkerStatus(gateway)
        sent: list[tuple[str, str]] = []
        during: list[tuple[str, str]] = []
        try:
            async with Fleet(mqtt_url, devices, prefix=prefix) as fleet:
                loop = asyncio.get_running_loop()
                started = loop.time()
                total = int((BEFORE_S + CUT_S + AFTER_S) * RATE)
                cut = healed = False
                for k in range(total):
                    due = started + k / RATE
                    if due > loop.time():
                        await asyncio.sleep(due - loop.time())
                    if not cut and k >= BEFORE_S * RATE:
                        proxy.cut()
                        cut = True
                    if cut and not healed and k >= (BEFORE_S + CUT_S) * RATE:
                        # Decided while the database was away: no answer waited for it.
                        decided_during = sum(1 for d, e in during if fleet[d].finals(e))
                        aged = gateway.roster.age_s()  # changes could not arrive
                        shown = status.deciding_on()
                        scraped = generate_latest(status.registry).decode()
                        proxy.accept()
                        healed = True
                    device = devices[k % len(devices)]
                    key = (device, fleet[device].swipe(cards[k % len(cards)], direction="out"))
                    sent.append(key)
                    if cut and not healed:
                        during.append(key)
                for device, eid in sent:
                    await fleet[device].decision(eid, timeout=30)
                gaps = [fleet[d].latency_s(e) or 0.0 for d, e in sent]
                finals = {(d, e): fleet[d].finals(e) for d, e in sent}
                problems = fleet.problems()
            print(
                f"\nspool outage: {len(sent)} card events at {RATE:.0f}/s, database cut "
                f"{CUT_S:.0f} s: {decided_during} of {len(during)} decided during the cut, "
                f"longest card-to-decision gap {max(gaps) * 1000:.0f} ms, roster age at the end "
                f"of the cut {aged:.1f} s, "
                f"spooled {gateway.spool.spooled} items"
            )
            assert decided_during > len(during) // 2, "the doors waited for the database"
            assert gateway.spool.spooled > 0
            assert not problems, problems
            for key, answers in finals.items():
                assert len(answers) == 1, f"{key} was decided {len(answers)} times"
            await _until(
                lambda: asyncio.sleep(0, not gateway.journal.spooling),
                DRAIN_BUDGET_S,
                "the spool drained",
            )
            assert aged > 0, "the roster's age did not show the outage"
            # /readyz and /metrics say what the doors are decided on.
            assert shown["journal"] == "spool" and shown["roster_age_s"] > 0, shown
            assert shown["spool_items"] > 0, shown
            assert "campusgate_spool_items" in scraped and "campusgate_spool_active 1.0" in scraped
            age_line = next(
                line for line in scraped.splitlines() if line.startswith("campusgate_roster_age")
            )
            assert float(age_line.split()[-1]) > 0, age_line
            await _until(
                lambda: asyncio.sleep(0, gateway.roster.age_s() == 0.0),
                DRAIN_BUDGET_S,
                "the roster current again",
            )
        finally:
            await gateway.stop()

    logged = await _log_counts(campus_dsn, sent)
    assert set(logged) == set(sent), f"{len(set(sent) - set(logged))} events missing from the log"
    assert max(logged.values()) == 1, "an event was logged twice"


async def test_a_gateway_killed_with_a_full_spool_drains_it_once_after_restart(
    campus_dsn, mqtt_url, prefix, campus, tmp_path
):
    facts = campus.facts
    devices = [facts.gate_device, facts.office_device]
    cards = facts.resident_cards
    log = tmp_path / "gateway.log"
    env = {"CAMPUSGATE_DATA_DIR": str(tmp_path / "data")}
    spool_file = spool_path(tmp_path / "data", f"gw-{prefix}")
    sent: list[tuple[str, str]] = []
    async with FaultyProxy(campus_dsn) as proxy:
        proc = spawn_gateway(proxy.dsn, mqtt_url, prefix, log, env)
        try:
            async with Fleet(mqtt_url, devices, prefix=prefix) as fleet:
                await wait_ready(fleet, facts.gate_device, cards[0])
                proxy.cut()
                for k in range(120):
                    device = devices[k % len(devices)]
                    sent.append((device, fleet[device].swipe(cards[k % len(cards)])))
                    await asyncio.sleep(0.01)
                for device, eid in sent:  # decided from the spool, the database still cut
                    await fleet[device].decision(eid, timeout=30)
                proc.send_signal(signal.SIGKILL)  # no chance to drain or say goodbye
                await asyncio.to_thread(proc.wait, 10)
                spool = LocalSpool(spool_file)
                held = spool.rows
                spool.close()
                assert held > 0, "the spool was empty when the gateway was killed"
                proxy.accept()
                proc = spawn_gateway(proxy.dsn, mqtt_url, prefix, log, env)
                after = [(facts.gate_device, fleet[facts.gate_device].swipe(cards[0]))]
                for device, eid in after:
                    await fleet[device].decision(eid, timeout=60)
                sent += after

                async def all_logged() -> bool:
                    return len(await _log_counts(campus_dsn, sent)) == len(sent)

                await _until(all_logged, DRAIN_BUDGET_S, "every spooled event logged")
                finals = {(d, e): fleet[d].finals(e) for d, e in sent}
        finally:
            # Waited for off the loop: the proxy runs on it, and the gateway stops through it.
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"\nkilled with {held} spool rows; {len(sent)} events logged after the restart")
    for key, answers in finals.items():
        assert len(answers) == 1, f"{key} was decided {len(answers)} times"
    logged = await _log_counts(campus_dsn, sent)
    assert max(logged.values()) == 1, "an event was logged twice"
    spool = LocalSpool(spool_file)
    try:
        assert spool.rows == 0, "the spool was not emptied"
    finally:
        spool.close()


async def test_a_drain_that_committed_before_the_crash_is_not_written_again(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    """The drain commits rows and the spool's mark together; a crash before the spool
    forgets them leaves rows at or below the mark, which the next drain skips."""
    facts = campus.facts
    device, cards = facts.gate_device, facts.resident_cards
    sent: list[tuple[str, str]] = []
    async with FaultyProxy(campus_dsn) as proxy:
        config = dataclasses.replace(
            config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
            spool_path=tmp_path / "spool.sqlite3",
        )
        first = Gateway(config)
        await first.start()
        try:
            async with Fleet(mqtt_url, [device], prefix=prefix) as fleet:
                proxy.cut()
                for k in range(40):
                    sent.append((device, fleet[device].swipe(cards[k % len(cards)])))
                    await asyncio.sleep(0.02)
                for _, eid in sent:
                    await fleet[device].decision(eid, timeout=30)
        finally:
            await first.stop()  # the database still cut: the spool keeps what it holds

        # What a drain that died after its commit leaves: the first half of the rows in
        # the log with the mark, still in the spool.
        spool = LocalSpool(config.spool_path)
        try:
            rows = spool.all_rows()
            assert len(rows) >= 2
            done = rows[: len(rows) // 2]
            records = [r for row in done for part in decode(row) for r in part[0]]
            conn = await connect(campus_dsn)  # with the store's codecs
            try:
                async with conn.transaction():
                    await access_log.write_access_records(conn, records)
                    await spool_drains.mark_drained(conn, spool.id, done[-1].seq)
            finally:
                await conn.close()
        finally:
            spool.close()

        proxy.accept()
        second = Gateway(config)
        await second.start()
        try:
            await _until(
                lambda: asyncio.sleep(0, not second.journal.spooling),
                DRAIN_BUDGET_S,
                "the spool drained",
            )
            assert second.spool.empty
        finally:
            await second.stop()

    logged = await _log_counts(campus_dsn, sent)
    assert set(logged) == set(sent), f"{len(set(sent) - set(logged))} events missing from the log"
    assert max(logged.values()) == 1, "an event was logged twice"


async def test_a_full_spool_makes_the_doors_wait_and_loses_nothing(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    """At its bound the spool takes no more: decisions wait for the database, as without one."""
    facts = campus.facts
    device, cards = facts.gate_device, facts.resident_cards
    sent: list[tuple[str, str]] = []
    async with FaultyProxy(campus_dsn) as proxy:
        config = dataclasses.replace(
            config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
            spool_path=tmp_path / "spool.sqlite3",
            spool_bound=10,
        )
        gateway = Gateway(config)
        await gateway.start()
        try:
            async with Fleet(mqtt_url, [device], prefix=prefix) as fleet:
                await asyncio.sleep(0.5)  # the terminal's online state is written first
                proxy.cut()
                for k in range(30):
                    sent.append((device, fleet[device].swipe(cards[k % len(cards)])))
                    await asyncio.sleep(0.02)
                await asyncio.sleep(1.5)
                answered = sum(1 for _, eid in sent if fleet[device].finals(eid))
                assert 0 < answered < len(sent), f"{answered} of {len(sent)} answered"
                assert gateway.spool.items <= 10
                proxy.accept()
                for _, eid in sent:
                    await fleet[device].decision(eid, timeout=30)
                finals = {eid: fleet[device].finals(eid) for _, eid in sent}
            await _until(
                lambda: asyncio.sleep(0, not gateway.journal.spooling),
                DRAIN_BUDGET_S,
                "the spool drained",
            )
        finally:
            await gateway.stop()
    assert all(len(answers) == 1 for answers in finals.values())
    logged = await _log_counts(campus_dsn, sent)
    assert set(logged) == set(sent) and max(logged.values()) == 1


async def test_a_write_that_committed_unanswered_is_not_drained_twice(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    """The database commits a batch but its reply is lost: after the deadline the batch
    goes to the spool in doubt, and the drain finds it in the log instead of writing it again."""
    facts = campus.facts
    device, cards = facts.gate_device, facts.resident_cards
    sent: list[tuple[str, str]] = []
    async with FaultyProxy(campus_dsn) as proxy:
        config = dataclasses.replace(
            config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
            spool_path=tmp_path / "spool.sqlite3",
        )
        gateway = Gateway(config)
        await gateway.start()
        try:
            async with Fleet(mqtt_url, [device], prefix=prefix) as fleet:
                first = fleet[device].swipe(cards[0])
                await fleet[device].decision(first, timeout=10)  # the journal is connected
                proxy.drop_replies()  # open connections: the server commits, nobody hears
                for k in range(10):
                    sent.append((device, fleet[device].swipe(cards[k % len(cards)])))
                for _, eid in sent:
                    await fleet[device].decision(eid, timeout=30)
                finals = {eid: fleet[device].finals(eid) for _, eid in sent}
            await _until(
                lambda: asyncio.sleep(0, not gateway.journal.spooling),
                DRAIN_BUDGET_S,
                "the spool drained",
            )
            assert gateway.spool.spooled > 0, "the unanswered batch did not go to the spool"
        finally:
            proxy.heal()
            await gateway.stop()
    assert all(len(answers) == 1 for answers in finals.values())
    logged = await _log_counts(campus_dsn, sent)
    assert set(logged) == set(sent)
    assert max(logged.values()) == 1, "a batch committed unanswered was written again"


async def test_a_spool_left_under_another_worker_id_is_drained_once_at_start(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    """A worker recreated under another id (the hostname by default) finds the spool its
    predecessor left, which no running worker holds, and drains it in order, once; a
    spool a running worker holds is left to that worker."""
    facts = campus.facts
    device, cards = facts.gate_device, facts.resident_cards
    sent: list[tuple[str, str]] = []
    spools = tmp_path / "data" / "spool"
    async with FaultyProxy(campus_dsn) as proxy:
        old = dataclasses.replace(
            config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-old-{prefix}"),
            spool_path=spools / "old-host.sqlite3",
        )
        first = Gateway(old)
        await first.start()
        try:
            async with Fleet(mqtt_url, [device], prefix=prefix) as fleet:
                proxy.cut()
                for k in range(30):
                    sent.append((device, fleet[device].swipe(cards[k % len(cards)])))
                    await asyncio.sleep(0.02)
                for _, eid in sent:
                    await fleet[device].decision(eid, timeout=30)
        finally:
            await first.stop()  # the database still cut: the spool keeps what it holds
        left = LocalSpool(old.spool_path)
        held_rows = left.rows
        left.close()
        assert held_rows > 0
        running = LocalSpool(spools / "running-host.sqlite3")  # a live worker's own spool
        running.append(b"not ours", 1)

        proxy.accept()
        new = dataclasses.replace(
            old, client_id=f"gw-new-{prefix}", spool_path=spools / "new.sqlite3"
        )
        second = Gateway(new)
        try:
            await second.start()
            assert second.spool.empty and not second.journal.spooling
        finally:
            await second.stop()
            assert running.rows == 1, "a spool held by a running worker was touched"
            running.close()

    left = LocalSpool(old.spool_path)
    try:
        assert left.rows == 0, "the spool left under the old id was not drained"
    finally:
        left.close()
    logged = await _log_counts(campus_dsn, sent)
    assert set(logged) == set(sent), f"{len(set(sent) - set(logged))} events missing from the log"
    assert max(logged.values()) == 1, "an event was logged twice"
