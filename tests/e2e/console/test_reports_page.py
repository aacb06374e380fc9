"""The daily reports page in headless Chromium: generate a report of real door events,
see its numbers and charts in the page, the list of reports, downloads and deliveries."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path

import pytest

from firmware_sim.terminal import SimTerminal
from gateway.services.accounts import set_password
from gateway.store.db import connect
from gateway.store.operators import add_operator

from .conftest import TZ

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
OFFICER, PASSWORD = "officer-reports", "reports every morning"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)


async def test_generate_and_view_a_report(live_system):
    from playwright.async_api import async_playwright, expect

    facts = live_system.campus.facts
    conn = await connect(live_system.dsn)
    try:
        await add_operator(conn, OFFICER, "health_officer")
        await set_password(conn, OFFICER, PASSWORD, by="test")
        async with SimTerminal(
            live_system.mqtt_url, facts.gate_device, prefix=live_system.prefix
        ) as gate:
            for card in (facts.resident_cards[0], facts.outsider_card):
                await gate.decision(gate.swipe(card), timeout=10)
        async with SimTerminal(
            live_system.mqtt_url, facts.temperature_device, prefix=live_system.prefix
        ) as dorm:  # a registered visitor at a dormitory's door
            refused = await dorm.decision(dorm.swipe(facts.visitor_card), timeout=10)
            assert refused["reason"] == "not_authorized"
        for _ in range(100):
            n = await conn.fetchval("SELECT count(*) FROM access_events WHERE type = 'card'")
            if n >= 3:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    day = datetime.now(TZ).date().isoformat()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1200})
            await page.goto(live_system.url + "/#reports")
            await page.fill("#login-name", OFFICER)
            await page.fill("#login-password", PASSWORD)
            await page.click("#login-submit")
            await expect(page.locator("#tab-reports")).to_have_text("每日报告")
            await expect(page.locator("#page-reports")).to_be_visible()
            await expect(page.locator("#reports-unit option[value='*']")).to_have_count(1)
            await page.fill("#reports-day", day)
            await page.select_option("#reports-unit", "*")
            await page.select_option("#reports-audience", "student")
            await page.click("#reports-generate")
            view = page.locator(".reports-view")
            await expect(view).to_be_visible(timeout=15_000)
            report = page.frame_locator("#reports-frame")
            await expect(report.locator('[data-metric="present"] b')).to_have_text("1")
            await expect(report.locator('[data-metric="outsiders_blocked"] b')).to_have_text("1")
            await expect(report.locator('[data-metric="passages"] b')).to_have_text("1")
            await expect(report.locator('[data-metric="never_screened"] b')).to_have_text("1")
            await expect(report.locator('[data-metric="visitors_refused"] b')).to_have_text("1")
            await expect(report.locator("#list-never_screened tbody tr")).to_have_count(1)
            await expect(report.locator("#list-visitors_refused tbody tr")).to_have_count(1)
            needs = page.locator("#reports-needs")
            await expect(needs).to_contain_text("在校但未测体温 1 人")
            await expect(needs).to_contain_text("放行通行 1 次（进 1 / 出 0）")
            await expect(report.locator("svg")).to_have_count(4)
            await expect(report.locator("#list-fevers")).to_have_count(1)  # an officer sees it
            report_id = await view.get_attribute("data-report-id")
            row = page.locator(f'#reports-list tbody tr[data-report-id="{report_id}"]')
            await expect(row).to_be_visible()
            href = await page.locator("#reports-csv").get_attribute("href")
            assert href == f"/api/daily-reports/{report_id}/csv"
            async with page.expect_download() as download:
                await page.click("#reports-xlsx")
            assert (await download.value).suggested_filename.endswith(f"-{day}.xlsx")
            await expect(page.locator("#reports-no-deliveries")).to_have_text("尚未发送")
            await page.click("#lang")
            await expect(page.locator("#tab-reports")).to_have_text("Daily reports")
            await expect(page.locator("#reports-no-deliveries")).to_have_text("Not sent yet")
            await expect(row.locator("td").nth(1)).to_have_text("Whole campus")
            await expect(needs).to_contain_text("Present, never screened: 1")
            await expect(needs).to_contain_text("visitors refused at dormitories and labs: 1")
            await expect(report.locator("h1")).to_contain_text("Student daily report")
            ARTIFACTS.mkdir(exist_ok=True)
            frame = page.locator("#reports-frame")
            await frame.screenshot(path=str(ARTIFACTS / "console-report-frame.png"))
            await page.screenshot(path=str(ARTIFACTS / "console-reports.png"), full_page=True)
        finally:
            await browser.close()
