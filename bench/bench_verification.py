"""Baseline fitting and savings verification for a portfolio of hourly meters.

Each meter has a year of hourly baseline before its installation date and a year of
reporting data after it (bench/verification_truth.py: 70 % with outdoor temperature and a
heating load, 30 % without); each gets fit_baseline + verify_savings with price and CO2
arrays, as the collector would run them. Generating the meters is timed apart.

Run: .venv/bin/python bench/bench_verification.py [--meters 1000] [--workers 2]
Baseline: the budget is 1,000 meters in under 180 s wall time on 2 cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import resource
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# the regressions are small: one BLAS thread per worker process beats threads fighting
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

BUDGET_S = 180.0
HERE = Path(__file__).resolve().parent


def _truth_module() -> ModuleType:
    path = HERE / "verification_truth.py"
    spec = importlib.util.spec_from_file_location("verification_truth", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["verification_truth"] = module
    spec.loader.exec_module(module)
    return module


vt = _truth_module()


@dataclass(frozen=True)
class Outcome:
    model: str
    status: str
    generate_s: float
    verify_s: float
    truth_kwh: float
    avoided_kwh: float | None
    inside: bool | None  # the truth inside the 90 % interval
    within_10pct: bool | None


def _one(args: tuple[int, int]) -> Outcome:
    index, seed = args
    t0 = time.perf_counter()
    meter = vt.portfolio_meter(index, seed)
    t1 = time.perf_counter()
    s = vt.verify(meter)
    t2 = time.perf_counter()
    truth = meter.true_avoided_kwh()
    f = s.figures
    inside = within = None
    if f is not None:
        inside = f.low_kwh <= truth <= f.high_kwh
        within = abs(f.avoided_kwh - truth) <= 0.10 * truth if truth > 0 else None
    return Outcome(
        s.model or "-",
        s.status,
        t1 - t0,
        t2 - t1,
        truth,
        None if f is None else f.avoided_kwh,
        inside,
        within,
    )


def _pct(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):.1f} % of {len(values)}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    jobs = [(i, args.seed) for i in range(args.meters)]
    started = time.perf_counter()
    if args.workers > 1:
        with mp.get_context("fork").Pool(args.workers) as pool:
            outcomes = pool.map(_one, jobs, chunksize=8)
    else:
        outcomes = [_one(j) for j in jobs]
    wall = time.perf_counter() - started

    # working memory of one meter, measured alone (tracemalloc sees numpy's buffers)
    meter = vt.portfolio_meter(0, args.seed)
    tracemalloc.start()
    vt.verify(meter)
    _, peak_one = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss_mb = (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )

    verify_s = sorted(o.verify_s for o in outcomes)
    gen_s = sum(o.generate_s for o in outcomes)
    n = len(outcomes)
    print(
        f"verification: {n} meters x 12 months hourly baseline + 12 months reporting, "
        f"{args.workers} worker(s)"
    )
    print(f"  wall time            {wall:8.1f} s   (budget {BUDGET_S:.0f} s on 2 cores)")
    print(f"  generating meters    {gen_s:8.1f} s   (CPU, summed over workers)")
    print(
        f"  fit + verify / meter {1000 * sum(verify_s) / n:8.1f} ms mean, "
        f"{1000 * verify_s[n // 2]:.1f} ms median, {1000 * verify_s[int(n * 0.95)]:.1f} ms p95"
    )
    print(f"  peak RSS             {maxrss_mb:8.0f} MB  (largest process)")
    print(f"  peak traced / meter  {peak_one / 2**20:8.1f} MB  (tracemalloc, one meter alone)")
    print(f"  models               {dict(Counter(o.model for o in outcomes))}")
    print(f"  status               {dict(Counter(o.status for o in outcomes))}")
    for model in sorted({o.model for o in outcomes}):
        sel = [o for o in outcomes if o.model == model and o.avoided_kwh is not None]
        inside = [bool(o.inside) for o in sel]
        within = [bool(o.within_10pct) for o in sel if o.within_10pct is not None]
        print(
            f"  {model:16} truth inside the 90 % interval {_pct(inside)}; "
            f"within 10 % of a non-zero truth {_pct(within)}"
        )


if __name__ == "__main__":
    main()
