"""sparwatt-collector: run the collector, check its config, and query what it stored."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector import evaluation_cli, settings
from collector.store import Reader, now_ms
from sparwatt.configfile import ConfigError
from sparwatt.console import EXIT_FAIL, EXIT_OK, emit, run
from sparwatt.wire import format_ts

STATS_STALE_MS = 15_000
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


def cmd_check_config(args: argparse.Namespace) -> int:
    config = settings.load(args.config)
    evaluation_cli.load_inputs(config.evaluation)  # the sites and alerts files it names
    emit(args, {"ok": True, "db": str(config.storage.db)},
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
    try:
        collector = Collector(config)
    except (OSError, RuntimeError, sqlite3.Error) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return EXIT_FAIL
    collector.run(stop)
    return EXIT_OK


def cmd_latest(args: argparse.Namespace) -> int:
    with _reader(args) as reader:
        rows = reader.latest(args.site)
    for row in rows:
        row["ts"] = _ts(row.pop("ts_ms"))
    human = "\n".join(f"{r['site']:<16} {r['gateway']:<8} {r['meter']:<14} {r['quantity']:<30}"
                      f" {r['value']:>14.3f}  {r['ts']}" for r in rows) or "no readings yet"
    emit(args, rows, human)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    with _reader(args) as reader:
        counters = reader.counters()
        stats = reader.stats()
        data: dict[str, Any] = {
            "stored": counters.get("stored", 0), "duplicates": counters.get("duplicates", 0),
            "messages": counters.get("messages", 0), "readings": counters.get("readings", 0),
            "quarantined": reader.quarantine_by_reason(), "gaps": reader.gaps(),
            "gateways": reader.gateways(), "readings_kept": reader.reading_count()}
    rate = stats.get("ingest_readings_per_s")
    # the collector refreshes these every few seconds; older figures mean it is not running
    live = rate is not None and now_ms() - rate[1] < STATS_STALE_MS
    data["ingest_readings_per_s"] = rate[0] if live and rate else None
    data["stats_updated"] = _ts(rate[1]) if rate else None
    sink_on = stats.get("sink_enabled", (0.0, 0))[0]
    data["sink"] = ({name: stats.get(f"sink_{name}", (None, 0))[0]
                     for name in ("backlog", "written", "dropped", "failures", "last_error")}
                    if sink_on else None)
    lines = [
        "ingest rate: " + (f"{data['ingest_readings_per_s']:.1f} readings/s" if live else
                           "collector not running" + (f" (last seen {data['stats_updated']})"
                                                      if rate else "")),
        f"stored values: {data['stored']} (duplicates ignored: {data['duplicates']}), "
        f"kept now: {data['readings_kept']}",
        f"messages: {data['messages']} with {data['readings']} readings",
        "quarantined: " + (", ".join(f"{k}={v}" for k, v in data["quarantined"].items())
                           or "none"),
        f"seq gaps: {len(data['gaps'])}"]
    lines += [f"  gap {g['site']}/{g['gateway']} seq {g['from_seq']}-{g['to_seq']}: "
              f"{_ts(g['after_ms'])} .. {_ts(g['before_ms'])}" for g in data["gaps"][:20]]
    if data["sink"] is not None:
        sink = data["sink"]
        lines.append(f"influxdb sink: backlog {int(sink['backlog'] or 0)}, written "
                     f"{int(sink['written'] or 0)}, dropped {int(sink['dropped'] or 0)}, "
                     f"failed writes {int(sink['failures'] or 0)}"
                     + (f", last error: {sink['last_error']}" if sink["last_error"] else ""))
    else:
        lines.append("influxdb sink: off")
    lines += [f"gateway {g['site']}/{g['gateway']}: {g['state'] or 'unknown'}, last seq "
              f"{g['last_seq']}, last reading {_ts(g['last_seen_ms'])}" for g in data["gateways"]]
    emit(args, data, "\n".join(lines))
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
    lo, hi = _parse_time(args.from_), _parse_time(args.to)
    if hi <= lo:
        raise ConfigError([f"--to {args.to} is not after --from {args.from_}"])
    with _reader(args) as reader:
        if args.interval == "raw":
            header = ["gateway", "meter", "quantity", "ts", "value"]
            rows = [[g, m, q, _ts(ts), v] for g, m, q, ts, v in reader.raw(args.site, lo, hi)]
        else:
            header = ["gateway", "meter", "start", "energy_import_kwh", "import_estimated",
                      "energy_export_kwh", "export_estimated", "mean_power_w", "max_power_w"]
            rows = [[g, m, _ts(s), e, bool(est), x, bool(xest), mp, xp]
                    for g, m, s, e, est, x, xest, mp, xp
                    in reader.energy_intervals(args.site, lo, hi)]
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
    if args.limit < 1:
        raise ConfigError([f"--limit must be at least 1, got {args.limit}"])
    with _reader(args) as reader:
        rows = reader.quarantine(args.limit, with_payload=args.payload)
    for row in rows:
        row["received"] = _ts(row.pop("received_ms"))
        if "payload" in row:
            row["payload"] = bytes(row["payload"] or b"").decode("utf-8", "replace")
    human = "\n".join(
        f"{r['received']} {r['reason']:<20} {r['topic'][:60]}  {r['detail'][:100]}"
        + (f"\n    payload ({r['size']} bytes): {r['payload'][:200]!r}" if args.payload else "")
        for r in rows) or "quarantine is empty"
    emit(args, rows, human)
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
    sp.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    sp.add_argument("--payload", action="store_true",
                    help="show the stored (size-capped) raw payloads too")
    sp.set_defaults(func=cmd_quarantine)
    from collector.web import commands as web_commands

    web_commands.register(sub, DEFAULT_CONFIG)
    evaluation_cli.register(sub, add)
    return p


def main(argv: list[str] | None = None) -> int:
    return run(_parser(), argv, failures=(sqlite3.Error,))


if __name__ == "__main__":
    sys.exit(main())
