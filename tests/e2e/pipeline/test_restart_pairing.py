"""A gateway killed while cards wait for a temperature answers them once it is back (#13.5).

`campusgate serve` is SIGKILLed (no drain, no goodbye) while a card at a temperature door
has its `pending`. The card event is acknowledged to the broker only once its decision is
durable, so the broker delivers it again to the restarted gateway (same client id,
persistent session):

- the person measured while the gateway was down: the card pairs with that reading,
  which the broker queued behind it, and gets its final decision, `late` (it opens
  nothing) when it comes more than 10 s after the swipe;
- the card's window passed (by its terminal's clock) before the gateway was back: it is
  denied at once, `temperature_required`, and a reading taken at the door since (someone
  else's) does not complete it.

Either way the terminal gets one `pending` and one final decision, and the card is in
the log once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
from test_restart import wait_ready

from firmware_sim.fleet import Fleet


def spawn(dsn: str, mqtt_url: str, prefix: str, log: Path, window_s: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "CAMPUSGATE_DATABASE_URL": dsn,
        "CAMPUSGATE_MQTT_URL": mqtt_url,
        "CAMPUSGATE_TOPIC_PREFIX": prefix,
        "CAMPUSGATE_TEMPERATURE_WINDOW_S": str(window_s),
        "CAMPUSGATE_LOG_LEVEL": "WARNING",
        "CAMPUSGATE_API_PORT": "0",
        "CAMPUSGATE_METRICS_PORT": "0",
    }
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--client-id", f"gw-{prefix}"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def logged_cards(dsn: str, device: str, event_ids: list[str]) -> dict[str, tuple[int, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT event_id, count(*) AS n, min(decision) AS decision FROM access_events
               WHERE device_id = $1 AND type = 'card' AND event_id = ANY($2) GROUP BY 1""",
            device,
            event_ids,
        )
    finally:
        await conn.close()
    return {r["event_id"]: (r["n"], r["decision"]) for r in rows}


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)  # no chance to close the windows or say goodbye
    proc.wait(10)


async def test_cards_waiting_for_a_temperature_are_answered_after_a_crash(
    campus_dsn, mqtt_url, prefix, campus, tmp_path
):
    facts = campus.facts
    device = facts.temperature_device
    measured, walked_away = facts.resident_cards[2], facts.resident_cards[3]
    log = tmp_path / "gateway.log"
    proc = spawn(campus_dsn, mqtt_url, prefix, log, window_s=15)
    try:
        async with Fleet(mqtt_url, [device], prefix=prefix) as fleet:
            terminal = fleet[device]
            await wait_ready(fleet, device, measured)

            first = terminal.swipe(measured, direction="in")
            assert (await terminal.wait_pending(first))["decision"] == "pending"
            kill(proc)
            terminal.measure(36.5)  # the person measures; the broker keeps the reading
            await asyncio.sleep(10.5)  # back after the 10 s a door waits for its decision
            proc = spawn(campus_dsn, mqtt_url, prefix, log, window_s=30)
            final = await terminal.decision(first, timeout=60)
            assert (final["decision"], final["reason"]) == ("admit", "ok")
            # Aged by the card's own time: nobody may be at the door any more.
            assert (final["late"], final["unlock_ms"]) == (True, 0)

            second = terminal.swipe(walked_away, direction="in")
            assert (await terminal.wait_pending(second))["decision"] == "pending"
            kill(proc)
            await asyncio.sleep(5.5)  # past the restarted gateway's 5 s window
            terminal.measure(36.6)  # whoever stands at the door now
            proc = spawn(campus_dsn, mqtt_url, prefix, log, window_s=5)
            final = await terminal.decision(second, timeout=60)
            assert (final["decision"], final["reason"]) == ("deny", "temperature_required")

            await asyncio.sleep(1.0)  # a second answer would show by now
            for eid in (first, second):
                assert len(terminal.pendings(eid)) == 1, terminal.pendings(eid)
                assert len(terminal.finals(eid)) == 1, terminal.finals(eid)
            assert terminal.problems() == []
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert await logged_cards(campus_dsn, device, [first, second]) == {
        first: (1, "admit"),
        second: (1, "deny"),
    }
