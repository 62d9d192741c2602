"""sparwatt-collector: run the collector, check its config, and query what it stored."""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path

from collector import settings
from collector.cli import (
    copy,
    evaluation,
    fetch,
    gateways,
    imports,
    measures,
    programmes,
    query,
    tokens,
)
from collector.cli.common import config, db_path, json_option, query_options
from collector.evaluation.inputs import check_inputs
from sparwatt.console import EXIT_FAIL, EXIT_OK, emit, run
from sparwatt.errors import ProvisioningError, RemoteError, SchemaError


def cmd_check_config(args: argparse.Namespace) -> int:
    config = settings.load(args.config)
    check_inputs(config.evaluation)  # the sites and alerts files it names, and theirs
    emit(
        args,
        {"ok": True, "db": str(config.storage.db)},
        f"{args.config}: ok (database {config.storage.db})",
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from collector.service import Collector

    config = settings.load(args.config)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # a line per HTTP request (VictoriaMetrics, webhooks) at INFO would bury the service's
    # own; their failures reach the log as the collector's errors (DEBUG shows them all)
    if logging.getLogger().level > logging.DEBUG:
        for chatty in ("httpx", "httpcore"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    failures: tuple[type[Exception], ...] = (OSError, RuntimeError, *_database_errors())
    try:
        collector = Collector(config)
    except failures as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return EXIT_FAIL
    collector.run(stop)
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    """Roll up what is pending and drop raw readings past the retention, now (the running
    collector does the same every hour)."""
    from collector.intervals.refresh import policy_of, prune
    from collector.store import Store

    cfg = config(args)
    store = Store(db_path(args))
    try:
        gone = prune(store, cfg.storage.raw_retention_days, policy_of(cfg.intervals))
    finally:
        store.close()
    emit(
        args,
        {"pruned_values": gone, "raw_retention_days": cfg.storage.raw_retention_days},
        f"pruned {gone} raw values older than {cfg.storage.raw_retention_days:g} days",
    )
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparwatt-collector", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    plain, common = [json_option()], [query_options()]
    sp = sub.add_parser("run", help="run the collector service", parents=plain)
    sp.add_argument("config", type=Path)
    sp.add_argument("--log-level", default="INFO")
    sp.set_defaults(func=cmd_run)
    sp = sub.add_parser(
        "check-config",
        help="validate a collector config and every file it names, then exit",
        parents=plain,
    )
    sp.add_argument("config", type=Path)
    sp.set_defaults(func=cmd_check_config)
    sp = sub.add_parser(
        "prune",
        help="roll up pending readings and drop raw ones past the retention, now",
        parents=common,
    )
    sp.set_defaults(func=cmd_prune)
    query.register(sub, common)
    tokens.register(sub, common)
    evaluation.register(sub, common)
    gateways.register(sub, common)
    imports.register(sub, common)
    fetch.register(sub, common)
    measures.register(sub, common)
    programmes.register(sub, common)
    copy.register(sub, common)
    return p


def _database_errors() -> tuple[type[Exception], ...]:
    """What the database may raise: SQLite's, and PostgreSQL's where psycopg is installed."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


def main(argv: list[str] | None = None) -> int:
    return run(
        _parser(),
        argv,
        failures=(*_database_errors(), ProvisioningError, RemoteError, SchemaError),
    )


if __name__ == "__main__":
    sys.exit(main())
