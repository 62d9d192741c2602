"""Migration 11: pending seq ranges and job leases beside a database's recorded gaps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collector.store import SCHEMA_VERSION, Reader, Store
from collector.store.leases import Leases
from collector.store.schema import apply_migrations
from tests.support.messages import NOW_MS, message


def test_migration_11_keeps_the_gaps_and_adds_pending_ranges_and_leases(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = sqlite3.connect(path, isolation_level=None)
    apply_migrations(db, path, up_to=10)
    db.execute(
        "INSERT INTO gateway (site, gateway, registered_ms, last_seq) VALUES (?, ?, 0, 9)",
        ("site-a", "gw1"),
    )
    db.execute(
        "INSERT INTO gap (site, gateway, from_seq, to_seq, after_ms, before_ms, detected_ms) "
        "VALUES ('site-a', 'gw1', 3, 4, 1, 2, 0)"
    )
    db.close()

    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION >= 11
    store.gap_grace_ms = 60_000
    store.write([message(12, [("m1", NOW_MS, {"power_w": 1.0})])])  # 10-11 pending
    store.write([message(4, [("m1", NOW_MS - 1000, {"power_w": 1.0})])])  # closes part of 3-4
    leases = Leases(path, "collector-1")
    assert leases.take("scan", 1, 1000) == 1
    leases.close()
    with Reader(path) as reader:
        assert [(g.from_seq, g.to_seq) for g in reader.gaps()] == [(3, 3)]
        pending = reader.db.execute("SELECT from_seq, to_seq FROM gap_pending").fetchall()
    assert pending == [(10, 11)]
    store.close()
