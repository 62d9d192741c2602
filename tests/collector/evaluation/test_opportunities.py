"""Savings opportunities from the stored intervals: scan, persist, list, update and close."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from collector import settings
from collector.evaluation.inputs import load_series
from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import refresh_intervals
from collector.store import IntervalRow, Reader, Store
from sparwatt import wire
from tests.support.processes import collector_cli

Q_MS = 900_000
TZ = ZoneInfo("Europe/Copenhagen")
SITE, GATEWAY, METER = "acme-office", "gw1", "main"
SITES_TOML = f"""
[sites.{SITE}]
sector = "office"
timezone = "Europe/Copenhagen"
[sites.{SITE}.opening_hours]
mon = ["07:00-17:00"]
tue = ["07:00-17:00"]
wed = ["07:00-17:00"]
thu = ["07:00-17:00"]
fri = ["07:00-17:00"]
"""


def register_meter(
    store: Store,
    site: str,
    gateway: str,
    meter: str,
    at_ms: int,
    values: dict[str, float] | None = None,
    seq: int = 1,
) -> int:
    """Make the store know a meter the way ingest does: through one readings message."""
    ts = datetime.fromtimestamp(at_ms / 1000, UTC)
    store.write(
        [
            wire.ReadingsMessage(
                site=site,
                gateway=gateway,
                seq=seq,
                sent_at=ts,
                readings=[
                    wire.Reading(meter=meter, ts=ts, values=values or {"voltage_l1_v": 230.0})
                ],
            )
        ]
    )
    meter_id = store.meter_id(site, gateway, meter)
    assert meter_id is not None
    return meter_id


def office_intervals(end_ms: int, weeks: int, night_kw: float, seed: int = 7) -> list[IntervalRow]:
    """15-minute rows of an office: 50 kW in opening hours, `night_kw` the rest of the time."""
    rng = np.random.default_rng(seed)
    rows: list[IntervalRow] = []
    for start in range(end_ms - weeks * 7 * 96 * Q_MS, end_ms, Q_MS):
        local = datetime.fromtimestamp(start / 1000, TZ)
        kw = 50.0 if local.weekday() < 5 and 7 <= local.hour < 17 else night_kw
        kw *= 1 + 0.03 * float(rng.standard_normal())
        rows.append(IntervalRow(start, kw / 4, False, 0.0, False, kw * 1000, kw * 1100))
    return rows


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return collector_cli(*args, "--config", str(config), timeout=120)


@pytest.fixture
def office(tmp_path: Path) -> tuple[Path, Store, int, int]:
    db = tmp_path / "sparwatt.db"
    (tmp_path / "sites.toml").write_text(SITES_TOML)
    config = tmp_path / "collector.toml"
    config.write_text(f'[storage]\ndb = "{db}"\n\n[evaluation]\nsites_file = "sites.toml"\n')
    store = Store(db)
    end = int(time.time() * 1000) // Q_MS * Q_MS
    meter_id = register_meter(store, SITE, GATEWAY, METER, end - Q_MS)
    return config, store, meter_id, end


@pytest.mark.integration
def test_raised_night_base_load_is_listed_kept_once_and_closed_when_fixed(
    office: tuple[Path, Store, int, int],
) -> None:
    config, store, meter_id, end = office
    store.put_intervals(meter_id, office_intervals(end, weeks=9, night_kw=30.0))

    run = cli(config, "opportunities", "--refresh", "--json")
    assert run.returncode == 0, run.stderr
    listed = json.loads(run.stdout)
    found = [o for o in listed if o["kind"] == "baseload"]
    assert len(found) == 1, listed
    opp = found[0]
    assert (opp["site"], opp["meter"], opp["status"]) == (SITE, METER, "open")
    data = opp["data"]
    # 30 kW at night where 15 kW (0.3 x 50 kW) is the target: about 15 kW x 6,000 h a year
    assert 50_000 < data["annual_kwh"] < 130_000
    assert data["annual_dkk"] > 50_000
    assert data["annual_kg_co2"] > 0
    assert 0 < data["payback_years"] < data["lifetime_years"]
    assert data["rentabel"] is True
    first_seen = data["first_seen_ms"]

    human = cli(config, "opportunities")
    assert human.returncode == 0, human.stderr
    line = next(line for line in human.stdout.splitlines() if " baseload " in line)
    for part in ("kWh/yr", "DKK/yr", "kg CO2/yr", "payback", "rentabel", f"{SITE}/{METER}"):
        assert part in line

    again = cli(config, "opportunities", "--refresh", "--json", "--status", "all")
    assert again.returncode == 0, again.stderr
    rows = [o for o in json.loads(again.stdout) if o["kind"] == "baseload"]
    assert [(o["id"], o["status"]) for o in rows] == [(opp["id"], "open")]
    assert rows[0]["data"]["first_seen_ms"] == first_seen
    assert rows[0]["updated_ms"] >= opp["updated_ms"]

    # the night load is fixed: the same weeks now show a normal floor
    store.put_intervals(meter_id, office_intervals(end, weeks=9, night_kw=8.0))
    fixed = cli(config, "opportunities", "--refresh", "--json", "--status", "all")
    assert fixed.returncode == 0, fixed.stderr
    rows = [o for o in json.loads(fixed.stdout) if o["id"] == opp["id"]]
    assert len(rows) == 1
    assert rows[0]["status"] == "closed"
    assert rows[0]["data"]["closed_ms"] is not None
    still_open = cli(config, "opportunities", "--json")
    assert opp["id"] not in {o["id"] for o in json.loads(still_open.stdout)}


def test_refresh_without_a_sites_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[storage]\ndb = "{tmp_path / "x.db"}"\n')
    Store(tmp_path / "x.db").close()
    run = cli(config, "opportunities", "--refresh")
    assert run.returncode == 2
    assert "sites_file" in run.stderr


def test_bad_sites_file_stops_check_config_with_the_key(tmp_path: Path) -> None:
    (tmp_path / "sites.toml").write_text(f'[sites.{SITE}]\ntimezone = "Mars/Olympus"\n')
    config = tmp_path / "collector.toml"
    config.write_text('[evaluation]\nsites_file = "sites.toml"\n')
    run = collector_cli("check-config", str(config))
    assert run.returncode == 2
    assert "sites.toml" in run.stderr
    assert "Mars/Olympus" in run.stderr


def test_series_carry_power_factor_and_currents_where_stored(
    office: tuple[Path, Store, int, int],
) -> None:
    config, store, meter_id, end = office
    rows = office_intervals(end, weeks=3, night_kw=8.0)
    store.put_intervals(meter_id, rows)
    at = end - 2 * Q_MS
    register_meter(
        store,
        SITE,
        GATEWAY,
        METER,
        at,
        seq=2,
        values={
            "power_factor": -0.8,
            "current_l1_a": 10.0,
            "current_l2_a": 12.0,
            "current_l3_a": 14.0,
        },
    )
    register_meter(
        store,
        SITE,
        GATEWAY,
        METER,
        at + 60_000,
        seq=3,
        values={
            "power_factor": -0.9,
            "current_l1_a": 20.0,
            "current_l2_a": 22.0,
            "current_l3_a": 24.0,
        },
    )
    refresh_intervals(store, IntervalPolicy())  # gauges reach the scan through rollups
    cfg = settings.load(config)
    with Reader(store.path) as reader:
        (series,) = load_series(reader, [SITE], end, days=21)
    assert series.role == "main"
    assert series.n == 21 * 96
    assert series.end_ms == end
    col = (at - int(series.start_ms[0])) // Q_MS
    assert series.power_factor is not None
    assert series.power_factor[col] == pytest.approx(0.85)
    assert np.isnan(series.power_factor[col - 1])
    assert series.currents_a is not None
    assert series.currents_a[col].tolist() == pytest.approx([15.0, 17.0, 19.0])
    assert series.voltages_v is not None  # the registering reading carried a voltage
    assert series.max_power_w is not None
    assert series.max_power_w[col] == pytest.approx(next(r[6] for r in rows if r[0] == at))
    assert cfg.evaluation.sites_file == config.parent / "sites.toml"


def test_dedicated_meters_are_scanned_as_sub_meters(office: tuple[Path, Store, int, int]) -> None:
    _config, store, meter_id, end = office
    store.put_intervals(meter_id, office_intervals(end, weeks=2, night_kw=8.0))
    other = register_meter(store, SITE, GATEWAY, "compressor", end - Q_MS, seq=2)
    store.put_intervals(other, office_intervals(end, weeks=2, night_kw=3.0))
    with Reader(store.path) as reader:
        roles = {
            s.meter: s.role
            for s in load_series(reader, [SITE], end, days=14, dedicated=[f"{SITE}/compressor"])
        }
    assert roles == {METER: "main", "compressor": "dedicated"}
