"""sparwatt-collector import: a company's utility data and backfills of readings."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from collector.analysis.site_context import Sites, load_sites
from collector.cli.common import config, db_path
from collector.imports import market, run, temperature
from collector.imports.readings import ReadingsFile
from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import policy_of
from collector.store import Store
from sparwatt.console import EXIT_OK, emit
from sparwatt.errors import ConfigError, SiteConfigError
from sparwatt.wire import ID_PATTERN

HELP = """Recognised by content (or named with --format):
  eloverblik-csv   Eloverblik time-series export (MålepunktsID;Fra_dato;...), Danish time
  eloverblik-json  Eloverblik API time series (result[].MyEnergyData_MarketDocument)
  csv              readings: ts,site,meter,quantity,value or ts,site,meter,<quantity>,...
  jsonl            readings messages as gateways publish them, one per line
  energidataservice  DayAheadPrices, Elspotprices or CO2Emis download (CSV or JSON):
                   checked and described; the sites file names it as it is
  temperature      outdoor temperature of --site, stored per hour: DMI metObs temp_dry
                   observations (GeoJSON, one feature per line, or CSV) or ts,celsius
Metering points (GSRN) map to meters under [sites.<id>.metering_points] in the sites file.
Each file is read and checked whole before anything of it is stored; importing a file
again stores nothing twice, and an interrupted import finishes when run again."""


def _settings(args: argparse.Namespace) -> tuple[Sites | None, IntervalPolicy]:
    """The sites file and interval policy: --sites, else the config's. No config is read
    with --db alone, nor for a dry run given --sites (it needs no database)."""
    cfg = config(args) if args.config or not (args.db or (args.dry_run and args.sites)) else None
    policy = policy_of(cfg.intervals) if cfg else IntervalPolicy()
    if args.sites:
        return load_sites(args.sites), policy
    sites_file = cfg.evaluation.sites_file if cfg else None
    return (load_sites(sites_file) if sites_file else None), policy


def _describe(report: dict[str, Any]) -> str:
    lines = [f"{report['file']} ({report['format']}): {report['rows']:,} rows"]
    for p in report.get("points", []):
        lines.append(
            f"  {p['gsrn']} -> {p['site']} {p['meter']}: {p['first']} .. {p['last']}, "
            f"{p['values']:,} values every {p['resolution_minutes']} min, {p['gaps']} missing, "
            f"{p['estimated']} estimated, {p['kwh']:,.1f} kWh"
        )
    if "meters" in report:
        lines.append(
            f"  {report['readings']:,} readings of {len(report['meters'])} meters, "
            f"{report['first']} .. {report['last']}"
        )
    if report.get("empty_rows"):
        lines.append(f"  {report['empty_rows']:,} rows without a value (not stored)")
    return "\n".join(lines)


def _market(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """An Energi Data Service file: checked and described; the sites file names it."""
    try:
        report = market.describe(path)
    except SiteConfigError as exc:
        raise ConfigError([str(exc)]) from None
    if not args.json:
        print(f"{path} (Energi Data Service): nothing to store, the sites file uses it as it is")
        for area, about in report["areas"].items():  # type: ignore[attr-defined]
            print(
                f"  {area}: {about['dataset']} {about['first']} .. {about['last']}, "
                f"{about['rows']:,} rows, mean {about['mean']} {about['unit']}"
            )
        print(f'  sites file: {report["sites_key"]} = "{path}" and price_area = "DK1" or "DK2"')
    return report


def _temperature(args: argparse.Namespace, path: Path, db: Store | None) -> dict[str, Any]:
    """Outdoor temperature of one site: hourly means, stored (unless a dry run)."""
    if not args.site or not re.fullmatch(ID_PATTERN, args.site):
        raise ConfigError([f"{path}: a temperature file needs --site naming its site"])
    found = temperature.read(path)
    report = {**temperature.summary(found), "site": args.site}
    if db is not None:
        stored = db.put_temperatures(args.site, found.start_ms, found.celsius)
        report.update(stored=stored, already_stored=found.values - stored)
    if not args.json:
        station = f" station {found.station}" if found.station else ""
        print(
            f"{path} ({found.source}{station}): {found.rows:,} rows, {found.values:,} hours "
            f"for {args.site}, {report['first']} .. {report['last']}, "
            f"{report['min_c']:.1f} .. {report['max_c']:.1f} C (mean {report['mean_c']:.1f})"
        )
        if db is None:
            print(f"  would store up to {found.values:,} hourly temperatures (dry run)")
        else:
            print(
                f"  stored {report['stored']:,} hourly temperatures, "
                f"{report['already_stored']:,} were already there"
            )
    return report


def cmd_import(args: argparse.Namespace) -> int:
    sites, policy = _settings(args)
    db = None if args.dry_run else Store(db_path(args, must_exist=False))
    reports = []
    try:
        for path in args.files:
            started = time.monotonic()
            run.readable(path)
            fmt = args.format or run.detect(path)
            if fmt == "energidataservice":
                reports.append(_market(args, path))
                continue
            if fmt == "temperature":
                reports.append(_temperature(args, path, db))
                continue
            file = run.read(path, args.format, args.gateway)
            where = (
                {}
                if isinstance(file, ReadingsFile)
                else run.targets(file, sites, args.site, args.meter, args.gateway)
            )
            report = run.summary(file, where)
            if db is not None:
                with tqdm(
                    total=file.values, unit=" values", unit_scale=True, disable=None,
                    desc=path.name, file=sys.stderr, leave=False,
                ) as bar:  # fmt: skip
                    done = run.store(db, file, where, policy, bar.update)
                seconds = time.monotonic() - started
                report.update(
                    stored=done.stored, already_stored=done.kept, seconds=round(seconds, 2)
                )
            reports.append(report)
            if not args.json:
                print(_describe(report))
                if db is not None:
                    print(
                        f"  stored {report['stored']:,} values, {report['already_stored']:,} were "
                        f"already there ({report['seconds']:.1f} s)"
                    )
                else:
                    print(f"  would store up to {report['values']:,} values (dry run)")
    finally:
        if db is not None:
            db.close()
    if args.json:
        emit(args, reports, "")
    return EXIT_OK


def register(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    sp = sub.add_parser(
        "import",
        help="import utility data (Eloverblik) or backfill readings from files",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=common,
    )
    sp.add_argument("files", type=Path, nargs="+", metavar="FILE")
    sp.add_argument("--format", choices=run.FORMATS, help="the files' format (default: recognise)")
    sp.add_argument(
        "--site", help="site of a metering point the sites file does not map, or of temperatures"
    )
    sp.add_argument("--meter", help="meter of a metering point the sites file does not map")
    sp.add_argument(
        "--gateway",
        default="utility",
        help="gateway part of the meter's name (default 'utility'; readings CSVs without a "
        "gateway column use it too)",
    )
    sp.add_argument("--sites", type=Path, help="sites file, instead of the config's")
    sp.add_argument(
        "--dry-run",
        action="store_true",
        help="check and report what would be stored; store nothing",
    )
    sp.set_defaults(func=cmd_import)
