"""Find responding unit ids on a bus and guess each one's model from identify registers."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import decode, meter_maps
from gateway.modbus_io import open_bus
from gateway.settings import Bus
from sparwatt.errors import ReadError

GATEWAY_CODES = (10, 11)
SERIAL_SETTINGS = [
    (9600, "N"),
    (19200, "N"),
    (9600, "E"),
    (38400, "N"),
    (2400, "N"),
    (4800, "N"),
    (19200, "E"),
    (115200, "N"),
]


# (function, address, count, unit) -> registers: a bus client's read, or a running bus's gate
Read = Callable[[meter_maps.Function, int, int, int], Awaitable[list[int]]]


def units_of(spec: str) -> list[int]:
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


async def _probe(bus: Bus, units: list[int]) -> list[dict[str, Any]]:
    client = open_bus(bus)
    try:
        return await probe(client.read, units)
    finally:
        client.close()


async def probe(read: Read, units: list[int]) -> list[dict[str, Any]]:
    """Which of `units` answer, each with the model whose identify register it matches."""
    found = []
    for unit in units:
        guess = None
        alive = False
        for model in meter_maps.library().values():
            ident = model.identify
            if ident is None:
                continue
            try:
                words = await read(
                    ident.function, ident.address, meter_maps.WORDS[ident.type], unit
                )
            except ReadError as err:
                if err.kind == "connection":
                    raise
                # 0Ah/0Bh come from a TCP gateway saying nobody answered behind it
                absent = err.kind == "timeout" or err.code in GATEWAY_CODES
                if absent and not alive:
                    break  # a silent unit id: do not wait out every model's register
                alive = alive or err.kind == "exception"
                continue
            alive = True
            if decode.raw_value(words, ident.type) in ident.values:
                guess = model.id
                break
        if alive:
            found.append({"unit": unit, "guess": guess})
    return found


async def scan(args: argparse.Namespace) -> list[dict[str, Any]]:
    units = units_of(args.units)
    if args.host:
        host, _, port = args.host.partition(":")
        bus = Bus(
            id="scan",
            transport="rtu-over-tcp" if args.rtu_over_tcp else "tcp",
            host=host,
            port=int(port) if port else 502,
            timeout_s=args.timeout,
            retries=0,
        )
        return await _probe(bus, units)
    for baud, parity in SERIAL_SETTINGS:
        bus = Bus(
            id="scan",
            transport="rtu",
            device=args.port,
            baud=baud,
            parity=parity,  # type: ignore[arg-type]
            timeout_s=args.timeout,
            retries=0,
        )
        found = await _probe(bus, units)
        if found:
            return [f | {"baud": baud, "parity": parity} for f in found]
    return []
