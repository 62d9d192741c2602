"""Scale, short form: 2,000 gateways x 5 SDM630 meters into three collectors sharing the
subscription, one killed with SIGKILL mid-run and restarted, beside one collector on the same
stream: every value stored once, no gap, the same 15-minute energy.

The long form, with rates and CPU per value, is bench/bench_scale.py.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from contextlib import closing
from functools import partial
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector.store import Reader, schema
from collector.store.rows import GapRow
from devtools.broker import Mosquitto
from devtools.load import connect, fleet, sent_values, ticks
from tests.support.group import group_configs, start_group, stored
from tests.support.processes import Processes, wait_until

pytestmark = pytest.mark.integration

GATEWAYS, METERS, QUANTITIES = 2000, 5, 28  # 280,000 values a tick
TICKS, TICK_S = 4, 10  # readings across a quarter-hour boundary
KILL_AT, RESTART_AT = 1, 3  # the kill comes halfway through publishing tick KILL_AT
GRACE_S = 30  # ingest.gap_grace_s: longer than the killed collector is away
# the collectors' default: the interval refresh runs beside ingest, on its own thread
REFRESH_S = 30
EVERYTHING = (0, 2**62)  # a time range holding every reading


def table_rows(db: Path, table: str) -> int:
    """Rows of a table the Reader has no query for (gap_pending, dirty)."""
    with closing(schema.connect(db, readonly=True)) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_three_collectors_store_two_thousand_gateways_once_through_a_sigkill(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    shared, single = tmp_path / "shared.db", tmp_path / "single.db"
    extra = f"[ingest]\ngap_grace_s = {GRACE_S}\n"
    configs = group_configs(tmp_path, broker.port, shared, single, extra)
    for path in configs.values():
        path.write_text(path.read_text().replace("refresh_s = 1\n", f"refresh_s = {REFRESH_S}\n"))
    client = connect("127.0.0.1", broker.port)

    gaps_seen: set[GapRow] = set()

    def watch_gaps() -> None:
        # a gap that a late batch closes again leaves no trace: the table is watched throughout
        with Reader(shared) as reader:
            gaps_seen.update(reader.gaps())

    def reference_has(values: int) -> bool:
        watch_gaps()
        return stored(single) >= values

    published: dict[str, list[bytes]] = defaultdict(list)
    try:
        start_group(procs, configs, client, shared, single)
        base = stored(single)

        victim = procs.children[1]  # collector-2
        quarter_s = (time.time() // 900 - 8) * 900  # two hours ago, on the quarter
        start_s = quarter_s - TICKS // 2 * TICK_S
        sent: list[mqtt.MQTTMessageInfo] = []
        held_back: object = 0
        stream = ticks(fleet(GATEWAYS, METERS), start_s, TICK_S, TICKS)
        for tick, messages in enumerate(stream):
            # as fast as the collectors take it: a tick goes out once the reference stored
            # every one before the last
            wait_until(
                partial(reference_has, base + (tick - 1) * GATEWAYS * METERS * QUANTITIES),
                120,
                f"the reference to store tick {tick - 2}",
            )
            if tick == RESTART_AT:
                # the others stored later seqs than those queued for the killed collector
                held_back = wait_until(
                    lambda: table_rows(shared, "gap_pending"), 60, "a seq jump pending"
                )
                procs.spawn("collector-2b", "collector.cli", "run", str(configs["collector-2"]))
            for i, (topic, payload) in enumerate(messages):
                if tick == KILL_AT and i == GATEWAYS // 2:
                    procs.stop(victim, signal.SIGKILL)
                sent.append(client.publish(topic, payload, qos=1))
                published[topic.split("/")[2]].append(payload)
        for info in sent:
            info.wait_for_publish(60)
    finally:
        client.loop_stop()
        client.disconnect()
    assert victim.returncode == -signal.SIGKILL
    assert held_back, "no batch waited for the killed collector: the test proves nothing"

    readings = GATEWAYS * METERS * TICKS
    expected = QUANTITIES + readings * QUANTITIES  # the probe's one reading and the stream
    for db in (shared, single):

        def settled(db: Path = db) -> bool:
            watch_gaps()
            stored_all = stored(db) >= expected
            return stored_all and table_rows(db, "gap_pending") == 0  # every seq jump closed

        wait_until(settled, 180, f"every value in {db.name}", every_s=0.5)
    # a clean stop runs the last interval refresh (one collector of the group, under the
    # lease); the readings are compared meanwhile
    running = [p for p in procs.children if p.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)

    with Reader(shared) as one_of_three, Reader(single) as alone:
        for reader in (one_of_three, alone):
            assert sorted(s for s in reader.sites() if s != "probe") == sorted(published)
        for site, payloads in published.items():
            sent_here = sorted(v[1:] for p in payloads for v in sent_values(p))
            for reader in (one_of_three, alone):
                kept = sorted(
                    (meter, quantity, ts, value)
                    for _gw, meter, quantity, ts, value in reader.raw(site, *EVERYTHING)
                )
                assert kept == sent_here, site

    for proc in running:
        proc.wait(300)
    assert [p.returncode for p in running] == [0] * len(running)
    assert gaps_seen == set()
    for db in (shared, single):
        with Reader(db) as reader:
            count = reader.counters()
            assert count["stored"] == expected  # once each: redeliveries added nothing
            assert count["stored"] + count["duplicates"] == count["readings"] * QUANTITIES
            assert reader.gaps() == []
            assert reader.quarantine(10) == []
            assert {g.last_seq for g in reader.gateways() if g.site != "probe"} == {TICKS}
        assert table_rows(db, "gap_pending") == 0
        assert table_rows(db, "dirty") == 0  # every meter's intervals refreshed

    intervals = 0
    with Reader(shared) as one_of_three, Reader(single) as alone:
        for site in published:
            energy = list(one_of_three.energy_intervals(site, *EVERYTHING))
            assert energy == list(alone.energy_intervals(site, *EVERYTHING)), site
            intervals += len(energy)
    assert intervals >= GATEWAYS * METERS * 2  # each meter's readings span two quarters
    assert "Traceback" not in procs.log("collector-2b")
