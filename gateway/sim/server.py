"""Open pymodbus servers for simulated meters, in the caller's event loop or on a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from gateway.sim.device import MeterRegisters, absent_units

Transport = Literal["tcp", "rtu", "rtu-over-tcp"]
Server = ModbusTcpServer | ModbusSerialServer
T = TypeVar("T")


def make_server(
    transport: Transport,
    meters: list[MeterRegisters],
    *,
    host: str = "127.0.0.1",
    port: int = 5020,
    device: str | None = None,
    baud: int = 9600,
) -> Server:
    """A server for these meters on one bus; must be called inside a running event loop."""
    devices = [m.device() for m in meters] + [absent_units()]
    server: Server
    if transport == "rtu":
        # Nobody answers for an absent unit on a serial line.
        server = ModbusSerialServer(
            devices,
            port=device or "",
            baudrate=baud,
            framer=FramerType.RTU,
            ignore_missing_devices=True,
        )
    else:
        framer = FramerType.RTU if transport == "rtu-over-tcp" else FramerType.SOCKET
        server = ModbusTcpServer(devices, address=(host, port), framer=framer)
        for meter in meters:
            meter.on_drop = lambda s=server: _drop_connections(s)
    return server


def _drop_connections(server: ModbusTcpServer) -> None:
    for connection in list(server.active_connections.values()):
        connection.close()


class BackgroundServers:
    """Simulator servers on their own event loop thread, so a test or benchmark can block."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.servers: list[Server] = []
        self._thread = threading.Thread(
            target=self.loop.run_forever, daemon=True, name="sim-servers"
        )
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, transport: Transport, meters: list[MeterRegisters], **where: Any) -> Server:
        async def start() -> Server:
            server = make_server(transport, meters, **where)
            await server.serve_forever(background=True)
            return server

        server = self._run(start())
        self.servers.append(server)
        return server

    def stop(self) -> None:
        async def shutdown() -> None:
            for server in self.servers:
                await server.shutdown()  # type: ignore[no-untyped-call]
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self._run(shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()

    def __enter__(self) -> BackgroundServers:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
