"""Programme figures on a store with a year of history: exact kWh, CO2, change and progress."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from collector.analysis import Sites, load_sites
from collector.evaluation.programmes import (
    COMPARED,
    INCOMPLETE,
    NO_BASELINE,
    programme_report,
    report_csv,
)
from collector.store import Reader, Store
from collector.store.history import EnergyHistory, MeterHistory, write_energy
from tests.collector.programmes.history import QUARTER_MS, local_ms, sites_file, write_constant

NOW_MS = local_ms(2026, 4, 1)  # the first quarter of 2026 is in
# 1 January to 1 April, 90 days, less the hour the clocks skip in March
QUARTERS = 90 * 96 - 4


@dataclass
class Rig:
    db: Path
    sites: Sites
    reader: Reader


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    folder = tmp_path_factory.mktemp("programmes")
    sites = load_sites(sites_file(folder, 2025))
    store = Store(folder / "collector.db")
    y25, y26 = local_ms(2025), local_ms(2026)
    write_constant(store, "bakery-north", y25, y26, 1.0)
    write_constant(store, "bakery-north", y26, NOW_MS, 0.875)
    write_constant(store, "office-harbour", y25, y26, 2.0)
    write_constant(store, "office-harbour", y26, NOW_MS, 2.25)
    write_constant(store, "late-bakery", local_ms(2025, 7, 1), NOW_MS, 1.0)
    write_constant(store, "elsewhere", y25, NOW_MS, 5.0)
    store.close()
    with Reader(folder / "collector.db") as reader:
        yield Rig(folder / "collector.db", sites, reader)


def test_the_compared_period_is_the_same_part_of_the_baseline_year() -> None:
    assert (NOW_MS - local_ms(2026)) // QUARTER_MS == QUARTERS
    assert (local_ms(2025, 4, 1) - local_ms(2025)) // QUARTER_MS == QUARTERS


def test_each_company_gets_exact_energy_co2_change_and_progress(rig: Rig) -> None:
    report = programme_report(rig.reader, rig.sites, "aarhus-2030", 2026, NOW_MS)
    assert (report.name, report.baseline_year, report.year) == (
        "Aarhus energy partnership",
        2025,
        2026,
    )
    assert (report.target_energy, report.target_co2, report.complete) == (-0.15, -0.20, False)
    bakery, office, late = report.companies
    assert bakery.site == "bakery-north"
    assert bakery.status == COMPARED
    assert (bakery.baseline_from_ms, bakery.baseline_to_ms) == (
        local_ms(2025),
        local_ms(2025, 4, 1),
    )
    assert (bakery.year_from_ms, bakery.year_to_ms) == (local_ms(2026), NOW_MS)
    f = bakery.figures
    assert f.baseline_kwh == QUARTERS * 1.0 == 8636.0
    assert f.year_kwh == QUARTERS * 0.875 == 7556.5
    assert f.energy_change == -0.125
    assert f.energy_progress == pytest.approx(0.125 / 0.15)
    # 100 g/kWh: a tenth of a kg per kWh
    assert f.baseline_kg_co2 == pytest.approx(863.6)
    assert f.year_kg_co2 == pytest.approx(755.65)
    assert f.co2_change == pytest.approx(-0.125)
    assert f.co2_progress == pytest.approx(0.625)
    assert bakery.baseline_year_kwh == 35040.0
    assert (bakery.baseline_year_coverage, bakery.baseline_coverage, bakery.year_coverage) == (
        1.0,
        1.0,
        1.0,
    )
    assert bakery.verified_kwh_year is None

    f = office.figures
    assert (f.baseline_kwh, f.year_kwh, f.energy_change) == (17272.0, 19431.0, 0.125)
    assert f.energy_progress == pytest.approx(-0.125 / 0.15)  # moving away from the target
    # the CO2 series: the first hour of 2025 at 560 g/kWh, everything else at 60
    assert f.baseline_kg_co2 == pytest.approx(((QUARTERS - 4) * 2 * 60 + 4 * 2 * 560) / 1000)
    assert f.year_kg_co2 == pytest.approx(QUARTERS * 2.25 * 60 / 1000)
    assert f.co2_change == pytest.approx(1165.86 / 1040.32 - 1)

    assert late.status == NO_BASELINE
    assert "baseline year 2025 has data for 50 %" in late.note
    assert late.baseline_year_coverage == pytest.approx((184 * 96 + 4) / 35040)
    assert late.figures.year_kwh == QUARTERS
    assert late.figures.energy_change is None
    assert late.figures.energy_progress is None
    assert late.figures.co2_change is None


def test_the_total_and_the_sectors_sum_only_the_companies_compared(rig: Rig) -> None:
    report = programme_report(rig.reader, rig.sites, "aarhus-2030", 2026, NOW_MS)
    total = report.total
    assert total is not None
    assert (total.companies, total.compared) == (3, 2)
    assert total.figures is not None
    assert (total.figures.baseline_kwh, total.figures.year_kwh) == (25908.0, 26987.5)
    assert total.figures.energy_change == pytest.approx(1 / 24)
    assert total.figures.energy_progress == pytest.approx(-(1 / 24) / 0.15)
    assert total.figures.baseline_kg_co2 == pytest.approx(863.6 + 1040.32)
    assert total.figures.year_kg_co2 == pytest.approx(755.65 + 1165.86)
    sectors = {g.name: g for g in report.sectors}
    assert list(sectors) == ["bakery", "office"]
    assert (sectors["bakery"].companies, sectors["bakery"].compared) == (2, 1)
    assert sectors["bakery"].figures == report.companies[0].figures
    assert sectors["office"].figures is not None
    assert sectors["office"].figures.energy_change == 0.125


def test_verified_savings_come_from_the_hook_and_add_up(rig: Rig) -> None:
    found = {"bakery-north": (1200.0, 110.0), "late-bakery": (300.0, 20.0)}
    report = programme_report(
        rig.reader, rig.sites, "aarhus-2030", 2026, NOW_MS, verified=found.get
    )
    by_site = {c.site: (c.verified_kwh_year, c.verified_kg_co2_year) for c in report.companies}
    assert by_site == {
        "bakery-north": (1200.0, 110.0),
        "office-harbour": (None, None),
        "late-bakery": (300.0, 20.0),
    }
    assert report.total is not None
    assert (report.total.verified_kwh_year, report.total.verified_kg_co2_year) == (1500.0, 130.0)
    sectors = {g.name: g for g in report.sectors}
    assert sectors["office"].verified_kwh_year is None


def test_a_report_for_some_companies_has_no_total_or_sectors(rig: Rig) -> None:
    report = programme_report(
        rig.reader, rig.sites, "aarhus-2030", 2026, NOW_MS, only={"office-harbour"}
    )
    assert [c.site for c in report.companies] == ["office-harbour"]
    assert report.total is None
    assert report.sectors == []


def test_a_finished_year_is_compared_whole(rig: Rig) -> None:
    report = programme_report(rig.reader, rig.sites, "aarhus-2030", 2025, NOW_MS)
    assert report.complete
    bakery = report.companies[0]
    assert (bakery.year_from_ms, bakery.year_to_ms) == (local_ms(2025), local_ms(2026))
    assert bakery.baseline_to_ms == local_ms(2026)
    assert bakery.figures.baseline_kwh == bakery.figures.year_kwh == 35040.0
    assert bakery.figures.energy_change == 0.0


def test_a_programme_with_an_energy_target_only_has_no_co2_progress(rig: Rig) -> None:
    report = programme_report(rig.reader, rig.sites, "energy-only", 2026, NOW_MS)
    (office,) = report.companies
    assert office.figures.energy_progress == pytest.approx(-0.125 / 0.10)
    assert office.figures.co2_change is not None
    assert office.figures.co2_progress is None


def test_the_same_moment_of_29_february_is_1_march(rig: Rig) -> None:
    report = programme_report(rig.reader, rig.sites, "energy-only", 2028, local_ms(2028, 2, 29, 12))
    (office,) = report.companies
    assert office.baseline_to_ms == local_ms(2025, 3, 1)
    assert office.status == INCOMPLETE
    assert office.note == "2028 so far has data for 0 %"


@pytest.mark.parametrize(
    ("programme", "year", "message"),
    [
        ("aarhus-2030", 2024, "2024 is before the baseline year 2025"),
        ("aarhus-2030", 2027, "2027 has not begun yet"),
        ("nope", 2026, "no programme 'nope' in the sites file"),
    ],
)
def test_a_report_that_cannot_be_made_says_why(
    rig: Rig, programme: str, year: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        programme_report(rig.reader, rig.sites, programme, year, NOW_MS)


def test_a_gap_this_year_withholds_the_change(tmp_path: Path) -> None:
    sites = load_sites(sites_file(tmp_path, 2025))
    store = Store(tmp_path / "c.db")
    write_constant(store, "office-harbour", local_ms(2025), local_ms(2026), 2.0)
    write_constant(store, "office-harbour", local_ms(2026), local_ms(2026, 3, 1), 1.0)
    store.close()
    with Reader(tmp_path / "c.db") as reader:
        report = programme_report(reader, sites, "energy-only", 2026, NOW_MS)
    (office,) = report.companies
    assert office.status == INCOMPLETE
    assert office.year_coverage == pytest.approx(59 * 96 / QUARTERS)
    assert office.figures.energy_change is None
    assert report.total is not None
    assert report.total.figures is None


def test_sub_meters_are_left_out_as_in_every_site_total(tmp_path: Path) -> None:
    sites = load_sites(sites_file(tmp_path, 2025))
    store = Store(tmp_path / "c.db")
    write_constant(store, "office-harbour", local_ms(2025), NOW_MS, 2.0)
    grid = np.arange(local_ms(2025), NOW_MS, QUARTER_MS, dtype=np.int64)
    sub = EnergyHistory(grid, np.full(len(grid), 0.5), np.zeros(len(grid), bool), QUARTER_MS)
    write_energy(store, [MeterHistory("office-harbour", "gw1", "compressor", "test", sub)])
    store.close()
    with Reader(tmp_path / "c.db", ["office-harbour/compressor"]) as reader:
        listed = programme_report(reader, sites, "energy-only", 2026, NOW_MS)
    with Reader(tmp_path / "c.db") as reader:
        counted = programme_report(reader, sites, "energy-only", 2026, NOW_MS)
    assert listed.companies[0].figures.year_kwh == QUARTERS * 2.0
    assert counted.companies[0].figures.year_kwh == QUARTERS * 2.5


def test_the_csv_has_a_row_per_company_and_the_total(rig: Rig) -> None:
    report = programme_report(rig.reader, rig.sites, "aarhus-2030", 2026, NOW_MS)
    rows = list(csv.DictReader(io.StringIO(report_csv(report, rig.sites))))
    assert [r["Company"] for r in rows] == [
        "bakery-north",
        "office-harbour",
        "late-bakery",
        "Total",
    ]
    bakery, office, late, total = rows
    assert bakery["Energy baseline period (kWh)"] == "8636.000"
    assert bakery["Energy year (kWh)"] == "7556.500"
    assert bakery["Energy change (%)"] == "-12.50"
    assert bakery["Energy target (%)"] == "-15.0"
    assert bakery["Energy target progress (%)"] == "83.3"
    assert bakery["CO2 target progress (%)"] == "62.5"
    assert bakery["Year from"] == "2026-01-01 00:00"
    assert bakery["Baseline to (exclusive)"] == "2025-04-01 00:00"
    assert bakery["Verified savings energy (kWh/year)"] == ""
    assert office["Energy change (%)"] == "12.50"
    assert late["Status"].startswith("baseline year 2025 has data for 50 %")
    assert late["Energy change (%)"] == ""
    assert total["Status"] == "2 of 3 companies compared"
    assert total["Energy baseline period (kWh)"] == "25908.000"
    assert total["Energy change (%)"] == "4.17"
