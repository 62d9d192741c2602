"""HTTP API and pages: every role against every endpoint, on a real SQLite file and on a
PostgreSQL database."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from collector import cli
from collector.store import Reader, Store
from collector.store.schema import connect
from collector.store.sql import Target, dialect_of
from collector.web import auth
from collector.web.app import create_app
from collector.web.context import WebContext
from devtools import seed
from sparwatt import wire
from tests.support.engines import new_target

SITES = ["site-a", "site-b", "site-c"]
NOW_MS = int(time.time() * 1000)


@dataclass
class Web:
    db: Target
    store: Store
    ctx: WebContext
    client: TestClient
    tokens: dict[str, str]
    ids: dict[str, int]

    def get(self, path: str, who: str | None, **kw: object):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(path, headers=headers, **kw)  # type: ignore[arg-type]


GRANTS = {
    "admin": ("admin", []),
    "consultant-ac": ("consultant", ["site-a", "site-c"]),
    "consultant-b": ("consultant", ["site-b"]),
    "company-a": ("company", ["site-a"]),
    "company-b": ("company", ["site-b"]),
    "revoked-a": ("company", ["site-a"]),
}


def _web(db: Target) -> Iterator[Web]:
    store = Store(db)
    seed.seed(store, seed.Plan(sites=SITES, days=2), NOW_MS)
    tokens, ids = {}, {}
    for name, (role, sites) in GRANTS.items():
        tokens[name] = auth.new_token()
        ids[name] = store.add_token(name, role, sites, auth.digest(tokens[name]))
    store.revoke_token(ids["revoked-a"])
    tokens["forged"] = auth.PREFIX + "x" * 43
    ctx = WebContext(db=db)
    with TestClient(create_app(ctx)) as client:
        yield Web(db, store, ctx, client, tokens, ids)
    store.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_web(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Web]:
    """One database for the module's read-only tests, on each engine."""
    yield from _web(new_target(request, request.param, tmp_path_factory.mktemp("web")))


@pytest.fixture
def web(shared_web: Web) -> Web:
    """The module's database, read only; each test starts without cookies."""
    shared_web.client.cookies.clear()
    return shared_web


@pytest.fixture
def fresh(backend: Target) -> Iterator[Web]:
    """A database of its own, for tests that revoke tokens or close the store."""
    yield from _web(backend)


SITE_ENDPOINTS = [
    "/api/sites/site-a",
    "/api/sites/site-a/meters",
    "/api/sites/site-a/latest",
    "/api/sites/site-a/latest?quantity=power_w",
    "/api/sites/site-a/series?step=15m",
    "/api/sites/site-a/series?step=1h",
    "/api/sites/site-a/series?step=1d&meter=m1",
    "/api/sites/site-a/opportunities",
    "/api/sites/site-a/alerts",
    "/api/sites/site-a/gateways",
    "/api/sites/site-a/gaps",
    "/api/sites/site-a/export.csv",
    "/api/sites/site-a/live?max_events=1",
]
EXPECTED = {
    "admin": 200,
    "consultant-ac": 200,
    "company-a": 200,
    "consultant-b": 404,
    "company-b": 404,
    "revoked-a": 401,
    "forged": 401,
    None: 401,
}


@pytest.mark.parametrize("who", list(EXPECTED))
@pytest.mark.parametrize("path", SITE_ENDPOINTS)
def test_site_endpoint_answers_by_role_and_scope(web: Web, path: str, who: str | None) -> None:
    response = web.get(path, who)
    assert response.status_code == EXPECTED[who], response.text
    if EXPECTED[who] == 404:
        # the same answer as for a site that does not exist: no existence leak
        missing = web.get(path.replace("site-a", "site-zz"), "admin")
        assert missing.status_code == 404
        assert response.json() == missing.json() == {"detail": "site not found"}
    if EXPECTED[who] == 401:
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("who", "status"),
    [("admin", 200), ("consultant-ac", 403), ("company-a", 403), ("revoked-a", 401), (None, 401)],
)
def test_token_list_is_for_admins_only_and_never_shows_a_token(
    web: Web, who: str | None, status: int
) -> None:
    response = web.get("/api/tokens", who)
    assert response.status_code == status
    if status == 200:
        assert {t["name"] for t in response.json()} == set(GRANTS)
        assert not any(tok in response.text for tok in web.tokens.values())


@pytest.mark.parametrize(
    ("who", "sites"),
    [
        ("admin", SITES),
        ("consultant-ac", ["site-a", "site-c"]),
        ("consultant-b", ["site-b"]),
        ("company-a", ["site-a"]),
        ("company-b", ["site-b"]),
    ],
)
def test_site_list_and_me_show_only_the_callers_sites(web: Web, who: str, sites: list[str]) -> None:
    assert [s["site"] for s in web.get("/api/sites", who).json()] == sites
    me = web.get("/api/me", who).json()
    assert me["role"] == GRANTS[who][0]
    assert me["sites"] == (None if who == "admin" else sites)


@pytest.mark.parametrize("path", ["/api/sites", "/api/me"])
@pytest.mark.parametrize("who", ["revoked-a", "forged", None])
def test_unscoped_endpoints_need_a_valid_token(web: Web, path: str, who: str | None) -> None:
    assert web.get(path, who).status_code == 401


def test_revoking_a_token_takes_effect_at_the_next_request(fresh: Web) -> None:
    assert fresh.get("/api/sites/site-a/latest", "company-a").status_code == 200
    fresh.client.cookies.set(auth.COOKIE, fresh.tokens["company-a"])
    assert fresh.client.get("/sites/site-a").status_code == 200
    assert cli.main(["token", "revoke", str(fresh.ids["company-a"]), "--db", str(fresh.db)]) == 0
    assert fresh.get("/api/sites/site-a/latest", "company-a").status_code == 401
    page = fresh.client.get("/sites/site-a", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/login")


def test_live_stream_rechecks_the_token_and_ends_when_it_is_revoked(fresh: Web) -> None:
    def revoke_then_publish() -> None:
        deadline = time.monotonic() + 10
        while fresh.ctx.hub.subscribers("site-a") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        fresh.store.revoke_token(fresh.ids["company-a"])
        fresh.ctx.hub.publish([_batch("site-a", 41_000.0)])

    helper = threading.Thread(target=revoke_then_publish)
    helper.start()
    response = fresh.get("/api/sites/site-a/live?max_events=5", "company-a")
    helper.join()
    # the snapshot went out while the token was valid; the stream ended instead of event 2
    assert response.text.count("event: ") == 1
    assert "event: snapshot" in response.text


def _batch(site: str, power: float, meter: str = "m1") -> wire.ReadingsMessage:
    now = datetime.now(UTC)
    return wire.ReadingsMessage(
        site=site,
        gateway="gw1",
        seq=99,
        sent_at=now,
        readings=[wire.Reading(meter=meter, ts=now, values={"power_w": power})],
    )


def test_live_stream_sends_a_snapshot_then_published_power_of_its_site_only(web: Web) -> None:
    def publish() -> None:
        deadline = time.monotonic() + 10
        while web.ctx.hub.subscribers("site-a") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        web.ctx.hub.publish([_batch("site-b", 1.0), _batch("site-a", 12_345.5, "m2")])

    helper = threading.Thread(target=publish)
    helper.start()
    response = web.get("/api/sites/site-a/live?max_events=2", "company-a")
    helper.join()
    events = [block for block in response.text.split("\n\n") if "data: " in block]
    assert [e.split("event: ")[1].split("\n")[0] for e in events] == ["snapshot", "power"]
    snapshot = json.loads(events[0].split("data: ")[1])
    assert set(snapshot["values"]) == {"gw1/m1", "gw1/m2"}
    live = json.loads(events[1].split("data: ")[1])
    assert list(live["values"]) == ["gw1/m2"]
    assert live["values"]["gw1/m2"][1] == 12_345.5


def test_series_steps_agree_and_ranges_are_checked(web: Web) -> None:
    q = "from=2020-01-01T00:00:00Z&to=" + datetime.now(UTC).isoformat().replace("+00:00", "Z")
    fine = web.get(
        f"/api/sites/site-a/series?step=15m&{q.replace('2020-01-01', _days_ago(3))}", "admin"
    ).json()
    daily = web.get(f"/api/sites/site-a/series?step=1d&{q}", "admin").json()
    fine_kwh = sum(p["energy_kwh"] for p in fine["points"])
    assert fine_kwh > 0
    assert sum(p["energy_kwh"] for p in daily["points"]) == pytest.approx(fine_kwh)
    assert web.get(f"/api/sites/site-a/series?step=15m&{q}", "admin").status_code == 400
    reversed_ = "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"
    assert web.get(f"/api/sites/site-a/series?{reversed_}", "admin").status_code == 400
    one = web.get("/api/sites/site-a/series?step=1h&meter=m1", "admin").json()
    both = web.get("/api/sites/site-a/series?step=1h", "admin").json()
    assert sum(p["energy_kwh"] or 0 for p in one["points"]) < sum(
        p["energy_kwh"] or 0 for p in both["points"]
    )


def _days_ago(days: int) -> str:
    return datetime.fromtimestamp(time.time() - days * 86400, UTC).strftime("%Y-%m-%d")


def test_csv_export_has_one_row_per_meter_and_interval(web: Web) -> None:
    response = web.get("/api/sites/site-a/export.csv", "company-a")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["meter"] for r in rows} == {"m1", "m2"}
    assert all(r["site"] == "site-a" for r in rows)
    per_meter = len([r for r in rows if r["meter"] == "m1"])
    assert per_meter == len(rows) // 2 >= 2 * 96 - 1


def test_opportunities_come_shortest_payback_first_with_their_figures(web: Web) -> None:
    opps = web.get("/api/sites/site-a/opportunities", "consultant-ac").json()
    assert [o["payback_years"] for o in opps] == sorted(o["payback_years"] for o in opps)
    assert all(o["annual_kwh"] and o["annual_dkk"] and o["annual_kg_co2"] for o in opps)


@pytest.mark.parametrize("path", ["/", "/sites/site-a", "/sites/site-a/report"])
def test_pages_redirect_to_login_without_a_cookie(web: Web, path: str) -> None:
    response = web.client.get(path, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("company-a", 200),
        ("consultant-ac", 200),
        ("admin", 200),
        ("company-b", 404),
        ("consultant-b", 404),
    ],
)
@pytest.mark.parametrize("path", ["/sites/site-a", "/sites/site-a/report"])
def test_site_pages_by_role(web: Web, path: str, who: str, status: int) -> None:
    web.client.cookies.set(auth.COOKIE, web.tokens[who])
    response = web.client.get(path)
    assert response.status_code == status
    if status == 404:
        assert "site-a" not in response.text


def test_overview_lists_only_the_companys_site(web: Web) -> None:
    web.client.cookies.set(auth.COOKIE, web.tokens["company-b"])
    page = web.client.get("/").text
    assert 'href="/sites/site-b"' in page
    assert "site-a" not in page
    assert "site-c" not in page


def test_login_sets_a_strict_httponly_cookie_and_refuses_bad_tokens(web: Web) -> None:
    bad = web.client.post("/login", data={"token": web.tokens["revoked-a"]}, follow_redirects=False)
    assert bad.status_code == 401
    assert "set-cookie" not in bad.headers
    good = web.client.post(
        "/login", data={"token": web.tokens["company-a"]}, follow_redirects=False
    )
    assert (good.status_code, good.headers["location"]) == (303, "/")
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    out = web.client.post("/logout", follow_redirects=False)
    assert out.status_code == 303
    assert 'sparwatt_token=""' in out.headers["set-cookie"]


def test_report_is_self_contained_with_inline_svg_charts(web: Web) -> None:
    web.client.cookies.set(auth.COOKIE, web.tokens["company-a"])
    page = web.client.get("/sites/site-a/report").text
    assert page.count("<svg") >= 4
    assert "<script" not in page
    assert 'src="' not in page
    assert "stylesheet" not in page
    assert "Assumptions" in page
    # ranked by payback: the 0.8-year opportunity before the 2.5-year one
    assert page.index("Reduce offhours") < page.index("Reduce baseload")


def test_tokens_are_stored_hashed_only(fresh: Web) -> None:
    raw = stored_bytes(fresh)
    assert not any(tok.encode() in raw for tok in fresh.tokens.values())
    assert auth.digest(fresh.tokens["admin"]).encode() in raw


def stored_bytes(web: Web) -> bytes:
    """All the database holds: its files on SQLite, every row of every table on PostgreSQL."""
    web.store.close()
    if isinstance(web.db, Path):
        return b"".join(p.read_bytes() for p in web.db.parent.glob(f"{web.db.name}*"))
    db = connect(web.db, readonly=True)
    assert dialect_of(db) == "postgres"
    try:
        tables = [
            name
            for (name,) in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        return b"".join(
            repr(row).encode() for table in tables for row in db.execute(f"SELECT * FROM {table}")
        )
    finally:
        db.close()


def test_cli_token_add_rejects_a_company_token_without_exactly_one_site(
    backend: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(backend)
    assert cli.main(["token", "add", "--role", "company", "--name", "x", "--db", db]) == 2
    assert "exactly one --site" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "token",
                "add",
                "--role",
                "company",
                "--site",
                "a",
                "--site",
                "b",
                "--name",
                "x",
                "--db",
                db,
            ]
        )
        == 2
    )
    assert (
        cli.main(["token", "add", "--role", "admin", "--site", "a", "--name", "x", "--db", db]) == 2
    )
    capsys.readouterr()
    assert (
        cli.main(
            [
                "token",
                "add",
                "--role",
                "consultant",
                "--site",
                "a",
                "--site",
                "b",
                "--name",
                "eva",
                "--db",
                db,
                "--json",
            ]
        )
        == 0
    )
    made = json.loads(capsys.readouterr().out)
    assert made["token"].startswith(auth.PREFIX)
    assert made["sites"] == ["a", "b"]
    assert cli.main(["token", "list", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["role"], t["revoked_ms"]) for t in listed] == [
        ("eva", "consultant", None)
    ]
    assert made["token"] not in json.dumps(listed)
    assert cli.main(["token", "revoke", str(made["id"]), "--db", db]) == 0
    assert cli.main(["token", "revoke", str(made["id"]), "--db", db]) == 1


def test_http_section_rejects_unknown_keys_and_points_the_time_zone_to_the_sites_file(
    tmp_path: Path,
) -> None:
    from collector import settings
    from sparwatt.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text(
        '[http]\nenabled = true\nport = 8080\ntimezone = "Europe/Copenhagen"\npassword = "x"\n'
    )
    with pytest.raises(ConfigError) as err:
        settings.load(path)
    moved, unknown = err.value.problems
    assert moved.startswith(f"{path}: http.timezone: moved to the sites file")
    assert "http.password" in unknown


def test_a_taken_port_stops_start_up_with_one_line(tmp_path: Path) -> None:
    import socket

    from collector.web.app import WebServer
    from sparwatt.errors import ConfigError

    Store(tmp_path / "c.db").close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as err:
            WebServer(WebContext(db=tmp_path / "c.db"), "127.0.0.1", port)
    assert err.value.problems[0].startswith(f"http: cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(
    "query", ["from=2026-13-01", "from=2026-02-01&to=2026-01-01", "from=2020-01-01&to=2026-01-01"]
)
def test_report_refuses_bad_periods_with_a_page(web: Web, query: str) -> None:
    web.client.cookies.set(auth.COOKIE, web.tokens["company-a"])
    response = web.client.get(f"/sites/site-a/report?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


def test_report_covers_the_whole_local_days_asked_for(web: Web) -> None:
    web.client.cookies.set(auth.COOKIE, web.tokens["company-a"])
    day = _days_ago(1)
    page = web.client.get(f"/sites/site-a/report?from={day}&to={day}").text
    assert f"Period {day} to {day}" in page
    start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo("Europe/Copenhagen"))
    end = start.replace(tzinfo=None) + timedelta(days=1)
    end = end.replace(tzinfo=start.tzinfo)
    series = web.get(
        f"/api/sites/site-a/series?step=1d&from={start.isoformat()}&to={end.isoformat()}".replace(
            "+", "%2B"
        ),
        "company-a",
    ).json()
    assert len(series["points"]) == 1
    kwh = series["points"][0]["energy_kwh"]
    assert kwh > 0
    assert f"<td>{kwh:,.0f} kWh</td>" in page
    link = page.split('href="/api/sites/site-a/export.csv?')[1].split('"')[0]
    rows = list(
        csv.DictReader(
            io.StringIO(
                web.client.get("/api/sites/site-a/export.csv?" + link.replace("&amp;", "&")).text
            )
        )
    )
    assert sum(float(r["energy_kwh"]) for r in rows) == pytest.approx(kwh)


def test_pages_survive_odd_opportunity_and_alert_data(fresh: Web) -> None:
    fresh.store.put_opportunity(
        "odd",
        "site-a",
        "m1",
        "mystery",
        "open",
        {
            "assumptions": ["not", "a", "mapping"],
            "payback_years": "soon",
            "annual_dkk": float("inf"),
            "rentabel": "yes",
        },
    )
    fresh.store.put_alert("odd", "site-a", {"n": 1}, "firing", "weird", "<b>bold</b>", 0)  # type: ignore[dict-item]
    fresh.client.cookies.set(auth.COOKIE, fresh.tokens["company-a"])
    for path in ["/", "/sites/site-a", "/sites/site-a/report"]:
        response = fresh.client.get(path)
        assert response.status_code == 200, path
        assert "<b>bold</b>" not in response.text
    opps = fresh.get("/api/sites/site-a/opportunities", "company-a").json()
    odd = next(o for o in opps if o["id"] == "odd")
    assert (odd["payback_years"], odd["annual_dkk"], odd["rentabel"]) == (None, None, None)
    assert opps[-1]["id"] == "odd"  # unknown payback ranks last


def test_a_configured_sub_meter_is_shown_but_left_out_of_site_totals(web: Web) -> None:
    """m2 behind the main meter m1: listed on its own, never added to the site's figures."""
    q = f"from={_days_ago(1)}T00:00:00Z&to=" + datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def figures(ctx: WebContext) -> tuple[float, float, float, str]:
        with TestClient(create_app(ctx)) as client:
            headers = {"Authorization": f"Bearer {web.tokens['admin']}"}
            summary = client.get("/api/sites/site-a", headers=headers).json()
            series = client.get(f"/api/sites/site-a/series?step=1h&{q}", headers=headers).json()
            page = client.get("/sites/site-a", headers=headers).text
            page += client.get("/sites/site-a/report", headers=headers).text
        return (
            summary["today_kwh"],
            summary["power_w"],
            sum(p["energy_kwh"] or 0 for p in series["points"]),
            page,
        )

    def meter_kwh(meter: str) -> float:
        series = web.get(f"/api/sites/site-a/series?step=1h&meter={meter}&{q}", "admin").json()
        return sum(p["energy_kwh"] or 0 for p in series["points"])

    latest = {
        r["meter"]: r["value"]
        for r in web.get("/api/sites/site-a/latest?quantity=power_w", "admin").json()
    }
    all_today, all_power, all_kwh, plain_page = figures(WebContext(db=web.db))
    today, power, kwh, page = figures(WebContext(db=web.db, sub_meters=frozenset({"site-a/m2"})))
    assert meter_kwh("m2") > 0
    assert kwh == pytest.approx(all_kwh - meter_kwh("m2"))
    assert kwh == pytest.approx(meter_kwh("m1"))
    assert power == pytest.approx(all_power - latest["m2"])
    assert today <= all_today
    assert "sub-meter, not in the total" in page
    assert "leaving out the sub-meters behind its main meter (m2)" in page
    assert "sub-meter, not in the total" not in plain_page
    assert "leaving out" not in plain_page


def test_site_energy_leaves_out_exactly_the_sub_meters(web: Web) -> None:
    def site_a(*sub_meters: str) -> float:
        with Reader(web.db, sub_meters) as reader:
            return reader.energy_by_site(0, 2**62)["site-a"]

    both, only_m1, only_m2 = site_a(), site_a("site-a/m2"), site_a("site-a/m1", "site-b/m2")
    assert only_m1 > 0
    assert only_m2 > 0
    assert both == pytest.approx(only_m1 + only_m2)


def test_an_expired_token_is_refused_at_the_next_request(fresh: Web) -> None:
    in_a_day = NOW_MS + 86_400_000
    token = auth.new_token()
    fresh.store.add_token("review", "company", ["site-a"], auth.digest(token), in_a_day)
    headers = {"Authorization": f"Bearer {token}"}
    assert fresh.client.get("/api/sites/site-a/latest", headers=headers).status_code == 200
    fresh.ctx.clock = lambda: in_a_day / 1000  # the day is over
    assert fresh.client.get("/api/sites/site-a/latest", headers=headers).status_code == 401
    fresh.client.cookies.set(auth.COOKIE, token)
    page = fresh.client.get("/sites/site-a", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/login")
    # a token without an expiry is not touched by the clock
    assert fresh.get("/api/sites/site-a/latest", "company-a").status_code == 200
    listed = {t["name"]: t for t in fresh.get("/api/tokens", "admin").json()}
    assert listed["review"]["expires"] is not None
    assert listed["company-a"]["expires"] is None


def test_cli_token_add_with_an_expiry_lists_it_and_refuses_bad_days(
    backend: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(backend)
    before = int(time.time() * 1000)
    assert (
        cli.main(
            [
                "token",
                "add",
                "--role",
                "company",
                "--site",
                "a",
                "--name",
                "review",
                "--expires-days",
                "30",
                "--db",
                db,
                "--json",
            ]
        )
        == 0
    )
    made = json.loads(capsys.readouterr().out)
    assert (
        before + 30 * 86_400_000
        <= made["expires_ms"]
        <= int(time.time() * 1000) + (30 * 86_400_000)
    )
    assert cli.main(["token", "list", "--db", db]) == 0
    assert "active until " in capsys.readouterr().out
    for bad in ("0", "-1", "soon", "4000"):
        with pytest.raises(SystemExit) as stop:
            cli.main(
                [
                    "token",
                    "add",
                    "--role",
                    "admin",
                    "--name",
                    "x",
                    "--expires-days",
                    bad,
                    "--db",
                    db,
                ]
            )
        assert stop.value.code == 2
        assert "--expires-days" in capsys.readouterr().err


def test_token_list_works_on_a_database_of_an_older_collector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from collector.store import schema

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version in (1, 2, 3, 4):  # before tokens could expire
        con.executescript(schema._MIGRATIONS[version])
        con.execute("INSERT INTO schema_version VALUES (?)", (version,))
    con.execute(
        "INSERT INTO token (name, role, sites, hash, created_ms) VALUES "
        "('ops', 'admin', '[]', 'h', 1)"
    )
    con.commit()
    con.close()
    assert cli.main(["token", "list", "--db", str(db), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["expires_ms"]) == ("ops", None)


@pytest.mark.parametrize(
    "path",
    ["/api/sites/site-a/latest?quantity={q}", "/api/sites/site-a/meters/m1/rollups?quantity={q}"],
)
def test_a_quantity_outside_the_vocabulary_is_refused_by_name(web: Web, path: str) -> None:
    response = web.get(path.format(q="power_kw"), "admin")
    assert response.status_code == 400
    assert "power_kw" in response.json()["detail"]
    assert web.get(path.format(q="power_w"), "admin").status_code == 200
