"""The report says where each meter's data comes from and at what resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from collector.store import Store
from collector.store.history import EnergyHistory, MeterHistory, write_energy
from collector.web import auth
from collector.web.app import create_app
from collector.web.context import WebContext
from sparwatt import wire
from tests.support.messages import payload

DAY = 86_400_000
H = 3_600_000
T0 = 1_767_222_000_000  # 2026-01-01 00:00 Danish time


def test_report_names_an_imported_hourly_meter_beside_a_gateway_meter(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    store = Store(db)
    starts = np.arange(T0, T0 + 7 * DAY, H, dtype=np.int64)
    history = EnergyHistory(starts, np.full(len(starts), 2.0), np.zeros(len(starts), bool), H)
    write_energy(store, [MeterHistory("bakery", "utility", "grid", "eloverblik", history)])
    readings = [("m1", T0 + k * 60_000, {"energy_import_kwh": 10.0 + k / 60}) for k in range(30)]
    store.write([wire.ReadingsMessage.model_validate(payload(1, readings, "bakery", "gw1"))])
    token = auth.new_token()
    store.add_token("admin", "admin", [], auth.digest(token))
    store.close()
    http = TestClient(create_app(WebContext(db=db)))
    http.cookies.set(auth.COOKIE, token)
    page = http.get("/sites/bakery/report", params={"from": "2026-01-01", "to": "2026-01-08"}).text
    assert "utility/grid: the utility&#39;s metering data (DataHub, imported from Eloverblik), " \
        "hourly values" in page  # fmt: skip
    assert "gw1/m1: gateway readings, 15-minute intervals" in page
    assert "peaks within an hour do not show" in page
