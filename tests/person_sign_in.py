"""A real person session for tests of the person-facing routes: the account CAS would
make at first sign-in and a session row, as api/person_auth.py reads them. The sign-in
routes themselves (CAS, invitations, passwords) are tested in tests/api/test_person_accounts.py."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.services.person_accounts import cas_account, open_session
from gateway.store.db import connect


async def person_bearer(dsn: str, person_id: str) -> str:
    """A bearer token of a new session for `person_id` (bearer requests need no CSRF)."""
    conn = await connect(dsn)
    try:
        opened = await open_session(conn, await cas_account(conn, person_id), "cas")
    finally:
        await conn.close()
    return opened.token


def api_client(app: Any, token: str | None = None) -> httpx.AsyncClient:
    """An in-process client of `app`, with a bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


async def person_client(app: Any, person_id: str) -> httpx.AsyncClient:
    """A client of `app` signed in as the person, through a real person session."""
    return api_client(app, await person_bearer(app.state.settings.database_url, person_id))
