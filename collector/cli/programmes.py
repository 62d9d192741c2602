"""`sparwatt-collector programme list | report`: partnership programmes and their yearly
report."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from collector.analysis import Sites, load_sites
from collector.cli.common import config, db_path, num
from collector.evaluation.programmes import (
    COMPARED,
    Figures,
    ProgrammeReport,
    current_year,
    programme_report,
    report_csv,
)
from collector.store import Reader, now_ms
from sparwatt.console import EXIT_OK, emit
from sparwatt.errors import ConfigError


def _inputs(args: argparse.Namespace, database: bool) -> tuple[Sites, list[str]]:
    """The sites file (--sites, else the config's) and the sub-meters left out of totals
    (the config's; none when --sites and --db stand in for the config)."""
    needed = not args.sites or (database and not args.db)
    cfg = config(args) if args.config or needed else None
    path = args.sites or (cfg.evaluation.sites_file if cfg else None)
    if path is None:
        raise ConfigError(
            [f"{args.config or 'collector config'}: programmes need evaluation.sites_file"]
        )
    return load_sites(path), list(cfg.evaluation.dedicated_meters) if cfg else []


def cmd_list(args: argparse.Namespace) -> int:
    sites, _ = _inputs(args, database=False)
    rows = [{"id": pid, **p.model_dump(mode="json")} for pid, p in sites.programmes.items()]
    lines = [
        f"{r['id']}: {r['name']}, baseline {r['baseline_year']}, target "
        + ", ".join(f"{k} {v * 100:+.0f} %" for k, v in r["target"].items() if v is not None)
        + f"; {len(r['sites'])} companies: {', '.join(r['sites'])}"
        for r in rows
    ]
    emit(args, rows, "\n".join(lines) or "no programmes in the sites file")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    sites, sub_meters = _inputs(args, database=True)
    if sites.programme(args.id) is None:
        known = ", ".join(sites.programmes) or "none"
        raise ConfigError([f"programme {args.id!r}: not in the sites file (programmes: {known})"])
    now = now_ms()
    year = args.year if args.year is not None else current_year(sites, now)
    with Reader(db_path(args), sub_meters) as reader:
        try:
            report = programme_report(reader, sites, args.id, year, now)
        except ValueError as exc:
            raise ConfigError([f"--year {year}: {exc}"]) from None
    if args.csv:
        Path(args.csv).write_text(report_csv(report, sites), encoding="utf-8")
    emit(args, dataclasses.asdict(report), _human(report, args.csv))
    return EXIT_OK


def _pct(share: float | None, digits: int = 1, sign: str = "+") -> str:
    return "-" if share is None else f"{share * 100:{sign}.{digits}f} %"


def _row(name: str, f: Figures | None, status: str, verified: tuple[Any, Any]) -> str:
    if f is None:
        return f"{name:<24} {status}"
    return (
        f"{name:<24} {num(f.baseline_kwh, ',.0f'):>12} {num(f.year_kwh, ',.0f'):>12} "
        f"{_pct(f.energy_change):>9} {_pct(f.energy_progress, 0, '-'):>7} "
        f"{num(f.baseline_kg_co2, ',.0f'):>10} {num(f.year_kg_co2, ',.0f'):>10} "
        f"{_pct(f.co2_change):>9} {_pct(f.co2_progress, 0, '-'):>7} "
        f"{num(verified[0], ',.0f'):>9} {num(verified[1], ',.0f'):>9}  {status}"
    )


def _human(report: ProgrammeReport, csv_file: str | None) -> str:
    period = "whole year" if report.complete else "year to date"
    lines = [
        f"{report.name} ({report.programme_id}): {report.year} {period} against the same "
        f"period of {report.baseline_year}; target energy {_pct(report.target_energy, 0)}, "
        f"CO2 {_pct(report.target_co2, 0)}",
        f"{'company':<24} {'base kWh':>12} {'year kWh':>12} {'change':>9} {'target':>7} "
        f"{'base kg':>10} {'year kg':>10} {'CO2 chg':>9} {'target':>7} "
        f"{'verif kWh':>9} {'verif kg':>9}",
    ]
    for c in report.companies:
        status = "" if c.status == COMPARED else c.note
        lines.append(_row(c.site, c.figures, status, (c.verified_kwh_year, c.verified_kg_co2_year)))
    groups = [report.total] if report.total else []
    for g in (*groups, *report.sectors):
        label = "total" if g is report.total else f"sector {g.name}"
        lines.append(
            _row(
                label,
                g.figures,
                f"{g.compared} of {g.companies} compared",
                (g.verified_kwh_year, g.verified_kg_co2_year),
            )
        )
    lines.append("'target': share of the target's reduction reached; 'verif': verified savings")
    if csv_file:
        lines.append(f"CSV written to {csv_file}")
    return "\n".join(lines)


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add `programme list` and `programme report`; `parents` give --json, --config, --db."""
    sites = argparse.ArgumentParser(add_help=False)
    sites.add_argument("--sites", type=Path, help="sites file, instead of the config's")
    group = sub.add_parser(
        "programme",
        help="partnership programmes: companies against their baseline year and targets",
        description="partnership programmes: companies against their baseline year and targets",
    )
    actions = group.add_subparsers(dest="action", required=True)
    sp = actions.add_parser(
        "list", parents=[*parents, sites], help="the programmes of the sites file"
    )
    sp.set_defaults(func=cmd_list)
    sp = actions.add_parser(
        "report",
        parents=[*parents, sites],
        help="a programme's yearly report: energy and CO2 per company against the baseline",
    )
    sp.add_argument("id", help="programme id ([programmes.<id>] in the sites file)")
    sp.add_argument("--year", type=int, help="the year to report (default: this year, to date)")
    sp.add_argument("--csv", metavar="FILE", help="also write the report as CSV to FILE")
    sp.set_defaults(func=cmd_report)
