"""`campusgate person invite` prints a working one-time link; `end-sessions` signs out."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.services.accounts import LoginLimits
from gateway.services.person_accounts import accept_invitation, open_session, password_login
from gateway.store.db import connect
from gateway.store.person_accounts import session_for_token

HOUR = timedelta(hours=1)
CAMPUS = """
people:
  - {id: S001, kind: student, name: Li Hua}
  - {id: S002, kind: student, name: Wang Fang}
"""


@pytest.fixture(scope="module")
def dsn(database_factory, tmp_path_factory) -> str:
    dsn = database_factory("person-cli")
    assert cli(dsn, "migrate").exit_code == 0
    path = Path(tmp_path_factory.mktemp("person-cli")) / "campus.yaml"
    path.write_text(CAMPUS)
    imported = cli(dsn, "import", str(path))
    assert imported.exit_code == 0, imported.output
    return dsn


def cli(dsn: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database-url", dsn, *args])


def run(dsn: str, coro_of) -> object:
    async def go() -> object:
        conn = await connect(dsn)
        try:
            return await coro_of(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_invite_link_sets_a_password_and_end_sessions_signs_out(dsn: str) -> None:
    made = cli(dsn, "--public-url", "https://gate.example.edu", "person", "invite", "S001")
    assert made.exit_code == 0, made.output
    link = made.stdout.strip()
    assert link.startswith("https://gate.example.edu/me/#invite=")
    token = link.split("#invite=", 1)[1]
    account = run(dsn, lambda conn: accept_invitation(conn, token, "long enough 1"))
    found = run(
        dsn, lambda conn: password_login(conn, "S001", "long enough 1", "10.0.0.1", LoginLimits())
    )
    assert found == account
    session = run(dsn, lambda conn: open_session(conn, account, "password"))
    alive = run(dsn, lambda conn: session_for_token(conn, session.token, HOUR))
    assert alive is not None

    ended = cli(dsn, "person", "end-sessions", "S001")
    assert ended.exit_code == 0 and "ended 1 session" in ended.output
    assert run(dsn, lambda conn: session_for_token(conn, session.token, HOUR)) is None


def test_invite_refuses_unknown_people_and_needs_an_address(dsn: str) -> None:
    unknown = cli(dsn, "person", "invite", "NOPE", "--base-url", "https://gate.example.edu")
    assert unknown.exit_code != 0 and "no person 'NOPE'" in unknown.output
    no_address = cli(dsn, "person", "invite", "S002")
    assert no_address.exit_code != 0 and "CAMPUSGATE_PUBLIC_URL" in no_address.output
