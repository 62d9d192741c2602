"""The rollups API and the export: every quantity of a meter from the 15-minute history, by
step; on each database engine."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import refresh_intervals
from collector.store import Store
from collector.store.sql import Target
from collector.web import auth
from collector.web.app import create_app
from collector.web.context import WebContext
from tests.support.messages import NOW_MS, iso, message

Q = 900_000


@pytest.fixture
def client(backend: Target) -> tuple[TestClient, str]:
    db = backend
    store = Store(db)
    start = (NOW_MS - 86_400_000) // Q * Q
    readings = [
        (
            "m1",
            start + k * 300_000,
            {
                "power_factor": -0.8 if k % 2 else 0.9,
                "current_l1_a": 10.0 + k,
                "energy_import_kwh": 100.0 + k * 0.25,
            },
        )
        for k in range(12)  # an hour of 5-minute readings
    ]
    store.write([message(1, readings)])
    refresh_intervals(store, IntervalPolicy())
    token = auth.new_token()
    store.add_token("admin", "admin", [], auth.digest(token))
    store.close()
    app = create_app(WebContext(db=db, clock=lambda: NOW_MS / 1000))
    return TestClient(app), token


def test_gauges_come_as_mean_min_max_and_counters_as_energy(
    client: tuple[TestClient, str],
) -> None:
    http, token = client
    resp = http.get(
        "/api/sites/site-a/meters/m1/rollups",
        params={"quantity": ["power_factor", "current_l1_a"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 200, resp.text
    points = resp.json()["points"]
    assert len(points) == 4
    first = points[0]["values"]
    assert set(first) == {"power_factor", "current_l1_a"}
    assert first["current_l1_a"]["mean"] == pytest.approx(11.0)
    assert (first["current_l1_a"]["min"], first["current_l1_a"]["max"]) == (10.0, 12.0)
    assert first["current_l1_a"]["count"] == 3
    # a power factor is kept as a magnitude
    assert first["power_factor"]["min"] == pytest.approx(0.8)


def test_an_hour_step_weighs_means_by_reading_count_and_sums_energy(
    client: tuple[TestClient, str],
) -> None:
    http, token = client
    resp = http.get(
        "/api/sites/site-a/meters/m1/rollups",
        params={"step": "1h"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 200, resp.text
    hours = resp.json()["points"]
    total = sum(p["values"]["current_l1_a"]["count"] for p in hours)
    assert total == 12
    energy = sum(
        p["values"]["energy_import_kwh"]["energy"] or 0.0
        for p in hours
        if "energy_import_kwh" in p["values"]
    )
    assert energy == pytest.approx(11 * 0.25)


def test_unknown_meter_and_quantity_are_refused(client: tuple[TestClient, str]) -> None:
    http, token = client
    auth_header = {"Authorization": f"Bearer {token}"}
    assert http.get("/api/sites/site-a/meters/nope/rollups", headers=auth_header).status_code == 404
    bad = http.get(
        "/api/sites/site-a/meters/m1/rollups", params={"quantity": "bogus"}, headers=auth_header
    )
    assert bad.status_code == 400
    assert "bogus" in bad.json()["detail"]


def test_export_at_15_minutes_has_a_column_for_every_quantity(
    client: tuple[TestClient, str], backend: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector import cli

    start = (NOW_MS - 86_400_000) // Q * Q
    code = cli.main(
        [
            "export",
            "--db",
            str(backend),
            "--site",
            "site-a",
            "--from",
            iso(start),
            "--to",
            iso(start + 4 * Q),
            "--format",
            "json",
        ]
    )
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(rows) == 4
    assert {"power_factor", "current_l1_a", "energy_import_kwh"} <= set(rows[0])
    assert rows[0]["current_l1_a"] == pytest.approx(11.0)
    assert rows[1]["energy_import_kwh"] == pytest.approx(0.75)
