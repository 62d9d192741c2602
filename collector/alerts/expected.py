"""Expected usage per meter and slot of the week (median, MAD) and modified z-scores against it.

Pure numpy on an IntervalGrid; the caller passes each site's calendar (time zone and closed
days from the sites file) in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from collector.alerts.calendar import SiteCalendar
from collector.alerts.config import ExpectedConfig, UnusualUsageRule
from collector.alerts.model import FloatArray, IntervalGrid, MeterKey, require_utc

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# 0.6745 is the 0.75 quantile of the standard normal: it scales the MAD to a standard
# deviation, so a modified z-score reads like an ordinary one (Iglewicz and Hoaglin).
Z_SCALE = 0.6745
_WEEK_S = 7 * 86400


def slots_per_week(slot_minutes: int) -> int:
    return 7 * 24 * 60 // slot_minutes


def local_slots(
    starts_s: IntArray, calendar: SiteCalendar, slot_minutes: int
) -> tuple[IntArray, BoolArray]:
    """Local slot of the week (Monday 00:00 = 0) and closed-day flag of each interval start.

    A holiday the site keeps with Sunday's hours falls in Sunday's slots.
    """
    slots = np.empty(len(starts_s), dtype=np.int64)
    is_closed = np.zeros(len(starts_s), dtype=np.bool_)
    per_day = 24 * 60 // slot_minutes
    # One Python call per column and calendar, not per meter: sites share calendars.
    for i, ts in enumerate(starts_s.tolist()):
        local = datetime.fromtimestamp(ts, calendar.tz)
        day = local.date()
        weekday = 6 if day in calendar.as_sunday else local.weekday()
        slots[i] = weekday * per_day + (local.hour * 60 + local.minute) // slot_minutes
        is_closed[i] = day in calendar.closed
    return slots, is_closed


def by_calendar(
    meters: tuple[MeterKey, ...], calendars: Mapping[str, SiteCalendar]
) -> list[tuple[SiteCalendar, IntArray]]:
    """Rows of the meters that share a calendar; most sites of a portfolio share one."""
    sites: dict[str, list[int]] = {}
    for row, key in enumerate(meters):
        sites.setdefault(key.site, []).append(row)
    rows: dict[SiteCalendar, list[int]] = {}
    for site, site_rows in sites.items():
        rows.setdefault(calendars[site], []).extend(site_rows)
    return [(cal, np.array(sorted(r), dtype=np.int64)) for cal, r in rows.items()]


def _sorted_median(values: FloatArray, counts: IntArray) -> FloatArray:
    """Median along the last axis of an array sorted with NaNs last, given the non-NaN counts."""
    lo = np.maximum((counts - 1) // 2, 0)[..., None]
    hi = np.maximum(counts // 2, 0)[..., None]
    low = np.take_along_axis(values, lo, axis=-1)[..., 0]
    high = np.take_along_axis(values, hi, axis=-1)[..., 0]
    return np.where(counts > 0, (low + high) / 2.0, np.nan)


@dataclass(frozen=True, slots=True)
class Baseline:
    """Median and MAD of interval energy for each meter (rows) and slot of the week (columns)."""

    meters: tuple[MeterKey, ...]
    slot_minutes: int
    step_s: int
    median: FloatArray  # (meters, slots), kWh per step; NaN where history is too thin
    mad: FloatArray
    samples: IntArray
    end: datetime  # history used ends here (exclusive)

    def rows_for(self, meters: tuple[MeterKey, ...]) -> IntArray:
        """Row of each meter; meters without history point at an all-NaN row appended last."""
        index = {key: i for i, key in enumerate(self.meters)}
        missing = len(self.meters)
        return np.array([index.get(key, missing) for key in meters], dtype=np.int64)


def build_baseline(
    history: IntervalGrid, calendars: Mapping[str, SiteCalendar], expected: ExpectedConfig
) -> Baseline:
    """Learn median and MAD per meter and slot from the last `expected.weeks` weeks of history.

    `calendars` holds each site's calendar; its closed days are left out of the history.
    """
    starts = history.column_starts()
    end_s = history.start_s + history.n_intervals * history.step_s
    keep = starts >= end_s - expected.weeks * _WEEK_S
    starts = starts[keep]
    energy = history.energy_kwh[:, keep]

    n_slots = slots_per_week(expected.slot_minutes)
    shape = (len(history.meters), n_slots)
    median, mad = np.full(shape, np.nan), np.full(shape, np.nan)
    valid = np.zeros(shape, dtype=np.int64)
    for calendar, rows in by_calendar(history.meters, calendars):
        slots, is_closed = local_slots(starts, calendar, expected.slot_minutes)
        # most portfolios share one calendar: then the whole grid needs no copy
        part = energy if len(rows) == len(history.meters) else energy[rows]
        median[rows], mad[rows], valid[rows] = _slot_stats(
            part, slots[~is_closed], np.flatnonzero(~is_closed), n_slots
        )

    per_week = max(expected.slot_minutes * 60 // history.step_s, 1)
    thin = valid < expected.min_weeks * per_week
    median[thin] = np.nan
    mad[thin] = np.nan
    return Baseline(
        meters=history.meters,
        slot_minutes=expected.slot_minutes,
        step_s=history.step_s,
        median=median,
        mad=mad,
        samples=valid,
        end=datetime.fromtimestamp(end_s, UTC),
    )


def _slot_stats(
    energy: FloatArray, slots: IntArray, columns: IntArray, n_slots: int
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Median, MAD and sample count per meter and slot of the `columns` with those `slots`."""
    # Group columns by slot into a padded (slots, depth) index; DST and holidays make the
    # number of columns per slot uneven, so the padding is filled with NaN below.
    order = np.argsort(slots, kind="stable")
    counts = np.bincount(slots, minlength=n_slots)
    depth = max(int(counts.max(initial=0)), 1)
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(len(order)) - np.repeat(offsets, counts)
    index = np.zeros((n_slots, depth), dtype=np.int64)
    filled = np.zeros((n_slots, depth), dtype=np.bool_)
    index[slots[order], position] = columns[order]
    filled[slots[order], position] = True

    grouped = energy[:, index]  # (meters, slots, depth)
    grouped[:, ~filled] = np.nan
    grouped.sort(axis=-1)  # NaNs sort last
    valid = (~np.isnan(grouped)).sum(axis=-1)
    median = _sorted_median(grouped, valid)
    deviation = np.abs(grouped - median[..., None])
    deviation.sort(axis=-1)
    mad = _sorted_median(deviation, valid)
    return median, mad, valid.astype(np.int64)


@dataclass(frozen=True, slots=True)
class UsageScores:
    """Modified z-scores of recent complete intervals and the trailing unusual run per meter."""

    meters: tuple[MeterKey, ...]
    starts_s: IntArray  # (intervals,)
    step_s: int
    energy: FloatArray  # (meters, intervals)
    median: FloatArray
    mad: FloatArray  # after the floor
    z: FloatArray
    deviation_kwh: FloatArray  # signed in the alerting direction
    unusual: BoolArray
    last_index: IntArray  # last interval with data, -1 if none
    missing_tail: IntArray  # intervals without data after last_index
    run: IntArray  # unusual intervals in a row ending at last_index


def modified_z(
    x: FloatArray, median: FloatArray, mad: FloatArray, rule: UnusualUsageRule
) -> tuple[FloatArray, FloatArray]:
    """Modified z-score and the floored MAD it used; the floor keeps flat series from exploding."""
    floor = np.maximum(rule.mad_floor_kwh, np.abs(median) * rule.mad_floor_pct / 100.0)
    mad_eff = np.fmax(mad, floor)
    return Z_SCALE * (x - median) / mad_eff, mad_eff


def score_usage(
    recent: IntervalGrid,
    baseline: Baseline,
    *,
    calendars: Mapping[str, SiteCalendar],
    rule: UnusualUsageRule,
    now: datetime,
) -> UsageScores:
    """Score every complete interval of `recent` against `baseline` and find trailing runs.

    A closed day of a site's calendar is scored against the same time of the site's quietest
    day of the week (a Sunday for most sites).
    """
    if recent.step_s != baseline.step_s:
        raise ValueError(f"grid step {recent.step_s}s differs from baseline {baseline.step_s}s")
    now_s = require_utc(now, "now").timestamp()
    starts = recent.column_starts()
    complete = starts + recent.step_s <= now_s  # an interval still filling would look low
    starts = starts[complete]
    x = recent.energy_kwh[:, complete]

    base_rows = baseline.rows_for(recent.meters)
    nan_row = np.full((1, baseline.median.shape[1]), np.nan)
    base_median = np.vstack([baseline.median, nan_row])
    base_mad = np.vstack([baseline.mad, nan_row])
    median, mad = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    per_day = 24 * 60 // baseline.slot_minutes
    for calendar, rows in by_calendar(recent.meters, calendars):
        slots, is_closed = local_slots(starts, calendar, baseline.slot_minutes)
        # Compared with a working day, a closed day would look unusually low all day and
        # hide a machine left running; the quietest day of the week is what closed looks like.
        quiet = calendar.quiet_weekday * per_day + slots % per_day
        slots = np.where(is_closed, quiet, slots)
        median[rows] = base_median[base_rows[rows]][:, slots]
        mad[rows] = base_mad[base_rows[rows]][:, slots]

    z, mad_eff = modified_z(x, median, mad, rule)
    signed = x - median
    if rule.direction == "below":
        z, signed = -z, -signed
    elif rule.direction == "both":
        z, signed = np.abs(z), np.abs(signed)
    kw = signed * 3600.0 / recent.step_s
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(median > 0, signed / np.abs(median) * 100.0, np.inf)
    unusual = (
        (z > rule.z_threshold) & (kw > rule.min_deviation_kw) & (pct > rule.min_deviation_pct)
    )  # NaN compares False: missing data or thin history is never unusual

    has_data = ~np.isnan(x)
    n = x.shape[1]
    tail = np.argmax(has_data[:, ::-1], axis=1) if n else np.zeros(len(x), dtype=np.int64)
    tail = np.where(has_data.any(axis=1), tail, n)
    last_index = n - 1 - tail
    # Treat the trailing missing intervals as unusual so the run is measured from the last
    # interval with data: an outage then neither resolves nor restarts the alert, and the
    # gateway's outbox back-fill continues the same episode.
    padded = unusual | (np.arange(n)[None, :] > last_index[:, None])
    reversed_ = padded[:, ::-1]
    first_false = np.argmax(~reversed_, axis=1) if n else tail
    trailing = np.where(reversed_.all(axis=1), n, first_false)
    run = np.where(last_index >= 0, trailing - tail, 0)
    return UsageScores(
        meters=recent.meters,
        starts_s=starts,
        step_s=recent.step_s,
        energy=x,
        median=median,
        mad=mad_eff,
        z=z,
        deviation_kwh=signed,
        unusual=unusual,
        last_index=last_index.astype(np.int64),
        missing_tail=tail.astype(np.int64),
        run=run.astype(np.int64),
    )
