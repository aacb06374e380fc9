"""The embedded PostgreSQL runs while a campusgate command uses it, and no longer
(issue 16, point 3): the last command using it stops it, even after a killed one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil

from gateway.store.embedded import _forget_dead_users


def _postgres_of(pg_dir) -> list[psutil.Process]:
    return [
        proc
        for proc in psutil.process_iter(["name", "cmdline"])
        if proc.info.get("name") == "postgres"
        and any(str(pg_dir) in part for part in proc.info.get("cmdline") or [])
    ]


def test_a_command_on_the_embedded_database_leaves_nothing_running(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPUSGATE_")}
    data = tmp_path / "data"
    users = data / "pg" / ".handle_pids.json"

    def migrate() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "--data-dir", str(data), "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    first = migrate()
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    assert not _postgres_of(data / "pg"), "the embedded PostgreSQL outlived the command"
    # A process killed earlier (SIGKILL) is still listed as a user of the server.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    users.write_text(json.dumps([dead.pid]))
    again = migrate()
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    assert not _postgres_of(data / "pg"), "a dead user kept the embedded PostgreSQL running"
    assert json.loads(users.read_text()) == []


def test_only_dead_users_are_forgotten(tmp_path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    users = tmp_path / ".handle_pids.json"
    users.write_text(json.dumps([dead.pid, os.getpid()]))
    _forget_dead_users(tmp_path)
    assert json.loads(users.read_text()) == [os.getpid()]
    users.write_text("not json")
    _forget_dead_users(tmp_path)  # a damaged list is pgserver's to handle
    assert users.read_text() == "not json"
