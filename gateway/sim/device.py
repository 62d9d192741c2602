"""Lay a simulated meter's values into Modbus registers exactly as its meter map says."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Protocol

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway import decode
from gateway.meter_maps import WORDS, Function, MeterMap

_FC_FUNCTION: dict[int, Function] = {3: "holding", 4: "input"}


class ValueSource(Protocol):
    """Anything that knows a meter's canonical quantities at epoch second t."""

    def values(self, t: float) -> dict[str, float]: ...


@dataclass(frozen=True)
class FixedValues:
    """A meter whose readings never change: known values for tests and benchmarks."""

    readings: dict[str, float]

    def values(self, t: float) -> dict[str, float]:
        return dict(self.readings)


@dataclass(frozen=True)
class Faults:
    """Misbehaviour a simulated meter can show; the gateway never builds one."""

    # (first, last, code): a request touching these addresses gets this exception code
    exceptions: tuple[tuple[int, int, int], ...] = ()
    # (first, last): requests touching these addresses get no answer at all
    ignored: tuple[tuple[int, int], ...] = ()
    # answer this many requests, then never again (a meter that died on the bus)
    silent_after: int | None = None
    # answer this many requests, then drop every connection of the server once, mid-request
    drop_after: int | None = None
    # quantities served as NaN (float registers only)
    nan: frozenset[str] = frozenset()


def sunspec_exponent(value: float, data_type: str) -> int:
    """Smallest power of ten (from 10^-3) that keeps the value inside its register type."""
    bits = 16 * WORDS[data_type]
    top = 2 ** (bits - 1) - 1 if data_type.startswith("i") else 2**bits - 1
    exponent = -3
    while not abs(value) / 10.0**exponent <= top and exponent < 10:
        exponent += 1
    return exponent


def scale_exponents(meter_map: MeterMap, values: dict[str, float]) -> dict[int, int]:
    """One exponent per scale-factor register, coarse enough for every value that shares it."""
    out: dict[int, int] = {}
    for name, fld in meter_map.quantities.items():
        if fld.scale_register is not None:
            needed = sunspec_exponent(values.get(name, 0.0) / decode.factor(fld), fld.type)
            out[fld.scale_register] = max(needed, out.get(fld.scale_register, needed))
    return out


@dataclass
class MeterRegisters:
    """One unit id on a bus: a meter map filled from a value source, refreshed per tick."""

    unit: int
    meter_map: MeterMap
    meter: ValueSource
    tick_s: float = 1.0
    served_log: IO[str] | None = None
    clock: Callable[[], float] = time.time
    faults: Faults = field(default_factory=Faults)
    on_drop: Callable[[], None] | None = None  # closes the server's connections
    requests: int = 0
    refused: int = 0  # exception responses sent
    drops: int = 0  # times it dropped the server's connections
    unanswered: int = 0  # requests it ignored for touching an ignored range
    _tick: int | None = None
    _words: dict[tuple[Function, int], int] = field(default_factory=dict)
    _ident: dict[tuple[Function, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.faults.nan:
            if self.meter_map.quantities[name].type not in ("f32", "f64"):
                raise ValueError(f"{name}: only float registers can hold NaN")
        ident = self.meter_map.identify
        if ident is not None:
            words = decode.encode_raw(ident.values[-1], ident.type)
            self._ident = {(ident.function, ident.address + i): w for i, w in enumerate(words)}

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
        exponents = scale_exponents(self.meter_map, values)
        for name, fld in self.meter_map.quantities.items():
            fn = self.meter_map.field_function(name)
            value = math.nan if name in self.faults.nan else values.get(name, 0.0)
            exponent = None
            if fld.scale_register is not None:
                exponent = exponents[fld.scale_register]
                self._words[(fn, fld.scale_register)] = exponent & 0xFFFF
            raw = value / decode.factor(fld) / (10.0**exponent if exponent is not None else 1.0)
            words = decode.encode_raw(
                raw,
                fld.type,
                fld.word_order or self.meter_map.word_order,
                fld.byte_order or self.meter_map.byte_order,
            )
            for offset, word in enumerate(words):
                self._words[(fn, fld.address + offset)] = word
            served[name] = decode.field_value(self.meter_map, fld, words, exponent)
        for key, word in self._ident.items():
            # An identify register that shares a quantity's address (Carlo Gavazzi's 000Bh)
            # answers its code only when read alone; see _identify_request.
            self._words.setdefault(key, word)
        if self.served_log is not None:
            self.served_log.write(
                json.dumps(
                    {"unit": self.unit, "model": self.meter_map.id, "t": t, "values": served}
                )
                + "\n"
            )
            self.served_log.flush()

    def _identify_request(self, fn: Function, address: int, count: int) -> bool:
        ident = self.meter_map.identify
        return (
            ident is not None
            and fn == ident.function
            and address == ident.address
            and count == len(self._ident)
        )

    def _fault(self, address: int, count: int) -> ExcCodes | None:
        last = address + count - 1
        for first, end, code in self.faults.exceptions:
            if address <= end and last >= first:
                return ExcCodes(code)
        return None

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        _set_values: object,
    ) -> ExcCodes | None:
        fn = _FC_FUNCTION.get(function_code)
        if fn is None:
            return None
        self.requests += 1
        faults = self.faults
        if self.requests - 1 == faults.drop_after and self.on_drop is not None:
            self.on_drop()
            self.drops += 1
            return ExcCodes.DEVICE_FAILURE  # never arrives: the connection is gone
        if faults.silent_after is not None and self.requests > faults.silent_after:
            await asyncio.Event().wait()  # never answers; the server cancels it on shutdown
        last = address + count - 1
        if any(address <= end and last >= first for first, end in faults.ignored):
            self.unanswered += 1
            await asyncio.Event().wait()
        code = self._fault(address, count)
        if code is not None:
            self.refused += 1
            return code
        self.snapshot()
        identify = self._identify_request(fn, address, count)
        for offset in range(address, address + count):
            key = (fn, offset)
            word = self._ident.get(key) if identify else None
            registers[offset - start_address] = self._words.get(key, 0) if word is None else word
        return None

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
        return [
            SimData(address=a, count=b - a + 1, values=0, datatype=DataType.REGISTERS)
            for a, b in blocks
        ]

    def device(self) -> SimDevice:
        bits = [SimData(address=0, count=16, values=False, datatype=DataType.BITS)]
        return SimDevice(
            id=self.unit,
            simdata=(bits, list(bits), self._block("holding"), self._block("input")),
            action=self.action,
        )


async def _absent(*_args: object) -> ExcCodes | None:
    raise NoSuchIdException("no meter at this unit id")


def absent_units() -> SimDevice:
    """Catch-all for unit ids nobody serves: silent on a serial bus, 0Bh from a TCP gateway.

    pymodbus answers an unknown id with a device failure, which no real bus does; this device
    raises the "no such id" error the server maps to silence (ignore_missing_devices) or 0Bh.
    """
    bits = [SimData(address=0, count=16, values=False, datatype=DataType.BITS)]
    every = [SimData(address=0, count=65535, values=0, datatype=DataType.REGISTERS)]
    return SimDevice(id=0, simdata=(bits, list(bits), every, list(every)), action=_absent)
