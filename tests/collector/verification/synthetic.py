"""Small hand-made meters for the model tests: a local-time grid and its calendar."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

TZ = "Europe/Copenhagen"


@dataclass(frozen=True)
class Grid:
    start_ms: np.ndarray
    day: np.ndarray  # local day number
    hour: np.ndarray  # local hour 0..23
    quarter: np.ndarray  # local quarter-hour of the day 0..95
    weekday: np.ndarray  # Mon = 0

    @property
    def slot(self) -> np.ndarray:
        return self.weekday * 24 + self.hour


def grid(start: dt.date, days: int, step_minutes: int = 60) -> Grid:
    t0 = pd.Timestamp(start).tz_localize(TZ).tz_convert("UTC")
    t1 = pd.Timestamp(start + dt.timedelta(days=days)).tz_localize(TZ).tz_convert("UTC")
    step = step_minutes * 60_000
    n = int((t1.value - t0.value) // 1_000_000 // step)
    start_ms = int(t0.value // 1_000_000) + np.arange(n, dtype=np.int64) * step
    local = pd.DatetimeIndex(start_ms.astype("datetime64[ms]"), tz="UTC").tz_convert(TZ)
    ms = local.tz_localize(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    day = ms // 86_400_000
    minute = (ms - day * 86_400_000) // 60_000
    return Grid(start_ms, day, minute // 60, minute // 15, (day + 3) % 7)


def daily_temperature(g: Grid, seed: int = 0) -> np.ndarray:
    """A seasonal temperature with day-to-day weather, constant within each day."""
    rng = np.random.default_rng(seed)
    d = g.day - g.day[0]
    n = int(d[-1]) + 1
    t = 8.5 - 9.0 * np.cos(2 * np.pi * (np.arange(n) + 10) / 365.25) + rng.normal(0, 3, n)
    out: np.ndarray = t[d]
    return out
