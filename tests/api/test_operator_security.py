"""The operator side, hardened: lock-out in the database, cutting operators off, idle
sessions, live streams that end with their credential, body limits, security headers,
database errors that say nothing of the query, and counts that keep health reasons back."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

import gateway.services.accounts as accounts_service
from api.app import STATIC, create_app
from gateway.services.accounts import (
    disable_operator,
    enable_operator,
    issue_token,
    remove_operator,
    revoke_tokens,
    set_password,
)
from gateway.settings import Settings
from gateway.store.db import connect, create_pool
from gateway.store.operators import add_operator

PASSWORD = "correct horse battery"
TIMEOUT = 5.0


def _client(app, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


@pytest.fixture
async def db(api_world):
    conn = await connect(api_world.dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def operator(db) -> AsyncIterator[tuple[str, str]]:
    """A fresh guard of this test only: (name, API token)."""
    name = f"op-{uuid.uuid4().hex[:8]}"
    token = await add_operator(db, name, "guard")
    await set_password(db, name, PASSWORD, by="test")
    yield name, token


async def _login(client: httpx.AsyncClient, name: str, password: str = PASSWORD, **headers: str):
    return await client.post(
        "/api/auth/login", json={"name": name, "password": password}, headers=headers
    )


@pytest.fixture
async def strict_app(api_world) -> AsyncIterator[object]:
    """An app with small lock-out limits that believes X-Forwarded-For from 127.0.0.1."""
    settings = Settings(
        database_url=api_world.dsn,
        login_failures_per_name=3,
        login_failures_per_address=5,
        trusted_proxies="127.0.0.1/32",
    )
    application = create_app(settings, api_world.dsn)
    async with application.router.lifespan_context(application):
        yield application


# ---- lock-out ---------------------------------------------------------------------


async def test_lockout_per_account_from_any_address_and_across_a_restart(
    strict_app, api_world, operator
):
    name, _ = operator
    async with _client(strict_app) as client:
        for n in range(3):
            forwarded = {"X-Forwarded-For": f"198.51.100.{n + 1}"}
            assert (await _login(client, name, "wrong password", **forwarded)).status_code == 401
        # A fourth address, and the right password: the account is locked.
        locked = await _login(client, name, **{"X-Forwarded-For": "198.51.100.77"})
        assert locked.status_code == 429 and "Retry-After" in locked.headers
    # A new API process (a restart) reads the same count from the database.
    settings = Settings(database_url=api_world.dsn, login_failures_per_name=3)
    restarted = create_app(settings, api_world.dsn)
    async with restarted.router.lifespan_context(restarted), _client(restarted) as client:
        assert (await _login(client, name)).status_code == 429


async def test_a_burst_of_parallel_guesses_gets_no_more_than_the_limit(strict_app, operator):
    name, _ = operator
    async with _client(strict_app) as client:
        answers = await asyncio.gather(
            *(
                _login(client, name, f"guess {n}", **{"X-Forwarded-For": f"198.51.100.{n}"})
                for n in range(1, 9)
            )
        )
    codes = sorted(a.status_code for a in answers)
    # Each attempt counts as it arrives, not once its slow hash is done.
    assert codes.count(401) <= 3 and codes.count(429) >= 5, codes


async def test_lockout_per_address_throttles_a_flood_of_made_up_names(strict_app, operator):
    name, _ = operator
    flooder = {"X-Forwarded-For": "203.0.113.9"}
    async with _client(strict_app) as client:
        for _ in range(5):
            made_up = f"nobody-{uuid.uuid4().hex[:6]}"
            assert (await _login(client, made_up, "whatever1", **flooder)).status_code == 401
        # The address is throttled whatever name it tries, even a real one with its password.
        assert (await _login(client, name, **flooder)).status_code == 429
        # Another address logs in as that operator.
        assert (
            await _login(client, name, **{"X-Forwarded-For": "203.0.113.10"})
        ).status_code == 200


async def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(api_world, operator):
    name, _ = operator
    # The test client's peer is 127.0.0.1, where other tests failed logins too.
    conn = await connect(api_world.dsn)
    try:
        await conn.execute("DELETE FROM login_failures WHERE address = '127.0.0.1'")
    finally:
        await conn.close()
    settings = Settings(
        database_url=api_world.dsn, login_failures_per_name=100, login_failures_per_address=3
    )
    application = create_app(settings, api_world.dsn)  # no trusted proxies
    async with application.router.lifespan_context(application), _client(application) as client:
        for n in range(3):
            spoofed = {"X-Forwarded-For": f"192.0.2.{n + 1}"}
            made_up = f"nobody-{uuid.uuid4().hex[:6]}"
            assert (await _login(client, made_up, "whatever1", **spoofed)).status_code == 401
        assert await _failures_from(api_world.dsn, "127.0.0.1") == 3
        assert await _failures_from(api_world.dsn, "192.0.2.1") == 0
        blocked = await _login(client, name, **{"X-Forwarded-For": "192.0.2.200"})
        assert blocked.status_code == 429


async def _failures_from(dsn: str, address: str) -> int:
    conn = await connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM login_failures WHERE address = $1", address
        )
    finally:
        await conn.close()


async def test_password_hashing_runs_off_the_event_loop(api_world, operator, monkeypatch):
    name, _ = operator
    threads: list[str] = []
    real_verify = accounts_service._verify

    def spy(stored: str, password: str) -> bool:
        threads.append(threading.current_thread().name)
        return real_verify(stored, password)

    monkeypatch.setattr(accounts_service, "_verify", spy)
    pool = await create_pool(api_world.dsn, min_size=1, max_size=5)

    async def check(who: str):
        async with pool.acquire() as conn:
            return await accounts_service.check_password(conn, who, PASSWORD)

    try:
        results = await asyncio.gather(*(check(name) for _ in range(4)), check("no-such-op"))
    finally:
        await pool.close()
    assert [r is not None for r in results] == [True, True, True, True, False]
    loop_thread = threading.current_thread().name
    assert threads and all(t.startswith("argon2") and t != loop_thread for t in threads)
    assert len(set(threads)) <= accounts_service.HASH_THREADS


# ---- cutting operators off --------------------------------------------------------


async def test_password_change_ends_that_operators_sessions(app, db, operator):
    name, _ = operator
    async with _client(app) as client:
        assert (await _login(client, name)).status_code == 200
        assert (await client.get("/api/auth/me")).status_code == 200
        await set_password(db, name, "another good password", by="admin")
        assert (await client.get("/api/auth/me")).status_code == 401
    audit = await db.fetchrow(
        "SELECT after FROM audit_log WHERE action = 'set_password' AND entity_id = $1 "
        "ORDER BY id DESC LIMIT 1",
        name,
    )
    assert audit["after"] == {"sessions_ended": 1}


async def test_disable_stops_token_password_and_sessions_and_enable_restores(app, db, operator):
    name, token = operator
    async with _client(app) as session, _client(app, Authorization=f"Bearer {token}") as bearer:
        assert (await _login(session, name)).status_code == 200
        assert (await bearer.get("/api/auth/me")).status_code == 200
        assert await disable_operator(db, name, by="admin") == 1
        assert (await session.get("/api/auth/me")).status_code == 401
        assert (await bearer.get("/api/auth/me")).status_code == 401
        session.cookies.clear()
        assert (await _login(session, name)).status_code == 401
        await enable_operator(db, name, by="admin")
        assert (await bearer.get("/api/auth/me")).status_code == 200
        assert (await _login(session, name)).status_code == 200
    actions = await db.fetch(
        "SELECT action FROM audit_log WHERE entity = 'operator' AND entity_id = $1 ORDER BY id",
        name,
    )
    assert [r["action"] for r in actions][-2:] == ["disable", "enable"]


async def test_tokens_revoked_reissued_and_expiring(app, db, operator):
    from datetime import timedelta

    name, token = operator
    async with _client(app, Authorization=f"Bearer {token}") as old:
        await revoke_tokens(db, name, by="admin")
        assert (await old.get("/api/auth/me")).status_code == 401
    fresh = await issue_token(db, name, by="admin", expires_in=timedelta(days=30))
    async with _client(app, Authorization=f"Bearer {fresh}") as client:
        assert (await client.get("/api/auth/me")).status_code == 200
        await db.execute(
            "UPDATE operators SET token_expires_at = now() - interval '1 second' WHERE name = $1",
            name,
        )
        assert (await client.get("/api/auth/me")).status_code == 401


async def test_removed_operator_is_gone(app, db, operator):
    name, token = operator
    await remove_operator(db, name, by="admin")
    async with _client(app, Authorization=f"Bearer {token}") as client:
        assert (await client.get("/api/auth/me")).status_code == 401
        assert (await _login(client, name)).status_code == 401
    assert await db.fetchval("SELECT count(*) FROM operators WHERE name = $1", name) == 0
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'remove' AND entity_id = $1", name
        )
        == 1
    )


async def test_idle_session_ends(app, db, operator):
    name, _ = operator
    async with _client(app) as client:
        assert (await _login(client, name)).status_code == 200
        await db.execute(
            "UPDATE operator_sessions s SET last_seen_at = now() - interval '29 minutes' "
            "FROM operators o WHERE o.id = s.operator_id AND o.name = $1",
            name,
        )
        assert (await client.get("/api/auth/me")).status_code == 200  # and it counts as use
        await db.execute(
            "UPDATE operator_sessions s SET last_seen_at = now() - interval '31 minutes' "
            "FROM operators o WHERE o.id = s.operator_id AND o.name = $1",
            name,
        )
        assert (await client.get("/api/auth/me")).status_code == 401


# ---- live streams end with their credential ------------------------------------------


@pytest.fixture(scope="module")
async def stream_server(app) -> AsyncIterator[str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.02)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _ready(ws) -> None:
    while json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] != "ready":
        pass


async def _closed_with(ws) -> int:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else -1


@pytest.mark.parametrize("cut_off", ["disable", "revoke", "password"])
async def test_open_stream_closes_at_once_when_the_operator_is_cut_off(
    stream_server, db, operator, cut_off
):
    name, token = operator
    ws = await websockets.connect(f"ws://{stream_server}/api/alerts/stream?token={token}")
    try:
        await _ready(ws)
        if cut_off == "disable":
            await disable_operator(db, name, by="admin")
        elif cut_off == "revoke":
            await revoke_tokens(db, name, by="admin")
        else:
            # A password change ends sessions; a token stream survives it, a session one not.
            await set_password(db, name, "another good password", by="admin")
        if cut_off == "password":
            await asyncio.sleep(0.5)
            assert ws.state.name == "OPEN"
        else:
            assert await _closed_with(ws) == 4401  # within TIMEOUT, not the 60 s re-check
    finally:
        await ws.close()


async def test_session_stream_closes_when_the_password_changes(app, stream_server, db, operator):
    name, _ = operator
    async with _client(app) as client:
        assert (await _login(client, name)).status_code == 200
        cookie = client.cookies["cg_session"]
    ws = await websockets.connect(
        f"ws://{stream_server}/api/alerts/stream",
        additional_headers={"Cookie": f"cg_session={cookie}", "Origin": f"http://{stream_server}"},
    )
    try:
        await _ready(ws)
        await set_password(db, name, "another good password", by="admin")
        assert await _closed_with(ws) == 4401
    finally:
        await ws.close()


async def test_stream_refuses_a_foreign_origin(stream_server, operator):
    _, token = operator
    url = f"ws://{stream_server}/api/alerts/stream?token={token}"
    with pytest.raises(InvalidStatus) as refused:  # refused before the handshake completes
        await websockets.connect(url, additional_headers={"Origin": "https://evil.example"})
    assert refused.value.response.status_code == 403
    own = await websockets.connect(url, additional_headers={"Origin": f"http://{stream_server}"})
    try:
        await _ready(own)
    finally:
        await own.close()


# ---- request bodies ---------------------------------------------------------------


async def test_unauthenticated_bodies_are_small_and_refused_before_reading(app, api_world):
    big = b"x" * (Settings().max_body_anonymous + 1)
    async with _client(app) as client:
        declared = await client.post(
            "/api/auth/login", content=big, headers={"Content-Type": "application/json"}
        )
        assert declared.status_code == 413

        async def chunks():
            for _ in range(40):
                yield b"x" * 1024

        streamed = await client.post(
            "/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in streamed.request.headers
        assert streamed.status_code == 413
        # A made-up token does not buy the larger limit.
        fake = await client.post("/api/import", content=big, headers={"Authorization": "Bearer x"})
        assert fake.status_code == 413
    admin = api_world.tokens["admin"]
    async with _client(app, Authorization=f"Bearer {admin}") as client:
        # Logged in, a larger body (an import) is read and judged on its content.
        judged = await client.post(
            "/api/import", files={"file": ("campus.yaml", b"# " + big, "application/yaml")}
        )
        assert judged.status_code != 413
        too_big = b"x" * (Settings().max_body + 1)
        assert (await client.post("/api/import", content=too_big)).status_code == 413


# ---- headers, errors, counts --------------------------------------------------------


async def test_security_headers_on_pages_and_no_store_on_api(app, api_world):
    async with _client(app, Authorization=f"Bearer {api_world.tokens['admin']}") as client:
        for path in ("/", "/static/console.js", "/api/people", "/api/alerts", "/docs", "/nope"):
            response = await client.get(path)
            headers = response.headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["referrer-policy"] == "no-referrer", path
            csp = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp, path
            assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0], path
            if path.startswith("/api/"):
                assert headers["cache-control"] == "no-store", path
        export = await client.get("/api/people/S001/export")
        assert export.headers["cache-control"] == "no-store"


class _InlineScripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            self.found.append("inline <script>")
        self.found += [f"{tag} {k}=" for k in names if k.startswith("on")]
        if any((v or "").strip().lower().startswith("javascript:") for v in names.values()):
            self.found.append(f"{tag} javascript: URL")


def test_console_page_has_no_inline_script():
    parser = _InlineScripts()
    parser.feed(Path(STATIC / "index.html").read_text())
    assert parser.found == []


async def test_database_errors_do_not_echo_the_query(app, api_world):
    async with _client(app, Authorization=f"Bearer {api_world.tokens['admin']}") as client:
        response = await client.get("/api/people", params={"q": "a\x00b"})
        assert response.status_code == 422
        text = response.text.lower()
        for leaked in ("select", "where", "0x00", "utf8", "$1"):
            assert leaked not in text, text


async def test_liaison_counts_fold_health_reasons(app, api_world, db):
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    rows = [
        ("fever", "04A1B2C3", "S001"),
        ("health_hold", "04A1B2C3", "S001"),
        ("not_authorized", "04A1B2C3", "S001"),
    ]
    for reason, card, person in rows:
        await db.execute(
            "INSERT INTO access_events (event_id, device_id, door_id, zone_id, device_ts, "
            "received_at, type, card_uid, person_id, decision, reason) "
            "VALUES ($1, 'term-lab-1', 'lab-1-door', 'lab-1', $2, $2, 'card', $3, $4, 'deny', $5)",
            f"ev-{uuid.uuid4().hex[:10]}",
            now,
            card,
            person,
            reason,
        )
    async with _client(app, Authorization=f"Bearer {api_world.tokens['liaison']}") as liaison:
        counts = (await liaison.get("/api/reports/today")).json()
    assert counts["fevers"] is None
    assert "fever" not in counts["denied_by_reason"]
    assert "health_hold" not in counts["denied_by_reason"]
    assert counts["denied_by_reason"]["withheld"] >= 2
    assert counts["denied_by_reason"]["not_authorized"] >= 1
    async with _client(app, Authorization=f"Bearer {api_world.tokens['admin']}") as admin:
        full = (await admin.get("/api/reports/today")).json()
    assert full["denied_by_reason"]["fever"] >= 1 and full["fevers"] >= 1


async def test_docs_page_has_no_inline_script_and_a_csp_without_unsafe_inline_script(app):
    import re

    async with _client(app) as client:
        page = await client.get("/docs")
    assert re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL) == []
    script_src = page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert script_src.strip() == "'self'"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.0.0.5", ["198.51.100.7"], "198.51.100.7"),  # one trusted proxy
        ("10.0.0.5", ["6.6.6.6, 198.51.100.7, 10.0.0.9"], "198.51.100.7"),  # client-written left
        ("10.0.0.5", ["6.6.6.6", "198.51.100.7"], "198.51.100.7"),  # two header lines
        ("10.0.0.5", [], "10.0.0.5"),  # nothing forwarded
        ("10.0.0.5", ["10.0.0.7"], "10.0.0.5"),  # only proxies
        ("10.0.0.5", ["not-an-address"], "10.0.0.5"),  # garbage counts against the proxy
        ("203.0.113.1", ["198.51.100.7"], "203.0.113.1"),  # untrusted peer: header ignored
    ],
)
def test_client_address(peer, forwarded, expected):
    from ipaddress import ip_network

    from api.client_address import client_address

    scope = {
        "type": "http",
        "client": (peer, 1234),
        "headers": [(b"x-forwarded-for", line.encode()) for line in forwarded],
    }
    assert client_address(scope, [ip_network("10.0.0.0/24")]) == expected


@pytest.mark.parametrize(
    ("path", "heavy"),
    [
        ("/api/tracing/S1", True),
        ("/api/events", True),
        ("/api/zones/dorm-1/muster", True),
        ("/api/people/S1/export", True),
        ("/api/daily-reports/3/xlsx", True),
        ("/api/daily-reports/generate", True),
        ("/api/import", True),
        ("/api/alerts", False),
        ("/api/auth/login", False),
        ("/", False),
    ],
)
def test_heavy_requests_are_recognised(path, heavy):
    from api.middleware import is_heavy

    assert is_heavy("GET", path) is heavy


async def test_heavy_requests_wait_for_each_other():
    from api.middleware import HeavyGate, OneHeavyAtATime

    running = 0
    most = 0

    async def endpoint(scope, receive, send):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guarded = OneHeavyAtATime(
        endpoint, is_heavy=lambda m, p: p == "/heavy", gate=HeavyGate(limit=1, queue=8)
    )

    async def call(path: str) -> None:
        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            pass

        await guarded({"type": "http", "method": "GET", "path": path}, receive, send)

    await asyncio.gather(*(call("/heavy") for _ in range(4)))
    assert most == 1
    most = 0
    await asyncio.gather(*(call("/light") for _ in range(4)))
    assert most == 4
