"""A real person session for tests of the person-facing routes: the account CAS would
make at first sign-in and a session row, as api/person_auth.py reads them. The sign-in
routes themselves (CAS, invitations, passwords) are tested in tests/api/test_person_accounts.py."""

from __future__ import annotations

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
