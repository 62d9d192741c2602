"""The fleet view: gateway states from status and health, the page, /api/fleet and the CLI."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector import fleet
from collector.cli.common import query_options
from collector.cli.fleet import register_list
from collector.store import GatewayRow, Reader, Store
from collector.web import auth
from collector.web.app import create_app
from collector.web.context import WebContext
from sparwatt import console, wire
from sparwatt.timeutil import now_ms
from tests.support.health import health

MINUTE_MS = 60_000


def row(
    state: str | None = "online",
    health_report: dict[str, Any] | None = None,
    state_ms: int | None = 1_000_000,
    health_ms: int | None = 1_000_000,
) -> GatewayRow:
    return GatewayRow(
        site="site-a",
        gateway="gw1",
        registered_ms=0,
        last_seq=100,
        last_seen_ms=999_000,
        state=state,
        state_ms=state_ms,
        status={"schema": 1, "state": state, "version": "0.0.9", "meters": ["main", "new"]},
        health=health_report,
        health_ms=health_ms,
    )


# ---- the state of one gateway


def test_a_retained_offline_status_makes_a_gateway_offline_whatever_its_last_health() -> None:
    got = fleet.fleet_row(row("offline", health()), 1_000_000)
    assert got.state == "offline"


def test_an_online_gateway_without_health_for_three_of_its_intervals_is_silent() -> None:
    # its report says it sends health every 10 s
    assert fleet.fleet_row(row("online", health()), 1_000_000 + 30_000).state == "online"
    assert fleet.fleet_row(row("online", health()), 1_000_000 + 30_001).state == "silent"


def test_without_an_interval_in_the_report_the_gateway_default_of_60_s_applies() -> None:
    report = health()
    del report["health_interval_s"]
    got = fleet.fleet_row(row("online", report), 1_000_000 + 3 * MINUTE_MS)
    assert (got.health_interval_s, got.state) == (60.0, "online")
    assert fleet.fleet_row(row("online", report), 1_000_001 + 3 * MINUTE_MS).state == "silent"


def test_before_its_first_health_report_a_gateway_counts_from_its_birth_message() -> None:
    fresh = row("online", None, state_ms=1_000_000, health_ms=None)
    assert fleet.fleet_row(fresh, 1_000_000 + 60_000).state == "online"
    assert fleet.fleet_row(fresh, 1_000_000 + 181_000).state == "silent"
    assert fleet.fleet_row(row(None, None, None, None), 5).state == "unknown"


def test_meters_show_their_polling_and_the_failing_one_its_error() -> None:
    got = fleet.fleet_row(row("online", health()), 1_000_000)
    meters = {m.meter: m for m in got.meters}
    assert list(meters) == ["hall", "main", "new"]  # the status lists "new", not polled yet
    assert meters["main"].state == "ok"
    assert meters["main"].success_ratio == pytest.approx(0.98)
    assert meters["main"].latency_ms == 41.5
    assert meters["hall"].state == "failing"
    assert meters["hall"].consecutive_failures == 30
    assert meters["new"] == fleet.FleetMeter("new", "waiting", 0, 0, 0, 0, None, None, 0, None)
    assert got.errors == ("hall: unit 2: no answer within 1.0 s",)
    assert (got.version, got.config_version) == ("0.1.0", "0123456789ab")
    assert (got.outbox_depth, got.outbox_oldest_age_s, got.mqtt_connected) == (3, 12.5, True)
    assert got.last_seen_ms == 1_000_000  # the newest of status, health and reading


def test_a_gateway_that_reports_no_config_version_shows_none_and_its_status_version() -> None:
    report = health()
    del report["config_version"], report["version"]
    got = fleet.fleet_row(row("online", report), 1_000_000)
    assert (got.config_version, got.version) == (None, "0.0.9")


def test_dropped_and_refused_batches_are_listed_with_the_meter_errors() -> None:
    report = health(
        outbox={"depth": 0, "dropped_batches": 4},
        mqtt={"connected": False, "rejected": 2},
    )
    got = fleet.fleet_row(row("online", report), 1_000_000)
    assert got.errors[1:] == (
        "outbox dropped 4 batches (size or age limit)",
        "broker refused 2 batches",
    )


SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)
STAT = st.sampled_from(["ok", "failed", "consecutive_failures", "last_latency_ms", "last_error"])
# shallow on purpose: the fields the fleet reads, given any JSON type, and a little nesting
VALUE = (
    SCALAR
    | st.lists(SCALAR, max_size=3)
    | st.dictionaries(STAT | st.text(max_size=4), SCALAR, max_size=4)
    | st.dictionaries(st.text(max_size=4), st.dictionaries(STAT, SCALAR, max_size=5), max_size=3)
)
KEYS = st.sampled_from(
    ["meters", "outbox", "mqtt", "version", "config_version", "health_interval_s", "uptime_s"]
)


@settings(max_examples=200, deadline=None)
@given(
    report=st.dictionaries(KEYS, VALUE, max_size=7),
    status=st.dictionaries(st.sampled_from(["meters", "version", "state"]), VALUE, max_size=3),
)
@example(report={"outbox": {"depth": float("inf")}, "uptime_s": 10**400}, status={})
def test_any_health_document_gives_a_fleet_row_rather_than_an_error(
    report: dict[str, Any], status: dict[str, Any]
) -> None:
    # health is free-form on the wire: an older or broken gateway must not hide the fleet
    got = fleet.fleet_row(GatewayRow("s", "g", 0, None, None, "online", 1, status, report, 2), 3)
    assert got.state in fleet.state.STATES
    assert all(isinstance(m.ok, int) and isinstance(m.failed, int) for m in got.meters)


def test_tally_counts_every_state_even_when_none_is_in_it() -> None:
    rows = [fleet.fleet_row(row("offline", health()), 1_000_000)]
    assert fleet.tally(rows) == {"online": 0, "silent": 0, "offline": 1, "unknown": 0}


# ---- page, API and CLI on a real database


SITES = {"site-a": ["gw1", "gw2"], "site-b": ["gw1"]}
GRANTS = {
    "admin": ("admin", []),
    "consultant-a": ("consultant", ["site-a"]),
    "company-b": ("company", ["site-b"]),
}


@dataclass
class Fleet:
    db: Path
    client: TestClient
    tokens: dict[str, str]

    def get(self, path: str, who: str | None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(path, headers=headers, follow_redirects=False)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    db = tmp_path_factory.mktemp("fleet") / "collector.db"
    store = Store(db)
    tokens: dict[str, str] = {}
    with store.transaction():
        for site, gateways in SITES.items():
            for gw in gateways:
                store.register_gateway(site, gw)
                state = wire.GatewayState.OFFLINE if gw == "gw2" else wire.GatewayState.ONLINE
                store.set_status(site, gw, wire.StatusMessage(state=state, meters=["main"]))
                store.set_health(site, gw, health(site=site, gateway=gw))
        for name, (role, sites) in GRANTS.items():
            tokens[name] = auth.new_token()
            store.add_token(name, role, sites, auth.digest(tokens[name]))
    store.close()
    with TestClient(create_app(WebContext(db=db))) as client:
        yield Fleet(db, client, tokens)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", ["site-a/gw1", "site-a/gw2", "site-b/gw1"]),
        ("consultant-a", ["site-a/gw1", "site-a/gw2"]),
        ("company-b", ["site-b/gw1"]),
    ],
)
def test_api_fleet_lists_the_gateways_of_the_callers_sites_only(
    seeded: Fleet, who: str, expected: list[str]
) -> None:
    response = seeded.get("/api/fleet", who)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [f"{g['site']}/{g['gateway']}" for g in body] == expected
    states = {f"{g['site']}/{g['gateway']}": g["state"] for g in body}
    assert all(states[k] == ("offline" if k.endswith("gw2") else "online") for k in states)
    first = body[0]
    assert first["config_version"] == "0123456789ab"
    assert {m["meter"]: m["state"] for m in first["meters"]} == {"hall": "failing", "main": "ok"}


def test_api_fleet_needs_a_token(seeded: Fleet) -> None:
    assert seeded.get("/api/fleet", None).status_code == 401


def test_the_fleet_page_shows_states_and_read_buttons_for_installers_only(seeded: Fleet) -> None:
    page = seeded.get("/fleet", "admin")
    assert page.status_code == 200
    html = page.text
    assert 'data-gateway="site-a/gw2" data-state="offline"' in html
    assert 'data-meter="site-a/gw1/hall" data-state="failing"' in html
    assert "unit 2: no answer within 1.0 s" in html
    assert 'data-url="/api/sites/site-a/gateways/gw1/meters/hall/read"' in html

    company = seeded.get("/fleet", "company-b").text
    assert "site-a" not in company
    assert 'data-gateway="site-b/gw1"' in company
    assert "Read now" not in company

    assert seeded.get("/fleet", None).status_code == 303  # to the login page


def test_the_fleet_page_calls_a_gateway_silent_when_its_health_stops(seeded: Fleet) -> None:
    later = time.time() + 31  # past 3 health intervals of 10 s
    with TestClient(create_app(WebContext(db=seeded.db, clock=lambda: later))) as client:
        html = client.get(
            "/fleet", headers={"Authorization": f"Bearer {seeded.tokens['admin']}"}
        ).text
    assert 'data-gateway="site-a/gw1" data-state="silent"' in html
    assert 'data-gateway="site-a/gw2" data-state="offline"' in html


def _gateway_cli(argv: list[str]) -> int:
    """`sparwatt-collector gateway ...` as the gateway command group builds it."""
    parser = argparse.ArgumentParser(prog="sparwatt-collector")
    groups = parser.add_subparsers(dest="command", required=True)
    gateway = groups.add_parser("gateway").add_subparsers(dest="action", required=True)
    register_list(gateway, [query_options()])
    return console.run(parser, argv)


def test_gateway_list_gives_the_fleet_as_json_and_as_a_table(
    seeded: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _gateway_cli(["gateway", "list", "--json", "--db", str(seeded.db)]) == 0
    listed = json.loads(capsys.readouterr().out)
    with Reader(seeded.db) as reader:
        expected = fleet.fleet(reader, now_ms())
    assert [(g["site"], g["gateway"], g["state"]) for g in listed] == [
        (g.site, g.gateway, g.state) for g in expected
    ]
    assert listed[0]["meters"][0]["last_error"] == "unit 2: no answer within 1.0 s"

    assert _gateway_cli(["gateway", "list", "--site", "site-a", "--db", str(seeded.db)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["SITE/GATEWAY", "STATE", "LAST"]
    assert table[1].split()[:2] == ["site-a/gw1", "online"]
    assert "0123456789ab" in table[1]
    assert any("hall" in line and "failing" in line and "no answer" in line for line in table)
    assert not any("site-b" in line for line in table)


def test_gateway_list_without_a_database_says_so_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _gateway_cli(["gateway", "list", "--db", str(tmp_path / "none.db")]) == 2
    assert "no database yet" in capsys.readouterr().err
