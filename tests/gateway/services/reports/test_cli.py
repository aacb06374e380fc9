"""`campusgate report generate|list|send` against a real database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from click.testing import CliRunner

from gateway.cli import main

from .conftest import Log, at, students_of, today


def _run(dsn: str, tmp_path, *args: str):
    return CliRunner().invoke(
        main, ["--database-url", dsn, "--data-dir", str(tmp_path), "report", *args]
    )


async def test_generate_list_and_send(campus_conn, small_campus, fresh_db, tmp_path):
    facts = small_campus.facts
    college = facts.lab_college
    s = students_of(small_campus, college)
    day = today() - timedelta(days=1)
    await Log(campus_conn, facts.door_zones).card(
        at(day, 5), facts.gate_door, "admit", "ok", person=s[0].id
    )
    result = await asyncio.to_thread(
        _run, fresh_db, tmp_path, "generate", "--day", day.isoformat(), "--org-unit", college,
        "--audience", "student",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert college in result.output
    folder = tmp_path / "reports" / day.isoformat()
    names = sorted(p.name for p in folder.iterdir())
    stem = f"campusgate-student-{college}-{day.isoformat()}"
    assert names == [f"{stem}.csv", f"{stem}.html", f"{stem}.xlsx"]
    assert "<svg" in (folder / f"{stem}.html").read_text()
    listed = await asyncio.to_thread(_run, fresh_db, tmp_path, "list", "--day", day.isoformat())
    assert listed.exit_code == 0 and "cli" in listed.output and college in listed.output
    sent = await asyncio.to_thread(_run, fresh_db, tmp_path, "send", "1")
    assert sent.exit_code == 0 and "no recipients" in sent.output


async def test_bad_input_is_one_line(fresh_db, tmp_path):
    for args, message in (
        (("generate", "--day", "2026-02-30"), "is not a date"),
        (("generate", "--day", "2999-01-01"), "has not begun"),
        (("generate", "--org-unit", "nowhere"), "unknown org unit 'nowhere'"),
        (("send", "424242"), "no report 424242"),
    ):
        result = await asyncio.to_thread(_run, fresh_db, tmp_path, *args)
        assert result.exit_code != 0, args
        assert message in result.output
        assert "Traceback" not in result.output


async def test_days_out_of_datetime_range_are_one_line(fresh_db, tmp_path):
    for day, message in (("0001-01-01", "lies before 1970-01-01"), ("9999-12-31", "has not begun")):
        result = await asyncio.to_thread(_run, fresh_db, tmp_path, "generate", "--day", day)
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output


async def test_report_id_beyond_bigint_is_one_line(fresh_db, tmp_path):
    result = await asyncio.to_thread(_run, fresh_db, tmp_path, "send", str(2**63))
    assert result.exit_code == 2 and "REPORT_ID" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


async def test_unwritable_report_files_are_one_line(fresh_db, tmp_path):
    (tmp_path / "reports").write_text("a file where the reports folder should be")
    day = (today() - timedelta(days=1)).isoformat()
    result = await asyncio.to_thread(_run, fresh_db, tmp_path, "generate", "--day", day)
    assert result.exit_code == 1, result.output
    assert "reports stored, but their files could not be written" in result.output
    assert "Traceback" not in result.output
