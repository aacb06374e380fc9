"""The console under its Content-Security-Policy (no inline script): every tab opens and
the live stream connects in headless Chromium without a single CSP violation."""

from __future__ import annotations

import os

import pytest

from gateway.services.accounts import set_password
from gateway.store.db import connect
from gateway.store.operators import add_operator

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
ADMIN, PASSWORD = "admin-csp", "policies all the way"
TABS = ("zones", "levels", "health", "tracing", "reports", "person")

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)


async def test_every_tab_runs_under_the_csp(live_system):
    from playwright.async_api import async_playwright, expect

    conn = await connect(live_system.dsn)
    try:
        await add_operator(conn, ADMIN, "admin")
        await set_password(conn, ADMIN, PASSWORD, by="test")
    finally:
        await conn.close()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1000})
            violations: list[str] = []
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            stream_opened: list[str] = []
            page.on("websocket", lambda ws: stream_opened.append(ws.url))
            response = await page.goto(live_system.url + "/")
            assert "script-src 'self'" in response.headers["content-security-policy"]
            await page.fill("#login-name", ADMIN)
            await page.fill("#login-password", PASSWORD)
            await page.click("#login-submit")
            await expect(page.locator("#tab-reports")).to_be_visible()
            for tab in TABS:
                await page.click(f"#tab-{tab}")
                await page.wait_for_timeout(300)
            await page.wait_for_timeout(500)
            assert any("/api/alerts/stream" in url for url in stream_opened)
            assert violations == []
        finally:
            await browser.close()
