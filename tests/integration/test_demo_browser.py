"""The README's demo with its year of history, in headless Chromium: within 30 s of the start
the overview lists savings with DKK and payback, a site page shows its profile, heatmap and
an open unusual-usage alert, and the report over a year draws a full chart."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.web.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.processes import ROOT, wait_until

pytestmark = pytest.mark.integration

WITHIN_S = 30.0
SAVING = re.compile(r"\(([\d,]+) DKK/yr, payback (\d+\.\d) yr\)")


class Output:
    """The demo's stdout, read on a thread so the test never blocks on it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)


def _header(out: Output) -> tuple[str, str, str] | None:
    """(web address, admin token, year report path) once the demo has printed them."""
    text = out.text()
    web = re.search(r"web:\s+(http://127\.0\.0\.1:\d+)/", text)
    admin = re.search(r"^\s+admin\s+(spw_\S+)", text, re.M)
    year = re.search(r"a year:\s+http://127\.0\.0\.1:\d+(/\S+)", text)
    return (web.group(1), admin.group(1), year.group(1)) if web and admin and year else None


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_demo_shows_a_year_savings_and_an_open_alert_in_the_browser_within_30_s(
    tmp_path: Path,
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package; the browser "
            "test never downloads a browser"
        )
    from playwright.sync_api import sync_playwright

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--dir", str(tmp_path / "demo")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    seen: dict[str, float] = {}

    def left() -> float:
        return max(0.5, started + WITHIN_S - time.monotonic())

    def at(what: str) -> None:
        seen[what] = round(time.monotonic() - started, 1)

    try:
        # the browser starts once the history is in: until then it would only compete for CPU
        found = wait_until(lambda: _header(out), left(), "the demo's address and tokens")
        base, admin, year = found  # type: ignore[misc]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                wait_until(lambda: _up(f"{base}/login"), left(), "the collector's web server")
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.goto(f"{base}/login")
                page.fill("#token", admin)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/")

                # the overview, reloaded until the first scan and alert round are in
                def overview() -> dict[str, tuple[str, str]] | None:
                    page.goto(f"{base}/")
                    rows = page.locator("#sites tbody tr")
                    cells = {
                        rows.nth(i).get_attribute("data-site") or "": (
                            rows.nth(i).inner_text(),
                            rows.nth(i).locator("[data-field=alerts]").inner_text().strip(),
                        )
                        for i in range(rows.count())
                    }
                    done = cells and all(SAVING.search(t) for t, _ in cells.values())
                    return cells if done and any(a != "0" for _, a in cells.values()) else None

                sites: dict[str, tuple[str, str]] = wait_until(  # type: ignore[assignment]
                    overview, left(), "opportunities and an open alert on the overview"
                )
                at("overview")
                page.screenshot(path=str(artifacts / "demo-overview.png"), full_page=True)
                assert set(sites) == {"bakery-nord", "office-park", "cold-store-syd"}
                for text, _alerts in sites.values():
                    dkk, payback = SAVING.search(text).groups()  # type: ignore[union-attr]
                    assert int(dkk.replace(",", "")) > 0
                    assert float(payback) > 0
                alerted = next(site for site, (_t, alerts) in sites.items() if alerts != "0")

                # the site with the alert: its open unusual-usage alert, profile and heatmap
                page.goto(f"{base}/sites/{alerted}")
                alerts = page.locator("table.alerts tbody tr")
                assert any(
                    "firing" in alerts.nth(i).inner_text()
                    and "usual for this time of week" in alerts.nth(i).inner_text()
                    for i in range(alerts.count())
                )
                opened = page.request.get(f"{base}/api/sites/{alerted}/alerts").json()
                assert [a["labels"]["alertname"] for a in opened if a["resolved"] is None] == [
                    "unusual_usage"
                ]
                profile = page.evaluate(
                    "JSON.parse(document.getElementById('profile-data').textContent)"
                )
                assert len(profile["t"]) >= 7 * 96 - 1  # a week of quarters behind the live one
                assert all(kw is not None and kw > 0 for kw in profile["kw"])
                assert page.locator("#profile-chart canvas").count() >= 1  # drawn
                heatmap = page.locator('svg[aria-label^="Mean power by weekday and hour"]')
                assert heatmap.locator("rect").count() == 7 * 24
                assert "no data" not in heatmap.inner_html()  # every weekday and hour filled
                assert page.locator("table.opps tbody tr").count() >= 1
                at("site page")
                page.screenshot(path=str(artifacts / "demo-site.png"), full_page=True)

                # the report over a year, of the site whose main meter came from Eloverblik
                page.goto(f"{base}{year}")
                line = page.locator('svg[aria-label="15-minute mean power over the period"]')
                points = line.locator("polyline").first.get_attribute("points") or ""
                assert len(points.split()) > 300 * 96  # most of a year of quarters drawn
                days = page.locator('svg[aria-label="Energy per day"] rect').count()
                assert days >= 360
                report = page.locator("body").inner_text()
                assert "No data" not in report  # no missing intervals listed
                assert "no data" not in page.locator("svg.chart").last.inner_html()
                average = re.search(r"Average power\s+([\d.,]+) kW", report)
                assert average is not None
                assert float(average.group(1).replace(",", "")) > 10  # the 65 kW office, whole
                assert page.locator("table.opps tbody tr").count() >= 2
                at("year report")
                page.screenshot(path=str(artifacts / "demo-year-report.png"), full_page=True)
            finally:
                browser.close()
        assert max(seen.values()) <= WITHIN_S, f"seen after (s): {seen}"
        (artifacts / "demo-times.txt").write_text(f"seen after (s): {seen}\n{out.text()[:3000]}")
        assert proc.poll() is None, out.text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out.text()[-3000:]
    assert "stopped" in out.text()
