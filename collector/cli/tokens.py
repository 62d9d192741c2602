"""`sparwatt-collector token add | list | revoke`: the web API's access tokens."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from typing import Any

from collector.cli.common import command_group, database_exists, db_path
from collector.store import Reader, Store, TokenRow, now_ms
from collector.store.sql import describe
from collector.web import auth
from sparwatt.console import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from sparwatt.errors import TokenError


def _when(ms: int | None) -> str:
    return (
        "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    )


def _positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 < days <= 3650:
        raise argparse.ArgumentTypeError(f"{text} days: give more than 0 and at most 3650")
    return days


def cmd_add(args: argparse.Namespace) -> int:
    role = auth.Role(args.role)
    try:
        sites = auth.check_grant(role, args.site or [])
    except TokenError as exc:
        print(f"token add: {exc}", file=sys.stderr)
        return EXIT_USAGE
    token = auth.new_token()
    expires_ms = (
        None if args.expires_days is None else now_ms() + round(args.expires_days * 86_400_000)
    )
    store = Store(db_path(args, must_exist=False))
    try:
        token_id = store.add_token(args.name, role.value, sites, auth.digest(token), expires_ms)
    finally:
        store.close()
    data = {
        "id": token_id,
        "name": args.name,
        "role": role.value,
        "sites": sites,
        "expires_ms": expires_ms,
        "token": token,
    }
    if args.json:
        print(json.dumps(data))
    else:
        until = "until revoked" if expires_ms is None else f"until {_when(expires_ms)}"
        print(
            f"token {token_id} for {args.name!r} ({role.value}"
            f"{', sites: ' + ', '.join(sites) if sites else ', every site'}; valid {until})"
            f":\n{token}\nIt is shown only now; the collector keeps only its hash."
        )
    return EXIT_OK


def _state(t: TokenRow, now: int) -> str:
    if t.revoked_ms:
        return f"revoked {_when(t.revoked_ms)}"
    if t.expires_ms is None:
        return "active"
    return (
        f"expired {_when(t.expires_ms)}"
        if now >= t.expires_ms
        else f"active until {_when(t.expires_ms)}"
    )


def cmd_list(args: argparse.Namespace) -> int:
    path = db_path(args, must_exist=False)
    if not database_exists(path):
        print(f"{describe(path)}: no database yet", file=sys.stderr)
        return EXIT_USAGE
    Store(path).close()  # brings a database made by an older collector up to date first
    with Reader(path) as reader:
        rows = reader.tokens()
    if args.json:
        print(json.dumps([dataclasses.asdict(t) for t in rows]))
        return EXIT_OK
    now = now_ms()
    for t in rows:
        print(
            f"{t.id:>4}  {t.name:<24} {t.role:<10} "
            f"{','.join(t.sites) or '*':<30} created {_when(t.created_ms)}  "
            f"{_state(t, now)}"
        )
    if not rows:
        print("no tokens")
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    store = Store(db_path(args, must_exist=False))
    try:
        done = store.revoke_token(args.id)
    finally:
        store.close()
    if args.json:
        print(json.dumps({"id": args.id, "revoked": done}))
    else:
        print(f"token {args.id} revoked" if done else f"token {args.id}: no such active token")
    return EXIT_OK if done else EXIT_FAIL


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `token` command group; `parents` give each command --json, --config, --db."""
    add = command_group(
        sub,
        "token",
        "create, list and revoke web/API access tokens",
        "Tokens for the web pages and HTTP API. Roles: admin "
        "(every site), consultant (assigned sites), company (its own site).",
        parents,
    )

    sp = add("add", "create a token and print it once")
    sp.add_argument("--role", required=True, choices=[r.value for r in auth.Role])
    sp.add_argument("--site", action="append", help="a site it may see (repeatable)")
    sp.add_argument("--name", required=True, help="who or what holds it")
    sp.add_argument(
        "--expires-days",
        type=_positive_days,
        metavar="DAYS",
        help="stop working this many days from now (default: until revoked)",
    )
    sp.set_defaults(func=cmd_add)
    sp = add("list", "every token: id, name, role, sites, state and expiry (never the token)")
    sp.set_defaults(func=cmd_list)
    sp = add("revoke", "revoke a token; it stops working at the next request")
    sp.add_argument("id", type=int)
    sp.set_defaults(func=cmd_revoke)
