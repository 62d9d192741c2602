"""Seq gaps with several collectors on one database: the last seq comes from the database,
and a jump is a gap only once the grace time is over (it may be in flight elsewhere)."""

from __future__ import annotations

import multiprocessing
import random
from contextlib import closing
from typing import Any

import pytest

from collector.intervals.refresh import policy_of, refresh_intervals
from collector.settings import Intervals
from collector.store import GapRow, Reader, Store, now_ms
from collector.store.schema import connect
from collector.store.sql import Target
from sparwatt import wire
from tests.support.messages import NOW_MS, message

S = 1000  # ms
GRACE_MS = 60_000


def batch(seq: int, gateway: str = "gw1") -> wire.ReadingsMessage:
    """Batch n holds readings at n*10 s and n*10 s + 5 s."""
    return message(
        seq,
        [
            ("m1", NOW_MS + seq * 10 * S, {"power_w": float(seq)}),
            ("m1", NOW_MS + seq * 10 * S + 5 * S, {"power_w": float(seq)}),
        ],
        gateway=gateway,
    )


def shared_database(path: Target) -> None:
    """A database other writers open afterwards, its packing layout already made."""
    seed = Store(path)
    seed.write([message(1, [("m1", NOW_MS, {"power_w": 0.0})], gateway="seed")])
    seed.close()


def store_with_grace(path: Target, grace_ms: int = GRACE_MS) -> Store:
    store = Store(path)
    store.gap_grace_ms = grace_ms
    return store


def query(path: Target, sql: str) -> list[Any]:
    """Rows of one statement, on a connection of its own."""
    with closing(connect(path)) as db:
        return [tuple(row) for row in db.execute(sql).fetchall()]


def pending(path: Target) -> list[tuple[int, int]]:
    return query(path, "SELECT from_seq, to_seq FROM gap_pending ORDER BY from_seq")


def gaps(path: Target) -> list[GapRow]:
    with Reader(path) as reader:
        return reader.gaps()


def test_a_seq_jump_is_no_gap_until_the_grace_is_over(db_target: Target) -> None:
    path = db_target
    store = store_with_grace(path)
    store.write([batch(1), batch(2), batch(7)])

    assert gaps(path) == []  # 3-6 may be in flight at another collector
    assert pending(path) == [(3, 6)]
    assert store.promote_gaps(now_ms() + GRACE_MS - 5 * S) == 0
    assert gaps(path) == []

    assert store.promote_gaps(now_ms() + GRACE_MS + S) == 1
    assert gaps(path) == [
        GapRow("site-a", "gw1", 3, 6, after_ms=NOW_MS + 25 * S, before_ms=NOW_MS + 70 * S)
    ]
    assert pending(path) == []


def test_batches_arriving_within_the_grace_leave_no_gap(db_target: Target) -> None:
    path = db_target
    store = store_with_grace(path)
    store.write([batch(1), batch(5)])
    store.write([batch(3)])  # splits what is missing into 2 and 4
    assert pending(path) == [(2, 2), (4, 4)]
    store.write([batch(4), batch(2)])
    store.write([batch(2)])  # a redelivery changes nothing
    assert pending(path) == []
    assert store.promote_gaps(now_ms() + 10 * GRACE_MS) == 0
    assert gaps(path) == []


def test_a_split_keeps_the_grace_of_the_jump_that_made_it(db_target: Target) -> None:
    path = db_target
    store = store_with_grace(path)
    store.write([batch(1), batch(9)])
    detected = now_ms()
    store.write([batch(5)])  # later, but 2-4 and 6-8 went missing at the jump
    assert store.promote_gaps(detected + GRACE_MS + S) == 2
    assert [(g.from_seq, g.to_seq) for g in gaps(path)] == [(2, 4), (6, 8)]


def test_a_batch_later_than_the_grace_still_closes_its_part_of_the_gap(db_target: Target) -> None:
    path = db_target
    store = store_with_grace(path)
    store.write([batch(1), batch(5)])
    store.promote_gaps(now_ms() + GRACE_MS + S)
    store.write([batch(3)])  # a collector that was down for longer than the grace
    spans = [(g.from_seq, g.to_seq, g.after_ms, g.before_ms) for g in gaps(path)]
    assert spans == [
        (2, 2, NOW_MS + 15 * S, NOW_MS + 30 * S),
        (4, 4, NOW_MS + 35 * S, NOW_MS + 50 * S),
    ]
    store.write([batch(2), batch(4)])
    assert gaps(path) == []


def test_the_last_seq_comes_from_the_database_not_a_stale_cache(db_target: Target) -> None:
    """Two writers (two collectors) take turns with one gateway's batches: neither's cache
    knows what the other stored, and neither sees a gap that is not there."""
    path = db_target
    shared_database(path)
    first, second = store_with_grace(path, 0), store_with_grace(path, 0)  # gaps at once
    first.write([batch(1)])
    second.write([batch(2)])  # its cache never saw seq 1
    first.write([batch(3)])  # its cache says 1: seq 2 is not missing
    second.write([batch(4), batch(6)])
    first.write([batch(5)])  # closes the gap the other recorded
    assert gaps(path) == []
    with Reader(path) as reader:
        [gateway] = [g for g in reader.gateways() if g.gateway == "gw1"]
    assert (gateway.last_seq, gateway.last_seen_ms) == (6, NOW_MS + 65 * S)
    assert first.knows_gateway("site-a", "gw1")
    assert second.knows_gateway("site-a", "gw1")


def test_layouts_and_quantities_another_writer_added_since_it_opened(db_target: Target) -> None:
    """Two writers opened on an empty database each meet a packing layout and quantities
    the other stored first: both batches go in whole, and the meter lists every quantity."""
    path = db_target
    first, second = Store(path), Store(path)
    volts = {"power_w": 1.0, "voltage_l1_v": 230.0}
    amps = {"power_w": 2.0, "current_l1_a": 4.5}
    assert first.write([message(1, [("m1", NOW_MS, volts)])]).stored == 2
    assert second.write([message(2, [("m1", NOW_MS + S, volts)])]).stored == 2
    assert second.write([message(3, [("m1", NOW_MS + 2 * S, amps)])]).stored == 2
    assert first.write([message(4, [("m1", NOW_MS + 3 * S, amps)])]).stored == 2
    first.close()
    second.close()
    with Reader(path) as reader:
        [meter] = reader.meters("site-a")
        assert sorted(meter.quantities) == ["current_l1_a", "power_w", "voltage_l1_v"]
        assert reader.reading_count() == 8  # stored values
    assert query(path, "SELECT COUNT(*) FROM layout") == [(2,)]


def test_a_refresh_and_a_merge_read_layouts_another_writer_made(db_target: Target) -> None:
    """A layout another collector made since this one opened is read on first use: the
    refresh rolls up every dirty meter, and a redelivery with more quantities merges."""
    path = db_target
    first, second = Store(path), Store(path)
    policy = policy_of(Intervals())
    power = {"power_w": 1.0}
    first.write([message(1, [(m, NOW_MS, power) for m in ("m0", "m1", "m2")])])
    refresh_intervals(first, policy)
    later = NOW_MS + 60 * S
    # m1 reports a voltage too: a layout `first` has never seen
    second.write(
        [message(2, [("m1", later, {**power, "voltage_l1_v": 230.0}), ("m2", later, power)])]
    )
    assert refresh_intervals(first, policy) == 2
    assert query(path, "SELECT COUNT(*) FROM dirty") == [(0,)]
    again = {**power, "voltage_l1_v": 230.0, "current_l1_a": 1.5}
    assert first.write([message(2, [("m1", later, again)])]).stored == 1
    first.close()
    second.close()
    with Reader(path) as reader:
        [row] = [r for r in reader.latest("site-a") if r.quantity == "current_l1_a"]
        assert row.value == 1.5


def test_a_failed_refresh_leaves_every_meter_it_did_not_finish_dirty(db_target: Target) -> None:
    path = db_target
    store = Store(path)
    store.write([message(1, [(m, NOW_MS, {"power_w": 1.0}) for m in ("m0", "m1", "m2")])])
    marked = query(path, "SELECT meter_id, from_ms FROM dirty ORDER BY 1")
    calls: list[int] = []

    def fail_on_second(meter_id: int, _rollups: object) -> None:
        calls.append(meter_id)
        if len(calls) == 2:
            raise RuntimeError("sink down")

    with pytest.raises(RuntimeError, match="sink down"):
        refresh_intervals(store, policy_of(Intervals()), fail_on_second)
    store.close()
    left = query(path, "SELECT meter_id, from_ms FROM dirty ORDER BY 1")
    # the meter that failed and the one never reached, each from where it was
    assert left == sorted(m for m in marked if m[0] != calls[0])


def _write_share(path: Target, share: list[tuple[str, int]], go: object) -> None:
    """One collector process: store its share of the batches, in the order it got them."""
    store = store_with_grace(path)
    go.wait()  # type: ignore[attr-defined]
    for k in range(0, len(share), 3):  # a few messages per transaction, as a batch would
        store.write([batch(seq, gateway) for gateway, seq in share[k : k + 3]])
    store.close()


def test_three_processes_storing_one_stream_out_of_order_see_no_gap(db_target: Target) -> None:
    path = db_target
    shared_database(path)
    gateways, per_gateway = 4, 150
    stream = [(f"gw{g}", seq) for seq in range(1, per_gateway + 1) for g in range(gateways)]
    rng = random.Random(3)
    # round-robin over three collectors (so each gateway's batches go to all three), each
    # getting its share a little out of order
    shares = [stream[k::3] for k in range(3)]
    for share in shares:
        for k in range(0, len(share) - 1, 2):
            if rng.random() < 0.5:
                share[k], share[k + 1] = share[k + 1], share[k]
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    workers = [context.Process(target=_write_share, args=(path, share, go)) for share in shares]
    for worker in workers:
        worker.start()
    go.set()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]

    assert pending(path) == []  # every jump was closed by a batch from another process
    assert gaps(path) == []
    with Reader(path) as reader:
        last = {g.gateway: g.last_seq for g in reader.gateways() if g.gateway != "seed"}
        counters = reader.counters()
    assert last == {f"gw{g}": per_gateway for g in range(gateways)}
    assert (counters["messages"], counters["stored"], counters.get("duplicates", 0)) == (
        1 + len(stream),
        1 + 2 * len(stream),
        0,
    )
