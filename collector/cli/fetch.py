"""sparwatt-collector fetch-eloverblik: a company's metering data from Eloverblik's API."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from collector.imports import fetch
from sparwatt.console import EXIT_OK, emit
from sparwatt.errors import ConfigError


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2025-01-31: {text!r}") from None


def cmd_fetch(args: argparse.Namespace) -> int:
    try:
        refresh = args.token_file.read_text().strip()
    except OSError as exc:
        why = f"{args.token_file}: cannot read the refresh token: {exc.strerror}"
        raise ConfigError([why]) from None
    if not refresh:
        raise ConfigError(
            [f"{args.token_file}: empty; put the refresh token from eloverblik.dk in it"]
        )
    if args.to <= args.from_:
        raise ConfigError(["--to must be after --from"])
    saved = fetch.fetch(
        refresh, args.point, args.from_, args.to, args.out,
        aggregation=args.aggregation, api=args.api, base_url=args.url,
    )  # fmt: skip
    emit(
        args,
        [str(p) for p in saved],
        "\n".join(f"saved {p}" for p in saved)
        + f"\nimport them with: sparwatt-collector import {args.out}/eloverblik-*.json",
    )
    return EXIT_OK


def register(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    sp = sub.add_parser(
        "fetch-eloverblik",
        help="fetch metering-point time series from Eloverblik's API into JSON files",
        description="A refresh token (made on eloverblik.dk, kept in a file) buys a data "
        "access token; the time series of the metering points are fetched ten at a time "
        "and saved as the API answers, for `sparwatt-collector import`.",
        parents=common,
    )
    sp.add_argument("--token-file", type=Path, required=True, help="file holding the refresh token")
    sp.add_argument("--point", action="append", required=True, metavar="GSRN", help="repeatable")
    sp.add_argument("--from", dest="from_", type=_date, required=True, help="first day")
    sp.add_argument("--to", type=_date, required=True, help="day after the last")
    sp.add_argument("--aggregation", default="Quarter", choices=fetch.AGGREGATIONS)
    sp.add_argument(
        "--api", default="thirdpartyapi", choices=("thirdpartyapi", "customerapi"),
        help="the third-party API (a consultant with the company's consent) or the "
        "customer API (the company's own token)",
    )  # fmt: skip
    sp.add_argument("--url", default=fetch.API_URL, help=argparse.SUPPRESS)
    sp.add_argument("--out", type=Path, default=Path("."), help="where to save the answers")
    sp.set_defaults(func=cmd_fetch)
