"""A measure's verification page in headless Chromium: a consultant sees the site's
measures with the form and opens the verification; the company sees its own read-only, and
another company finds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.store import Store
from collector.web import auth
from collector.web.app import WebServer
from collector.web.context import WebContext
from devtools import seed
from tests.collector.measures import synthetic
from tests.collector.measures.test_web import VERIFIED, _row
from tests.collector.web.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration

GRANTS = {
    "consultant": ("consultant", ["bakery"]),
    "company": ("company", ["bakery"]),
    "other": ("company", ["site-b"]),
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    db = tmp_path / "collector.db"
    store = Store(db)
    seed.seed(store, seed.Plan(sites=["site-b"], days=1), synthetic.NOW_MS)
    site = synthetic.make_site()
    synthetic.store_history(store, site)
    store.put_temperatures("bakery", site.hours, site.temperature_c)
    store.put_measure(_row(VERIFIED, "bakery", ["grid", "ovens"]))
    tokens = {}
    for name, (role, sites) in GRANTS.items():
        tokens[name] = auth.new_token()
        store.add_token(name, role, sites, auth.digest(tokens[name]))
    store.close()
    # the pages see the day the synthetic history ends as today
    server = WebServer(WebContext(db=db, clock=lambda: synthetic.NOW_MS / 1000), "127.0.0.1", 0)
    server.start()
    try:
        yield server.address, tokens
    finally:
        server.stop()


def test_measure_verification_page_as_consultant_and_as_company(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    base, tokens = served
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:

            def login(who: str):  # type: ignore[no-untyped-def]
                page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
                page.goto(f"{base}/login")
                page.fill("#token", tokens[who])
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/")
                return page

            consultant = login("consultant")
            consultant.goto(f"{base}/sites/bakery")
            assert "Record a measure" in consultant.content()
            consultant.click(f"a[href='/sites/bakery/measures/{VERIFIED}']")
            consultant.wait_for_url(f"{base}/sites/bakery/measures/{VERIFIED}")
            assert consultant.locator("#measure-status").inner_text().strip()
            assert consultant.locator("#baseline-model").inner_text() == "caltrack_hourly"
            verified = consultant.locator("#verified-kwh-year").inner_text()
            assert verified.replace(",", "").strip().isdigit()
            assert consultant.locator("svg polygon").count() >= 1  # the 90 % band
            consultant.screenshot(path=str(tmp_path / "measure-consultant.png"), full_page=True)

            company = login("company")
            company.goto(f"{base}/sites/bakery/measures/{VERIFIED}")
            assert company.locator("#verified-kwh-year").inner_text() == verified
            company.goto(f"{base}/sites/bakery")
            assert "Record a measure" not in company.content()
            assert company.locator(f"a[href='/sites/bakery/measures/{VERIFIED}']").count() == 1

            other = login("other")
            answer = other.goto(f"{base}/sites/bakery/measures/{VERIFIED}")
            assert answer is not None
            assert answer.status == 404
            assert "Ventilation off at night" not in other.content()
        finally:
            browser.close()
