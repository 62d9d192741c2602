"""Measures and outdoor temperature in the store: round trips, idempotence, and migration 10
on a database that already holds data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np

from collector.store import SCHEMA_VERSION, MeasureExclusion, MeasureRow, Reader, Store
from collector.store.schema import apply_migrations

H = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def row(measure_id: str = "a1b2c3d4", site: str = "bakery", **changes: object) -> MeasureRow:
    base = MeasureRow(
        id=measure_id,
        site=site,
        meters=["grid", "ovens"],
        kind="baseload",
        title="Ventilation off at night",
        installed_from=dt.date(2025, 3, 1),
        installed_to=dt.date(2025, 3, 14),
        investment_dkk=25_000.0,
        expected_kwh_year=40_000.0,
        opportunity_id="bakery-baseload",
        model="time_of_week",
        exclusions=[MeasureExclusion(dt.date(2024, 7, 1), dt.date(2024, 7, 21), "summer closure")],
        note="timer on the air handling unit",
        created_ms=1,
        updated_ms=2,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_measure_reads_back_as_it_was_stored_and_goes_when_removed(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    first = row()
    bare = row(
        "ffff0000",
        site="dairy",
        meters=["main"],
        installed_to=None,
        investment_dkk=None,
        expected_kwh_year=None,
        opportunity_id=None,
        model="auto",
        exclusions=[],
        note=None,
    )
    store.put_measure(first)
    store.put_measure(bare)
    with Reader(tmp_path / "c.db") as reader:
        assert reader.measure(first.id) == first
        assert reader.measure(bare.id) == bare
        assert reader.measures() == [first, bare]  # by site
        assert reader.measures("dairy") == [bare]
        assert reader.measure("nothere") is None
    changed = dataclasses.replace(first, title="Ventilation on a timer", updated_ms=3)
    store.put_measure(changed)  # the same id replaces
    assert store.remove_measure(bare.id)
    assert not store.remove_measure(bare.id)
    with Reader(tmp_path / "c.db") as reader:
        assert reader.measures() == [changed]
    store.close()


def test_temperatures_are_stored_per_site_and_hour_and_again_change_nothing(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "c.db")
    starts = T0 + np.arange(48, dtype=np.int64) * H
    celsius = np.linspace(-3.0, 4.0, 48)
    assert store.put_temperatures("bakery", starts, celsius) == 48
    assert store.put_temperatures("bakery", starts, celsius) == 0
    celsius[5] = 9.5  # a corrected value replaces the stored one
    assert store.put_temperatures("bakery", starts, celsius) == 1
    assert store.put_temperatures("dairy", starts[:3], celsius[:3]) == 3
    with Reader(tmp_path / "c.db") as reader:
        got = reader.temperatures("bakery", T0 + 2 * H, T0 + 10 * H)
        assert [t.start_ms for t in got] == list(starts[2:10])
        assert [t.celsius for t in got] == list(celsius[2:10])
        assert len(reader.temperatures("dairy", 0, 2**62)) == 3
    store.close()


def test_migration_10_adds_measures_and_temperature_to_a_database_with_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    db = sqlite3.connect(path, isolation_level=None)
    apply_migrations(db, path, up_to=9)
    db.execute("INSERT INTO meter (id, site, gateway, meter) VALUES (1, 'bakery', 'g', 'grid')")
    db.execute(
        "INSERT INTO interval_energy (meter_id, start_ms, energy_kwh, estimated) "
        "VALUES (1, ?, 0.5, 0)",
        (T0,),
    )
    db.execute(
        "INSERT INTO token (name, role, sites, hash, created_ms) "
        "VALUES ('ops', 'admin', '[]', 'x', 0)"
    )
    assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (9,)
    db.close()

    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION >= 10  # and whatever came after 10
    store.put_measure(row(meters=["grid"]))
    store.put_temperatures("bakery", [T0], [1.5])
    with Reader(path) as reader:
        assert [e.energy_kwh for e in reader.interval_energy(0, 2**62)] == [0.5]
        assert [t.name for t in reader.tokens()] == ["ops"]
        assert [m.id for m in reader.measures("bakery")] == ["a1b2c3d4"]
        assert [t.celsius for t in reader.temperatures("bakery", 0, 2**62)] == [1.5]
    store.close()
    Store(path).close()  # opening again migrates nothing
    with Reader(path) as reader:
        versions = reader.db.execute("SELECT version FROM schema_version").fetchall()
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))
