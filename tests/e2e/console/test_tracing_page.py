"""The contact tracing page in headless Chromium: find a person, trace, CSV link, mark a
contact close_contact after a confirmation (health officer); guards see no tab."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction, EventType
from gateway.services.accounts import set_password
from gateway.store.access_log import ensure_partitions, write_access_records
from gateway.store.db import connect
from gateway.store.operators import add_operator

from .conftest import GUARD, PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
OFFICER = "officer-tracing"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)


def _passage(person: str, zone: str, when: datetime, direction: str, n: int) -> AccessRecord:
    return AccessRecord(
        device_id="term-tracing-test",
        event_id=f"tracing-page-{n}",
        type=EventType.CARD,
        device_ts=when,
        received_at=when,
        zone_id=zone,
        person_id=person,
        direction=Direction(direction),
        verdict=Verdict.ADMIT,
        reason=Reason.OK,
    )


async def _prepare(live_system) -> tuple[str, str]:
    facts = live_system.campus.facts
    a, b = [p for p in facts.people if p.kind == "student" and p.active and not p.isolated][-2:]
    zone = facts.door_zones[facts.lab_door]
    now = datetime.now(UTC)
    rows = [
        _passage(a.id, zone, now - timedelta(hours=3), "in", 1),
        _passage(b.id, zone, now - timedelta(hours=2, minutes=50), "in", 2),
        _passage(a.id, zone, now - timedelta(hours=2), "out", 3),
        _passage(b.id, zone, now - timedelta(hours=1), "out", 4),
    ]
    conn = await connect(live_system.dsn)
    try:
        await add_operator(conn, OFFICER, "health_officer")
        await set_password(conn, OFFICER, PASSWORD, by="test")
        await ensure_partitions(conn, now)
        await write_access_records(conn, rows)
    finally:
        await conn.close()
    return a.id, b.id


async def _login(page, url: str, name: str) -> None:
    await page.goto(url + "/")
    await page.fill("#login-name", name)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")


async def test_trace_and_mark_from_the_console(live_system):
    from playwright.async_api import async_playwright, expect

    index, contact = await _prepare(live_system)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1000})
            await _login(page, live_system.url, OFFICER)
            await expect(page.locator("#tab-tracing")).to_be_visible(timeout=10_000)
            await page.click("#tab-tracing")
            section = page.locator("#page-tracing")
            await expect(section).to_be_visible()
            await page.fill("#tr-q", index)
            await page.click("#tr-search")
            await page.click(f'#tr-people button[data-person="{index}"]')
            await expect(page.locator("#tr-person")).to_contain_text(index)
            await page.fill("#tr-days", "1")
            await page.click("#tr-run")
            row = page.locator(f'#tr-table tbody tr[data-person="{contact}"]')
            await expect(row).to_be_visible(timeout=10_000)
            await expect(row).to_contain_text("50.0")  # minutes together
            # The zone by name, its id on hover.
            zone_cell = row.locator(".tr-zones .who").first
            zone_id = await zone_cell.get_attribute("data-id")
            assert zone_id and await zone_cell.get_attribute("title") == zone_id
            assert (await zone_cell.text_content()) not in ("", zone_id)
            href = await page.get_attribute("#tr-csv", "href")
            assert href and "format=csv" in href and "days=1" in href
            csv = await page.evaluate("(u) => fetch(u).then((r) => r.text())", href)
            assert csv.splitlines()[0].startswith("generation,person_id,name")
            assert contact in csv

            assert (await page.text_content("#tr-seeds")) == ""

            # Two generations: the contact (50 min) seeds the second; the page says so.
            await page.select_option("#tr-gen", "2")
            await page.fill("#tr-second-max", "3")
            await page.click("#tr-run")
            await expect(page.locator("#tr-seeds")).to_contain_text(f"({contact})")
            href = await page.get_attribute("#tr-csv", "href")
            assert href and "second_max_seeds=3" in href and "second_min_exposure_s=900" in href
            csv = await page.evaluate("(u) => fetch(u).then((r) => r.text())", href)
            assert csv.splitlines()[0].endswith(",via,second_seed")
            await expect(page.locator("#tr-table thead")).to_contain_text("经由")

            await row.locator("input.tr-pick").check()
            await page.fill("#tr-reason", "index person confirmed")
            await page.click("#tr-mark")
            await expect(page.locator("#tr-confirm")).to_be_visible()
            await expect(page.locator("#tr-confirm-list")).to_have_text(contact)
            await page.click("#tr-confirm-ok")
            # The marked contact by name, the id on hover.
            marked = page.locator(f'#tr-mark-result .tr-marked .who[data-id="{contact}"]')
            await expect(marked).to_have_count(1, timeout=10_000)
            assert await marked.get_attribute("title") == contact
            assert (await marked.text_content()) not in ("", contact)
            # Nothing skipped: no stray "null" after the marked line.
            assert "null" not in (await page.text_content("#tr-mark-result"))
            # Marking again with no reason is refused in the page; a server refusal shows
            # the server's words, not a bare status code.
            await page.fill("#tr-reason", "x")
            await page.evaluate(
                "() => { const b = document.querySelector('input.tr-pick');"
                " b.value = 'NO-SUCH-PERSON'; b.checked = true; }"
            )
            await page.click("#tr-mark")
            await page.click("#tr-confirm-ok")
            await expect(page.locator("#tr-mark-result")).to_contain_text("NO-SUCH-PERSON")
            await page.click("#lang")  # English labels follow the switch
            await expect(page.locator("#tr-run")).to_have_text("Trace")

            guard = await browser.new_page()
            await _login(guard, live_system.url, GUARD)
            await expect(guard.locator("#console-view")).to_be_visible()
            await expect(guard.locator("#tab-tracing")).to_have_count(0)
        finally:
            await browser.close()
    conn = await connect(live_system.dsn)
    try:
        status = await conn.fetchval(
            "SELECT status FROM health_status WHERE person_id = $1", contact
        )
    finally:
        await conn.close()
    assert status == "close_contact"
