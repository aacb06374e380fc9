"""`campusgate serve` says "running" only when nothing else is left to start on its loop.

Starting the API and the scheduled jobs used to follow "running" on the same event loop,
holding the first decisions back by about a second.
"""

from __future__ import annotations

import asyncio

from test_restart import spawn_gateway

from firmware_sim.fleet import Fleet


async def test_running_comes_after_the_api_and_the_first_swipe_is_answered(
    campus_dsn, mqtt_url, prefix, campus, tmp_path
):
    log = tmp_path / "serve.log"
    facts = campus.facts
    async with Fleet(mqtt_url, [facts.gate_device], prefix=prefix) as fleet:
        proc = spawn_gateway(campus_dsn, mqtt_url, prefix, log)
        try:
            for _ in range(1200):
                if b"running" in log.read_bytes() or proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            text = log.read_text(errors="replace")
            assert "running" in text, f"serve never said running: {text[-2000:]}"
            terminal = fleet[facts.gate_device]
            eid = terminal.swipe(facts.resident_cards[0])
            assert (await terminal.decision(eid, timeout=20))["decision"] == "admit"
            assert "console and API on" in text.split("running")[0], (
                "the API started after 'running', on the loop that decides the doors"
            )
        finally:
            proc.terminate()
            proc.wait(20)
