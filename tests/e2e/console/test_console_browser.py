"""The guard console in headless Chromium: log in, see an outsider alert arrive live, acknowledge it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firmware_sim.terminal import SimTerminal

from .conftest import GUARD, PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)


async def test_outsider_alert_arrives_live_and_is_acknowledged(live_system):
    from playwright.async_api import async_playwright, expect

    facts = live_system.campus.facts
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            await page.goto(live_system.url + "/")
            await page.fill("#login-name", GUARD)
            await page.fill("#login-password", PASSWORD)
            await page.click("#login-submit")
            await expect(page.locator("#console-view")).to_be_visible()
            await expect(page.locator("#login-view")).to_be_hidden()
            await expect(page.locator("#live")).to_have_class("dot on", timeout=10_000)

            async with SimTerminal(
                live_system.mqtt_url, facts.gate_device, prefix=live_system.prefix
            ) as gate:
                eid = gate.swipe(facts.outsider_card)
                decision = await gate.decision(eid, timeout=10)
            assert (decision["decision"], decision["reason"]) == ("deny", "unknown_card")

            outsider = page.locator("#alerts tbody tr.sev-high").filter(
                has=page.locator("td", has_text="外来人员")  # the kind, in Chinese by default
            )
            await expect(outsider.first).to_be_visible(timeout=5_000)
            alert_id = await outsider.first.get_attribute("data-alert-id")
            first = page.locator(f'#alerts tbody tr[data-alert-id="{alert_id}"]')
            await expect(first).to_have_attribute("data-status", "open")
            await first.locator("button.do-acknowledge").click()
            await page.fill("#note-text", "guard on the way")
            await page.click("#note-ok")
            await expect(first).to_have_attribute("data-status", "acknowledged", timeout=5_000)
            await expect(first.locator("td.status")).to_have_text("已确认")

            await page.click("#lang")  # English
            await expect(first.locator("td.status")).to_have_text("acknowledged")
            await expect(first.locator("td.kind")).to_have_text("outsider")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "console-acknowledged.png"), full_page=True)
            await page.set_viewport_size({"width": 820, "height": 1180})  # a tablet
            await page.screenshot(path=str(ARTIFACTS / "console-tablet.png"), full_page=True)
        finally:
            await browser.close()
