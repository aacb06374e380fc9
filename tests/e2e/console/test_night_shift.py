"""The console for a night shift (issue 16, point 7) in headless Chromium, at desktop
(1920x1080) and phone (390x844) size, screenshots in artifacts/: names with ids on hover,
dates beside times that are not today's, repeated alerts grouped and acted on at once,
the sound state after a reload, the dark theme, the phone layout, the printed muster list
(its count equal to the zone table's), Chinese level descriptions and reasons, /docs offline.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from firmware_sim.terminal import SimTerminal
from gateway.domain.alerts import Alert, AlertKind, Severity
from gateway.store.alerts import insert_alerts
from gateway.store.db import connect

from .conftest import GUARD, PASSWORD
from .test_console_browser import ARGS, ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)
DESKTOP = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
NOTE = "night round: checked at the gate"


async def login(browser, url: str, viewport: dict[str, int], **context_options):
    from playwright.async_api import expect

    context = await browser.new_context(viewport=viewport, **context_options)
    page = await context.new_page()
    await page.goto(url + "/")
    await page.fill("#login-name", GUARD)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#console-view")).to_be_visible()
    await expect(page.locator("#live")).to_have_class("dot on", timeout=10_000)
    return page


async def swipes(live_system, device: str, card: str, times: int, direction: str | None = None):
    async with SimTerminal(live_system.mqtt_url, device, prefix=live_system.prefix) as terminal:
        decisions = []
        for _ in range(times):
            eid = terminal.swipe(card, direction=direction) if direction else terminal.swipe(card)
            decisions.append(await terminal.decision(eid, timeout=10))
    return decisions


async def fetch(dsn: str, query: str, *args):
    conn = await connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def no_overflow(page) -> None:
    """Nothing wider than the screen: neither the page nor a table inside its section."""
    widths = await page.evaluate(
        """() => ({page: document.documentElement.scrollWidth, screen: window.innerWidth,
            clipped: [...document.querySelectorAll('table')].filter((t) => t.offsetParent !== null
              && t.getBoundingClientRect().right > window.innerWidth + 1).length})"""
    )
    assert widths["page"] <= widths["screen"], widths
    assert widths["clipped"] == 0, widths


async def test_names_groups_bulk_actions_and_dates(live_system):
    from playwright.async_api import async_playwright, expect

    facts = live_system.campus.facts
    stranger = next(p for p in facts.people if facts.lab_stranger_card in p.cards)
    yesterday = datetime.now(UTC) - timedelta(hours=26)
    old_id = uuid.uuid4().hex
    conn = await connect(live_system.dsn)
    try:
        # The generated campus names no doors; a real manifest does (`name:` of a door).
        await conn.executemany(
            "UPDATE doors SET name = $2 WHERE id = $1",
            [
                (facts.gate_door, "南门 入口"),
                (facts.office_door, "行政楼 东门"),
                (facts.lab_door, "实验楼 1 号门"),
            ],
        )
        await insert_alerts(
            conn,
            [
                Alert(
                    old_id,
                    AlertKind.DOOR_HELD_OPEN,
                    yesterday,
                    Severity.MEDIUM,
                    door=facts.office_door,
                    zone=facts.door_zones[facts.office_door],
                    device=facts.office_device,
                )
            ],
        )
    finally:
        await conn.close()
    names = {
        r["id"]: r["name"]
        for r in await fetch(
            live_system.dsn,
            "SELECT id, name FROM doors UNION ALL SELECT id, name FROM zones",
        )
    }

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await login(browser, live_system.url, DESKTOP)
            gate = await swipes(live_system, facts.gate_device, facts.outsider_card, 3)
            assert {d["reason"] for d in gate} == {"unknown_card"}
            lab = await swipes(live_system, facts.lab_device, facts.lab_stranger_card, 2)
            assert {d["reason"] for d in lab} == {"not_authorized"}

            # Three outsider alerts at the gate within minutes: one row, a count of 3.
            outsiders = page.locator('#alerts tbody tr[data-alert-id][data-count="3"]')
            await expect(outsiders).to_have_count(1, timeout=10_000)
            await expect(outsiders.locator("td.kind .count")).to_have_text("×3")
            await expect(outsiders.locator("td.kind")).to_contain_text("外来人员")
            door = outsiders.locator("td.door")
            await expect(door).to_have_text(names[facts.gate_door])
            await expect(door).to_have_attribute("title", facts.gate_door)
            zone = outsiders.locator("td.zone")
            await expect(zone).to_have_text(names[facts.door_zones[facts.gate_door]])
            await expect(zone).to_have_attribute("title", facts.door_zones[facts.gate_door])
            # Today's alert: the time alone, no date.
            year = str(datetime.now().year)
            assert year not in await outsiders.locator("td.time").inner_text()

            # A person's alerts show the person's name, the id on hover.
            unauthorized = page.locator('#alerts tbody tr[data-alert-id][data-count="2"]')
            await expect(unauthorized).to_have_count(1, timeout=10_000)
            person = unauthorized.locator("td.person")
            stranger_name = (
                await fetch(live_system.dsn, "SELECT name FROM people WHERE id = $1", stranger.id)
            )[0]["name"]
            await expect(person).to_have_text(stranger_name)
            await expect(person).to_have_attribute("title", stranger.id)

            # Yesterday's alert: the date with the time.
            old = page.locator(f'#alerts tbody tr[data-alert-id="{old_id}"]')
            await expect(old).to_be_visible()
            assert year in await old.locator("td.time").inner_text()
            await expect(old.locator("td.door")).to_have_text(names[facts.office_door])

            # The group opens to its members.
            await outsiders.locator("button.expand").click()
            await expect(page.locator("#alerts tbody tr.member")).to_have_count(3)
            await page.screenshot(path=str(ARTIFACTS / "night-grouped-desktop.png"), full_page=True)
            await outsiders.locator("button.expand").click()
            await expect(page.locator("#alerts tbody tr.member")).to_have_count(0)

            # Both groups chosen, acknowledged at once with one note.
            await outsiders.locator("input.pick").check()
            await unauthorized.locator("input.pick").check()
            await expect(page.locator("#bulk")).to_be_visible()
            await expect(page.locator("#bulk-count")).to_have_text("已选 5 条")
            await page.click("#bulk-acknowledge")
            await page.fill("#note-text", NOTE)
            await page.click("#note-ok")
            acknowledged = page.locator('#alerts tbody tr[data-status="acknowledged"]')
            await expect(acknowledged).to_have_count(2, timeout=10_000)  # still two groups
            await expect(page.locator("#bulk")).to_be_hidden()
            rows = await fetch(
                live_system.dsn,
                "SELECT a.kind, h.operator, h.note FROM alert_history h JOIN alerts a"
                " ON a.id = h.alert_id WHERE h.status = 'acknowledged'",
            )
            assert sorted(r["kind"] for r in rows) == ["outsider"] * 3 + ["unauthorized"] * 2
            assert {(r["operator"], r["note"]) for r in rows} == {(GUARD, NOTE)}

            # A group's own button resolves all its members.
            group = page.locator('#alerts tbody tr[data-alert-id][data-count="3"]')
            await group.locator("button.do-resolve").click()
            await page.fill("#note-text", "all three were the same visitor")
            await page.click("#note-ok")
            # Resolved: hidden by the filter; the unauthorized group is left.
            await expect(acknowledged).to_have_count(1, timeout=10_000)
            await expect(acknowledged).to_have_attribute("data-count", "2")
            resolved = await fetch(
                live_system.dsn,
                "SELECT count(*) AS n FROM alert_history h JOIN alerts a ON a.id = h.alert_id"
                " WHERE h.status = 'resolved' AND a.kind = 'outsider'"
                " AND h.note = 'all three were the same visitor'",
            )
            assert resolved[0]["n"] == 3

            # A new outsider alert starts a new group live; the reason reads in Chinese.
            await swipes(live_system, facts.gate_device, facts.outsider_card, 1)
            fresh = page.locator('#alerts tbody tr[data-alert-id][data-status="open"]').filter(
                has=page.locator("td.kind", has_text="外来人员")
            )
            await expect(fresh).to_have_count(1, timeout=10_000)
            fresh = page.locator(
                f'#alerts tbody tr[data-alert-id="{await fresh.get_attribute("data-alert-id")}"]'
            )
            await expect(page.locator("#counts")).to_contain_text("未知卡", timeout=15_000)
            assert "unknown_card" not in await page.locator("#counts").inner_text()

            await page.click("#lang")
            await expect(fresh.locator("td.kind")).to_contain_text("outsider")
            await expect(page.locator("#counts")).to_contain_text("unknown card")
            await page.screenshot(path=str(ARTIFACTS / "night-alerts-desktop.png"), full_page=True)
            await page.context.close()
        finally:
            await browser.close()


async def test_sound_state_survives_a_reload_and_one_click_turns_it_on(live_system):
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await login(browser, live_system.url, DESKTOP)
            sound = page.locator("#sound")
            await expect(sound).to_have_class("sound-on", timeout=5_000)  # the login click
            await page.reload()
            await expect(page.locator("#console-view")).to_be_visible()
            # After a reload the browser plays nothing until a click: the header says so.
            await expect(sound).to_have_class("sound-off")
            await expect(sound).to_contain_text("点击开启")
            await page.screenshot(path=str(ARTIFACTS / "night-sound-off.png"))
            await sound.click()
            await expect(sound).to_have_class("sound-on", timeout=5_000)
            await expect(sound).to_have_attribute("aria-pressed", "true")
            assert await page.evaluate("window.CG.state.audio.state") == "running"
            # Muted on purpose: stays muted over a reload, and other clicks leave it so.
            await sound.click()
            await expect(sound).to_have_class("sound-off")
            assert await page.evaluate("localStorage.getItem('cg-sound')") == "off"
            await page.reload()
            await expect(page.locator("#console-view")).to_be_visible()
            await page.click("#alerts-panel h2")
            await expect(sound).to_have_class("sound-off")
            await sound.click()
            await expect(sound).to_have_class("sound-on", timeout=5_000)
            assert await page.evaluate("localStorage.getItem('cg-sound')") == "on"
            await page.context.close()
        finally:
            await browser.close()


async def test_dark_theme_by_system_setting_or_switch(live_system):
    from playwright.async_api import async_playwright, expect

    background = "() => getComputedStyle(document.body).backgroundColor"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await login(browser, live_system.url, DESKTOP, color_scheme="dark")
            assert await page.evaluate(background) == "rgb(15, 23, 42)"  # the system says dark
            await page.select_option("#theme", "light")
            assert await page.evaluate(background) == "rgb(243, 244, 246)"
            await page.reload()
            await expect(page.locator("#theme")).to_have_value("light")  # kept
            assert await page.evaluate(background) == "rgb(243, 244, 246)"
            await page.context.close()

            page = await login(browser, live_system.url, DESKTOP, color_scheme="light")
            assert await page.evaluate(background) == "rgb(243, 244, 246)"
            await page.select_option("#theme", "dark")
            await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
            assert await page.evaluate(background) == "rgb(15, 23, 42)"
            await page.screenshot(path=str(ARTIFACTS / "night-dark-desktop.png"), full_page=True)
            await page.select_option("#theme", "auto")
            assert await page.evaluate(background) == "rgb(243, 244, 246)"
            await page.context.close()
        finally:
            await browser.close()


async def test_phone_layout_and_printed_muster_matches_the_zone_table(live_system):
    from playwright.async_api import async_playwright, expect

    facts = live_system.campus.facts
    gate_zone = facts.door_zones[facts.gate_door]
    visitor = next(p for p in facts.people if facts.visitor_card in p.cards)
    decision = (await swipes(live_system, facts.gate_device, facts.visitor_card, 1, "in"))[0]
    assert (decision["decision"], decision["reason"]) == ("admit", "ok")
    await swipes(live_system, facts.lab_device, facts.lab_stranger_card, 1)
    # The visitor leaves the roster while still counted inside: the zone table counts
    # them, and the muster list must list them too (it once said one fewer).
    await fetch(live_system.dsn, "DELETE FROM people WHERE id = $1", visitor.id)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await login(browser, live_system.url, PHONE, is_mobile=True, has_touch=True)
            first = page.locator("#alerts tbody tr[data-alert-id]").first
            await expect(first).to_be_visible(timeout=10_000)
            await no_overflow(page)
            for part in ("#sound", "#theme", "#lang", "#filter-zone", "#alerts-panel h2"):
                await expect(page.locator(part)).to_be_in_viewport()
            box = await first.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            action = first.locator("td.actions button").first
            await expect(action).to_be_visible()
            action_box = await action.bounding_box()
            assert action_box["x"] + action_box["width"] <= PHONE["width"]
            await expect(first.locator("td.person, td.door").first).to_be_visible()
            await page.screenshot(path=str(ARTIFACTS / "night-alerts-phone.png"), full_page=True)

            await page.click("#tab-zones")
            zone_row = page.locator(f'#page-zones tr[data-zone="{gate_zone}"]')
            await expect(zone_row.locator("td.inside")).not_to_have_text("0", timeout=10_000)
            await no_overflow(page)
            inside = int(await zone_row.locator("td.inside").inner_text())
            await zone_row.locator("button.do-muster").click()
            heading = page.locator("#page-zones .muster h3")
            await expect(heading).to_contain_text(f"({inside})", timeout=10_000)
            rows = page.locator("#page-zones .muster table.muster-list tbody tr")
            await expect(rows).to_have_count(inside)
            gone = page.locator(f'#page-zones .muster tr[data-person="{visitor.id}"]')
            await expect(gone.locator("td.person-name")).to_have_text("（已不在名册）")
            await no_overflow(page)
            await page.screenshot(path=str(ARTIFACTS / "night-muster-phone.png"), full_page=True)
            await expect(heading).to_be_in_viewport()  # opened below the zones: scrolled to
            await page.screenshot(path=str(ARTIFACTS / "night-muster-phone-view.png"))

            # Printed: only the list, its heading with zone, time and the same count.
            await page.set_viewport_size(DESKTOP)
            await page.emulate_media(media="print")
            await expect(page.locator("header")).to_be_hidden()
            await expect(page.locator("#tabs")).to_be_hidden()
            await expect(page.locator("#page-zones table.occupancy")).to_be_hidden()
            await expect(page.locator("#page-zones .muster .no-print")).to_be_hidden()
            await expect(heading).to_be_visible()
            zone_name = (
                await fetch(live_system.dsn, "SELECT name FROM zones WHERE id = $1", gate_zone)
            )[0]["name"]
            await expect(heading).to_have_text(f"在场名单: {zone_name} ({inside})")
            await expect(page.locator("#page-zones .muster-meta")).to_contain_text("截至")
            await expect(page.locator("#page-zones .muster-meta")).to_contain_text(f"{inside} 人")
            await expect(rows).to_have_count(inside)
            await expect(page.locator("#page-zones .muster-total")).to_contain_text(f"{inside} 人")
            await page.screenshot(path=str(ARTIFACTS / "night-muster-print.png"), full_page=True)
            pdf = await page.pdf(path=str(ARTIFACTS / "night-muster.pdf"), format="A4")
            assert pdf.startswith(b"%PDF")
            await page.context.close()
        finally:
            await browser.close()


async def test_level_descriptions_in_the_console_language(live_system):
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await login(browser, live_system.url, DESKTOP)
            await page.click("#tab-levels")
            lockdown = page.locator('#page-levels tr[data-level="lockdown"] td.description')
            await expect(lockdown).to_have_text(
                "禁止访客；所有门禁测温；区域容量减半；实验室仅对授权中指名的人员开放。"
            )
            normal = page.locator('#page-levels tr[data-level="normal"] td.description')
            await expect(normal).to_have_text("日常规定。")
            await page.screenshot(path=str(ARTIFACTS / "night-levels-zh.png"), full_page=True)
            await page.click("#lang")
            await expect(lockdown).to_contain_text("Visitors barred")
            await page.context.close()
        finally:
            await browser.close()


async def test_docs_load_nothing_from_another_host(live_system):
    from playwright.async_api import async_playwright, expect

    own = urlsplit(live_system.url).netloc
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport=DESKTOP)
            hosts: set[str] = set()
            page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
            response = await page.goto(live_system.url + "/docs")
            assert response.status == 200
            html = await response.text()
            assert "http://" not in html and "https://" not in html
            await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
                "CampusGate operator API", timeout=20_000
            )
            await expect(page.locator(".opblock-tag-section").first).to_be_visible()
            assert hosts == {own}, hosts
            await page.screenshot(path=str(ARTIFACTS / "night-docs.png"))
        finally:
            await browser.close()
