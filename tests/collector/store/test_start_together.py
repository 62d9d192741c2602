"""Collectors started together on one database: on none, or on one an upgrade left behind,
every one starts, and each migration runs once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from collector.store import Store
from collector.store.schema import SCHEMA_VERSION, apply_migrations

MEMBERS = 3


def _open(path: str, go: Any, out: Any) -> None:
    go.wait()
    try:
        Store(Path(path)).close()
        out.put("ok")
    except Exception as exc:  # reported to the test, which names it
        out.put(f"{type(exc).__name__}: {exc}")


def _start_together(path: Path) -> list[str]:
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Barrier(MEMBERS), ctx.Queue()
    members = [ctx.Process(target=_open, args=(str(path), go, out)) for _ in range(MEMBERS)]
    for member in members:
        member.start()
    for member in members:
        member.join(60)
    return [out.get(timeout=5) for _ in members]


@pytest.mark.parametrize("trial", range(5))
def test_members_upgrading_one_database_together_all_start(tmp_path: Path, trial: int) -> None:
    path = tmp_path / "c.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")  # as every collector leaves its database
        apply_migrations(db, path, up_to=SCHEMA_VERSION - 1)
    assert _start_together(path) == ["ok"] * MEMBERS
    with closing(sqlite3.connect(path)) as db:
        versions = [v for (v,) in db.execute("SELECT version FROM schema_version")]
    assert versions.count(SCHEMA_VERSION) == 1


@pytest.mark.parametrize("trial", range(3))
def test_members_started_on_no_database_share_one(tmp_path: Path, trial: int) -> None:
    path = tmp_path / "c.db"
    assert _start_together(path) == ["ok"] * MEMBERS
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("c.db-")) == ["c.db"]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == (
            SCHEMA_VERSION
        )
