"""The programme page in headless Chromium, served by a running collector: a consultant
sees every company and the total, a company only itself."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from collector.store import Store
from collector.web import auth
from devtools.broker import Mosquitto
from tests.collector.programmes.history import CPH, local_ms, sites_file, write_constant
from tests.collector.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _up
from tests.support.processes import Processes, collector_config, free_port, wait_until

pytestmark = pytest.mark.integration

MEMBERS = ("bakery-north", "office-harbour", "late-bakery")


def _history(db: Path, year: int) -> None:
    """The baseline year (the one before `year`) whole and `year` up to a little past now."""
    store = Store(db)
    until = int(time.time() * 1000) // 900_000 * 900_000 + 3_600_000
    base, this = local_ms(year - 1), local_ms(year)
    write_constant(store, "bakery-north", base, this, 1.0)
    write_constant(store, "bakery-north", this, until, 0.875)
    write_constant(store, "office-harbour", base, this, 2.0)
    write_constant(store, "office-harbour", this, until, 2.25)
    write_constant(store, "late-bakery", local_ms(year - 1, 7, 1), until, 1.0)
    store.close()


def _token(db: Path, role: str, *sites: str) -> str:
    token = auth.new_token()
    store = Store(db)
    store.add_token(f"{role} {' '.join(sites)}".strip(), role, list(sites), auth.digest(token))
    store.close()
    return token


def test_a_consultant_sees_every_company_and_a_company_only_itself(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package; the browser "
            "test never downloads a browser"
        )
    from playwright.sync_api import sync_playwright

    year = datetime.now(CPH).year
    db = tmp_path / "collector.db"
    _history(db, year)
    consultant = _token(db, "consultant", *MEMBERS)
    company = _token(db, "company", "office-harbour")
    sites = sites_file(tmp_path, year - 1)
    http_port = free_port()
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        collector_config(
            db, broker.port, http_port=http_port, extra=f'[evaluation]\nsites_file = "{sites}"\n'
        )
    )
    procs.spawn("collector", "collector.cli", "run", str(cfg))
    base = f"http://127.0.0.1:{http_port}"
    wait_until(lambda: _up(f"{base}/login"), 30, "the collector's web server")

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.goto(f"{base}/login")
            page.fill("#token", consultant)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.click("#programmes a[href='/programmes/aarhus-2030']")
            page.wait_for_url(f"{base}/programmes/aarhus-2030")
            assert page.locator("h1").inner_text() == "Aarhus energy partnership"
            rows = page.locator("#companies tbody tr")
            assert [rows.nth(i).get_attribute("data-site") for i in range(rows.count())] == list(
                MEMBERS
            )
            bakery = page.locator('#companies tr[data-site="bakery-north"]')
            assert bakery.locator("[data-field=energy-change]").inner_text() == "-12.5 %"
            office = page.locator('#companies tr[data-site="office-harbour"]')
            assert office.locator("[data-field=energy-change]").inner_text() == "+12.5 %"
            late = page.locator('#companies tr[data-site="late-bakery"]')
            assert late.get_attribute("data-status") == "no_full_baseline_year"
            assert late.locator("[data-field=energy-change]").inner_text() == "-"
            total = page.locator("#total")
            assert total.locator("[data-field=note]").inner_text() == "2 of 3 companies compared"
            # (1 x 0.875 + 2 x 2.25) / 3 - 1, over the same quarter hours of both years
            assert total.locator("[data-field=energy-change]").inner_text() == "+4.2 %"
            assert page.locator("svg.chart rect").count() >= 4
            assert page.locator("#programme-csv").count() == 1
            page.screenshot(path=str(artifacts / "programme-consultant.png"), full_page=True)

            company_page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            company_page.goto(f"{base}/login")
            company_page.fill("#token", company)
            company_page.click("button[type=submit]")
            company_page.wait_for_url(f"{base}/")
            company_page.click("#programmes a[href='/programmes/aarhus-2030']")
            company_page.wait_for_url(f"{base}/programmes/aarhus-2030")
            rows = company_page.locator("#companies tbody tr")
            assert rows.count() == 1
            assert rows.first.get_attribute("data-site") == "office-harbour"
            assert rows.first.locator("[data-field=energy-change]").inner_text() == "+12.5 %"
            shown = company_page.content()
            bakery_kwh = page.locator(
                '#companies tr[data-site="bakery-north"] [data-field=year-kwh]'
            ).inner_text()
            for other in ("bakery-north", "late-bakery", bakery_kwh, "companies compared"):
                assert other not in shown
            assert company_page.locator("#total").count() == 0
            assert company_page.locator("#sectors").count() == 0
            assert company_page.locator("#programme-csv").count() == 0
            company_page.screenshot(path=str(artifacts / "programme-company.png"), full_page=True)
            csv = company_page.request.get(f"{base}/programmes/aarhus-2030.csv")
            assert csv.status == 403
        finally:
            browser.close()
