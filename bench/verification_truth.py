"""Ground truth for verified savings: synthetic meters with known measure effects.

Each meter has a year of baseline and a year of reporting data. Its counterfactual load
(what it would have used without the measure) is base load + opening-hours load + heating
and cooling driven by a synthetic Danish outdoor temperature, times day-level and AR(1)
hourly noise. From the installation date a measure removes a known share of it:

- base_load: the base load 25 % lower
- lighting: 8 % of the energy used in opening hours
- none: a measure with no effect

The removed energy per interval is kept (`effect_kwh`), so the verified savings can be
scored against the truth. One site is too noisy for the Guideline 14 gates.

Run: .venv/bin/python bench/verification_truth.py   (scores the standard sites)
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import holidays
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.verification import (
    DateRange,
    MeterData,
    Savings,
    fit_baseline,
    verify_savings,
)

TZ = "Europe/Copenhagen"
HOUR_MS = 3_600_000
INSTALLED = dt.date(2025, 1, 1)
DATA_START = dt.date(2024, 1, 1)
DATA_DAYS = 731  # 2024 (leap) and 2025
# the works themselves: the first two weeks after installation are left out
REPORTING = DateRange(dt.date(2025, 1, 15), dt.date(2025, 12, 31), "reporting year")
BASE_LOAD_CUT = 0.25
LIGHTING_CUT = 0.08

Measure = Literal["base_load", "lighting", "none"]
Weather = Literal["none", "heating", "cooling", "both"]


@dataclass(frozen=True)
class MeterSpec:
    """One synthetic meter: its load, the measure, the noise, and what the caller is given."""

    name: str
    measure: Measure
    weather: Weather = "heating"
    give_temperature: bool = True
    step_minutes: Literal[15, 60] = 60
    base_kw: float = 20.0
    open_kw: float = 40.0
    heating_kw_per_k: float = 4.0  # below 15 C
    cooling_kw_per_k: float = 5.0  # above 18 C, opening hours only
    hour_noise: float = 0.06  # relative, AR(1) from hour to hour
    day_noise: float = 0.03  # relative, one factor per day
    data_start: dt.date = DATA_START
    # a non-routine event per period: extra load that the caller excludes by date
    events: tuple[DateRange, ...] = ()
    event_kw: float = 0.0
    seed: int = 0


@dataclass
class TruthMeter:
    spec: MeterSpec
    data: MeterData
    installed: dt.date
    reporting: DateRange
    effect_kwh: np.ndarray  # energy the measure removed, per interval
    expected_kwh_per_year: float  # the measure's nominal yearly saving
    price_dkk_per_kwh: np.ndarray
    co2_g_per_kwh: np.ndarray
    local_day: np.ndarray = field(repr=False)  # local day number of each interval

    def true_avoided_kwh(self, exclusions: tuple[DateRange, ...] = ()) -> float:
        """Injected savings over the reporting period's intervals that have data."""
        ok = np.isfinite(self.data.energy_kwh)
        ok &= self.local_day >= _day(self.reporting.start)
        ok &= self.local_day <= _day(self.reporting.end)
        for r in exclusions:
            ok &= (self.local_day < _day(r.start)) | (self.local_day > _day(r.end))
        return float(self.effect_kwh[ok].sum())


def _day(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


@lru_cache(maxsize=8)
def _grid(start: dt.date, days: int, step_minutes: int) -> tuple[np.ndarray, ...]:
    """UTC grid and local calendar (day, hour as float, weekday, day of year, holiday)."""
    t0 = pd.Timestamp(start).tz_localize(TZ).tz_convert("UTC")
    t1 = pd.Timestamp(start + dt.timedelta(days=days)).tz_localize(TZ).tz_convert("UTC")
    step = step_minutes * 60_000
    ms0 = int(t0.value // 1_000_000)
    n = int((t1.value - t0.value) // 1_000_000 // step)
    start_ms = ms0 + np.arange(n, dtype=np.int64) * step
    local = pd.DatetimeIndex(start_ms.astype("datetime64[ms]"), tz="UTC").tz_convert(TZ)
    local_ms = local.tz_localize(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    day = local_ms // 86_400_000
    hour = (local_ms - day * 86_400_000) / HOUR_MS
    weekday = (day + 3) % 7
    years = range(start.year, start.year + days // 365 + 2)
    hol = np.array([_day(d) for d in holidays.country_holidays("DK", years=years)])
    is_hol = np.isin(day, hol)
    doy = local.day_of_year.to_numpy()
    return start_ms, day, hour, weekday, doy, is_hol


def holiday_dates(start: dt.date, days: int) -> tuple[dt.date, ...]:
    years = range(start.year, start.year + days // 365 + 2)
    return tuple(sorted(holidays.country_holidays("DK", years=years)))


def temperature(day: np.ndarray, hour: np.ndarray, doy: np.ndarray, seed: int) -> np.ndarray:
    """Outdoor temperature in C: seasonal mean, AR(1) weather anomalies from day to day and
    a daily swing with its peak at 15:00."""
    rng = np.random.default_rng(1000 + seed)
    days = day - day[0]
    n_days = int(days[-1]) + 1
    anomaly = np.zeros(n_days)
    shocks = rng.normal(0.0, 2.0, n_days)
    for i in range(1, n_days):
        anomaly[i] = 0.8 * anomaly[i - 1] + shocks[i]
    seasonal = 8.5 - 8.5 * np.cos(2 * np.pi * (doy - 20) / 365.25)
    swing = 3.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
    out: np.ndarray = seasonal + anomaly[days] + swing
    return out


def make_meter(spec: MeterSpec, weather_seed: int = 0) -> TruthMeter:
    """Build one meter; sites sharing `weather_seed` share their outdoor temperature."""
    days = DATA_DAYS - (spec.data_start - DATA_START).days
    start_ms, day, hour, weekday, doy, is_hol = _grid(spec.data_start, days, spec.step_minutes)
    rng = np.random.default_rng(spec.seed)
    step_h = spec.step_minutes / 60
    temp = temperature(day, hour, doy, weather_seed)
    open_ = (weekday < 5) & ~is_hol & (hour >= 7) & (hour < 17)
    base = np.full(len(day), spec.base_kw)
    heat = np.zeros(len(day))
    cool = np.zeros(len(day))
    if spec.weather in ("heating", "both"):
        heat = spec.heating_kw_per_k * np.maximum(15.0 - temp, 0.0) * np.where(open_, 1.0, 0.6)
    if spec.weather in ("cooling", "both"):
        cool = spec.cooling_kw_per_k * np.maximum(temp - 18.0, 0.0) * open_
    days_idx = day - day[0]
    day_factor = 1.0 + rng.normal(0.0, spec.day_noise, int(days_idx[-1]) + 1)[days_idx]
    phi = 0.5
    shocks = rng.normal(0.0, spec.hour_noise * np.sqrt(1 - phi**2), len(day))
    ar = np.zeros(len(day))
    for i in range(1, len(day)):
        ar[i] = phi * ar[i - 1] + shocks[i]
    noise = np.clip(day_factor * (1.0 + ar), 0.05, None) * step_h
    kw = base + spec.open_kw * open_ + heat + cool
    counterfactual = kw * noise
    for ev in spec.events:
        inside = (day >= _day(ev.start)) & (day <= _day(ev.end))
        counterfactual = counterfactual + inside * spec.event_kw * step_h
    after = day >= _day(INSTALLED)
    if spec.measure == "base_load":
        effect = after * BASE_LOAD_CUT * base * noise
        expected = BASE_LOAD_CUT * spec.base_kw * 8760
    elif spec.measure == "lighting":
        effect = after * open_ * LIGHTING_CUT * kw * noise
        expected = LIGHTING_CUT * float((kw * open_ * after).sum() * step_h)
    else:
        effect = np.zeros(len(day))
        expected = 0.0
    metered = counterfactual - effect
    # about 1 % of hours missing, in whole hours
    hour_key = (start_ms - start_ms[0]) // HOUR_MS
    lost = rng.random(int(hour_key[-1]) + 1) < 0.01
    metered = np.where(lost[hour_key], np.nan, metered)
    price = 1.2 + 0.6 * ((hour >= 17) & (hour < 21)) + 0.3 * np.sin(2 * np.pi * doy / 365.25)
    co2 = 90.0 + 50.0 * np.cos(2 * np.pi * (hour - 18) / 24) + 30 * np.cos(2 * np.pi * doy / 365)
    data = MeterData(
        start_ms=start_ms,
        energy_kwh=metered,
        temperature_c=temp if spec.give_temperature else None,
        holidays=holiday_dates(spec.data_start, days),
        meter=spec.name,
    )
    return TruthMeter(
        spec=spec,
        data=data,
        installed=INSTALLED,
        reporting=REPORTING,
        effect_kwh=effect,
        expected_kwh_per_year=expected,
        price_dkk_per_kwh=price,
        co2_g_per_kwh=co2,
        local_day=day,
    )


def standard_specs() -> list[MeterSpec]:
    """The sites the tests score: weather and time-of-week models, each measure, a short
    baseline, a load that ignores the weather, excluded events, and one noisy site."""
    shutdown = DateRange(dt.date(2024, 6, 10), dt.date(2024, 6, 21), "roof works")
    trial = DateRange(dt.date(2025, 9, 1), dt.date(2025, 9, 14), "test run of a new line")
    return [
        MeterSpec("office-heat-baseload", "base_load", seed=1),
        MeterSpec("shop-both-lighting", "lighting", weather="both", step_minutes=15, seed=2),
        MeterSpec("workshop-heat-none", "none", seed=3),
        MeterSpec(
            "store-heat-events",
            "base_load",
            events=(shutdown, trial),
            event_kw=30.0,
            seed=4,
        ),
        MeterSpec("short-baseline-heat", "base_load", data_start=dt.date(2024, 5, 1), seed=5),
        MeterSpec("process-baseload", "base_load", weather="none", give_temperature=False, seed=6),
        MeterSpec(
            "process-lighting",
            "lighting",
            weather="none",
            give_temperature=False,
            step_minutes=15,
            seed=7,
        ),
        MeterSpec("process-none", "none", weather="none", give_temperature=False, seed=11),
        MeterSpec("flat-with-temperature", "base_load", weather="none", seed=9),
        MeterSpec("noisy-heat", "base_load", hour_noise=0.7, day_noise=0.45, seed=10),
    ]


def verify(meter: TruthMeter, exclusions: tuple[DateRange, ...] = ()) -> Savings:
    """Fit the baseline and verify the reporting year as a caller would."""
    baseline = fit_baseline(meter.data, meter.installed, exclusions=exclusions)
    return verify_savings(
        baseline,
        meter.data,
        meter.reporting,
        price_dkk_per_kwh=meter.price_dkk_per_kwh,
        co2_g_per_kwh=meter.co2_g_per_kwh,
        expected_kwh_per_year=meter.expected_kwh_per_year or None,
    )


def portfolio_meter(index: int, seed: int = 0) -> TruthMeter:
    """Meter `index` of a random portfolio: 70 % with outdoor temperature and a heating
    load, 30 % without either; the measure, loads and noise drawn per meter."""
    rng = np.random.default_rng([seed, index])
    measures: tuple[Measure, ...] = ("base_load", "lighting", "none")
    with_temp = bool(rng.random() < 0.7)
    weather: Weather = "heating" if with_temp else "none"
    spec = MeterSpec(
        f"m{index:04d}",
        measures[int(rng.integers(3))],
        weather=weather,
        give_temperature=with_temp,
        base_kw=float(rng.uniform(5, 50)),
        open_kw=float(rng.uniform(10, 80)),
        heating_kw_per_k=float(rng.uniform(0.5, 5)),
        hour_noise=float(rng.uniform(0.03, 0.12)),
        day_noise=float(rng.uniform(0.01, 0.05)),
        seed=seed * 100_000 + index,
    )
    return make_meter(spec, weather_seed=index % 5)


def portfolio(n: int, seed: int = 0) -> Iterator[TruthMeter]:
    """The first `n` meters of portfolio `seed`."""
    for i in range(n):
        yield portfolio_meter(i, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    print(f"{'meter':24} {'model':16} {'status':16} {'truth':>9} {'verified':>9} {'+/-90%':>8}")
    for spec in standard_specs():
        meter = make_meter(spec)
        ex = spec.events
        s = verify(meter, ex)
        truth = meter.true_avoided_kwh(ex)
        f = s.figures
        got = f"{f.avoided_kwh:9.0f} {f.uncertainty_kwh:8.0f}" if f else f"{'-':>9} {'-':>8}"
        print(f"{spec.name:24} {s.model or '-':16} {s.status:16} {truth:9.0f} {got}")
        for r in s.reasons[:2]:
            print(f"{'':26}{r}")


if __name__ == "__main__":
    main()
