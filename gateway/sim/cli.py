"""sparwatt-sim: serve simulated meters over Modbus TCP, RTU or RTU over TCP."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import IO

from gateway import meter_maps
from gateway.sim.config import SimConfig, SimMeter, SimServer
from gateway.sim.config import load as load_config
from gateway.sim.device import Faults, FixedValues, MeterRegisters, ValueSource
from gateway.sim.meter import SimulatedMeter
from gateway.sim.profile import LoadProfile
from gateway.sim.server import Server, make_server
from sparwatt.errors import ConfigError

log = logging.getLogger("sparwatt.sim")


def registers(m: SimMeter, tick_s: float, served_log: IO[str] | None) -> MeterRegisters:
    source: ValueSource = (
        FixedValues(m.values)
        if m.values is not None
        else SimulatedMeter(LoadProfile(m.profile, m.peak_kw, m.seed), start_kwh=m.start_kwh)
    )
    faults = Faults(
        exceptions=tuple(m.faults.exceptions),
        ignored=tuple(m.faults.ignored),
        silent_after=m.faults.silent_after,
        drop_after=m.faults.drop_after,
        nan=frozenset(m.faults.nan),
    )
    return MeterRegisters(
        unit=m.unit,
        meter_map=meter_maps.library()[m.model],
        meter=source,
        tick_s=tick_s,
        served_log=served_log,
        faults=faults,
    )


def build_server(server: SimServer, tick_s: float, served_log: IO[str] | None) -> Server:
    meters = [registers(m, tick_s, served_log) for m in server.meters]
    return make_server(
        server.transport,
        meters,
        host=server.host,
        port=server.port,
        device=server.device,
        baud=server.baud,
    )


async def serve(config: SimConfig, served_log: IO[str] | None = None) -> None:
    servers = [build_server(s, config.tick_s, served_log) for s in config.servers]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(server.serve_forever()) for server in servers]
    for s in config.servers:
        where = s.device if s.transport == "rtu" else f"{s.host}:{s.port}"
        units = ", ".join(f"{m.unit}={m.model}" for m in s.meters)
        print(f"serving {s.transport} on {where}: units {units}", flush=True)
    await stop.wait()
    for server in servers:
        await server.shutdown()  # type: ignore[no-untyped-call]
    for task in tasks:
        task.cancel()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparwatt-sim", description=__doc__)
    p.add_argument("--config", type=Path, help="simulator TOML (see config/sim.example.toml)")
    p.add_argument("--model", help="serve one meter of this model (see sparwatt-gateway meters)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5020, help="TCP port (default 5020)")
    p.add_argument("--unit", type=int, default=1)
    p.add_argument("--profile", default="office")
    p.add_argument("--peak-kw", type=float, default=40.0)
    p.add_argument("--tick", type=float, default=1.0, help="seconds between value changes")
    p.add_argument("--served-log", type=Path, help="append every served snapshot as JSON lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.config:
            config = load_config(args.config)
        elif args.model:
            meter = SimMeter(
                unit=args.unit, model=args.model, profile=args.profile, peak_kw=args.peak_kw
            )
            config = SimConfig(
                tick_s=args.tick,
                servers=[SimServer(host=args.host, port=args.port, meters=[meter])],
            )
        else:
            print("sparwatt-sim: give --config FILE or --model MODEL", file=sys.stderr)
            return 2
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"sparwatt-sim: {exc}", file=sys.stderr)
        return 2
    served = args.served_log.open("a") if args.served_log else None
    try:
        asyncio.run(serve(config, served))
    finally:
        if served:
            served.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
