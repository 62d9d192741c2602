"""The collector process against a real Mosquitto: duplicates, reordering, SIGKILL, bad input;
on each database engine."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from collector.cli.common import database_exists
from collector.store import Reader
from collector.store.sql import Target
from devtools.broker import Mosquitto
from tests.support.engines import sqlite_backend_only
from tests.support.messages import NOW_MS, REGISTRY, bad_cases, good_stream
from tests.support.processes import Processes, collector_config, wait_until

pytestmark = pytest.mark.integration

Stream = list[tuple[str, bytes]]


class Publisher:
    """A plain paho client publishing at QoS 1, as a gateway does."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="test-publisher",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, stream: Stream, pause_every: int = 0, pause_s: float = 0.0) -> None:
        infos = []
        for k, (topic, payload) in enumerate(stream, 1):
            infos.append(self.client.publish(topic, payload, qos=1))
            if pause_every and k % pause_every == 0:
                time.sleep(pause_s)
        for info in infos:
            info.wait_for_publish(timeout=30)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_collector(
    procs: Processes, tmp_path: Path, db: Target, port: int, extra: str = ""
) -> tuple[Target, Path]:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(collector_config(db, port, extra=extra))
    procs.spawn("collector", "collector.cli", "run", str(cfg))
    return db, cfg


def readings_stored(db: Target) -> int:
    if not database_exists(db):
        return 0
    try:
        with Reader(db) as reader:
            return reader.reading_count()
    except Exception:  # the collector is still creating its schema
        return 0


def counter(db: Target, name: str) -> int:
    with Reader(db) as reader:
        return reader.counters().get(name, 0)


def subscribe_first(publisher: Publisher, db: Target, procs: Processes) -> None:
    """Probe until the collector's session exists, so nothing after it can miss it."""
    probe = good_stream(1, first_seq=0)

    def arrived() -> bool:
        publisher.send(probe)
        return readings_stored(db) > 0

    try:
        wait_until(arrived, 60, "the collector to subscribe", every_s=0.3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\ncollector log:\n{procs.log('collector')[-3000:]}") from None


def stored_set(db: Target) -> list[tuple[str, str, int, float]]:
    with Reader(db) as reader:
        return sorted((m, q, ts, v) for _g, m, q, ts, v in reader.raw("site-a", 0, 2**62))


def expected_set(first_seq: int, count: int) -> list[tuple[str, str, int, float]]:
    return sorted(
        ("m1", q, NOW_MS + seq * 1000, float(seq))
        for seq in range(first_seq, first_seq + count)
        for q in ("power_w", "energy_import_kwh")
    )


@sqlite_backend_only
def test_duplicated_and_reordered_messages_are_each_stored_once(
    tmp_path: Path, backend: Target, broker: Mosquitto, procs: Processes
) -> None:
    db, _cfg = start_collector(procs, tmp_path, backend, broker.port)
    publisher = Publisher(broker.port)
    subscribe_first(publisher, db, procs)
    rng = random.Random(7)
    stream = good_stream(1000)
    stream += rng.sample(stream, 100)  # 10 % sent twice
    for k in range(0, len(stream) - 1, 2):  # and the order shuffled locally
        if rng.random() < 0.5:
            stream[k], stream[k + 1] = stream[k + 1], stream[k]
    head = stream[:200]  # and the first 200 thoroughly
    rng.shuffle(head)
    stream[:200] = head

    publisher.send(stream)
    wait_until(lambda: readings_stored(db) >= 2002, 30, "all readings stored")
    wait_until(lambda: counter(db, "messages") >= 1101, 30, "all messages")
    publisher.close()

    assert stored_set(db) == expected_set(0, 1001)
    with Reader(db) as reader:
        counters = reader.counters()
        assert counters["stored"] == 2002
        assert counters["duplicates"] == counters["messages"] * 2 - 2002  # every extra copy
        assert reader.gaps() == []  # reordering closed every transient gap
        assert reader.quarantine(10) == []


def test_a_collector_killed_mid_stream_loses_nothing_and_doubles_nothing(
    tmp_path: Path, backend: Target, broker: Mosquitto, procs: Processes
) -> None:
    db, cfg = start_collector(procs, tmp_path, backend, broker.port)
    publisher = Publisher(broker.port)
    subscribe_first(publisher, db, procs)
    stream = good_stream(1000)
    sender = threading.Thread(target=publisher.send, args=(stream, 20, 0.02))
    sender.start()

    wait_until(lambda: readings_stored(db) >= 300, 30, "part of the stream stored", every_s=0.02)
    procs.stop(procs.children[0], signal.SIGKILL)
    at_kill = readings_stored(db)
    sender.join(60)
    assert at_kill < 2002, "the stream ended before the kill: the test proves nothing"

    procs.spawn("collector-2", "collector.cli", "run", str(cfg))
    wait_until(lambda: readings_stored(db) >= 2002, 30, "the rest after the restart")
    time.sleep(0.5)  # any late redelivery would land now, and must change nothing
    publisher.close()

    assert stored_set(db) == expected_set(0, 1001)
    with Reader(db) as reader:
        assert reader.counters()["stored"] == 2002
        assert reader.gaps() == []


def test_hostile_messages_over_mqtt_are_quarantined_and_the_good_stream_goes_on(
    tmp_path: Path, backend: Target, broker: Mosquitto, procs: Processes
) -> None:
    registry = "".join(
        f'[[ingest.gateways]]\nsite = "{g["site"]}"\ngateway = "{g["gateway"]}"\n' for g in REGISTRY
    )
    db, _cfg = start_collector(
        procs,
        tmp_path,
        backend,
        broker.port,
        extra=f'[ingest]\nregistration = "registry"\nquarantine_payload_bytes = 256\n{registry}',
    )
    publisher = Publisher(broker.port)
    subscribe_first(publisher, db, procs)
    cases = bad_cases()
    good = good_stream(len(cases))
    mixed: Stream = []
    for case, ok in zip(cases, good, strict=True):
        mixed += [(case.topic, case.payload), ok]

    publisher.send(mixed)

    def all_in() -> bool:
        with Reader(db) as reader:
            return len(reader.quarantine(1000)) >= len(cases) and reader.reading_count() >= (
                2 * (len(good) + 1)
            )

    wait_until(all_in, 60, "every message stored or quarantined")
    publisher.close()
    assert procs.children[0].poll() is None, "the collector died"
    assert stored_set(db) == expected_set(0, len(good) + 1)
    with Reader(db) as reader:
        rows = {(r.topic, r.payload): r for r in reader.quarantine(1000, True)}
    assert len(rows) == len(cases)
    for case in cases:
        row = rows[(case.topic, case.payload[:256])]
        assert row.reason == case.reason, (case.name, row)
        assert case.detail in row.detail, (case.name, row.detail)
        assert row.size == len(case.payload)


@sqlite_backend_only
def test_the_collector_reconnects_after_a_broker_restart_and_keeps_its_session(
    tmp_path: Path, backend: Target, broker: Mosquitto, procs: Processes
) -> None:
    db, _cfg = start_collector(procs, tmp_path, backend, broker.port)
    publisher = Publisher(broker.port)
    subscribe_first(publisher, db, procs)
    publisher.close()

    broker.stop()  # the session and its subscription survive in the broker's persistence
    broker.start()
    publisher = Publisher(broker.port)
    publisher.send(good_stream(50))  # sent before the collector is back: queued for it
    wait_until(lambda: readings_stored(db) >= 102, 30, "the readings sent meanwhile")
    publisher.close()

    assert stored_set(db) == expected_set(0, 51)
    log = procs.log("collector")
    assert log.index("disconnected from broker") < log.rindex("subscribed to")
