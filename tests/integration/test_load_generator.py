"""The load generator publishes as many gateways with SDM630 meters; a collector stores it
whole: every reading with its 28 quantities, each gateway's seq without a gap."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from collector.store import Reader
from devtools.broker import Mosquitto
from devtools.load import connect, fleet, run
from tests.support.processes import Processes, collector_config, wait_until

pytestmark = pytest.mark.integration

GATEWAYS, METERS, TICKS = 20, 5, 4


def test_a_collector_stores_every_generated_reading_once_and_sees_no_gap(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    db = tmp_path / "collector.db"
    config = tmp_path / "collector.toml"
    config.write_text(collector_config(db, broker.port))
    procs.spawn("collector", "collector.cli", "run", str(config))
    client = connect("127.0.0.1", broker.port)

    def counter(name: str) -> int:
        try:
            with Reader(db) as reader:
                return reader.counters().get(name, 0)
        except Exception:  # the collector is still making its schema
            return 0

    # the collector's session exists once a probe gets through; nothing after it is missed
    probe = fleet(1, 1)[0]
    probe.site = "probe"
    topic, payload = probe.message(time.time())  # the same reading each time: stored once

    def probed() -> bool:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
        return counter("stored") > 0

    try:
        wait_until(probed, 30, "the collector to subscribe", every_s=0.3)
        before = 28  # the probe's one reading
        result = run(client, fleet(GATEWAYS, METERS), interval_s=0.5, duration_s=TICKS * 0.5)
    finally:
        client.loop_stop()
        client.disconnect()
    assert (result.messages, result.readings) == (GATEWAYS * TICKS, GATEWAYS * METERS * TICKS)
    expected = before + GATEWAYS * METERS * TICKS * 28
    wait_until(lambda: counter("stored") >= expected, 30, "every value stored")
    with Reader(db) as reader:
        assert reader.counters()["stored"] == expected
        assert reader.gaps() == []
        load = [g for g in reader.gateways() if g.site != "probe"]
        assert len(load) == GATEWAYS
        assert {g.last_seq for g in load} == {TICKS}
        meters = reader.meters("site-00003")
        assert [len(m.quantities) for m in meters] == [28] * METERS
