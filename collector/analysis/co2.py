"""CO2 intensity per interval from a yearly factor or an hourly (ts,g_per_kwh) CSV."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from collector.analysis.errors import SiteConfigError
from collector.analysis.site_context import Co2

HOUR_MS = 3_600_000


@lru_cache(maxsize=8)
def load_hourly_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (hour start UTC epoch ms, g/kWh) from a CSV with header ts,g_per_kwh.

    ts is ISO 8601; a value without offset is taken as UTC (Energinet's HourUTC column).
    """
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise SiteConfigError(f"{path}: cannot read CO2 series: {exc.strerror}") from None
    if not rows or set(rows[0]) != {"ts", "g_per_kwh"}:
        raise SiteConfigError(f"{path}: CO2 CSV needs exactly the columns ts,g_per_kwh")
    try:
        ts = pd.to_datetime([r["ts"] for r in rows], utc=True, format="ISO8601")
        g = np.array([float(r["g_per_kwh"]) for r in rows])
    except ValueError as exc:
        raise SiteConfigError(f"{path}: bad row in CO2 CSV: {exc}") from None
    ms = ts.as_unit("ms").asi8.astype(np.int64)
    order = np.argsort(ms)
    return ms[order], g[order]


def co2_per_interval(start_ms: np.ndarray, co2: Co2) -> np.ndarray:
    """g CO2/kWh for each interval; hours missing from the CSV fall back to the yearly factor."""
    out = np.full(len(start_ms), co2.g_per_kwh)
    if co2.hourly_csv is None:
        return out
    hours, g = load_hourly_csv(co2.hourly_csv)
    hour = start_ms - start_ms % HOUR_MS
    idx = np.clip(np.searchsorted(hours, hour), 0, len(hours) - 1)
    hit = hours[idx] == hour
    out[hit] = g[idx[hit]]
    return out
