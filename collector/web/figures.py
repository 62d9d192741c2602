"""Site figures from 15-minute intervals: totals, buckets, base load, heatmap, gaps.

Pure functions over plain rows, so pages, reports and the API agree and tests need no
database. A site's total is the sum of all its meters (see docs/web.md, assumptions).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

INTERVAL_MS = 900_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
BASE_LOAD_PERCENTILE = 5  # of the site's 15-minute mean power


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket of a site (or meter) series."""

    start_ms: int
    energy_kwh: float | None
    mean_power_w: float | None
    max_power_w: float | None
    estimated: bool = False


@dataclass(slots=True)
class _Acc:
    kwh: float | None = None
    mean_w: float | None = None
    max_w: float | None = None
    estimated: bool = False
    n_mean: int = 0


def _add(a: float | None, b: float | None) -> float | None:
    return a if b is None else (b if a is None else a + b)


def totals(rows: Iterable[Sequence[Any]]) -> list[Point]:
    """Sum per-meter 15-minute rows (gateway, meter, start, kWh, est, mean W, max W) by start.

    The peak of a sum is not known from per-meter peaks; their sum is an upper bound and is
    what the peak column shows.
    """
    acc: dict[int, _Acc] = {}
    for row in rows:
        start, kwh, est, mean_w, max_w = row[2:7]
        entry = acc.setdefault(int(start), _Acc())
        entry.kwh = _add(entry.kwh, None if kwh is None else float(kwh))
        entry.mean_w = _add(entry.mean_w, None if mean_w is None else float(mean_w))
        entry.max_w = _add(entry.max_w, None if max_w is None else float(max_w))
        entry.estimated = entry.estimated or bool(est)
    return [Point(start, a.kwh, a.mean_w, a.max_w, a.estimated) for start, a in sorted(acc.items())]


def local_bucket_ms(start_ms: int, step: str, tz: ZoneInfo) -> int:
    """The start of the local hour ("1h") or local day ("1d") that holds `start_ms`."""
    local = datetime.fromtimestamp(start_ms / 1000, tz)
    start = local.replace(minute=0, second=0, microsecond=0)
    if step == "1d":
        start = start.replace(hour=0)
    return int(start.timestamp() * 1000)


def bucket(points: list[Point], step: str, tz: ZoneInfo) -> list[Point]:
    """Roll 15-minute points into local hours ("1h") or local days ("1d")."""
    if step == "15m":
        return points
    acc: dict[int, _Acc] = {}
    for p in points:
        entry = acc.setdefault(local_bucket_ms(p.start_ms, step, tz), _Acc())
        entry.kwh = _add(entry.kwh, p.energy_kwh)
        if p.mean_power_w is not None:
            entry.mean_w = _add(entry.mean_w, p.mean_power_w)
            entry.n_mean += 1
        if p.max_power_w is not None:
            entry.max_w = max(entry.max_w or 0.0, p.max_power_w)
        entry.estimated = entry.estimated or p.estimated
    return [
        Point(start, a.kwh, None if a.mean_w is None else a.mean_w / a.n_mean, a.max_w, a.estimated)
        for start, a in sorted(acc.items())
    ]


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def base_load_w(points: list[Point]) -> float | None:
    """The always-on floor: a low percentile of 15-minute mean power (robust to one dip)."""
    return percentile(
        [p.mean_power_w for p in points if p.mean_power_w is not None], BASE_LOAD_PERCENTILE
    )


def heatmap(points: list[Point], tz: ZoneInfo) -> list[list[float | None]]:
    """Mean power in kW by local weekday (rows, Monday first) and hour (columns)."""
    sums = [[0.0] * 24 for _ in range(7)]
    counts = [[0] * 24 for _ in range(7)]
    for p in points:
        if p.mean_power_w is None:
            continue
        local = datetime.fromtimestamp(p.start_ms / 1000, tz)
        sums[local.weekday()][local.hour] += p.mean_power_w / 1000
        counts[local.weekday()][local.hour] += 1
    return [
        [sums[d][h] / counts[d][h] if counts[d][h] else None for h in range(24)] for d in range(7)
    ]


@dataclass(frozen=True, slots=True)
class Gap:
    from_ms: int
    to_ms: int  # exclusive


def missing(points: list[Point], from_ms: int, to_ms: int) -> list[Gap]:
    """Runs of absent 15-minute intervals between the first and the last one present."""
    have = {p.start_ms for p in points if p.energy_kwh is not None or p.mean_power_w is not None}
    if not have:
        return []
    lo = max(min(have), from_ms - from_ms % INTERVAL_MS)
    hi = min(max(have), to_ms)
    gaps: list[Gap] = []
    start = None
    t = lo
    while t <= hi:
        if t not in have and start is None:
            start = t
        elif t in have and start is not None:
            gaps.append(Gap(start, t))
            start = None
        t += INTERVAL_MS
    return gaps


@dataclass(frozen=True, slots=True)
class Summary:
    energy_kwh: float
    mean_power_w: float | None
    peak_power_w: float | None  # highest 15-minute mean
    peak_at_ms: int | None
    base_load_w: float | None
    coverage: float  # share of the period's intervals that have data
    estimated_intervals: int


def summarize(points: list[Point], from_ms: int, to_ms: int) -> Summary:
    energy = [p for p in points if p.energy_kwh is not None]
    total = sum(p.energy_kwh for p in energy)  # type: ignore[misc]
    powered = [p for p in points if p.mean_power_w is not None]
    peak = max(powered, key=lambda p: p.mean_power_w or 0.0, default=None)
    expected = max(1, (to_ms - from_ms) // INTERVAL_MS)
    return Summary(
        energy_kwh=total,
        mean_power_w=(
            sum(p.mean_power_w for p in powered) / len(powered)  # type: ignore[misc]
            if powered
            else None
        ),
        peak_power_w=peak.mean_power_w if peak else None,
        peak_at_ms=peak.start_ms if peak else None,
        base_load_w=base_load_w(points),
        coverage=min(1.0, len({p.start_ms for p in points}) / expected),
        estimated_intervals=sum(1 for p in points if p.estimated),
    )


def local_midnight_ms(now_ms: int, tz: ZoneInfo, days_back: int = 0) -> int:
    local = datetime.fromtimestamp(now_ms / 1000, tz).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    # step back by calendar days in local time, then re-resolve the offset (DST days)
    day = (local - timedelta(days=days_back)).replace(tzinfo=None)
    return int(day.replace(tzinfo=tz).timestamp() * 1000)
