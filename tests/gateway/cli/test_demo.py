"""`campusgate demo` end to end, as a newcomer runs it (issue 16: again and again)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest

from gateway.services.tracing import TraceRequest, trace
from gateway.settings import Settings
from gateway.store.db import connect

# Each run plays the showcase and a chain of two stays of a little over a minute.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def demo_args(data_dir, seconds: int | None, *extra: str, chain: bool = True) -> list[str]:
    args = [sys.executable, "-m", "gateway", "--data-dir", str(data_dir), *extra, "demo"]
    args += ["--people", "300", "--rate", "20"] + ([] if chain else ["--no-chain"])
    return args + (["--duration", str(seconds)] if seconds else [])


def demo_env(env_extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPUSGATE_")}
    env.update(env_extra)
    return env


def run_demo(
    env_extra: dict[str, str],
    data_dir,
    seconds: int = 6,
    *extra: str,
    broker: str = "auto",
    chain: bool = True,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*demo_args(data_dir, seconds, *extra, chain=chain), "--broker", broker],
        env=demo_env(env_extra),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _failures(run: subprocess.CompletedProcess) -> str:
    """The FAIL blocks of the output (with their BAD lines) and the end of stderr."""
    lines = run.stdout.splitlines()
    shown = [
        line
        for i, line in enumerate(lines)
        if line.startswith("FAIL")
        or "BAD" in line
        or any(p.startswith("FAIL ") for p in lines[max(0, i - 8) : i])
    ]
    return "\n".join(shown)[-4000:] + "\n--- stderr\n" + run.stderr[-2000:]


def check_showcase(run: subprocess.CompletedProcess) -> None:
    assert run.returncode == 0, _failures(run)
    passed = [line for line in run.stdout.splitlines() if line.startswith("PASS ")]
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAIL ")]
    assert not failed, _failures(run)
    assert len(passed) >= 19  # 12 MQTT scenarios, OSDP, RDM6300, camera, the chain, people
    # Issue 5: a traced chain (B first generation, C second) and a generated daily report.
    assert any(line.startswith("PASS traced chain") for line in passed), run.stdout
    assert any(line.startswith("PASS  showcase: all") for line in passed), run.stdout
    assert "daily report" in run.stdout and "students campus-wide" in run.stdout
    assert "demo stopped" in run.stdout
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    # Issue 12: commands are signed, and the terminals refuse a forged and a replayed one.
    assert any(line.startswith("PASS forged and replayed commands") for line in passed)
    # Issue 15: a student signs in on /me/ and checks in through the API; a visitor pass
    # is requested, approved and its QR admitted in its zone and denied in another; the
    # daily reports carry check-in numbers and the list of those missing.
    assert re.search(r"check-in page: http://\S+/me/  sign in as \S+ / \S+", run.stdout)
    assert any(line.startswith("PASS a student checks in on the phone page") for line in passed)
    for line in ("PASS a visitor pass at the doors", "PASS daily report with check-in numbers"):
        assert any(p.startswith(line) for p in passed), line
    assert "expected admit/ok, got admit/ok" in run.stdout
    assert "expected deny/not_authorized, got deny/not_authorized" in run.stdout
    assert re.search(r"check-ins, students \(to student affairs\): [1-9]\d* of \d+", run.stdout)
    assert "check-ins, staff (to the school office)" in run.stdout
    # Issue 13: the gate decides alone while the gateway is stopped, and reconciles.
    assert any(line.startswith("PASS offline: the gate decides alone") for line in passed)


def check_report_files(data_dir) -> None:
    days = list((data_dir / "reports").iterdir())
    assert len(days) == 1
    files = {p.suffix for p in days[0].iterdir()}
    assert files == {".html", ".csv", ".xlsx"}
    campus_html = next(days[0].glob("campusgate-student-campus-*.html")).read_text()
    assert "<svg" in campus_html  # the charts


def chain_of(stdout: str) -> tuple[str, str, str]:
    """(A, B, C) of the printed chain check."""
    found = re.search(r"traced from (\S+): (\S+) first generation, (\S+) second", stdout)
    assert found, stdout
    return found.group(1), found.group(2), found.group(3)


async def console_trace(dsn: str, stdout: str) -> dict[str, int]:
    """Trace as the console does from the printed link: the API's defaults, then the
    link's parameters (api/routers/tracing.py passes them to TraceRequest as they are)."""
    link = re.search(r"trace it yourself: (\S+)", stdout)
    assert link, stdout
    query = {k: v[0] for k, v in parse_qs(urlsplit(link.group(1)).query).items()}
    assert urlsplit(link.group(1)).fragment == "tracing"
    request = TraceRequest(
        query["trace_person"],
        start=datetime.fromisoformat(query["trace_from"]),
        generations=int(query["trace_generations"]),
        min_overlap_s=float(query["trace_min_overlap_s"]),
        second_min_exposure_s=float(query["trace_second_min_exposure_s"]),
    )
    assert request.min_overlap_s == 60  # the real rule, the console's default
    conn = await connect(dsn)
    try:
        result = await trace(conn, request, Settings(database_url=dsn), by="test")
    finally:
        await conn.close()
    return {c.person_id: c.generation for c in result.contacts}


def test_three_runs_on_one_data_dir(database_factory, mqtt_url, tmp_path):
    """The first, second and third run pass, on the same database and data dir; people
    the earlier runs left inside do not flood the chain, and the console's trace from
    the printed link finds what the demo found."""
    dsn = database_factory("demo")
    env = {"CAMPUSGATE_DATABASE_URL": dsn, "CAMPUSGATE_MQTT_URL": mqtt_url}
    runs = []
    for n in range(3):
        run = run_demo(env, tmp_path, seconds=20 if n == 0 else 3)
        check_showcase(run)
        runs.append(run)
        a, b, c = chain_of(run.stdout)
        generations = asyncio.run(console_trace(dsn, run.stdout))
        assert (generations.get(b), generations.get(c)) == (1, 2), (a, generations)
        contacts = int(re.search(r"(\d+) contacts in all", run.stdout).group(1))
        assert contacts == len(generations)
    check_report_files(tmp_path)
    assert (tmp_path / "keys" / "command-signing.pem").is_file()
    # A configured broker: its own accounts apply; the demo says so and probes nothing.
    assert "broker: the configured CAMPUSGATE_MQTT_URL" in runs[0].stdout
    assert "broker enforces device identities" not in runs[0].stdout
    # The API runs in a process of its own, as under `campusgate serve`.
    assert re.search(r"console: http://\S+ .*API process \d+", runs[0].stdout), runs[0].stdout
    assert "sample campus imported" in runs[0].stdout
    assert all("already up to date" in run.stdout for run in runs[1:])
    # Twenty seconds of traffic at 20 actions/s left people inside: the next run saw them.
    assert "walked out first" in runs[1].stdout


def test_a_failed_check_says_so_and_exits_1_and_amqtt_is_quiet(database_factory, tmp_path):
    """With a fever threshold no simulated fever reaches, the fever check fails: FAIL,
    a FAIL summary, exit 1. The broker is amqtt (as where mosquitto is not installed):
    the PUBACKs the gateway holds leave no tracebacks on screen or in the log."""
    dsn = database_factory("demo_fail")
    run = run_demo(
        {"CAMPUSGATE_DATABASE_URL": dsn},
        tmp_path,
        15,
        "--fever-threshold-c",
        "42",
        broker="amqtt",
        chain=False,  # the three runs above show the chain; this one is about failing
    )
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "FAIL fever" in run.stdout
    summary = [line for line in run.stdout.splitlines() if line.startswith("FAIL  showcase:")]
    assert summary and "fever" in summary[0] and "the demo will exit 1" in summary[0]
    assert "PASS  showcase" not in run.stdout
    assert "the chain is skipped (--no-chain)" in run.stdout
    assert "broker amqtt (in-process, MQTT 3.1.1)" in run.stdout
    # What amqtt does not enforce, said plainly; no identity probe to pass.
    assert "amqtt cannot enforce device identities. NOT enforced here" in run.stdout
    assert "broker enforces device identities" not in run.stdout
    assert "Traceback" not in run.stderr
    log = (tmp_path / "logs" / "demo.log").read_text()
    assert "Timeout waiting for PUBACK" not in log and "Traceback" not in log


def check_identities(out: str, data_dir) -> None:
    """Issue 12: the demo's own Mosquitto enforces per-device accounts, every client logs
    in as itself, and the probe shows what the broker refuses."""
    assert "broker: mosquitto with per-device passwords and ACL" in out, out[-3000:]
    assert "PASS broker enforces device identities" in out, out[-3000:]
    for refused in (
        "a client without credentials: expected refused, got refused",
        "with a wrong password: expected refused, got refused",
        "events: expected not authorized, got not authorized",
        # A device the broker has no account for never reaches the gateway.
        "the broker, to a device without an account: expected refused, got refused",
    ):
        assert refused in out, refused
    assert "PASS forged and replayed commands" in out
    assert "the forger logged in as campusgate-gateway" in out
    conf = (data_dir / "mosquitto" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "acl_file" in conf
    log = (data_dir / "mosquitto" / "mosquitto.log").read_text()
    for account in ("campusgate-gateway", "campusgate-integration", "campusgate-sim"):
        assert f"u'{account}'" in log, account
    devices = (data_dir / "mosquitto" / "accounts" / "device-secrets.csv").read_text()
    for device in re.findall(r"^([^,\n]+),", devices, re.MULTILINE)[1:]:
        assert f"u'{device}'" in log, device


def _postgres_of(pg_dir) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and any(str(pg_dir) in part for part in cmdline):
            found.append(proc)
    return found


def _mosquitto_of(data_dir) -> list[psutil.Process]:
    return [
        proc
        for proc in psutil.process_iter(["name", "cmdline"])
        if proc.info.get("name") == "mosquitto"
        and any(str(data_dir) in part for part in proc.info.get("cmdline") or [])
    ]


def test_ctrl_c_stops_everything_with_embedded_database_and_broker(tmp_path):
    """The README's first command: no URLs set; Ctrl-C stops the embedded PostgreSQL
    and the broker the demo started, and nothing of theirs keeps running."""
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        demo_args(data_dir, None, chain=False),
        env=demo_env({}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 600
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("live traffic"):
                break
        if not any(line.startswith("live traffic") for line in lines):
            proc.kill()
            _, err = proc.communicate(timeout=30)
            pytest.fail("".join(lines)[-3000:] + "\n--- stderr\n" + err[-3000:])
        assert _postgres_of(data_dir / "pg"), "the embedded PostgreSQL should be running"
        assert _mosquitto_of(data_dir), "the demo should run mosquitto where it is installed"
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert "PASS  showcase: all" in out and "demo stopped" in out
    check_identities(out, data_dir)
    api_pid = int(re.search(r"API process (\d+)", out).group(1))
    assert not psutil.pid_exists(api_pid) or psutil.Process(api_pid).status() == "zombie"
    deadline = time.monotonic() + 20
    while _postgres_of(data_dir / "pg") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _postgres_of(data_dir / "pg"), "Ctrl-C left the embedded PostgreSQL running"
    assert not _mosquitto_of(data_dir), "Ctrl-C left mosquitto running"
