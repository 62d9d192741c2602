"""Each baseline model recovers a load it can represent exactly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from collector.verification import DailyModel, HourlyModel, MeterData, TimeOfWeekModel, fit_baseline
from collector.verification.hourly import merge_bins, temperature_features
from collector.verification.rules import DEFAULT_RULES, f_to_c
from tests.collector.verification.synthetic import daily_temperature, grid

INSTALLED = dt.date(2025, 1, 1)
START = dt.date(2024, 1, 1)


@pytest.mark.parametrize(
    ("t_f", "features_f"),
    [  # CalTRACK 3.9.2's table, in F
        (20, [20, 0, 0, 0, 0, 0, 0]),
        (40, [30, 10, 0, 0, 0, 0, 0]),
        (50, [30, 15, 5, 0, 0, 0, 0]),
        (60, [30, 15, 10, 5, 0, 0, 0]),
        (70, [30, 15, 10, 10, 5, 0, 0]),
        (80, [30, 15, 10, 10, 10, 5, 0]),
        (100, [30, 15, 10, 10, 10, 15, 10]),
    ],
)
def test_temperature_features_reproduce_the_caltrack_table_in_celsius(
    t_f: float, features_f: list[float]
) -> None:
    ends = np.asarray(DEFAULT_RULES.bin_endpoints_c)
    got = temperature_features(np.array([f_to_c(t_f)]), ends)[0]
    # the first feature is a temperature (offset by 32 F), the others are differences
    want = np.array(features_f) * 5 / 9
    want[0] = f_to_c(features_f[0])
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_short_temperature_bins_merge_upwards_and_the_top_bin_downwards() -> None:
    temps = np.concatenate((np.full(5, -5.0), np.full(100, 10.0), np.full(30, 20.0)))
    ends = merge_bins(temps, DEFAULT_RULES.bin_endpoints_c, 20)
    np.testing.assert_allclose(ends, [f_to_c(55)])


def test_daily_model_finds_the_balance_points_and_slopes() -> None:
    g = grid(START, 731)
    temp = daily_temperature(g, seed=3)
    weekday_kwh = np.array([500, 500, 500, 500, 480, 200, 150.0])
    per_day = (
        weekday_kwh[g.weekday]
        + 12.0 * np.maximum(13.0 - temp, 0.0)
        + 20.0 * np.maximum(temp - 19.0, 0.0)
    )
    energy = per_day / 24.0
    data = MeterData(g.start_ms, energy, temperature_c=temp)
    b = fit_baseline(data, INSTALLED, model="caltrack_daily")
    assert b.ok
    m = b.fitted
    assert isinstance(m, DailyModel)
    assert m.kind == "hdd_cdd"
    assert m.heating_balance_c == pytest.approx(13.0)
    assert m.cooling_balance_c == pytest.approx(19.0)
    assert m.heating_kwh_per_degree_day == pytest.approx(12.0, rel=1e-3)
    assert m.cooling_kwh_per_degree_day == pytest.approx(20.0, rel=1e-3)
    # DST days have 23 and 25 hours: their totals differ a little from the weekday's
    np.testing.assert_allclose(m.intercepts_kwh, weekday_kwh, rtol=0.01)
    assert b.fit is not None
    assert b.fit.p == 7 + 4  # intercepts, two slopes, two balance points


def test_daily_model_without_a_weather_slope_keeps_the_weekday_intercepts() -> None:
    g = grid(START, 731)
    rng = np.random.default_rng(5)
    weekday_kwh = np.array([300, 300, 300, 300, 300, 100, 100.0])
    day_noise = rng.normal(0, 0.02, int(g.day[-1] - g.day[0]) + 1)[g.day - g.day[0]]
    energy = weekday_kwh[g.weekday] * (1 + day_noise) / 24.0
    data = MeterData(g.start_ms, energy, temperature_c=daily_temperature(g, seed=4))
    b = fit_baseline(data, INSTALLED, model="caltrack_daily")
    assert isinstance(b.fitted, DailyModel)
    # a chance slope can qualify; if it does it must be small
    if b.fitted.weather_dependent:
        assert b.fitted.heating_kwh_per_degree_day < 2.0
    else:
        assert b.fitted.kind == "intercept_only"


def test_hourly_model_is_exact_on_a_load_it_can_represent() -> None:
    g = grid(START, 731)
    rng = np.random.default_rng(1)
    temp = daily_temperature(g, seed=1) + 3 * np.sin(2 * np.pi * (g.hour - 9) / 24)
    profile = rng.uniform(10, 50, 168)
    knee = f_to_c(55)  # a bin endpoint: the piecewise-linear features hold this kink exactly
    energy = profile[g.slot] + 3.0 * np.maximum(knee - temp, 0.0)
    data = MeterData(g.start_ms, energy, temperature_c=temp)
    b = fit_baseline(data, INSTALLED)
    assert b.model == "caltrack_hourly"
    assert isinstance(b.fitted, HourlyModel)
    assert b.fit is not None
    assert b.fit.cvrmse < 1e-9
    assert len(b.fitted.segments) == 12
    # a year of hours, twelve segments of 168 hours of week plus temperature slopes each
    assert 12 * 168 / 2 < b.fit.p < 12 * 190


def test_time_of_week_model_recovers_the_profile_and_the_driver_slope() -> None:
    g = grid(START, 731)
    rng = np.random.default_rng(2)
    profile = rng.uniform(5, 30, 168)
    driver = rng.uniform(0, 10, len(g.start_ms))
    energy = profile[g.slot] + 0.5 * driver
    data = MeterData(g.start_ms, energy, driver=driver)
    b = fit_baseline(data, INSTALLED)
    assert b.model == "time_of_week"
    assert b.model_reason == "no outdoor temperature given: time-of-week model"
    m = b.fitted
    assert isinstance(m, TimeOfWeekModel)
    assert m.driver_kwh_per_unit == pytest.approx(0.5)
    np.testing.assert_allclose(m.alpha_kwh, profile, atol=1e-9)
    assert b.fit is not None
    assert b.fit.p == 169


def test_quarter_hour_time_of_week_model_has_672_slots() -> None:
    g = grid(START, 731, step_minutes=15)
    rng = np.random.default_rng(3)
    profile = rng.uniform(1, 5, 672)
    slot = g.weekday * 96 + g.quarter
    data = MeterData(g.start_ms, profile[slot])
    b = fit_baseline(data, INSTALLED, tow_slots=672)
    assert isinstance(b.fitted, TimeOfWeekModel)
    assert b.fitted.slots == 672
    assert b.fit is not None
    assert b.fit.resolution == "quarter-hour"
    np.testing.assert_allclose(b.fitted.alpha_kwh, profile, atol=1e-9)
    hourly = MeterData(grid(START, 731).start_ms, np.ones(len(grid(START, 731).start_ms)))
    fallback = fit_baseline(hourly, INSTALLED, tow_slots=672)
    assert fallback.tow_slots == 168
    assert "672 slots need 15-minute data" in fallback.model_reason
