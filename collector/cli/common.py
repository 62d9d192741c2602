"""What the sparwatt-collector commands share: the --json, --config and --db options, the
config and database they name, and how times are read and shown."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector import settings
from collector.store import Reader, sql
from collector.store.schema import connect
from collector.store.sql import Target, describe, is_postgres
from sparwatt.errors import ConfigError
from sparwatt.timeutil import epoch_ms, from_ms
from sparwatt.wire import format_ts

DEFAULT_CONFIG = Path(os.environ.get("SPARWATT_COLLECTOR_CONFIG", "/etc/sparwatt/collector.toml"))


def query_options(db: bool = True) -> argparse.ArgumentParser:
    """A parent parser with --json, --config and (for commands that read the database) --db."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument(
        "--config",
        type=Path,
        help=f"collector config (default {DEFAULT_CONFIG}, or SPARWATT_COLLECTOR_CONFIG)",
    )
    if db:
        common.add_argument(
            "--db", help="database (a SQLite file or a PostgreSQL URL), instead of the config's"
        )
    return common


def json_option() -> argparse.ArgumentParser:
    """A parent parser with --json alone, for commands that take a config file argument."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    return common


def command_group(
    sub: Any, name: str, help_text: str, description: str, parents: list[argparse.ArgumentParser]
) -> Callable[[str, str], argparse.ArgumentParser]:
    """Add a command group (`sparwatt-collector <name> <command>`); returns the function that
    adds one of its commands by name and help text, each with `parents`' options."""
    group = sub.add_parser(name, help=help_text, description=description)
    commands = group.add_subparsers(dest=f"{name}_command", required=True)

    def add(command: str, command_help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(
            command, help=command_help, description=command_help, parents=parents
        )
        return parser

    return add


def config(args: argparse.Namespace) -> settings.CollectorConfig:
    """The collector config a command names (--config, or the default), with --db applied."""
    loaded = settings.load(args.config or DEFAULT_CONFIG)
    if getattr(args, "db", None):
        loaded = loaded.model_copy(
            update={"storage": loaded.storage.model_copy(update={"db": sql.target(args.db)})}
        )
    return loaded


def db_path(args: argparse.Namespace, must_exist: bool = True) -> Target:
    """The database a command reads: --db (a file or a PostgreSQL URL), or the one its
    config names."""
    target = sql.target(args.db) if getattr(args, "db", None) else config(args).storage.db
    if must_exist and not database_exists(target):
        raise ConfigError([f"{describe(target)}: no database yet (has the collector run?)"])
    return target


def database_exists(target: Target) -> bool:
    """A SQLite file that is there, or a PostgreSQL database that holds the store's tables
    (one no collector has run on yet is empty; a server that cannot be reached says so)."""
    if not is_postgres(target):
        return Path(target).exists()
    db = connect(target, readonly=True)
    try:
        made = db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
    finally:
        db.close()
    return bool(made)


def reader(args: argparse.Namespace) -> Reader:
    return Reader(db_path(args))


def show_ts(ms: int | None) -> str:
    """A stored time for people: RFC 3339 UTC, or '-' when there is none."""
    return "-" if ms is None else format_ts(from_ms(ms))


def parse_time(text: str, option: str) -> int:
    """An ISO 8601 time from the command line (UTC unless it says otherwise), in epoch ms."""
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError([f"{option}: not an ISO 8601 time: {text!r}"]) from None
    return epoch_ms(ts if ts.tzinfo else ts.replace(tzinfo=UTC))


def num(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)
