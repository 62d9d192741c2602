"""sparwatt-collector: run the collector, check its config, and query what it stored."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector import settings
from collector.store import Reader
from sparwatt.configfile import ConfigError
from sparwatt.wire import format_ts

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
DEFAULT_CONFIG = Path(os.environ.get("SPARWATT_COLLECTOR_CONFIG", "/etc/sparwatt/collector.toml"))


def _ts(ms: int | None) -> str:
    return "-" if ms is None else format_ts(datetime.fromtimestamp(ms / 1000, UTC))


def _db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    return settings.load(args.config or DEFAULT_CONFIG).storage.db


def _reader(args: argparse.Namespace) -> Reader:
    path = _db_path(args)
    if not path.exists():
        raise ConfigError([f"{path}: no database yet (has the collector run?)"])
    return Reader(path)


def _emit(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data, indent=2) if args.json else human)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = settings.load(args.config)
    _emit(args, {"ok": True, "db": str(config.storage.db)},
          f"{args.config}: ok (database {config.storage.db})")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from collector.service import Collector

    config = settings.load(args.config)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    Collector(config).run(stop)
    return EXIT_OK


def cmd_latest(args: argparse.Namespace) -> int:
    rows = _reader(args).latest(args.site)
    for row in rows:
        row["ts"] = _ts(row.pop("ts_ms"))
    human = "\n".join(f"{r['site']:<16} {r['gateway']:<8} {r['meter']:<14} {r['quantity']:<30}"
                      f" {r['value']:>14.3f}  {r['ts']}" for r in rows) or "no readings yet"
    _emit(args, rows, human)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    reader = _reader(args)
    counters = reader.counters()
    data = {"stored": counters.get("stored", 0), "duplicates": counters.get("duplicates", 0),
            "messages": counters.get("messages", 0),
            "quarantined": reader.quarantine_by_reason(), "gaps": reader.gaps(),
            "gateways": reader.gateways(), "readings_kept": reader.reading_count()}
    lines = [f"stored readings: {data['stored']} (duplicates ignored: {data['duplicates']})",
             f"messages: {data['messages']}",
             "quarantined: " + (", ".join(f"{k}={v}" for k, v in data["quarantined"].items())
                                or "none"),
             f"seq gaps: {len(data['gaps'])}"]
    lines += [f"gateway {g['site']}/{g['gateway']}: {g['state'] or 'unknown'}, last seq "
              f"{g['last_seq']}, last reading {_ts(g['last_seen_ms'])}" for g in data["gateways"]]
    _emit(args, data, "\n".join(lines))
    return EXIT_OK


def _parse_time(text: str) -> int:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError([f"not an ISO 8601 time: {text!r}"]) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp() * 1000)


def cmd_export(args: argparse.Namespace) -> int:
    reader = _reader(args)
    lo, hi = _parse_time(args.from_), _parse_time(args.to)
    if args.interval == "raw":
        header = ["gateway", "meter", "quantity", "ts", "value"]
        rows = [[g, m, q, _ts(ts), v] for g, m, q, ts, v in reader.raw(args.site, lo, hi)]
    else:
        header = ["gateway", "meter", "start", "energy_kwh", "estimated", "mean_power_w",
                  "max_power_w"]
        rows = [[g, m, _ts(s), e, bool(est), mp, xp]
                for g, m, s, e, est, mp, xp in reader.intervals(args.site, lo, hi)]
    if args.format == "json":
        print(json.dumps([dict(zip(header, r, strict=True)) for r in rows]))
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.write(out.getvalue())
    return EXIT_OK


def cmd_quarantine(args: argparse.Namespace) -> int:
    rows = _reader(args).quarantine(args.limit)
    for row in rows:
        row["received"] = _ts(row.pop("received_ms"))
    human = "\n".join(f"{r['received']} {r['reason']:<20} {r['topic'][:60]}  {r['detail'][:80]}"
                      for r in rows) or "quarantine is empty"
    _emit(args, rows, human)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparwatt-collector", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str, query: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        if query:
            sp.add_argument("--config", type=Path, help=f"collector config (default "
                            f"{DEFAULT_CONFIG}, or SPARWATT_COLLECTOR_CONFIG)")
            sp.add_argument("--db", help="database file, instead of the config's")
        return sp

    sp = add("run", "run the collector service", query=False)
    sp.add_argument("config", type=Path)
    sp.add_argument("--log-level", default="INFO")
    sp.set_defaults(func=cmd_run)
    sp = add("check-config", "validate a collector config and exit", query=False)
    sp.add_argument("config", type=Path)
    sp.set_defaults(func=cmd_check_config)
    sp = add("latest", "newest value per site, meter and quantity")
    sp.add_argument("--site")
    sp.set_defaults(func=cmd_latest)
    sp = add("status", "ingest counters, quarantine, gaps and gateways")
    sp.set_defaults(func=cmd_status)
    sp = add("export", "export readings or 15-minute intervals of one site")
    sp.add_argument("--site", required=True)
    sp.add_argument("--from", dest="from_", required=True, help="ISO 8601 start (UTC default)")
    sp.add_argument("--to", required=True, help="ISO 8601 end, exclusive")
    sp.add_argument("--interval", choices=["15m", "raw"], default="15m")
    sp.add_argument("--format", choices=["csv", "json"], default="csv")
    sp.set_defaults(func=cmd_export)
    sp = add("quarantine", "the newest rejected messages and why")
    sp.add_argument("--limit", type=int, default=20)
    sp.set_defaults(func=cmd_quarantine)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
