"""Collectors sharing the readings subscription, for the shared-ingest and scale tests: their
configs, and starting them so the first makes the database and every one is subscribed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

from collector.store import Reader
from devtools.load import fleet
from tests.support.processes import Processes, collector_config, wait_until

GROUP_MEMBERS = ("collector-1", "collector-2", "collector-3")


def group_configs(
    folder: Path, port: int, shared: Path | str, single: Path | str, extra: str = ""
) -> dict[str, Path]:
    """Config files of three group members on `shared` and a reference collector of its own
    on `single`; `extra` goes into every one."""
    configs = {}
    for name, db, group in [
        *((member, shared, 'shared_group = "ingest"\n') for member in GROUP_MEMBERS),
        ("reference", single, ""),
    ]:
        text = collector_config(db, port, client_id=name, extra=extra)
        configs[name] = folder / f"{name}.toml"
        configs[name].write_text(text.replace("[intervals]", group + "\n[intervals]", 1))
    return configs


def stored(db: Path | str) -> int:
    """Values the database holds by its counter (0 while the collector makes its schema)."""
    try:
        with Reader(db) as reader:
            return reader.counters().get("stored", 0)
    except Exception:
        return 0


def start_group(
    procs: Processes,
    configs: dict[str, Path],
    client: mqtt.Client,
    shared: Path | str,
    single: Path | str,
    timeout_s: float = 60,
) -> None:
    """Start the members and the reference; returns once a probe reading (site "probe",
    the same each time, stored once) is in both databases and every one has subscribed."""
    probe = fleet(1, 1)[0]
    probe.site = "probe"
    topic, payload = probe.message(time.time())

    def probed(db: Path | str) -> Callable[[], bool]:
        def check() -> bool:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
            return stored(db) > 0

        return check

    # the first makes the database; the others open it once it is there
    procs.spawn("collector-1", "collector.cli", "run", str(configs["collector-1"]))
    wait_until(probed(shared), timeout_s, "the group to subscribe", every_s=0.3)
    for name in (*GROUP_MEMBERS[1:], "reference"):
        procs.spawn(name, "collector.cli", "run", str(configs[name]))
    wait_until(probed(single), timeout_s, "the reference collector", every_s=0.3)
    wait_until(
        lambda: all("subscribed to" in procs.log(n) for n in configs),
        timeout_s,
        "every collector subscribed",
    )
