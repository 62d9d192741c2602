"""Local wall-clock features of a UTC interval grid: weekday, quarter-hour, local day."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparwatt.timeutil import DAY_MS, QUARTER_MS

_CACHE: dict[tuple[str, int, int], LocalCalendar] = {}
_CACHE_MAX = 16


@dataclass(frozen=True)
class LocalCalendar:
    """Per-interval local-time features; day-level arrays are indexed by `day`."""

    tz: str
    day: np.ndarray  # int32 index into day_num, per interval
    quarter: np.ndarray  # int16 local quarter-hour of day 0..95 (wall clock)
    weekday: np.ndarray  # int8 Mon=0, per interval
    month: np.ndarray  # int8 1..12, per interval
    day_num: np.ndarray  # int64 local date as days since 1970-01-01, per day
    day_weekday: np.ndarray  # int8 Mon=0, per day
    day_first: np.ndarray  # int64 index of each day's first interval
    day_len: np.ndarray  # int64 number of intervals in each day (92/96/100 around DST)

    @property
    def n_days(self) -> int:
        return len(self.day_num)

    def dates(self) -> np.ndarray:
        return self.day_num.astype("datetime64[D]")


def local_calendar(start_ms: np.ndarray, tz: str) -> LocalCalendar:
    """Calendar for a regular grid; cached because most meters share one grid."""
    key = (tz, int(start_ms[0]) if len(start_ms) else 0, len(start_ms))
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    utc = pd.DatetimeIndex(start_ms.astype("datetime64[ms]"), tz="UTC")
    naive = utc.tz_convert(tz).tz_localize(None)
    local_ms = naive.to_numpy().astype("datetime64[ms]").astype(np.int64)
    days_abs = local_ms // DAY_MS
    quarter = ((local_ms - days_abs * DAY_MS) // QUARTER_MS).astype(np.int16)
    day_num, day_first, day = np.unique(days_abs, return_index=True, return_inverse=True)
    day_len = np.diff(np.append(day_first, len(start_ms)))
    months = day_num.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
    day_weekday = ((day_num + 3) % 7).astype(np.int8)  # 1970-01-01 was a Thursday
    cal = LocalCalendar(
        tz=tz,
        day=day.astype(np.int32),
        quarter=quarter,
        weekday=day_weekday[day],
        month=months.astype(np.int8)[day],
        day_num=day_num,
        day_weekday=day_weekday,
        day_first=day_first,
        day_len=day_len,
    )
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = cal
    return cal


def day_matrix(values: np.ndarray, cal: LocalCalendar) -> np.ndarray:
    """(n_days, 100) matrix of a per-interval array, NaN-padded (DST days have 92 or 100)."""
    out = np.full((cal.n_days, 100), np.nan)
    pos = np.arange(len(values)) - cal.day_first[cal.day]
    out[cal.day, pos] = values
    return out
