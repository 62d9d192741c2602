"""A meter's data at a model's resolution (quarter-hour, hour, day) with each row's local
calendar: local day, time-of-week slot and month."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from collector.verification.inputs import DateRange, MeterData
from collector.verification.rules import Resolution
from sparwatt.timeutil import DAY_MS, HOUR_MS, QUARTER_MS

EPOCH = dt.date(1970, 1, 1)
SUNDAY = 6
_CACHE: dict[tuple[str, int, int, int], tuple[np.ndarray, np.ndarray]] = {}
_CACHE_MAX = 16


def day_number(d: dt.date) -> int:
    """Local date as days since 1970-01-01."""
    return (d - EPOCH).days


def day_date(n: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(n))


def _local(start_ms: np.ndarray, step_ms: int, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """(local day number, local milliseconds into the day) of each start; cached per grid."""
    key = (tz, int(start_ms[0]), step_ms, len(start_ms))
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    utc = pd.DatetimeIndex(start_ms.astype("datetime64[ms]"), tz="UTC")
    local_ms = utc.tz_convert(tz).tz_localize(None).to_numpy().astype("datetime64[ms]")
    ms = local_ms.astype(np.int64)
    day = ms // DAY_MS
    out = (day, ms - day * DAY_MS)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = out
    return out


def _weekday(day: np.ndarray, holidays: Iterable[dt.date]) -> np.ndarray:
    wd = (day + 3) % 7  # 1970-01-01 was a Thursday
    hol = np.array([day_number(d) for d in holidays], dtype=np.int64)
    if len(hol):
        wd = np.where(np.isin(day, hol), SUNDAY, wd)
    return wd


def _month(day: np.ndarray) -> np.ndarray:
    """Calendar month 0..11 of each local day number."""
    return day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12


def in_ranges(day: np.ndarray, ranges: Iterable[DateRange]) -> np.ndarray:
    """True where the local day falls in any of the date ranges."""
    out = np.zeros(len(day), dtype=bool)
    for r in ranges:
        out |= (day >= day_number(r.start)) & (day <= day_number(r.end))
    return out


@dataclass(frozen=True)
class Rows:
    """One meter at one resolution; NaN energy means the row has too few intervals."""

    resolution: Resolution
    start_ms: np.ndarray  # row start, UTC epoch ms
    energy_kwh: np.ndarray
    temperature_c: np.ndarray | None
    driver: np.ndarray | None
    day: np.ndarray  # local day number of the row
    slot: np.ndarray  # time-of-week slot; for days the weekday (holidays count as Sunday)
    month: np.ndarray  # 0..11
    coverage: np.ndarray  # share of the row's intervals present
    interval_row: np.ndarray  # row of each of the meter's intervals (-1: outside the rows)
    row_hours: np.ndarray  # length of each row in hours

    @property
    def n(self) -> int:
        return len(self.start_ms)


def _sum_by(idx: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the finite values and their count per row."""
    ok = np.isfinite(values)
    total = np.bincount(idx[ok], weights=values[ok], minlength=n)
    count = np.bincount(idx[ok], minlength=n).astype(np.float64)
    return total, count


def _mean_by(idx: np.ndarray, values: np.ndarray, n: int, min_count: np.ndarray) -> np.ndarray:
    total, count = _sum_by(idx, values, n)
    return np.where((count >= min_count) & (count > 0), total / np.maximum(count, 1), np.nan)


def interval_rows(data: MeterData, slots: int) -> Rows:
    """Rows of one hour (slots=168) or one quarter-hour (slots=672, 15-minute data only)."""
    step = QUARTER_MS if slots == 672 else HOUR_MS
    if step < data.step_ms:
        raise ValueError("quarter-hour rows need 15-minute data")
    first = int(data.start_ms[0]) // step * step
    idx = ((data.start_ms - first) // step).astype(np.int64)
    n = int(idx[-1]) + 1
    per_row = step // data.step_ms
    energy, count = _sum_by(idx, data.energy_kwh, n)
    complete = count == per_row
    start = first + np.arange(n, dtype=np.int64) * step
    day, ms = _local(start, step, data.timezone)
    slot_len = step if slots == 672 else HOUR_MS
    slot = _weekday(day, data.holidays) * (DAY_MS // slot_len) + ms // slot_len
    driver = None
    if data.driver is not None:
        dsum, dcount = _sum_by(idx, data.driver, n)
        driver = np.where(dcount == per_row, dsum, np.nan)
    temperature = None
    if data.temperature_c is not None:
        temperature = _mean_by(idx, data.temperature_c, n, np.ones(n))
    return Rows(
        resolution="quarter-hour" if slots == 672 else "hourly",
        start_ms=start,
        energy_kwh=np.where(complete, energy, np.nan),
        temperature_c=temperature,
        driver=driver,
        day=day,
        slot=slot.astype(np.int64),
        month=_month(day),
        coverage=count / per_row,
        interval_row=idx,
        row_hours=np.full(n, step / HOUR_MS),
    )


def day_rows(data: MeterData, min_coverage: float, min_temperature_share: float) -> Rows:
    """Local days; a day with at least `min_coverage` of its intervals has its gaps filled
    with the day's mean interval, a day with less has no energy."""
    iday, _ = _local(data.start_ms, data.step_ms, data.timezone)
    d0 = int(iday[0])
    idx = iday - d0
    n = int(idx[-1]) + 1
    days = d0 + np.arange(n + 1, dtype=np.int64)
    # midnight is unambiguous in the zones served, but say what to do if it were not
    midnights = (
        pd.DatetimeIndex(days.astype("datetime64[D]"))
        .tz_localize(data.timezone, ambiguous=True, nonexistent="shift_forward")
        .tz_convert("UTC")
        .tz_localize(None)
        .to_numpy()
        .astype("datetime64[ms]")
        .astype(np.int64)
    )
    expected = np.diff(midnights) / data.step_ms
    energy, count = _sum_by(idx, data.energy_kwh, n)
    coverage = count / expected
    filled = np.where(
        (coverage >= min_coverage) & (count > 0), energy * expected / np.maximum(count, 1), np.nan
    )
    temperature = None
    if data.temperature_c is not None:
        temperature = _mean_by(idx, data.temperature_c, n, expected * min_temperature_share)
    driver = None
    if data.driver is not None:
        dsum, dcount = _sum_by(idx, data.driver, n)
        driver = np.where(
            dcount / expected >= min_coverage, dsum * expected / np.maximum(dcount, 1), np.nan
        )
    day = days[:-1]
    return Rows(
        resolution="daily",
        start_ms=midnights[:-1],
        energy_kwh=filled,
        temperature_c=temperature,
        driver=driver,
        day=day,
        slot=_weekday(day, data.holidays),
        month=_month(day),
        coverage=coverage,
        interval_row=idx,
        row_hours=np.diff(midnights) / HOUR_MS,
    )


def per_row_mean(rows: Rows, values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """A per-interval array (price, CO2 intensity) as one value per row: the plain mean, or
    the mean weighted by `weights` (metered energy) where those sum to more than zero."""
    ok = np.isfinite(values)
    idx = rows.interval_row[ok]
    v = values[ok]
    plain = _mean_by(idx, v, rows.n, np.ones(rows.n))
    if weights is None:
        return plain
    w = np.nan_to_num(weights[ok], nan=0.0).clip(min=0.0)
    wsum = np.bincount(idx, weights=w, minlength=rows.n)
    wmean = np.bincount(idx, weights=w * v, minlength=rows.n) / np.where(wsum > 0, wsum, 1.0)
    return np.where(wsum > 0, wmean, plain)
