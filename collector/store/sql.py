"""The two SQL engines the store runs on, behind one connection shape: SQLite (a file, the
embedded default) and PostgreSQL (a server several collectors share, docs/scaling.md).

The store's statements are written once, in the SQL both engines speak (INSERT ... ON
CONFLICT, RETURNING, COALESCE), with SQLite's `?` parameters. A SQLite database is used
through `sqlite3` itself, with nothing in between. A PostgreSQL database is used through
`PgConnection`, which hands each statement to psycopg with its parameters renamed
(`?` -> `%s`, `?N` -> a named one) and the few SQLite-only phrases replaced. Where the two
need different SQL (a JSON table function, a storage figure), the caller asks `dialect`.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgres"]
Target = Path | str  # a SQLite file, or a PostgreSQL URL (postgresql://...)
Params = Sequence[Any] | Mapping[str, Any]

_URL_SCHEMES = ("postgresql://", "postgres://")
LOCK_TIMEOUT_MS = 5000  # SQLite's busy_timeout (schema.connect)


class Cursor(Protocol):
    """What the store reads back from a statement."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection as the store uses it: statements in autocommit mode, transactions
    opened and closed with BEGIN / COMMIT / ROLLBACK statements."""

    @property
    def in_transaction(self) -> bool: ...
    def execute(self, sql: str, parameters: Any = (), /) -> Any: ...
    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any: ...
    def close(self) -> None: ...


def is_postgres(target: Target) -> bool:
    return isinstance(target, str) and target.startswith(_URL_SCHEMES)


def target(value: str) -> Target:
    """A database as written in a config or on a command line: a PostgreSQL URL stays as
    it is, anything else is a SQLite file's path."""
    return value if is_postgres(value) else Path(value)


def dialect_of(db: Connection) -> Dialect:
    return "sqlite" if isinstance(db, sqlite3.Connection) else "postgres"


def describe(target: Target) -> str:
    """The target for messages and logs, without any password a URL may hold."""
    if is_postgres(target):
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", str(target))
    return str(target)


_NUMBERED = re.compile(r"\?(\d+)")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=1024)
def to_postgres(sql: str, named: bool) -> str:
    """One statement as psycopg takes it for PostgreSQL."""
    out = sql.replace("%", "%%")
    if out.startswith("BEGIN IMMEDIATE"):  # PostgreSQL locks rows as statements touch them
        out = "BEGIN"
    if "INSERT OR IGNORE INTO" in out:
        out = out.replace("INSERT OR IGNORE INTO", "INSERT INTO")
        head, sep, tail = out.partition(" RETURNING ")
        out = f"{head} ON CONFLICT DO NOTHING{sep}{tail}"
    if named:
        out = _NAMED.sub(r"%(\1)s", out)
    elif _NUMBERED.search(out):
        out = _NUMBERED.sub(r"%(p\1)s", out)
    else:
        out = out.replace("?", "%s")
    return out


class PgConnection:
    """A psycopg connection that takes the store's SQLite-dialect statements."""

    dialect: Dialect = "postgres"

    def __init__(self, url: str, readonly: bool = False) -> None:
        import psycopg  # only a PostgreSQL deployment needs it

        self._psycopg = psycopg
        self.conn = psycopg.connect(url, autocommit=True)
        # as SQLite's busy_timeout: a row another collector holds for longer fails as busy
        # (leases.is_busy), and the batch is stored again later instead of waiting forever
        self.conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        if readonly:
            self.conn.execute("SET default_transaction_read_only = on")

    @property
    def in_transaction(self) -> bool:
        status = self.conn.info.transaction_status
        return bool(status != self._psycopg.pq.TransactionStatus.IDLE)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.conn.execute(*_bind(sql, parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        rows = list(parameters)
        cur = self.conn.cursor()
        if not rows:
            return cur
        statement, _ = _bind(sql, rows[0])
        if isinstance(rows[0], Mapping) or not _NUMBERED.search(sql):
            cur.executemany(statement, rows)
        else:
            cur.executemany(statement, [_numbered(row) for row in rows])
        return cur

    def close(self) -> None:
        self.conn.close()


def _bind(sql: str, parameters: Any) -> tuple[str, Any]:
    named = isinstance(parameters, Mapping)
    statement = to_postgres(sql, named)
    if not named and parameters and _NUMBERED.search(sql):
        return statement, _numbered(parameters)
    return statement, parameters


def _numbered(row: Sequence[Any]) -> dict[str, Any]:
    return {f"p{i}": value for i, value in enumerate(row, start=1)}
