"""The outbox (SQLite) and the forwarder that drains it, with a fake MQTT link."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.outbox import NewBatch, Outbox
from gateway.service import Forwarder
from sparwatt.backoff import backoff_s


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def payload(seq: int, size: int = 10) -> bytes:
    return json.dumps({"seq": seq, "pad": "x" * size}).encode()


def make(
    tmp_path: Path, max_bytes: int = 10**9, max_age_s: float = 10**9, clock: Clock | None = None
) -> Outbox:
    return Outbox(tmp_path / "state" / "outbox.db", max_bytes, max_age_s, clock or Clock())


def test_seq_is_assigned_inside_the_commit_and_survives_reopening(tmp_path: Path) -> None:
    box = make(tmp_path)
    assert [box.append(payload, 1) for _ in range(3)] == [0, 1, 2]
    box.ack([0, 1, 2])
    box.close()
    box = make(tmp_path)
    assert box.append(payload, 1) == 3
    assert box.pending() == [(3, payload(3))]


def test_a_failing_build_commits_nothing_and_burns_no_seq(tmp_path: Path) -> None:
    box = make(tmp_path)
    box.append(payload, 1)

    def broken(seq: int) -> bytes:
        raise ValueError(seq)

    with pytest.raises(ValueError, match="2"):
        box.flush([NewBatch(payload, 1), NewBatch(broken, 1)])
    assert box.next_seq() == 1
    assert [s for s, _ in box.pending()] == [0]
    assert box.append(payload, 1) == 1


def test_flush_commits_new_batches_and_deletes_acked_ones_together(tmp_path: Path) -> None:
    box = make(tmp_path)
    box.flush([NewBatch(payload, 1), NewBatch(payload, 1)])
    assert box.flush([NewBatch(payload, 2)], acked=[0]) == [2]
    assert [s for s, _ in box.pending()] == [1, 2]
    assert box.stats().bytes == len(payload(1)) + len(payload(2))


def test_outbox_uses_wal_with_full_sync(tmp_path: Path) -> None:
    box = make(tmp_path)
    assert box.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_pending_is_oldest_first_within_bounds(tmp_path: Path) -> None:
    box = make(tmp_path)
    for _ in range(6):
        box.append(payload, 1)
    assert [s for s, _ in box.pending(1, 5, 2)] == [2, 3]
    assert [s for s, _ in box.pending(after=3)] == [4, 5]


def test_size_cap_drops_the_oldest_batches_and_counts_them(tmp_path: Path) -> None:
    size = len(payload(0))
    box = make(tmp_path, max_bytes=3 * size)
    for _ in range(5):
        box.append(payload, 4)
    stats = box.stats()
    assert [s for s, _ in box.pending()] == [2, 3, 4]
    assert (stats.depth, stats.dropped_batches, stats.dropped_readings) == (3, 2, 8)
    assert stats.next_seq == 5
    box.close()
    assert make(tmp_path, max_bytes=3 * size).stats().dropped_batches == 2


def test_age_cap_drops_batches_older_than_the_limit(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, max_age_s=60, clock=clock)
    box.append(payload, 1)
    clock.t += 30
    box.append(payload, 1)
    clock.t += 45
    box.append(payload, 1)
    assert [s for s, _ in box.pending()] == [1, 2]
    assert box.stats().dropped_batches == 1
    assert box.stats().oldest_age_s == 45


class FakeLink:
    def __init__(self) -> None:
        self.generation = 1
        self.connected = True
        self.sent: list[int] = []
        self.next_mid = 1
        self.refuse_after: int | None = None

    def is_connected(self) -> bool:
        return self.connected

    def publish(self, _topic: str, body: bytes) -> int | None:
        if not self.connected or (
            self.refuse_after is not None and len(self.sent) >= self.refuse_after
        ):
            return None
        self.sent.append(json.loads(body)["seq"])
        self.next_mid += 1
        return self.next_mid - 1

    def reconnect(self) -> None:
        self.generation += 1
        self.connected = True


def forwarder(tmp_path: Path, rate: float = 2.0) -> tuple[Outbox, FakeLink, Forwarder, Clock]:
    clock = Clock(100.0)
    box = make(tmp_path)
    link = FakeLink()
    fwd = Forwarder(box, link, "t", rate_per_s=rate, retry_rejected_s=10, clock=clock)
    return box, link, fwd, clock


def ack_all(fwd: Forwarder) -> None:
    for mid in list(fwd.inflight):
        fwd.on_ack(mid, True)


def test_backlog_drains_oldest_first_at_the_rate_while_fresh_batches_go_at_once(
    tmp_path: Path,
) -> None:
    box, link, fwd, clock = forwarder(tmp_path, rate=2.0)
    for _ in range(10):
        box.append(payload, 1)  # committed before the connection: backlog
    fwd.step()
    assert link.sent == [0, 1]  # one second's worth of tokens
    box.append(payload, 1)
    box.append(payload, 1)
    clock.t += 0.5
    fwd.step()
    assert link.sent == [0, 1, 10, 11, 2]
    clock.t += 1.0
    fwd.step()
    assert link.sent == [0, 1, 10, 11, 2, 3, 4]
    for _ in range(10):
        clock.t += 1.0
        fwd.step()
    assert link.sent == [0, 1, 10, 11, *range(2, 10)]


def test_batches_are_deleted_only_after_their_puback(tmp_path: Path) -> None:
    box, link, fwd, _ = forwarder(tmp_path, rate=100)
    for _ in range(3):
        box.append(payload, 1)
    fwd.step()
    assert link.sent == [0, 1, 2]
    fwd.on_ack(next(iter(fwd.inflight)), True)
    fwd.step()
    done = fwd.flushed()
    assert done == [0]
    box.ack(done)
    fwd.deleted(done)
    assert [s for s, _ in box.pending()] == [1, 2]
    fwd.step()
    assert link.sent == [0, 1, 2]  # nothing sent twice while in flight


def test_in_flight_batches_are_not_resent_after_a_reconnect(tmp_path: Path) -> None:
    # paho re-sends its in-flight messages itself (same mid) after a reconnect
    box, link, fwd, clock = forwarder(tmp_path, rate=100)
    box.append(payload, 1)
    fwd.step()
    link.connected = False
    box.append(payload, 1)  # committed during the outage
    clock.t += 1
    fwd.step()
    link.reconnect()
    clock.t += 1
    fwd.step()
    box.append(payload, 1)
    fwd.step()
    assert link.sent == [0, 1, 2]
    ack_all(fwd)
    fwd.step()
    assert sorted(fwd.flushed()) == [0, 1, 2]


def test_refused_hand_over_is_retried_without_skipping(tmp_path: Path) -> None:
    box, link, fwd, clock = forwarder(tmp_path, rate=100)
    for _ in range(5):
        box.append(payload, 1)
    link.refuse_after = 2
    fwd.step()
    assert link.sent == [0, 1]
    link.refuse_after = None
    clock.t += 1
    fwd.step()
    assert link.sent == [0, 1, 2, 3, 4]


def test_a_rejected_batch_stays_and_is_retried_later(tmp_path: Path) -> None:
    box, link, fwd, clock = forwarder(tmp_path, rate=100)
    box.append(payload, 1)
    fwd.step()
    fwd.on_ack(next(iter(fwd.inflight)), False)
    clock.t += 1
    fwd.step()
    assert (link.sent, fwd.flushed(), fwd.rejected) == ([0], [], 1)
    clock.t += 10
    fwd.step()
    assert link.sent == [0, 0]


def test_nothing_is_sent_while_offline(tmp_path: Path) -> None:
    box, link, fwd, clock = forwarder(tmp_path)
    link.connected = False
    box.append(payload, 1)
    clock.t += 5
    fwd.step()
    assert link.sent == []


@pytest.mark.parametrize("failures", range(8))
def test_reconnect_backoff_is_jittered_within_its_ceiling(failures: int) -> None:
    ceiling = min(60.0, 1.0 * 2**failures)
    low = backoff_s(failures, 1.0, 60.0, lambda: 0.0)
    high = backoff_s(failures, 1.0, 60.0, lambda: 1.0)
    assert (low, high) == (ceiling / 2, ceiling)


def test_reconnect_ceiling_below_the_first_delay_is_a_config_error() -> None:
    from pydantic import ValidationError

    from gateway.settings import Mqtt

    with pytest.raises(ValidationError, match="reconnect_max_s must be at least"):
        Mqtt(reconnect_min_s=5, reconnect_max_s=2)


def test_a_full_disk_fails_with_its_own_error_and_keeps_what_was_committed(tmp_path: Path) -> None:
    import sqlite3

    box = make(tmp_path)
    box.append(payload, 1)
    pages = box.db.execute("PRAGMA page_count").fetchone()[0]
    box.db.execute(f"PRAGMA max_page_count = {pages}")  # the SD card is full
    with pytest.raises(sqlite3.OperationalError, match="full"):
        box.flush([NewBatch(lambda seq: payload(seq, 100_000), 1)])
    box.db.execute("PRAGMA max_page_count = 1000000")
    assert box.append(payload, 1) == 1  # the failed batch burned no seq
    assert [s for s, _ in box.pending()] == [0, 1]


def test_a_commit_that_fails_keeps_its_readings_for_the_next_commit(tmp_path: Path) -> None:
    import sqlite3

    from gateway import settings
    from gateway.service import Gateway
    from tests.support.processes import free_port

    config = settings.GatewayConfig.model_validate(
        {
            "gateway": {"site": "acme", "id": "gw1", "state_dir": str(tmp_path / "state")},
            "mqtt": {"host": "127.0.0.1", "port": free_port()},  # never connected here
            "buses": [{"id": "b1", "transport": "tcp", "host": "127.0.0.1"}],
            "meters": [{"id": "m1", "bus": "b1", "unit": 1, "model": "eastron-sdm630"}],
        }
    )
    gateway = Gateway(config, environ={}, open_bus=lambda _bus: None)
    try:
        box = gateway.outbox
        pages = box.db.execute("PRAGMA page_count").fetchone()[0]
        box.db.execute(f"PRAGMA max_page_count = {pages}")  # the SD card is full
        gateway.pending.extend(
            {
                "meter": "m1",
                "ts": f"2026-11-26T12:00:{i % 40:02d}.000Z",
                "values": {"power_w": float(i)},
            }
            for i in range(40 * 50)
        )
        with pytest.raises(sqlite3.OperationalError, match="full"):
            gateway.commit()
        assert len(gateway.pending) == 40 * 50
        box.db.execute("PRAGMA max_page_count = 1000000")
        gateway.commit()
        assert gateway.pending == []
        stored = [json.loads(p) for _, p in box.pending()]
        assert sum(len(m["readings"]) for m in stored) == 40 * 50
    finally:
        gateway.outbox.close()
