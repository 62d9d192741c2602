"""Benchmark: a full opportunity scan of one year of 15-minute data for 1,000 meters."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ground_truth as gt

from collector.analysis import MeterSeries, SiteContext, scan_report
from collector.analysis.site_context import OpeningHours

TARGET_S = 60.0


def build(meters: int, year: int, seed: int) -> tuple[list[MeterSeries], dict[str, SiteContext]]:
    """`meters` meters: a main meter per site, every sixth site also a compressed-air meter."""
    rng = np.random.default_rng(seed)
    start_ms = gt._grid(dt.date(year, 1, 1), 365)
    loc = gt._local(start_ms)
    n = len(start_ms)
    day = (loc.date - loc.date[0]).astype(np.int64)
    shapes, opens = {}, {}
    for g in gt.SECTORS:
        p = gt._profile(gt.SiteSpec("x", g), loc)
        shapes[g] = p / p.sum()
        opens[g] = gt._open_mask(gt.SiteSpec("x", g), loc, np.zeros(n, dtype=bool))
    series: list[MeterSeries] = []
    contexts: dict[str, SiteContext] = {}
    i = 0
    while len(series) < meters:
        g = list(gt.SECTORS)[i % len(gt.SECTORS)]
        site = f"site{i:04d}"
        sector, hours = gt.SECTORS[g]
        contexts[site] = SiteContext(
            sector=sector,
            holidays={"treat_as": "sunday" if g in ("g2", "g6") else "closed"},
            opening_hours=OpeningHours(**{d: hours.get(d, []) for d in gt.WEEKDAYS}),
        )
        annual = rng.uniform(50_000, 800_000)
        daily = rng.normal(1, 0.03, day[-1] + 1)[day]
        kwh = shapes[g] * annual * daily * rng.lognormal(0, 0.06, n)
        air = None
        if i % 6 == 0:  # compressed air runs with production; every fifth one leaks
            rated = annual / 8760 * 0.2
            air = np.where(opens[g], rated * rng.uniform(0.4, 0.8, n), 0.005 * rated) * 0.25
            air += (i % 5 == 0) * 0.2 * rated * 0.25
            kwh = kwh + air
        kwh[rng.random(n) < 0.003] = np.nan
        pf = np.clip(rng.uniform(0.8, 0.98) + rng.normal(0, 0.01, n), 0.3, 1.0)
        amps = (kwh * 4000 / (3**0.5 * 400 * pf))[:, None] * (1 + rng.normal(0, 0.03, (n, 3)))
        series.append(
            MeterSeries(
                site,
                f"{site}-main",
                "main",
                start_ms,
                kwh,
                max_power_w=kwh * 4000 * 1.1,
                power_factor=pf,
                reactive_kvarh=kwh * np.sqrt(1 - pf**2) / pf,
                currents_a=amps,
                voltages_v=230 * (1 + rng.normal(0, 0.002, (n, 3))),
            )
        )
        if air is not None and len(series) < meters:
            series.append(MeterSeries(site, f"{site}-air", "dedicated", start_ms, air))
        i += 1
    return series, contexts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--meters", type=int, default=1000)
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    series, contexts = build(args.meters, args.year, args.seed)
    gen_s = time.perf_counter() - t0
    data_mb = (
        sum(
            sum(
                a.nbytes
                for a in (
                    s.start_ms,
                    s.energy_kwh,
                    s.max_power_w,
                    s.power_factor,
                    s.reactive_kvarh,
                    s.currents_a,
                    s.voltages_v,
                )
                if a is not None
            )
            for s in series
        )
        / 2**20
    )
    t1 = time.perf_counter()
    report = scan_report(series, contexts)
    scan_s = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kinds: dict[str, int] = {}
    for o in report.opportunities:
        kinds[o.kind] = kinds.get(o.kind, 0) + 1
    out = {
        "meters": len(series),
        "sites": len(contexts),
        "intervals_per_meter": series[0].n,
        "input_mb": round(data_mb),
        "generate_s": round(gen_s, 1),
        "scan_s": round(scan_s, 1),
        "target_s": TARGET_S,
        "peak_rss_mb": round(peak_mb),
        "opportunities": len(report.opportunities),
        "by_kind": kinds,
        "detector_errors": report.errors,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"scan of {out['meters']} meters ({out['sites']} sites) x "
            f"{out['intervals_per_meter']} intervals, input {out['input_mb']} MB "
            f"(generated in {out['generate_s']} s)"
        )
        print(f"scan time: {out['scan_s']} s (target < {TARGET_S:.0f} s on 2 cores)")
        print(f"peak RSS: {out['peak_rss_mb']} MB (includes the input arrays)")
        print(f"opportunities: {out['opportunities']} {kinds}; detector errors: {report.errors}")
    return 0 if scan_s < TARGET_S and report.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
