"""Gateway read cost per shipped model against a bare pymodbus loop reading the same blocks.

Serves every shipped model from one simulator process (Modbus TCP on localhost), then for each
model measures, in the same run and interleaved in rounds:

  gateway  MeterReader.read over the gateway's bus client: plan, requests, decode, checks
  bare     AsyncModbusTcpClient reading the planned blocks, nothing else (the baseline)

and prints requests per full read and the client process's CPU time per meter read. The
simulator runs in its own process so its CPU time is not counted.

    .venv/bin/python bench/bench_modbus.py [--reads 300] [--rounds 7]

Targets: SDM630 all quantities in <= 3 requests; gateway CPU <= 1.3x the bare loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # devtools/ lives in the checkout, not in the install

from devtools.broker import free_port, wait_for_port  # noqa: E402
from gateway import meter_maps, planner  # noqa: E402
from gateway.modbus_io import open_bus  # noqa: E402
from gateway.reader import BusGate, MeterReader  # noqa: E402
from gateway.settings import Bus  # noqa: E402

TARGET_REQUESTS = {"eastron-sdm630": 3}
TARGET_RATIO = 1.3


def start_simulator(models: list[str], port: int, workdir: Path) -> subprocess.Popen[bytes]:
    lines = ["tick_s = 3600", "[[servers]]", 'transport = "tcp"', f"port = {port}"]
    for unit, model in enumerate(models, start=1):
        lines += ["[[servers.meters]]", f"unit = {unit}", f'model = "{model}"']
    config = workdir / "sim.toml"
    config.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.sim.cli", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, 15)
    return proc


async def gateway_reads(gate: BusGate, reader: MeterReader, names: list[str], n: int) -> float:
    began = time.process_time()
    for _ in range(n):
        result = await reader.read(gate, names)
        if len(result.values) + len(result.invalid) != len(names):
            raise RuntimeError(f"{reader.meter.id}: incomplete read")
    return (time.process_time() - began) / n


async def bare_reads(
    client: AsyncModbusTcpClient, blocks: list[planner.Block], unit: int, n: int
) -> float:
    began = time.process_time()
    for _ in range(n):
        for block in blocks:
            call = (
                client.read_input_registers
                if block.function == "input"
                else client.read_holding_registers
            )
            response = await call(block.start, count=block.count, device_id=unit)
            if response.isError():
                raise RuntimeError(f"unit {unit}: {response}")
    return (time.process_time() - began) / n


async def measure(port: int, models: list[str], reads: int, rounds: int) -> list[dict[str, object]]:
    bus = Bus(id="bench", transport="tcp", host="127.0.0.1", port=port, timeout_s=2.0)
    gate = BusGate(open_bus(bus))
    bare = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2.0, retries=0)
    await bare.connect()
    rows = []
    try:
        for unit, model in enumerate(models, start=1):
            meter = meter_maps.library()[model]
            names = list(meter.quantities)
            reader = MeterReader(meter, unit)
            blocks = reader.plan(names)
            await gateway_reads(gate, reader, names, 5)  # connect, warm caches
            await bare_reads(bare, blocks, unit, 5)
            ours, theirs = [], []
            for _ in range(rounds):
                ours.append(await gateway_reads(gate, reader, names, reads))
                theirs.append(await bare_reads(bare, blocks, unit, reads))
            # the least disturbed round of each side: other load on the machine only adds
            gateway_s, bare_s = min(ours), min(theirs)
            rows.append(
                {
                    "model": model,
                    "quantities": len(names),
                    "requests": len(blocks),
                    "gateway_us": gateway_s * 1e6,
                    "bare_us": bare_s * 1e6,
                    "ratio": gateway_s / bare_s,
                }
            )
    finally:
        gate.client.close()
        bare.close()
    return rows


def report(rows: list[dict[str, object]], reads: int, rounds: int) -> bool:
    print(
        f"Modbus TCP on localhost, CPU time of this process per full meter read "
        f"(best of {rounds} rounds x {reads} reads; pymodbus {_pymodbus_version()}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)"
    )
    print(
        f"{'model':<22} {'quantities':>10} {'requests':>8} {'gateway us':>11} "
        f"{'bare us':>9} {'ratio':>6}  targets"
    )
    ok = True
    for r in rows:
        notes = []
        want = TARGET_REQUESTS.get(str(r["model"]))
        if want is not None:
            met = int(str(r["requests"])) <= want
            ok &= met
            notes.append(f"requests <= {want} {'ok' if met else 'MISSED'}")
        ratio = float(str(r["ratio"]))
        met = ratio <= TARGET_RATIO
        ok &= met
        notes.append(f"ratio <= {TARGET_RATIO} {'ok' if met else 'MISSED'}")
        print(
            f"{r['model']:<22} {r['quantities']:>10} {r['requests']:>8} "
            f"{float(str(r['gateway_us'])):>11.0f} {float(str(r['bare_us'])):>9.0f} "
            f"{ratio:>6.2f}  {', '.join(notes)}"
        )
    print("baseline: bare = AsyncModbusTcpClient reading the same planned blocks, no decoding")
    return ok


def _pymodbus_version() -> str:
    import pymodbus

    return str(pymodbus.__version__)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=300, help="reads per round and side")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    models = sorted(meter_maps.library())
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        sim = start_simulator(models, port, Path(tmp))
        try:
            rows = asyncio.run(measure(port, models, args.reads, args.rounds))
        finally:
            sim.terminate()
            sim.wait(10)
    return 0 if report(rows, args.reads, args.rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
