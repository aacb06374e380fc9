"""`campusgate sim campus|doors|scenarios` through the real command line entry point.

The end-to-end tests run a real gateway (`python -m gateway serve`) on the session's
Mosquitto and a fresh database holding the campus that `sim campus` wrote.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result

from gateway.cli import main

PEOPLE = "300"
SEED = "11"
CAMPUS = ["--people", PEOPLE, "--seed", SEED]
REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    # No broker from the environment unless a test passes one.
    return CliRunner().invoke(main, list(args), env={"CAMPUSGATE_MQTT_URL": None, **(env or {})})


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    async def query() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(query())


def write_campus(path: Path) -> Result:
    result = cli("sim", "campus", *CAMPUS, "--out", str(path))
    assert result.exit_code == 0, result.output
    return result


# ---- sim campus ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["campus.yaml", "campus.json"])
def test_sim_campus_writes_a_manifest_that_import_accepts(
    database_factory, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    result = write_campus(path)
    summary = result.stdout.strip()
    assert "\n" not in summary
    assert f"{PEOPLE} people" in summary and "23 doors" in summary and "23 devices" in summary
    isolated = re.search(r"isolated: ([^;]+);", summary)
    assert isolated is not None, summary
    if name.endswith(".json"):
        assert json.loads(path.read_text())["people"]

    dsn = database_factory("sim")
    assert cli("--database-url", dsn, "migrate").exit_code == 0
    imported = cli("--database-url", dsn, "import", "--quiet", str(path))
    assert imported.exit_code == 0, imported.output
    assert fetch(dsn, "SELECT count(*) AS n FROM people")[0]["n"] == int(PEOPLE)
    assert fetch(dsn, "SELECT count(*) AS n FROM devices")[0]["n"] == 23
    # The people the summary calls isolated are the ones the manifest isolates.
    rows = fetch(dsn, "SELECT person_id FROM health_status WHERE status = 'home_isolation'")
    assert {r["person_id"] for r in rows} == set(isolated.group(1).split(", ")), summary


def test_sim_campus_is_the_same_campus_for_the_same_seed(tmp_path: Path) -> None:
    write_campus(tmp_path / "a.yaml")
    write_campus(tmp_path / "b.yaml")
    assert (tmp_path / "a.yaml").read_text() == (tmp_path / "b.yaml").read_text()
    other = cli(
        "sim", "campus", "--people", PEOPLE, "--seed", "12", "--out", str(tmp_path / "c.yaml")
    )
    assert other.exit_code == 0
    assert (tmp_path / "c.yaml").read_text() != (tmp_path / "a.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["sim", "campus", "--people", "10"], "--people: 10 is out of range"),
        (["sim", "campus", "--people", "lots"], "--people: 'lots' is not a number"),
        (["sim", "campus", "--people", "999999"], "--people: 999999 is out of range"),
        (["sim", "campus", "--out", "/no/such/dir/campus.yaml"], "directory /no/such/dir"),
        (["sim", "campus", "--out", "people.csv"], "must end in .yaml, .yml, .json"),
        (["sim", "doors", "--rate", "0"], "--rate: 0 is out of range"),
        (["sim", "doors", "--duration", "0"], "--duration: 0 is out of range"),
        (["sim", "scenarios", "--fever-card", "7"], "--fever-card: 7 is out of range"),
    ],
)
def test_bad_arguments_are_one_line_errors(args: list[str], says: str) -> None:
    assert says in one_line_error(cli(*args))


def test_sim_campus_refuses_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "x.yaml"
    folder.mkdir()
    assert "is a directory" in one_line_error(cli("sim", "campus", "--out", str(folder)))


@pytest.mark.parametrize("sub", ["doors", "scenarios"])
def test_doors_and_scenarios_need_a_broker(sub: str) -> None:
    line = one_line_error(cli("sim", sub, *CAMPUS))
    assert "no broker configured: set CAMPUSGATE_MQTT_URL" in line


@pytest.mark.parametrize("sub", ["doors", "scenarios"])
def test_unreachable_broker_is_a_one_line_error(sub: str) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    line = one_line_error(cli("--mqtt-url", url, "sim", sub, *CAMPUS))
    assert "cannot reach MQTT broker" in line


def test_only_names_devices_of_the_campus(mqtt_url: str) -> None:
    line = one_line_error(cli("--mqtt-url", mqtt_url, "sim", "doors", *CAMPUS, "--only", "term-x"))
    assert "--only: no device term-x" in line


# ---- against a real gateway --------------------------------------------------------


@pytest.fixture(scope="module")
def served(database_factory, mqtt_url: str, tmp_path_factory) -> Iterator[list[str]]:
    """A gateway subprocess serving the `sim campus` campus; yields the global flags to reach it."""
    folder = tmp_path_factory.mktemp("sim-gateway")
    manifest = folder / "campus.yaml"
    write_campus(manifest)
    dsn = database_factory("simgw")
    assert cli("--database-url", dsn, "migrate").exit_code == 0
    imported = cli("--database-url", dsn, "import", "--quiet", str(manifest))
    assert imported.exit_code == 0, imported.output
    prefix = f"sim{secrets.token_hex(3)}"
    env = dict(
        os.environ,
        CAMPUSGATE_DATABASE_URL=dsn,
        CAMPUSGATE_MQTT_URL=mqtt_url,
        CAMPUSGATE_TOPIC_PREFIX=prefix,
        CAMPUSGATE_DATA_DIR=str(folder / "data"),
        CAMPUSGATE_API_PORT="0",
        CAMPUSGATE_METRICS_PORT="0",  # no metrics server: tests run side by side
        CAMPUSGATE_TEMPERATURE_WINDOW_S="2",
    )
    log = folder / "gateway.log"
    with log.open("wb") as sink:  # a file, never an unread pipe
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--client-id", f"gw-{prefix}"],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "running; Ctrl-C stops it" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gateway did not start: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield ["--mqtt-url", mqtt_url, "--topic-prefix", prefix, "--temperature-window-s", "2"]
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_sim_scenarios_pass_against_the_gateway(served: list[str]) -> None:
    result = cli(*served, "sim", "scenarios", *CAMPUS, "--fever-card", "4")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    verdicts = [line for line in lines if line.startswith(("PASS ", "FAIL "))]
    assert len(verdicts) == 12 and all(v.startswith("PASS ") for v in verdicts), result.stdout
    assert "12 of 12 scenarios passed" in result.stdout


def test_sim_scenarios_fail_against_another_campus(served: list[str]) -> None:
    # Same doors (their ids do not depend on the seed), other cards: the gateway denies them.
    result = cli(*served, "sim", "scenarios", "--people", PEOPLE, "--seed", "99", "--timeout", "1")
    assert result.exit_code == 1
    assert "FAIL normal swipes" in result.stdout
    assert "scenarios failed: normal swipes" in result.stderr
    assert "known cards were denied as unknown" in result.stderr


def test_sim_doors_plays_traffic_and_summarises(served: list[str]) -> None:
    result = cli(*served, "sim", "doors", *CAMPUS, "--rate", "40", "--duration", "3")
    assert result.exit_code == 0, result.output
    final = next(line for line in result.stdout.splitlines() if line.startswith("final: "))
    sent = int(re.search(r"sent (\d+)", final).group(1))
    decided = int(re.search(r"decided (\d+)", final).group(1))
    assert sent > 40 and decided > 0.9 * sent, final
    assert "ok " in final  # reasons are counted
    assert result.stdout.count("sent ") >= 1


def test_sim_doors_with_only_some_devices(served: list[str]) -> None:
    result = cli(
        *served,
        "sim",
        "doors",
        *CAMPUS,
        "--rate",
        "40",
        "--duration",
        "2",
        "--only",
        "term-gate-main-in,term-gate-main-out",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2 simulated devices")
    final = next(line for line in result.stdout.splitlines() if line.startswith("final: "))
    assert int(re.search(r"decided (\d+)", final).group(1)) > 0, final
