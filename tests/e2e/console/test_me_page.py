"""The mobile page /me/ in headless Chromium at phone size: an invitation link sets a
password, the person signs in with id + password and sees their own status, in Chinese
and in English; the daily check-in; a student's trips, a caretaker's follow-up and a staff
host's visitor passes, against the real API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from api.app import create_app
from gateway.pipeline.signing import load_or_create_key
from gateway.services.importer import import_file
from gateway.services.person_accounts import invite
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

from .test_console_browser import ARGS, ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)

PASSWORD = "phone page 2026"
# Argon2 hashes and a shared 2-core CI machine: waits a little longer than the default 5 s.
WAIT_MS = 15_000
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 3}  # fmt: skip
CAMPUS_TZ = ZoneInfo("Asia/Shanghai")  # the settings' default timezone; the phone's too
CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
zones:
  - {id: office, name: CS Office, kind: office}
people:
  - {id: S002, kind: student, name: Wang Fang, org_unit: cs, phone: "13900000002"}
  - {id: S003, kind: student, name: Li Na, org_unit: cs}
  - {id: T001, kind: staff, name: Zhang Wei, org_unit: cs, phone: "13800000001"}
  - {id: T002, kind: staff, name: Zhao Min, org_unit: cs}
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
    folder = Path(tmp_path_factory.mktemp("me"))
    path = folder / "campus.yaml"
    path.write_text(CAMPUS)
    key_file = folder / "keys" / "command-signing.pem"
    load_or_create_key(key_file)  # the gateway's key, which signs visitors' QR tokens
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
        uvicorn.Config(
            create_app(Settings(database_url=dsn, signing_key_file=key_file), dsn),
            log_level="warning",
        )
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
    token = await _invitation(dsn, "T002")  # a fever holds them: not the caretaker
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
            await expect(page.locator("#me-name")).to_have_text("Zhao Min")
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


async def _admin(url: str, dsn: str) -> httpx.AsyncClient:
    conn = await connect(dsn)
    try:
        token = await add_operator(conn, f"admin-{os.urandom(3).hex()}", "admin")
    finally:
        await conn.close()
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"})


async def _signed_in_page(browser, url: str, dsn: str, person_id: str, name: str):
    """A phone in campus time, signed in as `person_id` through a fresh invitation."""
    from playwright.async_api import expect

    context = await browser.new_context(**PHONE, timezone_id="Asia/Shanghai")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await page.goto(f"{url}/me/#invite={await _invitation(dsn, person_id)}")
    await page.fill("#invite-password", PASSWORD)
    await page.fill("#invite-confirm", PASSWORD)
    await page.click("#invite-submit")
    await page.fill("#signin-password", PASSWORD)
    await page.click("#signin-submit")
    await expect(page.locator("#me-name")).to_have_text(name)
    return page, problems


def _campus_today() -> date:
    return datetime.now(CAMPUS_TZ).date()


async def test_student_plans_a_trip_and_a_return_from_a_listed_area_isolates(
    me_site: tuple[str, str],
) -> None:
    from playwright.async_api import async_playwright, expect

    url, dsn = me_site
    async with await _admin(url, dsn) as admin:
        listed = await admin.post("/api/travel/areas", json={"name": "武汉市"})
        assert listed.status_code == 201, listed.text
    today = _campus_today()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page, problems = await _signed_in_page(browser, url, dsn, "S003", "Li Na")
            await expect(page.locator("#tab-passes")).to_be_hidden()  # students host nobody
            await expect(page.locator("#tab-care")).to_be_hidden()
            await page.click("#tab-trips")
            await expect(page.locator("#trips-title")).to_have_text("我的出行")
            await expect(page.locator("label[for=trip-destination]")).to_have_text("目的地")
            await expect(page.locator("#trip-list")).to_contain_text("暂无出行记录")
            # A return before the departure: the server's own words.
            await page.fill("#trip-destination", "湖北武汉")
            await page.fill("#trip-departure", (today + timedelta(days=2)).isoformat())
            await page.fill("#trip-return", today.isoformat())
            await page.click("#trip-submit")
            await expect(page.locator("#trip-error")).not_to_be_empty()
            error = await page.locator("#trip-error").text_content()
            assert error and error != "操作失败"
            await page.fill("#trip-departure", today.isoformat())
            await page.fill("#trip-return", (today + timedelta(days=3)).isoformat())
            await page.fill("#trip-note", "family visit")
            await page.click("#trip-submit")
            result = page.locator("#trip-result")
            await expect(result).to_contain_text("出行已报备")
            await expect(result).to_contain_text("武汉市")
            await expect(result).to_contain_text("须居家隔离")
            trip = page.locator("#trip-list li[data-trip]")
            await expect(trip).to_have_count(1)
            await expect(trip).to_contain_text("湖北武汉")
            await expect(trip).to_contain_text("family visit")
            await expect(trip.locator(".badge")).to_have_text("无需审批")
            await expect(page.locator("#me-health")).to_have_text("正常")
            # A plan for later, called off: it stays listed as such, without actions.
            await page.fill("#trip-destination", "上海")
            await page.fill("#trip-departure", (today + timedelta(days=5)).isoformat())
            await page.fill("#trip-return", (today + timedelta(days=6)).isoformat())
            await page.click("#trip-submit")
            later = page.locator("#trip-list li[data-trip]", has_text="上海")
            await expect(later.locator(".declare-return")).to_have_count(0)  # not left yet
            await later.locator(".cancel-trip").click()
            await expect(result).to_contain_text("出行已取消")
            await expect(later).to_contain_text("已取消")
            await expect(later.locator(".cancel-trip")).to_have_count(0)
            trip = page.locator("#trip-list li[data-trip]", has_text="湖北武汉")
            await page.click("#lang")
            await expect(page.locator("#trips-title")).to_have_text("My trips")
            await expect(trip.locator(".badge")).to_have_text("no approval needed")
            await expect(trip.locator(".declare-return")).to_have_text("Declare return")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "me-trips-en.png"), full_page=True)
            await trip.locator(".declare-return").click()
            await expect(result).to_contain_text("Return declared")
            await expect(result).to_contain_text("home isolation applies")
            await expect(trip).to_contain_text("returned")
            await expect(trip.locator(".declare-return")).to_have_count(0)
            await page.click("#tab-status")
            await expect(page.locator("#me-health")).to_have_text("home isolation")
            assert problems == []
        finally:
            await browser.close()


async def test_caretaker_records_a_call_and_the_flag_clears(me_site: tuple[str, str]) -> None:
    from playwright.async_api import async_playwright, expect

    url, dsn = me_site
    conn = await connect(dsn)
    try:  # S002 has been in isolation two days without a contact
        await conn.execute(
            "UPDATE health_status SET since = $2 WHERE person_id = $1",
            "S002",
            datetime.now(UTC) - timedelta(days=2),
        )
    finally:
        await conn.close()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page, problems = await _signed_in_page(browser, url, dsn, "T001", "Zhang Wei")
            await expect(page.locator("#tab-care")).to_be_visible()
            await page.click("#tab-care")
            await expect(page.locator("#care-title")).to_have_text("我照看的人")
            case = page.locator("#care-list li[data-person=S002]")
            await expect(case).to_contain_text("Wang Fang")
            await expect(case).to_contain_text("隔离第 3 天")
            await expect(case.locator(".last-contact")).to_have_text("尚无记录")
            await expect(case.locator(".flag")).to_be_visible()
            await expect(case.locator('a[href="tel:13900000002"]')).to_be_visible()
            await case.locator(".record-contact").click()
            await expect(page.locator("#care-person")).to_have_value("S002")
            await expect(page.locator("#care-channel")).to_be_focused()
            await expect(page.locator("label[for=care-feeling]")).to_have_text("对方状况")
            # A temperature nobody has: the server says what to change.
            await page.fill("#care-temperature", "45")
            await page.click("#care-submit")
            await expect(page.locator("#care-error")).not_to_be_empty()
            assert await page.locator("#care-error").text_content() != "操作失败"
            await page.select_option("#care-channel", "phone")
            await page.select_option("#care-feeling", "well")
            await page.fill("#care-temperature", "36.5")
            await page.fill("#care-note", "sleeping well")
            await page.click("#care-submit")
            await expect(page.locator("#notice")).to_have_text("联系已记录")
            await expect(case.locator(".flag")).to_have_count(0)
            await expect(case.locator(".last-contact")).not_to_have_text("尚无记录")
            await page.click("#lang")
            await expect(page.locator("#care-title")).to_have_text("People in my care")
            await expect(case).to_contain_text("day 3 of isolation")
            await page.screenshot(path=str(ARTIFACTS / "me-care-en.png"), full_page=True)
            assert problems == []
        finally:
            await browser.close()
    async with await _admin(url, dsn) as admin:
        answer = await admin.get("/api/caretakers/follow-up")  # the operators' view agrees
        assert answer.status_code == 200, answer.text
        s002 = [c for c in answer.json() if c["person_id"] == "S002"]
        assert s002 and s002[0]["follow_up"] is None


async def test_staff_host_requests_a_visitor_pass_and_sees_its_token(
    me_site: tuple[str, str],
) -> None:
    from playwright.async_api import async_playwright, expect

    url, dsn = me_site
    tomorrow = _campus_today() + timedelta(days=1)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page, problems = await _signed_in_page(browser, url, dsn, "T001", "Zhang Wei")
            library: list[str] = []
            page.on("request", lambda r: library.append(r.url) if "qrcode" in r.url else None)
            await page.click("#tab-passes")
            await expect(page.locator("#passes-title")).to_have_text("访客通行证")
            await expect(page.locator("label[for=pass-id-number]")).to_have_text("证件号码")
            await page.fill("#pass-name", "Zhao Lei")
            await page.fill("#pass-phone", "13812345678")
            await page.fill("#pass-id-number", "110101199003071234")
            await page.fill("#pass-reason", "project meeting")
            await page.fill("#pass-zones", "nowhere")
            await page.fill("#pass-starts", f"{tomorrow}T09:00")
            await page.fill("#pass-ends", f"{tomorrow}T17:00")
            await page.fill("#pass-places", "Shanghai")
            await page.click("#pass-submit")  # an unknown zone: the server names it
            await expect(page.locator("#pass-error")).to_contain_text("nowhere")
            await page.fill("#pass-zones", "office")
            await page.click("#pass-submit")
            await expect(page.locator("#notice")).to_have_text("申请已提交，等待审批")
            item = page.locator("#pass-list li[data-pass]")
            await expect(item).to_have_count(1)
            await expect(item.locator(".pass-status")).to_have_text("待审批")
            await expect(item.locator(".show-token")).to_have_count(0)
            pass_id = await item.get_attribute("data-pass")

            async with await _admin(url, dsn) as admin:
                approved = await admin.post(f"/api/visitor-passes/{pass_id}/approve", json={})
                assert approved.status_code == 200, approved.text

            await page.click("#lang")
            await page.reload()
            await page.click("#tab-passes")
            await expect(page.locator("#passes-title")).to_have_text("Visitor passes")
            await expect(item.locator(".pass-status")).to_have_text("approved")
            assert library == []  # the QR library waits until a code is shown
            await item.locator(".show-token").click()
            token = page.locator(f"#pass-{pass_id}-token")
            await expect(token).to_contain_text("CGQ1.")
            await expect(token).to_be_focused()
            # The QR picture, drawn by the vendored library loaded only now: the 138-byte
            # token at level M needs version 8, 49 modules a side.
            picture = page.locator(f"#pass-{pass_id}-qr svg[role=img]")
            await expect(picture).to_have_attribute("aria-label", "Visitor pass QR code")
            await expect(picture).to_have_attribute("data-modules", "49")
            assert len(await token.text_content() or "") == 138
            assert len(library) == 1
            await expect(item.locator(".copy-token")).to_have_text("Copy")
            await page.screenshot(path=str(ARTIFACTS / "me-passes-en.png"), full_page=True)
            assert problems == []
        finally:
            await browser.close()
