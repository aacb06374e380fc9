"""`campusgate trace-bench` (tiny) and `campusgate trace` through the real entry point."""

from __future__ import annotations

import asyncio
import csv
import errno
import json
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from gateway.cli import main


@pytest.fixture(scope="module")
def bench_dsn(database_factory) -> str:
    dsn = database_factory("tracecli")
    assert CliRunner().invoke(main, ["--database-url", dsn, "migrate"]).exit_code == 0
    return dsn


def run(dsn: str, *args: str):
    return CliRunner().invoke(main, ["--database-url", dsn, *args])


def error_line(result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_bench_then_trace(bench_dsn: str, tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    result = run(bench_dsn, "trace-bench", "--people", "80", "--days", "2", "--queries", "2",
                 "--json", str(figures))  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(figures.read_text())
    assert data["rows"] > 500 and data["generation_2"]["queries"] == 2
    assert "generation 1: p50" in result.stdout

    again = run(bench_dsn, "trace-bench", "--people", "80", "--days", "1")
    assert "not empty" in error_line(again)

    table = run(bench_dsn, "trace", "S000001", "--days", "5", "--generations", "2",
                "--second-min-exposure", "60", "--second-max-seeds", "1")  # fmt: skip
    assert table.exit_code == 0, table.stderr
    assert "contacts" in table.stdout
    assert "second generation traced from 1 first-generation contact(s)" in table.stdout
    assert "left out by --second-max-seeds 1" in table.stdout

    out = tmp_path / "contacts.csv"
    result = run(bench_dsn, "trace", "S000001", "--days", "5", "--csv", str(out))
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert rows and rows[0]["generation"] == "1" and rows[0]["name"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("trace", "nobody"), "no person 'nobody'"),
        (("trace", "S000001", "--days", "0"), "days must be"),
        (("trace", "S000001", "--from", "yesterday"), "--from"),
        (("trace", "S000001", "--csv", "/no/such/dir/x.csv"), "does not exist"),
    ],
)
def test_bad_input_is_one_line(bench_dsn: str, args: tuple[str, ...], words: str) -> None:
    assert words in error_line(run(bench_dsn, *args))


def test_seed_cap_out_of_range_is_refused(bench_dsn: str) -> None:
    result = run(bench_dsn, "trace", "S000001", "--generations", "2", "--second-max-seeds", "501")
    assert result.exit_code == 2 and "--second-max-seeds" in result.stderr


@pytest.fixture
def roster_only_dsn(database_factory) -> str:
    """A migrated database with one person whose id the simulator also uses, no traffic."""
    dsn = database_factory("tracecli-roster")
    assert CliRunner().invoke(main, ["--database-url", dsn, "migrate"]).exit_code == 0

    async def add_person() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "INSERT INTO people (id, kind, name) VALUES ('S000001', 'student', 'x')"
            )
        finally:
            await conn.close()

    asyncio.run(add_person())
    return dsn


def test_bench_refuses_a_roster_holding_its_ids(roster_only_dsn: str) -> None:
    result = run(roster_only_dsn, "trace-bench", "--people", "80", "--days", "1")
    assert "already holds simulated ids" in error_line(result)


def test_unwritable_csv_is_one_line(
    roster_only_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "contacts.csv"

    def full_disk(self: Path, *args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    result = run(roster_only_dsn, "trace", "S000001", "--days", "5", "--csv", str(out))
    assert "cannot write: No space left on device" in error_line(result)
