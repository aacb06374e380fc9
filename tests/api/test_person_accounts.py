"""People's accounts against real PostgreSQL and a real CAS server on a free port:
invitations, password sign-in and its lock-out, CAS tickets, sessions kept apart from
operators', and /api/me showing only one's own record."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from cas_server import CasServer, running_cas

from api import cas_state
from api.app import create_app
from gateway.services.accounts import set_password
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

PASSWORD = "my own password 1"
CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
  - {id: cs-1, name: Class 1, parent: cs}
people:
  - {id: S001, kind: student, name: Li Hua, org_unit: cs-1, id_number: "110101200001011234"}
  - {id: S002, kind: student, name: Wang Fang, org_unit: cs-1}
  - {id: S003, kind: student, name: Zhao Lei, org_unit: cs-1}
  - {id: S004, kind: student, name: Sun Li, org_unit: cs-1}
  - {id: S005, kind: student, name: Qian Yu, org_unit: cs-1}
  - {id: T001, kind: staff, name: Zhang Wei, org_unit: cs, phone: "13800000001"}
health:
  - {person: S002, status: home_isolation, until: "2099-01-01", reason: returned from Harbin,
     caretaker: T001}
"""
BASE = "http://testserver"
# The body of POST /api/me/checkin as agreed with the check-in branch.
CHECKIN = {
    "location": "on_campus", "dormitory": "Dorm 1", "city": None, "temperature_c": 36.5,
    "symptoms": [], "case_contact": False, "travel_plans": None,
}  # fmt: skip


@dataclass
class World:
    dsn: str
    app: object
    cas: CasServer
    admin_token: str


@pytest.fixture(scope="module")
async def world(database_factory, tmp_path_factory) -> AsyncIterator[World]:
    dsn = await asyncio.to_thread(database_factory, "people")
    await apply_migrations(dsn)
    path = Path(tmp_path_factory.mktemp("people")) / "campus.yaml"
    path.write_text(CAMPUS)
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=ZoneInfo("Asia/Shanghai"))
        admin_token = await add_operator(conn, "admin-1", "admin")
        await add_operator(conn, "S001", "guard")  # an operator named like a person
        await set_password(conn, "admin-1", "admin password 1", by="test")
    finally:
        await conn.close()
    async with running_cas() as cas:
        settings = Settings(
            database_url=dsn,
            cas_url=cas.url,
            public_url=BASE,
            login_failures_per_name=3,
            login_failures_per_address=12,
            cas_version=3,
        )
        app = create_app(settings, dsn)
        async with app.router.lifespan_context(app):
            yield World(dsn, app, cas, admin_token)


_ADDRESSES = itertools.count(1)


def _client(world: World, **kwargs: object) -> httpx.AsyncClient:
    """A client of the app; each from an address of its own unless given one (the
    per-address lock-out is tested on purpose, not tripped by the other tests)."""
    n = next(_ADDRESSES)
    address = kwargs.pop("client", (f"10.1.{n // 250}.{n % 250 + 1}", 1))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.app, client=address),  # type: ignore[arg-type]
        base_url=BASE,
        **kwargs,  # type: ignore[arg-type]
    )


async def _sql(world: World, query: str, *args: object) -> object:
    conn = await connect(world.dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def _invite(world: World, person_id: str, **body: object) -> str:
    async with _client(world, headers={"Authorization": f"Bearer {world.admin_token}"}) as admin:
        answer = await admin.post(f"/api/people/{person_id}/invitation", json=body)
    assert answer.status_code == 201, answer.text
    link = answer.json()["link"]
    assert link.startswith(f"{BASE}/me/#invite=")
    return link.split("#invite=", 1)[1]


async def _accept(
    client: httpx.AsyncClient, token: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/person/invitation/accept", json={"token": token, "password": password}
    )


@contextlib.asynccontextmanager
async def _signed_in(world: World, person_id: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a person's session cookie (invitation, password, sign-in)."""
    token = await _invite(world, person_id)
    async with _client(world) as client:
        answer = await _accept(client, token)
        assert answer.status_code == 200, answer.text
        login = await client.post(
            "/api/person/login", json={"person_id": person_id, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        yield client


async def test_invitation_sets_a_password_once(world: World) -> None:
    token = await _invite(world, "S001")
    stored = await _sql(
        world, "SELECT count(*) FROM person_invitations WHERE token_hash = $1", token
    )
    assert stored == 0  # only its hash is kept
    async with _client(world) as client:
        check = await client.post("/api/person/invitation/check", json={"token": token})
        assert check.json() == {"valid": True}
        short = await _accept(client, token, "short")
        assert short.status_code == 422  # refused before the token is spent
        done = await _accept(client, token)
        assert done.status_code == 200 and done.json() == {"person_id": "S001"}
        replay = await _accept(client, token, "another password 2")
        assert replay.status_code == 410
        check = await client.post("/api/person/invitation/check", json={"token": token})
        assert check.json() == {"valid": False}
        wrong = await _accept(client, token[:-2] + "xx")
        assert wrong.status_code == 410
        login = await client.post(
            "/api/person/login", json={"person_id": "S001", "password": PASSWORD}
        )
        assert login.status_code == 200
        cookie = login.headers["set-cookie"]
        assert "cg_person=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert (await client.get("/api/me")).json()["person_id"] == "S001"
        replayed_login = await client.post(
            "/api/person/login", json={"person_id": "S001", "password": "another password 2"}
        )
        assert replayed_login.status_code == 401


async def test_expired_and_superseded_invitations_fail(world: World) -> None:
    first = await _invite(world, "S003")
    second = await _invite(world, "S003")
    await _sql(
        world,
        "UPDATE person_invitations SET expires_at = now() - interval '1 second' "
        "WHERE token_hash = encode(sha256($1::bytea), 'hex')",
        second.encode(),
    )
    async with _client(world) as client:
        assert (await _accept(client, first)).status_code == 410  # replaced by the second
        assert (await _accept(client, second)).status_code == 410  # expired
        assert (await _accept(client, "not-a-token")).status_code == 410
        login = await client.post(
            "/api/person/login", json={"person_id": "S003", "password": PASSWORD}
        )
        assert login.status_code == 401


async def test_invitations_need_an_admin_and_a_known_active_person(world: World) -> None:
    async with _client(world) as anonymous:
        assert (await anonymous.post("/api/people/S001/invitation", json={})).status_code == 401
    async with _client(world, headers={"Authorization": f"Bearer {world.admin_token}"}) as admin:
        assert (await admin.post("/api/people/NOPE/invitation", json={})).status_code == 404
    async with _signed_in(world, "S004") as person:
        # A person's session is no operator's: no invitations, no operator API at all.
        for path in ("/api/people/S004/invitation", "/api/people/S001/sessions/end"):
            answer = await person.post(
                path, json={}, headers={"X-CSRF-Token": person.cookies["cg_person_csrf"]}
            )
            assert answer.status_code == 401, path
        assert (await person.get("/api/people")).status_code == 401
        assert (await person.get("/api/auth/me")).status_code == 401
        token = person.cookies["cg_person"]
        bearer = {"Authorization": f"Bearer {token}"}
        async with _client(world, headers=bearer) as with_bearer:
            assert (await with_bearer.get("/api/people")).status_code == 401
            assert (await with_bearer.get("/api/me")).status_code == 200


async def test_operator_credentials_do_not_reach_api_me(world: World) -> None:
    async with _client(world, headers={"Authorization": f"Bearer {world.admin_token}"}) as admin:
        assert (await admin.get("/api/me")).status_code == 401
    async with _client(world) as console:
        login = await console.post(
            "/api/auth/login", json={"name": "admin-1", "password": "admin password 1"}
        )
        assert login.status_code == 200
        assert (await console.get("/api/people")).status_code == 200
        assert (await console.get("/api/me")).status_code == 401
        signed_in = await console.post(
            "/api/person/login", json={"person_id": "admin-1", "password": "admin password 1"}
        )
        assert signed_in.status_code == 401


async def test_bearer_tokens_and_csrf(world: World) -> None:
    async with _signed_in(world, "S005"):
        pass
    async with _client(world) as client:
        answer = await client.post(
            "/api/person/login", json={"person_id": "S005", "password": PASSWORD, "bearer": True}
        )
        body = answer.json()
        assert body["token"] and "set-cookie" not in answer.headers
        headers = {"Authorization": f"Bearer {body['token']}"}
        assert (await client.get("/api/me", headers=headers)).json()["person_id"] == "S005"
    async with _signed_in(world, "S005") as cookie_client:
        # A cookie alone does not sign a state-changing request: the page adds the header.
        assert (await cookie_client.post("/api/person/logout")).status_code == 403
        csrf = {"X-CSRF-Token": cookie_client.cookies["cg_person_csrf"]}
        assert (await cookie_client.post("/api/person/logout", headers=csrf)).status_code == 204
        assert (await cookie_client.get("/api/me")).status_code == 401


async def test_wrong_passwords_lock_the_account_out(world: World) -> None:
    async with _signed_in(world, "S001"):
        pass
    # A success forgets the failures from its own address only (as for operators): start
    # from none, whatever the tests before did from other addresses.
    await _sql(world, "DELETE FROM login_failures WHERE name = 'person:S001'")
    async with _client(world, client=("10.0.0.9", 1)) as attacker:
        for _ in range(3):
            wrong = await attacker.post(
                "/api/person/login", json={"person_id": "S001", "password": "guess 123456"}
            )
            assert wrong.status_code == 401
        locked = await attacker.post(
            "/api/person/login", json={"person_id": "S001", "password": PASSWORD}
        )
        assert locked.status_code == 429 and "Retry-After" in locked.headers
    async with _client(world, client=("10.0.0.10", 1)) as owner:
        # Locked for the account from any address, until the window passes.
        again = await owner.post(
            "/api/person/login", json={"person_id": "S001", "password": PASSWORD}
        )
        assert again.status_code == 429
    await _sql(world, "DELETE FROM login_failures WHERE name = 'person:S001'")
    async with _client(world) as owner:
        ok = await owner.post("/api/person/login", json={"person_id": "S001", "password": PASSWORD})
        assert ok.status_code == 200
    # The operator named like the person is a different account: untouched by this lock-out.
    assert await _sql(world, "SELECT count(*) FROM login_failures WHERE name = 'S001'") == 0


async def test_one_address_trying_many_people_is_locked_out(world: World) -> None:
    """Per address, whatever the ids: a sweep over made-up ids and CAS tickets is throttled."""
    async with _client(world, client=("10.0.0.77", 1)) as sweeper:
        codes = []
        for n in range(13):
            answer = await sweeper.post(
                "/api/person/login", json={"person_id": f"X{n:03}", "password": "guess 123456"}
            )
            codes.append(answer.status_code)
        assert codes == [401] * 12 + [429]
    async with _client(world, client=("10.0.0.78", 1)) as forger:
        seen = len(world.cas.validations)
        for _ in range(12):
            state = (await _start_cas(forger))[0]  # a state of its own: the ticket reaches CAS
            params = {"state": state, "ticket": "ST-made-up"}
            answer = await forger.get("/api/person/cas/callback", params=params)
            assert answer.headers["location"] == "/me/#error=cas_ticket"
        state = (await _start_cas(forger))[0]
        params = {"state": state, "ticket": "ST-made-up"}
        throttled = await forger.get("/api/person/cas/callback", params=params)
        assert throttled.status_code == 429
        assert len(world.cas.validations) == seen + 12  # the 13th never reached CAS
    # Callbacks this browser did not start count too, and never reach CAS at all.
    async with _client(world, client=("10.0.0.79", 1)) as forger:
        seen = len(world.cas.validations)
        params = {"state": "0" * 64, "ticket": "ST-made-up"}
        codes = [
            (await forger.get("/api/person/cas/callback", params=params)).status_code
            for _ in range(13)
        ]
        assert codes == [403] * 12 + [429]
        assert len(world.cas.validations) == seen


async def test_deactivating_ends_sessions_and_sign_in(world: World) -> None:
    async with _signed_in(world, "S004") as person:
        assert (await person.get("/api/me")).status_code == 200
        sessions = "SELECT count(*) FROM person_sessions s JOIN person_accounts a ON a.id = s.account_id WHERE a.person_id = 'S004'"
        assert await _sql(world, sessions) >= 1
        await _sql(world, "UPDATE people SET active = false WHERE id = 'S004'")
        assert await _sql(world, sessions) == 0
        assert (await person.get("/api/me")).status_code == 401
        again = await person.post(
            "/api/person/login", json={"person_id": "S004", "password": PASSWORD}
        )
        assert again.status_code == 401
        async with _client(
            world, headers={"Authorization": f"Bearer {world.admin_token}"}
        ) as admin:
            assert (await admin.post("/api/people/S004/invitation", json={})).status_code == 409
    await _sql(world, "UPDATE people SET active = true WHERE id = 'S004'")


async def test_idle_sessions_end(world: World) -> None:
    async with _signed_in(world, "S005") as person:
        await _sql(
            world,
            "UPDATE person_sessions SET last_seen_at = now() - interval '61 minutes' "
            "WHERE token_hash = encode(sha256($1::bytea), 'hex')",
            person.cookies["cg_person"].encode(),
        )
        assert (await person.get("/api/me")).status_code == 401


async def test_me_shows_own_record_with_caretaker(world: World) -> None:
    async with _signed_in(world, "S002") as person:
        me = (await person.get("/api/me")).json()
        assert me["person_id"] == "S002" and me["name"] == "Wang Fang"
        assert me["unit_name"] == "Class 1" and me["kind"] == "student"
        assert me["health"]["status"] == "home_isolation" and me["health"]["since"]
        assert me["caretaker"] == {"name": "Zhang Wei", "phone": "13800000001"}
        assert "reason" not in str(me) and "Harbin" not in str(me)  # the officers' notes stay


async def test_me_never_shows_anyone_else(world: World) -> None:
    """Every /api/me route with another person's id in path, query and body: still oneself."""
    async with _signed_in(world, "S001") as person:
        csrf = {"X-CSRF-Token": person.cookies["cg_person_csrf"]}
        paths = world.app.openapi()["paths"]  # type: ignore[attr-defined]
        routes = {path: set(ops) for path, ops in paths.items() if path.startswith("/api/me")}
        assert "/api/me" in routes
        for template, methods in routes.items():
            # A route naming something (a case in one's care, one's own trip) gets the other
            # person's id, or an id that is not one's own: it must answer as if none existed.
            path = re.sub(r"\{[a-z_]*person_id\}", "S002", template)
            path = re.sub(r"\{[a-z_]*id\}", "1", path)
            for method in methods:
                # A valid body (the agreed check-in's) with another person's ids added, so
                # that a route which takes the body runs rather than refusing it.
                body = {**CHECKIN, "person_id": "S002", "id": "S002"}
                answer = await person.request(
                    method.upper(), path, params={"person_id": "S002", "id": "S002"},
                    json=body if method != "get" else None, headers=csrf,
                )  # fmt: skip
                assert "Wang Fang" not in answer.text, (method, path)
                if answer.status_code < 400:  # a refusal may echo the input it refused
                    assert "S002" not in answer.text, (method, path)
        for path in ("/api/me/S002", "/api/me?person_id=S002", "/api/me/../people/S002"):
            answer = await person.get(path)
            assert "Wang Fang" not in answer.text, path
        me = (await person.get("/api/me", params={"person_id": "S002"})).json()
        assert me["person_id"] == "S001" and me["caretaker"] is None


def _session_cookies(answer: httpx.Response) -> list[str]:
    """The person-session cookies an answer sets (not the state cookie it clears)."""
    return [
        c for c in answer.headers.get_list("set-cookie")
        if c.startswith(("cg_person=", "cg_person_csrf="))
    ]  # fmt: skip


def _with(url: str, **params: str) -> httpx.URL:
    """`url` with `params` added to its query (httpx's `params=` would replace the query)."""
    return httpx.URL(url).copy_merge_params(params)


async def _start_cas(client: httpx.AsyncClient, **params: str) -> tuple[str, str, str]:
    """GET /api/person/cas/login: (the state, the service URL sent to CAS, CAS's login URL)."""
    start = await client.get("/api/person/cas/login", params=params)
    assert start.status_code == 302
    location = start.headers["location"]
    service = httpx.URL(location).params["service"]
    state = httpx.URL(service).params["state"]
    assert service == f"{BASE}/api/person/cas/callback?state={state}"
    return state, service, location


async def _at_cas(world: World, login_url: str, user: str) -> str:
    """The user "logs in" at the real CAS: the callback URL with a ticket it sends back."""
    world.cas.next_user = user
    async with httpx.AsyncClient() as browser:
        at_cas = await browser.get(login_url)
    assert at_cas.status_code == 302
    back: str = at_cas.headers["location"]
    assert back.startswith(f"{BASE}/api/person/cas/callback?state=")
    assert "&ticket=ST-" in back
    return back


async def _cas_round(
    world: World, user: str, attributes: dict[str, str] | None = None
) -> httpx.Response:
    """Through the real CAS: our redirect, CAS's login, back to the callback with a ticket."""
    world.cas.next_attributes = attributes or {}
    async with _client(world) as client:
        _, _, location = await _start_cas(client)
        assert location.startswith(world.cas.url + "/login?service=")
        answer = await client.get(await _at_cas(world, location, user))
        if answer.headers.get("location") == "/me/":
            assert (await client.get("/api/me")).json()["person_id"]
        return answer


async def test_cas_signs_a_roster_person_in(world: World) -> None:
    answer = await _cas_round(world, "S001")
    assert answer.status_code == 302 and answer.headers["location"] == "/me/"
    assert "cg_person=" in answer.headers["set-cookie"]
    path, ticket = world.cas.validations[-1]
    assert path == "/cas/p3/serviceValidate"
    # The same ticket again (a replay, from a browser with a sign-in of its own under way)
    # is refused by CAS, so no session.
    async with _client(world) as replay:
        state = (await _start_cas(replay))[0]
        params = {"state": state, "ticket": ticket}
        again = await replay.get("/api/person/cas/callback", params=params)
        assert again.headers["location"] == "/me/#error=cas_ticket"
        assert not _session_cookies(again)
        assert (await replay.get("/api/me")).status_code == 401


async def test_cas_ticket_for_another_service_is_refused(world: World) -> None:
    ticket = world.cas.issue("https://elsewhere.example.edu/login", "S001")
    async with _client(world) as client:
        state = (await _start_cas(client))[0]
        params = {"state": state, "ticket": ticket}
        answer = await client.get("/api/person/cas/callback", params=params)
        assert answer.headers["location"] == "/me/#error=cas_ticket"
        assert (await client.get("/api/me")).status_code == 401


async def test_cas_user_not_in_roster_and_deactivated_person(world: World) -> None:
    unknown = await _cas_round(world, "X999")
    assert unknown.headers["location"] == "/me/#error=cas_unknown"
    await _sql(world, "UPDATE people SET active = false WHERE id = 'S003'")
    try:
        inactive = await _cas_round(world, "S003")
        assert inactive.headers["location"] == "/me/#error=cas_inactive"
        assert not _session_cookies(inactive)
    finally:
        await _sql(world, "UPDATE people SET active = true WHERE id = 'S003'")


async def test_cas_attribute_maps_to_a_roster_column(world: World) -> None:
    """CAMPUSGATE_CAS_USER_ATTRIBUTE + _PERSON_FIELD: the ID number CAS releases names S001."""
    settings = Settings(
        database_url=world.dsn, cas_url=world.cas.url, public_url=BASE,
        cas_user_attribute="idNumber", cas_person_field="id_number",
    )  # fmt: skip
    app = create_app(settings, world.dsn)
    async with app.router.lifespan_context(app):
        mapped = World(world.dsn, app, world.cas, world.admin_token)
        answer = await _cas_round(mapped, "li.hua", {"idNumber": "110101200001011234"})
        assert answer.headers["location"] == "/me/"
        missing = await _cas_round(mapped, "li.hua", {})
        assert missing.headers["location"] == "/me/#error=cas_unknown"


async def test_cas_login_sets_a_short_lived_state_cookie_named_in_the_service(
    world: World,
) -> None:
    async with _client(world) as client:
        state, _, _ = await _start_cas(client)
        cookie = client.cookies["cg_person_cas"]
        assert hashlib.sha256(cookie.encode()).hexdigest() == state
        assert state not in cookie  # the secret itself never goes to CAS or its logs
    async with _client(world) as client:
        start = await client.get("/api/person/cas/login")
        header = start.headers["set-cookie"].lower()
        assert header.startswith("cg_person_cas=")
        for part in ("httponly", "samesite=lax", "max-age=600", "path=/"):
            assert part in header, header
        assert "secure" not in header  # plain http on this bench: a Secure cookie would be lost


async def test_under_tls_the_state_cookie_is_secure_and_host_only(world: World) -> None:
    """`__Host-`: Secure, Path=/, no Domain, so no sibling subdomain can plant one."""
    tls = "https://gate.example.edu"
    settings = Settings(database_url=world.dsn, cas_url=world.cas.url, public_url=tls)
    app = create_app(settings, world.dsn)
    transport = httpx.ASGITransport(app=app, client=("10.0.8.1", 1))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=tls) as client,
    ):
        start = await client.get("/api/person/cas/login")
        header = start.headers["set-cookie"]
        assert header.startswith("__Host-cg_person_cas=")
        assert "Secure" in header and "Path=/" in header and "domain" not in header.lower()
        service = httpx.URL(start.headers["location"]).params["service"]
        assert service.startswith(f"{tls}/api/person/cas/callback?state=")
        # The same value under the plain name (as a subdomain could set it) is not read.
        cookie = client.cookies["__Host-cg_person_cas"]
        client.cookies.clear()
        client.cookies.set("cg_person_cas", cookie)
        planted = await client.get(_with(service, ticket=world.cas.issue(service, "S001")))
        assert planted.status_code == 403
        client.cookies.clear()
        client.cookies.set("__Host-cg_person_cas", cookie)
        done = await client.get(_with(service, ticket=world.cas.issue(service, "S001")))
        assert done.headers["location"] == "/me/"
        cleared = [c for c in done.headers.get_list("set-cookie") if "__Host-" in c]
        assert cleared and "Secure" in cleared[0] and "Max-Age=0" in cleared[0]


async def test_cas_ticket_in_another_browser_does_not_sign_it_in(world: World) -> None:
    """Login CSRF: the attacker's own ticket, opened by someone else's browser, is refused."""
    async with _client(world) as attacker:
        _, _, login_url = await _start_cas(attacker)
        lure = await _at_cas(world, login_url, "S005")  # a ticket for the attacker's account
    seen = len(world.cas.validations)
    failures = "SELECT count(*) FROM login_failures WHERE name = 'person:cas'"
    failed_before = await _sql(world, failures)
    async with _signed_in(world, "S001") as victim:  # already signed in as themself
        refused = await victim.get(lure)
        assert refused.status_code == 403
        assert "not started in this browser" in refused.text
        assert 'href="/api/person/cas/login"' in refused.text  # a way to start again
        assert not _session_cookies(refused)
        assert (await victim.get("/api/me")).json()["person_id"] == "S001"
    assert await _sql(world, failures) == failed_before + 1  # counted as a failed sign-in
    async with _client(world) as fresh:  # no session, no state cookie
        refused = await fresh.get(lure)
        assert refused.status_code == 403 and not _session_cookies(refused)
        assert (await fresh.get("/api/me")).status_code == 401
        # With a sign-in of its own under way, the lure's state is not its state.
        await _start_cas(fresh)
        refused = await fresh.get(lure)
        assert refused.status_code == 403 and not _session_cookies(refused)
        assert (await fresh.get("/api/me")).status_code == 401
        # The old unbound callback (no state at all) is refused the same way.
        ticket = httpx.URL(lure).params["ticket"]
        await _start_cas(fresh)
        bare = await fresh.get("/api/person/cas/callback", params={"ticket": ticket})
        assert bare.status_code == 403
    assert len(world.cas.validations) == seen  # refused before CAS was asked
    # A wrong cookie under the lure's own state: refused too.
    async with _client(world) as forged:
        forged.cookies.set("cg_person_cas", f"{int(time.time())}.not-the-attackers-nonce")
        refused = await forged.get(lure)
        assert refused.status_code == 403 and not _session_cookies(refused)
    # The attacker's own browser, holding the cookie, still signs in with it.
    async with _client(world) as attacker_again:
        _, _, login_url = await _start_cas(attacker_again)
        done = await attacker_again.get(await _at_cas(world, login_url, "S005"))
        assert done.headers["location"] == "/me/"
        assert (await attacker_again.get("/api/me")).json()["person_id"] == "S005"


async def test_cas_state_is_spent_by_its_callback(world: World) -> None:
    async with _client(world) as client:
        _, service, login_url = await _start_cas(client)
        done = await client.get(await _at_cas(world, login_url, "S001"))
        assert done.headers["location"] == "/me/"
        cleared = [c for c in done.headers.get_list("set-cookie") if "cg_person_cas=" in c]
        assert cleared and "max-age=0" in cleared[0].lower()
        assert "cg_person_cas" not in client.cookies
        # A second ticket CAS issued for the same service (state) finds no state here.
        ticket = world.cas.issue(service, "S005")
        again = await client.get(_with(service, ticket=ticket))
        assert again.status_code == 403 and not _session_cookies(again)
        assert (await client.get("/api/me")).json()["person_id"] == "S001"
        # A failed callback spends the state as well.
        _, service, _ = await _start_cas(client)
        failed = await client.get(_with(service, ticket="ST-made-up"))
        assert failed.headers["location"] == "/me/#error=cas_ticket"
        assert "cg_person_cas" not in client.cookies


async def test_cas_state_older_than_ten_minutes_is_refused(world: World) -> None:
    """The browser drops the cookie after Max-Age; the server reads its age as well."""
    for age, signs_in in ((cas_state.LIFETIME_S + 1, False), (30, True)):
        cookie = f"{int(time.time()) - age}.{secrets.token_urlsafe(32)}"
        service = f"{BASE}/api/person/cas/callback?state={cas_state.state_of(cookie)}"
        ticket = world.cas.issue(service, "S001")  # a ticket CAS issued to that sign-in
        async with _client(world) as client:
            client.cookies.set("cg_person_cas", cookie)
            answer = await client.get(_with(service, ticket=ticket))
            if signs_in:
                assert answer.headers["location"] == "/me/", age
                assert (await client.get("/api/me")).json()["person_id"] == "S001"
            else:
                assert answer.status_code == 403 and not _session_cookies(answer), age
                assert (await client.get("/api/me")).status_code == 401


async def test_cas_sign_in_never_leaves_the_site(world: World) -> None:
    """No return address is taken from the request: `next=` of any shape is never followed."""
    for target in (
        "https://evil.example/", "//evil.example/", "/\\evil.example", "http:evil.example",
        "javascript:alert(1)", "/me/", "%2F%2Fevil.example",
    ):  # fmt: skip
        async with _client(world) as client:
            params = {"next": target, "service": "https://evil.example/"}
            _, service, login_url = await _start_cas(client, **params)
            assert "evil" not in login_url and "next" not in login_url
            back = await _at_cas(world, login_url, "S001")
            done = await client.get(_with(back, next=target))
            assert done.status_code == 302 and done.headers["location"] == "/me/", target
        async with _client(world) as stranger:  # refused: a page, not a redirect anywhere
            refused = await stranger.get(_with(service, ticket="ST-x", next=target))
            assert refused.status_code == 403 and "location" not in refused.headers
            assert "evil" not in refused.text and "javascript" not in refused.text


async def test_password_sign_in_and_invitations_refuse_cross_site_forms(world: World) -> None:
    """Login CSRF through the other doors: a page elsewhere can make a browser POST only
    a form (urlencoded, multipart, text/plain), never JSON without a CORS pre-flight, and
    these routes take JSON only; an invitation only sets a password, it signs nobody in."""
    token = await _invite(world, "S004")
    body = json.dumps({"token": token, "password": PASSWORD})
    async with _client(world) as browser:
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            headers = {"content-type": content_type}
            answer = await browser.post(
                "/api/person/invitation/accept", content=body, headers=headers
            )
            assert answer.status_code == 422, content_type
        assert (
            await browser.post("/api/person/invitation/check", json={"token": token})
        ).json() == {"valid": True}
        accepted = await _accept(browser, token)
        assert accepted.status_code == 200 and not _session_cookies(accepted)
        assert (await browser.get("/api/me")).status_code == 401
        login = json.dumps({"person_id": "S004", "password": PASSWORD})
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            headers = {"content-type": content_type}
            answer = await browser.post("/api/person/login", content=login, headers=headers)
            assert answer.status_code == 422 and not _session_cookies(answer), content_type
        form = await browser.post(
            "/api/person/login", data={"person_id": "S004", "password": PASSWORD}
        )
        assert form.status_code == 422 and not _session_cookies(form)
        assert (await browser.get("/api/me")).status_code == 401


async def test_cas_off_without_settings(world: World) -> None:
    app = create_app(Settings(database_url=world.dsn), world.dsn)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE) as c,
    ):
        assert (await c.get("/api/person/config")).json()["cas"] is False
        assert (await c.get("/api/person/cas/login")).status_code == 404


async def test_person_export_lists_the_account_without_secrets(world: World) -> None:
    async with _signed_in(world, "S005") as person:
        assert (await person.get("/api/me")).status_code == 200
    async with _client(world, headers={"Authorization": f"Bearer {world.admin_token}"}) as admin:
        answer = await admin.get("/api/people/S005/export")
        assert answer.status_code == 200, answer.text
        account = answer.json()["person_account"]
        assert account["has_password"] is True and account["sessions"] >= 1
        assert "hash" not in str(account).replace("has_password", "")
        actions = {a["action"] for a in answer.json()["audit"]}
        assert {"invite", "set_password", "sign_in"} <= actions


def test_cas_answer_parsing_refuses_entities() -> None:
    from gateway.services.cas import CasError, parse_answer

    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        '<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>'
        "<cas:user>&b;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"
    )
    for text in (
        bomb,
        "not xml",
        "<other/>",
        '<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"/>',
    ):
        with pytest.raises(CasError):
            parse_answer(text)


async def test_retention_deletes_ended_sessions_and_old_invitations(world: World) -> None:
    from gateway.store.person_accounts import purge_stale

    async with _signed_in(world, "S005") as person:
        live = person.cookies["cg_person"]
        other = await person.post(
            "/api/person/login", json={"person_id": "S005", "password": PASSWORD, "bearer": True}
        )
        assert other.status_code == 200
        token = await _invite(world, "T001")
        await _sql(
            world,
            "UPDATE person_invitations SET expires_at = now() - interval '2 days' "
            "WHERE token_hash = encode(sha256($1::bytea), 'hex')",
            token.encode(),
        )
        await _sql(
            world,
            "UPDATE person_sessions SET expires_at = now() - interval '1 minute' "
            "WHERE token_hash <> encode(sha256($1::bytea), 'hex')",
            live.encode(),
        )
        conn = await connect(world.dsn)
        try:
            dry = await purge_stale(conn, dry_run=True)
            done = await purge_stale(conn)
            assert dry == done and done["person_invitations"] >= 1 and done["person_sessions"] >= 1
            assert await purge_stale(conn, dry_run=True) == {
                "person_sessions": 0,
                "person_invitations": 0,
            }
        finally:
            await conn.close()
        assert (await person.get("/api/me")).status_code == 200  # the live one stays


def test_cas_needs_the_public_url_so_the_service_never_comes_from_the_host_header() -> None:
    with pytest.raises(ValueError, match="CAMPUSGATE_PUBLIC_URL"):
        Settings(cas_url="https://cas.example.edu/cas")
    assert Settings(cas_url="https://cas.example.edu/cas", public_url="https://cg.example.edu")


async def test_people_failing_behind_one_address_do_not_lock_out_its_operators(
    world: World,
) -> None:
    """Students behind one campus NAT: their failures count against people's sign-ins
    from that address, not against the guards' console logins, and the other way round."""
    from datetime import timedelta

    from gateway.store.accounts import recent_login_failures, record_login_failure

    window = timedelta(minutes=15)
    conn = await connect(world.dsn)
    try:
        for n in range(5):
            await record_login_failure(conn, f"person:X{n}", "10.9.9.9")
        await record_login_failure(conn, "guard-1", "10.9.9.9")
        assert await recent_login_failures(conn, "person:S001", "10.9.9.9", window) == (0, 5)
        assert await recent_login_failures(conn, "guard-2", "10.9.9.9", window) == (0, 1)
    finally:
        await conn.close()


async def test_a_made_up_invitation_token_is_refused_before_any_hashing(world: World) -> None:
    from unittest import mock

    from gateway.services import person_accounts

    with mock.patch.object(person_accounts, "hash_password") as hashing:
        async with _client(world) as client:
            answer = await _accept(client, "made-up-" + "x" * 30, "a good long password")
    assert answer.status_code == 410
    hashing.assert_not_called()
