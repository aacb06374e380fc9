"""`campusgate travel import`: one-line errors naming the file and row; nothing written then."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from click.testing import CliRunner
from wf_campus import seed_campus

from gateway.cli import main

TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _run(dsn: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", dsn, "travel", "import", *args])


async def test_travel_import_cli(fresh_db: str, tmp_path) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await seed_campus(conn)
        header = "person_id,destination,departure_date,return_date\n"
        good = tmp_path / "trips.csv"
        good.write_text(header + f"S1,Wuhan,{TODAY - timedelta(days=3)},{TODAY}\n")
        bad = tmp_path / "bad.csv"
        bad.write_text(header + f"S1,Wuhan,{TODAY},{TODAY}\nS1,Wuhan,soon,{TODAY}\n")
        result = await asyncio.to_thread(_run, fresh_db, str(bad))
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "bad.csv: row 3 (S1): departure_date 'soon'" in lines[0]
        assert await conn.fetchval("SELECT count(*) FROM travel_declarations") == 0
        missing = await asyncio.to_thread(_run, fresh_db, str(tmp_path / "nope.csv"))
        assert missing.exit_code != 0 and "cannot read" in missing.output
        for _ in range(2):  # a second import changes nothing
            result = await asyncio.to_thread(_run, fresh_db, "--operator", "forms", str(good))
            assert result.exit_code == 0, result.output
            assert "1 declarations on file" in result.output
        row = await conn.fetchrow("SELECT declared_by, source FROM travel_declarations")
        assert tuple(row) == ("forms", "csv")
    finally:
        await conn.close()
