"""The PostgreSQL side of the store's one SQL: a statement written for SQLite means the same
on PostgreSQL (parameters renamed only where they are parameters), and a database that
cannot be reached is one line that names it without its password."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from collector.store.schema import connect
from collector.store.sql import PgConnection, describe
from devtools.postgres import Postgres

# (statement, parameters): each answers the same on both engines
STATEMENTS: list[tuple[str, Any]] = [
    ("SELECT '?', ?", (1,)),
    ("SELECT ?1, '?2', ?1", (5,)),
    ("SELECT ?2, ?, ?1", ("a", "b", "c")),  # a bare ? after ?2 is ?3
    ("SELECT 'at :x', :x", {"x": 3}),
    ("SELECT 'it''s ?', ?", (4,)),
    ("SELECT ? -- why?", (6,)),
    ("SELECT /* ?, ? */ ?", (7,)),
    ('SELECT ? AS "what?"', (8,)),
    ("SELECT '100%', ?", ("x",)),
    ("SELECT '50%' LIKE '5_%', ?", (9,)),
]


_names = itertools.count(1)


@pytest.fixture
def pg(postgres: Postgres) -> Iterator[Any]:
    db = connect(postgres.create_database(f"sql_{next(_names)}"))
    yield db
    db.close()


def _sqlite() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", isolation_level=None)


@pytest.mark.parametrize(("sql", "params"), STATEMENTS)
def test_a_question_mark_or_name_in_a_literal_comment_or_quoted_name_is_no_parameter(
    pg: PgConnection, sql: str, params: Any
) -> None:
    expected = [tuple(row) for row in _sqlite().execute(sql, params).fetchall()]
    assert [tuple(row) for row in pg.execute(sql, params).fetchall()] == expected


def test_many_rows_bind_as_one_row_does(pg: PgConnection) -> None:
    lite = _sqlite()
    for db in (lite, pg):
        db.execute("CREATE TABLE t (a TEXT, b BIGINT)")
        db.executemany("INSERT INTO t VALUES ('?1' || ?, ?)", [("x", 1), ("y", 2)])
    expected = lite.execute("SELECT a, b FROM t ORDER BY b").fetchall()
    assert [tuple(r) for r in pg.execute("SELECT a, b FROM t ORDER BY b").fetchall()] == expected


@pytest.mark.parametrize(
    "insert",
    [
        "INSERT OR IGNORE INTO t (k) VALUES (?)\nRETURNING k",
        "insert or ignore into t (k) values (?) returning k",
        "INSERT OR IGNORE INTO t (k) VALUES (?);",
        "INSERT OR IGNORE INTO t (k) VALUES (?) -- once",
    ],
)
def test_insert_or_ignore_keeps_the_first_row_however_it_is_written(
    pg: PgConnection, insert: str
) -> None:
    lite = _sqlite()
    answers = []
    for db in (lite, pg):
        db.execute("CREATE TABLE t (k BIGINT PRIMARY KEY)")
        cursor = db.execute(insert, (1,))
        first = [tuple(r) for r in cursor.fetchall()] if "RETURNING" in insert.upper() else []
        again = db.execute(insert, (1,))
        answers.append((first, again.rowcount, db.execute("SELECT COUNT(*) FROM t").fetchone()[0]))
    assert answers[1] == answers[0]


@pytest.mark.parametrize(
    "begin", ["BEGIN IMMEDIATE", "begin immediate transaction", "  BEGIN EXCLUSIVE"]
)
def test_sqlites_begin_opens_a_transaction(pg: PgConnection, begin: str) -> None:
    pg.execute(begin)
    assert pg.in_transaction
    pg.execute("ROLLBACK")
    assert not pg.in_transaction


def test_a_connection_the_server_ended_has_no_transaction_to_roll_back(
    pg: PgConnection, postgres: Postgres
) -> None:
    pg.execute("BEGIN")
    admin = psycopg.connect(postgres.dsn(), autocommit=True)
    try:
        admin.execute("SELECT pg_terminate_backend(%s)", (pg.conn.info.backend_pid,))
    finally:
        admin.close()
    with pytest.raises(psycopg.OperationalError):
        pg.execute("SELECT 1")
    # the store's rollback on failure asks this first: a ROLLBACK now would hide the error
    assert not pg.in_transaction


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://sparwatt:Tr0ub4dor@127.0.0.1:1/sparwatt",
        "postgresql://sparwatt:Tr0ub%ZZ4dor@127.0.0.1:1/sparwatt",
        "postgresql://sparwatt:Tr0ub4dor@[::1/sparwatt",
        "postgresql://sparwatt@127.0.0.1:1/sparwatt?password=Tr0ub4dor",
        "postgresql://sparwatt:Tr0ub@4dor@127.0.0.1:1/sparwatt",
    ],
)
def test_a_database_that_cannot_be_reached_is_one_line_without_the_password(url: str) -> None:
    with pytest.raises(psycopg.Error) as failed:
        connect(url)
    message = str(failed.value)
    assert len(message.splitlines()) == 1
    assert "Tr0ub" not in message
    assert "4dor" not in message
    assert "cannot connect" in message
    assert "sparwatt" in message  # which database


def test_describe_never_shows_a_password() -> None:
    for url in (
        "postgresql://u:Tr0ub4dor@db.example/sparwatt",
        "postgresql://u:Tr0ub@4dor@db.example/sparwatt",
        "postgres://u@db.example/sparwatt?sslmode=require&password=Tr0ub4dor",
    ):
        shown = describe(url)
        assert "Tr0ub" not in shown
        assert "4dor" not in shown
        assert shown.endswith("sparwatt") or "sslmode=require" in shown
