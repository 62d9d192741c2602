"""How much of an RS485 bus's time the configured reads take, from baud, framing and plan.

Pure arithmetic, no I/O. A Modbus RTU request for n registers is 8 bytes on the wire and its
answer 5 + 2n bytes; every frame is followed by 3.5 characters of silence (a fixed 1.75 ms
above 19200 baud, as the Modbus serial line guide sets). A character is counted as 11 bits:
the Modbus RTU character is 1 start + 8 data + parity + 1 stop, or 2 stop bits without
parity; 8N1 (10 bits) is counted as 11 too, because USB adapters leave gaps between
characters and the estimate must not promise more than the line gives. 8E2/8O2 take 12.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway import meter_maps, planner

if TYPE_CHECKING:
    from gateway.settings import Bus, GatewayConfig

REQUEST_BYTES = 8
RESPONSE_OVERHEAD_BYTES = 5  # unit id, function code, byte count, 2 CRC bytes
MAX_UTILISATION = 1.0


def char_bits(bytesize: int, parity: str, stopbits: int) -> int:
    """Bits one character takes on the line, never fewer than the Modbus RTU 11."""
    return max(11, 1 + bytesize + (parity != "N") + stopbits)


def char_time_s(baud: int, bytesize: int = 8, parity: str = "N", stopbits: int = 1) -> float:
    return char_bits(bytesize, parity, stopbits) / baud


def gap_s(baud: int, char_s: float) -> float:
    """The silence that ends a frame: 3.5 characters, fixed at 1.75 ms above 19200 baud."""
    return 0.00175 if baud > 19200 else 3.5 * char_s


def request_time_s(
    registers: int, baud: int, bytesize: int = 8, parity: str = "N", stopbits: int = 1
) -> float:
    """Line time of one read: request, gap, response, gap (the meter's own delay excluded)."""
    char_s = char_time_s(baud, bytesize, parity, stopbits)
    chars = REQUEST_BYTES + RESPONSE_OVERHEAD_BYTES + 2 * registers
    return chars * char_s + 2 * gap_s(baud, char_s)


@dataclass(frozen=True)
class MeterLoad:
    meter: str
    interval_s: float
    requests: int
    registers: int
    read_s: float  # bus time of one read of this schedule

    @property
    def utilisation(self) -> float:
        return self.read_s / self.interval_s


@dataclass(frozen=True)
class BusLoad:
    bus: str
    baud: int
    framing: str
    meters: list[MeterLoad]

    @property
    def utilisation(self) -> float:
        return sum(m.utilisation for m in self.meters)

    def describe(self) -> str:
        per_read = ", ".join(
            f"{m.meter} {m.requests} requests {m.read_s * 1000:.1f} ms every {m.interval_s:g} s"
            for m in self.meters
        )
        return (
            f"bus {self.bus!r} at {self.baud} baud {self.framing}: "
            f"{self.utilisation:.0%} busy ({per_read})"
        )


def bus_load(bus: Bus, config: GatewayConfig) -> BusLoad:
    """The share of the bus's time every schedule of every meter on it needs."""
    lib = meter_maps.library()
    pause_s = bus.pause_ms / 1000
    loads = []
    for meter in config.meters:
        if meter.bus != bus.id:
            continue
        mapped = lib[meter.model]
        for interval_s, names in meter.schedules(mapped):
            blocks = planner.plan(mapped, names, max_registers=meter.max_registers)
            line_s = sum(
                request_time_s(b.count, bus.baud, bus.bytesize, bus.parity, bus.stopbits)
                for b in blocks
            )
            waits = len(blocks) * max(pause_s, mapped.pause_ms / 1000)
            loads.append(
                MeterLoad(
                    meter.id, interval_s, len(blocks), sum(b.count for b in blocks), line_s + waits
                )
            )
    return BusLoad(bus.id, bus.baud, f"{bus.bytesize}{bus.parity}{bus.stopbits}", loads)


def serial_line_known(bus: Bus) -> bool:
    """An RS485 line whose speed we know: our own serial port, or a converter or Modbus TCP
    gateway whose serial side the installer described with `baud`."""
    return bus.transport == "rtu" or "baud" in bus.model_fields_set


def problems(config: GatewayConfig) -> list[str]:
    """One line per RS485 bus that cannot fit its reads into their intervals."""
    out = []
    for bus in config.buses:
        if not serial_line_known(bus):
            continue  # a TCP meter, or a converter whose line speed nobody gave
        load = bus_load(bus, config)
        if load.utilisation > MAX_UTILISATION:
            out.append(
                f"buses.{bus.id}: the configured reads need more time than the line "
                f"has: {load.describe()}; raise baud, lengthen interval_s or read "
                f"fewer quantities"
            )
    return out
