"""The Person record page in headless Chromium: masked contacts, audited unmasking, export."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn

from api.app import create_app
from gateway.services.accounts import set_password
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

from .test_console_browser import ARGS, ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)

PASSWORD = "person page 2026"
CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
people:
  - {id: S001, kind: student, name: Li Hua, org_unit: cs, cards: ["04A1B2C3"],
     phone: "13812345678", id_number: "110101199003071234"}
  - {id: S002, kind: student, name: Li Ming, org_unit: cs}
health:
  - {person: S001, status: home_isolation, until: "2099-01-01", reason: returned from Harbin}
"""


@pytest.fixture(scope="module")
async def api_url(database_factory, tmp_path_factory) -> AsyncIterator[tuple[str, str]]:
    """(console URL, dsn) of an API over a tiny campus, officer-1 and guard-1 with passwords."""
    dsn = await asyncio.to_thread(database_factory, "person-page")
    await apply_migrations(dsn)
    path = Path(tmp_path_factory.mktemp("person")) / "campus.yaml"
    path.write_text(CAMPUS)
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=ZoneInfo("Asia/Shanghai"))
        for name, role in (("officer-1", "health_officer"), ("guard-1", "guard")):
            await add_operator(conn, name, role)
            await set_password(conn, name, PASSWORD, by="test")
    finally:
        await conn.close()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = uvicorn.Server(
        uvicorn.Config(create_app(Settings(database_url=dsn), dsn), log_level="warning")
    )
    server.install_signal_handlers = lambda: None
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", dsn
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)
        sock.close()


async def _login(page, url: str, name: str) -> None:
    from playwright.async_api import expect

    await page.goto(url + "/#person")
    await page.fill("#login-name", name)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#page-person")).to_be_visible()


async def _open_li_hua(page) -> None:
    await page.fill("#page-person .person-q", "Li")
    await page.click("#page-person .do-search")
    await page.click('#page-person .person-pick[data-person="S001"]')


async def _audit_count(dsn: str, action: str) -> int:
    conn = await connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = $1 AND entity_id = 'S001'", action
        )
    finally:
        await conn.close()


async def test_officer_unmasks_and_exports(api_url: tuple[str, str], tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    url, dsn = api_url
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(accept_downloads=True)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await _login(page, url, "officer-1")
            await expect(page.locator("#tab-person")).to_have_text("人员档案")
            await _open_li_hua(page)
            record = page.locator("#page-person .person-record")
            await expect(record.locator(".person-phone")).to_contain_text("138****5678")
            await expect(record.locator(".person-id-number")).to_contain_text("1101**********1234")
            await expect(record.locator(".person-reason")).to_have_text("returned from Harbin")
            await expect(record.locator(".person-health")).to_have_text("居家隔离")

            await record.locator(".do-unmask").click()
            await expect(record.locator(".person-phone")).to_have_text("13812345678")
            await expect(record.locator(".person-id-number")).to_have_text("110101199003071234")
            await expect(record.locator(".do-unmask")).to_have_count(0)
            assert await _audit_count(dsn, "unmask") == 1

            async with page.expect_download() as waiting:
                await record.locator(".do-export").click()
            download = await waiting.value
            assert download.suggested_filename == "person-S001.json"
            saved = tmp_path / download.suggested_filename
            await download.save_as(saved)
            document = json.loads(saved.read_text())
            assert document["person"]["id"] == "S001"
            assert document["health_status"]["status"] == "home_isolation"
            assert await _audit_count(dsn, "export") == 1

            await page.click("#lang")  # English
            await expect(page.locator("#page-person h2")).to_have_text("Person record")
            await expect(record.locator(".person-health")).to_have_text("home isolation")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "console-person.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()


async def test_guard_sees_masked_record_without_health_or_buttons(
    api_url: tuple[str, str],
) -> None:
    from playwright.async_api import async_playwright, expect

    url, _ = api_url
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await _login(page, url, "guard-1")
            await _open_li_hua(page)
            record = page.locator("#page-person .person-record")
            await expect(record.locator(".person-phone")).to_contain_text("138****5678")
            await expect(record.locator(".person-hold")).to_contain_text("是")
            await expect(record.locator(".person-reason")).to_have_count(0)
            await expect(record.locator(".person-health")).to_have_count(0)
            await expect(record.locator(".do-unmask")).to_have_count(0)
            await expect(record.locator(".do-export")).to_have_count(0)
            assert "Harbin" not in await page.content()
        finally:
            await browser.close()
