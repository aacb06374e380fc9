"""`campusgate import` of Excel and GBK people files, and `--sync [--dry-run]` (issue 16)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from gateway.cli import main

HEADER = ["id", "kind", "name", "org_unit", "card_uid"]


@pytest.fixture(scope="module")
def dsn(database_factory) -> str:
    url = database_factory("cli_sync")
    assert CliRunner().invoke(main, ["--database-url", url, "migrate"]).exit_code == 0
    return url


def count(dsn: str, sql: str) -> int:
    import asyncio

    async def query() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(query())


def one_line_error(result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def run(dsn: str, *args: str):
    return CliRunner().invoke(main, ["--database-url", dsn, "import", "--quiet", *args])


def test_excel_then_a_gbk_full_export_with_dry_run_and_refusal(dsn: str, tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(HEADER)
    for i in range(10):
        book.active.append([f"2023{i:03d}", "student", f"学生{i}", None, None])
    book.active.append(["T001", "staff", "王老师", None, None])
    book.save(tmp_path / "名单.xlsx")
    first = run(dsn, str(tmp_path / "名单.xlsx"))
    assert first.exit_code == 0, first.output
    assert count(dsn, "SELECT count(*) FROM people WHERE active") == 11

    export = tmp_path / "students.csv"
    rows = ["id,kind,name,org_unit,card_uid"] + [
        f"2023{i:03d},student,学生{i},," for i in range(1, 10)
    ]
    export.write_bytes(("\n".join(rows) + "\n").encode("gbk"))

    dry = run(dsn, "--sync", "--dry-run", str(export))
    assert dry.exit_code == 0, dry.output
    assert "would deactivate 1 of 10 active student" in dry.stdout
    assert "  2023000" in dry.stdout and "dry run: nothing was written" in dry.stdout
    assert count(dsn, "SELECT count(*) FROM people WHERE active") == 11

    line = one_line_error(run(dsn, "--sync", "--max-deactivate-share", "0.05", str(export)))
    assert "would deactivate 1 of 10 active student (10%), more than the 5% allowed" in line
    assert "nothing was imported" in line

    done = run(dsn, "--sync", str(export))
    assert done.exit_code == 0, done.output
    assert "deactivated 1 of 10 active student" in done.stdout
    assert count(dsn, "SELECT count(*) FROM people WHERE NOT active") == 1
    assert count(dsn, "SELECT count(*) FROM people WHERE id = 'T001' AND active") == 1
    assert count(dsn, "SELECT count(*) FROM audit_log WHERE action = 'deactivate'") == 1

    assert "--dry-run goes with --sync" in one_line_error(run(dsn, "--dry-run", str(export)))
