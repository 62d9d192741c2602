"""The `opportunities`, `alerts` and `silence` commands of sparwatt-collector."""

from __future__ import annotations

import argparse
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector import settings
from collector.store import Reader, Store, now_ms
from sparwatt.configfile import ConfigError
from sparwatt.console import EXIT_FAIL, EXIT_OK, emit
from sparwatt.wire import ID_PATTERN, format_ts

ALERTS_SHOWN_DAYS = 7
AddCommand = Callable[..., argparse.ArgumentParser]


def load_inputs(config: settings.Evaluation) -> Any:
    """Validate the sites and alerts files a collector config names (ConfigError if bad),
    including the secret files the alert receivers read."""
    from collector import evaluation  # numpy, pandas and holidays: only when needed
    from collector.alerts import build_channels

    inputs = evaluation.load_inputs(config)
    if inputs.alerts is not None:
        build_channels(inputs.alerts, publish=lambda *_: None, source=str(config.alerts_file))
    return inputs


def _ts(ms: int | None) -> str:
    return "-" if ms is None else format_ts(datetime.fromtimestamp(ms / 1000, UTC))


def _config(args: argparse.Namespace) -> settings.CollectorConfig:
    from collector.cli import DEFAULT_CONFIG

    config = settings.load(args.config or DEFAULT_CONFIG)
    if args.db:
        config = config.model_copy(update={"storage": config.storage.model_copy(
            update={"db": Path(args.db)})})
    return config


def _db(args: argparse.Namespace) -> Path:
    path = Path(args.db) if args.db else _config(args).storage.db
    if not path.exists():
        raise ConfigError([f"{path}: no database yet (has the collector run?)"])
    return path


def _time(text: str, option: str) -> int:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError([f"{option}: not an ISO 8601 time: {text!r}"]) from None
    return int((ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp() * 1000)


def _num(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def cmd_opportunities(args: argparse.Namespace) -> int:
    if args.refresh:
        config = _config(args)
        inputs = load_inputs(config.evaluation)
        if inputs.sites is None:
            raise ConfigError([f"{args.config or 'collector config'}: --refresh needs "
                               "evaluation.sites_file"])
        _db(args)
        from collector.evaluation import EvaluationService, Inputs

        job = EvaluationService(config, Inputs(sites=inputs.sites))
        try:
            job.scan()
        finally:
            job.stop()
    with Reader(_db(args)) as reader:
        rows = reader.opportunities(args.site, None if args.status == "all" else args.status)
    rows.sort(key=lambda r: -(r["data"].get("annual_dkk") or 0.0))
    lines = []
    for r in rows:
        d = r["data"]
        lines.append(
            f"{r['site']}/{r['meter']} {r['kind']} [{r['status']}]: "
            f"{_num(d.get('annual_kwh'), ',.0f')} kWh/yr, {_num(d.get('annual_dkk'), ',.0f')} "
            f"DKK/yr, {_num(d.get('annual_kg_co2'), ',.0f')} kg CO2/yr; investment "
            f"{_num(d.get('investment_dkk'), ',.0f')} DKK, payback "
            f"{_num(d.get('payback_years'), '.1f')} yr, "
            f"{'rentabel' if d.get('rentabel') else 'not rentabel'}\n    {d.get('action', '')}")
    emit(args, rows, "\n".join(lines) or f"no {args.status} opportunities")
    return EXIT_OK


def cmd_alerts(args: argparse.Namespace) -> int:
    since = now_ms() - ALERTS_SHOWN_DAYS * 86_400_000
    with Reader(_db(args)) as reader:
        rows = reader.alerts(args.site, since_ms=since)
    lines = [f"{r['state']:<8} {r['severity']:<8} {r['labels'].get('alertname', '?'):<16} "
             f"{r['summary']}  since {_ts(r['started_ms'])}"
             + (f", resolved {_ts(r['resolved_ms'])}" if r["resolved_ms"] else "")
             for r in rows]
    emit(args, rows, "\n".join(lines) or f"no alerts in the last {ALERTS_SHOWN_DAYS} days")
    return EXIT_OK


def cmd_silence_add(args: argparse.Namespace) -> int:
    lo, hi = _time(args.from_, "--from"), _time(args.to, "--to")
    problems = [f"--{name} {value!r} is not a valid id" for name, value in
                (("site", args.site), ("meter", args.meter))
                if value is not None and not re.fullmatch(ID_PATTERN, value)]
    if hi <= lo:
        problems.append(f"--to {args.to} is not after --from {args.from_}")
    if hi <= now_ms():
        problems.append(f"--to {args.to} is in the past")
    if problems:
        raise ConfigError(problems)
    silence_id = secrets.token_hex(4)
    store = Store(_db(args))
    try:
        store.add_silence(silence_id, args.site, args.meter, lo, hi, args.reason)
    finally:
        store.close()
    emit(args, {"id": silence_id}, f"silence {silence_id} added")
    return EXIT_OK


def cmd_silence_list(args: argparse.Namespace) -> int:
    with Reader(_db(args)) as reader:
        rows = reader.silences(args.site, after_ms=now_ms())
    lines = [f"{r['id']}  {r['site']}/{r['meter'] or '*'}  {_ts(r['starts_ms'])} .. "
             f"{_ts(r['ends_ms'])}  {r['reason']}" for r in rows]
    emit(args, rows, "\n".join(lines) or "no current or coming silences")
    return EXIT_OK


def cmd_silence_remove(args: argparse.Namespace) -> int:
    store = Store(_db(args))
    try:
        removed = store.remove_silence(args.id)
    finally:
        store.close()
    emit(args, {"removed": removed}, f"silence {args.id} " + ("removed" if removed else
                                                               "not found"))
    return EXIT_OK if removed else EXIT_FAIL


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             add: AddCommand) -> None:
    """Add the commands to sparwatt-collector; `add` gives a command --json, --config, --db."""
    sp = add("opportunities", "savings opportunities: kWh, DKK and CO2 a year, payback")
    sp.add_argument("--site")
    sp.add_argument("--status", choices=["open", "closed", "all"], default="open")
    sp.add_argument("--refresh", action="store_true",
                    help="scan the stored data now (needs evaluation.sites_file)")
    sp.set_defaults(func=cmd_opportunities)
    sp = add("alerts", f"open alerts and those of the last {ALERTS_SHOWN_DAYS} days")
    sp.add_argument("--site")
    sp.set_defaults(func=cmd_alerts)
    silence = sub.add_parser("silence", help="mute alerts of a site or meter for a while",
                             description="mute alerts of a site or meter for a while")
    actions = silence.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--config", type=Path, help="collector config (default as for `status`)")
    common.add_argument("--db", help="database file, instead of the config's")
    sp = actions.add_parser("add", parents=[common], help="add a silence")
    sp.add_argument("--site", required=True)
    sp.add_argument("--meter", help="only this meter (default: the whole site)")
    sp.add_argument("--from", dest="from_", required=True, help="ISO 8601 start (UTC default)")
    sp.add_argument("--to", required=True, help="ISO 8601 end, exclusive")
    sp.add_argument("--reason", required=True)
    sp.set_defaults(func=cmd_silence_add)
    sp = actions.add_parser("list", parents=[common], help="current and coming silences")
    sp.add_argument("--site")
    sp.set_defaults(func=cmd_silence_list)
    sp = actions.add_parser("remove", parents=[common], help="remove a silence by id")
    sp.add_argument("id")
    sp.set_defaults(func=cmd_silence_remove)
