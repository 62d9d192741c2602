"""Input contract, sufficiency rules and what a caller is told when a rule is not met."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from collector.verification import (
    DateRange,
    MeterData,
    VerificationError,
    fit_baseline,
    verify_savings,
)
from collector.verification.rows import interval_rows
from tests.collector.verification.synthetic import Grid, daily_temperature, grid

INSTALLED = dt.date(2025, 1, 1)
START = dt.date(2024, 1, 1)
REPORTING = DateRange(dt.date(2025, 1, 1), dt.date(2025, 12, 31))


def _meter(g: Grid, temperature: bool = True, seed: int = 0) -> MeterData:
    rng = np.random.default_rng(seed)
    temp = daily_temperature(g, seed)
    profile = rng.uniform(10, 30, 168)
    energy = profile[g.slot] * rng.normal(1, 0.05, len(g.slot)) + np.maximum(14 - temp, 0)
    return MeterData(g.start_ms, energy, temperature_c=temp if temperature else None)


@pytest.fixture(scope="module")
def two_years() -> Grid:
    return grid(START, 731)


def test_meter_data_refuses_a_grid_it_cannot_model() -> None:
    t = np.arange(10, dtype=np.int64) * 1_800_000
    with pytest.raises(VerificationError, match="regular 15- or 60-minute grid"):
        MeterData(t, np.ones(10))
    with pytest.raises(VerificationError, match="int64"):
        MeterData(t.astype(np.float64), np.ones(10))
    hourly = np.arange(10, dtype=np.int64) * 3_600_000
    with pytest.raises(VerificationError, match=r"energy_kwh must have shape \(10,\)"):
        MeterData(hourly, np.ones(9))
    with pytest.raises(VerificationError, match="must start on the hour"):
        MeterData(hourly + 900_000, np.ones(10))
    with pytest.raises(ValueError, match="ends before it starts"):
        DateRange(dt.date(2025, 2, 1), dt.date(2025, 1, 31))


def test_price_and_co2_must_lie_on_the_meters_grid(two_years: Grid) -> None:
    data = _meter(two_years, temperature=False)
    b = fit_baseline(data, INSTALLED)
    with pytest.raises(VerificationError, match="price_dkk_per_kwh must have one value"):
        verify_savings(b, data, REPORTING, price_dkk_per_kwh=np.ones(5))
    with pytest.raises(VerificationError, match="starts 2024-12-01, before the installation"):
        verify_savings(b, data, DateRange(dt.date(2024, 12, 1), dt.date(2025, 3, 1)))


def test_a_window_with_too_few_days_of_data_is_refused_with_the_figure(two_years: Grid) -> None:
    data = _meter(two_years, temperature=False)
    energy = data.energy_kwh.copy()
    # every 4th day of 2024 lost: 75 % of the window's days have data
    lost = (two_years.day % 4 == 0) & (two_years.day < (INSTALLED - dt.date(1970, 1, 1)).days)
    energy[lost] = np.nan
    b = fit_baseline(MeterData(data.start_ms, energy), INSTALLED)
    assert b.status == "insufficient_data"
    assert b.fit is None
    assert b.model is None
    assert b.attempts == ()
    assert b.reasons == (
        # the window starts on its first day with data: 2024-01-02 is one of the lost days
        "75% of the baseline window's 364 days have data (at least 90% "
        "needed; a day counts with 90% of its intervals)",
    )
    s = verify_savings(b, data, REPORTING)
    assert s.status == "baseline_failed"
    assert s.reasons[0] == "no savings claimed: the baseline is insufficient data"


def test_fewer_than_180_days_with_temperature_means_no_weather_model(two_years: Grid) -> None:
    data = _meter(two_years)
    temp = data.temperature_c
    assert temp is not None
    short = np.where(
        two_years.day < (dt.date(2024, 7, 20) - dt.date(1970, 1, 1)).days, np.nan, temp
    )
    b = fit_baseline(MeterData(data.start_ms, data.energy_kwh, temperature_c=short), INSTALLED)
    assert b.model == "time_of_week"
    assert b.model_reason.startswith("no weather model possible (outdoor temperature covers 45%")
    assert "165 days with energy and temperature (a weather model needs at least 180)" in (
        b.model_reason
    )


def test_a_weather_model_asked_for_without_temperature_is_refused(two_years: Grid) -> None:
    data = _meter(two_years, temperature=False)
    b = fit_baseline(data, INSTALLED, model="caltrack_hourly")
    assert b.status == "insufficient_data"
    assert b.reasons == ("caltrack_hourly: no outdoor temperature given",)
    assert b.model_reason == "caltrack_hourly model chosen by the caller"


def test_fewer_than_90_days_of_data_is_too_little_even_for_time_of_week() -> None:
    g = grid(dt.date(2024, 10, 15), 200)
    b = fit_baseline(_meter(g, temperature=False), INSTALLED)
    assert b.status == "insufficient_data"
    assert b.reasons == (
        "time_of_week: 78 days with data (the time-of-week model needs at least 90)",
    )


def test_a_short_reporting_period_claims_nothing_and_a_partial_year_warns(
    two_years: Grid,
) -> None:
    data = _meter(two_years, temperature=False)
    b = fit_baseline(data, INSTALLED)
    short = verify_savings(b, data, DateRange(dt.date(2025, 1, 1), dt.date(2025, 1, 20)))
    assert short.status == "insufficient_data"
    assert short.reasons == (
        "20.0 days of reporting data the model can predict (at least 30 needed)",
    )
    spring = verify_savings(b, data, DateRange(dt.date(2025, 3, 1), dt.date(2025, 5, 31)))
    assert spring.status == "ok"
    assert spring.warnings[0].startswith("per-year figures scale 92 days of data to 365")


def test_holidays_count_as_sundays_in_the_time_of_week_calendar(two_years: Grid) -> None:
    christmas = dt.date(2024, 12, 25)  # a Wednesday
    plain = _meter(two_years, temperature=False)
    with_holiday = MeterData(plain.start_ms, plain.energy_kwh, holidays=(christmas,))
    rows_plain = interval_rows(plain, 168)
    rows_hol = interval_rows(with_holiday, 168)
    on_day = rows_hol.day == (christmas - dt.date(1970, 1, 1)).days
    assert set(rows_plain.slot[on_day] // 24) == {2}
    assert set(rows_hol.slot[on_day] // 24) == {6}
    assert np.array_equal(rows_plain.slot[~on_day], rows_hol.slot[~on_day])
