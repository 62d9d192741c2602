"""The import's writer stores what store.history.write_energy stores, row for row: the
exact kWh and flags in interval_energy and the rollups, measured values replacing
estimates, a live meter's rollups kept; and a second run stores nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from collector.imports import quarters
from collector.intervals.rollup import CounterStats, Rollup, pack
from collector.store.history import ENERGY, EnergyHistory, MeterHistory, write_energy
from collector.store.writer import Store

T0 = 1_704_063_600_000  # 2024-01-01 00:00 Danish time
Q, H = 900_000, 3_600_000


def history(seed: int, count: int, step: int, offset: int, estimated: float) -> EnergyHistory:
    rng = np.random.default_rng(seed)
    starts = T0 + offset * step + np.arange(count, dtype=np.int64) * step
    kept = rng.random(count) > 0.1  # gaps: several runs per point
    kwh = np.round(rng.gamma(2.0, 1.5, count), 3)
    if step == H:
        kwh[::5] += 0.0001  # not whole watt-hours once spread over the quarters
    return EnergyHistory(starts[kept], kwh[kept], (rng.random(count) < estimated)[kept], step)


def rounds() -> list[list[MeterHistory]]:
    """Three imports into the same meters: estimates, then revisions that measure some."""
    out = []
    for n, share in enumerate((0.5, 0.3, 0.0)):
        grid = history(n, 400, Q, n * 7, share)
        main = history(10 + n, 90, H, n, share)
        out.append([
            MeterHistory("bakery", "utility", "grid", "eloverblik", grid),
            MeterHistory("bakery", "gw1", "main", "eloverblik", main),
        ])  # fmt: skip
    return out


def table_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        return {
            "intervals": db.execute("SELECT * FROM interval_energy ORDER BY 1, 2").fetchall(),
            "rollups": db.execute("SELECT * FROM rollup ORDER BY 1, 2").fetchall(),
            "meters": db.execute(
                "SELECT id, site, gateway, meter, quantities, source, resolution_ms FROM meter"
            ).fetchall(),
        }


def test_the_import_stores_what_write_energy_stores(tmp_path: Path) -> None:
    results = {}
    for name, write in (("reference", write_energy), ("import", quarters.write)):
        store = Store(tmp_path / f"{name}.db")
        # a gateway meter's live rollups, of another layout: imported values never replace them
        live = store.new_meter("bakery", "gw1", "main")
        store.put_rollups(live, [(T0 + k * Q, "power_w:fffH", bytes(14)) for k in range(40)])
        done = [write(store, batch) for batch in rounds()]
        again = write(store, rounds()[-1])
        store.close()
        results[name] = ([(r.stored, r.kept) for r in [*done, again]], table_rows(store.path))
    assert results["import"] == results["reference"]
    counts, rows = results["import"]
    assert counts[-1][0] == 0  # the same file again stores nothing
    estimated = [row[3] for row in rows["intervals"]]
    assert 0 < sum(estimated) < len(estimated)  # estimates measured later, and some not


def test_values_travel_as_whole_thousandths_with_their_flags() -> None:
    kwh = np.array([2.502, 0.0, 1.25, 123456.789])
    numbers, scale, flagged = quarters._numbers(kwh, np.array([True, False, False, True]))
    assert (scale, flagged) == (1000.0, True)
    assert [int(v) for v in numbers.strip("[]").split(",")] == [5005, 0, 2500, 246913579]
    assert quarters._numbers(np.array([0.3125]), np.array([True]))[1:] == (1.0, False)


def test_a_rollup_blob_is_the_one_rollup_pack_makes() -> None:
    blob = np.array([(1.375, True)], dtype=quarters.ROLLUP).tobytes()
    assert blob == pack(Rollup(0, {ENERGY: CounterStats(1.375, True)}))[1]
