"""`campusgate user` cuts operators off: token, revoke-tokens, disable, enable, remove."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.cli.user import parse_duration
from gateway.store.accounts import account_for_token
from gateway.store.db import connect


@pytest.fixture(scope="module")
def dsn(database_factory) -> str:
    dsn = database_factory("user-cli")
    assert cli(dsn, "migrate").exit_code == 0
    return dsn


def cli(dsn: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--database-url", dsn, *args], input=stdin)


def run(dsn: str, coro_of) -> object:
    async def go() -> object:
        conn = await connect(dsn)
        try:
            return await coro_of(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def token_works(dsn: str, token: str) -> bool:
    return run(dsn, lambda conn: account_for_token(conn, token)) is not None


def audit_actions(dsn: str, name: str) -> list[str]:
    rows = run(
        dsn,
        lambda conn: conn.fetch(
            "SELECT action FROM audit_log WHERE entity = 'operator' AND entity_id = $1 ORDER BY id",
            name,
        ),
    )
    return [r["action"] for r in rows]  # type: ignore[union-attr]


def test_token_revoke_disable_enable_remove(dsn: str) -> None:
    added = cli(dsn, "user", "add", "gate-7", "--role", "guard")
    assert added.exit_code == 0, added.output
    first = added.stdout.strip()
    assert token_works(dsn, first)

    issued = cli(dsn, "user", "token", "gate-7", "--expires-in", "30d")
    assert issued.exit_code == 0, issued.output
    second = issued.stdout.strip()
    assert not token_works(dsn, first) and token_works(dsn, second)
    expires = run(
        dsn,
        lambda conn: conn.fetchval(
            "SELECT token_expires_at - now() FROM operators WHERE name = 'gate-7'"
        ),
    )
    assert 29 * 86400 < expires.total_seconds() <= 30 * 86400  # type: ignore[union-attr]

    assert cli(dsn, "user", "revoke-tokens", "gate-7").exit_code == 0
    assert not token_works(dsn, second)

    third = cli(dsn, "user", "token", "gate-7").stdout.strip()
    assert token_works(dsn, third)
    assert cli(dsn, "user", "disable", "gate-7").exit_code == 0
    assert not token_works(dsn, third)
    assert cli(dsn, "user", "enable", "gate-7").exit_code == 0
    assert token_works(dsn, third)

    assert cli(dsn, "user", "remove", "gate-7", "--yes").exit_code == 0
    assert not token_works(dsn, third)
    assert audit_actions(dsn, "gate-7") == [
        "create",
        "issue_token",
        "revoke_token",
        "issue_token",
        "disable",
        "enable",
        "remove",
    ]


def test_add_with_an_expiring_token_and_passwd_ends_sessions(dsn: str) -> None:
    added = cli(dsn, "user", "add", "night-1", "--role", "guard", "--expires-in", "12h")
    assert added.exit_code == 0, added.output
    assert token_works(dsn, added.stdout.strip())
    left = run(
        dsn,
        lambda conn: conn.fetchval(
            "SELECT token_expires_at - now() FROM operators WHERE name = 'night-1'"
        ),
    )
    assert 11 * 3600 < left.total_seconds() <= 12 * 3600  # type: ignore[union-attr]
    run(
        dsn,
        lambda conn: conn.execute(
            "INSERT INTO operator_sessions (token_hash, operator_id, csrf_token, expires_at) "
            "SELECT 'h-night-1', id, 'c', now() + interval '1 hour' FROM operators "
            "WHERE name = 'night-1'"
        ),
    )
    assert cli(dsn, "user", "passwd", "night-1", stdin="a new good password\n").exit_code == 0
    sessions = run(dsn, lambda conn: conn.fetchval("SELECT count(*) FROM operator_sessions"))
    assert sessions == 0


@pytest.mark.parametrize("command", ["disable", "enable", "remove", "revoke-tokens", "token"])
def test_unknown_operator_is_a_one_line_error(dsn: str, command: str) -> None:
    args = ["user", command, "nobody-here"] + (["--yes"] if command == "remove" else [])
    result = cli(dsn, *args)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["Error: no operator named 'nobody-here'"]


@pytest.mark.parametrize("text", ["0d", "30", "1y", "-3d", "d"])
def test_bad_durations_are_refused(dsn: str, text: str) -> None:
    result = cli(dsn, "user", "token", "anyone", "--expires-in", text)
    assert result.exit_code == 2 and "not a duration" in result.stderr


def test_durations() -> None:
    assert parse_duration("90m").total_seconds() == 5400
    assert parse_duration("2w").days == 14


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("CAMPUSGATE_TRUSTED_PROXIES", "10.0.0.0/8,proxy.example", "'proxy.example' is not an"),
        ("CAMPUSGATE_ALLOWED_ORIGINS", "console.example.edu", "is not an origin"),
        ("CAMPUSGATE_SESSION_IDLE_MINUTES", "0", "session_idle_minutes"),
    ],
)
def test_bad_security_settings_are_one_line_errors(variable, value, complaint) -> None:
    result = CliRunner().invoke(main, ["user", "disable", "x"], env={variable: value})
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: bad setting"), lines
    assert complaint in lines[0]
