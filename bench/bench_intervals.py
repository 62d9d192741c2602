"""Time counter_intervals over 100,000 readings (10 s apart, a reset every 5,000).

Run: .venv/bin/python bench/bench_intervals.py
Baseline: the figure the test suite used to assert, "well under 1 s".
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.intervals.energy import counter_intervals

T0 = 1_704_067_200_000
BASELINE_S = 1.0


def main() -> None:
    rng = random.Random(3)
    value, readings = 0.0, []
    for i in range(100_000):
        value = 0.0 if i % 5000 == 4999 else value + rng.random() * 0.01
        readings.append((T0 + i * 10_000, value))
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        records = counter_intervals(readings)
        best = min(best, time.perf_counter() - started)
    assert len(records) == 1112
    print(
        f"counter_intervals: 100,000 readings -> {len(records)} intervals in "
        f"{best * 1000:.1f} ms (best of 5); baseline {BASELINE_S:.1f} s"
    )


if __name__ == "__main__":
    main()
