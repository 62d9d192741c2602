"""Server time of the web pages and API on a large installation.

Seeds a SQLite database the way the collector fills it (100 sites, 1,000 meters, a week of
15-minute intervals, a latest reading per meter, opportunities and alerts), then times
requests in process (FastAPI app, no network) as an admin who sees every site:

  overview   GET /               every site: live power, today's kWh, gateways, alerts
  site       GET /sites/<site>   meters, 7-day profile, 8-week heatmap, gaps, alerts
  report     GET /sites/<site>/report   28-day energy review with inline SVG
  api-sites  GET /api/sites      the overview's data as JSON

    .venv/bin/python bench/bench_web.py [--sites 100] [--meters 1000] [--days 7] [--runs 15]

Baseline: a page a consultant waits for should come back within 300 ms of server time
(median); the figures below are compared to that.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from collector.store import Store  # noqa: E402
from collector.web import auth  # noqa: E402
from collector.web.app import create_app  # noqa: E402
from collector.web.context import WebContext  # noqa: E402
from devtools import seed  # noqa: E402

BUDGET_MS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--meters", type=int, default=1000, help="in total")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = Store(db, synchronous="normal")
        sites = [f"site-{i:03d}" for i in range(args.sites)]
        started = time.perf_counter()
        seed.seed(
            store,
            seed.Plan(sites=sites, meters_per_site=args.meters // args.sites, days=args.days),
            int(time.time() * 1000),
        )
        token = auth.new_token()
        store.add_token("bench", "admin", [], auth.digest(token))
        store.close()
        print(
            f"seeded {args.sites} sites, {args.meters} meters, {args.days:g} days of "
            f"15-minute data in {time.perf_counter() - started:.1f} s "
            f"({db.stat().st_size / 1e6:.0f} MB)"
        )
        client = TestClient(create_app(WebContext(db=db)))
        client.cookies.set(auth.COOKIE, token)
        paths = {
            "overview": "/",
            "site": f"/sites/{sites[len(sites) // 2]}",
            "report": f"/sites/{sites[len(sites) // 2]}/report",
            "api-sites": "/api/sites",
        }
        print(f"{'page':<10} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}  vs {BUDGET_MS:.0f} ms")
        for name, path in paths.items():
            assert client.get(path).status_code == 200, path  # warm-up, and it works
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200
            times.sort()
            median = statistics.median(times)
            p90 = times[int(len(times) * 0.9) - 1]
            verdict = "ok" if median <= BUDGET_MS else "OVER"
            print(f"{name:<10} {median:>10.1f} {p90:>8.1f} {times[-1]:>8.1f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
