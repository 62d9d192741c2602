"""Test support for the store's two engines: databases for fixtures, and the faults and locks
a test puts into a database, the same on a SQLite file and on a PostgreSQL database."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from collector.settings import Victoria
from collector.store import Store, timeseries
from collector.store.schema import connect
from collector.store.sql import Connection, Target, dialect_of, is_postgres
from devtools.postgres import Postgres
from devtools.victoria import VictoriaMetrics


def refuse_inserts(db: Connection, table: str, message: str, when: str = "") -> str:
    """A trigger that fails every insert into `table` (or those where `when` holds, a
    condition on NEW) with `message`; returns its name for `drop_refusal`."""
    name = f"refuse_{table}"
    if dialect_of(db) == "sqlite":
        condition = f" WHEN {when}" if when else ""
        db.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table}{condition} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
        return name
    fail = f"RAISE EXCEPTION '{message}';"
    body = f"IF {when} THEN {fail} END IF;" if when else fail
    db.execute(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {body} RETURN NEW; END $$"
    )
    db.execute(
        f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
    )
    return name


def drop_refusal(db: Connection, table: str) -> None:
    """Remove the trigger `refuse_inserts` put on `table`."""
    name = f"refuse_{table}"
    if dialect_of(db) == "sqlite":
        db.execute(f"DROP TRIGGER {name}")
    else:
        db.execute(f"DROP TRIGGER {name} ON {table}")
        db.execute(f"DROP FUNCTION {name}()")


@contextmanager
def write_lock_held(target: Target, db: Connection) -> Iterator[None]:
    """Another connection (another collector's long transaction) holds what the store writes
    to for the block; `db` gives up waiting for it after 0.1 s, from now on."""
    other: Connection
    if dialect_of(db) == "sqlite":
        db.execute("PRAGMA busy_timeout=100")
        other = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
    else:
        db.execute("SET lock_timeout = 100")
        other = connect(target)
        other.execute("BEGIN")
        other.execute("LOCK TABLE gateway, sample, quarantine IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        other.execute("COMMIT")
        other.close()


def new_target(request: pytest.FixtureRequest, engine: str, folder: Path) -> Target:
    """A new database on `engine` for a fixture of wider scope than `db_target`: a SQLite
    file in `folder` (a folder of the fixture's own), or a PostgreSQL database named after
    it on the session's server."""
    if engine == "sqlite":
        return folder / "collector.db"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database("fixture_" + re.sub(r"\W", "_", folder.name))


# for a test whose engine matters little next to its cost (a collector's alert rounds):
# SQLite alone, while a sibling test runs the same path on both engines
sqlite_only = pytest.mark.parametrize("db_target", ["sqlite"], indirect=True)
# the same for tests on the `backend` fixture
sqlite_backend_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def victoria_settings(server: VictoriaMetrics) -> Victoria:
    """[storage.victoria] for a test's server: every acknowledged batch readable at once."""
    return Victoria(url=server.url, readable_on_ack=True, settle_s=3.0)


def bind_victoria(target: Target, server: VictoriaMetrics) -> None:
    """Keep the raw readings of the database at `target` in `server` from now on."""
    store = Store(target)
    try:
        store.use_victoria(victoria_settings(server))
    finally:
        store.close()


def victoria_of(target: Target) -> Victoria | None:
    """The VictoriaMetrics the database at `target` keeps raw readings in, if any (also
    None for a database no collector has opened yet)."""
    if not is_postgres(target) and not Path(target).exists():
        return None
    db = connect(target, readonly=True)
    try:
        return timeseries.settings_of(db)
    except Exception:  # no such table yet: a database no collector has opened
        return None
    finally:
        db.close()


def victoria_line(target: Target) -> str:
    """`victoria = {...}` for a config's [storage] on this database: the VictoriaMetrics it
    keeps raw readings in, or nothing."""
    cfg = victoria_of(target)
    if cfg is None:
        return ""
    fields = f'url = "{cfg.url}", readable_on_ack = true, settle_s = {cfg.settle_s}'
    return f"victoria = {{ {fields} }}\n"
