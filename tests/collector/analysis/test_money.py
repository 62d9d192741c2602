"""Tariff bands, seasons, holidays, payback and the 'rentabel' rule."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collector.analysis.co2 import co2_per_interval
from collector.analysis.findings import Finding
from collector.analysis.frame import Frame
from collector.analysis.localtime import local_calendar
from collector.analysis.money import (
    band_of,
    grid_rate,
    is_rentabel,
    price_per_kwh,
    simple_payback,
    spot_price,
)
from collector.analysis.opportunities import to_opportunity
from collector.analysis.series import MeterSeries
from collector.analysis.site_context import Co2, SiteContext
from sparwatt.errors import SiteConfigError

CTX = SiteContext()


def utc_ms(local: str) -> np.ndarray:
    ts = pd.Timestamp(local).tz_localize("Europe/Copenhagen").tz_convert("UTC")
    return np.array([ts.value // 1_000_000], dtype=np.int64)


@pytest.mark.parametrize(
    ("local", "band"),
    [
        ("2025-01-15 00:00", "lavlast"),
        ("2025-01-15 05:45", "lavlast"),
        ("2025-01-15 06:00", "hoejlast"),
        ("2025-01-15 16:45", "hoejlast"),
        ("2025-01-15 17:00", "spidslast"),
        ("2025-01-15 20:45", "spidslast"),
        ("2025-01-15 21:00", "hoejlast"),
        ("2025-07-15 17:00", "spidslast"),  # summer time: 15:00 UTC
        ("2025-07-15 23:45", "hoejlast"),
    ],
)
def test_band_follows_local_wall_clock(local: str, band: str) -> None:
    cal = local_calendar(utc_ms(local), CTX.timezone)
    assert ("lavlast", "hoejlast", "spidslast")[int(band_of(cal, CTX)[0])] == band


def test_winter_and_summer_rates_differ_by_month() -> None:
    t = CTX.grid_tariff
    jan = grid_rate(local_calendar(utc_ms("2025-01-15 18:00"), CTX.timezone), CTX)[0]
    jul = grid_rate(local_calendar(utc_ms("2025-07-15 18:00"), CTX.timezone), CTX)[0]
    oct_ = grid_rate(local_calendar(utc_ms("2025-10-01 18:00"), CTX.timezone), CTX)[0]
    apr = grid_rate(local_calendar(utc_ms("2025-04-01 18:00"), CTX.timezone), CTX)[0]
    assert jan == oct_ == t.winter.spidslast
    assert jul == apr == t.summer.spidslast
    assert jan > jul


def test_price_is_energy_taxes_and_grid_tariff() -> None:
    ctx = SiteContext(
        energy_price={
            "spot_dkk_per_kwh": 1.0,
            "supplier_margin_dkk_per_kwh": 0.1,
            "taxes_dkk_per_kwh": 0.5,
        }
    )
    ms = utc_ms("2025-01-15 03:00")
    cal = local_calendar(ms, ctx.timezone)
    assert price_per_kwh(cal, ctx, ms)[0] == pytest.approx(1.6 + ctx.grid_tariff.winter.lavlast)


def test_hourly_spot_prices_replace_the_flat_spot_where_the_file_has_the_hour(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "spot.csv"
    # Energinet's HourUTC has no offset: taken as UTC
    csv.write_text("ts,dkk_per_kwh\n2025-01-15T10:00:00,2.5\n2025-01-15T11:00:00Z,-0.1\n")
    ctx = SiteContext(
        energy_price={
            "spot_dkk_per_kwh": 1.0,
            "spot_hourly_csv": csv,
            "supplier_margin_dkk_per_kwh": 0.1,
            "taxes_dkk_per_kwh": 0.5,
        }
    )
    ms = utc_ms("2025-01-15 11:15")[0] + np.arange(8, dtype=np.int64) * 900_000  # 10:15 UTC
    grid = grid_rate(local_calendar(ms, ctx.timezone), ctx)
    price = price_per_kwh(local_calendar(ms, ctx.timezone), ctx, ms) - grid
    assert list(np.round(price, 6)) == [3.1, 3.1, 3.1, 0.5, 0.5, 0.5, 0.5, 1.6]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ts,price\n2025-01-15T10:00:00Z,1\n", "needs exactly the columns ts,dkk_per_kwh"),
        ("ts,dkk_per_kwh\n2025-01-15T10:00:00Z,cheap\n", "bad row in spot price CSV"),
        ("ts,dkk_per_kwh\nyesterday,1\n", "bad row in spot price CSV"),
        ("ts,dkk_per_kwh\n2025-01-15T10:00:00Z,nan\n", "not a finite number"),
    ],
)
def test_a_bad_spot_price_file_names_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    csv = tmp_path / "spot.csv"
    csv.write_text(text)
    ctx = SiteContext(energy_price={"spot_hourly_csv": csv})
    with pytest.raises(SiteConfigError) as err:
        spot_price(utc_ms("2025-01-15 11:15"), ctx)
    assert str(csv) in str(err.value)
    assert problem in str(err.value)


def _frame(start: str, days: int, ctx: SiteContext) -> Frame:
    t0 = utc_ms(start)[0]
    n = days * 96 - 4  # spans the days without running into the next one's first hour
    ms = t0 + np.arange(n, dtype=np.int64) * 900_000
    return Frame(MeterSeries("s", "m", "main", ms, np.ones(n)), ctx)


def test_public_holidays_and_closures_are_special_days() -> None:
    ctx = SiteContext(
        closures=[{"start": dt.date(2025, 12, 29), "end": dt.date(2025, 12, 30)}],
        holidays={"extra": [dt.date(2025, 12, 24)]},
    )
    fr = _frame("2025-12-22 00:00", 10, ctx)
    special = {str(d) for d in fr.cal.dates()[fr.special_day]}
    assert special == {"2025-12-24", "2025-12-25", "2025-12-26", "2025-12-29", "2025-12-30"}
    # Christmas Day is a Thursday: no opening hours although Thursday is a working day
    assert not fr.open_[fr.cal.day == 3].any()
    assert fr.open_[fr.cal.day == 0].any()


def test_optional_danish_days_come_with_the_optional_category() -> None:
    ctx = SiteContext(holidays={"categories": ["public", "optional"]})
    fr = _frame("2025-06-04 00:00", 2, ctx)
    assert [str(d) for d in fr.cal.dates()[fr.special_day]] == ["2025-06-05"]  # Grundlovsdag


def test_holidays_kept_as_sunday_use_sunday_hours() -> None:
    ctx = SiteContext(holidays={"treat_as": "sunday"}, opening_hours={"sun": ["10:00-16:00"]})
    fr = _frame("2025-12-25 00:00", 1, ctx)
    assert not fr.special_day.any()
    assert fr.day_weekday[0] == 6
    assert fr.open_.sum() == 24  # 10-16 like a Sunday


def test_payback_and_rentabel_rule() -> None:
    assert simple_payback(10_000, 2_500) == 4
    assert simple_payback(10_000, 0) == math.inf
    assert is_rentabel(4, lifetime_years=5, company_limit=None)
    assert not is_rentabel(6, lifetime_years=5, company_limit=None)
    assert not is_rentabel(4, lifetime_years=10, company_limit=3)
    assert not is_rentabel(math.inf, lifetime_years=10, company_limit=None)


def _finding(kind: str, dkk: float, size: float = 0.0) -> Finding:
    return Finding(
        "s",
        "m",
        kind,
        0,
        1,
        annual_kwh=1000,
        annual_dkk=dkk,
        annual_kg_co2=60,
        confidence=0.9,
        size=size,
    )


def test_opportunity_takes_measure_table_and_site_override() -> None:
    opp = to_opportunity(_finding("power_factor", 5_000, size=40), CTX, now_ms=7)
    assert opp.investment_dkk == 15_000 + 350 * 40
    assert opp.lifetime_years == 15
    assert opp.payback_years == pytest.approx(29_000 / 5_000)
    assert opp.rentabel
    ctx = SiteContext(
        measures={"power_factor": {"lifetime_years": 4}}, payback={"company_limit_years": 3}
    )
    tight = to_opportunity(_finding("power_factor", 5_000, size=40), ctx, now_ms=7)
    assert tight.lifetime_years == 4
    assert not tight.rentabel
    assert tight.first_seen_ms == tight.last_seen_ms == 7


def test_hourly_co2_series_overrides_the_yearly_factor(tmp_path: Path) -> None:
    csv = tmp_path / "co2.csv"
    csv.write_text("ts,g_per_kwh\n2025-01-15T10:00:00Z,120\n2025-01-15T11:00:00Z,30\n")
    ms = utc_ms("2025-01-15 11:15")[0] + np.arange(8, dtype=np.int64) * 900_000  # 10:15 UTC
    g = co2_per_interval(ms, Co2(g_per_kwh=60, hourly_csv=csv))
    assert list(g) == [120, 120, 120, 30, 30, 30, 30, 60]


def test_a_15_minute_spot_series_prices_each_quarter_and_an_edited_file_is_read_again(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "spot.csv"
    csv.write_text(
        "ts,dkk_per_kwh\n2025-10-15T10:00:00Z,1.0\n2025-10-15T10:15:00Z,2.0\n"
        "2025-10-15T10:45:00Z,4.0\n"
    )
    ctx = SiteContext(energy_price={"spot_dkk_per_kwh": 0.5, "spot_hourly_csv": csv})
    ms = utc_ms("2025-10-15 12:00")[0] + np.arange(5, dtype=np.int64) * 900_000  # 10:00 UTC
    assert list(spot_price(ms, ctx)) == [1.0, 2.0, 0.5, 4.0, 0.5]  # 10:30, 11:00 not in it
    csv.write_text(csv.read_text() + "2025-10-15T10:30:00Z,3.0\n2025-10-15T11:00:00Z,5.0\n")
    assert list(spot_price(ms, ctx)) == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ts,dkk_per_kwh\n2025-01-15T10:00:00Z\n", "bad row in spot price CSV"),
        (
            "ts,dkk_per_kwh\n2025-01-15T10:00:00Z,1\n2025-01-15T10:07:00Z,1\n",
            "row 3 does not start on a quarter hour",
        ),
    ],
)
def test_a_short_row_or_an_odd_time_in_a_spot_file_is_a_config_error(
    tmp_path: Path, text: str, problem: str
) -> None:
    csv = tmp_path / "spot.csv"
    csv.write_text(text)
    with pytest.raises(SiteConfigError, match=problem):
        spot_price(utc_ms("2025-01-15 11:15"), SiteContext(energy_price={"spot_hourly_csv": csv}))


def test_a_spot_file_that_goes_from_hourly_to_15_minute_rows_prices_every_quarter(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "spot.csv"
    csv.write_text(
        "ts,dkk_per_kwh\n2025-09-30T22:00:00Z,1.0\n2025-09-30T23:00:00Z,2.0\n"
        "2025-10-01T00:00:00Z,3.0\n2025-10-01T00:15:00Z,4.0\n"
    )
    ctx = SiteContext(energy_price={"spot_dkk_per_kwh": 9.0, "spot_hourly_csv": csv})
    start = int(pd.Timestamp("2025-09-30T22:00:00Z").value // 1_000_000)
    ms = start + np.arange(11, dtype=np.int64) * 900_000
    assert list(spot_price(ms, ctx)) == [1.0] * 4 + [2.0] * 4 + [3.0, 4.0, 9.0]
