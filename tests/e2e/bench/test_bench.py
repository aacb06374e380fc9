"""`campusgate bench` end to end: a spawned gateway and the echo responder on a private broker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.load_driver import (
    LoadSpec,
    PhaseResult,
    Window,
    bench_manifest,
    median_run,
    percentile_ms,
    report,
    signing_cost,
    split_by_windows,
)
from gateway.cli.bench_flood import split_by_flood
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.partition_leases import claim, live_holders, release

PHASE_KEYS = {"sent", "decided", "lost", "per_s", "p50_ms", "p95_ms", "p99_ms"}


def campusgate(
    *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env} if env else None,
    )


# At SCHED_IDLE the API may answer nothing in a few seconds on a busy test host: the
# flood tests want answers to check, so their API runs at an ordinary niceness.
ANSWERING_API = {"CAMPUSGATE_API_CPU_PRIORITY": "10"}


@pytest.fixture(scope="module")
def bench_db(database_factory) -> str:
    dsn = database_factory("bench")
    asyncio.run(apply_migrations(dsn))
    return dsn


def test_bench_spawned_gateway_and_echo(mqtt_url: str, bench_db: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = campusgate(
        "--mqtt-url", mqtt_url, "--database-url", bench_db, "--topic-prefix", "benchtest",
        "--data-dir", str(tmp_path / "data"),
        "bench", "--doors", "4", "--rate", "200", "--duration", "2", "--spawn",
        "--signing", "both", "--json", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads(out.read_text())
    assert set(document) == {"config", "gateway", "gateway_unsigned", "echo", "ratio", "signing"}
    assert document["config"] == {"doors": 4, "rate": 200, "duration_s": 2, "signing": "both"}
    # Signing on and off in the same run: every decision of the first was signed, with the
    # key the spawned gateway made under the data dir.
    assert document["signing"]["signed_decisions"] == document["gateway"]["decided"] == 400
    # Batched signatures: at least one decision per signature, never more than were signed.
    assert 1 <= document["signing"]["decisions_per_signature"] <= 400
    assert document["signing"]["per_s_ratio"] == pytest.approx(
        document["gateway"]["per_s"] / document["gateway_unsigned"]["per_s"], rel=1e-2
    )
    assert (tmp_path / "data" / "keys" / "command-signing.pem").is_file()
    # The spawned gateway's own CPU per decision, either way.
    assert document["signing"]["cpu_us_per_decision"] > 0
    assert document["signing"]["cpu_us_per_decision_unsigned"] > 0
    assert "signing:" in run.stdout
    for phase in ("gateway", "gateway_unsigned", "echo"):
        figures = document[phase]
        assert set(figures) == PHASE_KEYS
        assert figures["sent"] == 400, figures  # 200/s for 2 s, open loop
        assert figures["decided"] == figures["sent"]
        assert figures["lost"] == 0
        assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert set(document["ratio"]) == {"per_s", "p99_ms"}
    assert document["ratio"]["per_s"] == pytest.approx(
        document["gateway"]["per_s"] / document["echo"]["per_s"], rel=1e-2
    )
    assert "gateway decisions other than admit/ok" not in run.stderr


def test_bench_repeats_signing_on_and_off_in_rounds(
    mqtt_url: str, bench_db: str, tmp_path: Path
) -> None:
    out = tmp_path / "rounds.json"
    run = campusgate(
        "--mqtt-url", mqtt_url, "--database-url", bench_db, "--topic-prefix", "benchrounds",
        "--data-dir", str(tmp_path / "data"),
        "bench", "--doors", "2", "--rate", "100", "--duration", "1", "--spawn",
        "--signing", "both", "--repeat", "2", "--json", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["config"]["repeat"] == 2
    assert [len(document["runs"][k]) for k in ("gateway", "gateway_unsigned")] == [2, 2]
    signing = document["signing"]
    assert signing["rounds"] == 2 and len(signing["round_cost_pct"]) == 2
    # The headline figures are those of a real run: the median one of each mode.
    assert document["gateway"] in [
        {k: v for k, v in r.items() if k in PHASE_KEYS} for r in document["runs"]["gateway"]
    ]
    assert all(r["cpu_us_per_decision"] > 0 for r in document["runs"]["gateway_unsigned"])
    assert "median of 2 rounds" in run.stdout


def _result(per_s: float, cpu_s: float, signed: int = 0) -> PhaseResult:
    return PhaseResult(
        sent=100, decided=100, lost=0, per_s=per_s, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0,
        signed=signed, responder_cpu_s=cpu_s,
    )  # fmt: skip


def test_signing_cost_takes_median_runs_and_pairs_rounds() -> None:
    signed = [_result(900, 0.030, 100), _result(500, 0.050, 100), _result(950, 0.031, 100)]
    unsigned = [_result(1000, 0.025), _result(520, 0.040), _result(990, 0.026)]
    assert median_run(signed).per_s == 900
    assert median_run(signed[:2]).per_s == 500  # an even count: the lower one, a real run
    cost = signing_cost(signed, unsigned)["signing"]
    assert cost["per_s_ratio"] == round(900 / 990, 3)
    assert cost["round_cost_pct"] == [10.0, 3.8, 4.0]
    assert cost["median_round_cost_pct"] == 4.0
    assert cost["cpu_us_per_decision"] == 310.0  # medians of 300, 500, 310 us
    assert cost["cpu_us_per_decision_unsigned"] == 260.0
    assert cost["signed_decisions"] == 100
    assert cost["decisions_per_signature"] is None  # no batch ids recorded in these results


def test_bench_with_an_api_flood(mqtt_url: str, bench_db: str, tmp_path: Path) -> None:
    out = tmp_path / "flood.json"
    run = campusgate(
        "--mqtt-url", mqtt_url, "--database-url", bench_db, "--topic-prefix", "benchflood",
        "bench", "--doors", "4", "--rate", "100", "--duration", "3", "--spawn",
        "--api-flood", "2", "--flood-priority", "10", "--json", str(out), env=ANSWERING_API,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["gateway"]["lost"] == 0
    flood = re.search(r"API flood: (\d+) requests .*?status ([^;]*);", run.stderr, re.DOTALL)
    assert flood, run.stderr[-3000:]
    assert int(flood[1]) > 0
    assert "401" in flood[2]  # the failed logins were answered, each after a hash


def test_bench_compares_doors_with_the_flood_running_and_frozen(
    mqtt_url: str, bench_db: str, tmp_path: Path
) -> None:
    out = tmp_path / "windows.json"
    cpus = sorted(os.sched_getaffinity(0))
    # Door path on one CPU, the API's side on another, where the machine has two.
    split = ["--split-cpus", f"{cpus[0]}:{cpus[1]}"] if len(cpus) > 1 else []
    run = campusgate(
        "--mqtt-url", mqtt_url, "--database-url", bench_db, "--topic-prefix", "benchwindows",
        "bench", "--doors", "4", "--rate", "100", "--duration", "4", "--spawn",
        "--api-flood", "2", "--flood-windows", "1", "--flood-priority", "10", "--json", str(out),
        *split, env=ANSWERING_API,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["config"]["flood_windows_s"] == 1
    if split:
        assert document["config"]["split_cpus"] == split[1]
        placed = document["api_flood_windows"][0]["per_s"]["placed"]
        # The bench: its own process and its database connection.
        assert placed["gateway"] == 1 and placed["flood"] == 1 and placed["bench"] >= 1
        assert placed["api"] >= 1 and placed["postgres_api"] >= 1, placed
    [windows] = document["api_flood_windows"]
    # Running windows held decisions; the first half second of each counts in neither, and
    # a paused window's decisions count only while no flood request was being answered.
    assert windows["on"]["decided"] > 0
    counted = windows["on"]["decided"] + windows["off"]["decided"] + windows["off_overlapped"]
    assert counted < document["gateway"]["decided"]
    assert "while it was paused and the API idle" in " ".join(run.stderr.split())  # rich wraps
    # Where the CPU went, per second of running and of paused windows.
    for state in ("on", "off"):
        assert {"gateway", "api", "flood", "bench", "machine", "commits"} <= set(
            windows["per_s"][state]
        )
    # The API's connections are told apart by their application_name (their CPU in a
    # second-long window may be under one clock tick).
    assert "postgres_api" in windows["per_s"]["on"]


def test_paused_windows_count_only_decisions_made_while_the_api_was_idle() -> None:
    windows = [Window(0.0, 2.0, True), Window(2.0, 4.0, False)]
    # Flood requests: one ends at 2.7 s (sent before the pause), none after.
    busy = [(1.0, 1.5), (1.8, 2.7)]
    samples = [(1.0, 0.010), (2.6, 0.050), (2.65, 0.002), (3.0, 0.003), (3.5, 0.001)]
    split = split_by_flood(samples, windows, busy, settle_s=0.5)
    assert split["on"]["decided"] == 1
    assert split["off_overlapped"] == 2  # due at 2.6 and 2.65: decided while 2.7 was open
    assert split["off"] == {"decided": 2, "p50_ms": 1.0, "p95_ms": 3.0, "p99_ms": 3.0}


def test_latencies_split_by_the_window_their_event_was_due_in() -> None:
    windows = [Window(0.0, 2.0, True), Window(2.0, 4.0, False), Window(4.0, 6.0, True)]
    samples = [(0.1, 9.0), (1.0, 0.010), (2.2, 9.0), (3.0, 0.002), (3.5, 0.004), (5.0, 0.020)]
    split = split_by_windows(samples, windows, settle_s=0.5)
    assert split["on"] == {"decided": 2, "p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 20.0}
    assert split["off"] == {"decided": 2, "p50_ms": 2.0, "p95_ms": 4.0, "p99_ms": 4.0}
    assert split_by_windows([], windows)["on"]["p99_ms"] is None


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--api-flood", "2"], "--spawn"),
        (["--flood-windows", "2"], "--api-flood"),
        (["--api-flood", "2", "--spawn", "--flood-priority", "high"], "--flood-priority"),
        (["--repeat", "2"], "--spawn"),
        (["--api-flood", "2", "--spawn", "--split-cpus", "0:1"], "--flood-windows"),
        (
            ["--api-flood", "2", "--spawn", "--flood-windows", "2", "--split-cpus", "0:0"],
            "disjoint",
        ),
        (["--api-flood", "2", "--spawn", "--flood-windows", "2", "--split-cpus", "0"], "DOOR:API"),
        (
            ["--api-flood", "2", "--spawn", "--flood-windows", "2", "--split-cpus", "0:x"],
            "CPU list",
        ),
        (
            ["--api-flood", "2", "--spawn", "--flood-windows", "2", "--split-cpus", "0:4096"],
            "not available",
        ),
        (["--rate", "-5"], "--rate"),
        (["--doors", "0"], "--doors"),
        (["--duration", "0"], "--duration"),
    ],
)
def test_bench_refuses_bad_arguments(mqtt_url: str, args: list[str], complaint: str) -> None:
    run = campusgate("--mqtt-url", mqtt_url, "bench", *args, timeout=30)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and complaint in errors[0], run.stderr


def test_bench_compares_signing_only_on_a_gateway_it_starts(mqtt_url: str) -> None:
    run = campusgate("--mqtt-url", mqtt_url, "bench", "--signing", "both", timeout=30)
    assert run.returncode != 0
    assert "--signing both needs --spawn" in run.stderr.strip().splitlines()[-1]


def test_bench_reports_an_unreachable_broker(bench_db: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"mqtt://127.0.0.1:{probe.getsockname()[1]}"
    run = campusgate(
        "--mqtt-url", url, "--database-url", bench_db, "bench", "--duration", "1", timeout=60
    )
    assert run.returncode != 0
    assert "cannot reach MQTT broker" in run.stderr.strip().splitlines()[-1]


def test_bench_manifest_is_confined_to_its_own_ids() -> None:
    document = bench_manifest(3, people=5)
    ids = [
        row["id"]
        for section in ("zones", "doors", "devices", "people", "org_units")
        for row in document[section]
    ]
    assert all(i.startswith("bench-") for i in ids)
    cards = [card for person in document["people"] for card in person["cards"]]
    assert len(set(cards)) == 5 and all(c.startswith("BE") and len(c) == 8 for c in cards)
    assert document["grants"] == [{"subject": {"org_unit": "bench-unit"}, "zone": "bench-zone"}]


def test_percentiles_and_ratio() -> None:
    ordered = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert percentile_ms(ordered, 50) == 50.0
    assert percentile_ms(ordered, 99) == 99.0
    assert percentile_ms([], 99) is None
    spec = LoadSpec(doors=2, rate=0, duration_s=1.5)
    fast = PhaseResult(10, 10, 0, 100.0, 1.0, 2.0, 4.0)
    slow = PhaseResult(10, 10, 0, 50.0, 2.0, 4.0, 12.0)
    document = report(spec, slow, fast)
    assert document["config"] == {"doors": 2, "rate": 0, "duration_s": 1.5}
    assert document["ratio"] == {"per_s": 0.5, "p99_ms": 3.0}


def test_the_api_process_labels_its_database_connections() -> None:
    from gateway.cli.api_process import with_application_name

    assert with_application_name("postgresql://u@h/db") == (
        "postgresql://u@h/db?application_name=campusgate-api"
    )
    assert with_application_name("postgresql://u@/db?host=/tmp") == (
        "postgresql://u@/db?host=%2Ftmp&application_name=campusgate-api"
    )
    named = "postgresql://u@h/db?application_name=mine"
    assert with_application_name(named) == named


def test_bench_workers_one_then_two_partitioned_workers(
    mqtt_url: str, bench_db: str, tmp_path: Path
) -> None:
    out = tmp_path / "workers.json"
    run = campusgate(
        "--mqtt-url", mqtt_url, "--database-url", bench_db, "--topic-prefix", "benchworkers",
        "bench", "--doors", "6", "--rate", "100", "--duration", "2", "--spawn",
        "--workers", "2", "--json", str(out),
        env={"CAMPUSGATE_PARTITIONS": "16", "CAMPUSGATE_PARTITION_LEASE_S": "2"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["config"] == {
        "doors": 6, "rate": 100, "duration_s": 2, "signing": "on", "workers": 2, "partitions": 16,
    }  # fmt: skip
    steps = document["workers"]
    assert [s["workers"] for s in steps] == [1, 2]
    for figures in [*steps, document["echo"]]:
        assert figures["sent"] == 200, figures  # 100/s for 2 s, open loop
        assert figures["decided"] == figures["sent"]
        assert figures["lost"] == 0
        assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    for step in steps:
        assert step["cpu_us_per_decision"] > 0
        assert step["balanced_s"] >= 0
    # The section 7 shape stays: "gateway" is the one-worker step.
    assert document["gateway"] == {k: v for k, v in steps[0].items() if k in PHASE_KEYS}
    # Progress and the table, with a row per step and the echo baseline.
    assert "2 worker(s): 16 partitions balanced (8, 8)" in run.stderr
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in run.stdout.splitlines()]
    assert {r[0]: r[1:4] for r in rows if len(r) == 9} == {
        "1": ["200", "200", "0"],
        "2": ["200", "200", "0"],
        "echo": ["200", "200", "0"],
    }, run.stdout
    # Stopped cleanly: no lease is left behind for the next run.
    assert asyncio.run(_live_holders(bench_db)) == {}


async def _live_holders(dsn: str) -> dict[int, str]:
    conn = await connect(dsn)
    try:
        return await live_holders(conn)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0", "--spawn"], "--workers must be at least 1"),
        (["--workers", "17", "--spawn"], "--workers must be at most 16"),
        (["--workers", "2"], "--workers needs --spawn"),
        (["--workers", "2", "--spawn", "--repeat", "2"], "cannot be combined with --repeat"),
        (["--workers", "2", "--spawn", "--signing", "both"], "with --signing both"),
    ],
)
def test_bench_workers_refuses_bad_input(
    mqtt_url: str, bench_db: str, args: list[str], message: str
) -> None:
    run = campusgate("--mqtt-url", mqtt_url, "--database-url", bench_db, "bench", *args)
    assert run.returncode == 1, run.stdout
    assert message in run.stderr, run.stderr


def test_bench_workers_refuses_a_database_other_workers_serve(mqtt_url: str, bench_db: str) -> None:
    async def hold(take: bool) -> None:
        conn = await connect(bench_db)
        try:
            if take:
                assert await claim(conn, "someone-elses-worker", [3], 60.0) == {3}
            else:
                await release(conn, "someone-elses-worker", [3])
        finally:
            await conn.close()

    asyncio.run(hold(True))
    try:
        run = campusgate(
            "--mqtt-url", mqtt_url, "--database-url", bench_db, "--topic-prefix", "benchbusy",
            "bench", "--doors", "2", "--rate", "10", "--duration", "1", "--spawn",
            "--workers", "1",
        )  # fmt: skip
    finally:
        asyncio.run(hold(False))
    assert run.returncode == 1
    assert "held by running workers (someone-elses-worker)" in run.stderr, run.stderr
