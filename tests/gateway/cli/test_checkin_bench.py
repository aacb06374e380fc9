"""`campusgate checkin-bench`: its figures' shape, and every check-in it sent is stored
(no speed asserted: the figures are printed)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import pytest

from gateway.store.db import connect

pytestmark = pytest.mark.timeout(600)


def _campusgate(dsn: str, data_dir, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPUSGATE_")}
    env["CAMPUSGATE_DATABASE_URL"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--data-dir", str(data_dir), "--api-port", "0", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )


async def _stored(dsn: str) -> tuple[int, int]:
    conn = await connect(dsn)
    try:
        checkins = await conn.fetchval(
            "SELECT count(*) FROM daily_checkins WHERE person_id LIKE 'CKB%'"
        )
        sessions = await conn.fetchval("SELECT count(*) FROM person_sessions")
    finally:
        await conn.close()
    return checkins, sessions


def test_200_checkins_through_the_api_are_all_stored(database_factory, tmp_path):
    dsn = database_factory("checkinbench")
    assert _campusgate(dsn, tmp_path, "migrate").returncode == 0
    run = _campusgate(dsn, tmp_path, "checkin-bench", "--people", "200", "--concurrency", "20")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    out = run.stdout
    assert "check-ins: 200 people, concurrency 20" in out
    assert re.search(r"took: [\d.]+ s \([\d.]+% of the morning hour\)", out), out
    assert re.search(r"throughput: \d+ check-ins/s", out), out
    assert re.search(r"latency: p50 \d+ ms, p95 \d+ ms, p99 \d+ ms", out), out
    assert "errors: 0\n" in out + "\n", out
    assert "stored: 200 of 200 check-ins in the database" in out
    assert "API process" in run.stderr  # served as `serve` serves it
    # The database agrees with what the command printed: one check-in and session each.
    assert asyncio.run(_stored(dsn)) == (200, 200)
    # A second run on the same database refuses: its people exist already.
    again = _campusgate(dsn, tmp_path, "checkin-bench", "--people", "10")
    assert again.returncode != 0 and "scratch database" in again.stderr + again.stdout
