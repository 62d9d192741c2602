"""A year-old site looks the same whatever the raw retention: 120 days of a workshop with a
poor power factor and unequal phases, sent through Mosquitto, scanned, pruned to 7 days of
raw readings and scanned again; on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from collector.cli.common import database_exists
from collector.store import Reader, Store
from collector.store.sql import Target
from collector.web import auth
from collector.web.app import create_app
from collector.web.context import WebContext
from devtools.broker import Mosquitto
from sparwatt import wire
from sparwatt.timeutil import from_ms
from tests.support.engines import sqlite_only
from tests.support.messages import payload
from tests.support.processes import Processes, collector_cli, collector_config, wait_until

pytestmark = pytest.mark.integration

Q = 900_000
DAYS = 120
SITE, GATEWAY, METER = "workshop", "gw1", "main"
PF = 0.78
SHARES = (0.47, 0.30, 0.23)  # of the load per phase: about 40 % current imbalance


def workshop(end_ms: int) -> list[tuple[str, int, dict[str, Any]]]:
    """Every 15 minutes for DAYS days: counters, power, power factor and phase currents."""
    start = end_ms - DAYS * 96 * Q
    kwh = kvarh = 50_000.0
    out = []
    for k in range(DAYS * 96):
        ts = start + k * Q
        hour = (ts // 3_600_000) % 24
        weekday = (ts // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday
        kw = 38.0 if 6 <= hour < 22 and weekday < 5 else 9.0
        kw *= 1 + 0.05 * math.sin(k / 7)
        kwh += kw / 4
        kvarh += kw / 4 * math.tan(math.acos(PF))
        amps = [kw * 1000 * share / (230 * PF) for share in SHARES]
        values = {
            "energy_import_kwh": round(kwh, 2),
            "reactive_energy_import_kvarh": round(kvarh, 2),
            "power_w": round(kw * 1000, 1),
            "power_factor": PF,
            "current_l1_a": round(amps[0], 2),
            "current_l2_a": round(amps[1], 2),
            "current_l3_a": round(amps[2], 2),
            "voltage_l1_v": 230.0,
            "voltage_l2_v": 230.4,
            "voltage_l3_v": 229.8,
        }
        out.append((METER, ts, values))
    return out


def publish(port: int, db: Target, readings: list[tuple[str, int, dict[str, Any]]]) -> int:
    """Publish a day per message at QoS 1, the first one until the collector has it (its
    session does not exist before it subscribes); returns the last seq."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    days = [readings[i : i + 96] for i in range(0, len(readings), 96)]

    def send(seq: int) -> None:
        body = json.dumps(payload(seq, days[seq - 1], SITE, GATEWAY)).encode()
        client.publish(wire.topic(SITE, GATEWAY, "readings"), body, qos=1).wait_for_publish(10)

    def first_stored() -> bool:
        send(1)
        return last_seq(db) == 1

    try:
        wait_until(first_stored, 30, "the collector to subscribe", every_s=0.3)
        for seq in range(2, len(days) + 1):
            send(seq)
    finally:
        client.loop_stop()
        client.disconnect()
    return len(days)


def last_seq(db: Target) -> int | None:
    if not database_exists(db):
        return None
    try:
        with Reader(db) as reader:
            return max((g.last_seq or 0 for g in reader.gateways()), default=None)
    except Exception:  # the schema is still being made
        return None


def scan(config: Path) -> dict[str, dict[str, Any]]:
    run = collector_cli("opportunities", "--config", str(config), "--refresh", "--json")
    assert run.returncode == 0, run.stderr
    return {row["kind"]: row["data"] for row in json.loads(run.stdout)}


# SQLite, the engine whose raw retention the issue sized; the prune's statements run on
# PostgreSQL in tests/collector/store/test_prune_and_replay.py
@sqlite_only
def test_power_quality_findings_and_history_survive_the_prune(
    tmp_path: Path, db_target: Target, broker: Mosquitto, procs: Processes
) -> None:
    end = int(time.time() * 1000) // Q * Q - Q
    db = db_target
    (tmp_path / "sites.toml").write_text(f'[sites.{SITE}]\nsector = "workshop"\n')
    config = tmp_path / "collector.toml"
    config.write_text(
        collector_config(db, broker.port)
        + '[evaluation]\nsites_file = "sites.toml"\nscan_days = 120\n'
    )
    # the raw retention is cut only later: the scan before the prune must see every reading
    readings = workshop(end)
    collector = procs.spawn("collector", "collector.cli", "run", str(config))
    sent = publish(broker.port, db, readings)
    wait_until(lambda: last_seq(db) == sent, 30, "all readings stored")
    procs.stop(collector)

    # the scan's window ends at the current quarter hour: both scans must see the same one
    to_next_quarter_s = (Q - int(time.time() * 1000) % Q) / 1000
    if to_next_quarter_s < 45:
        time.sleep(to_next_quarter_s + 1)
    started_quarter = int(time.time() * 1000) // Q
    before = scan(config)
    assert {"power_factor", "phase_imbalance"} <= set(before)
    assert before["power_factor"]["evidence"]["power_factor"] == pytest.approx(PF, abs=0.01)

    config.write_text(
        config.read_text().replace("[storage]\n", "[storage]\nraw_retention_days = 7\n")
    )
    pruned = collector_cli("prune", "--config", str(config), "--json")
    assert pruned.returncode == 0, pruned.stderr
    per_day = 96 * len(readings[0][2])
    assert (DAYS - 8) * per_day < json.loads(pruned.stdout)["pruned_values"] <= (DAYS - 6) * per_day
    with Reader(db) as reader:
        oldest = min(r.ts_ms for r in reader.raw(SITE, 0, 2**62))
    assert oldest >= end - 8 * 86_400_000  # only about a week of raw readings is left

    after = scan(config)
    assert int(time.time() * 1000) // Q == started_quarter, "the scans took over 45 s"
    for kind in ("power_factor", "phase_imbalance"):
        for figure in ("annual_kwh", "annual_dkk", "annual_kg_co2"):
            assert after[kind][figure] == pytest.approx(before[kind][figure], rel=1e-6), (
                kind,
                figure,
            )

    # the site's meter API still shows power factor and currents for every day
    store = Store(db)
    token = auth.new_token()
    store.add_token("admin", "admin", [], auth.digest(token))
    store.close()
    http = TestClient(create_app(WebContext(db=db)))
    resp = http.get(
        f"/api/sites/{SITE}/meters/{METER}/rollups",
        params={
            "step": "1d",
            "from": wire.format_ts(from_ms(end - DAYS * 86_400_000)),
            "to": wire.format_ts(from_ms(end + Q)),
            "quantity": ["power_factor", "current_l1_a", "current_l3_a"],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 200, resp.text
    days = resp.json()["points"]
    assert len(days) >= DAYS
    for day in days:
        assert day["values"]["power_factor"]["mean"] == pytest.approx(PF, abs=1e-6)
        assert day["values"]["current_l1_a"]["mean"] > day["values"]["current_l3_a"]["mean"]
