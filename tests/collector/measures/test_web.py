"""Measures on the web: the JSON API, the site and measure pages, the form consultants use,
and that a company sees only its own site's measures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from collector.store import MeasureRow, Reader, Store
from collector.web import auth
from collector.web.app import create_app
from collector.web.context import WebContext
from devtools import seed
from tests.collector.measures import synthetic

GRANTS = {
    "admin": ("admin", []),
    "consultant": ("consultant", ["bakery", "site-a"]),
    "company-bakery": ("company", ["bakery"]),
    "company-b": ("company", ["site-b"]),
}
VERIFIED, OTHER = "aaaa0001", "bbbb0001"


@dataclass
class Web:
    db: Path
    client: TestClient
    tokens: dict[str, str]

    def get(self, path: str, who: str) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def as_(self, who: str) -> TestClient:
        """The browser of `who`, logged in (the cookie the login page sets)."""
        self.client.cookies.clear()
        self.client.cookies.set(auth.COOKIE, self.tokens[who])
        return self.client

    def measures(self, site: str) -> list[MeasureRow]:
        with Reader(self.db) as reader:
            return reader.measures(site)


def _row(measure_id: str, site: str, meters: list[str], **changes: object) -> MeasureRow:
    fields: dict[str, object] = {
        "id": measure_id,
        "site": site,
        "meters": meters,
        "kind": "baseload",
        "title": "Ventilation off at night",
        "installed_from": synthetic.INSTALLED,
        "installed_to": None,
        "investment_dkk": 25_000.0,
        "expected_kwh_year": 40_000.0,
        "opportunity_id": None,
        "model": "auto",
        "exclusions": [],
        "note": None,
        "created_ms": 0,
        "updated_ms": 0,
        **changes,
    }
    return MeasureRow(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    db = tmp_path_factory.mktemp("web") / "collector.db"
    store = Store(db)
    seed.seed(store, seed.Plan(sites=["site-a", "site-b"], days=2), synthetic.NOW_MS)
    site = synthetic.make_site()
    synthetic.store_history(store, site)
    store.put_temperatures("bakery", site.hours, site.temperature_c)
    store.put_measure(_row(VERIFIED, "bakery", ["grid", "ovens"]))
    store.put_measure(_row(OTHER, "site-b", ["m1"], title="LED lighting", kind="other"))
    tokens = {}
    for name, (role, sites) in GRANTS.items():
        tokens[name] = auth.new_token()
        store.add_token(name, role, sites, auth.digest(tokens[name]))
    store.close()
    ctx = WebContext(db=db, clock=lambda: synthetic.NOW_MS / 1000)
    with TestClient(create_app(ctx)) as client:
        yield Web(db, client, tokens)


@pytest.mark.parametrize("who", ["admin", "consultant", "company-bakery"])
def test_the_api_lists_a_sites_measures_with_verified_and_expected_savings(
    web: Web, who: str
) -> None:
    response = web.get("/api/sites/bakery/measures", who)
    assert response.status_code == 200, response.text
    mine = [m for m in response.json() if m["measure"]["id"] == VERIFIED]
    assert len(mine) == 1
    m = mine[0]
    assert m["status"] == "verified"
    assert m["model"] == "caltrack_hourly"
    assert m["expected_kwh_per_year"] == 40_000.0
    assert m["low_kwh_per_year"] < m["verified_kwh_per_year"] < m["high_kwh_per_year"]
    assert 0.8 * 43_800 < m["verified_kwh_per_year"] < 1.2 * 43_800  # 5 kW less, all year
    assert m["significant"] is True


def test_the_api_shows_one_measure_with_its_baseline_gates_and_cumulative_savings(
    web: Web,
) -> None:
    response = web.get(f"/api/sites/bakery/measures/{VERIFIED}", "company-bakery")
    assert response.status_code == 200, response.text
    v = response.json()
    assert v["status"] == "verified"
    assert v["temperature"] is True
    b = v["baseline"]
    assert b["model"] == "caltrack_hourly"
    assert "every calendar month has hourly data" in b["model_reason"]
    assert b["fit"]["cvrmse"] < b["fit"]["max_cvrmse"] == 0.30
    assert b["fit"]["cvrmse_ok"] is True
    assert b["fit"]["nmbe_ok"] is True
    f = v["savings"]["figures"]
    assert f["low_kwh"] < f["avoided_kwh"] < f["high_kwh"]
    assert f["dkk_per_year"] > 0
    assert f["co2_kg_per_year"] > 0
    assert v["savings"]["period_end"] == "2025-06-30"
    last = v["cumulative"][-1]
    assert last["day"] == "2025-06-30"
    assert abs(last["avoided_kwh"] - f["avoided_kwh"]) < 1e-6 * f["avoided_kwh"]


def test_a_company_sees_only_its_own_sites_measures(web: Web) -> None:
    other = web.get("/api/sites/site-b/measures", "company-b")
    assert [m["measure"]["id"] for m in other.json()] == [OTHER]
    assert other.json()[0]["status"] == "insufficient_data"
    for path in (
        "/api/sites/bakery/measures",
        f"/api/sites/bakery/measures/{VERIFIED}",
    ):
        refused = web.get(path, "company-b")
        assert refused.status_code == 404
        assert refused.json() == {"detail": "site not found"}
    assert web.get(f"/api/sites/site-b/measures/{OTHER}", "company-bakery").status_code == 404
    # a measure is found only under its own site, even by an admin
    wrong_site = web.get(f"/api/sites/site-a/measures/{VERIFIED}", "admin")
    assert wrong_site.status_code == 404
    assert wrong_site.json() == {"detail": "measure not found"}
    assert web.client.get("/api/sites/bakery/measures").status_code == 401
    company = web.as_("company-b")
    assert company.get(f"/sites/bakery/measures/{VERIFIED}").status_code == 404
    assert "Ventilation off at night" not in company.get("/sites/site-b").text


def test_the_site_page_lists_measures_read_only_for_the_company(web: Web) -> None:
    page = web.as_("company-bakery").get("/sites/bakery")
    assert page.status_code == 200
    assert f'href="/sites/bakery/measures/{VERIFIED}"' in page.text
    assert ">verified<" in page.text
    assert "40,000" in page.text  # expected kWh/yr beside the verified figure
    assert "Record a measure" not in page.text
    assert "/remove" not in page.text


def test_the_site_page_gives_consultants_the_form_and_remove_buttons(web: Web) -> None:
    page = web.as_("consultant").get("/sites/bakery")
    assert "Record a measure" in page.text
    assert f'action="/sites/bakery/measures/{VERIFIED}/remove"' in page.text
    assert 'value="grid"' in page.text
    assert 'value="ovens"' in page.text


def test_the_measure_page_shows_model_gates_chart_money_and_co2(web: Web) -> None:
    page = web.as_("company-bakery").get(f"/sites/bakery/measures/{VERIFIED}")
    assert page.status_code == 200
    text = page.text
    assert '<strong id="baseline-model">caltrack_hourly</strong>' in text
    assert "CV(RMSE)" in text
    assert "NMBE" in text
    assert text.count("<td>pass</td>") == 2
    assert "Cumulative avoided energy, with its 90 % interval" in text
    assert "<polygon" in text  # the interval band
    assert "<polyline" in text
    assert "Money (DKK)" in text
    assert "CO₂ (kg)" in text
    assert "Record a measure" not in text


def test_a_consultant_records_a_measure_from_the_form(web: Web) -> None:
    browser = web.as_("consultant")
    form = {
        "title": "LED in the shop",
        "meters": ["grid", "ovens"],
        "kind": "other",
        "installed_from": "2025-02-01",
        "installed_to": "",
        "investment_dkk": "12000",
        "expected_kwh_year": "",
        "opportunity_id": "",
        "model": "time_of_week",
        "exclusions": "2024-08-01:2024-08-14:summer closure",
        "note": "",
    }
    response = browser.post("/sites/bakery/measures", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    added = [m for m in web.measures("bakery") if m.title == "LED in the shop"]
    assert len(added) == 1
    row = added[0]
    assert response.headers["location"] == f"/sites/bakery/measures/{row.id}"
    assert row.meters == ["grid", "ovens"]
    assert row.installed_from == dt.date(2025, 2, 1)
    assert row.model == "time_of_week"
    assert row.investment_dkk == 12_000.0
    assert row.expected_kwh_year is None
    assert [(e.start, e.label) for e in row.exclusions] == [(dt.date(2024, 8, 1), "summer closure")]
    page = browser.get(response.headers["location"])
    assert "time_of_week model chosen by the caller" in page.text

    removed = browser.post(f"/sites/bakery/measures/{row.id}/remove", follow_redirects=False)
    assert removed.status_code == 303
    assert removed.headers["location"] == "/sites/bakery#measures"
    assert all(m.id != row.id for m in web.measures("bakery"))


def test_a_form_with_mistakes_comes_back_with_one_line_each(web: Web) -> None:
    browser = web.as_("consultant")
    form = {
        "title": "Broken",
        "meters": ["freezer"],
        "kind": "magic",
        "installed_from": "2025-02-01",
        "installed_to": "2025-01-01",
        "investment_dkk": "-1",
        "exclusions": "August",
    }
    response = browser.post("/sites/bakery/measures", data=form)
    assert response.status_code == 400
    text = response.text
    assert "measure: Excluded periods &#39;August&#39;: expected START:END[:LABEL]" in text
    assert "measure: Meters: no meter &#39;freezer&#39; at site bakery" in text
    assert "measure: Kind: unknown kind &#39;magic&#39;" in text
    assert "measure: Installed to: 2025-01-01 is before the installation starts" in text
    assert "measure: Investment (DKK): Input should be greater than or equal to 0" in text
    assert 'value="Broken"' in text  # what was entered stays in the form
    assert all(m.title != "Broken" for m in web.measures("bakery"))


def test_only_consultants_and_admins_change_measures_and_only_from_this_site(web: Web) -> None:
    form = {"title": "x", "meters": ["grid"], "kind": "other", "installed_from": "2025-02-01"}
    company = web.as_("company-bakery")
    assert company.post("/sites/bakery/measures", data=form).status_code == 403
    refused = company.post(f"/sites/bakery/measures/{VERIFIED}/remove")
    assert refused.status_code == 403
    consultant = web.as_("consultant")
    forged = consultant.post(
        f"/sites/bakery/measures/{VERIFIED}/remove",
        headers={"Origin": "https://elsewhere.example"},
    )
    assert forged.status_code == 403
    assert (
        consultant.post(
            f"/sites/site-b/measures/{OTHER}/remove", follow_redirects=False
        ).status_code
        == 404
    )  # not one of the consultant's sites
    assert (
        consultant.post(
            "/sites/bakery/measures/nothing1/remove", follow_redirects=False
        ).status_code
        == 404
    )
    web.client.cookies.clear()
    anonymous = web.client.post("/sites/bakery/measures", data=form, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login"
    assert [m.id for m in web.measures("bakery")] == [VERIFIED]
    assert [m.id for m in web.measures("site-b")] == [OTHER]
