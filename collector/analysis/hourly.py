"""Hourly or 15-minute series from a CSV (ts,<value column>), looked up per interval.

Used for CO2 intensity and spot prices, both published by Energinet (day-ahead prices per
15 minutes since October 2025, per hour before). A row at :15, :30 or :45 lasts 15 minutes;
one on the hour lasts until the next row, at most an hour. So a file may change from hourly
to 15-minute rows.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from sparwatt.errors import SiteConfigError
from sparwatt.timeutil import HOUR_MS, QUARTER_MS


def load(path: Path, column: str, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted row starts (UTC epoch ms), values and row lengths (ms); read again whenever the
    file changes (prices are refreshed daily)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise SiteConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    return _load(path, stat.st_mtime_ns, stat.st_size, column, what)


@lru_cache(maxsize=16)
def _load(
    path: Path, _mtime_ns: int, _size: int, column: str, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise SiteConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if not rows or set(rows[0]) != {"ts", column}:
        raise SiteConfigError(f"{path}: {what} CSV needs exactly the columns ts,{column}")
    try:
        # ts is ISO 8601; a value without offset is taken as UTC (Energinet's HourUTC)
        ts = pd.to_datetime([r["ts"] for r in rows], utc=True, format="ISO8601")
        values = np.array([float(r[column]) for r in rows])
    except (ValueError, TypeError) as exc:  # TypeError: a row with a field missing
        raise SiteConfigError(f"{path}: bad row in {what} CSV: {exc}") from None
    if not np.isfinite(values).all():
        raise SiteConfigError(f"{path}: {what} CSV has a value that is not a finite number")
    missing = np.flatnonzero(ts.isna())
    if len(missing):
        raise SiteConfigError(f"{path}: {what} CSV row {missing[0] + 2} has no ts")
    ms = ts.as_unit("ms").asi8.astype(np.int64)
    off = np.flatnonzero(ms % QUARTER_MS)
    if len(off):
        raise SiteConfigError(
            f"{path}: {what} CSV row {off[0] + 2} does not start on a quarter hour"
        )
    order = np.argsort(ms, kind="stable")
    ms, values = ms[order], values[order]
    if not len(ms):
        return ms, values, ms
    on_hour = ms % HOUR_MS == 0
    to_next = np.diff(ms, append=ms[-1] + HOUR_MS)
    lengths = np.where(on_hour, np.minimum(to_next, HOUR_MS), QUARTER_MS)
    return ms, values, lengths


def per_interval(
    start_ms: np.ndarray, path: Path | None, column: str, fallback: float, what: str
) -> np.ndarray:
    """The value of the row covering each 15-minute interval; intervals no row covers (or
    no file) get `fallback`."""
    out = np.full(len(start_ms), fallback, dtype=np.float64)
    if path is None:
        return out
    starts, values, lengths = load(path, column, what)
    if not len(starts):
        return out
    idx = np.searchsorted(starts, start_ms, side="right") - 1
    row = np.maximum(idx, 0)
    hit = (idx >= 0) & (start_ms - starts[row] < lengths[row])
    out[hit] = values[idx[hit]]
    return out
