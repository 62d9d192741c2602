"""Synthetic weekly-pattern energy data shared by the alert tests (holds no tests itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from collector.alerts.lifecycle import AlertState, advance
from collector.alerts.model import Condition, IntervalGrid, MeterKey, Severity
from collector.alerts.notification import Notification

TZ = ZoneInfo("Europe/Copenhagen")
STEP = 900
DAY_KW = 10.0  # weekdays 08-17 local
NIGHT_KW = 2.0  # weekday nights
WEEKEND_KW = 1.0
NOISE_KWH = 0.05


def pattern_kwh(starts_s: np.ndarray) -> np.ndarray:
    """Expected kWh per 15-minute interval for each interval start (local working hours)."""
    out = np.empty(len(starts_s))
    for i, ts in enumerate(starts_s.tolist()):
        local = datetime.fromtimestamp(ts, TZ)
        if local.weekday() >= 5:
            kw = WEEKEND_KW
        elif 8 <= local.hour < 17:
            kw = DAY_KW
        else:
            kw = NIGHT_KW
        out[i] = kw * STEP / 3600
    return out


def weekly_grid(
    meters: list[MeterKey], start: datetime, end: datetime, seed: int = 1
) -> IntervalGrid:
    """Every meter follows the weekly pattern plus a little Gaussian noise."""
    n = int((end - start).total_seconds()) // STEP
    starts = int(start.timestamp()) + STEP * np.arange(n)
    base = pattern_kwh(starts)
    rng = np.random.default_rng(seed)
    energy = base[None, :] + rng.normal(0.0, NOISE_KWH, size=(len(meters), n))
    return IntervalGrid(tuple(meters), start, np.maximum(energy, 0.0), STEP)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def window(grid: IntervalGrid, start: datetime, end: datetime) -> IntervalGrid:
    """Columns of `grid` in [start, end)."""
    first = int((start - grid.start).total_seconds()) // grid.step_s
    last = int((end - grid.start).total_seconds()) // grid.step_s
    return IntervalGrid(grid.meters, start, grid.energy_kwh[:, first:last].copy(), grid.step_s)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def notification(site: str = "s1") -> Notification:
    cond = Condition(
        {"alertname": "meter_silent", "site": site, "meter": "m1"},
        Severity.WARNING,
        "m1 at s1 has sent no reading for 31 min",
        {"silent_min": 31},
    )
    (n,) = advance(AlertState(), [cond], datetime(2025, 5, 6, 12, tzinfo=UTC)).notifications
    return n
