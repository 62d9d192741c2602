"""Keep the 15-minute history current: recompute the intervals of meters with new readings."""

from __future__ import annotations

from collector.intervals.energy import IntervalPolicy, counter_intervals, merge, power_stats
from collector.store import IntervalRow, Store
from sparwatt.timeutil import QUARTER_MS


def refresh_intervals(store: Store, policy: IntervalPolicy) -> int:
    """Recompute 15-minute import/export energy and power of meters that got new readings."""
    done = 0
    lookback = policy.max_gap_ms + QUARTER_MS
    for meter_id, from_ms in store.take_dirty():
        try:
            store.put_intervals(
                meter_id, _meter_intervals(store, policy, meter_id, from_ms, lookback)
            )
        except Exception:
            store.mark_dirty({meter_id: from_ms})  # try again on the next refresh
            raise
        done += 1
    return done


def _meter_intervals(
    store: Store, policy: IntervalPolicy, meter_id: int, from_ms: int, lookback: int
) -> list[IntervalRow]:
    start = (from_ms // QUARTER_MS) * QUARTER_MS - lookback
    # the readings before `start` are context only: the first intervals lack their left pair
    keep_from = start + lookback - QUARTER_MS
    imported = counter_intervals(store.samples(meter_id, "energy_import_kwh", start), policy)
    exported = {
        r.start_ms: r
        for r in counter_intervals(store.samples(meter_id, "energy_export_kwh", start), policy)
    }
    power = power_stats(store.samples(meter_id, "power_w", start), QUARTER_MS)
    merged = {r.start_ms: r for r in merge(imported, power)}
    rows: list[IntervalRow] = []
    for start_ms in sorted(merged.keys() | exported.keys()):
        if start_ms < keep_from:
            continue
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
