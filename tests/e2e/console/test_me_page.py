"""The mobile page /me/ in headless Chromium at phone size: an invitation link sets a
password, the person signs in with id + password and sees their own status, in Chinese
and in English; the check-in form degrades gracefully while its endpoint is missing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn

from api.app import create_app
from gateway.services.importer import import_file
from gateway.services.person_accounts import invite
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

from .test_console_browser import ARGS, ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)

PASSWORD = "phone page 2026"
# Argon2 hashes and a shared 2-core CI machine: waits a little longer than the default 5 s.
WAIT_MS = 15_000
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 3}  # fmt: skip
CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
people:
  - {id: S002, kind: student, name: Wang Fang, org_unit: cs}
  - {id: T001, kind: staff, name: Zhang Wei, org_unit: cs, phone: "13800000001"}
health:
  - {person: S002, status: home_isolation, until: "2099-01-01", reason: returned from Harbin,
     caretaker: T001}
"""


@pytest.fixture(autouse=True)
def _patient_expect() -> object:
    from playwright.async_api import expect

    expect.set_options(timeout=WAIT_MS)
    yield
    expect.set_options(timeout=5_000)  # Playwright's default, for the other modules


@pytest.fixture(scope="module")
async def me_site(database_factory, tmp_path_factory) -> AsyncIterator[tuple[str, str]]:
    """(base URL, dsn) of the API over a tiny campus."""
    dsn = await asyncio.to_thread(database_factory, "me-page")
    await apply_migrations(dsn)
    path = Path(tmp_path_factory.mktemp("me")) / "campus.yaml"
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


async def _invitation(dsn: str, person_id: str) -> str:
    conn = await connect(dsn)
    try:
        token, _ = await invite(conn, person_id, by="test", lifetime=timedelta(days=1))
        return token
    finally:
        await conn.close()


async def test_invited_person_signs_in_and_sees_own_status(me_site: tuple[str, str]) -> None:
    from playwright.async_api import async_playwright, expect

    url, dsn = me_site
    token = await _invitation(dsn, "S002")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(**PHONE)
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )
            await page.goto(f"{url}/me/#invite={token}")
            await expect(page.locator("#invite-title")).to_have_text("设置密码")
            assert "invite=" not in page.url  # the token left the address bar
            await page.fill("#invite-password", PASSWORD)
            await page.fill("#invite-confirm", PASSWORD + "x")
            await page.click("#invite-submit")
            await expect(page.locator("#invite-error")).to_have_text("两次输入的密码不一致")
            await page.fill("#invite-confirm", PASSWORD)
            await page.click("#invite-submit")
            await expect(page.locator("#notice")).to_have_text("密码已设置，请登录。")
            await expect(page.locator("#signin-id")).to_have_value("S002")
            await page.fill("#signin-password", "wrong password 1")
            await page.click("#signin-submit")
            await expect(page.locator("#signin-error")).to_have_text("学号/工号或密码错误")
            await page.fill("#signin-password", PASSWORD)
            await page.click("#signin-submit")

            await expect(page.locator("#status-title")).to_have_text("我的状态")
            await expect(page.locator("#me-name")).to_have_text("Wang Fang")
            await expect(page.locator("#me-kind")).to_have_text("学生")
            await expect(page.locator("#me-health")).to_have_text("居家隔离")
            await expect(page.locator("#me-caretaker-name")).to_have_text("Zhang Wei")
            phone = page.locator("#me-caretaker-phone")
            await expect(phone).to_have_attribute("href", "tel:13800000001")
            assert "Harbin" not in await page.content()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "me-status-zh.png"), full_page=True)

            await page.click("#lang")
            await expect(page.locator("#status-title")).to_have_text("My status")
            await expect(page.locator("#me-health")).to_have_text("home isolation")
            await expect(page.locator("#me-kind")).to_have_text("student")
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            await page.screenshot(path=str(ARTIFACTS / "me-status-en.png"), full_page=True)

            # A check-in the server refuses says what to change, in the server's words.
            await page.click("#tab-checkin")
            await expect(page.locator("#checkin-title")).to_have_text("Daily check-in")
            await page.fill("#checkin-temperature", "36.6")
            await page.fill("#checkin-dormitory", "")
            await page.click("#checkin-submit")
            await expect(page.locator("#checkin-error")).to_contain_text("dormitory")
            await page.fill("#checkin-dormitory", "Dorm 10")
            await page.click("#checkin-submit")
            await expect(page.locator("#checkin-result")).to_contain_text("Checked in today")
            await page.screenshot(path=str(ARTIFACTS / "me-checkin-en.png"), full_page=True)

            # Signed in, a reload lands on the status; signing out returns to the sign-in.
            await page.reload()
            await expect(page.locator("#me-name")).to_have_text("Wang Fang")
            await page.click("#signout")
            await expect(page.locator("#signin-title")).to_have_text("Sign in")
            assert problems == []
        finally:
            await browser.close()


async def test_used_invitation_link_says_so(me_site: tuple[str, str]) -> None:
    from playwright.async_api import async_playwright, expect

    url, dsn = me_site
    token = await _invitation(dsn, "T001")
    await _invitation(dsn, "T001")  # a newer link replaces the first
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(**PHONE)
            await page.goto(f"{url}/me/#invite={token}")
            await expect(page.locator("#notice")).to_contain_text("邀请链接无效")
            await expect(page.locator("#invite-form")).to_be_hidden()
        finally:
            await browser.close()


async def test_first_load_time_is_printed(me_site: tuple[str, str]) -> None:
    """Load of /me/ at phone size to the sign-in screen (new browser context: cold cache)
    and, signed in, to one's status (cache warm from signing in): figures, not asserts."""
    from playwright.async_api import async_playwright, expect

    url, dsn = me_site
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for screen, selector, signed_in in (
                ("sign-in screen", "#signin-title", False),
                ("my status", "#me-name", True),
            ):
                figures = []
                for _ in range(5):
                    context = await browser.new_context(**PHONE)
                    page = await context.new_page()
                    if signed_in:
                        await _sign_in(page, url, await _invitation(dsn, "S002"))
                    started = time.perf_counter()
                    await page.goto(f"{url}/me/")
                    await expect(page.locator(selector)).to_be_visible()
                    figures.append((time.perf_counter() - started) * 1000)
                    await context.close()
                figures.sort()
                print(f"\n/me/ load to {screen}: median {figures[2]:.0f} ms, "
                      f"max {figures[-1]:.0f} ms (5 loads)")  # fmt: skip
        finally:
            await browser.close()


async def _sign_in(page, url: str, token: str) -> None:
    from playwright.async_api import expect

    await page.goto(f"{url}/me/#invite={token}")
    await page.fill("#invite-password", PASSWORD)
    await page.fill("#invite-confirm", PASSWORD)
    await page.click("#invite-submit")
    await page.fill("#signin-password", PASSWORD)
    await page.click("#signin-submit")
    await expect(page.locator("#me-name")).to_have_text("Wang Fang")


async def test_checkin_form_posts_the_agreed_body_and_shows_the_answer(
    me_site: tuple[str, str],
) -> None:
    """The page sends the agreed body to POST /api/me/checkin and shows the real answer:
    a fever puts the person on fever_watch."""
    from playwright.async_api import async_playwright, expect

    url, dsn = me_site
    token = await _invitation(dsn, "T001")
    sent: list[dict[str, object]] = []

    def watch(request) -> None:
        if request.method == "POST" and request.url.endswith("/api/me/checkin"):
            assert request.headers.get("x-csrf-token")
            sent.append(request.post_data_json)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(**PHONE)
            page.on("request", watch)
            await page.goto(f"{url}/me/#invite={token}")
            await page.fill("#invite-password", PASSWORD)
            await page.fill("#invite-confirm", PASSWORD)
            await page.click("#invite-submit")
            await page.fill("#signin-password", PASSWORD)
            await page.click("#signin-submit")
            await expect(page.locator("#me-name")).to_have_text("Zhang Wei")
            await page.click("#tab-checkin")
            await page.check('input[name="location"][value="off_campus"]')
            await expect(page.locator("#checkin-dormitory")).to_be_hidden()
            await page.fill("#checkin-city", "Harbin")
            await page.fill("#checkin-temperature", "38.2")
            await page.check("#symptom-fever")
            await page.check("#symptom-cough")
            await page.check("#checkin-contact")
            await page.click("#checkin-submit")
            result = page.locator("#checkin-result")
            await expect(result).to_contain_text("今日已打卡")
            await expect(result).to_contain_text("发热观察")
            assert sent == [
                {"location": "off_campus", "dormitory": None, "city": "Harbin",
                 "temperature_c": 38.2, "symptoms": ["fever", "cough"], "case_contact": True,
                 "travel_plans": None},
            ]  # fmt: skip
            await page.fill("#checkin-temperature", "")
            await page.click("#checkin-submit")
            await expect(page.locator("#checkin-error")).to_have_text("请填写 34–43 之间的体温")
            assert len(sent) == 1
        finally:
            await browser.close()
