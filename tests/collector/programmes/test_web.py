"""Programme page, CSV and API: who sees which programme, and which companies of it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.analysis import load_sites
from collector.analysis.site_context import Programme, Target
from collector.store import Store
from collector.web import auth
from collector.web.app import create_app
from collector.web.context import WebContext
from collector.web.programmes import ProgrammeView, change_chart, programme_view
from tests.collector.programmes.history import local_ms, sites_file, write_constant

NOW_MS = local_ms(2026, 4, 1)
MEMBERS = ["bakery-north", "office-harbour", "late-bakery"]
GRANTS = {
    "admin": ("admin", []),
    "consultant-all": ("consultant", [*MEMBERS, "elsewhere"]),
    "consultant-part": ("consultant", ["bakery-north", "office-harbour"]),
    "company-bakery": ("company", ["bakery-north"]),
    "company-office": ("company", ["office-harbour"]),
    "company-elsewhere": ("company", ["elsewhere"]),
}
# the office's figures: its energy in the baseline period and this year
OFFICE_KWH = ("17,272", "19,431")


@dataclass
class Web:
    client: TestClient
    tokens: dict[str, str]

    def get(self, path: str, who: str | None):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(path, headers=headers)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    folder = tmp_path_factory.mktemp("programme-web")
    sites = load_sites(sites_file(folder, 2025))
    store = Store(folder / "collector.db")
    y25, y26 = local_ms(2025), local_ms(2026)
    write_constant(store, "bakery-north", y25, y26, 1.0)
    write_constant(store, "bakery-north", y26, NOW_MS, 0.875)
    write_constant(store, "office-harbour", y25, y26, 2.0)
    write_constant(store, "office-harbour", y26, NOW_MS, 2.25)
    write_constant(store, "late-bakery", local_ms(2025, 7, 1), NOW_MS, 1.0)
    write_constant(store, "elsewhere", y25, NOW_MS, 5.0)
    tokens = {}
    for name, (role, granted) in GRANTS.items():
        tokens[name] = auth.new_token()
        store.add_token(name, role, granted, auth.digest(tokens[name]))
    store.close()
    ctx = WebContext(db=folder / "collector.db", sites=sites, clock=lambda: NOW_MS / 1000)
    with TestClient(create_app(ctx)) as client:
        yield Web(client, tokens)


def _principal(role: str, *sites: str) -> auth.Principal:
    return auth.Principal(1, "t", auth.Role(role), frozenset(sites))


PROGRAMME = Programme(
    name="P", sites=["a", "b"], baseline_year=2025, target=Target(co2=-0.2, energy=None)
)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (_principal("admin"), ProgrammeView(("a", "b"), aggregates=True)),
        (_principal("consultant", "a", "b", "c"), ProgrammeView(("a", "b"), aggregates=True)),
        (_principal("consultant", "a"), None),
        (_principal("consultant", "c"), None),
        (_principal("company", "b"), ProgrammeView(("b",), aggregates=False)),
        (_principal("company", "c"), None),
    ],
)
def test_the_access_rule(who: auth.Principal, expected: ProgrammeView | None) -> None:
    assert programme_view(who, PROGRAMME) == expected


EXPECTED = {
    "admin": 200,
    "consultant-all": 200,
    "consultant-part": 404,
    "company-bakery": 200,
    "company-office": 200,
    "company-elsewhere": 404,
    None: 401,
}


@pytest.mark.parametrize("who", list(EXPECTED))
def test_the_api_answers_by_role_and_scope(web: Web, who: str | None) -> None:
    response = web.get("/api/programmes/aarhus-2030", who)
    assert response.status_code == EXPECTED[who], response.text
    if response.status_code == 404:
        # the same answer as a programme that does not exist
        assert response.json() == web.get("/api/programmes/nope", "admin").json()


@pytest.mark.parametrize("who", ["admin", "consultant-all"])
def test_an_admin_and_a_consultant_of_every_company_see_all_and_the_total(
    web: Web, who: str
) -> None:
    data = web.get("/api/programmes/aarhus-2030?year=2026", who).json()
    assert [c["site"] for c in data["companies"]] == MEMBERS
    assert data["companies"][0]["figures"]["energy_change"] == -0.125
    assert data["total"]["compared"] == 2
    assert data["total"]["figures"]["baseline_kwh"] == 25908.0
    assert [s["name"] for s in data["sectors"]] == ["bakery", "office"]
    listed = web.get("/api/programmes", who).json()
    assert [p["id"] for p in listed] == ["aarhus-2030", "energy-only"]
    assert listed[0]["sites"] == MEMBERS
    assert listed[0]["aggregates"] is True


def test_a_company_sees_only_its_own_row_and_nothing_that_adds_up_others(web: Web) -> None:
    response = web.get("/api/programmes/aarhus-2030", "company-bakery")
    data = response.json()
    assert [c["site"] for c in data["companies"]] == ["bakery-north"]
    assert data["companies"][0]["figures"]["energy_progress"] == pytest.approx(0.125 / 0.15)
    assert data["total"] is None
    assert data["sectors"] == []
    for other in ("office-harbour", "late-bakery", "17272", "19431"):
        assert other not in response.text
    listed = web.get("/api/programmes", "company-bakery").json()
    assert [(p["id"], p["sites"], p["aggregates"]) for p in listed] == [
        ("aarhus-2030", ["bakery-north"], False)
    ]


def test_a_consultant_without_every_company_sees_no_programme(web: Web) -> None:
    listed = web.get("/api/programmes", "consultant-part").json()
    # energy-only has the office alone, which this consultant was given
    assert [p["id"] for p in listed] == ["energy-only"]
    assert web.get("/programmes/aarhus-2030", "consultant-part").status_code == 404
    assert web.get("/programmes/aarhus-2030.csv", "consultant-part").status_code == 404


def test_the_page_shows_every_company_and_the_total_to_a_consultant(web: Web) -> None:
    response = web.get("/programmes/aarhus-2030", "consultant-all")
    assert response.status_code == 200
    html = response.text
    for site in MEMBERS:
        assert f'data-site="{site}"' in html
    assert 'id="total"' in html
    assert "2 of 3 companies compared" in html
    assert "-12.5 %" in html
    assert "baseline year 2025 has data for 50 %" in html
    assert 'id="sectors"' in html
    assert "<svg" in html
    assert 'href="/programmes/aarhus-2030.csv?year=2026"' in html


def test_the_page_shows_a_company_only_itself_against_the_target(web: Web) -> None:
    response = web.get("/programmes/aarhus-2030", "company-office")
    assert response.status_code == 200
    html = response.text
    assert 'data-site="office-harbour"' in html
    assert all(kwh in html for kwh in OFFICE_KWH)
    for other in ("bakery-north", "late-bakery", "8,636", "7,556", "25,908", "companies compared"):
        assert other not in html
    assert 'id="total"' not in html
    assert 'id="sectors"' not in html
    assert ".csv" not in html
    assert "target -15 %" in html  # its bar is drawn against the target


def test_the_csv_is_for_admins_and_consultants(web: Web) -> None:
    response = web.get("/programmes/aarhus-2030.csv?year=2026", "consultant-all")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "programme-aarhus-2030-2026.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["Company"] for r in rows] == [*MEMBERS, "Total"]
    assert rows[-1]["Energy change (%)"] == "4.17"
    assert web.get("/programmes/aarhus-2030.csv", "company-bakery").status_code == 403
    assert web.get("/programmes/aarhus-2030.csv", "company-elsewhere").status_code == 404


def test_a_year_the_programme_cannot_report_is_a_400(web: Web) -> None:
    response = web.get("/api/programmes/aarhus-2030?year=2024", "admin")
    assert response.status_code == 400
    assert response.json() == {"detail": "2024 is before the baseline year 2025"}
    assert web.get("/api/programmes/aarhus-2030?year=1800", "admin").status_code == 422


def test_the_overview_links_the_programmes_the_caller_may_see(web: Web) -> None:
    def links(who: str) -> list[str]:
        html = web.get("/", who).text
        return [p for p in ("aarhus-2030", "energy-only") if f'href="/programmes/{p}"' in html]

    assert links("consultant-all") == ["aarhus-2030", "energy-only"]
    assert links("consultant-part") == ["energy-only"]
    assert links("company-bakery") == ["aarhus-2030"]
    assert links("company-elsewhere") == []
    assert 'id="programmes"' not in web.get("/", "company-elsewhere").text


def test_without_a_sites_file_there_are_no_programmes(tmp_path: Path) -> None:
    folder = tmp_path
    store = Store(folder / "c.db")
    token = auth.new_token()
    store.add_token("ops", "admin", [], auth.digest(token))
    store.close()
    with TestClient(create_app(WebContext(db=folder / "c.db"))) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/programmes", headers=headers).json() == []
        assert client.get("/api/programmes/aarhus-2030", headers=headers).status_code == 404


def test_the_chart_draws_a_bar_per_change_and_a_line_per_target() -> None:
    chart = str(change_chart([("a", -0.1, -0.2), ("b", 0.05, None)], -0.15, -0.2))
    assert chart.count("<rect") == 3 + 2  # three bars, two legend keys
    assert chart.count('stroke-dasharray="5,3"') == 2
    assert "a: energy -10.0 % (target -15 %)" in chart
    assert "no data" in str(change_chart([("a", None, None)], None, None))
