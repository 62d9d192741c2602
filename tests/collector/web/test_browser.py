"""Headless Chromium against a collector fed by simulator -> gateways -> Mosquitto."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from collector.store import Reader
from devtools.broker import Mosquitto
from tests.support.processes import (
    ROOT,
    Processes,
    collector_config,
    free_port,
    gateway_config,
    sim_config,
    wait_until,
)

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
METERS = {
    "site-a": [(1, "eastron-sdm630"), (2, "eastron-sdm630")],
    "site-b": [(1, "eastron-sdm630")],
}


def _token(db: Path, role: str, name: str, *sites: str) -> str:
    args = [
        sys.executable,
        "-m",
        "collector.cli",
        "token",
        "add",
        "--role",
        role,
        "--name",
        name,
        "--db",
        str(db),
        "--json",
    ]
    for site in sites:
        args += ["--site", site]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True, timeout=30)
    return str(json.loads(out.stdout)["token"])


def _has_power(db: Path, site: str) -> bool:
    if not db.exists():
        return False
    try:
        with Reader(db) as reader:
            return bool(reader.latest_of("power_w", site))
    except Exception:  # the collector has not created its tables yet
        return False


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_company_sees_its_live_power_and_report_and_nothing_of_another_company(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package; the browser "
            "test never downloads a browser"
        )
    from playwright.sync_api import sync_playwright

    ports = {site: free_port() for site in METERS}
    procs.sim(sim_config([(ports[s], METERS[s]) for s in METERS]), ports=list(ports.values()))
    db = tmp_path / "collector.db"
    http_port = free_port()
    cfg = tmp_path / "collector.toml"
    # m2 is configured as a sub-meter behind m1: shown, but not added to the live total
    cfg.write_text(
        collector_config(
            db,
            broker.port,
            http_port=http_port,
            extra='[evaluation]\ndedicated_meters = ["site-a/m2"]\n',
        )
    )
    procs.spawn("collector", "collector.cli", "run", str(cfg))
    for site, meters in METERS.items():
        gw = tmp_path / f"gw-{site}.toml"
        gw.write_text(
            gateway_config(tmp_path / f"state-{site}", site, broker.port, ports[site], meters)
        )
        procs.spawn(f"gateway-{site}", "gateway.cli", "run", str(gw))
    base = f"http://127.0.0.1:{http_port}"
    wait_until(lambda: _up(f"{base}/login"), 30, "the collector's web server")
    for site in METERS:
        wait_until(lambda s=site: _has_power(db, s), 40, f"live power of {site}")
    company = _token(db, "company", "Acme Foods", "site-a")
    admin = _token(db, "admin", "ops")
    # site-b exists: the 404 below is scope, not absence
    seen_by_admin = httpx.get(
        f"{base}/api/sites/site-b", headers={"Authorization": f"Bearer {admin}"}, timeout=5
    )
    assert seen_by_admin.status_code == 200

    # screenshots stay with the test's own temporary folder (pytest keeps the last runs)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{base}/")
            assert page.url == f"{base}/login"
            page.fill("#token", company)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            assert page.locator('a[href="/sites/site-a"]').count() == 1
            assert "site-b" not in page.content()
            page.screenshot(path=str(artifacts / "web-overview.png"), full_page=True)

            page.goto(f"{base}/sites/site-a")
            page.evaluate("window.loadedOnce = true")
            # polled from here: the page's CSP forbids the eval that wait_for_function needs
            wait_until(
                lambda: page.evaluate("window.sparwattLive.events") >= 1,
                20,
                "a live power event in the page",
            )
            total = "document.getElementById('live-total').textContent"
            cell = (
                'document.querySelector(\'tr[data-meter-key="gw1/m2"] '
                "[data-field=power]').textContent"
            )
            total_before, cell_before = page.evaluate(total), page.evaluate(cell)
            wait_until(lambda: page.evaluate(total) != total_before, 20, "the live total to change")
            wait_until(
                lambda: page.evaluate(cell) != cell_before, 20, "meter m2's live power to change"
            )
            assert page.evaluate("window.loadedOnce") is True  # changed without a reload
            # one evaluation: the rows and the total come from the same live event
            counted, shown = page.evaluate(
                "(() => { let w = 0; for (const c of document.querySelectorAll("
                "'#meters tr:not([data-sub-meter]) [data-field=power]')) w += Number(c.dataset.w);"
                " return [w, Number(document.getElementById('live-total').dataset.w)]; })()"
            )
            assert shown == pytest.approx(counted)
            assert page.locator("tr[data-sub-meter]").count() == 1
            assert page.locator("#live-state").text_content() == "live"
            latency = page.evaluate("window.sparwattLive.lastLatencyMs")
            (artifacts / "web-live-latency.txt").write_text(
                f"reading time at the gateway -> shown in the browser: {latency} ms\n"
            )
            page.screenshot(path=str(artifacts / "web-site.png"), full_page=True)

            page.click("text=Energy-review report")
            page.wait_for_url(f"{base}/sites/site-a/report")
            assert page.locator("h1").text_content() == "Energy review: site-a"
            assert page.locator("svg.chart").count() >= 4
            page.screenshot(path=str(artifacts / "web-report.png"), full_page=True)

            other = page.goto(f"{base}/sites/site-b")
            assert other is not None
            assert other.status == 404
            assert page.request.get(f"{base}/api/sites/site-b/latest").status == 404
            assert page.request.get(f"{base}/api/sites/site-a/latest").status == 200
        finally:
            browser.close()
