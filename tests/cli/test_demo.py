"""`campusgate demo` end to end, as a newcomer runs it."""

from __future__ import annotations

import os
import subprocess
import sys


def run_demo(env_extra: dict[str, str], data_dir, seconds: int = 6) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPUSGATE_")}
    env.update(env_extra)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "--data-dir",
            str(data_dir),
            "demo",
            "--people",
            "300",
            "--duration",
            str(seconds),
            "--rate",
            "20",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def check_showcase(run: subprocess.CompletedProcess) -> None:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    passed = [line for line in run.stdout.splitlines() if line.startswith("PASS ")]
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAIL ")]
    assert not failed, run.stdout
    assert len(passed) >= 15  # 12 MQTT scenarios, the OSDP and RDM6300 readers, the camera
    # Issue 5: a traced chain (B first generation, C second) and a generated daily report.
    assert any(line.startswith("PASS  traced chain") for line in passed), run.stdout
    assert "daily report" in run.stdout and "students campus-wide" in run.stdout
    assert "demo stopped" in run.stdout
    # Issue 12: commands are signed, and the terminals refuse a forged and a replayed one.
    assert any(line.startswith("PASS forged and replayed commands") for line in passed)


def check_report_files(data_dir) -> None:
    days = list((data_dir / "reports").iterdir())
    assert len(days) == 1
    files = {p.suffix for p in days[0].iterdir()}
    assert files == {".html", ".csv", ".xlsx"}
    campus_html = next(days[0].glob("campusgate-student-campus-*.html")).read_text()
    assert "<svg" in campus_html  # the charts


def test_demo_on_configured_services(database_factory, mqtt_url, tmp_path):
    dsn = database_factory("demo")
    run = run_demo({"CAMPUSGATE_DATABASE_URL": dsn, "CAMPUSGATE_MQTT_URL": mqtt_url}, tmp_path)
    check_showcase(run)
    check_report_files(tmp_path)
    assert (tmp_path / "keys" / "command-signing.pem").is_file()
    # A second run reuses the data: the campus is already there, and the showcase still passes.
    again = run_demo(
        {"CAMPUSGATE_DATABASE_URL": dsn, "CAMPUSGATE_MQTT_URL": mqtt_url}, tmp_path, seconds=2
    )
    check_showcase(again)
    assert "already up to date" in again.stdout


def test_demo_with_embedded_database_and_broker(tmp_path):
    """The README's first command: no URLs set, pgserver and amqtt come up by themselves."""
    try:
        run = run_demo({}, tmp_path / "data")
        check_showcase(run)
    finally:
        import pgserver

        pg_dir = tmp_path / "data" / "pg"
        if pg_dir.exists():
            pgserver.get_server(pg_dir, cleanup_mode="stop").cleanup()
