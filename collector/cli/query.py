"""The query commands of sparwatt-collector: latest, status, export and quarantine."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
from typing import Any

from collector.cli.common import config, db_path, parse_time, reader, show_ts
from collector.intervals.rollup import CounterStats, GaugeStats, Stats
from collector.store import (
    GatewayRow,
    LatestRow,
    QuarantineRow,
    Reader,
    Stat,
    StorageFigures,
    now_ms,
)
from sparwatt.console import EXIT_OK, emit
from sparwatt.errors import ConfigError

STATS_STALE_MS = 15_000


def cmd_latest(args: argparse.Namespace) -> int:
    with reader(args) as db:
        rows = db.latest(args.site)
    human = (
        "\n".join(
            f"{r.site:<16} {r.gateway:<8} {r.meter:<14} {r.quantity:<30}"
            f" {r.value:>14.3f}  {show_ts(r.ts_ms)}"
            for r in rows
        )
        or "no readings yet"
    )
    emit(args, [_latest_json(r) for r in rows], human)
    return EXIT_OK


def _latest_json(row: LatestRow) -> dict[str, object]:
    return {
        "site": row.site,
        "gateway": row.gateway,
        "meter": row.meter,
        "quantity": row.quantity,
        "value": row.value,
        "ts": show_ts(row.ts_ms),
    }


def storage_json(figures: StorageFigures, retention_days: float | None) -> dict[str, Any]:
    """What the database takes now and, at this ingest, will take at the raw retention."""
    per_value = figures.raw_bytes / figures.raw_values if figures.raw_values else None
    per_day = figures.raw_values / figures.raw_days if figures.raw_days else None
    meter_years = figures.rollup_meter_days / 365
    out: dict[str, Any] = {
        **dataclasses.asdict(figures),
        "raw_bytes_per_value": per_value,
        "rollup_bytes_per_meter_year": figures.rollup_bytes / meter_years if meter_years else None,
        "raw_retention_days": retention_days,
        "projected_raw_bytes": (
            per_value * per_day * retention_days
            if per_value and per_day and retention_days
            else None
        ),
    }
    return out


def _storage_lines(s: dict[str, Any]) -> list[str]:
    mb = 1e6
    lines = [
        f"database: {s['db_bytes'] / mb:,.1f} MB (raw readings {s['raw_bytes'] / mb:,.1f} MB, "
        f"15-minute history {s['rollup_bytes'] / mb:,.1f} MB)"
    ]
    if s["raw_in"]:
        lines = [
            f"database: {s['db_bytes'] / mb:,.1f} MB (15-minute history "
            f"{s['rollup_bytes'] / mb:,.1f} MB)",
            f"raw readings: in {s['raw_in']} ({s['raw_bytes'] / mb:,.1f} MB on its disk, "
            "kept for its retention)",
        ]
    if s["raw_bytes_per_value"]:
        lines.append(f"raw readings: {s['raw_bytes_per_value']:.1f} bytes per value")
    if s["projected_raw_bytes"]:
        lines.append(
            f"projected raw readings at {s['raw_retention_days']:g} days' retention: "
            f"{s['projected_raw_bytes'] / mb:,.1f} MB"
        )
    if s["rollup_bytes_per_meter_year"]:
        lines.append(
            f"15-minute history: {s['rollup_bytes_per_meter_year'] / mb:,.1f} MB per meter-year"
        )
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    path = db_path(args)
    try:
        retention: float | None = config(args).storage.raw_retention_days
    except ConfigError:  # --db without a config: no retention to project to
        retention = None
    with reader(args) as db:
        storage = storage_json(db.storage(path, now_ms()), retention)
        counters = db.counters()
        stats = db.stats()
        data: dict[str, Any] = {
            "stored": counters.get("stored", 0),
            "duplicates": counters.get("duplicates", 0),
            "messages": counters.get("messages", 0),
            "readings": counters.get("readings", 0),
            "quarantined": db.quarantine_by_reason(),
            "gaps": [dataclasses.asdict(g) for g in db.gaps()],
            "gateways": [_gateway_json(g) for g in db.gateways()],
            "readings_kept": db.reading_count(),
            "storage": storage,
        }
    rate = stats.get("ingest_readings_per_s")
    # the collector refreshes these every few seconds; older figures mean it is not running
    live = rate is not None and now_ms() - rate.updated_ms < STATS_STALE_MS
    data["ingest_readings_per_s"] = rate.value if live and rate else None
    data["stats_updated"] = show_ts(rate.updated_ms) if rate else None
    sink_on = stats.get("sink_enabled", Stat(0.0, 0)).value
    data["sink"] = (
        {
            name: stats.get(f"sink_{name}", Stat(None, 0)).value
            for name in ("backlog", "written", "dropped", "failures", "last_error")
        }
        if sink_on
        else None
    )
    lines = [
        "ingest rate: "
        + (
            f"{data['ingest_readings_per_s']:.1f} readings/s"
            if live
            else "collector not running" + (f" (last seen {data['stats_updated']})" if rate else "")
        ),
        f"stored values: {data['stored']} (duplicates ignored: {data['duplicates']}), "
        f"kept now: {data['readings_kept']}",
        f"messages: {data['messages']} with {data['readings']} readings",
        "quarantined: " + (", ".join(f"{k}={v}" for k, v in data["quarantined"].items()) or "none"),
        f"seq gaps: {len(data['gaps'])}",
        *_storage_lines(storage),
    ]
    lines += [
        f"  gap {g['site']}/{g['gateway']} seq {g['from_seq']}-{g['to_seq']}: "
        f"{show_ts(g['after_ms'])} .. {show_ts(g['before_ms'])}"
        for g in data["gaps"][:20]
    ]
    if data["sink"] is not None:
        sink = data["sink"]
        lines.append(
            f"influxdb sink: backlog {int(sink['backlog'] or 0)}, written "
            f"{int(sink['written'] or 0)}, dropped {int(sink['dropped'] or 0)}, "
            f"failed writes {int(sink['failures'] or 0)}"
            + (f", last error: {sink['last_error']}" if sink["last_error"] else "")
        )
    else:
        lines.append("influxdb sink: off")
    lines += [
        f"gateway {g['site']}/{g['gateway']}: {g['state'] or 'unknown'}, last seq "
        f"{g['last_seq']}, last reading {show_ts(g['last_seen_ms'])}"
        for g in data["gateways"]
    ]
    emit(args, data, "\n".join(lines))
    return EXIT_OK


def _gateway_json(g: GatewayRow) -> dict[str, object]:
    """A gateway as `status --json` has always shown it: without its status message."""
    return {
        "site": g.site,
        "gateway": g.gateway,
        "last_seq": g.last_seq,
        "last_seen_ms": g.last_seen_ms,
        "state": g.state,
        "state_ms": g.state_ms,
        "health": g.health,
    }


def cmd_export(args: argparse.Namespace) -> int:
    lo, hi = parse_time(args.from_, "--from"), parse_time(args.to, "--to")
    if hi <= lo:
        raise ConfigError([f"--to {args.to} is not after --from {args.from_}"])
    with reader(args) as db:
        if args.interval == "raw":
            header = ["gateway", "meter", "quantity", "ts", "value"]
            rows = [[g, m, q, show_ts(ts), v] for g, m, q, ts, v in db.raw(args.site, lo, hi)]
        else:
            header, rows = _intervals_table(db, args.site, lo, hi)
    if args.format == "json":
        print(json.dumps([dict(zip(header, r, strict=True)) for r in rows]))
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.write(out.getvalue())
    return EXIT_OK


INTERVAL_COLUMNS = [
    "gateway",
    "meter",
    "start",
    "energy_import_kwh",
    "import_estimated",
    "energy_export_kwh",
    "export_estimated",
    "mean_power_w",
    "max_power_w",
]


def _intervals_table(db: Reader, site: str, lo: int, hi: int) -> tuple[list[str], list[list[Any]]]:
    """One row per meter and 15 minutes: energy and power as always, then one column for
    every other quantity the site's meters report (a gauge's mean, a counter's energy)."""
    ids = {(m.gateway, m.meter): m.meter_id for m in db.meter_index() if m.site == site}
    history = {key: dict(db.rollups(meter_id, lo, hi)) for key, meter_id in ids.items()}
    more = sorted(
        {q for by_start in history.values() for stats in by_start.values() for q in stats}
        - set(INTERVAL_COLUMNS)
        - {"power_w"}
    )
    rows = []
    for g, m, s, e, est, x, xest, mp, xp in db.energy_intervals(site, lo, hi):
        stats = history.get((g, m), {}).get(s, {})
        extra = [_figure(stats.get(q)) for q in more]
        rows.append([g, m, show_ts(s), e, bool(est), x, bool(xest), mp, xp, *extra])
    return INTERVAL_COLUMNS + more, rows


def _figure(stats: Stats | None) -> float | None:
    if isinstance(stats, GaugeStats):
        return stats.mean
    return stats.energy if isinstance(stats, CounterStats) else None


def cmd_quarantine(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ConfigError([f"--limit must be at least 1, got {args.limit}"])
    with reader(args) as db:
        rows = [_quarantine_json(r, args.payload) for r in db.quarantine(args.limit, args.payload)]
    human = (
        "\n".join(
            f"{r['received']} {r['reason']:<20} {r['topic'][:60]}  {r['detail'][:100]}"
            + (f"\n    payload ({r['size']} bytes): {r['payload'][:200]!r}" if args.payload else "")
            for r in rows
        )
        or "quarantine is empty"
    )
    emit(args, rows, human)
    return EXIT_OK


def _quarantine_json(row: QuarantineRow, with_payload: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "topic": row.topic,
        "reason": row.reason,
        "detail": row.detail,
        "size": row.size,
    }
    if with_payload:
        out["payload"] = (row.payload or b"").decode("utf-8", "replace")
    out["received"] = show_ts(row.received_ms)
    return out


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the query commands; `parents` give each --json, --config and --db."""

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = sub.add_parser(
            name, help=help_text, description=help_text, parents=parents
        )
        return sp

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
    sp.add_argument(
        "--payload", action="store_true", help="show the stored (size-capped) raw payloads too"
    )
    sp.set_defaults(func=cmd_quarantine)
