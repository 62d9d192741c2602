"""Three collectors share the readings through an MQTT v5 shared subscription into one SQLite
file, one of them killed mid-stream and restarted: every value is stored once, no gap is
recorded, and the 15-minute energy equals what one collector made of the same stream."""

from __future__ import annotations

import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector.store import Reader
from devtools.broker import Mosquitto
from devtools.load import connect, fleet
from tests.support.group import group_configs, start_group, stored
from tests.support.processes import Processes, wait_until

pytestmark = pytest.mark.integration

GATEWAYS, METERS, TICKS = 8, 3, 60
TICK_S = 60  # a minute between a gateway's readings: an hour of history in all
PACE_S = 0.08  # between ticks on the wire: the stream takes about five seconds
KILL_AT, RESTART_AT = 20, 40
QUANTITIES = 28  # an SDM630 reading


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


INTERVALS = (
    "SELECT m.site, m.gateway, m.meter, i.start_ms, i.energy_kwh, i.estimated, i.export_kwh, "
    "i.export_estimated, i.mean_power_w, i.max_power_w FROM interval_energy i "
    "JOIN meter m ON m.id = i.meter_id WHERE m.site != 'probe' "
    "ORDER BY m.site, m.gateway, m.meter, i.start_ms"
)


def values(db: Path) -> list[tuple[str, str, str, int, float]]:
    with Reader(db) as reader:
        return sorted(
            (site, meter, quantity, ts, value)
            for site in reader.sites()
            if site != "probe"
            for _g, meter, quantity, ts, value in reader.raw(site, 0, 2**62)
        )


def test_three_collectors_sharing_ingest_store_a_stream_once_through_a_sigkill(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    shared, single = tmp_path / "shared.db", tmp_path / "single.db"
    configs = group_configs(tmp_path, broker.port, shared, single)
    client = connect("127.0.0.1", broker.port)
    try:
        start_group(procs, configs, client, shared, single, timeout_s=30)

        victim = procs.children[1]  # collector-2
        gateways = fleet(GATEWAYS, METERS)
        start_s = (time.time() // 900 - 8) * 900  # two hours ago, on the quarter
        sent: list[mqtt.MQTTMessageInfo] = []
        held_back = 0
        for tick in range(TICKS):
            if tick == KILL_AT:
                procs.stop(victim, signal.SIGKILL)
            if tick == RESTART_AT:
                # its share waited at the broker meanwhile: the others saw seqs jump
                held_back = len(rows(shared, "SELECT id FROM gap_pending"))
                procs.spawn("collector-2b", "collector.cli", "run", str(configs["collector-2"]))
            for gw in gateways:
                topic_n, body = gw.message(start_s + tick * TICK_S)
                sent.append(client.publish(topic_n, body, qos=1))
            time.sleep(PACE_S)
        for info in sent:
            info.wait_for_publish(30)
    finally:
        client.loop_stop()
        client.disconnect()
    assert victim.returncode == -signal.SIGKILL
    assert held_back, "no batch waited for the killed collector: the test proves nothing"

    readings = GATEWAYS * METERS * TICKS
    probe_values = QUANTITIES
    expected = probe_values + readings * QUANTITIES
    for db in (shared, single):

        def complete(db: Path = db) -> bool:
            return stored(db) >= expected

        def refreshed(db: Path = db) -> bool:
            # the interval refresh has caught up (after the lease the killed one may have
            # held expired)
            return not rows(db, "SELECT 1 FROM dirty")

        wait_until(complete, 40, f"every value in {db.name}")
        wait_until(refreshed, 40, f"the intervals of {db.name}")
    procs.stop_all()  # a clean stop: each runs its last refresh (one at a time)

    with Reader(shared) as reader:
        counters = reader.counters()
        assert counters["stored"] == expected  # once each: redeliveries added nothing
        assert reader.gaps() == []
        assert reader.quarantine(10) == []
        assert {g.last_seq for g in reader.gateways() if g.site != "probe"} == {TICKS}
    assert rows(shared, "SELECT COUNT(*) FROM sample") == [(1 + readings,)]  # one row each
    assert rows(shared, "SELECT * FROM gap_pending") == []  # every jump closed
    assert rows(shared, "SELECT 1 FROM dirty") == []
    assert values(shared) == values(single)
    assert len(values(shared)) == readings * QUANTITIES

    intervals = rows(shared, INTERVALS)
    assert len(intervals) >= GATEWAYS * METERS * 4  # an hour: at least four quarters each
    assert intervals == rows(single, INTERVALS)
    assert "Traceback" not in procs.log("collector-2b")
