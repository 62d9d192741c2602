"""Stable opportunity ids, reconcile between scans, and site config validation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.analysis import Opportunity, reconcile, stable_id
from collector.analysis.series import MeterSeries
from collector.analysis.site_context import SiteContext, load_sites
from sparwatt.errors import ConfigError, SeriesError

CONFIG = Path(__file__).resolve().parents[3] / "config"


def opp(site: str, kind: str, kwh: float = 100.0) -> Opportunity:
    return Opportunity(
        id=stable_id(site, "m", kind),
        site=site,
        meter="m",
        kind=kind,
        period_start_ms=0,
        period_end_ms=1,
        evidence={},
        annual_kwh=kwh,
        annual_dkk=kwh,
        annual_kg_co2=1.0,
        action="a",
        investment_dkk=1.0,
        lifetime_years=5,
        payback_years=1.0,
        rentabel=True,
        confidence=1.0,
        first_seen_ms=0,
        last_seen_ms=0,
    )


@given(st.text(), st.text(), st.text())
def test_stable_id_depends_only_on_site_meter_kind(site: str, meter: str, kind: str) -> None:
    assert stable_id(site, meter, kind) == stable_id(site, meter, kind)
    assert stable_id(site, meter, kind) != stable_id(site, meter, kind + "x")


def test_id_fields_do_not_run_together() -> None:
    assert stable_id("ab", "c", "k") != stable_id("a", "bc", "k")


def test_reconcile_opens_updates_and_closes() -> None:
    first, _, _ = reconcile([], [opp("a", "baseload"), opp("b", "drift")], now=100)
    assert [o.first_seen_ms for o in first] == [100, 100]
    opened, updated, closed = reconcile(
        first, [opp("a", "baseload", kwh=250.0), opp("c", "standby")], now=200
    )
    assert [o.site for o in opened] == ["c"]
    assert [(o.site, o.annual_kwh, o.first_seen_ms, o.last_seen_ms) for o in updated] == [
        ("a", 250.0, 100, 200)
    ]
    assert [(o.site, o.status, o.closed_ms) for o in closed] == [("b", "closed", 200)]


def test_reconcile_reopens_a_closed_opportunity_and_ignores_duplicates() -> None:
    gone = replace(opp("a", "baseload"), status="closed", closed_ms=50)
    opened, updated, closed = reconcile(
        [gone], [opp("a", "baseload"), opp("a", "baseload")], now=300
    )
    assert [(o.status, o.first_seen_ms, o.closed_ms) for o in opened] == [("open", 300, None)]
    assert updated == []
    assert closed == []


def test_example_sites_file_loads() -> None:
    sites = load_sites(CONFIG / "sites.example.toml")
    assert sites
    assert all(isinstance(s, SiteContext) for s in sites.values())


BAD = """
[defaults]
sector = "office"

[sites.acme]
main_fuse_a = 160
colour = "blue"

[sites.acme.opening_hours]
mon = ["7-17"]

[sites.acme.grid_tariff.winter]
lavlast = -1
hoejlast = 0.4
spidslast = 1.2

[sites.acme.measures.solar]
lifetime_years = 20
"""


def test_config_errors_name_file_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as err:
        load_sites(path)
    problems = err.value.problems
    assert all(p.startswith(f"{path}: ") for p in problems)
    assert any("sites.acme.colour" in p and "Extra inputs" in p for p in problems)
    assert any("sites.acme.opening_hours.mon" in p and "'7-17'" in p for p in problems)
    assert any("sites.acme.grid_tariff.winter.lavlast" in p and "-1" in p for p in problems)
    assert any("sites.acme.measures" in p and "solar" in p for p in problems)
    assert len(problems) == 4


def test_defaults_apply_to_every_site_and_sites_override_them(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(
        '[defaults]\nsector = "office"\nprice_area = "DK1"\n[defaults.co2]\ng_per_kwh = 80\n'
        '[sites.a]\n[sites.b]\nsector = "shop"\nprice_area = "DK2"\n[sites.b.co2]\n'
        'hourly_csv = "co2.csv"\n[sites.b.energy_price]\n'
        'spot_hourly_csv = "prices/spot-dk1.csv"\n'
    )
    (tmp_path / "co2.csv").write_text("ts,g_per_kwh\n2026-01-01T00:00:00Z,120\n")
    (tmp_path / "prices").mkdir()
    (tmp_path / "prices" / "spot-dk1.csv").write_text("ts,dkk_per_kwh\n2026-01-01T00:00:00Z,0.9\n")
    sites = load_sites(path)
    assert (sites["a"].sector, sites["b"].sector) == ("office", "shop")
    assert (sites["a"].price_area, sites["b"].price_area) == ("DK1", "DK2")
    assert sites["b"].co2.price_area == sites["b"].energy_price.price_area == "DK2"
    assert sites["b"].co2.g_per_kwh == 80
    assert sites["b"].co2.hourly_csv == tmp_path / "co2.csv"
    assert sites["b"].energy_price.spot_hourly_csv == tmp_path / "prices" / "spot-dk1.csv"
    assert sites["a"].energy_price.spot_hourly_csv is None


def test_series_contract_is_checked() -> None:
    ms = np.arange(4, dtype=np.int64) * 900_000
    with pytest.raises(SeriesError, match="role"):
        MeterSeries("s", "m", "sub", ms, np.ones(4))
    with pytest.raises(SeriesError, match="regular 15-minute grid"):
        MeterSeries("s", "m", "main", ms * 2, np.ones(4))
    with pytest.raises(SeriesError, match=r"currents_a must have shape \(4, 3\)"):
        MeterSeries("s", "m", "main", ms, np.ones(4), currents_a=np.ones((4, 2)))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("ts,g_per_kwh\n2026-01-01T00:00:00Z,abc\n", "bad row in CO2 series CSV"),
        ("time,g\n2026-01-01T00:00:00Z,80\n", "needs exactly the columns ts,g_per_kwh"),
        ("ts,g_per_kwh\n2026-01-01T00:07:00Z,80\n", "does not start on a quarter hour"),
    ],
)
def test_a_broken_co2_file_is_refused_when_the_sites_file_loads(
    tmp_path: Path, content: str, expected: str
) -> None:
    (tmp_path / "co2.csv").write_text(content)
    path = tmp_path / "sites.toml"
    path.write_text('[sites.a]\nsector = "office"\n[sites.a.co2]\nhourly_csv = "co2.csv"\n')
    with pytest.raises(ConfigError) as err:
        load_sites(path)
    (line,) = err.value.problems
    assert line.startswith(f"{path}: sites.a.co2.hourly_csv: ")
    assert expected in line


def test_a_missing_spot_price_file_is_refused_naming_site_and_key(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(
        '[sites.w]\nsector = "office"\n[sites.w.energy_price]\nspot_hourly_csv = "nope.csv"\n'
    )
    with pytest.raises(ConfigError, match=r"sites\.w\.energy_price\.spot_hourly_csv: .*nope\.csv"):
        load_sites(path)
