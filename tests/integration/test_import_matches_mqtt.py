"""A year of a site's 15-minute data imported from an Eloverblik export is scanned the same
as the same year sent by a gateway through Mosquitto: the same energy opportunities, with
the same yearly kWh (within 5 %)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devtools.broker import Mosquitto
from devtools.utility_files import write_eloverblik_csv
from tests.integration.test_history_outlives_raw import last_seq
from tests.support.messages import payload
from tests.support.processes import Processes, collector_cli, collector_config, wait_until

pytestmark = pytest.mark.integration

Q = 900_000
DAYS = 365
SITE, GATEWAY, METER = "workshop", "gw1", "main"
GSRN = "571313180400054321"
ENERGY_KINDS = {"baseload", "offhours", "standby", "peak_shift", "night_load", "drift"}


def workshop_kwh(start_ms: int) -> np.ndarray:
    """kWh per quarter: a day shift on weekdays, machines left running into the evening,
    and a base load that stays high at night and at weekends (what the scan should price)."""
    out = np.empty(DAYS * 96)
    for k in range(len(out)):
        ts = start_ms + k * Q
        hour = (ts // 3_600_000 + 1) % 24  # Danish winter time is close enough for a shape
        weekday = (ts // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday
        kw = 24.0
        if weekday < 5 and 7 <= hour < 17:
            kw = 40.0
        elif weekday < 5 and 17 <= hour < 23:
            kw = 36.0
        kw *= 1 + 0.08 * math.sin(k / 11) + 0.1 * math.sin(2 * math.pi * k / (96 * 365))
        out[k] = round(kw / 4, 3)
    return out


def config(tmp_path: Path, name: str, port: int, sites: str) -> Path:
    (tmp_path / f"sites-{name}.toml").write_text(sites)
    path = tmp_path / f"{name}.toml"
    path.write_text(
        collector_config(tmp_path / f"{name}.db", port, client_id=name)
        + f'[evaluation]\nsites_file = "sites-{name}.toml"\nscan_days = {DAYS}\n'
    )
    return path


def scan(path: Path) -> dict[str, dict[str, Any]]:
    run = collector_cli("opportunities", "--config", str(path), "--refresh", "--json")
    assert run.returncode == 0, run.stderr
    return {row["kind"]: row["data"] for row in json.loads(run.stdout)}


def test_an_imported_year_finds_the_opportunities_the_gateway_year_finds(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    end = int(time.time() * 1000) // 86_400_000 * 86_400_000 - 86_400_000
    start = end - DAYS * 86_400_000
    kwh = workshop_kwh(start)
    site = f'[sites.{SITE}]\nsector = "workshop"\n'

    # through Mosquitto: the counter at each quarter's end, as a meter would give it
    live = config(tmp_path, "live", broker.port, site)
    counter = 10_000 + np.concatenate(([0.0], np.cumsum(kwh)))
    readings = [
        (METER, start + k * Q, {"energy_import_kwh": round(float(c), 3)})
        for k, c in enumerate(counter)
    ]
    collector = procs.spawn("collector", "collector.cli", "run", str(live))
    sent = publish_days(broker.port, tmp_path / "live.db", readings)
    wait_until(lambda: last_seq(tmp_path / "live.db") == sent, 60, "all readings stored")
    procs.stop(collector)

    # from the company's Eloverblik export, mapped onto the same meter name
    imported = config(
        tmp_path, "imported", broker.port,
        site + f'[sites.{SITE}.metering_points]\n"{GSRN}" = {{ meter = "{METER}" }}\n',
    )  # fmt: skip
    export = tmp_path / "eloverblik.csv"
    write_eloverblik_csv(export, np.arange(start, end, Q, dtype=np.int64), Q, {GSRN: kwh})
    run = collector_cli("import", "--config", str(imported), str(export), "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)[0]["stored"] == DAYS * 96

    by_mqtt, by_import = scan(live), scan(imported)
    energy_found = set(by_mqtt) & ENERGY_KINDS
    assert {"baseload", "offhours"} <= energy_found
    assert set(by_import) & ENERGY_KINDS == energy_found
    for kind in energy_found:
        assert by_import[kind]["annual_kwh"] == pytest.approx(
            by_mqtt[kind]["annual_kwh"], rel=0.05
        ), kind


def publish_days(port: int, db: Path, readings: list[tuple[str, int, dict[str, Any]]]) -> int:
    """A day of readings per message at QoS 1; the first until the collector has it."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from sparwatt import wire

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
