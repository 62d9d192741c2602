"""Copy a whole database into an empty one on another engine (a SQLite collector moving to
PostgreSQL, or back): every table, row for row, ids kept. With a VictoriaMetrics given,
the raw readings go there instead, and the new database says so (collector/store/timeseries).

Both sides are brought to the same schema by the same migrations first, so the copy is
table by table with the source's own column lists; nothing is converted but what the
engines' drivers convert (integers, doubles, text, byte strings).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.store import packing, timeseries
from collector.store.schema import apply_migrations, connect
from collector.store.sql import (
    Connection,
    PgConnection,
    Target,
    describe,
    dialect_of,
    is_postgres,
)
from sparwatt.errors import ConfigError

if TYPE_CHECKING:
    from collector.settings import Victoria

CHUNK_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class TableCopy:
    table: str
    rows: int


def copy_database(
    source: Target,
    target: Target,
    progress: Callable[[TableCopy], None] = lambda _: None,
    victoria: Victoria | None = None,
) -> list[TableCopy]:
    """Copy every row of `source` into `target`, which must hold no rows yet; with
    `victoria`, the raw readings into that VictoriaMetrics instead (sent again by a copy run
    again after a failure, which the server keeps once).

    The source is migrated to this collector's schema first (as the collector would on
    start); the target gets the same schema. The source is read in one transaction (as of
    one moment), the target written in one: a copy that fails leaves it as empty as it was,
    and can be run again.
    """
    if _same(source, target):
        raise ConfigError([f"{describe(source)}: source and target are the same database"])
    src = _open(source, "source")
    try:
        dst = _open(target, "target")
    except BaseException:
        src.close()
        raise
    try:
        tables = _tables(src)
        if missing := [t for t in tables if t not in _tables(dst)]:
            raise ConfigError([f"{describe(target)}: has no table {', '.join(missing)}"])
        if busy := [t for t in tables if dst.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]:
            raise ConfigError(
                [
                    f"{describe(target)}: not empty (rows in {', '.join(busy)}); "
                    "copy into a new database"
                ]
            )
        if victoria is not None and (bound := timeseries.settings_of(src)) is not None:
            raise ConfigError(
                [
                    f"{describe(source)}: its raw readings are in VictoriaMetrics at "
                    f"{timeseries.where(bound)} already; copy without --victoria"
                ]
            )
        done = []
        # the source read as of one moment: a collector still writing to it adds nothing
        # half-way (a reading copied without the layout or meter it names)
        if dialect_of(src) == "postgres":
            src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        else:
            src.execute("BEGIN")
        dst.execute("BEGIN")
        try:
            for table in tables:
                if table == "sample" and victoria is not None:
                    rows = _samples_to_victoria(src, victoria)
                else:
                    rows = _copy_table(src, dst, table, _columns(src, table))
                done.append(TableCopy(table, rows))
                progress(done[-1])
            if victoria is not None:
                timeseries.bind(dst, victoria)
            _advance_identities(dst, tables)
            dst.execute("COMMIT")
        except BaseException:
            if dst.in_transaction:
                dst.execute("ROLLBACK")
            raise
        finally:
            if src.in_transaction:
                src.execute("ROLLBACK")
        return done
    finally:
        src.close()
        dst.close()


def _same(source: Target, target: Target) -> bool:
    """One database however it is written: a SQLite file by its real path."""
    if is_postgres(source) or is_postgres(target):
        return describe(source) == describe(target)
    return Path(source).resolve() == Path(target).resolve()


def _open(db: Target, role: str) -> Connection:
    """A connection to one side, its schema brought up to date; a database that cannot be
    used is one line naming it (a server that cannot be reached names itself already)."""
    try:
        conn = connect(db)
    except sqlite3.Error as exc:
        raise ConfigError([f"{describe(db)}: cannot open the copy's {role}: {exc}"]) from None
    try:
        apply_migrations(conn, db)
    except (sqlite3.Error, RuntimeError) as exc:
        conn.close()
        problem = str(exc).removeprefix(f"{describe(db)}: ")
        raise ConfigError([f"{describe(db)}: cannot use as the copy's {role}: {problem}"]) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _tables(db: Connection) -> list[str]:
    """The store's tables in a stable order, the schema's own bookkeeping left out."""
    if dialect_of(db) == "sqlite":
        sql = (
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    else:
        sql = (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
            "ORDER BY table_name"
        )
    return [name for (name,) in db.execute(sql).fetchall() if name != "schema_version"]


def _columns(db: Connection, table: str) -> list[str]:
    if dialect_of(db) == "sqlite":
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()]
    return [
        name
        for (name,) in db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    ]


def _rows(db: Connection, table: str, columns: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    select = f"SELECT {', '.join(columns)} FROM {table}"
    if isinstance(db, PgConnection):
        # a cursor on the server: a table is read a chunk at a time, never whole in memory
        with db.conn.cursor(name=f"copy_{table}") as cursor:
            cursor.execute(select)
            while chunk := cursor.fetchmany(CHUNK_ROWS):
                yield [tuple(row) for row in chunk]
        return
    cursor = db.execute(select)
    while chunk := cursor.fetchmany(CHUNK_ROWS):
        yield [tuple(row) for row in chunk]


def _copy_table(src: Connection, dst: Connection, table: str, columns: list[str]) -> int:
    count = 0
    names = ", ".join(columns)
    if isinstance(dst, PgConnection):
        # COPY streams rows without a statement each: minutes become seconds on big tables
        with dst.conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for chunk in _rows(src, table, columns):
                for row in chunk:
                    copy.write_row(row)
                count += len(chunk)
        return count
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
    for chunk in _rows(src, table, columns):
        dst.executemany(insert, chunk)
        count += len(chunk)
    return count


def _samples_to_victoria(src: Connection, cfg: Victoria) -> int:
    """Send every raw reading of `src` to VictoriaMetrics; returns how many readings."""
    layouts = {
        layout_id: packing.Layout.from_key(spec)
        for layout_id, spec in src.execute("SELECT id, spec FROM layout").fetchall()
        if ":" in spec and not spec.startswith("15m:")
    }
    keys = {
        meter_id: (site, gateway, meter)
        for meter_id, site, gateway, meter in src.execute(
            "SELECT id, site, gateway, meter FROM meter"
        ).fetchall()
    }
    raw = timeseries.open_raw(cfg)
    count, first, last = 0, 2**63, -(2**63)
    sent: set[tuple[str, str, str, str]] = set()
    try:
        for chunk in _rows(src, "sample", ["meter_id", "ts", "layout", "data"]):
            raw.write(
                (*keys[meter_id], ts, packing.unpack(layouts[layout_id], bytes(blob)))
                for meter_id, ts, layout_id, blob in chunk
            )
            count += len(chunk)
            sent.update(
                (*keys[meter_id], q)
                for meter_id, _, layout_id, _ in chunk
                for q in layouts[layout_id].quantities
            )
            first = min(first, *(row[1] for row in chunk))
            last = max(last, *(row[1] for row in chunk))
        if count:  # readable when the copy is done: the collector may start on it at once
            raw.make_readable(sent, (first, last))
    finally:
        raw.close()
    return count


def _advance_identities(dst: Connection, tables: list[str]) -> None:
    """PostgreSQL identities do not move when rows bring their own ids: start each one
    after the highest id copied, so the next row made there gets a new id."""
    if dialect_of(dst) != "postgres":
        return
    for table, column in dst.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY table_name"
    ).fetchall():
        if table in tables:
            dst.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), MAX({column})) "
                f"FROM {table} HAVING MAX({column}) IS NOT NULL"
            )
