"""15-minute interval energy computed from stored readings (SQLite and PostgreSQL), to the
exact kWh."""

from __future__ import annotations

from typing import Any

import pytest

from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import refresh_intervals
from collector.store import Reader, Store
from collector.store.sql import Target
from tests.support.messages import NOW_MS, message

MIN = 60_000
Q = 15 * MIN
T0 = NOW_MS  # on a quarter-hour boundary
POLICY = IntervalPolicy(rollover_values=(100_000.0,))


def exact(kwh: float) -> Any:
    return pytest.approx(kwh, rel=1e-12, abs=1e-12)


def store_counter(
    store: Store,
    meter: str,
    points: list[tuple[int, float]],
    quantity: str = "energy_import_kwh",
    seq: int = 1,
) -> None:
    store.write(
        [message(seq, [(meter, T0 + minute * MIN, {quantity: value}) for minute, value in points])]
    )


def intervals(path: Target, meter: str) -> dict[int, tuple[Any, ...]]:
    """quarter index -> (import, est, export, est, mean W, max W)"""
    with Reader(path) as reader:
        return {
            (start - T0) // Q: tuple(rest)
            for _g, m, start, *rest in reader.energy_intervals("site-a", 0, 2**62)
            if m == meter
        }


def test_energy_is_split_pro_rata_across_quarters_for_import_and_export(backend: Target) -> None:
    store = Store(backend)
    store_counter(store, "main", [(0, 100.0), (10, 101.0), (25, 102.5), (30, 103.0)])
    store_counter(store, "main", [(0, 10.0), (30, 10.3)], "energy_export_kwh", seq=2)
    store.write(
        [
            message(
                3,
                [
                    ("main", T0 + m * MIN, {"power_w": w})
                    for m, w in [(0, 1000.0), (5, 3000.0), (20, 500.0)]
                ],
            )
        ]
    )

    assert refresh_intervals(store, POLICY) == 1

    got = intervals(store.path, "main")
    assert sorted(got) == [0, 1]
    # 10..25 carries 1.5 kWh: a third of it before the quarter boundary
    assert got[0] == (exact(1.5), 0, exact(0.15), 0, 2000.0, 3000.0)
    # the export counter has no reading inside quarter 1: its share there is interpolated
    assert got[1] == (exact(1.5), 0, exact(0.15), 1, 500.0, 500.0)


def test_refreshing_after_every_new_reading_gives_the_same_exact_figures(backend: Target) -> None:
    store = Store(backend)
    for seq, point in enumerate([(0, 100.0), (10, 101.0), (25, 102.5), (30, 103.0)], 1):
        store_counter(store, "main", [point], seq=seq)
        refresh_intervals(store, POLICY)

    got = intervals(store.path, "main")
    assert (got[0][0], got[1][0]) == (exact(1.5), exact(1.5))
    assert refresh_intervals(store, POLICY) == 0  # nothing new, nothing recomputed


def test_a_counter_reset_loses_its_step_and_marks_the_quarter_estimated(backend: Target) -> None:
    store = Store(backend)
    store_counter(store, "m", [(0, 500.0), (5, 501.0), (10, 0.0), (15, 0.5), (20, 1.0)])

    refresh_intervals(store, POLICY)

    got = intervals(store.path, "m")
    assert got[0][:2] == (exact(1.5), 1)
    assert got[1][:2] == (exact(0.5), 0)


def test_a_rollover_at_a_configured_wrap_point_counts_the_energy_across_it(
    backend: Target,
) -> None:
    store = Store(backend)
    store_counter(store, "m", [(0, 99_999.0), (10, 99_999.5), (20, 0.5), (30, 1.0)])

    refresh_intervals(store, POLICY)

    got = intervals(store.path, "m")
    # 99999.5 -> 100000 -> 0.5 is 1 kWh over 10..20, half of it in each quarter
    assert (got[0][:2], got[1][:2]) == ((exact(1.0), 0), (exact(1.0), 0))


def test_a_meter_replacement_is_not_mistaken_for_a_rollover(backend: Target) -> None:
    store = Store(backend)
    store_counter(store, "m", [(0, 5000.0), (10, 5001.0), (20, 3.0), (30, 4.0)])

    refresh_intervals(store, POLICY)

    got = intervals(store.path, "m")
    assert (got[0][:2], got[1][:2]) == ((exact(1.0), 1), (exact(1.0), 1))


def test_no_energy_is_invented_across_a_gap_longer_than_the_limit(backend: Target) -> None:
    store = Store(backend)
    store_counter(store, "m", [(0, 10.0), (15, 11.0), (195, 20.0), (210, 21.0)])

    refresh_intervals(store, POLICY)  # default limit: 2 h

    got = intervals(store.path, "m")
    assert got[0][0] == exact(1.0)
    assert all(got[k][0] is None for k in range(1, 13))
    assert got[13][0] == exact(1.0)


def test_a_meter_whose_history_cannot_be_stored_stays_marked_and_holds_back_no_earlier_one(
    backend: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(backend)
    for k, meter in enumerate(("m0", "m1", "m2")):
        store_counter(store, meter, [(0, 100.0), (20, 101.0)], seq=k + 1)
    marked = [tuple(d) for d in store.take_dirty()]
    store.mark_dirty(dict(marked))
    failing = store.meter_id("site-a", "gw1", "m1")
    real = store.put_rollups

    def fail_for_m1(meter_id: int, *args: Any) -> None:
        if meter_id == failing:
            raise OSError("disk full")
        real(meter_id, *args)

    monkeypatch.setattr(store, "put_rollups", fail_for_m1)
    with pytest.raises(OSError, match="disk full"):
        refresh_intervals(store, POLICY)
    # m0 got through; m1 and the meter after it are due again, from where they were
    assert intervals(backend, "m0")[0][0] == exact(0.75)
    assert not intervals(backend, "m1")
    assert [tuple(d) for d in store.take_dirty()] == [m for m in marked if m[0] >= failing]
    store.mark_dirty({m: f for m, f in marked if m >= failing})
    monkeypatch.setattr(store, "put_rollups", real)
    assert refresh_intervals(store, POLICY) == 2
    assert intervals(backend, "m2")[0][0] == exact(0.75)
    assert store.take_dirty() == []


def test_a_long_refresh_commits_in_short_groups_and_finishes_every_meter(
    backend: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector.intervals import refresh

    store = Store(backend)
    meters = [f"m{k}" for k in range(5)]
    for k, meter in enumerate(meters):
        store_counter(store, meter, [(0, 100.0), (20, 101.0)], seq=k + 1)
    commits: list[int] = []
    real = store.take_dirty

    def counted(meter_ids: list[int] | None = None, settled: int | None = None) -> Any:
        commits.append(len(meter_ids or ()))
        return real(meter_ids, settled)

    monkeypatch.setattr(store, "take_dirty", counted)
    monkeypatch.setattr(refresh, "GROUP_S", 0.0)  # every group ends after its first meter
    assert refresh_intervals(store, POLICY) == 5
    assert len(commits) == 5  # a transaction a meter, each offered the rest of the group
    assert all(intervals(backend, m)[0][0] == exact(0.75) for m in meters)
    assert real() == []


def test_a_transaction_within_a_transaction_is_part_of_it(backend: Target) -> None:
    store = Store(backend)

    def nested_then_fail() -> None:
        with store.transaction():
            store.register_gateway("site-b", "gw9")
            with store.transaction():
                store.mark_dirty({1: T0})
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError, match="undo"):
        nested_then_fail()
    assert store.take_dirty() == []
    assert not store.knows_gateway("site-b", "gw9")
