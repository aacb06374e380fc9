"""Occupancy, muster and response levels in headless Chromium: a guard reads who is inside,
an administrator sets lockdown from the console, every role sees the header banner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firmware_sim.terminal import SimTerminal
from gateway.services.accounts import set_password
from gateway.store.db import connect
from gateway.store.operators import add_operator

from .conftest import GUARD, PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
ADMIN = "zones-admin"
LIAISON = "zones-liaison"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)


async def login(browser, url: str, name: str):
    from playwright.async_api import expect

    page = await browser.new_page(viewport={"width": 1600, "height": 1000})
    await page.goto(url + "/")
    await page.fill("#login-name", name)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#console-view")).to_be_visible()
    return page


async def test_muster_and_lockdown_from_the_console(live_system):
    from playwright.async_api import async_playwright, expect

    conn = await connect(live_system.dsn)
    try:
        for name, role in ((ADMIN, "admin"), (LIAISON, "liaison")):
            await add_operator(conn, name, role)
            await set_password(conn, name, PASSWORD, by="test")
    finally:
        await conn.close()
    facts = live_system.campus.facts
    office_zone = facts.door_zones[facts.office_door]
    staff = next(p for p in facts.people if facts.staff_card in p.cards)
    async with SimTerminal(
        live_system.mqtt_url, facts.office_device, prefix=live_system.prefix
    ) as office:
        decision = await office.decision(office.swipe(facts.staff_card, direction="in"), timeout=10)
    assert (decision["decision"], decision["reason"]) == ("admit", "ok")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            guard = await login(browser, live_system.url, GUARD)
            await expect(guard.locator("#level-banner")).to_be_hidden()  # all normal
            await guard.click("#tab-zones")
            zone_row = guard.locator(f'#page-zones tr[data-zone="{office_zone}"]')
            await expect(zone_row.locator("td.inside")).to_have_text("1", timeout=5_000)
            await expect(zone_row.locator("meter")).to_have_count(1)
            await zone_row.locator("button.do-muster").click()
            person_row = guard.locator(f'#page-zones .muster tr[data-person="{staff.id}"]')
            await expect(person_row).to_be_visible(timeout=5_000)
            await expect(guard.locator("#page-zones a.muster-csv")).to_have_attribute(
                "href", f"/api/zones/{office_zone}/muster?format=csv"
            )
            ARTIFACTS.mkdir(exist_ok=True)
            await guard.screenshot(path=str(ARTIFACTS / "console-zones.png"), full_page=True)
            await expect(guard.locator("#tab-levels")).to_be_visible()  # every role reads levels
            await guard.click("#tab-levels")
            await expect(guard.locator("#page-levels form.set-level")).to_have_count(0)

            admin = await login(browser, live_system.url, ADMIN)
            admin.on("dialog", lambda dialog: dialog.accept())  # a level change asks first
            await admin.click("#tab-levels")
            form = admin.locator("#page-levels form.set-level")
            await form.locator('select[name="level"]').select_option("lockdown")
            await form.locator('input[name="note"]').fill("browser test")
            await form.locator('button[type="submit"]').click()
            banner = admin.locator("#level-banner")
            await expect(banner).to_be_visible(timeout=5_000)
            await expect(banner).to_contain_text("封闭管理")
            await expect(banner).to_have_class("level-lockdown")
            history = admin.locator("#page-levels .history tbody tr").first
            await expect(history).to_contain_text("browser test")
            await admin.screenshot(path=str(ARTIFACTS / "console-levels.png"), full_page=True)

            # The doors follow: a visitor at the gate is barred.
            async with SimTerminal(
                live_system.mqtt_url, facts.gate_device, prefix=live_system.prefix
            ) as gate:
                decision = await gate.decision(gate.swipe(facts.visitor_card), timeout=10)
            assert (decision["decision"], decision["reason"]) == ("deny", "not_authorized")

            # Every role sees the banner (after its next refresh, here a reload).
            await guard.reload()
            await expect(guard.locator("#level-banner")).to_contain_text("封闭管理", timeout=5_000)
            liaison = await login(browser, live_system.url, LIAISON)
            await expect(liaison.locator("#level-banner")).to_be_visible(timeout=5_000)
            await liaison.click("#lang")
            await expect(liaison.locator("#level-banner")).to_contain_text("Lockdown")
            await expect(liaison.locator("#tab-zones")).to_have_count(0)  # no muster for liaisons

            await form.locator('select[name="level"]').select_option("normal")
            await form.locator('button[type="submit"]').click()
            await expect(banner).to_be_hidden(timeout=5_000)
        finally:
            await browser.close()
