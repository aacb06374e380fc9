"""The console shell: pages registered by modules appear as tabs only for roles that may open them."""

from __future__ import annotations

import os

import pytest

from .conftest import GUARD, PASSWORD
from .test_console_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)

# Two pages a module could register: one a guard may open, one only health officers.
REGISTER = """
() => {
  CG.registerPage({id: "probe-guard", permission: "read_muster", title: {zh: "点名", en: "Muster"},
    render(section) { section.append(CG.el("p", {id: "probe-body", class: "x"}, "<b>not html</b>")); },
    show(section) { window.probeShown = (window.probeShown || 0) + 1; }});
  CG.registerPage({id: "probe-health", permission: ["trace_contacts", "write_health"],
    title: {zh: "追踪", en: "Tracing"}, render(section) { section.append("secret page"); }});
}
"""


async def test_tabs_follow_permissions_and_the_hash(live_system):
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(live_system.url + "/")
            await page.fill("#login-name", GUARD)
            await page.fill("#login-password", PASSWORD)
            await page.click("#login-submit")
            await expect(page.locator("#console-view")).to_be_visible()
            permissions = await page.evaluate("CG.state.me.permissions")
            assert "read_muster" in permissions and "trace_contacts" not in permissions

            await page.evaluate(REGISTER)
            await expect(page.locator("#tab-probe-guard")).to_have_text("点名")
            await expect(page.locator("#tab-probe-health")).to_have_count(0)

            await page.click("#tab-probe-guard")
            await expect(page.locator("#page-probe-guard")).to_be_visible()
            await expect(page.locator("#console-view")).to_be_hidden()
            # Text stays text: CG.el never parses markup.
            await expect(page.locator("#probe-body")).to_have_text("<b>not html</b>")
            assert await page.evaluate("window.probeShown") == 1

            # A page the role may not open falls back to the alerts view.
            await page.evaluate("location.hash = 'probe-health'")
            await expect(page.locator("#console-view")).to_be_visible()
            await expect(page.locator("#page-probe-health")).to_have_count(0)

            await page.click("#lang")
            await expect(page.locator("#tab-probe-guard")).to_have_text("Muster")
            await page.click("#tab-alerts")
            await expect(page.locator("#tab-alerts")).to_have_class("active")
            assert errors == []
        finally:
            await browser.close()
