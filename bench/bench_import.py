"""Import rate: a year of 15-minute Eloverblik data for many metering points, as one
export file, through `sparwatt-collector import` (read and check all of it, then store it
with its 15-minute history) into a fresh SQLite database.

Run:  .venv/bin/python bench/bench_import.py [--points 1000] [--days 365]
Target: >= 500,000 values/s for 1,000 points x a year (35 M values in under 70 s);
peak memory of the import process (and its workers) reported.
Baseline (pandas' CSV reader, points checked in the main process, upsert of one run per
statement with a JSON array built value by value): 310,144 values/s, 113 s, 3,140 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.utility_files import write_eloverblik_csv  # noqa: E402

TARGET = 500_000
BASELINE = "310,144 values/s in 113 s, peak 3,140 MB"
T0 = 1_704_063_600_000  # 2024-01-01 00:00 Danish time
Q = 900_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    starts = np.arange(T0, T0 + args.days * 86_400_000, Q, dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eloverblik.csv"
        made = time.monotonic()
        points = {
            f"5713131{i:011d}": np.round(rng.gamma(2.0, 1.5, len(starts)), 3)
            for i in range(args.points)
        }
        rows = write_eloverblik_csv(path, starts, Q, points, estimated_every=500)
        del points
        print(
            f"file: {rows:,} rows, {path.stat().st_size / 1e9:.2f} GB, "
            f"written in {time.monotonic() - made:.0f} s"
        )
        db = Path(tmp) / "c.db"
        # each point is its own meter, as a consultant's sites file maps them
        sites = Path(tmp) / "sites.toml"
        sites.write_text(
            "[sites.bench.metering_points]\n"
            + "".join(f'"5713131{i:011d}" = {{ meter = "p{i}" }}\n' for i in range(args.points))
        )
        command = [
            sys.executable, "-m", "collector.cli", "import", "--db", str(db), "--json",
            "--sites", str(sites), str(path),
        ]  # fmt: skip
        began = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
        seconds = time.monotonic() - began
        if done.returncode:
            sys.exit(f"import failed: {done.stderr}")
        (report,) = json.loads(done.stdout)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rate = report["stored"] / seconds
        print(
            f"import: {report['stored']:,} values of {len(report['points'])} points in "
            f"{seconds:.1f} s = {rate:,.0f} values/s (target >= {TARGET:,}); "
            f"peak memory {peak_mb:,.0f} MB; database {db.stat().st_size / 1e6:,.0f} MB"
        )
        print(f"baseline at the full size: {BASELINE}")
        again = time.monotonic()
        subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
        print(f"the same file again: nothing stored, {time.monotonic() - again:.1f} s")


if __name__ == "__main__":
    main()
