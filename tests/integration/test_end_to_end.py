"""The whole path for real: simulator -> gateway -> Mosquitto -> collector -> the store, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from collector.cli.common import database_exists
from collector.store import Reader
from collector.store.sql import Target
from devtools.broker import Mosquitto
from tests.support.engines import sqlite_backend_only
from tests.support.processes import (
    Processes,
    collector_config,
    free_port,
    gateway_config,
    sim_config,
    wait_until,
)

pytestmark = pytest.mark.integration

SITES = {
    "site-a": [(1, "eastron-sdm630"), (2, "eastron-sdm630")],
    "site-b": [(1, "eastron-sdm630"), (2, "eastron-sdm630"), (3, "eastron-sdm630")],
}


def messages(db: Target) -> int:
    with Reader(db) as reader:
        return reader.counters().get("messages", 0)


@sqlite_backend_only
def test_collector_stores_exactly_what_the_simulator_served(
    tmp_path: Path, backend: Target, broker: Mosquitto, procs: Processes
) -> None:
    ports = {site: free_port() for site in SITES}
    logs = {site: tmp_path / f"served-{site}.jsonl" for site in SITES}
    for site, meters in SITES.items():
        procs.sim(
            sim_config([(ports[site], meters)]),
            name=f"sim-{site}",
            served_log=logs[site],
            ports=[ports[site]],
        )
    db = backend
    (tmp_path / "collector.toml").write_text(collector_config(db, broker.port))
    collector = procs.spawn("collector", "collector.cli", "run", str(tmp_path / "collector.toml"))
    gateways = []
    for site, meters in SITES.items():
        cfg = tmp_path / f"gw-{site}.toml"
        cfg.write_text(
            gateway_config(tmp_path / f"state-{site}", site, broker.port, ports[site], meters)
        )
        gateways.append(procs.spawn(f"gateway-{site}", "gateway.cli", "run", str(cfg)))

    def stored_enough() -> bool:
        if not database_exists(db):
            return False
        try:
            with Reader(db) as reader:
                metered = {(r.site, r.meter) for r in reader.latest()}
                return len(metered) == 5 and reader.reading_count() >= 5 * 28 * 4
        except Exception:  # the collector is still creating its schema
            return False

    wait_until(stored_enough, 40, "readings of all five meters")
    for gw in gateways:
        procs.stop(gw, signal.SIGTERM)
    wait_until(lambda: messages(db) > 0, 5, "messages")
    procs.stop(collector)

    with Reader(db) as reader:
        stored_rows = {site: list(reader.raw(site, 0, 2**62)) for site in SITES}
        quarantined = reader.quarantine(10)
    for site, meters in SITES.items():
        served = {}
        for line in logs[site].read_text().splitlines():
            entry = json.loads(line)
            served.setdefault(entry["unit"], []).append(entry["values"])
        rows = stored_rows[site]
        assert rows, f"nothing stored for {site}"
        stored: dict[tuple[str, int], dict[str, float]] = {}
        for _gw, meter, quantity, ts, value in rows:
            stored.setdefault((meter, ts), {})[quantity] = value
        for unit, _model in meters:
            readings = [v for (m, _ts), v in sorted(stored.items()) if m == f"m{unit}"]
            assert len(readings) >= 3, f"{site} m{unit}: only {len(readings)} readings"
            snapshots = served[unit]
            for values in readings:
                # each stored reading equals one snapshot the simulator served, to float32
                assert any(
                    values.keys() == snap.keys()
                    and all(values[q] == pytest.approx(snap[q], rel=1e-6, abs=1e-6) for q in values)
                    for snap in snapshots
                ), f"{site} m{unit}: stored values {values} were never served"
    assert not quarantined
