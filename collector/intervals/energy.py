"""Derive 15-minute interval energy and power records from one meter's raw readings."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from sparwatt.timeutil import QUARTER_MS

NOISE_KWH = 0.001  # drops below this are float rounding in the meter or decoder
_W_PER_KWH_PER_MS = 1000.0 * 3_600_000  # kWh over one ms, expressed in W

# (ts ms, value) pairs, or an array of such rows
Samples = Sequence[tuple[int, float]] | npt.NDArray[np.float64]
PowerStats = Mapping[int, tuple[float, float, int]]
_Ints = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float64]
_Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class IntervalRecord:
    """Energy and power of one meter over one interval."""

    start_ms: int  # interval start, UTC epoch ms, a multiple of the interval length
    energy_kwh: float | None  # None = missing (never invented)
    estimated: bool  # part of it was interpolated across a gap or lost to a reset
    mean_power_w: float | None
    max_power_w: float | None
    samples: int  # counter readings used that fall inside the interval


@dataclass(frozen=True)
class IntervalPolicy:
    """How to turn a meter's counter into interval energy."""

    interval_ms: int = QUARTER_MS
    max_gap_ms: int = 2 * 3_600_000  # never interpolate energy across a longer gap
    rollover_values: tuple[float, ...] = ()  # known counter wrap points in kWh
    # A wrap always falls to below this fraction of the last value; a smaller
    # lasting drop is taken as a reset or replacement, never as a wrap.
    replacement_drop_ratio: float = 0.5


def counter_intervals(
    samples: Samples, policy: IntervalPolicy = IntervalPolicy()
) -> list[IntervalRecord]:
    """Interval energy from (ts_ms, cumulative kWh) readings, sorted by start.

    Each pair of consecutive readings is read as follows:

    - A rise is energy, spread over the intervals the pair spans in proportion to time.
    - A drop smaller than NOISE_KWH is float noise: zero energy, and the higher value
      stays the reference so the noise is not counted again when the counter moves on.
    - A larger drop that the counter undoes within ``max_gap_ms`` (a zero or torn
      Modbus read) is a run of bad readings: they are skipped.
    - A lasting drop is a wrap when a known rollover point explains it with less
      energy than the drop itself; otherwise a reset or meter replacement: the pair
      gives no energy, every interval it touches is estimated, and counting goes on
      from the new value.
    - Energy is never interpolated across a pair longer than ``max_gap_ms``; intervals
      nothing else measured are reported with ``energy_kwh=None``.
    """
    ts, values = _sorted_unique(samples)
    if len(ts) < 2:
        return []
    used, deltas, lost = _read_counter(ts, values, policy)
    return _spread(ts[used], deltas, lost, policy)


def power_stats(
    samples: Samples, interval_ms: int = QUARTER_MS
) -> dict[int, tuple[float, float, int]]:
    """Per interval start: (sample mean, max, count) of a power gauge in W.

    A plain sample mean: the exact mean power of an interval is its counter
    energy over its length, so this only has to summarise what the gauge showed.
    """
    ts, watts = _sorted_unique(samples)
    if len(ts) == 0:
        return {}
    keys = ts // interval_ms
    firsts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    counts = np.diff(np.r_[firsts, len(keys)])
    sums = np.add.reduceat(watts, firsts)
    maxes = np.maximum.reduceat(watts, firsts)
    return {
        key * interval_ms: (total / count, peak, count)
        for key, total, peak, count in zip(
            keys[firsts].tolist(), sums.tolist(), maxes.tolist(), counts.tolist(), strict=True
        )
    }


def merge(energy: Sequence[IntervalRecord], power: PowerStats) -> list[IntervalRecord]:
    """Energy records with power filled in; power-only intervals get energy None."""
    by_start = {record.start_ms: record for record in energy}
    merged: list[IntervalRecord] = []
    for start in sorted(by_start.keys() | power.keys()):
        record = by_start.get(start) or IntervalRecord(start, None, False, None, None, 0)
        stats = power.get(start)
        if stats is not None:
            record = replace(record, mean_power_w=stats[0], max_power_w=stats[1])
        merged.append(record)
    return merged


def implausible_jumps(samples: Samples, max_power_w: float) -> list[tuple[int, int, float]]:
    """Consecutive reading pairs whose rise implies more than max_power_w: (from, to, W).

    Drops are left out: they are resets, wraps or bad readings, not jumps.
    """
    ts, values = _sorted_unique(samples)
    if len(ts) < 2:
        return []
    implied = np.diff(values) * _W_PER_KWH_PER_MS / np.diff(ts)
    hits = np.flatnonzero(implied > max_power_w)
    return [(int(ts[i]), int(ts[i + 1]), float(implied[i])) for i in hits.tolist()]


def _sorted_unique(samples: Samples) -> tuple[_Ints, _Floats]:
    """Readings sorted by time with one per timestamp, the higher one on a tie."""
    if len(samples) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    table = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    # Epoch milliseconds stay exact in a float64 until far beyond any real date.
    ts = table[:, 0].astype(np.int64)
    values = table[:, 1]
    if len(ts) > 1 and not bool((ts[1:] > ts[:-1]).all()):
        # A counter cannot hold two values at once; the higher one is the later
        # state, and picking by value makes the result independent of input order.
        order = np.lexsort((values, ts))
        ts, values = ts[order], values[order]
        last = np.r_[ts[1:] != ts[:-1], True]
        ts, values = ts[last], values[last]
    return ts, values


def _read_counter(
    ts: _Ints, values: _Floats, policy: IntervalPolicy
) -> tuple[_Ints, _Floats, _Bools]:
    """Indices of the readings used, and per pair between them its energy and lost flag."""
    running = np.maximum.accumulate(values)
    if not bool((values[1:] <= running[:-1] - NOISE_KWH).any()):
        # The usual case, kept vectorised: nothing but growth and float noise.
        return np.arange(len(values)), np.diff(running), np.zeros(len(values) - 1, np.bool_)

    times, vals = ts.tolist(), values.tolist()
    window_max = _RangeMax(values)
    used, deltas, lost = [0], [], []
    ref = vals[0]
    for i in range(1, len(vals)):
        value = vals[i]
        if value > ref - NOISE_KWH:
            used.append(i)
            deltas.append(max(value - ref, 0.0))
            lost.append(False)
            ref = max(ref, value)
            continue
        end = bisect_right(times, times[i] + policy.max_gap_ms, lo=i)
        if end > i + 1 and window_max(i + 1, end) > ref - NOISE_KWH:
            continue  # a real counter cannot regain its old value this soon
        wrapped = _wrapped_delta(ref, value, policy)
        used.append(i)
        deltas.append(0.0 if wrapped is None else wrapped)
        lost.append(wrapped is None)
        ref = value
    return np.asarray(used, np.int64), np.asarray(deltas, np.float64), np.asarray(lost, np.bool_)


def _wrapped_delta(last: float, new: float, policy: IntervalPolicy) -> float | None:
    """Energy across a wrap that explains the drop from last to new, if any does."""
    if new < 0 or new >= policy.replacement_drop_ratio * last:
        return None
    for point in sorted(policy.rollover_values):
        if last <= point + NOISE_KWH:
            delta = max(point - last, 0.0) + new
            # A wrap far from the last value (5000 -> 3 with a wrap at 100000) would
            # invent more energy than the drop it explains: that is a replacement.
            return delta if delta < last - new else None
    return None


class _RangeMax:
    """Constant-time max over index ranges, so bad-reading checks stay linear overall."""

    def __init__(self, values: _Floats) -> None:
        self._levels = [values]
        span = 1
        while 2 * span <= len(values):
            below = self._levels[-1]
            self._levels.append(np.maximum(below[:-span], below[span:]))
            span *= 2

    def __call__(self, lo: int, hi: int) -> float:
        """Max of values[lo:hi], for hi > lo."""
        level = (hi - lo).bit_length() - 1
        row = self._levels[level]
        return float(max(row[lo], row[hi - (1 << level)]))


def _spread(
    ts: _Ints, deltas: _Floats, lost: _Bools, policy: IntervalPolicy
) -> list[IntervalRecord]:
    """Spread each pair's energy over the intervals it spans, pro rata by time."""
    size = policy.interval_ms
    t_from, t_to = ts[:-1], ts[1:]
    first = int(ts[0] // size)
    k_from = t_from // size - first
    # A pair ending exactly on a boundary does not reach into the next interval.
    k_to = (t_to - 1) // size - first
    count = int(k_to[-1]) + 1

    measured = ~lost & (t_to - t_from <= policy.max_gap_ms)
    m_from, m_to = k_from[measured], k_to[measured]
    spans = m_to - m_from + 1
    owner = np.repeat(np.arange(len(spans)), spans)
    slot = m_from[owner] + np.arange(len(owner)) - np.repeat(np.cumsum(spans) - spans, spans)
    start = (slot + first) * size
    overlap = np.minimum(t_to[measured][owner], start + size) - np.maximum(
        t_from[measured][owner], start
    )
    share = deltas[measured][owner] * overlap / (t_to - t_from)[measured][owner]
    energy = np.bincount(slot, weights=share, minlength=count)
    got_energy = np.bincount(slot, minlength=count) > 0

    own_samples = np.bincount(ts // size - first, minlength=count + 1)[:count]
    touched_by_loss = _covered(k_from[lost], k_to[lost], count)
    # Energy in an interval without a reading of its own is interpolated.
    estimated = got_energy & ((own_samples == 0) | touched_by_loss)

    return [
        IntervalRecord(
            start_ms=(first + k) * size,
            energy_kwh=kwh if has else None,
            estimated=est,
            mean_power_w=None,
            max_power_w=None,
            samples=n,
        )
        for k, (kwh, has, est, n) in enumerate(
            zip(
                energy.tolist(),
                got_energy.tolist(),
                estimated.tolist(),
                own_samples.tolist(),
                strict=True,
            )
        )
    ]


def _covered(k_from: _Ints, k_to: _Ints, count: int) -> _Bools:
    """Which of count intervals lie within at least one [k_from, k_to] range."""
    edges = np.bincount(k_from, minlength=count + 1) - np.bincount(k_to + 1, minlength=count + 1)
    return np.cumsum(edges)[:count] > 0
