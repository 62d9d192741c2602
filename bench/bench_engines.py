"""The store on its engines, without MQTT: `Store.write` of validated SDM630 batches and
the interval refresh of the meters they marked, on a SQLite file, on a private PostgreSQL
server, and with raw readings in a private VictoriaMetrics (the rest in PostgreSQL), in one
run on the same messages.

Run:  .venv/bin/python bench/bench_engines.py [--gateways 200] [--meters 5] [--ticks 6]
          [--batch 200]

Every gateway sends one message per tick with one reading per meter (28 values, 10 s apart);
the first tick registers gateways and meters and is not counted. CPU is this process's (the
client side: Python, the driver, SQLite itself); wall time includes the PostgreSQL server's
work and the round trips. The refresh is measured twice: right after the writes (every meter
rolls up what it has) and after one more reading per meter, as a refresh round in steady
state sees it. With VictoriaMetrics a refresh round first flushes the server and waits
`settle_s` (1.5 s) for new series: that wait is in the wall time of the round, not in the
CPU; the server's own CPU is given apart (docs/storage.md has its disk per value, from
bench/bench_storage.py on a long stream).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.ingest import check as ingest  # noqa: E402
from collector.intervals.refresh import policy_of, refresh_intervals  # noqa: E402
from collector.settings import Ingest, Intervals, Victoria  # noqa: E402
from collector.store import Store  # noqa: E402
from collector.store.sql import Target  # noqa: E402
from devtools import load  # noqa: E402
from devtools.postgres import Postgres  # noqa: E402
from devtools.victoria import VictoriaMetrics  # noqa: E402
from sparwatt import wire  # noqa: E402

TICK_S = 10.0
Ticks = list[list[wire.ReadingsMessage]]  # each tick's validated messages


def messages(args: argparse.Namespace) -> Ticks:
    """Each tick's validated messages, the same on every call."""
    gateways = load.fleet(args.gateways, args.meters)
    rules = Ingest()
    start = time.time() - 3600
    out = []
    for batch in load.ticks(gateways, start, TICK_S, args.ticks + 1):
        checked = [ingest.check(topic, payload, rules, set()) for topic, payload in batch]
        out.append([m for m in checked if isinstance(m, wire.ReadingsMessage)])
    return out


def measure(
    target: Target, ticks: Ticks, batch: int, server_cpu: Callable[[], float] = lambda: 0.0
) -> dict[str, float]:
    """Figures of one engine; `server_cpu` reads a server's CPU seconds so far (its share of
    the writes and of the refresh is given too)."""
    store = Store(target)
    policy = policy_of(Intervals())
    try:
        store.write(ticks[0])
        refresh_intervals(store, policy)
        counted = [m for tick in ticks[1:-1] for m in tick]
        values = sum(len(r.values) for m in counted for r in m.readings)
        cpu, wall, server = time.process_time(), time.perf_counter(), server_cpu()
        for i in range(0, len(counted), batch):
            store.write(counted[i : i + batch])
        write_cpu, write_wall = time.process_time() - cpu, time.perf_counter() - wall
        write_server = server_cpu() - server
        cpu, wall, server = time.process_time(), time.perf_counter(), server_cpu()
        meters = refresh_intervals(store, policy)
        first_cpu, first_wall = time.process_time() - cpu, time.perf_counter() - wall
        refresh_server = server_cpu() - server
        store.write(ticks[-1])
        cpu, wall = time.process_time(), time.perf_counter()
        again = refresh_intervals(store, policy)
        steady_cpu, steady_wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        store.close()
    return {
        "values": values,
        "write_cpu_us": write_cpu / values * 1e6,
        "write_wall_us": write_wall / values * 1e6,
        "meters": meters,
        "refresh_cpu_ms": first_cpu / max(meters, 1) * 1e3,
        "refresh_wall_ms": first_wall / max(meters, 1) * 1e3,
        "steady_cpu_ms": steady_cpu / max(again, 1) * 1e3,
        "steady_wall_ms": steady_wall / max(again, 1) * 1e3,
        "write_server_us": write_server / values * 1e6,
        "refresh_server_ms": refresh_server / max(meters, 1) * 1e3,
    }


def _cpu_s(vm: VictoriaMetrics) -> float:
    """CPU seconds the server process has used so far."""
    assert vm.proc is not None
    fields = Path(f"/proc/{vm.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gateways", type=int, default=200)
    p.add_argument("--meters", type=int, default=5, help="meters per gateway")
    p.add_argument("--ticks", type=int, default=6, help="readings per meter that are counted")
    p.add_argument("--batch", type=int, default=200, help="messages per Store.write")
    args = p.parse_args()
    ticks = messages(args)
    with (
        tempfile.TemporaryDirectory(prefix="sparwatt-bench-") as tmp,
        Postgres(Path(tmp) / "postgres") as server,
    ):
        results = {
            "SQLite": measure(Path(tmp) / "bench.db", ticks, args.batch),
            "PostgreSQL": measure(server.create_database("bench"), ticks, args.batch),
        }
        with VictoriaMetrics(Path(tmp) / "victoria", dedup=True, retention="100y") as vm:
            target = server.create_database("bench_victoria")
            store = Store(target)
            store.use_victoria(Victoria(url=vm.url))
            store.close()
            results["Victoria+PG"] = measure(target, ticks, args.batch, lambda: _cpu_s(vm))
    first = next(iter(results.values()))
    print(
        f"stream: {args.gateways:,} gateways x {args.meters} meters x 28 values, "
        f"{args.ticks} ticks counted = {first['values']:,.0f} values, "
        f"{args.batch} messages a write"
    )
    for name, r in results.items():
        print(
            f"{name:<12}  write: {r['write_cpu_us']:.2f} us CPU, {r['write_wall_us']:.2f} us wall "
            f"a value;  refresh of {r['meters']:.0f} meters: {r['refresh_cpu_ms']:.2f} ms CPU, "
            f"{r['refresh_wall_ms']:.2f} ms wall a meter; steady state "
            f"{r['steady_cpu_ms']:.2f} ms CPU, {r['steady_wall_ms']:.2f} ms wall a meter"
        )
    vm = results["Victoria+PG"]
    print(
        f"VictoriaMetrics server CPU: {vm['write_server_us']:.2f} us a value written, "
        f"{vm['refresh_server_ms']:.2f} ms a meter refreshed (its export of the meter's "
        "readings)"
    )
    sqlite, pg = results["SQLite"], results["PostgreSQL"]
    print(
        f"PostgreSQL / SQLite: write CPU {pg['write_cpu_us'] / sqlite['write_cpu_us']:.1f} x, "
        f"wall {pg['write_wall_us'] / sqlite['write_wall_us']:.1f} x; refresh CPU "
        f"{pg['refresh_cpu_ms'] / sqlite['refresh_cpu_ms']:.1f} x, "
        f"wall {pg['refresh_wall_ms'] / sqlite['refresh_wall_ms']:.1f} x"
    )


if __name__ == "__main__":
    main()
