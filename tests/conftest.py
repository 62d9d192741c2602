"""Shared fixtures: a real Mosquitto broker, a real PostgreSQL server, and the test's child
processes, always stopped."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.store.sql import Target
from devtools.broker import Mosquitto
from devtools.postgres import Postgres
from devtools.victoria import VictoriaMetrics
from tests.support.engines import bind_victoria
from tests.support.processes import Processes

_databases = itertools.count(1)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    yield p
    p.stop_all()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """One PostgreSQL server for the session; each test takes a database of its own."""
    with Postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A VictoriaMetrics of the test's own, set up as the store of raw readings needs it."""
    with VictoriaMetrics(tmp_path / "victoria", dedup=True, retention="100y") as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """The store's database on each engine: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "sparwatt.db"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database(f"test_{next(_databases)}")


@pytest.fixture(params=["sqlite", "victoria+postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """The collector's two backends: everything in a new SQLite file (the default), or raw
    readings in VictoriaMetrics and the rest in a new PostgreSQL database. Stores and
    readers on the database find its raw readings where it says they are."""
    if request.param == "sqlite":
        return tmp_path / "sparwatt.db"
    server: Postgres = request.getfixturevalue("postgres")
    target = server.create_database(f"test_{next(_databases)}")
    bind_victoria(target, request.getfixturevalue("victoria"))
    return target
