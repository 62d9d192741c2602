"""`sparwatt-collector copy --to URL`: move a collector's database to another engine."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from pydantic import ValidationError

from collector.cli.common import db_path
from collector.settings import Victoria
from collector.store.copy import TableCopy, copy_database
from collector.store.sql import Target, describe, is_postgres
from collector.store.sql import target as as_target
from sparwatt.console import EXIT_OK, emit
from sparwatt.errors import ConfigError


def cmd_copy(args: argparse.Namespace) -> int:
    target = _target(args.to)
    source = db_path(args)

    def progress(done: TableCopy) -> None:
        if not args.json:
            print(f"  {done.table:<16} {done.rows:>12,} rows", file=sys.stderr)

    victoria = None if args.victoria is None else _victoria(args.victoria)
    copied = copy_database(source, target, progress, victoria)
    total = sum(t.rows for t in copied)
    emit(
        args,
        {
            "source": describe(source),
            "target": describe(target),
            "tables": {t.table: t.rows for t in copied},
            "rows": total,
            "victoria": args.victoria,
        },
        f"copied {total:,} rows in {len(copied)} tables from {describe(source)} "
        f"to {describe(target)}"
        + ("" if victoria is None else f", raw readings to VictoriaMetrics at {args.victoria}"),
    )
    return EXIT_OK


def _target(value: str) -> Target:
    """--to as a database: a PostgreSQL URL, or a SQLite file; another URL is a mistake,
    named by its scheme alone (the rest may hold a password), not a file made by that name."""
    scheme, sep, _ = value.partition("://")
    if sep and not is_postgres(value) and re.fullmatch(r"[A-Za-z][\w+.-]*", scheme):
        raise ConfigError(
            [
                f"--to {scheme}://...: not a database the collector can use; give a "
                "postgresql://user@host/database URL or a SQLite file"
            ]
        )
    return as_target(value)


def _victoria(url: str) -> Victoria:
    try:
        return Victoria(url=url)
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError([f"--victoria {url}: {reason}"]) from None


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `copy` command; `parents` give it --json, --config and --db (the source)."""
    sp = sub.add_parser(
        "copy",
        help="copy the whole database into a new, empty one (SQLite file or PostgreSQL URL)",
        description=(
            "Copy every record and reading of the collector's database (--config or --db) "
            "into an empty database, e.g. postgresql://sparwatt@db.example/sparwatt, keeping "
            "ids. Stop the collector first; point it at the new database afterwards."
        ),
        parents=parents,
    )
    sp.add_argument("--to", required=True, help="the new database: a file or a PostgreSQL URL")
    sp.add_argument(
        "--victoria",
        metavar="URL",
        help="a VictoriaMetrics single node (e.g. http://vm:8428) to keep the raw readings in; "
        "then give the same URL as [storage.victoria] url",
    )
    sp.set_defaults(func=cmd_copy)
