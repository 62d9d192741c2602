"""Lay a simulated meter's values into Modbus registers exactly as its meter map says."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from pymodbus.simulator import DataType, SimData, SimDevice

from gateway import decode
from gateway.meter_maps import Function, MeterMap
from gateway.sim.meter import SimulatedMeter

_FC_FUNCTION: dict[int, Function] = {3: "holding", 4: "input"}


def _sunspec_exponent(value: float) -> int:
    """Smallest power of ten that keeps the value inside an int16 register."""
    exponent = -3
    while abs(value) / 10.0**exponent > 32767 and exponent < 10:
        exponent += 1
    return exponent


@dataclass
class MeterRegisters:
    """One unit id on a bus: a meter map filled from a simulated meter, refreshed per tick."""

    unit: int
    meter_map: MeterMap
    meter: SimulatedMeter
    tick_s: float = 1.0
    served_log: IO[str] | None = None
    clock: Callable[[], float] = time.time
    _tick: int | None = None
    _words: dict[tuple[Function, int], int] = field(default_factory=dict)
    _written: dict[Function, int] = field(default_factory=dict)

    def snapshot(self) -> None:
        """Recompute all registers if a new tick began (offset by half a tick from polls)."""
        tick = math.floor((self.clock() - self.tick_s / 2) / self.tick_s)
        if tick == self._tick:
            return
        self._tick = tick
        t = (tick + 0.5) * self.tick_s
        values = self.meter.values(t)
        self._words.clear()
        served: dict[str, float] = {}
        for name, fld in self.meter_map.quantities.items():
            fn = self.meter_map.field_function(name)
            value = values.get(name, 0.0)
            exponent = None
            if fld.scale_register is not None:
                exponent = _sunspec_exponent(value / decode.factor(fld))
                self._words[(fn, fld.scale_register)] = exponent & 0xFFFF
            raw = value / decode.factor(fld) / (10.0**exponent if exponent is not None else 1.0)
            words = decode.encode_raw(
                raw, fld.type, fld.word_order or self.meter_map.word_order,
                fld.byte_order or self.meter_map.byte_order,
            )
            for offset, word in enumerate(words):
                self._words[(fn, fld.address + offset)] = word
            served[name] = decode.field_value(self.meter_map, fld, words, exponent)
        if self.meter_map.identify is not None:
            ident = self.meter_map.identify
            words = decode.encode_raw(ident.values[-1], ident.type)
            for offset, word in enumerate(words):
                self._words[(ident.function, ident.address + offset)] = word
        if self.served_log is not None:
            self.served_log.write(json.dumps({"unit": self.unit, "model": self.meter_map.id,
                                              "t": t, "values": served}) + "\n")
            self.served_log.flush()

    async def action(self, function_code: int, start_address: int, _address: int, _count: int,
                     registers: list[int], _set_values: object) -> None:
        fn = _FC_FUNCTION.get(function_code)
        if fn is None:
            return
        self.snapshot()
        assert self._tick is not None
        if self._written.get(fn) == self._tick:
            return
        self._written[fn] = self._tick
        for (word_fn, address), word in self._words.items():
            if word_fn == fn:
                registers[address - start_address] = word

    def _addresses(self, fn: Function) -> list[int]:
        self.snapshot()
        return sorted(a for (f, a) in self._words if f == fn)

    def _block(self, fn: Function) -> list[SimData]:
        addresses = self._addresses(fn)
        if not addresses:
            return [SimData(address=0, count=1, datatype=DataType.INVALID)]
        lo, hi = addresses[0], addresses[-1]
        # The meter answers zeros between mapped registers, but refuses its forbidden ranges.
        blocks, start = [], lo
        for f_start, f_end in sorted(self.meter_map.forbidden):
            if f_end < lo or f_start > hi:
                continue
            if f_start > start:
                blocks.append((start, f_start - 1))
            start = max(start, f_end + 1)
        if start <= hi:
            blocks.append((start, hi))
        return [SimData(address=a, count=b - a + 1, values=0, datatype=DataType.REGISTERS)
                for a, b in blocks]

    def device(self) -> SimDevice:
        bits = [SimData(address=0, count=16, values=False, datatype=DataType.BITS)]
        return SimDevice(
            id=self.unit,
            simdata=(bits, list(bits), self._block("holding"), self._block("input")),
            action=self.action,
        )
