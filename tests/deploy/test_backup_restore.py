"""deploy/backup scripts for real: a campus is dumped, restored into a new database and checked.

The scripts run as an operator would run them (bash, the PostgreSQL 15 client tools,
CAMPUSGATE_DATABASE_URL in the environment) against the test server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction, EventType
from gateway.store.access_log import ensure_partitions, write_access_records
from gateway.store.db import connect
from gateway.store.roster import load_roster

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BACKUP = DEPLOY / "backup" / "campusgate-backup.sh"
RESTORE = DEPLOY / "backup" / "campusgate-restore.sh"

MANIFEST = {
    "org_units": [{"id": "cs", "name": "Computer Science"}],
    "zones": [{"id": "dorm-10", "name": "Dormitory 10", "kind": "dormitory", "capacity": 800}],
    "doors": [{"id": "dorm-10-main", "zone": "dorm-10", "direction": "in"}],
    "devices": [{"id": "term-d10-1", "door": "dorm-10-main", "kind": "terminal"}],
    "people": [
        {
            "id": "s1",
            "kind": "student",
            "name": "Li Hua",
            "org_unit": "cs",
            "cards": ["04A1B2C3D4"],
        },
        {
            "id": "s2",
            "kind": "student",
            "name": "Wang Fang",
            "org_unit": "cs",
            "cards": ["0A0B0C0D"],
        },
    ],
    "grants": [{"subject": {"org_unit": "cs"}, "zone": "dorm-10"}],
    "health": [{"person": "s2", "status": "fever_watch", "reason": "38.1 at the gate"}],
}
# Events in two months, so that two partitions of the access log travel.
T0 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def campusgate(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--database-url", dsn, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def script(path: Path, dsn: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPUSGATE_")}
    if dsn is not None:
        env["CAMPUSGATE_DATABASE_URL"] = dsn
    return subprocess.run(
        ["bash", str(path), *args], capture_output=True, text=True, timeout=120, env=env
    )


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def run(coro):  # the fixtures' database_factory runs its own loop; so do these helpers
    return asyncio.run(coro)


async def table_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        return {
            t["table_name"]: await conn.fetchval(f'SELECT count(*) FROM "{t["table_name"]}"')
            for t in tables
        }
    finally:
        await conn.close()


async def sequence_values(dsn: str) -> dict[str, int | None]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT sequencename, last_value FROM pg_sequences")
        return {r["sequencename"]: r["last_value"] for r in rows}
    finally:
        await conn.close()


async def write_events(dsn: str) -> None:
    conn = await connect(dsn)
    try:
        await ensure_partitions(conn, T0)
        records = [
            AccessRecord(
                device_id="term-d10-1",
                event_id=f"e{n}",
                type=EventType.CARD,
                device_ts=T0 + timedelta(minutes=20 * n),
                received_at=T0 + timedelta(minutes=20 * n),
                door_id="dorm-10-main",
                zone_id="dorm-10",
                person_id="s1" if n % 2 else "s2",
                card_uid="04A1B2C3D4" if n % 2 else "0A0B0C0D",
                direction=Direction.IN,
                verdict=Verdict.ADMIT if n % 2 else Verdict.DENY,
                reason=Reason.OK if n % 2 else Reason.HEALTH_HOLD,
                decided_at=T0 + timedelta(minutes=20 * n, milliseconds=2),
                latency_us=900,
            )
            for n in range(6)  # 23:00 to 00:40: November and December
        ]
        await write_access_records(conn, records)
    finally:
        await conn.close()


@pytest.fixture
def campus_db(database_factory, tmp_path: Path) -> str:
    """A migrated database holding a small campus, an operator and access events."""
    dsn = database_factory("bk")
    migrated = campusgate(dsn, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    manifest = tmp_path / "campus.json"
    manifest.write_text(json.dumps(MANIFEST))
    imported = campusgate(dsn, "import", "--quiet", str(manifest))
    assert imported.returncode == 0, imported.stderr
    user = campusgate(dsn, "user", "add", "guard-1", "--role", "guard")
    assert user.returncode == 0, user.stderr
    run(write_events(dsn))
    return dsn


@pytest.fixture
def restored_name(campus_db: str) -> Iterator[str]:
    """The name the restore creates; dropped afterwards (the script made it, not the factory)."""
    name = urlsplit(campus_db).path.lstrip("/") + "_r"
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(with_database(campus_db, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run(drop())


def test_backup_then_restore_into_a_new_database(
    campus_db: str, restored_name: str, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    for old in ("campusgate-20200101T000000Z.dump", "campusgate-20200102T000000Z.dump"):
        (backups / old).write_bytes(b"old")
    (backups / "notes.txt").write_text("not a dump: retention leaves it alone")

    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    backup = script(
        BACKUP, campus_db, "--dir", str(backups), "--keep", "2", "--textfile-dir", str(textfiles)
    )
    assert backup.returncode == 0, backup.stderr
    dumps = sorted(p.name for p in backups.glob("campusgate-*.dump"))
    # The new dump and the newest old one stay; the oldest went; no partial file is left.
    assert len(dumps) == 2 and dumps[0] == "campusgate-20200102T000000Z.dump", dumps
    assert sorted(p.name for p in backups.iterdir()) == [*dumps, "notes.txt"]
    dump = backups / dumps[1]
    assert f"ok: {dump}" in backup.stdout
    assert "removed old dump campusgate-20200101T000000Z.dump" in backup.stdout
    assert dump.stat().st_mode & 0o077 == 0, "a dump holds health data: owner-only"
    metrics = (textfiles / "campusgate_backup.prom").read_text()
    stamp = re.search(r"^campusgate_backup_last_success_timestamp_seconds (\d+)$", metrics, re.M)
    assert stamp and abs(int(stamp[1]) - time.time()) < 600
    assert f"campusgate_backup_last_size_bytes {dump.stat().st_size}" in metrics

    restore = script(RESTORE, campus_db, str(dump), restored_name)
    assert restore.returncode == 0, restore.stderr + restore.stdout
    assert f"restored into {restored_name}" in restore.stdout
    assert "campusgate migrate" in restore.stdout

    copy = with_database(campus_db, restored_name)
    before, after = run(table_counts(campus_db)), run(table_counts(copy))
    assert after == before
    assert after["access_events"] == 6 and after["people"] == 2 and after["operators"] >= 1
    assert run(sequence_values(copy)) == run(sequence_values(campus_db))

    again = campusgate(copy, "migrate")
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout

    async def roster() -> tuple[set[str], set[str], set[str]]:
        conn = await connect(copy)
        try:
            loaded = await load_roster(conn)
        finally:
            await conn.close()
        return (
            {p.id for p in loaded.people},
            {c.uid for c in loaded.cards},
            {h.person_id for h in loaded.health},
        )

    people, cards, health = run(roster())
    assert people == {"s1", "s2"}
    assert cards == {"04A1B2C3D4", "0A0B0C0D"}
    assert "s2" in health


def test_restore_never_touches_the_database_in_use(campus_db: str, tmp_path: Path) -> None:
    backups = tmp_path / "b"
    assert script(BACKUP, campus_db, "--dir", str(backups)).returncode == 0
    (dump,) = backups.glob("campusgate-*.dump")
    current = urlsplit(campus_db).path.lstrip("/")
    over = script(RESTORE, campus_db, str(dump), current)
    assert over.returncode == 2 and "refusing to restore over the database in use" in over.stderr
    existing = script(RESTORE, campus_db, str(dump), "postgres")
    assert existing.returncode == 1 and "exists already" in existing.stderr
    bad_name = script(RESTORE, campus_db, str(dump), 'x"; DROP DATABASE postgres; --')
    assert bad_name.returncode == 2 and "lower-case letters" in bad_name.stderr
    not_a_dump = tmp_path / "junk.dump"
    not_a_dump.write_text("junk")
    junk = script(RESTORE, campus_db, str(not_a_dump), "cg_never_made")
    assert junk.returncode == 1 and "not a pg_dump custom-format file" in junk.stderr


def test_backup_failures_say_what_to_do_and_leave_nothing(database_factory, tmp_path: Path) -> None:
    no_url = script(BACKUP, None, "--dir", str(tmp_path))
    assert no_url.returncode == 2 and "CAMPUSGATE_DATABASE_URL is not set" in no_url.stderr
    bad_keep = script(BACKUP, "postgresql://x@127.0.0.1/x", "--keep", "0")
    assert bad_keep.returncode == 2 and "--keep" in bad_keep.stderr
    dsn = database_factory("bkgone")
    gone = with_database(dsn, urlsplit(dsn).path.lstrip("/") + "_missing")
    failed = script(BACKUP, gone, "--dir", str(tmp_path))
    assert failed.returncode != 0 and "does not exist" in failed.stderr
    assert list(tmp_path.iterdir()) == [], "a failed dump leaves no file behind"
