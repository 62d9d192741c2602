"""sparwatt-gateway: the gateway service, its config check, and installer tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from gateway import bus_budget, meter_maps, planner, settings
from gateway.modbus_io import open_bus
from gateway.reader import BusGate, MeterReader
from sparwatt.console import EXIT_FAIL, EXIT_OK, EXIT_USAGE, emit, run
from sparwatt.errors import ReadError
from sparwatt.wire import QUANTITIES


def _count(n: object, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_check_config(args: argparse.Namespace) -> int:
    config = settings.load(args.config)
    loads = [
        bus_budget.bus_load(b, config) for b in config.buses if bus_budget.serial_line_known(b)
    ]
    data = {
        "ok": True,
        "meters": len(config.meters),
        "buses": len(config.buses),
        "rs485": [
            {
                "bus": load.bus,
                "baud": load.baud,
                "framing": load.framing,
                "utilisation": round(load.utilisation, 4),
            }
            for load in loads
        ],
    }
    human = [f"{args.config}: ok ({len(config.meters)} meters on {len(config.buses)} buses)"]
    human += [f"  {load.describe()}" for load in loads]
    emit(args, data, "\n".join(human))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.service import Gateway

    config = settings.load(args.config)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Gateway(config, config_path=args.config).run(stop)

    asyncio.run(main())
    return EXIT_OK


def _adhoc_config(args: argparse.Namespace) -> settings.GatewayConfig:
    if args.host:
        host, _, port = args.host.partition(":")
        bus = {
            "id": "cli",
            "transport": "rtu-over-tcp" if args.rtu_over_tcp else "tcp",
            "host": host,
            "port": int(port) if port else 502,
        }
    else:
        bus = {
            "id": "cli",
            "transport": "rtu",
            "device": args.port,
            "baud": args.baud,
            "parity": args.parity,
        }
    bus["timeout_s"] = args.timeout
    data = {
        "gateway": {"site": "cli", "id": "cli"},
        "buses": [bus],
        "meters": [
            {"id": f"unit-{args.unit}", "bus": "cli", "unit": args.unit, "model": args.model}
        ],
    }
    from sparwatt import configfile

    return configfile.validate(settings.GatewayConfig, data, "command line")


async def _read_all(config: settings.GatewayConfig, only: str | None) -> list[dict[str, Any]]:
    gates = {b.id: BusGate(open_bus(b), b.pause_ms / 1000) for b in config.buses}
    out = []
    try:
        for meter in config.meters:
            if only and meter.id != only:
                continue
            mapped = meter_maps.library()[meter.model]
            reader = MeterReader(mapped, meter.unit, meter.max_registers)
            entry: dict[str, Any] = {"meter": meter.id, "model": meter.model, "unit": meter.unit}
            try:
                result = await reader.read(gates[meter.bus], meter.wanted(mapped))
            except ReadError as err:
                entry |= {"ok": False, "error": str(err)}
            else:
                entry |= {
                    "ok": True,
                    "values": result.values,
                    "requests": result.requests,
                    "latency_ms": round(result.latency_s * 1000, 1),
                    "invalid": result.invalid,
                    "unavailable": sorted(reader.unavailable),
                }
            out.append(entry)
    finally:
        for gate in gates.values():
            gate.client.close()
    return out


def _read_table(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(f"{r['meter']}: {r['model']} at unit {r['unit']}")
        if not r["ok"]:
            lines.append(f"  FAILED: {r['error']}")
            continue
        for name, value in r["values"].items():
            unit = QUANTITIES[name].unit
            lines.append(f"  {name:<30} {value:>14.3f} {unit}")
        for name in r["invalid"]:
            lines.append(f"  {name:<30} {'implausible':>14}")
        for name in r["unavailable"]:
            lines.append(f"  {name:<30} {'not offered':>14}")
        lines.append(f"  {r['requests']} requests, {r['latency_ms']} ms")
    return "\n".join(lines)


def cmd_read(args: argparse.Namespace) -> int:
    if args.config:
        config = settings.load(args.config)
    elif args.model and (args.host or args.port):
        config = _adhoc_config(args)
    else:
        print(
            "sparwatt-gateway read: give CONFIG, or --model with --host or --port", file=sys.stderr
        )
        return EXIT_USAGE
    if args.meter and args.meter not in {m.id for m in config.meters}:
        print(f"sparwatt-gateway read: no meter {args.meter!r} in the config", file=sys.stderr)
        return EXIT_USAGE
    results = asyncio.run(_read_all(config, args.meter))
    emit(args, results, _read_table(results))
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_FAIL


def cmd_meters(args: argparse.Namespace) -> int:
    lib = meter_maps.library()
    data = [
        {
            "id": m.id,
            "manufacturer": m.manufacturer,
            "model": m.model,
            "source": m.source,
            "function": m.function,
            "max_registers": m.max_registers,
            "identifiable": m.identify is not None,
            "requests": len(planner.plan(m, m.quantities)),
            "quantities": {name: QUANTITIES[name].unit for name in m.quantities},
        }
        for m in lib.values()
    ]
    human = "\n".join(
        f"{m.id:<22} {m.manufacturer} {m.model}: {len(m.quantities)} quantities "
        f"in {_count(d['requests'], 'request')}"
        f"{'' if m.identify else ', not identifiable by scan'}"
        for m, d in zip(lib.values(), data, strict=True)
    )
    emit(args, data, human)
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    meter = meter_maps.library().get(args.model)
    if meter is None:
        print(f"sparwatt-gateway plan: unknown model {args.model!r}", file=sys.stderr)
        return EXIT_USAGE
    blocks = planner.plan(meter, meter.quantities, max_registers=args.max_registers)
    line_s = [bus_budget.request_time_s(b.count, args.baud, parity=args.parity) for b in blocks]
    data = {
        "model": meter.id,
        "requests": len(blocks),
        "baud": args.baud,
        "parity": args.parity,
        "line_ms": round(sum(line_s) * 1000, 1),
        "blocks": [
            {
                "function": b.function,
                "start": b.start,
                "count": b.count,
                "line_ms": round(t * 1000, 1),
                "quantities": [s.name for s in b.spans],
            }
            for b, t in zip(blocks, line_s, strict=True)
        ],
    }
    human = "\n".join(
        f"{i + 1}. {b.describe()} {t * 1000:.1f} ms: {', '.join(s.name for s in b.spans)}"
        for i, (b, t) in enumerate(zip(blocks, line_s, strict=True))
    )
    emit(
        args,
        data,
        f"{meter.id}: {_count(len(blocks), 'request')}, "
        f"{sum(line_s) * 1000:.1f} ms of "
        f"RS485 line time at {args.baud} baud 8{args.parity}1\n{human}",
    )
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    from gateway.scan import scan

    found = asyncio.run(scan(args))
    human = (
        "\n".join(
            f"unit {f['unit']}: {f.get('guess') or 'unknown model'}"
            + (f" at {f['baud']} baud {f['parity']}" if "baud" in f else "")
            for f in found
        )
        or "no responding unit"
    )
    emit(args, found, human)
    return EXIT_OK if found else EXIT_FAIL


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparwatt-gateway", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        return sp

    sp = add("run", "run the gateway service")
    sp.add_argument("config", type=Path)
    sp.add_argument("--log-level", default="INFO")
    sp.set_defaults(func=cmd_run)
    sp = add("check-config", "validate a gateway config and exit")
    sp.add_argument("config", type=Path)
    sp.set_defaults(func=cmd_check_config)
    sp = add("read", "read meters once now and print their values")
    sp.add_argument("config", type=Path, nargs="?")
    sp.add_argument("--meter", help="only this meter id of the config")
    _target(sp)
    sp.add_argument("--model", help="meter model id (see 'meters')")
    sp.add_argument("--unit", type=int, default=1)
    sp.set_defaults(func=cmd_read)
    sp = add("scan", "find responding unit ids and guess their models")
    _target(sp)
    sp.add_argument("--units", default="1-247", help="unit id range, e.g. 1-32")
    sp.set_defaults(func=cmd_scan)
    sp = add("meters", "list the shipped meter models")
    sp.set_defaults(func=cmd_meters)
    sp = add("plan", "print the read requests for a model's full read")
    sp.add_argument("model")
    sp.add_argument("--max-registers", type=int)
    sp.add_argument("--baud", type=int, default=9600, help="for the line time estimate")
    sp.add_argument("--parity", choices=["N", "E", "O"], default="N")
    sp.set_defaults(func=cmd_plan)
    return p


def _target(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--host", help="Modbus TCP endpoint H[:P]")
    sp.add_argument("--rtu-over-tcp", action="store_true", help="RTU frames over --host")
    sp.add_argument("--port", help="serial device, e.g. /dev/ttyUSB0")
    sp.add_argument("--baud", type=int, default=9600)
    sp.add_argument("--parity", choices=["N", "E", "O"], default="N")
    sp.add_argument("--timeout", type=float, default=0.5, help="seconds per request")


def main(argv: list[str] | None = None) -> int:
    return run(_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
