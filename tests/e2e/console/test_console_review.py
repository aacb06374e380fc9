"""What a walk through the console as guard and health officer turned up, kept fixed:
English alert kinds, no 403 noise, errors shown beside the form (not thrown), lists that
follow an action, a confirmed level change, and feedback after sending a report."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.services.accounts import set_password
from gateway.store.db import connect
from gateway.store.health import set_health
from gateway.store.operators import add_operator

from .conftest import PASSWORD, TZ
from .test_console_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)
OFFICER = "review-officer"


async def test_officer_walkthrough(live_system):
    from playwright.async_api import async_playwright, expect

    student = next(
        p
        for p in live_system.campus.facts.people
        if p.kind == "student" and p.active and not p.isolated and p.cards
    )
    conn = await connect(live_system.dsn)
    try:
        await add_operator(conn, OFFICER, "health_officer")
        await set_password(conn, OFFICER, PASSWORD, by="test")
        since = datetime.now(UTC) - timedelta(minutes=2)
        record = HealthRecord(
            student.id, HealthStatus.FEVER_WATCH, since, reason="38.0 at the door"
        )
        await set_health(conn, record, changed_by="gateway")
    finally:
        await conn.close()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            failed: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
            await page.goto(live_system.url + "/")
            await page.evaluate("localStorage.setItem('cg-lang', 'en')")
            await page.reload()
            await page.fill("#login-name", OFFICER)
            await page.fill("#login-password", PASSWORD)
            await page.click("#login-submit")
            await expect(page.locator("#tab-health")).to_have_text("Health")

            # English alert kinds, not raw keys; no devices panel (and no 403) for officers.
            option = page.locator('#filter-kind option[value="isolation_breach"]')
            await expect(option).to_have_text("isolation breach")
            await expect(page.locator("#devices-panel")).to_be_hidden()

            # Clearing needs a normal re-measurement: the button says so before the API does.
            await page.click("#tab-health")
            row = page.locator(f'#hr-list tr[data-person="{student.id}"]')
            await expect(row.locator(".hr-clear")).to_be_disabled()

            # An error is shown beside the form, styled as one, and is no uncaught page error.
            await page.locator(f'#hs-list tr[data-person="{student.id}"] .hs-open').click()
            form = page.locator(".hs-form")
            await form.locator(".hs-status").select_option("home_isolation")
            await form.locator(".hs-reason").fill("household contact")
            await form.locator(".hs-caretaker").fill("nobody-at-all")
            await form.locator("button").click()
            await expect(page.locator("#hs-msg")).to_contain_text("nobody-at-all")
            await expect(page.locator("#hs-msg")).to_have_class("health-msg error")

            # Escalating refreshes the other lists at once: the caretaker's case appears.
            page.once("dialog", lambda dialog: dialog.accept("fever twice"))
            await row.locator(".hr-escalate").click()
            await expect(page.locator("#hr-msg")).to_contain_text("suspected")
            await expect(page.locator(f'#hc-list tr[data-person="{student.id}"]')).to_have_count(1)
            await expect(row).to_have_count(0)

            # A level change asks first; cancelling changes nothing.
            await page.click("#tab-levels")
            level_form = page.locator("#page-levels form.set-level")
            await level_form.locator('select[name="level"]').select_option("lockdown")
            page.once("dialog", lambda dialog: dialog.dismiss())
            await level_form.locator('button[type="submit"]').click()
            await page.wait_for_timeout(500)
            await expect(page.locator("#level-banner")).to_be_hidden()
            page.once("dialog", lambda dialog: dialog.accept())
            await level_form.locator('button[type="submit"]').click()
            await expect(page.locator("#level-banner")).to_contain_text("Lockdown", timeout=5_000)
            await expect(level_form.locator(".status")).to_have_class("status notice")
            await level_form.locator('select[name="level"]').select_option("normal")
            page.once("dialog", lambda dialog: dialog.accept())
            await level_form.locator('button[type="submit"]').click()
            await expect(page.locator("#level-banner")).to_be_hidden(timeout=5_000)

            # Sending with no recipients configured says so instead of doing nothing.
            await page.click("#tab-reports")
            await page.fill("#reports-day", datetime.now(TZ).date().isoformat())
            await page.click("#reports-generate")
            await expect(page.locator(".reports-status")).to_contain_text("Generated report #")
            await expect(page.locator(".reports-view")).to_be_visible(timeout=15_000)
            await page.click("#reports-send")
            await expect(page.locator(".reports-status")).to_contain_text("No recipients")

            assert errors == []
            assert not [f for f in failed if "/api/devices" in f]
        finally:
            await browser.close()
