"""Report and site page state a site's calendar as the sites file has it, show the site in
its own time zone, and measure the off-hours share on the savings scan's own calendar."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient

from collector.analysis import MeterSeries, Sites, load_sites
from collector.analysis.frame import Frame
from collector.evaluation.inputs import load_series
from collector.store import Reader, Store
from collector.web import auth, views
from collector.web.app import create_app
from collector.web.context import WebContext
from devtools import seed

SITES_TOML = """
[defaults]
timezone = "Europe/Copenhagen"

[sites.workshop]
sector = "metalwork"
closures = [{ start = 2025-05-30, end = 2025-05-30, note = "bridge day" }]

[sites.workshop.opening_hours]
mon = ["06:00-22:00"]
tue = ["06:00-22:00"]
wed = ["06:00-22:00"]
thu = ["06:00-22:00"]
fri = ["06:00-22:00"]

[sites.workshop.holidays]
country = "DK"

[sites.harbour]
timezone = "Asia/Tokyo"
"""
NOW_MS = int(datetime(2025, 6, 3, 12, tzinfo=UTC).timestamp() * 1000)  # a Tuesday
# Monday to Sunday around Ascension Day (Thursday 29 May) and the Friday closure after it
PERIOD = "from=2025-05-26&to=2025-06-01"
CPH = ZoneInfo("Europe/Copenhagen")


@dataclass
class Rig:
    db: Path
    sites: Sites
    client: TestClient
    headers: dict[str, str]

    def page(self, path: str) -> str:
        response = self.client.get(path, headers=self.headers)
        assert response.status_code == 200, response.text
        return str(response.text)


def _client(db: Path, sites: Sites | None) -> Iterator[TestClient]:
    ctx = WebContext(db=db, sites=sites, clock=lambda: NOW_MS / 1000)
    with TestClient(create_app(ctx)) as client:
        yield client


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("calendar")
    (tmp / "sites.toml").write_text(SITES_TOML)
    sites = load_sites(tmp / "sites.toml")
    store = Store(tmp / "collector.db")
    plan = seed.Plan(sites=["workshop", "harbour", "unlisted"], days=14, opportunities=False)
    seed.seed(store, plan, NOW_MS)
    token = auth.new_token()
    store.add_token("admin", "admin", [], auth.digest(token))
    store.close()
    for client in _client(tmp / "collector.db", sites):
        yield Rig(tmp / "collector.db", sites, client, {"Authorization": f"Bearer {token}"})


def _scan_share(rig: Rig, site: str, from_ms: int, to_ms: int) -> tuple[float, float]:
    """Off-hours share of the site's energy in [from_ms, to_ms) on the savings scan's own
    calendar (Frame over the series the scan loads), and the same share ignoring holidays
    and closures."""
    with Reader(rig.db) as reader:
        meters = load_series(reader, [site], NOW_MS, days=14)
    assert len({int(m.start_ms[0]) for m in meters}) == 1  # one grid: the sum is the site's
    total = np.sum([np.nan_to_num(m.energy_kwh) for m in meters], axis=0)
    frame = Frame(MeterSeries(site, "total", "main", meters[0].start_ms, total), rig.sites[site])
    inside = (frame.series.start_ms >= from_ms) & (frame.series.start_ms < to_ms)
    e = frame.energy0[inside]
    week_plan = frame.ctx.open_table[frame.weekday, frame.cal.quarter][inside]
    return float(e[~frame.open_[inside]].sum() / e.sum()), float(e[~week_plan].sum() / e.sum())


def test_report_states_the_sites_file_calendar_and_the_scans_off_hours_share(rig: Rig) -> None:
    page = rig.page(f"/sites/workshop/report?{PERIOD}")
    assert (
        "Opening hours from the sites file: Monday to Friday 06:00-22:00; "
        "Saturday and Sunday closed. Public holidays (DK, public) count as closed days. "
        "Closures: 2025-05-30 (bridge day)."
    ) in page
    assert "07:00-17:00" not in page
    assert "holidays are not taken out" not in page
    assert "local time in Europe/Copenhagen" in page

    lo = int(datetime(2025, 5, 26, tzinfo=CPH).timestamp() * 1000)
    hi = int(datetime(2025, 6, 2, tzinfo=CPH).timestamp() * 1000)
    expected, week_plan_only = _scan_share(rig, "workshop", lo, hi)
    # the holiday and the closure matter: without them the share would read differently
    assert round(expected * 100) != round(week_plan_only * 100)
    assert f"<td>{expected * 100:,.0f} % of the energy</td>" in page

    with Reader(rig.db) as reader:
        report = views.report(reader, "workshop", lo, hi, CPH, rig.sites["workshop"])
    assert report.off_hours_share == pytest.approx(expected, rel=1e-12)


def test_site_page_states_the_same_calendar(rig: Rig) -> None:
    page = rig.page("/sites/workshop")
    assert "Opening hours: Monday to Friday 06:00-22:00; Saturday and Sunday closed." in page
    assert "Public holidays (DK, public) count as closed days." in page
    assert "Times in Europe/Copenhagen." in page


def test_a_site_without_an_entry_gets_no_invented_opening_hours(rig: Rig) -> None:
    page = rig.page(f"/sites/unlisted/report?{PERIOD}")
    assert (
        "No opening hours configured for this site (it has no entry in the sites file); "
        "off-hours share not computed."
    ) in page
    assert "not computed: no opening hours configured for this site" in page
    assert "% of the energy" not in page
    assert "07:00" not in page.split("<h2>Assumptions</h2>")[1]
    # its local time is the sites file's [defaults]
    assert "local time in Europe/Copenhagen" in page
    assert "No opening hours configured for this site" in rig.page("/sites/unlisted")


def test_without_a_sites_file_the_report_says_so(rig: Rig) -> None:
    for client in _client(rig.db, None):
        page = client.get(f"/sites/workshop/report?{PERIOD}", headers=rig.headers).text
    assert "No opening hours configured for this site (the collector has no sites file)" in page
    assert "% of the energy" not in page


def test_pages_and_series_show_a_site_in_its_own_time_zone(rig: Rig) -> None:
    page = rig.page("/sites/harbour/report?from=2025-05-27&to=2025-05-27")
    assert "Period 2025-05-27 to 2025-05-27 (whole days, Asia/Tokyo)" in page
    series = rig.client.get(
        "/api/sites/harbour/series?step=1d&from=2025-05-26T15:00:00Z&to=2025-05-28T15:00:00Z",
        headers=rig.headers,
    ).json()
    # days start at midnight in Tokyo, 15:00 UTC the day before
    assert [p["start"] for p in series["points"]] == [
        "2025-05-26T15:00:00Z",
        "2025-05-27T15:00:00Z",
    ]
