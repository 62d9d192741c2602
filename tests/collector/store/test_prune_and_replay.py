"""Pruning raw readings never outruns the rollups, and old readings replayed after their raw
period still reach the 15-minute history, without undoing what it already holds."""

from __future__ import annotations

import time

from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import lookback_ms, prune, refresh_intervals
from collector.intervals.rollup import GaugeStats
from collector.store import Reader, Store
from collector.store.sql import Target
from sparwatt import wire
from tests.support.messages import message

Q = 900_000
DAY = 86_400_000
POLICY = IntervalPolicy()


def day_of_readings(
    start_ms: int, seq: int, watts: float, every_ms: int = 60_000
) -> list[wire.ReadingsMessage]:
    return [
        message(
            seq,
            [
                ("m1", start_ms + k * every_ms, {"power_w": watts, "current_l1_a": watts / 230})
                for k in range(0, DAY // every_ms, 1)
            ][i : i + 500],
        )
        for i in range(0, DAY // every_ms, 500)
    ]


def power_means(db: Target, meter_id: int, lo: int, hi: int) -> dict[int, tuple[float, int]]:
    with Reader(db) as reader:
        out = {}
        for start, stats in reader.rollups(meter_id, lo, hi):
            found = stats["power_w"]
            assert isinstance(found, GaugeStats)
            out[start] = (found.mean, found.count)
        return out


def test_replayed_old_readings_reach_the_rollups_and_prune_waits_for_them(
    db_target: Target,
) -> None:
    db = db_target
    store = Store(db)
    now = time.time()
    today = int(now * 1000) // DAY * DAY
    for msg in day_of_readings(today - DAY, 1, 1000.0):
        store.write([msg])
    prune(store, 7, POLICY)
    meter_id = store.meter_id("site-a", "gw1", "m1")
    assert meter_id is not None

    # a gateway's month-old backlog arrives now, long after its raw period
    old = today - 30 * DAY
    for msg in day_of_readings(old, 2, 500.0):
        store.write([msg])
    # before its rollups are computed the prune leaves it alone
    assert store.prune(7, now=now, lookback_ms=lookback_ms(POLICY)) == 0
    with Reader(db) as reader:
        assert sum(1 for _ in reader.raw("site-a", old, old + DAY)) == 2 * 1440

    assert prune(store, 7, POLICY) == 2 * 1440
    means = power_means(db, meter_id, old, old + DAY)
    assert len(means) == 96
    assert set(means.values()) == {(500.0, 15)}
    with Reader(db) as reader:
        assert not list(reader.raw("site-a", old, old + DAY))

    # the same interval replayed in part: its rollup, final now, is not replaced by one made
    # from the few readings that came again
    store.write([message(3, [("m1", old + 60_000, {"power_w": 9999.0, "current_l1_a": 1.0})])])
    refresh_intervals(store, POLICY)
    assert power_means(db, meter_id, old, old + Q)[old] == (500.0, 15)
    store.close()
