"""Upgrading a database of the one-row-per-value schema (7) packs its readings in place:
every value, interval and registry entry reads back equal, and rollups follow."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import refresh_intervals
from collector.store import SCHEMA_VERSION, Reader, Store
from collector.store.schema import apply_migrations

T0 = 1_790_000_000_000
Q = 900_000


def old_database(path: Path) -> dict[tuple[str, str, int], float]:
    """A schema-7 database with two meters' raw readings and intervals; returns the values."""
    db = sqlite3.connect(path, isolation_level=None)
    apply_migrations(db, path, up_to=7)
    db.execute("INSERT INTO gateway (site, gateway, registered_ms) VALUES ('s', 'g', 0)")
    db.execute("INSERT INTO meter (id, site, gateway, meter) VALUES (1, 's', 'g', 'main')")
    db.execute("INSERT INTO meter (id, site, gateway, meter) VALUES (2, 's', 'g', 'cg')")
    quantities = ["power_w", "energy_import_kwh", "voltage_l1_v", "power_factor"]
    series = {}
    for meter_id in (1, 2):
        for q in quantities:
            cur = db.execute("INSERT INTO series (meter_id, quantity) VALUES (?, ?)", (meter_id, q))
            series[(meter_id, q)] = cur.lastrowid
    expected: dict[tuple[str, str, int], float] = {}
    rows = []
    for k in range(200):
        ts = T0 + k * 10_000
        for meter_id, meter in ((1, "main"), (2, "cg")):
            values = {
                # float32-exact values, decimal values (a scaled-integer meter) and ones
                # with no short exact form must all come back as they were
                "power_w": 1000.0 + k * 0.5 if meter_id == 1 else 1000 / 3 + k,
                "energy_import_kwh": 12_345.67 + k * 0.01,
                "voltage_l1_v": 230.1 + (k % 7) / 10,
                "power_factor": -0.873 if k % 2 else 0.9,
            }
            if k % 50 == 3:
                del values["voltage_l1_v"]  # a reading that lacks a quantity
            for q, v in values.items():
                rows.append((series[(meter_id, q)], ts, v))
                expected[(meter, q, ts)] = v
    db.executemany("INSERT INTO reading VALUES (?, ?, ?)", rows)
    db.execute(
        "INSERT INTO interval_energy (meter_id, start_ms, energy_kwh, estimated, mean_power_w, "
        "max_power_w, export_kwh, export_estimated) VALUES (1, ?, 0.5, 0, 1000.0, 1100.0, NULL, 0)",
        (T0 // Q * Q - 10 * Q,),
    )
    db.close()
    return expected


def test_an_old_database_is_upgraded_without_losing_a_value(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    expected = old_database(path)

    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION
    with Reader(path) as reader:
        got = {(r.meter, r.quantity, r.ts_ms): r.value for r in reader.raw("s", 0, 2**62)}
        assert got == expected
        assert all(type(v) is float for v in got.values())
        old_interval = list(reader.intervals("s", 0, T0 // Q * Q))
        assert [(i.energy_kwh, i.mean_power_w) for i in old_interval] == [(0.5, 1000.0)]
        assert [m.quantities for m in reader.meters("s")] == [
            ["energy_import_kwh", "power_factor", "power_w", "voltage_l1_v"]
        ] * 2
    # every meter is due for a rollup of what it has raw
    assert refresh_intervals(store, IntervalPolicy()) == 2
    main = store.meter_id("s", "g", "main")
    assert main is not None
    with Reader(path) as reader:
        rollups = reader.rollups(main, 0, 2**62)
        means = [stats["power_w"].mean for _, stats in rollups]  # type: ignore[union-attr]
        assert len(rollups) == len({(T0 + k * 10_000) // Q for k in range(200)})
        assert means[0] > 1000.0
    store.close()
    raw = sqlite3.connect(path)
    tables = {name for (name,) in raw.execute("SELECT name FROM sqlite_master")}
    assert "reading" not in tables
    assert "series" not in tables
    raw.close()


def test_rollups_move_to_their_meter_and_start_key_without_a_change(tmp_path: Path) -> None:
    """Schema 9 rebuilds the rollup table keyed by (meter, start): every rollup reads back
    equal, and the meter gains its (empty) import source and resolution."""
    path = tmp_path / "c.db"
    old_database(path)
    db = sqlite3.connect(path, isolation_level=None)
    apply_migrations(db, path, up_to=8)
    db.close()
    store = Store.__new__(Store)  # a schema-8 store: open without migrating past 8
    store.path = path
    from collector.store.schema import connect

    store.db = connect(path)
    store._load_caches()
    refresh_intervals(store, IntervalPolicy())
    with Reader(path) as reader:
        before = {m.meter_id: reader.rollups(m.meter_id, 0, 2**62) for m in reader.meter_index()}
    store.close()
    assert sum(len(r) for r in before.values()) >= 6  # 200 readings of 2 meters, 10 s apart

    upgraded = Store(path)
    assert upgraded.schema_version() == SCHEMA_VERSION
    upgraded.close()
    with Reader(path) as reader:
        after = {m.meter_id: reader.rollups(m.meter_id, 0, 2**62) for m in reader.meter_index()}
        assert after == before
        assert {(m.source, m.resolution_ms) for m in reader.meters("s")} == {(None, None)}
    raw = sqlite3.connect(path)
    (ddl,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'rollup'").fetchone()
    raw.close()
    assert "WITHOUT ROWID" in ddl
