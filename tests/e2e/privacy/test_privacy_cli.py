"""`campusgate retention run` and `campusgate export` through the real entry point."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.store.db import connect

MANIFEST = """
org_units:
  - {id: cs, name: Computer Science}
people:
  - {id: S1, kind: student, name: Li Hua, org_unit: cs, cards: ["04A1B2C3"],
     phone: "13812345678", id_number: "110101199003071234"}
"""


@pytest.fixture(scope="module")
def campus_dsn(database_factory, tmp_path_factory) -> str:
    dsn = database_factory("privacy-cli")
    assert cli(dsn, "migrate").exit_code == 0
    path = Path(tmp_path_factory.mktemp("cli")) / "campus.yaml"
    path.write_text(MANIFEST)
    imported = cli(dsn, "import", "--quiet", str(path))
    assert imported.exit_code == 0, imported.output
    return dsn


def cli(dsn: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database-url", dsn, *args])


def query(dsn: str, sql: str) -> object:
    async def run() -> object:
        conn = await connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_export_writes_the_record_and_audits(campus_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "s1.json"
    result = cli(campus_dsn, "export", "S1", "--out", str(out), "--operator", "officer-li")
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["person"]["id"] == "S1" and doc["person"]["phone"] == "13812345678"
    assert doc["cards"][0]["uid"] == "04A1B2C3" and doc["exported_by"] == "officer-li"
    assert (
        query(
            campus_dsn,
            "SELECT count(*) FROM audit_log WHERE action = 'export' AND entity_id = 'S1'"
            " AND operator = 'officer-li'",
        )
        == 1
    )


def test_export_to_stdout(campus_dsn: str) -> None:
    result = cli(campus_dsn, "export", "S1", "--out", "-")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["person"]["name"] == "Li Hua"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("export", "NOBODY", "--out", "{tmp}/x.json"), "no person 'NOBODY'"),
        (("export", "S1", "--out", "{tmp}/missing/x.json"), "no such directory"),
    ],
)
def test_bad_input_is_one_line(
    campus_dsn: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    line = one_line_error(cli(campus_dsn, *(a.format(tmp=tmp_path) for a in args)))
    assert message in line
    assert not (tmp_path / "x.json").exists()


def test_unknown_mode_is_a_usage_error(campus_dsn: str) -> None:
    result = cli(campus_dsn, "retention", "run", "--mode", "shred")
    assert result.exit_code == 2 and "Invalid value for '--mode'" in result.stderr


def test_retention_run_prints_counts(campus_dsn: str) -> None:
    audited = "SELECT count(*) FROM audit_log WHERE operator = 'retention'"
    before = query(campus_dsn, audited)
    dry = cli(campus_dsn, "retention", "run", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "retention (delete mode) would remove:" in dry.stdout
    assert "access_events" in dry.stdout and "health_history" in dry.stdout
    assert query(campus_dsn, audited) == before
    real = cli(campus_dsn, "retention", "run", "--mode", "anonymize")
    assert real.exit_code == 0, real.output
    assert "retention (anonymize mode) removed:" in real.stdout
    assert "access_events_anonymized" in real.stdout
    assert query(campus_dsn, audited) == before + 1
