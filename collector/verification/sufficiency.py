"""Data sufficiency of a baseline window: which days and months have data, and which models
that allows, with one line per rule a model's data does not meet."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import numpy as np

from collector.verification.inputs import DateRange
from collector.verification.rows import Rows, day_date, day_number, in_ranges
from collector.verification.rules import Rules


@dataclass(frozen=True)
class Sufficiency:
    """What the baseline window holds; figures behind the sufficiency rules."""

    window_start: dt.date  # first day used: the window start or the first day with data
    window_end: dt.date  # the day before installation
    days_in_window: int  # days from window_start to window_end outside excluded periods
    days_with_data: int
    coverage: float  # days_with_data / days_in_window
    days_with_temperature: int  # days with data that also have a daily mean temperature
    temperature_coverage: float | None  # of the days with data; None without temperature
    month_hour_coverage: tuple[float, ...]  # Jan..Dec: hours with energy and temperature


def window_days(installed: dt.date, rules: Rules) -> tuple[int, int]:
    """First and last local day number of the nominal baseline window."""
    last = day_number(installed) - 1
    return last - rules.baseline_days + 1, last


def assess(
    daily: Rows,
    hourly: Rows | None,
    installed: dt.date,
    exclusions: tuple[DateRange, ...],
    rules: Rules,
) -> Sufficiency:
    """Count the baseline window's days and hours with data."""
    first, last = window_days(installed, rules)
    in_win = (daily.day >= first) & (daily.day <= last) & ~in_ranges(daily.day, exclusions)
    has = in_win & np.isfinite(daily.energy_kwh)
    first = max(first, int(daily.day[has].min()) if has.any() else int(daily.day[0]))
    in_win &= daily.day >= first
    n_days = int(in_win.sum())
    n_data = int(has.sum())
    temp_days = 0
    temp_share: float | None = None
    if daily.temperature_c is not None:
        temp_days = int((has & np.isfinite(daily.temperature_c)).sum())
        temp_share = temp_days / n_data if n_data else 0.0
    months = tuple([0.0] * 12)
    if hourly is not None and hourly.temperature_c is not None:
        h_win = (hourly.day >= first) & (hourly.day <= last)
        h_win &= ~in_ranges(hourly.day, exclusions)
        h_ok = h_win & np.isfinite(hourly.energy_kwh) & np.isfinite(hourly.temperature_c)
        total = np.bincount(hourly.month[h_win], minlength=12)
        good = np.bincount(hourly.month[h_ok], minlength=12)
        months = tuple(float(g / t) if t else 0.0 for g, t in zip(good, total, strict=True))
    return Sufficiency(
        window_start=day_date(first),
        window_end=day_date(last),
        days_in_window=n_days,
        days_with_data=n_data,
        coverage=n_data / n_days if n_days else 0.0,
        days_with_temperature=temp_days,
        temperature_coverage=temp_share,
        month_hour_coverage=months,
    )


def window_problems(s: Sufficiency, rules: Rules) -> list[str]:
    """Rules every model shares: the window must be mostly covered."""
    if s.days_in_window == 0:
        return [f"no data in the baseline window before {s.window_end + dt.timedelta(days=1)}"]
    if s.coverage < rules.window_min_coverage:
        return [
            f"{s.coverage:.0%} of the baseline window's {s.days_in_window} days have data "
            f"(at least {rules.window_min_coverage:.0%} needed; a day counts with "
            f"{rules.day_min_coverage:.0%} of its intervals)"
        ]
    return []


def weather_problems(s: Sufficiency, rules: Rules) -> list[str]:
    """Why no weather model can be fitted (temperature coverage, length)."""
    out = []
    if s.temperature_coverage is None:
        return ["no outdoor temperature given"]
    if s.temperature_coverage < rules.min_temperature_coverage:
        out.append(
            f"outdoor temperature covers {s.temperature_coverage:.0%} of the days with data "
            f"(at least {rules.min_temperature_coverage:.0%} needed)"
        )
    if s.days_with_temperature < rules.min_days_weather:
        out.append(
            f"{s.days_with_temperature} days with energy and temperature "
            f"(a weather model needs at least {rules.min_days_weather})"
        )
    return out


def hourly_problems(s: Sufficiency, rules: Rules) -> list[str]:
    """Why the hourly weather model cannot be used: a calendar month short of hours."""
    short = [
        f"{calendar.month_abbr[i + 1]} {c:.0%}"
        for i, c in enumerate(s.month_hour_coverage)
        if c < rules.month_min_hour_coverage
    ]
    if not short:
        return []
    return [
        "hourly model needs every calendar month with at least "
        f"{rules.month_min_hour_coverage:.0%} of its hours: " + ", ".join(short)
    ]


def time_of_week_problems(s: Sufficiency, rules: Rules) -> list[str]:
    if s.days_with_data < rules.min_days_time_of_week:
        return [
            f"{s.days_with_data} days with data (the time-of-week model needs at least "
            f"{rules.min_days_time_of_week})"
        ]
    return []
