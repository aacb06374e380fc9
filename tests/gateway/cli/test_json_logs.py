"""CAMPUSGATE_LOG_FORMAT=json: one JSON object per log line, from a real CLI run."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys

from gateway.observe.logs import JsonFormatter

CLI = [sys.executable, "-c", "from gateway.cli import main; main()"]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_migrate_logs_json_lines(new_database):
    dsn = await new_database("jsonlog")
    done = await asyncio.to_thread(
        run_cli, "migrate", CAMPUSGATE_DATABASE_URL=dsn, CAMPUSGATE_LOG_FORMAT="json"
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, "migrate logged nothing"
    entries = [json.loads(line) for line in lines]  # every line parses on its own
    applied = [e for e in entries if e["message"].startswith("applied migration ")]
    assert applied, entries
    first = applied[0]
    assert first["level"] == "INFO" and first["logger"] == "gateway.store.migrate"
    assert first["ts"].endswith("+00:00")


def test_text_stays_the_default_and_a_bad_format_is_refused():
    bad = run_cli("--log-format", "xml", "migrate", CAMPUSGATE_DATABASE_URL="")
    assert bad.returncode != 0
    assert "log_format" in bad.stderr and "text or json" in bad.stderr


def test_formatter_carries_exceptions_extras_and_odd_text():
    logger = logging.getLogger("campusgate.test")
    try:
        raise ValueError("broken frame")
    except ValueError:
        record = logger.makeRecord(
            logger.name,
            logging.ERROR,
            __file__,
            1,
            "device %s sent \ud800 %s",
            ("term-1", "\n"),
            sys.exc_info(),
            extra={"device": "term-1", "payload": b"\xff"},
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "campusgate.test"
    assert entry["message"] == "device term-1 sent \ud800 \n"
    assert "ValueError: broken frame" in entry["exception"]
    assert entry["device"] == "term-1" and entry["payload"] == repr(b"\xff")
