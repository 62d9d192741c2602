"""The ingest loop with a fake message source: quarantine, containment, acks, sink, stats; on
each database engine."""

from __future__ import annotations

import gc
import queue
import threading
from typing import Any

import pytest

from collector.ingest.subscriber import Incoming
from collector.service import Collector
from collector.store import Reader
from collector.store.leases import is_busy
from collector.store.sql import Target
from devtools.victoria import VictoriaMetrics
from sparwatt import wire
from sparwatt.errors import VictoriaError
from tests.support.engines import drop_refusal, refuse_inserts, write_lock_held
from tests.support.messages import (
    NOW_MS,
    REGISTRY,
    bad_cases,
    config,
    encoded,
    good_stream,
    readings_topic,
)


class FakeSource:
    def __init__(self) -> None:
        self.inbox: queue.Queue[Incoming] = queue.Queue()
        self.acked: list[int] = []
        self.started = self.stopped = False

    def take(self, limit: int, wait_s: float) -> list[Incoming]:
        out: list[Incoming] = []
        while len(out) < limit and not self.inbox.empty():
            out.append(self.inbox.get_nowait())
        if not out:
            threading.Event().wait(min(wait_s, 0.01))
        return out

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def ack(self, items: list[Incoming]) -> None:
        self.acked += [i.mid for i in items]


class FakeSink:
    def __init__(self) -> None:
        self.got: list[wire.ReadingsMessage] = []

    def submit(self, messages: list[wire.ReadingsMessage]) -> None:
        self.got += messages

    def start(self) -> None: ...

    def stop(self, flush_s: float = 5.0) -> None: ...

    def stats(self) -> Any:
        return type(
            "S",
            (),
            {"backlog": 7, "written": 3, "dropped": 0, "failures": 2, "last_error": "HTTP 503"},
        )()


def items(pairs: list[tuple[str, bytes]], first_mid: int = 1) -> list[Incoming]:
    return [Incoming(t, p, first_mid + k, 1) for k, (t, p) in enumerate(pairs)]


def collector(db: Target, **ingest: Any) -> tuple[Collector, FakeSource, FakeSink]:
    source, sink = FakeSource(), FakeSink()
    cfg = config(db, ingest={"registration": "registry", "gateways": REGISTRY, **ingest})
    return Collector(cfg, environ={}, sink=sink, source=source), source, sink


def test_every_bad_message_is_quarantined_with_its_reason_and_good_ones_between_are_stored(
    backend: Target,
) -> None:
    c, source, sink = collector(backend, quarantine_payload_bytes=64)
    cases = bad_cases()
    good = good_stream(len(cases) + 1)
    mixed = [good[0]]
    for case, ok in zip(cases, good[1:], strict=True):
        mixed += [(case.topic, case.payload), ok]

    c.handle(items(mixed))

    with Reader(c.store.path) as reader:
        quarantined = reader.quarantine(1000, with_payload=True)
        assert reader.reading_count() == len(good) * 2
        assert reader.quarantine_by_reason() == {
            r: sum(1 for x in cases if x.reason == r) for r in {x.reason for x in cases}
        }
    assert len(quarantined) == len(cases)
    for case, row in zip(cases, reversed(quarantined), strict=True):
        assert (row.topic, row.reason) == (case.topic, case.reason), case.name
        assert case.detail in row.detail, (case.name, row.detail)
        assert (row.size, row.payload) == (len(case.payload), case.payload[:64])
    assert source.acked == list(range(1, len(mixed) + 1))
    assert [m.seq for m in sink.got] == list(range(1, len(good) + 1))


def test_a_message_the_database_refuses_is_quarantined_and_the_rest_of_its_batch_stored(
    backend: Target,
) -> None:
    c, source, sink = collector(backend)
    refuse_inserts(c.store.db, "meter", "poisoned meter", when="NEW.meter = 'poison'")
    poison = (readings_topic(), encoded(2, [("poison", NOW_MS, {"power_w": 1.0})]))

    c.handle(items([*good_stream(1), poison, *good_stream(1, first_seq=3)]))

    with Reader(c.store.path) as reader:
        assert reader.reading_count() == 4
        [row] = reader.quarantine(10)
    assert (row.reason, "poisoned meter" in row.detail) == ("store_error", True)
    assert source.acked == [1, 2, 3]
    assert [m.seq for m in sink.got] == [1, 3]


def test_nothing_is_acked_when_the_database_cannot_take_even_the_quarantine(
    backend: Target,
) -> None:
    c, source, sink = collector(backend)
    for table in ("dirty", "quarantine"):
        refuse_inserts(c.store.db, table, "disk on fire")

    with pytest.raises(Exception, match="disk on fire"):
        c.handle(items(good_stream(3)))

    assert source.acked == []
    assert sink.got == []


def test_a_database_another_collector_keeps_locked_quarantines_nothing(backend: Target) -> None:
    """A lock held past busy_timeout (another collector's long refresh) is no fault of the
    messages: the batch stays unacked for the loop to store again, nothing is quarantined."""
    c, source, _sink = collector(backend)
    with write_lock_held(backend, c.store.db), pytest.raises(Exception) as err:
        c.handle(items(good_stream(2)))
    assert is_busy(err.value), err.value
    assert source.acked == []
    c.handle(items(good_stream(2)))  # the lock is free: stored and acked
    assert source.acked == [1, 2]
    with Reader(c.config.storage.db) as reader:
        assert reader.quarantine_by_reason() == {}
        assert reader.counters()["readings"] == sum(
            len(wire.decode_readings(t, p).readings) for t, p in good_stream(2)
        )


def test_the_loop_retries_an_unstored_batch_until_the_database_recovers(backend: Target) -> None:
    c, source, _sink = collector(backend)
    for table in ("dirty", "quarantine"):
        refuse_inserts(c.store.db, table, "disk on fire")
    for item in items(good_stream(5)):
        source.inbox.put(item)
    stop = threading.Event()
    healed = threading.Event()

    def heal() -> None:
        # runs on the loop's thread, between two attempts
        if not healed.is_set() and c.store.db.in_transaction is False:
            drop_refusal(c.store.db, "dirty")
            drop_refusal(c.store.db, "quarantine")
            healed.set()

    original = c.handle

    def handle(batch: list[Incoming]) -> None:
        try:
            original(batch)
        finally:
            heal()
            if source.acked:
                stop.set()

    c.handle = handle  # type: ignore[method-assign, assignment]
    c.run(stop)

    with Reader(c.store.path) as reader:
        assert reader.reading_count() == 10
    assert source.acked == [1, 2, 3, 4, 5]
    assert (source.started, source.stopped) == (True, True)


@pytest.mark.parametrize("backend", ["victoria+postgres"], indirect=True)
def test_nothing_is_acked_while_victoriametrics_is_down_and_all_is_stored_once_it_is_back(
    backend: Target, victoria: VictoriaMetrics
) -> None:
    c, source, sink = collector(backend)
    c.handle(items(good_stream(2)))
    victoria.stop()

    with pytest.raises(VictoriaError, match="did not take 3 readings"):
        c.handle(items(good_stream(3, first_seq=3), first_mid=3))

    assert source.acked == [1, 2]
    assert [m.seq for m in sink.got] == [1, 2]
    with Reader(c.store.path) as reader:
        assert reader.gaps() == []  # the batch that failed moved no seq
        assert reader.counters()["stored"] == 4
    victoria.start()
    c.handle(items(good_stream(3, first_seq=3), first_mid=3))
    assert source.acked == [1, 2, 3, 4, 5]
    with Reader(c.store.path) as reader:
        assert reader.reading_count() == 10
        assert reader.gaps() == []
        # every batch's values, the one sent while the server was down included
        assert sorted(r.value for r in reader.raw("site-a", 0, 2**62)) == [
            float(seq) for seq in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)
        ]
    assert victoria.value_count() == 10


def test_status_and_health_update_the_gateway_registry(backend: Target) -> None:
    c, _source, _sink = collector(backend)
    c.handle(
        items(
            [
                (
                    wire.topic("site-a", "gw1", "status"),
                    b'{"schema": 1, "state": "online", "version": "1.2", "meters": ["m1"]}',
                ),
                (wire.topic("site-a", "gw1", "health"), b'{"uptime_s": 12}'),
            ]
        )
    )
    with Reader(c.store.path) as reader:
        gw = next(g for g in reader.gateways() if g.gateway == "gw1" and g.site == "site-a")
    assert (gw.state, gw.health) == ("online", {"uptime_s": 12})


def test_stats_carry_the_ingest_rate_and_the_sink_backlog(backend: Target) -> None:
    c, _source, _sink = collector(backend)
    c.handle(items(good_stream(4)))

    values = c.publish_stats()

    assert values["ingest_readings_per_s"] > 0  # type: ignore[operator]
    with Reader(c.store.path) as reader:
        stats = {k: v for k, (v, _ts) in reader.stats().items()}
    assert (stats["sink_backlog"], stats["sink_failures"], stats["sink_last_error"]) == (
        7,
        2,
        "HTTP 503",
    )


def test_cycle_collection_waits_while_a_batch_is_handled_and_resumes_after(tmp_path: Any) -> None:
    """A batch's objects are alive until it is stored: collections meanwhile would only walk
    them. The collector pauses them for the batch and turns them on again, also when the
    batch fails."""
    c, source, _ = collector(tmp_path / "c.db")
    during: list[bool] = []
    c.listeners.append(lambda _accepted: during.append(gc.isenabled()))
    assert gc.isenabled()

    c.handle(items(good_stream(3)))
    assert during == [False]
    assert gc.isenabled()

    refuse_inserts(c.store.db, "dirty", "disk on fire")
    refuse_inserts(c.store.db, "quarantine", "disk on fire")
    with pytest.raises(Exception, match="disk on fire"):
        c.handle(items(good_stream(3), first_mid=10))
    assert gc.isenabled()
    assert source.acked == [1, 2, 3]
