"""Hourly series from a CSV (ts,<value column>), looked up per 15-minute interval.

Used for CO2 intensity and spot prices, both published per hour by Energinet.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from collector.analysis.errors import SiteConfigError

HOUR_MS = 3_600_000


@lru_cache(maxsize=16)
def load(path: Path, column: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (hour start UTC epoch ms, value) from a CSV with the header ts,<column>.

    ts is ISO 8601; a value without offset is taken as UTC (Energinet's HourUTC column).
    """
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise SiteConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if not rows or set(rows[0]) != {"ts", column}:
        raise SiteConfigError(f"{path}: {what} CSV needs exactly the columns ts,{column}")
    try:
        ts = pd.to_datetime([r["ts"] for r in rows], utc=True, format="ISO8601")
        values = np.array([float(r[column]) for r in rows])
    except ValueError as exc:
        raise SiteConfigError(f"{path}: bad row in {what} CSV: {exc}") from None
    if not np.isfinite(values).all():
        raise SiteConfigError(f"{path}: {what} CSV has a value that is not a finite number")
    ms = ts.as_unit("ms").asi8.astype(np.int64)
    order = np.argsort(ms)
    return ms[order], values[order]


def per_interval(start_ms: np.ndarray, path: Path | None, column: str, fallback: float,
                 what: str) -> np.ndarray:
    """The hour's value for each interval; hours missing from the file (or no file) give
    `fallback`."""
    out = np.full(len(start_ms), fallback, dtype=np.float64)
    if path is None:
        return out
    hours, values = load(path, column, what)
    if not len(hours):
        return out
    hour = start_ms - start_ms % HOUR_MS
    idx = np.clip(np.searchsorted(hours, hour), 0, len(hours) - 1)
    hit = hours[idx] == hour
    out[hit] = values[idx[hit]]
    return out
