"""Imported interval energy is stored as a plain row-by-row writer would store it: the exact
kWh and flags in interval_energy and the rollups, measured values replacing estimates, a
live meter's rollups kept; and a second run stores nothing."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.intervals.rollup import CounterStats, Rollup, pack
from collector.store import history as energy_history
from collector.store.history import (
    ENERGY,
    EnergyHistory,
    HistoryResult,
    MeterHistory,
    write_energy,
)
from collector.store.schema import connect
from collector.store.sql import Target, is_postgres
from collector.store.writer import Store
from devtools.postgres import Postgres

T0 = 1_704_063_600_000  # 2024-01-01 00:00 Danish time
Q, H = 900_000, 3_600_000
_second = itertools.count(1)


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


@pytest.fixture
def second_target(db_target: Target, tmp_path: Path, request: pytest.FixtureRequest) -> Target:
    """Another database on db_target's engine."""
    if not is_postgres(db_target):
        return tmp_path / "second.db"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database(f"quarters_{next(_second)}")


def table_rows(path: Target) -> dict[str, list[tuple[object, ...]]]:
    with closing(connect(path)) as db:
        return {
            "intervals": db.execute("SELECT * FROM interval_energy ORDER BY 1, 2").fetchall(),
            "rollups": db.execute("SELECT * FROM rollup ORDER BY 1, 2").fetchall(),
            "meters": db.execute(
                "SELECT id, site, gateway, meter, quantities, source, resolution_ms FROM meter "
                "ORDER BY id"
            ).fetchall(),
        }


Write = Callable[[Store, list[MeterHistory]], HistoryResult]


def one_by_one(store: Store, items: list[MeterHistory]) -> HistoryResult:
    """The reference: what write_energy must store, decided in Python a quarter at a time
    (an hour spread evenly; a stored value kept unless a measurement meets an estimate)."""
    layout_key, _ = pack(Rollup(0, {ENERGY: CounterStats(0.0, False)}))
    stored = total = 0
    with store.transaction():
        layout = store.rollup_layout_id("15m:" + layout_key)
        for item in items:
            h = item.history
            parts = h.resolution_ms // Q
            meter_id = store.meter_id(item.site, item.gateway, item.meter) or store.new_meter(
                item.site, item.gateway, item.meter
            )
            store.set_meter_source(meter_id, item.source, h.resolution_ms, ENERGY)
            changed = 0
            for start, kwh, estimated in zip(h.start_ms, h.kwh, h.estimated, strict=True):
                for k in range(parts):
                    changed += _put(store, meter_id, layout, int(start) + k * Q, kwh / parts,
                                    bool(estimated))  # fmt: skip
            stored += changed // parts
            total += len(h.start_ms)
    return HistoryResult(stored, total - stored)


def _put(store: Store, meter_id: int, layout: int, start: int, kwh: float, est: bool) -> int:
    db, key = store.db, (meter_id, start)
    blob = pack(Rollup(start, {ENERGY: CounterStats(float(kwh), est)}))[1]
    rollup = db.execute("SELECT layout, data FROM rollup WHERE meter_id=? AND start_ms=?", key)
    old_rollup = rollup.fetchone()
    if old_rollup is None:
        db.execute("INSERT INTO rollup VALUES (?, ?, ?, ?)", (*key, layout, blob))
    elif old_rollup[0] == layout and bytes(old_rollup[1])[-1] == 1 and not est:
        db.execute("UPDATE rollup SET data=? WHERE meter_id=? AND start_ms=?", (blob, *key))
    row = db.execute(
        "SELECT estimated FROM interval_energy WHERE meter_id=? AND start_ms=?", key
    ).fetchone()
    power = float(kwh) * 3_600_000_000.0 / Q
    if row is None:
        db.execute(
            "INSERT INTO interval_energy (meter_id, start_ms, energy_kwh, estimated, "
            "mean_power_w, max_power_w) VALUES (?, ?, ?, ?, ?, NULL)",
            (*key, float(kwh), int(est), power),
        )
        return 1
    if row[0] and not est:
        db.execute(
            "UPDATE interval_energy SET energy_kwh=?, estimated=0, mean_power_w=? "
            "WHERE meter_id=? AND start_ms=?",
            (float(kwh), power, *key),
        )
        return 1
    return 0


def imported(target: Target, write: Write) -> tuple[list[tuple[int, int]], dict[str, Any]]:
    """Three imports and the last again with `write`: (stored, kept) of each, and the rows."""
    store = Store(target)
    # a gateway meter's live rollups, of another layout: imported values never replace them
    live = store.new_meter("bakery", "gw1", "main")
    store.put_rollups(live, [(T0 + k * Q, "power_w:fffH", bytes(14)) for k in range(40)])
    done = [write(store, batch) for batch in rounds()]
    again = write(store, rounds()[-1])
    store.close()
    return [(r.stored, r.kept) for r in [*done, again]], table_rows(target)


def test_write_energy_stores_what_a_row_by_row_writer_stores(
    db_target: Target, second_target: Target
) -> None:
    reference = imported(db_target, one_by_one)
    counts, rows = imported(second_target, write_energy)
    assert (counts, rows) == reference
    assert counts[-1][0] == 0  # the same file again stores nothing
    estimated = [row[3] for row in rows["intervals"]]
    assert 0 < sum(estimated) < len(estimated)  # estimates measured later, and some not


def test_postgresql_stores_what_sqlite_stores(tmp_path: Path, postgres: Postgres) -> None:
    """The same doubles, flags and rollup bytes, whichever engine unrolls the runs."""
    url = postgres.create_database(f"quarters_{next(_second)}")
    in_sqlite = imported(tmp_path / f"{next(_second)}.db", write_energy)
    assert imported(url, write_energy) == in_sqlite


def test_values_travel_as_whole_thousandths_with_their_flags() -> None:
    kwh = np.array([2.502, 0.0, 1.25, 123456.789])
    numbers, scale, flagged = energy_history._numbers(kwh, np.array([True, False, False, True]))
    assert (scale, flagged) == (1000.0, True)
    assert [int(v) for v in numbers.strip("[]").split(",")] == [5005, 0, 2500, 246913579]
    assert energy_history._numbers(np.array([0.3125]), np.array([True]))[1:] == (1.0, False)


def test_a_rollup_blob_is_the_one_rollup_pack_makes() -> None:
    blob = np.array([(1.375, True)], dtype=energy_history.ROLLUP).tobytes()
    assert blob == pack(Rollup(0, {ENERGY: CounterStats(1.375, True)}))[1]
