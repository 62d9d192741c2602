"""The only module that talks pymodbus: open a bus, read one block of registers."""

from __future__ import annotations

import logging
from typing import Protocol, cast

from pymodbus import FramerType, ModbusException
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from gateway.meter_maps import Function
from gateway.settings import Bus
from sparwatt.errors import ReadError

log = logging.getLogger(__name__)
# pymodbus logs every timeout with a frame dump at ERROR; the ReadError below says it once.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class BusClient(Protocol):
    """What the poller needs from a bus; tests may pass a fake."""

    async def read(self, function: Function, start: int, count: int, unit: int) -> list[int]: ...

    def close(self) -> None: ...


class PymodbusBus:
    """One physical bus or TCP endpoint; the caller guarantees one request at a time."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if bus.transport == "rtu":
            self._client = AsyncModbusSerialClient(
                bus.device or "",
                framer=FramerType.RTU,
                baudrate=bus.baud,
                parity=bus.parity,
                stopbits=bus.stopbits,
                bytesize=bus.bytesize,
                timeout=bus.timeout_s,
                retries=bus.retries,
                reconnect_delay=0.5,
                reconnect_delay_max=10,
            )
        else:
            framer = FramerType.RTU if bus.transport == "rtu-over-tcp" else FramerType.SOCKET
            self._client = AsyncModbusTcpClient(
                bus.host or "",
                port=bus.tcp_port,
                framer=framer,
                timeout=bus.timeout_s,
                retries=bus.retries,
                reconnect_delay=0.5,
                reconnect_delay_max=10,
            )

    async def read(self, function: Function, start: int, count: int, unit: int) -> list[int]:
        if not self._client.connected and not await self._client.connect():
            raise ReadError("connection", f"cannot connect to {self._where()}")
        call = (
            self._client.read_input_registers
            if function == "input"
            else self._client.read_holding_registers
        )
        try:
            response = await call(start, count=count, device_id=unit)
        except ConnectionException as exc:
            raise ReadError("connection", str(exc)) from None
        except ModbusIOException as exc:
            raise ReadError("timeout", f"no answer from unit {unit}: {exc}") from None
        except ModbusException as exc:
            raise ReadError("frame", str(exc)) from None
        if response.isError():
            code = getattr(response, "exception_code", None)
            name = EXCEPTIONS.get(code or 0, "unknown")
            raise ReadError(
                "exception",
                f"unit {unit} answered exception {code} ({name}) to "
                f"{function} {start}..{start + count - 1}",
                code,
            )
        registers = cast(list[int], response.registers)  # a list already; no copy
        if len(registers) != count:
            raise ReadError("frame", f"asked {count} registers, got {len(registers)}")
        return registers

    def close(self) -> None:
        self._client.close()

    def _where(self) -> str:
        if self.bus.transport == "rtu":
            return f"{self.bus.device} at {self.bus.baud} baud"
        return f"{self.bus.host}:{self.bus.tcp_port}"


def open_bus(bus: Bus) -> BusClient:
    return PymodbusBus(bus)
