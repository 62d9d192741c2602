"""Collectors started together on one database: on none (a SQLite file not there yet, an
empty PostgreSQL database), or on one an upgrade left behind, every one starts, and each
migration runs once."""

from __future__ import annotations

import multiprocessing
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from collector.store import Store
from collector.store.schema import SCHEMA_VERSION, apply_migrations, connect
from collector.store.sql import Target, is_postgres

MEMBERS = 3


def _open(target: Target, go: Any, out: Any) -> None:
    go.wait()
    try:
        Store(target).close()
        out.put("ok")
    except Exception as exc:  # reported to the test, which names it
        out.put(f"{type(exc).__name__}: {exc}")


def _start_together(target: Target) -> list[str]:
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Barrier(MEMBERS), ctx.Queue()
    members = [ctx.Process(target=_open, args=(target, go, out)) for _ in range(MEMBERS)]
    for member in members:
        member.start()
    for member in members:
        member.join(60)
    return [out.get(timeout=5) for _ in members]


def _versions(target: Target) -> list[int]:
    with closing(connect(target)) as db:
        return [v for (v,) in db.execute("SELECT version FROM schema_version").fetchall()]


@pytest.mark.parametrize("trial", range(5))
def test_members_upgrading_one_database_together_all_start(db_target: Target, trial: int) -> None:
    # schema.connect leaves a SQLite file in WAL mode, as every collector leaves its database
    with closing(connect(db_target)) as db:
        apply_migrations(db, db_target, up_to=SCHEMA_VERSION - 1)
    assert _start_together(db_target) == ["ok"] * MEMBERS
    assert _versions(db_target).count(SCHEMA_VERSION) == 1


@pytest.mark.parametrize("trial", range(3))
def test_members_started_on_no_database_share_one(db_target: Target, trial: int) -> None:
    assert _start_together(db_target) == ["ok"] * MEMBERS
    if not is_postgres(db_target):  # one file, made whole beside its name and linked in
        path = Path(db_target)
        assert sorted(
            p.name for p in path.parent.iterdir() if not p.name.startswith(f"{path.name}-")
        ) == [path.name]
    assert sorted(_versions(db_target)) == list(range(1, SCHEMA_VERSION + 1))
