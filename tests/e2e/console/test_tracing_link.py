"""The tracing page's parameters (issue 16, point 2): the officer sets the minimum overlap
and a limit, and a link such as the demo prints fills the form and traces by itself."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction, EventType
from gateway.services.accounts import set_password
from gateway.store.access_log import ensure_partitions, write_access_records
from gateway.store.db import connect
from gateway.store.operators import add_operator

from .conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
OFFICER = "officer-link"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)


def _passage(person: str, zone: str, when: datetime, direction: str, n: int) -> AccessRecord:
    return AccessRecord(
        device_id="term-tracing-link",
        event_id=f"tracing-link-{n}",
        type=EventType.CARD,
        device_ts=when,
        received_at=when,
        zone_id=zone,
        person_id=person,
        direction=Direction(direction),
        verdict=Verdict.ADMIT,
        reason=Reason.OK,
    )


async def _prepare(live_system) -> tuple[str, str, datetime]:
    """A and B share the lab for 40 s: a contact at a 30 s minimum overlap, not at 60 s."""
    facts = live_system.campus.facts
    people = [p for p in facts.people if p.kind == "student" and p.active and not p.isolated]
    a, b = people[-5], people[-4]
    zone = facts.door_zones[facts.lab_door]
    began = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    rows = [
        _passage(a.id, zone, began + timedelta(seconds=10), "in", 1),
        _passage(b.id, zone, began + timedelta(seconds=20), "in", 2),
        _passage(a.id, zone, began + timedelta(seconds=60), "out", 3),
        _passage(b.id, zone, began + timedelta(seconds=70), "out", 4),
    ]
    conn = await connect(live_system.dsn)
    try:
        await add_operator(conn, OFFICER, "health_officer")
        await set_password(conn, OFFICER, PASSWORD, by="test")
        await ensure_partitions(conn, began)
        await write_access_records(conn, rows)
    finally:
        await conn.close()
    return a.id, b.id, began


async def test_min_overlap_and_limit_from_the_form_and_from_a_link(live_system):
    from playwright.async_api import async_playwright, expect

    index, contact, began = await _prepare(live_system)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1000})
            query = urlencode(
                {
                    "trace_person": index,
                    "trace_from": began.isoformat(),
                    "trace_generations": "2",
                    "trace_min_overlap_s": "30",
                    "trace_second_min_exposure_s": "30",
                }
            )
            await page.goto(f"{live_system.url}/?{query}#tracing")
            await page.fill("#login-name", OFFICER)
            await page.fill("#login-password", PASSWORD)
            await page.click("#login-submit")
            # The link chose the person, filled the parameters and traced.
            await expect(page.locator("#tr-person")).to_contain_text(index, timeout=10_000)
            row = page.locator(f'#tr-table tbody tr[data-person="{contact}"]')
            await expect(row).to_be_visible(timeout=10_000)
            assert await page.input_value("#tr-min-overlap") == "0.5"
            assert await page.input_value("#tr-second-min") == "0.5"
            assert await page.input_value("#tr-gen") == "2"
            href = await page.get_attribute("#tr-csv", "href")
            assert href and "min_overlap_s=30" in href and "second_min_exposure_s=30" in href
            assert "from=" in href and "days=" not in href

            # The officer's own rule: a minute together or more; 40 s is no contact then.
            await page.fill("#tr-min-overlap", "1")
            await page.click("#tr-run")
            await expect(row).to_have_count(0, timeout=10_000)
            await expect(page.locator("#tr-status")).to_contain_text("0 ")
            href = await page.get_attribute("#tr-csv", "href")
            assert href and "min_overlap_s=60" in href

            # A limit goes to the API as it is.
            await page.fill("#tr-min-overlap", "0.5")
            await page.fill("#tr-limit", "1")
            await page.click("#tr-run")
            await expect(row).to_be_visible(timeout=10_000)
            href = await page.get_attribute("#tr-csv", "href")
            assert href and "limit=1" in href
        finally:
            await browser.close()
