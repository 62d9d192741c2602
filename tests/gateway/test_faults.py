"""Faulty meters stay contained: their neighbours keep the wall-clock schedule.

One scenario runs once for the module (five 2 s slots of real schedule) and each test
checks one behaviour in its record:

    RS485 line (pty pair), 0.5 s timeout: unit 1 healthy, 2 stops answering after its
                                          first read (3 requests), 3 refuses everything
                                          (exception 04), 4 serves NaN power, 5 refuses a
                                          hole its gateway map bridges (exception 02), 6
                                          ignores requests touching that hole
    TCP endpoint "drop", 0.5 s timeout:   unit 1 drops the connection mid-poll, unit 2
    TCP endpoint "slow", 3 s timeout:     unit 1 silent (a read and its probe overrun)

Answers normally take a few milliseconds, but on a loaded machine the simulator, socat and
the gateway wait for a CPU in turn, which can hold an answer back past 100 ms; a late answer
turns a healthy meter into a failing one, so the timeouts are generous. A slot holds the
worst one with room to spare (two timeouts on the line: unit 6 learning its split in the
first, unit 2 going silent in the second; a meter that did not back off would add one a
slot), so a reading outside its slot means the bus was held up, not the machine.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from devtools.broker import free_port, wait_for_port
from gateway import meter_maps
from gateway.poller import MeterStats, Poller
from gateway.settings import GatewayConfig
from gateway.sim.device import Faults, FixedValues, MeterRegisters
from gateway.sim.known import known_values
from gateway.sim.serial_pair import serial_pair
from gateway.sim.server import BackgroundServers
from sparwatt import configfile

pytestmark = pytest.mark.integration

SDM630 = meter_maps.library()["eastron-sdm630"]
SLOTS = 5  # scheduled slots the scenario runs for
INTERVAL_S = 2  # every meter's interval: one slot
RTU_TIMEOUT_S = 0.5
FAULTS = {
    "rtu": {
        1: Faults(),
        2: Faults(silent_after=3),
        3: Faults(exceptions=((0, 65535, 4),)),
        4: Faults(nan=frozenset({"power_w"})),
        5: Faults(exceptions=((40, 49, 2),)),
        6: Faults(ignored=((40, 49),)),
    },
    "drop": {1: Faults(drop_after=4), 2: Faults()},
    "slow": {1: Faults(silent_after=0)},
}


@dataclass
class Record:
    first_slot: int
    readings: dict[str, list[dict[str, object]]]
    stats: dict[str, MeterStats]
    sims: dict[str, MeterRegisters]

    def slots(self, meter: str) -> list[int]:
        """The wall-clock slot (its start, epoch seconds) each reading of this meter arrived in."""
        return [
            self.first_slot
            + INTERVAL_S
            * math.floor(
                (datetime.fromisoformat(str(r["ts"])).timestamp() - self.first_slot) / INTERVAL_S
            )
            for r in self.readings[meter]
        ]

    def every_slot(self) -> list[int]:
        return [self.first_slot + INTERVAL_S * k for k in range(SLOTS)]


def _config(device: Path, drop_port: int, slow_port: int) -> GatewayConfig:
    buses = [
        {
            "id": "rtu",
            "transport": "rtu",
            "device": str(device),
            "baud": 38400,
            "timeout_s": RTU_TIMEOUT_S,
            "retries": 0,
        },
        {
            "id": "drop",
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": drop_port,
            "timeout_s": 0.5,
            "retries": 0,
        },
        {
            "id": "slow",
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": slow_port,
            "timeout_s": 1.5 * INTERVAL_S,
            "retries": 0,
        },
    ]
    meters = [
        {
            "id": f"{bus}-{unit}",
            "bus": bus,
            "unit": unit,
            "model": SDM630.id,
            "interval_s": INTERVAL_S,
        }
        for bus, units in FAULTS.items()
        for unit in units
    ]
    return configfile.validate(
        GatewayConfig,
        {"gateway": {"site": "s", "id": "g"}, "buses": buses, "meters": meters},
        "scenario",
    )


async def _run(config: GatewayConfig, sink: list[dict[str, object]]) -> tuple[int, Poller]:
    poller = Poller(config, sink.append)
    scheduler = AsyncIOScheduler(timezone=UTC)
    poller.start(scheduler)
    scheduler.start()
    starts = {job.next_run_time.timestamp() for job in scheduler.get_jobs()}
    first = int(min(starts))
    assert starts == {first}, "every job starts on the same aligned second"
    await asyncio.sleep(first + SLOTS * INTERVAL_S - 0.05 - time.time())
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0.1)
    poller.close()
    return first, poller


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Record:
    sims = {
        f"{bus}-{unit}": MeterRegisters(
            unit=unit, meter_map=SDM630, faults=faults, meter=FixedValues(known_values(SDM630))
        )
        for bus, units in FAULTS.items()
        for unit, faults in units.items()
    }
    ports = {"drop": free_port(), "slow": free_port()}
    with (
        serial_pair(tmp_path_factory.mktemp("line")) as (meters_end, gateway_end),
        BackgroundServers() as servers,
    ):
        servers.serve(
            "rtu", [sims[f"rtu-{u}"] for u in FAULTS["rtu"]], device=str(meters_end), baud=38400
        )
        for bus, port in ports.items():
            servers.serve("tcp", [sims[f"{bus}-{u}"] for u in FAULTS[bus]], port=port)
            wait_for_port(port)
        sink: list[dict[str, object]] = []
        first, poller = asyncio.run(
            _run(_config(gateway_end, **{f"{k}_port": v for k, v in ports.items()}), sink)
        )
    readings: dict[str, list[dict[str, object]]] = {m: [] for m in sims}
    for reading in sink:
        readings[str(reading["meter"])].append(reading)
    return Record(first, readings, poller.stats, sims)


def test_healthy_meter_reads_once_in_every_slot_despite_faulty_neighbours(record: Record) -> None:
    assert record.slots("rtu-1") == record.every_slot()
    assert record.stats["rtu-1"].failed == 0


def test_meter_that_stops_answering_fails_then_backs_off_without_delaying_the_bus(
    record: Record,
) -> None:
    stats = record.stats["rtu-2"]
    assert record.slots("rtu-2") == [record.first_slot]
    # fails the next three runs, then skips one
    assert (stats.ok, stats.failed, stats.skipped) == (1, 3, 1)
    assert "timeout" in str(stats.last_error)
    # its second read costs a block and a probe, later ones a single request
    assert record.sims["rtu-2"].requests == 3 + 2 + 1 + 1


def test_meter_answering_exceptions_is_counted_and_contained(record: Record) -> None:
    stats = record.stats["rtu-3"]
    assert stats.ok == 0
    assert stats.failed >= 3
    assert "exception 4" in str(stats.last_error)


def test_nan_value_is_dropped_and_counted_while_the_rest_is_published(record: Record) -> None:
    readings = record.readings["rtu-4"]
    assert record.slots("rtu-4") == record.every_slot()
    for reading in readings:
        values = reading["values"]
        assert isinstance(values, dict)
        assert "power_w" not in values
        assert len(values) == len(SDM630.quantities) - 1
    assert record.stats["rtu-4"].invalid_values == SLOTS


def test_refused_hole_is_split_once_and_the_split_remembered(record: Record) -> None:
    assert record.slots("rtu-5") == record.every_slot()
    assert record.sims["rtu-5"].refused == 1
    assert record.stats["rtu-5"].requests == 1 + 4 * SLOTS  # one refusal, then 4 blocks


def test_ignored_hole_is_split_after_a_probe_and_a_retry_and_the_split_remembered(
    record: Record,
) -> None:
    assert record.slots("rtu-6") == record.every_slot()
    assert record.stats["rtu-6"].failed == 0
    # first read: the block, a probe, the block again, a probe, then the 4 blocks of the
    # split plan; every later read just the 4 blocks
    assert record.sims["rtu-6"].unanswered == 2
    assert record.stats["rtu-6"].requests == 8 + 4 * (SLOTS - 1)


def test_connection_drop_mid_poll_is_retried_on_a_new_connection_in_the_same_slot(
    record: Record,
) -> None:
    # unit 1 answers 4 requests (its first read and the start of the second), then the
    # server drops every connection while answering the fifth
    assert record.sims["drop-1"].drops == 1
    assert record.slots("drop-1") == record.every_slot()
    assert record.slots("drop-2") == record.every_slot()
    stats = record.stats["drop-1"]
    assert stats.failed == 0
    # one probe and one repeat of the lost block; no split was learned from the drop
    assert stats.requests == 3 * SLOTS + 2


def test_poll_overrunning_its_interval_counts_missed_runs(record: Record) -> None:
    stats = record.stats["slow-1"]
    assert stats.missed >= 1
    assert stats.failed >= 1
    assert stats.ok == 0
