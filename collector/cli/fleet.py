"""`sparwatt-collector gateway list`: every gateway's state, versions, outbox and meter polling."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from collector import fleet
from collector.cli.common import reader
from sparwatt.console import EXIT_OK, emit
from sparwatt.timeutil import now_ms


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _meters(row: fleet.FleetGateway) -> str:
    answering = sum(m.state == "ok" for m in row.meters)
    return f"{answering}/{len(row.meters)}"


def table(rows: list[fleet.FleetGateway], now: int) -> str:
    """The human listing: one line per gateway, then one per meter and its other errors."""
    if not rows:
        return "no gateways yet"
    head = (
        f"{'SITE/GATEWAY':<28} {'STATE':<8} {'LAST SEEN':<10} {'VERSION':<10} {'CONFIG':<13} "
        f"{'OUTBOX':>6} {'OLDEST':>7} {'METERS':>6}"
    )
    lines = [head]
    for r in rows:
        seen = "never" if r.last_seen_ms is None else _age((now - r.last_seen_ms) / 1000) + " ago"
        oldest = _age(r.outbox_oldest_age_s) if r.outbox_depth else "-"
        lines.append(
            f"{r.site + '/' + r.gateway:<28} {r.state:<8} {seen:<10} {r.version or '-':<10} "
            f"{r.config_version or '-':<13} "
            f"{'-' if r.outbox_depth is None else r.outbox_depth:>6} {oldest:>7} "
            f"{_meters(r):>6}"
        )
        for m in r.meters:
            ratio = "-" if m.success_ratio is None else f"{100 * m.success_ratio:.1f} %"
            latency = "-" if m.latency_ms is None else f"{m.latency_ms:.0f} ms"
            lines.append(
                f"    {m.meter:<20} {m.state:<8} ok {m.ok}, failed {m.failed} ({ratio}), "
                f"latency {latency}" + (f", last error: {m.last_error}" if m.last_error else "")
            )
        own = tuple(f"{m.meter}: " for m in r.meters)
        lines += [f"    ! {e}" for e in r.errors if not e.startswith(own)]
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    now = now_ms()
    with reader(args) as db:
        rows = fleet.fleet(db, now, [args.site] if args.site else None)
    emit(args, [asdict(r) for r in rows], table(rows, now))
    return EXIT_OK


def register_list(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add `list` to the `gateway` command group; `parents` give --json, --config and --db."""
    text = "every gateway: state, last seen, versions, outbox and meter polling"
    sp: argparse.ArgumentParser = sub.add_parser(
        "list", help=text, description=text, parents=parents
    )
    sp.add_argument("--site", help="only this site's gateways")
    sp.set_defaults(func=cmd_list)
