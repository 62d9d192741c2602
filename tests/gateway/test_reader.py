"""Reading one meter: refused blocks are split and remembered, silent meters fail fast."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import learned, planner
from gateway.meter_maps import Function, library
from gateway.poller import Poller
from gateway.reader import BusGate, MeterReader
from gateway.settings import GatewayConfig
from gateway.sim.device import Faults, FixedValues, MeterRegisters
from gateway.sim.known import known_values, tolerance
from sparwatt import configfile
from sparwatt.errors import ReadError

SDM630 = library()["eastron-sdm630"]
FC = {"holding": 3, "input": 4}


@dataclass
class FakeBus:
    """A bus client that serves simulated meters without a network (BusClient protocol)."""

    meters: dict[int, MeterRegisters]
    ignored: tuple[int, int] | None = None  # the meter stays silent for requests touching it
    dead: set[int] = field(default_factory=set)
    requests: list[tuple[int, str, int, int]] = field(default_factory=list)

    async def read(self, function: Function, start: int, count: int, unit: int) -> list[int]:
        self.requests.append((unit, function, start, count))
        touches = self.ignored and start <= self.ignored[1] and start + count > self.ignored[0]
        if unit in self.dead or unit not in self.meters or touches:
            raise ReadError("timeout", f"no answer from unit {unit}")
        memory = [0] * (start + count)
        code = await self.meters[unit].action(FC[function], 0, start, count, memory, None)
        if code is not None:
            raise ReadError("exception", f"unit {unit} answered exception {int(code)}", int(code))
        return memory[start:]

    def close(self) -> None:
        pass


def sdm630(unit: int = 1, faults: Faults | None = None) -> MeterRegisters:
    return MeterRegisters(
        unit=unit,
        meter_map=SDM630,
        meter=FixedValues(known_values(SDM630)),
        faults=faults or Faults(),
    )


def read(reader: MeterReader, bus: FakeBus) -> tuple[dict[str, float], int, list[str]]:
    result = asyncio.run(reader.read(BusGate(bus), list(SDM630.quantities)))
    return result.values, result.requests, result.invalid


def assert_known(values: dict[str, float]) -> None:
    assert sorted(values) == sorted(SDM630.quantities)
    for name, known in known_values(SDM630).items():
        assert abs(values[name] - known) <= tolerance(SDM630, name)


def test_block_refused_with_exception_02_is_split_and_the_split_is_remembered() -> None:
    # The meter refuses 40..49, a hole the gateway's map bridges in its first block.
    meter = sdm630(faults=Faults(exceptions=((40, 49, 2),)))
    bus = FakeBus({1: meter})
    reader = MeterReader(SDM630, 1)
    full = len(reader.plan(list(SDM630.quantities)))
    values, requests, _ = read(reader, bus)
    assert_known(values)
    refused_first = meter.refused
    assert refused_first >= 1
    assert requests > full
    assert reader.breaks
    values, requests, _ = read(reader, bus)
    assert_known(values)
    assert meter.refused == refused_first, "the learned split was not used"
    assert requests == len(reader.plan(list(SDM630.quantities))) == full + 1
    assert all(not (b.start <= 49 and b.end >= 40) for b in reader.plan(list(SDM630.quantities)))


def test_block_a_live_meter_ignores_is_split_after_one_probe() -> None:
    bus = FakeBus({1: sdm630()}, ignored=(40, 49))
    reader = MeterReader(SDM630, 1)
    values, _, _ = read(reader, bus)
    assert_known(values)
    before = len(bus.requests)
    read(reader, bus)
    assert len(bus.requests) - before == len(reader.plan(list(SDM630.quantities)))


def test_silent_meter_fails_without_learning_splits_and_costs_one_request_next_time() -> None:
    bus = FakeBus({}, dead={1})
    reader = MeterReader(SDM630, 1)
    with pytest.raises(ReadError, match="timeout"):
        read(reader, bus)
    assert len(bus.requests) == 2  # the first block and one small probe
    assert not reader.breaks
    with pytest.raises(ReadError, match="timeout"):
        read(reader, bus)
    assert len(bus.requests) == 3
    assert not reader.breaks


def test_exception_other_than_02_fails_the_read_without_splitting() -> None:
    bus = FakeBus({1: sdm630(faults=Faults(exceptions=((0, 400, 4),)))})
    reader = MeterReader(SDM630, 1)
    with pytest.raises(ReadError, match="exception 4"):
        read(reader, bus)
    assert len(bus.requests) == 1
    assert not reader.breaks


def test_nan_values_are_dropped_and_reported_invalid() -> None:
    bus = FakeBus({1: sdm630(faults=Faults(nan=frozenset({"power_w", "energy_import_kwh"})))})
    values, _, invalid = read(MeterReader(SDM630, 1), bus)
    assert sorted(invalid) == ["energy_import_kwh", "power_w"]
    assert "power_w" not in values
    assert all(math.isfinite(v) for v in values.values())


def test_sdm630_full_read_takes_at_most_three_requests() -> None:
    assert len(planner.plan(SDM630, SDM630.quantities)) <= 3
    _, requests, _ = read(MeterReader(SDM630, 1), FakeBus({1: sdm630()}))
    assert requests <= 3


def poller_config() -> GatewayConfig:
    data = {
        "gateway": {"site": "s", "id": "g"},
        "buses": [{"id": "b1", "transport": "tcp", "host": "127.0.0.1"}],
        "meters": [
            {"id": f"m{u}", "bus": "b1", "unit": u, "model": "eastron-sdm630", "interval_s": 1}
            for u in (1, 2)
        ],
    }
    return configfile.validate(GatewayConfig, data, "test")


def test_dead_meter_backs_off_and_stops_costing_its_neighbour_bus_time() -> None:
    config = poller_config()
    bus = FakeBus({1: sdm630(1)}, dead={2})
    readings: list[dict[str, object]] = []
    poller = Poller(config, readings.append, open_bus=lambda _bus: bus)
    healthy, dead = config.meters
    names = list(SDM630.quantities)

    async def rounds(n: int) -> None:
        for _ in range(n):
            await poller.poll(dead, names)
            await poller.poll(healthy, names)

    def asked_dead() -> int:
        return sum(1 for r in bus.requests if r[0] == 2)

    asyncio.run(rounds(3))
    assert poller.stats["m2"].failed == 3
    # after three failures it skips 1 run, is tried once, skips 2, is tried, skips 4 ...
    pattern = []
    for _ in range(8):
        before = asked_dead()
        asyncio.run(rounds(1))
        pattern.append("read" if asked_dead() > before else "skip")
    assert pattern == ["skip", "read", "skip", "skip", "read", "skip", "skip", "skip"]
    assert poller.stats["m2"].skipped == 6
    assert poller.stats["m1"].ok == 11
    assert poller.stats["m1"].failed == 0
    assert len(readings) == 11


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=20), st.sampled_from([1, 2, 4])),
        min_size=1,
        max_size=30,
    )
)
def test_hole_split_point_breaks_before_the_widest_gap(layout: list[tuple[int, int]]) -> None:
    spans: list[planner.Span] = []
    address = 0
    for gap, words in layout:
        address += gap
        spans.append(planner.Span("input", address, words, f"q{len(spans)}"))
        address += words
    block = planner.Block("input", spans[0].start, spans[-1].end - spans[0].start + 1, tuple(spans))
    point = planner.hole_split_point(block)
    if len(spans) == 1:
        assert point is None
        return
    assert point is not None
    index = next(i for i, s in enumerate(spans) if s.start == point[1])
    assert index >= 1
    gaps = [b.start - a.end - 1 for a, b in itertools.pairwise(spans)]
    assert gaps[index - 1] == max(gaps) or (max(gaps) == 0 and index == len(spans) // 2)


def test_registers_a_firmware_lacks_are_dropped_and_the_rest_is_read() -> None:
    # exception 02 for two quantities' own registers inside a contiguous block
    meter = sdm630(faults=Faults(exceptions=((2, 5, 2),)))
    reader = MeterReader(SDM630, 1)
    values, _, invalid = read(reader, FakeBus({1: meter}))
    assert reader.unavailable == {"voltage_l2_v", "voltage_l3_v"}
    assert sorted(values) == sorted(set(SDM630.quantities) - reader.unavailable)
    assert invalid == []
    refused = meter.refused
    read(reader, FakeBus({1: meter}))
    assert meter.refused == refused


def _learning_poller(
    path: Path, model: str = "eastron-sdm630", meter: MeterRegisters | None = None
) -> tuple[Poller, FakeBus]:
    data = {
        "gateway": {"site": "s", "id": "g"},
        "buses": [{"id": "b1", "transport": "tcp", "host": "127.0.0.1"}],
        "meters": [{"id": "m1", "bus": "b1", "unit": 1, "model": model, "interval_s": 1}],
    }
    bus = FakeBus({1: meter or sdm630(faults=Faults(exceptions=((40, 49, 2),)))})
    config = configfile.validate(GatewayConfig, data, "test")
    return Poller(config, lambda _r: None, open_bus=lambda _b: bus, learned_path=path), bus


def test_learned_split_is_kept_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / learned.FILE_NAME
    meter = sdm630(faults=Faults(exceptions=((40, 49, 2),)))
    first, _ = _learning_poller(path, meter=meter)
    m1 = first.config.meters[0]
    asyncio.run(first.poll(m1, list(SDM630.quantities)))
    assert meter.refused == 1
    saved = json.loads(path.read_text())
    assert saved["m1"]["model"] == "eastron-sdm630"
    assert saved["m1"]["unit"] == 1
    assert {tuple(b) for b in saved["m1"]["breaks"]} == first.readers["m1"].breaks

    again, bus = _learning_poller(path, meter=meter)  # the gateway restarts
    assert again.readers["m1"].breaks == first.readers["m1"].breaks
    asyncio.run(again.poll(m1, list(SDM630.quantities)))
    assert meter.refused == 1, "the restarted gateway asked for the refused block again"
    assert len(bus.requests) == len(again.readers["m1"].plan(list(SDM630.quantities)))
    assert again.stats["m1"].ok == 1


def test_learned_splits_of_another_model_or_a_damaged_file_are_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / learned.FILE_NAME
    path.write_text(
        json.dumps(
            {
                "m1": {
                    "model": "eastron-sdm630",
                    "unit": 1,
                    "breaks": [["input", 40], ["coil", 3], ["input", "x"]],
                }
            }
        )
    )
    assert learned.breaks_for(learned.load(path), "m1", "eastron-sdm630", 1) == {("input", 40)}
    swapped, _ = _learning_poller(path, model="eastron-sdm120")  # the installer changed it
    assert swapped.readers["m1"].breaks == set()
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="gateway.learned"):
        damaged, _ = _learning_poller(path)
    assert damaged.readers["m1"].breaks == set()
    assert "ignoring learned splits" in caplog.text
    asyncio.run(damaged.poll(damaged.config.meters[0], list(SDM630.quantities)))
    assert json.loads(path.read_text())["m1"]["breaks"]  # learned again, and kept


def test_a_split_learned_from_an_unanswered_block_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / learned.FILE_NAME
    poller, bus = _learning_poller(path)
    bus.meters[1] = sdm630()
    bus.ignored = (40, 49)  # a live meter that leaves this block unanswered (or a noisy line)
    asyncio.run(poller.poll(poller.config.meters[0], list(SDM630.quantities)))
    assert poller.readers["m1"].breaks
    assert not path.exists()


@pytest.mark.parametrize("breaks", [5, True, "input", None, {"input": 40}])
def test_a_learned_splits_entry_of_the_wrong_shape_is_ignored(
    tmp_path: Path, breaks: object
) -> None:
    path = tmp_path / learned.FILE_NAME
    path.write_text(json.dumps({"m1": {"model": "eastron-sdm630", "unit": 1, "breaks": breaks}}))
    poller, _ = _learning_poller(path)
    assert poller.readers["m1"].breaks == set()
