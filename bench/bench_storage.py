"""Disk per stored value: the collector's SQLite raw readings and 15-minute rollups, beside
VictoriaMetrics storing the same readings in the same run.

The stream is what an Eastron SDM630 gives a gateway: 28 quantities every 10 s, float32 on the
wire, values changing the way a company's load changes (gateway/sim's load profiles).

Run:  .venv/bin/python bench/bench_storage.py [--meters 20] [--days 2]
Targets: raw <= 6 bytes per value; rollups of 28 quantities <= 25 MB per meter-year.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import struct
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.intervals.energy import IntervalPolicy  # noqa: E402
from collector.intervals.refresh import refresh_intervals  # noqa: E402
from collector.settings import Influx  # noqa: E402
from collector.sinks.influx import ClientWriter, to_lines  # noqa: E402
from collector.store import Store  # noqa: E402
from devtools.victoria import VictoriaMetrics  # noqa: E402
from gateway.sim.meter import SimulatedMeter  # noqa: E402
from gateway.sim.profile import LoadProfile  # noqa: E402
from sparwatt import wire  # noqa: E402
from sparwatt.timeutil import DAY_MS, QUARTER_MS  # noqa: E402

RAW_TARGET_BYTES, ROLLUP_TARGET_MB = 6.0, 25.0
STEP_S = 10
PER_MESSAGE = 30  # readings per published batch, as a gateway sends them
KINDS = ("office", "production", "retail", "cold-store", "compressor")


def f32(value: float) -> float:
    """What the gateway decodes from the meter's float32 registers."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def stream(meters: int, days: float, t0_s: int) -> list[wire.ReadingsMessage]:
    sims = [
        SimulatedMeter(LoadProfile(KINDS[i % len(KINDS)], 20.0 + 7 * i, seed=i + 1))
        for i in range(meters)
    ]
    steps = int(days * 86_400 / STEP_S)
    messages: list[wire.ReadingsMessage] = []
    seq = 0
    for m, sim in enumerate(sims):
        batch: list[wire.Reading] = []
        for k in range(steps):
            t = t0_s + k * STEP_S
            values = {q: f32(v) for q, v in sim.values(t).items()}
            batch.append(wire.Reading(meter=f"m{m:03d}", ts=datetime.fromtimestamp(t, UTC),
                                      values=values))  # fmt: skip
            if len(batch) == PER_MESSAGE or k == steps - 1:
                messages.append(
                    wire.ReadingsMessage(
                        site="bench", gateway="gw1", seq=seq, sent_at=batch[-1].ts, readings=batch
                    )
                )
                seq += 1
                batch = []
    return messages


def sqlite_figures(db: Path, messages: list[wire.ReadingsMessage]) -> dict[str, float]:
    store = Store(db, synchronous="normal")
    values = sum(len(r.values) for m in messages for r in m.readings)
    started = time.perf_counter()
    for i in range(0, len(messages), 20):
        store.write(messages[i : i + 20])
    write_s = time.perf_counter() - started
    refresh_intervals(store, IntervalPolicy())
    store.close()
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def table_bytes(prefixes: tuple[str, ...]) -> int:
        rows = con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        return sum(size for name, size in rows if name.startswith(prefixes))

    raw_kinds = ("sample", "reading", "series")
    rollup_kinds = ("rollup", "interval_energy")
    # pages as ingest left them (B-tree splits leave some half full), then packed anew
    written = table_bytes(raw_kinds), table_bytes(rollup_kinds)
    con.execute("VACUUM")
    vacuumed = table_bytes(raw_kinds), table_bytes(rollup_kinds)
    con.close()
    return {
        "values": values,
        "write_values_per_s": values / write_s,
        "raw_bytes": written[0],
        "rollup_bytes": written[1],
        "raw_bytes_vacuumed": vacuumed[0],
        "rollup_bytes_vacuumed": vacuumed[1],
    }


def victoria_figures(root: Path, messages: list[wire.ReadingsMessage]) -> dict[str, float]:
    with VictoriaMetrics(root) as vm:
        writer = ClientWriter(Influx(enabled=True, url=vm.url), None)
        try:
            for i in range(0, len(messages), 50):
                writer.write(to_lines("sparwatt", messages[i : i + 50]))
        finally:
            writer.close()
        vm.flush()
        query = urllib.parse.urlencode({"match[]": '{__name__=~"sparwatt_.*"}'})
        held = 0
        with urllib.request.urlopen(f"{vm.url}/api/v1/export?{query}", timeout=120) as resp:
            for line in resp:
                held += len(json.loads(line)["values"])
        # let the server merge its parts, as it does on its own within minutes
        with urllib.request.urlopen(f"{vm.url}/internal/force_merge", timeout=120) as resp:
            resp.read()
        time.sleep(3)
        vm.flush()
        return {"values_held": held, "data_bytes": vm.data_bytes()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=20)
    p.add_argument("--days", type=float, default=2.0)
    args = p.parse_args()
    t0 = (int(time.time()) // 86_400 - int(args.days) - 2) * 86_400
    messages = stream(args.meters, args.days, t0)
    values = sum(len(r.values) for m in messages for r in m.readings)
    print(f"stream: {args.meters} SDM630 meters x {args.days:g} days, 28 quantities every "
          f"{STEP_S} s: {values:,} values")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        sq = sqlite_figures(Path(tmp) / "c.db", messages)
        vm = victoria_figures(Path(tmp) / "vm", messages)
        quarters = int(args.days * DAY_MS // QUARTER_MS)
        per_value = sq["raw_bytes"] / values
        vm_per_value = vm["data_bytes"] / values
        year_quarters = 365 * DAY_MS // QUARTER_MS
        rollup_year_mb = sq["rollup_bytes"] / args.meters / quarters * year_quarters / 1e6
    print(
        f"sqlite raw readings:     {per_value:6.2f} bytes/value as written "
        f"({sq['raw_bytes_vacuumed'] / values:.2f} after VACUUM; target <= {RAW_TARGET_BYTES})"
    )
    print(f"victoria-metrics:        {vm_per_value:6.2f} bytes/value  "
          f"(holds {vm['values_held']:,} of {values:,} values)")  # fmt: skip
    print(f"sqlite / victoria:       {per_value / vm_per_value:6.2f}x")
    print(f"rollups (15 min, all quantities): {rollup_year_mb:.1f} MB per meter-year "
          f"(target <= {ROLLUP_TARGET_MB})")  # fmt: skip
    print(f"sqlite write rate: {sq['write_values_per_s']:,.0f} values/s (batches of 20 messages)")
    ok = per_value <= RAW_TARGET_BYTES and rollup_year_mb <= ROLLUP_TARGET_MB
    ok = ok and vm["values_held"] == values
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
