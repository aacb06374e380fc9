"""CAS sign-in on the mobile page in headless Chromium, against a real CAS server on
another site (127.0.0.1 vs localhost): the state cookie survives the cross-site return
from CAS (SameSite=Lax), and a lure to the callback with someone else's ticket signs a
second browser in as nobody, its page leading to a sign-in of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from cas_server import CasServer, running_cas

from api.app import create_app
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

from .test_console_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)

WAIT_MS = 15_000
CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
people:
  - {id: S010, kind: student, name: Chen Jie, org_unit: cs}
  - {id: S011, kind: student, name: Liu Yang, org_unit: cs}
"""


@pytest.fixture(scope="module")
async def cas_site(database_factory, tmp_path_factory) -> AsyncIterator[tuple[str, CasServer]]:
    """(the API's public URL on localhost, the CAS server on 127.0.0.1)."""
    dsn = await asyncio.to_thread(database_factory, "me-cas")
    await apply_migrations(dsn)
    path = Path(tmp_path_factory.mktemp("me-cas")) / "campus.yaml"
    path.write_text(CAMPUS)
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=ZoneInfo("Asia/Shanghai"))
    finally:
        await conn.close()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    public_url = f"http://localhost:{sock.getsockname()[1]}"
    async with running_cas() as cas:
        settings = Settings(database_url=dsn, cas_url=cas.url, public_url=public_url)
        server = uvicorn.Server(uvicorn.Config(create_app(settings, dsn), log_level="warning"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.05)
        try:
            yield public_url, cas
        finally:
            server.should_exit = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task, 10)
            sock.close()


async def test_cas_sign_in_across_sites_and_a_lured_browser(
    cas_site: tuple[str, CasServer],
) -> None:
    from playwright.async_api import async_playwright, expect

    url, cas = cas_site
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # The attacker signs in through CAS as themself but keeps the way back from
            # CAS (ticket included) to lure others to it.
            cas.next_user = "S011"
            async with httpx.AsyncClient() as attacker:
                start = await attacker.get(f"{url}/api/person/cas/login")
                at_cas = await attacker.get(start.headers["location"])
            lure = at_cas.headers["location"]
            assert lure.startswith(f"{url}/api/person/cas/callback?state=")

            # Someone else's browser opens the lure: refused, nobody signed in.
            victim = await browser.new_context()
            page = await victim.new_page()
            answer = await page.goto(lure)
            assert answer is not None and answer.status == 403
            await expect(page.locator("h1")).to_contain_text("Sign-in not completed")
            link = page.get_by_role("link")
            await expect(link).to_have_attribute("href", "/api/person/cas/login")
            assert not [c for c in await victim.cookies() if c["name"] == "cg_person"]
            me = await page.request.get(f"{url}/api/me")
            assert me.status == 401

            # Its link starts a sign-in of its own, which CAS (as S010) completes: the
            # state cookie came back from the other site, so SameSite=Lax held.
            cas.next_user = "S010"
            await link.click()
            await page.wait_for_url(f"{url}/me/**", timeout=WAIT_MS)
            me = await page.request.get(f"{url}/api/me")
            assert me.status == 200 and (await me.json())["person_id"] == "S010"
            names = {c["name"] for c in await victim.cookies()}
            assert "cg_person" in names and "cg_person_cas" not in names  # spent
            await victim.close()
        finally:
            await browser.close()
