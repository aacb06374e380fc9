"""The health page in a real browser: a guard enters a re-measurement (no health details),
a health officer escalates it, sees the caretaker's case, lists an area and declares a trip."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.services.accounts import set_password
from gateway.store.db import connect
from gateway.store.health import set_health
from gateway.store.operators import add_operator

from .conftest import GUARD, PASSWORD, TZ
from .test_console_browser import ARGS, ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)
OFFICER = "officer-1"


async def _prepare(live_system) -> tuple[str, str]:
    people = [
        p
        for p in live_system.campus.facts.people
        if p.kind == "student" and p.active and not p.isolated and p.cards
    ]
    fever, traveller = people[-1].id, people[-2].id
    conn = await connect(live_system.dsn)
    try:
        await add_operator(conn, OFFICER, "health_officer")
        await set_password(conn, OFFICER, PASSWORD, by="test")
        since = datetime.now(UTC) - timedelta(minutes=3)
        record = HealthRecord(fever, HealthStatus.FEVER_WATCH, since, reason="38.1 at the door")
        await set_health(conn, record, changed_by="gateway")
    finally:
        await conn.close()
    return fever, traveller


async def _login(browser, url: str, name: str):
    page = await browser.new_page(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url + "/")
    await page.fill("#login-name", name)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    return page, errors


async def test_health_page_for_guard_and_officer(live_system):
    from playwright.async_api import async_playwright, expect

    fever, traveller = await _prepare(live_system)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            guard, guard_errors = await _login(browser, live_system.url, GUARD)
            await guard.click("#tab-health")
            await expect(guard.locator("#health-measure")).to_be_visible()
            await expect(guard.locator("#health-statuses")).to_have_count(0)
            await expect(guard.locator("#health-travel")).to_have_count(0)
            form = guard.locator(f'.hm-form[data-person="{fever}"]')
            await expect(form).to_be_visible()
            await form.locator(".hm-celsius").fill("38.2")
            await form.locator("button").click()
            await expect(guard.locator("#hm-msg")).to_contain_text("38.2")
            await expect(guard.locator("#hm-msg")).to_have_class("health-msg fever")
            assert "38.1 at the door" not in await guard.content()  # no reasons for guards
            assert guard_errors == []

            officer, officer_errors = await _login(browser, live_system.url, OFFICER)
            await officer.goto(live_system.url + "/#health")
            await officer.click("#lang")  # English, rebuilt in place
            row = officer.locator(f'#hr-list tr[data-person="{fever}"]')
            await expect(row).to_contain_text("38.2")
            officer.once("dialog", lambda dialog: dialog.accept("38.2 twice"))
            await row.locator(".hr-escalate").click()
            await expect(officer.locator("#hr-msg")).to_contain_text("suspected")
            await officer.click("#tab-alerts")
            await officer.click("#tab-health")  # show() reloads every part
            case = officer.locator(f'#hc-list tr[data-person="{fever}"]')
            await expect(case.locator(".hc-day")).to_have_text("1")
            # The caretaker and the person by name, ids on hover.
            for cell in (case.locator(".hc-caretaker"), case.locator(".hc-person")):
                cell_id = await cell.get_attribute("data-id")
                assert cell_id and await cell.get_attribute("title") == cell_id
                assert (await cell.text_content()) not in ("", cell_id)

            today = datetime.now(TZ).date()
            harbin = "哈尔滨市 (黑龙江省) 230100"
            # Back three days ago, declared before Harbin is an epidemic area: nothing yet.
            await officer.fill(".ht-person", traveller)
            await officer.fill(".ht-destination", "Harbin <b>city</b>")
            await officer.fill(".ht-departure", str(today - timedelta(days=5)))
            await officer.fill(".ht-return", str(today - timedelta(days=3)))
            await officer.click("#ht-form button")
            await expect(officer.locator("#ht-msg")).to_contain_text("Declared")
            await expect(officer.locator("#ht-msg")).not_to_contain_text("isolated")
            trip = officer.locator("#ht-list tr", has_text="Harbin <b>city</b>")
            await expect(trip.locator(".ht-matched")).to_have_text(harbin)
            # Listed today with the default date (14 days back): preview, then confirm.
            await officer.fill(".ha-name", "Harbin")
            await officer.click("#ha-form button")
            row = officer.locator(f'#ha-preview tr[data-person="{traveller}"]')
            await expect(row.locator(".ha-outcome")).to_have_text("will be isolated")
            await expect(row).to_contain_text(harbin)
            await expect(officer.locator("#ha-list")).not_to_contain_text("Harbin")  # not yet
            ARTIFACTS.mkdir(exist_ok=True)
            await officer.locator("#health-areas").screenshot(
                path=str(ARTIFACTS / "console-area-preview.png")
            )
            await officer.click("#ha-confirm")
            await expect(officer.locator("#ha-msg")).to_contain_text(f"isolated 1 ({traveller})")
            await expect(officer.locator("#ha-list .ha-matched")).to_have_text(harbin)
            await expect(officer.locator("#ha-preview")).to_be_empty()
            await officer.select_option("#hs-filter", "home_isolation")
            listed = officer.locator(f'#hs-list tr[data-person="{traveller}"]')
            await listed.locator(".hs-open").click()
            await expect(officer.locator("#hs-detail")).to_contain_text("travel declaration")
            ARTIFACTS.mkdir(exist_ok=True)
            await officer.screenshot(path=str(ARTIFACTS / "console-health.png"), full_page=True)
            assert officer_errors == []
        finally:
            await browser.close()


async def test_declarations_csv_upload_goes_through_the_console_api(live_system):
    """A multipart upload through CG.api (with the CSRF header): a refused file shows the
    server's message as an error, an accepted one the rows imported."""
    from playwright.async_api import async_playwright, expect

    officer_name = "officer-upload"
    conn = await connect(live_system.dsn)
    try:
        await add_operator(conn, officer_name, "health_officer")
        await set_password(conn, officer_name, PASSWORD, by="test")
    finally:
        await conn.close()
    person = next(
        p.id
        for p in reversed(live_system.campus.facts.people)
        if p.kind == "student" and p.active and not p.isolated
    )
    today = datetime.now(TZ).date()
    header = "person_id,destination,departure_date,return_date\n"
    trip = f"{today - timedelta(days=3)},{today - timedelta(days=2)}\n"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            officer, errors = await _login(browser, live_system.url, officer_name)
            await officer.click("#tab-health")
            upload = officer.locator("#ht-upload")
            bad = (header + f"nobody-at-all,Nowhere,{trip}").encode()
            await upload.locator(".ht-file").set_input_files(
                {"name": "bad.csv", "mimeType": "text/csv", "buffer": bad}
            )
            await upload.locator("button").click()
            await expect(officer.locator("#ht-msg")).to_contain_text("nothing was imported")
            await expect(officer.locator("#ht-msg")).to_have_class("health-msg error")
            good = (header + f"{person},Nowhere,{trip}").encode()
            await upload.locator(".ht-file").set_input_files(
                {"name": "good.csv", "mimeType": "text/csv", "buffer": good}
            )
            await upload.locator("button").click()
            await expect(officer.locator("#ht-msg")).to_have_class("health-msg")
            await expect(officer.locator("#ht-msg")).to_contain_text("1 ·")
            await expect(officer.locator("#ht-list")).to_contain_text(person)
            assert errors == []
        finally:
            await browser.close()


async def test_officer_sees_the_cases_handed_on_when_a_caretaker_is_held(live_system):
    """Putting a caretaker under a hold reassigns the people in their care; the page says
    who went to whom right after the change, and the person's history says why."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    from playwright.async_api import async_playwright, expect

    officer_name = "officer-reassign"
    free = [p for p in live_system.campus.facts.people if p.active and not p.isolated and p.cards]
    carer = next(p.id for p in free if p.kind == "staff")
    cared = next(p.id for p in reversed(free) if p.kind == "student" and p.id != carer)
    conn = await connect(live_system.dsn)
    try:
        await add_operator(conn, officer_name, "health_officer")
        await set_password(conn, officer_name, PASSWORD, by="test")
        names = dict(
            await conn.fetch("SELECT id, name FROM people WHERE id = ANY($1)", [carer, cared])
        )
        now = datetime.now(UTC)
        await set_health(
            conn, HealthRecord(carer, HealthStatus.RECOVERED, now, reason="well"), changed_by="t"
        )
        case = HealthRecord(
            cared, HealthStatus.HOME_ISOLATION, now, now + timedelta(days=7), "trip", carer, "t"
        )
        await set_health(conn, case, changed_by="t")
    finally:
        await conn.close()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            officer, errors = await _login(browser, live_system.url, officer_name)
            await officer.goto(live_system.url + "/#health")
            await officer.click("#lang")  # English
            await officer.select_option("#hs-filter", "recovered")
            form = officer.locator("#hs-detail .hs-form")
            # The filter reloads the list: a click on the row of the list it replaces can be
            # lost with it, so open the person again until the form shows.
            for _ in range(3):
                await officer.locator(f'#hs-list tr[data-person="{carer}"] .hs-open').click()
                try:
                    await form.locator(".hs-status").wait_for(timeout=5000)
                    break
                except PlaywrightTimeout:
                    continue
            await form.locator(".hs-status").select_option("close_contact")
            await form.locator(".hs-reason").fill("shared an office")
            await form.locator("button").click()
            notice = officer.locator(f'#hs-msg .hs-notice li[data-person="{cared}"]')
            # Names shown, ids on hover.
            await expect(notice).to_contain_text(f"{names[cared]}: {names[carer]} →")
            await expect(notice.locator(f'.who[title="{carer}"]')).to_have_text(names[carer])
            await expect(notice.locator(f'.who[title="{cared}"]')).to_have_text(names[cared])
            await expect(officer.locator("#hs-msg")).to_contain_text("another caretaker")
            await officer.select_option("#hs-filter", "home_isolation")
            row = officer.locator(f'#hs-list tr[data-person="{cared}"]')
            await expect(row.locator(".hs-person")).to_have_text(names[cared])
            await expect(row.locator(".hs-person")).to_have_attribute("title", cared)
            # The new caretaker, by name with the id on hover (not the held one).
            new_carer = row.locator(".hs-caretaker-name")
            await expect(new_carer).not_to_have_text(names[carer])
            assert (await new_carer.get_attribute("title")) not in (None, "", carer)
            await row.locator(".hs-open").click()
            await expect(officer.locator("#hs-detail")).to_contain_text(
                f"caretaker {carer} is close_contact"
            )
            ARTIFACTS.mkdir(exist_ok=True)
            await officer.screenshot(path=str(ARTIFACTS / "console-reassigned.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()
