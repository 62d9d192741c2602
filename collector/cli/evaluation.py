"""The `opportunities`, `alerts` and `silence` commands of sparwatt-collector."""

from __future__ import annotations

import argparse
import dataclasses
import re
import secrets
import sys
from typing import Any

from collector.cli.common import config, db_path, num, parse_time, show_ts
from collector.evaluation.inputs import check_inputs
from collector.store import Reader, Store, now_ms
from sparwatt.console import EXIT_FAIL, EXIT_OK, emit
from sparwatt.errors import ConfigError
from sparwatt.wire import ID_PATTERN

ALERTS_SHOWN_DAYS = 7


def cmd_opportunities(args: argparse.Namespace) -> int:
    if args.refresh:
        cfg = config(args)
        inputs = check_inputs(cfg.evaluation)
        if inputs.sites is None:
            raise ConfigError(
                [f"{args.config or 'collector config'}: --refresh needs evaluation.sites_file"]
            )
        db_path(args)
        from collector.evaluation.inputs import Inputs
        from collector.evaluation.scheduler import EvaluationService

        job = EvaluationService(cfg, Inputs(sites=inputs.sites))
        try:
            result = job.scan()
        finally:
            job.stop()
        for skip in result.skipped if result else []:
            print(
                f"{skip.site}/{skip.meter}: {skip.detector} not judged: {skip.reason}",
                file=sys.stderr,
            )
    with Reader(db_path(args)) as reader:
        rows = reader.opportunities(args.site, None if args.status == "all" else args.status)
    rows.sort(key=lambda r: -_number(r.data.get("annual_dkk")))
    lines = []
    for r in rows:
        d = r.data
        lines.append(
            f"{r.site}/{r.meter} {r.kind} [{r.status}]: "
            f"{num(d.get('annual_kwh'), ',.0f')} kWh/yr, {num(d.get('annual_dkk'), ',.0f')} "
            f"DKK/yr, {num(d.get('annual_kg_co2'), ',.0f')} kg CO2/yr; investment "
            f"{num(d.get('investment_dkk'), ',.0f')} DKK, payback "
            f"{num(d.get('payback_years'), '.1f')} yr, "
            f"{'rentabel' if d.get('rentabel') else 'not rentabel'}\n    {d.get('action', '')}"
        )
    emit(
        args,
        [dataclasses.asdict(r) for r in rows],
        "\n".join(lines) or f"no {args.status} opportunities",
    )
    return EXIT_OK


def _number(value: object) -> float:
    """A figure from an opportunity's stored JSON, 0 when it has none."""
    return float(value) if isinstance(value, int | float) else 0.0


def cmd_alerts(args: argparse.Namespace) -> int:
    since = now_ms() - ALERTS_SHOWN_DAYS * 86_400_000
    with Reader(db_path(args)) as reader:
        rows = reader.alerts(args.site, since_ms=since)
    lines = [
        f"{r.state:<8} {r.severity:<8} {r.labels.get('alertname', '?'):<16} "
        f"{r.summary}  since {show_ts(r.started_ms)}"
        + (f", resolved {show_ts(r.resolved_ms)}" if r.resolved_ms else "")
        for r in rows
    ]
    emit(
        args,
        [dataclasses.asdict(r) for r in rows],
        "\n".join(lines) or f"no alerts in the last {ALERTS_SHOWN_DAYS} days",
    )
    return EXIT_OK


def cmd_silence_add(args: argparse.Namespace) -> int:
    lo, hi = parse_time(args.from_, "--from"), parse_time(args.to, "--to")
    problems = [
        f"--{name} {value!r} is not a valid id"
        for name, value in (("site", args.site), ("meter", args.meter))
        if value is not None and not re.fullmatch(ID_PATTERN, value)
    ]
    if hi <= lo:
        problems.append(f"--to {args.to} is not after --from {args.from_}")
    if hi <= now_ms():
        problems.append(f"--to {args.to} is in the past")
    if problems:
        raise ConfigError(problems)
    silence_id = secrets.token_hex(4)
    store = Store(db_path(args))
    try:
        store.add_silence(silence_id, args.site, args.meter, lo, hi, args.reason)
    finally:
        store.close()
    emit(args, {"id": silence_id}, f"silence {silence_id} added")
    return EXIT_OK


def cmd_silence_list(args: argparse.Namespace) -> int:
    with Reader(db_path(args)) as reader:
        rows = reader.silences(args.site, after_ms=now_ms())
    lines = [
        f"{r.id}  {r.site}/{r.meter or '*'}  {show_ts(r.starts_ms)} .. "
        f"{show_ts(r.ends_ms)}  {r.reason}"
        for r in rows
    ]
    emit(
        args,
        [dataclasses.asdict(r) for r in rows],
        "\n".join(lines) or "no current or coming silences",
    )
    return EXIT_OK


def cmd_silence_remove(args: argparse.Namespace) -> int:
    store = Store(db_path(args))
    try:
        removed = store.remove_silence(args.id)
    finally:
        store.close()
    emit(
        args, {"removed": removed}, f"silence {args.id} " + ("removed" if removed else "not found")
    )
    return EXIT_OK if removed else EXIT_FAIL


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the commands; `parents` give each --json, --config and --db."""

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = sub.add_parser(
            name, help=help_text, description=help_text, parents=parents
        )
        return sp

    sp = add("opportunities", "savings opportunities: kWh, DKK and CO2 a year, payback")
    sp.add_argument("--site")
    sp.add_argument("--status", choices=["open", "closed", "all"], default="open")
    sp.add_argument(
        "--refresh",
        action="store_true",
        help="scan the stored data now (needs evaluation.sites_file)",
    )
    sp.set_defaults(func=cmd_opportunities)
    sp = add("alerts", f"open alerts and those of the last {ALERTS_SHOWN_DAYS} days")
    sp.add_argument("--site")
    sp.set_defaults(func=cmd_alerts)
    silence = sub.add_parser(
        "silence",
        help="mute alerts of a site or meter for a while",
        description="mute alerts of a site or meter for a while",
    )
    actions = silence.add_subparsers(dest="action", required=True)
    sp = actions.add_parser("add", parents=parents, help="add a silence")
    sp.add_argument("--site", required=True)
    sp.add_argument("--meter", help="only this meter (default: the whole site)")
    sp.add_argument("--from", dest="from_", required=True, help="ISO 8601 start (UTC default)")
    sp.add_argument("--to", required=True, help="ISO 8601 end, exclusive")
    sp.add_argument("--reason", required=True)
    sp.set_defaults(func=cmd_silence_add)
    sp = actions.add_parser("list", parents=parents, help="current and coming silences")
    sp.add_argument("--site")
    sp.set_defaults(func=cmd_silence_list)
    sp = actions.add_parser("remove", parents=parents, help="remove a silence by id")
    sp.add_argument("id")
    sp.set_defaults(func=cmd_silence_remove)
