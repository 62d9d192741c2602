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
from urllib.parse import unquote

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
    """The target for messages and logs, without any password a URL may hold (in its user
    part, up to the last @, or as a password= parameter)."""
    if is_postgres(target):
        text = re.sub(r"://([^:/@]*):.*@", r"://\1:***@", str(target))
        return re.sub(r"([?&]password=)[^&#]*", r"\1***", text, flags=re.IGNORECASE)
    return str(target)


def _secrets(url: str) -> list[str]:
    """The password of a URL, as written and decoded, and its pieces (libpq's messages about
    a URL it cannot read quote the part they stumbled on)."""
    found = re.findall(r"://[^:/@]*:(.*)@", url)
    found += re.findall(r"[?&]password=([^&#]*)", url, flags=re.IGNORECASE)
    pieces = {s for raw in found for s in (raw, unquote(raw)) if s}
    pieces |= {p for s in list(pieces) for p in re.split(r"[/@:?#]", s) if len(p) > 1}
    return sorted(pieces, key=len, reverse=True)


# what the translation leaves as it is (string literals, quoted names, comments) and the
# parameters it renames: ?, ?N and (for a mapping of parameters) :name, not a cast's ::type
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)
_PARAM = re.compile(r"\?(\d*)")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_BEGIN = re.compile(
    r"^\s*BEGIN\s+(?:DEFERRED|IMMEDIATE|EXCLUSIVE)\b(?:\s+TRANSACTION\b)?", re.IGNORECASE
)
_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def _translate(sql: str, named: bool) -> tuple[str, bool]:
    """The statement for psycopg, and whether its parameters are numbered (?N: bound by
    name, p1, p2, ...). Only the SQL itself is translated: a ?, :name or keyword inside a
    string literal, a quoted name or a comment stays as written."""
    # the statement with what is quoted blanked out, to find the SQL in by position
    masked = _QUOTED.sub(lambda m: " " * len(m.group()), sql)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    if begin := _BEGIN.match(masked):  # PostgreSQL locks rows as statements touch them
        edits.append((begin.start(), begin.end(), "BEGIN"))
    if ignore := _OR_IGNORE.search(masked):
        edits.append((ignore.start(), ignore.end(), "INSERT"))
        returning = _RETURNING.search(masked, ignore.end())
        if returning:
            edits.append((returning.start(), returning.start(), "ON CONFLICT DO NOTHING "))
        else:
            end = len(masked.rstrip("; \t\r\n"))
            edits.append((end, end, " ON CONFLICT DO NOTHING"))
    numbered = False
    if named:
        for m in _NAMED.finditer(masked):
            edits.append((m.start(), m.end(), f"%({m.group(1)})s"))
    else:
        params = list(_PARAM.finditer(masked))
        numbered = any(m.group(1) for m in params)
        largest = 0  # as SQLite numbers them: a bare ? is one past the largest so far
        for m in params:
            number = int(m.group(1)) if m.group(1) else largest + 1
            largest = max(largest, number)
            edits.append((m.start(), m.end(), f"%(p{number})s" if numbered else "%s"))
    out, done = [], 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        out.append(sql[done:start].replace("%", "%%"))
        out.append(replacement)
        done = end
    out.append(sql[done:].replace("%", "%%"))
    return "".join(out), numbered


class PgConnection:
    """A psycopg connection that takes the store's SQLite-dialect statements."""

    dialect: Dialect = "postgres"

    def __init__(self, url: str, readonly: bool = False) -> None:
        import psycopg  # only a PostgreSQL deployment needs it

        self._psycopg = psycopg
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            # one line naming the database, never its password (libpq may quote the URL)
            raise type(exc)(f"{describe(url)}: cannot connect: {_scrub(str(exc), url)}") from None
        # as SQLite's busy_timeout: a row another collector holds for longer fails as busy
        # (leases.is_busy), and the batch is stored again later instead of waiting forever
        self.conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        if readonly:
            self.conn.execute("SET default_transaction_read_only = on")

    @property
    def in_transaction(self) -> bool:
        """A transaction is open on the server; not on a connection that broke (the server
        ended its transaction, and a ROLLBACK would only fail and hide why)."""
        status = self.conn.info.transaction_status
        gone = (self._psycopg.pq.TransactionStatus.IDLE, self._psycopg.pq.TransactionStatus.UNKNOWN)
        return status not in gone

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.conn.execute(*_bind(sql, parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        rows = list(parameters)
        cur = self.conn.cursor()
        if not rows:
            return cur
        named = isinstance(rows[0], Mapping)
        statement, numbered = _translate(sql, named)
        cur.executemany(statement, [_numbered(row) for row in rows] if numbered else rows)
        return cur

    def close(self) -> None:
        self.conn.close()


def _scrub(message: str, url: str) -> str:
    """A driver's message on one line, with the URL's password masked wherever it shows."""
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    text = text.replace(url, describe(url))
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def _bind(sql: str, parameters: Any) -> tuple[str, Any]:
    named = isinstance(parameters, Mapping)
    statement, numbered = _translate(sql, named)
    if parameters is None:  # psycopg would send the statement as it is, its %% undone
        parameters = ()
    if numbered:
        return statement, _numbered(parameters)
    return statement, parameters


def _numbered(row: Sequence[Any]) -> dict[str, Any]:
    return {f"p{i}": value for i, value in enumerate(row, start=1)}
