"""Keep the 15-minute history current: recompute the intervals and rollups of meters with
new readings, from one read of their raw readings."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from collector.intervals import rollup
from collector.intervals.energy import IntervalPolicy, counter_intervals, merge, power_stats
from collector.settings import Intervals
from collector.store import DirtyMeter, IntervalRow, Store
from collector.store.packing import ReadingMatrix
from sparwatt.timeutil import QUARTER_MS

# one quantity's readings: rows of (ts ms, value), without the readings that lack it
Samples = npt.NDArray[np.float64]


def policy_of(settings: Intervals) -> IntervalPolicy:
    """The interval policy a collector config sets."""
    return IntervalPolicy(
        max_gap_ms=int(settings.max_gap_minutes * 60_000),
        rollover_values=tuple(settings.rollover_kwh),
    )


def prune(store: Store, retention_days: float, policy: IntervalPolicy) -> int:
    """Roll up what is pending, then drop raw readings past the retention (their rollups are
    final by then); returns how many values went."""
    refresh_intervals(store, policy)
    return store.prune(retention_days, lookback_ms=lookback_ms(policy))


def lookback_ms(policy: IntervalPolicy) -> int:
    """How far before its first new reading a refresh reads: a counter's energy is split
    across a gap of up to max_gap_ms, so its left neighbour is needed."""
    return policy.max_gap_ms + QUARTER_MS


OnRollups = Callable[[int, list[rollup.Rollup]], None]


# meters refreshed in one transaction: a commit (a sync to disk, a round trip to the
# server) per group, not two per meter; a group ends early after GROUP_S, so the write
# lock ingest waits for is never held long (a meter with a long backlog still takes its own)
GROUP_METERS = 32
GROUP_S = 0.2


def refresh_intervals(
    store: Store, policy: IntervalPolicy, on_rollups: OnRollups | None = None
) -> int:
    """Recompute the 15-minute history of meters that got new readings; `on_rollups` gets
    each meter's recomputed rollups once they are stored (the InfluxDB sink's copy).

    A group's marks are taken in the transaction that stores its history: a failure, or
    the process dying, leaves the group marked for the next refresh. A meter that fails
    undoes its group; the group is then done again a meter at a time, so the meters before
    it get through, and it stays marked with those after it.
    Raw readings in VictoriaMetrics are first made readable (`Store.settle`); a meter
    marked after that is refreshed and stays marked for the next refresh.
    """
    done = 0
    lookback = lookback_ms(policy)
    pending = store.dirty_meters()
    settled = store.settle() if pending else None
    while pending:
        group = pending[:GROUP_METERS]
        try:
            taken, written, consumed = _refresh_group(store, policy, group, lookback, settled)
        except Exception:
            for meter_id in group:
                taken, written, _ = _refresh_group(store, policy, [meter_id], lookback, settled)
                done += _hand_over(store, taken, written, on_rollups)
            pending = pending[len(group) :]
            continue
        done += _hand_over(store, taken, written, on_rollups)
        pending = pending[consumed:]
    return done


def _refresh_group(
    store: Store,
    policy: IntervalPolicy,
    meter_ids: list[int],
    lookback: int,
    settled: int | None = None,
) -> tuple[list[DirtyMeter], list[list[rollup.Rollup]], int]:
    """Refresh these meters (ascending ids) in one transaction, for about GROUP_S at most;
    returns the marks refreshed, their rollups, and how many of `meter_ids` were dealt
    with (the rest keep their marks)."""
    started = time.monotonic()
    with store.transaction():
        taken = store.take_dirty(meter_ids, settled)
        written: list[list[rollup.Rollup]] = []
        starts = {meter_id: _start(from_ms, lookback) for meter_id, from_ms in taken}
        for (meter_id, start), (_, readings) in zip(
            starts.items(), store.readings_of(starts), strict=False
        ):
            if written and time.monotonic() - started > GROUP_S:
                break
            written.append(_refresh_meter(store, policy, meter_id, start, lookback, readings))
        rest = taken[len(written) :]
        store.mark_dirty(dict(rest), new=False)  # the marks it did not get to, as they were
    consumed = meter_ids.index(rest[0].meter_id) if rest else len(meter_ids)
    return taken[: len(written)], written, consumed


def _hand_over(
    store: Store,
    taken: list[DirtyMeter],
    written: list[list[rollup.Rollup]],
    on_rollups: OnRollups | None,
) -> int:
    """Give each refreshed meter's rollups to `on_rollups`; returns how many meters."""
    for i, (dirty, rollups) in enumerate(zip(taken, written, strict=True)):
        try:
            if on_rollups is not None:
                on_rollups(dirty.meter_id, rollups)
        except Exception:
            # this meter and every one not reached yet: again on the next refresh
            with store.transaction():
                store.mark_dirty(dict(taken[i:]), new=False)
            raise
    return len(taken)


def _start(from_ms: int, lookback: int) -> int:
    """Where a refresh of readings marked from `from_ms` starts reading."""
    return (from_ms // QUARTER_MS) * QUARTER_MS - lookback


def _refresh_meter(
    store: Store,
    policy: IntervalPolicy,
    meter_id: int,
    start: int,
    lookback: int,
    readings: ReadingMatrix,
) -> list[rollup.Rollup]:
    # the readings before `keep_from` are context only: the counters' left neighbours
    keep_from = start + lookback - QUARTER_MS
    columns = _columns(readings)
    # where raw readings were pruned, intervals are final: a refresh may fill an empty one
    # (old data replayed) but never replace one computed when all its readings were there
    pruned = store.pruned_until(meter_id)
    final_before = None if pruned is None else pruned + lookback
    store.put_intervals(
        meter_id,
        [r for r in _energy_rows(columns, policy) if r.start_ms >= keep_from],
        final_before,
    )
    rollups = [r for r in _rollups(readings, columns, policy, keep_from) if r.start_ms >= keep_from]
    store.put_rollups(meter_id, [(r.start_ms, *rollup.pack(r)) for r in rollups], final_before)
    return rollups


def _columns(readings: ReadingMatrix) -> dict[str, Samples]:
    """Each quantity's (ts, value) rows, the readings that lack it left out."""
    ts = readings.ts.astype(np.float64)
    columns = {}
    for i, quantity in enumerate(readings.quantities):
        values = readings.values[:, i]
        present = ~np.isnan(values)
        columns[quantity] = np.column_stack((ts[present], values[present]))
    return columns


_NONE: Samples = np.empty((0, 2))


def _energy_rows(columns: dict[str, Samples], policy: IntervalPolicy) -> list[IntervalRow]:
    imported = counter_intervals(columns.get("energy_import_kwh", _NONE), policy)
    exported = {
        r.start_ms: r for r in counter_intervals(columns.get("energy_export_kwh", _NONE), policy)
    }
    power = power_stats(columns.get("power_w", _NONE), QUARTER_MS)
    merged = {r.start_ms: r for r in merge(imported, power)}
    rows: list[IntervalRow] = []
    for start_ms in sorted(merged.keys() | exported.keys()):
        imp, exp = merged.get(start_ms), exported.get(start_ms)
        rows.append(
            IntervalRow(
                start_ms,
                imp.energy_kwh if imp else None,
                bool(imp and imp.estimated),
                exp.energy_kwh if exp else None,
                bool(exp and exp.estimated),
                imp.mean_power_w if imp else None,
                imp.max_power_w if imp else None,
            )
        )
    return rows


def _rollups(
    readings: ReadingMatrix,
    columns: dict[str, Samples],
    policy: IntervalPolicy,
    keep_from: int,
) -> list[rollup.Rollup]:
    gauges = [i for i, q in enumerate(readings.quantities) if not rollup.is_counter(q)]
    counters = {q: rows for q, rows in columns.items() if rollup.is_counter(q)}
    by_start: dict[int, dict[str, rollup.Stats]] = {}
    # a gauge's quarter needs only its own readings: the counters' context is left out
    recent = readings.ts >= keep_from
    if gauges and recent.any():
        names = [readings.quantities[i] for i in gauges]
        matrix = readings.values[recent][:, gauges]
        for r in rollup.gauge_rollups(readings.ts[recent], matrix, names):
            by_start.setdefault(r.start_ms, {}).update(r.values)
    for start, stats in rollup.counter_rollups(counters, policy).items():
        by_start.setdefault(start, {}).update(stats)
    return [rollup.Rollup(start, by_start[start]) for start in sorted(by_start)]
