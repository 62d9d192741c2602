"""15-minute rollups of every quantity a meter reports: the history kept for good.

Gauges roll up to mean, min, max and sample count per interval (power factors as magnitudes:
meters disagree on what the sign means). Counters roll up to the energy of the interval,
split at interval boundaries as `energy.counter_intervals` does for import energy. A rollup
is packed into one blob per meter and interval, float32 for gauge statistics and float64 for
counter energy, so a year of 28 quantities stays near 15 MB a meter.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from collector.intervals.energy import IntervalPolicy, Samples, counter_intervals
from sparwatt.timeutil import QUARTER_MS
from sparwatt.wire import QUANTITIES, Kind

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
_U16 = 65_535


def is_counter(quantity: str) -> bool:
    return QUANTITIES[quantity].kind is Kind.COUNTER


@dataclass(frozen=True, slots=True)
class GaugeStats:
    mean: float
    min: float
    max: float
    count: int


@dataclass(frozen=True, slots=True)
class CounterStats:
    energy: float | None  # None: the interval's energy is unknown (never invented)
    estimated: bool


Stats = GaugeStats | CounterStats


@dataclass(frozen=True, slots=True)
class Rollup:
    """One meter's figures for one 15-minute interval."""

    start_ms: int
    values: Mapping[str, Stats]


def gauge_rollups(ts: Ints, values: Floats, quantities: Sequence[str]) -> list[Rollup]:
    """Per-interval statistics of gauge columns (`values`: readings x quantities, NaN where a
    reading lacks a quantity); `ts` sorted ascending."""
    if not len(ts):
        return []
    starts = ts // QUARTER_MS * QUARTER_MS
    cut = np.flatnonzero(np.diff(starts)) + 1
    first = np.concatenate(([0], cut))
    data = values.copy()
    for col, q in enumerate(quantities):
        if q.startswith("power_factor"):
            data[:, col] = np.abs(data[:, col])
    present = np.isfinite(data)
    count = np.add.reduceat(present, first, axis=0)
    total = np.add.reduceat(np.where(present, data, 0.0), first, axis=0)
    low = np.fmin.reduceat(data, first, axis=0)
    high = np.fmax.reduceat(data, first, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    out = []
    for row, start in enumerate(starts[first].tolist()):
        stats = {
            q: GaugeStats(float(mean[row, c]), float(low[row, c]), float(high[row, c]),
                          min(int(count[row, c]), _U16))
            for c, q in enumerate(quantities)
            if count[row, c]
        }  # fmt: skip
        out.append(Rollup(int(start), stats))
    return out


def counter_rollups(
    samples: Mapping[str, Samples], policy: IntervalPolicy
) -> dict[int, dict[str, CounterStats]]:
    """Interval energy of each counter, by interval start."""
    out: dict[int, dict[str, CounterStats]] = {}
    for quantity, rows in samples.items():
        for rec in counter_intervals(rows, policy):
            out.setdefault(rec.start_ms, {})[quantity] = CounterStats(rec.energy_kwh, rec.estimated)
    return out


# ---- packing: one blob per meter and interval


@lru_cache(maxsize=256)
def _layout(quantities: tuple[str, ...]) -> struct.Struct:
    return struct.Struct("<" + "".join("dB" if is_counter(q) else "fffH" for q in quantities))


def pack(rollup: Rollup) -> tuple[str, bytes]:
    """The rollup's quantity list (its layout key) and blob."""
    names = tuple(rollup.values)
    flat: list[float | int] = []
    for stats in rollup.values.values():
        if isinstance(stats, GaugeStats):
            flat += (stats.mean, stats.min, stats.max, stats.count)
        else:
            # NaN marks an unknown energy; the flag byte keeps `estimated`
            flat += (np.nan if stats.energy is None else stats.energy, int(stats.estimated))
    return ",".join(names), _layout(names).pack(*flat)


def unpack(key: str, blob: bytes) -> dict[str, Stats]:
    names = tuple(key.split(","))
    raw = _layout(names).unpack(blob)
    out: dict[str, Stats] = {}
    i = 0
    for q in names:
        if is_counter(q):
            energy, flag = raw[i], raw[i + 1]
            out[q] = CounterStats(None if math.isnan(energy) else float(energy), bool(flag))
            i += 2
        else:
            out[q] = GaugeStats(float(raw[i]), float(raw[i + 1]), float(raw[i + 2]), raw[i + 3])
            i += 4
    return out
