"""`campusgate migrate`, `import` and `user add` through the real command line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from gateway.cli import main

MANIFEST = {
    "org_units": [{"id": "cs", "name": "Computer Science"}],
    "zones": [{"id": "lab", "name": "Lab", "kind": "lab", "capacity": 20}],
    "people": [
        {"id": "s1", "kind": "student", "name": "Li Hua", "org_unit": "cs", "cards": ["04A1B2C3D4"]}
    ],
}


@pytest.fixture(scope="module")
def empty_dsn(database_factory) -> str:
    return database_factory("cli")


def run(dsn: str, *args: str):
    result = CliRunner().invoke(main, ["--database-url", dsn, *args])
    return result


def one_line_error(result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def count(dsn: str, sql: str) -> int:
    import asyncio

    async def query() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(query())


def test_commands_before_migrate_say_what_to_do(database_factory, tmp_path: Path) -> None:
    empty_dsn = database_factory("cli-unmigrated")
    path = tmp_path / "campus.json"
    path.write_text(json.dumps(MANIFEST))
    line = one_line_error(run(empty_dsn, "import", str(path)))
    assert "run `campusgate migrate` first" in line


def test_migrate_import_and_user_add(empty_dsn: str, tmp_path: Path) -> None:
    first = run(empty_dsn, "migrate")
    assert first.exit_code == 0, first.output
    from gateway.store.migrate import available_migrations

    assert f"applied {len(available_migrations())} migrations" in first.stdout
    again = run(empty_dsn, "migrate")
    assert again.exit_code == 0 and "up to date" in again.stdout

    path = tmp_path / "campus.json"
    path.write_text(json.dumps(MANIFEST))
    imported = run(empty_dsn, "import", "--quiet", str(path))
    assert imported.exit_code == 0, imported.output
    assert "people" in imported.stdout and "inserted" in imported.stdout
    assert count(empty_dsn, "SELECT count(*) FROM cards") == 1

    bad = dict(MANIFEST, people=[dict(MANIFEST["people"][0], id="s2", cards=["XYZ"])])
    path.write_text(json.dumps(bad))
    line = one_line_error(run(empty_dsn, "import", str(path)))
    assert "campus.json: people[0] (id s2): card_uid 'XYZ'" in line
    assert count(empty_dsn, "SELECT count(*) FROM people") == 1

    line = one_line_error(run(empty_dsn, "import", str(tmp_path / "missing.yaml")))
    assert "no such file" in line

    added = run(empty_dsn, "user", "add", "alice", "--role", "guard")
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    assert len(token) >= 40 and "\n" not in token
    assert count(empty_dsn, "SELECT count(*) FROM operators WHERE token_hash <> ''") == 1
    assert count(empty_dsn, "SELECT count(*) FROM audit_log WHERE entity = 'operator'") == 1
    assert "already exists" in one_line_error(
        run(empty_dsn, "user", "add", "alice", "--role", "admin")
    )
    bad_role = run(empty_dsn, "user", "add", "bob", "--role", "janitor")
    assert bad_role.exit_code != 0
    assert count(empty_dsn, "SELECT count(*) FROM operators") == 1


def test_unreachable_database_is_one_line() -> None:
    line = one_line_error(run("postgresql://postgres:secret@127.0.0.1:1/none", "migrate"))
    assert "cannot reach the database" in line and "secret" not in line


def test_configured_database_url_is_used_as_is(tmp_path: Path) -> None:
    from gateway.settings import Settings
    from gateway.store.embedded import resolve_database_url

    settings = Settings(database_url="postgresql://u@db.example:5432/cg", data_dir=tmp_path)
    assert resolve_database_url(settings) == "postgresql://u@db.example:5432/cg"
    assert not (tmp_path / "pg").exists()


def test_unwritable_data_dir_for_the_embedded_database_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["--data-dir", str(blocker / "data"), "migrate"])
    line = one_line_error(result)
    assert "cannot create the embedded database folder" in line


def test_a_failing_migration_is_one_line_and_rolled_back(database_factory) -> None:
    import asyncio

    import asyncpg

    dsn = database_factory("badmig")

    async def squat() -> None:  # a table in the way of the first migration
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE org_units (x int)")
        finally:
            await conn.close()

    asyncio.run(squat())
    line = one_line_error(run(dsn, "migrate"))
    assert "a migration failed" in line and "rolled back" in line
    assert count(dsn, "SELECT count(*) FROM schema_migrations") == 0
