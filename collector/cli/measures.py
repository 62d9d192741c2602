"""`sparwatt-collector measure add | list | edit | remove | verify`: measures a company took
and their verified savings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from collector.analysis.site_context import Sites, load_sites
from collector.cli.common import command_group, config, db_path, num
from collector.evaluation import measures, verification
from collector.store import MeasureRow, Reader, Store, now_ms
from sparwatt.console import EXIT_FAIL, EXIT_OK, emit

# the option that sets each field, for one-line messages naming what to fix
OPTIONS = {
    "site": "--site",
    "meters": "--meter",
    "kind": "--kind",
    "title": "--title",
    "installed_from": "--installed",
    "installed_to": "--installed-to",
    "investment_dkk": "--investment-dkk",
    "expected_kwh_year": "--expected-kwh-year",
    "opportunity_id": "--opportunity",
    "model": "--model",
    "exclusions": "--exclude",
    "note": "--note",
}
CLEARABLE = {
    "installed-to": "installed_to",
    "investment-dkk": "investment_dkk",
    "expected-kwh-year": "expected_kwh_year",
    "opportunity": "opportunity_id",
    "exclusions": "exclusions",
    "note": "note",
}


def _given(args: argparse.Namespace, source: str) -> dict[str, Any]:
    """The fields the command line sets, as MeasureInput takes them."""
    out: dict[str, Any] = {
        field: getattr(args, attr)
        for field, attr in (
            ("site", "site"), ("meters", "meter"), ("kind", "kind"), ("title", "title"),
            ("installed_from", "installed"), ("installed_to", "installed_to"),
            ("investment_dkk", "investment_dkk"), ("expected_kwh_year", "expected_kwh_year"),
            ("opportunity_id", "opportunity"), ("model", "model"), ("note", "note"),
        )
        if getattr(args, attr, None) is not None
    }  # fmt: skip
    if args.exclude is not None:
        out["exclusions"] = [
            measures.parse_exclusion(text, source, OPTIONS["exclusions"]) for text in args.exclude
        ]
    return out


def _open(args: argparse.Namespace) -> Store:
    """The database, brought up to date (a measure needs the site's meters in it)."""
    return Store(db_path(args))


def _checked(store: Store, data: dict[str, Any], source: str) -> measures.MeasureInput:
    with Reader(store.path) as reader:
        site = str(data.get("site", ""))
        return measures.validate_measure(
            data,
            measures.site_meters(reader, site),
            measures.site_opportunities(reader, site),
            source=source,
            labels=OPTIONS,
        )


def _line(row: MeasureRow) -> str:
    until = f"..{row.installed_to}" if row.installed_to else ""
    expected = (
        "" if row.expected_kwh_year is None else f", expected {row.expected_kwh_year:,.0f} kWh/yr"
    )
    return (
        f"{row.id}  {row.site}  {row.installed_from}{until}  {row.kind}: {row.title} "
        f"(meters {', '.join(row.meters)}; model {row.model}{expected})"
    )


def cmd_add(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        measure = _checked(store, _given(args, "measure add"), "measure add")
        row = measures.to_row(measure, now_ms())
        store.put_measure(row)
    finally:
        store.close()
    emit(args, measures.as_json(row), f"measure {row.id} added: {_line(row)}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    _open(args).close()  # a database made by an older collector gets the measure table
    with Reader(db_path(args)) as reader:
        rows = reader.measures(args.site)
    emit(
        args,
        [measures.as_json(r) for r in rows],
        "\n".join(map(_line, rows)) or "no measures recorded",
    )
    return EXIT_OK


def cmd_edit(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        with Reader(store.path) as reader:
            found = reader.measure(args.id)
        if found is None:
            print(f"measure {args.id}: no such measure", file=sys.stderr)
            return EXIT_FAIL
        data = {**measures.as_input(found), **_given(args, "measure edit")}
        for name in args.clear or []:
            data[CLEARABLE[name]] = [] if name == "exclusions" else None
        measure = _checked(store, data, "measure edit")
        row = measures.to_row(measure, now_ms(), found.id, found.created_ms)
        store.put_measure(row)
    finally:
        store.close()
    emit(args, measures.as_json(row), f"measure {row.id} changed: {_line(row)}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        removed = store.remove_measure(args.id)
    finally:
        store.close()
    emit(
        args,
        {"id": args.id, "removed": removed},
        f"measure {args.id} " + ("removed" if removed else "not found"),
    )
    return EXIT_OK if removed else EXIT_FAIL


def _sites(args: argparse.Namespace) -> Sites:
    """The sites file (--sites, else the config's): a site's time zone, holidays, prices and
    CO2. Without one, every site has the defaults."""
    if args.sites:
        return load_sites(args.sites)
    if args.config or not args.db:
        sites_file = config(args).evaluation.sites_file
        if sites_file:
            return load_sites(sites_file)
    return Sites()


def cmd_verify(args: argparse.Namespace) -> int:
    sites = _sites(args)
    _open(args).close()
    with Reader(db_path(args)) as reader:
        found = reader.measure(args.id)
        if found is None:
            print(f"measure {args.id}: no such measure", file=sys.stderr)
            return EXIT_FAIL
        result = verification.verify(reader, sites, found, now_ms())
    described = verification.describe(result)
    if args.json:
        print(json.dumps(described, indent=2))
    else:
        print(report(described))
    return EXIT_OK


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def report(d: dict[str, Any]) -> str:
    """A verification for people: the baseline and why, Guideline 14, and the savings."""
    m, b, s = d["measure"], d["baseline"], d["savings"]
    until = f" to {m['installed_to']}" if m["installed_to"] else ""
    lines = [
        f"measure {m['id']} at {m['site']}: {m['title']} ({m['kind']}), installed "
        f"{m['installed_from']}{until}; meters {', '.join(m['meters'])}",
        f"baseline {b['window_start']} .. {b['window_end']}: {b['status'].replace('_', ' ')}"
        f", {b['days_with_data']} of {b['days_in_window']} days with data"
        + ("" if d["temperature"] else "; no outdoor temperature stored for the site"),
        f"  model: {b['model'] or 'none'}: {b['model_reason']}",
    ]
    fit = b["fit"]
    if fit is not None:
        lines.append(
            f"  ASHRAE Guideline 14 ({fit['resolution']}, n={fit['n']}, p={fit['p']:g}): "
            f"CV(RMSE) {_pct(fit['cvrmse'])} (limit {fit['max_cvrmse']:.0%}) "
            f"{'pass' if fit['cvrmse_ok'] else 'FAIL'}; NMBE {_pct(fit['nmbe'])} (limit "
            f"+/-{fit['max_abs_nmbe']:.0%}) {'pass' if fit['nmbe_ok'] else 'FAIL'}; "
            f"R2 {num(fit['r_squared'], '.2f')}"
        )
    lines += [f"  {reason}" for reason in b["reasons"]]
    lines.append(
        f"reporting {s['period_start']} .. {s['period_end']}: {d['status'].replace('_', ' ')}"
    )
    f = s["figures"]
    if f is None:
        lines += [f"  {reason}" for reason in s["reasons"]]
        lines.append("  no savings claimed")
    else:
        confidence = f"{f['confidence']:.0%}"
        lines += [
            f"  {num(f['days_with_data'], '.0f')} days with data: avoided "
            f"{num(f['avoided_kwh'], ',.0f')} kWh ({confidence} interval "
            f"{num(f['low_kwh'], ',.0f')} .. {num(f['high_kwh'], ',.0f')}), "
            f"{_pct(f['savings_fraction'])} of the baseline"
            + ("" if f["significant"] else "; not significant: the interval holds zero"),
            f"  verified per year: {num(f['verified_kwh_per_year'], ',.0f')} kWh "
            f"({num(f['low_kwh_per_year'], ',.0f')} .. {num(f['high_kwh_per_year'], ',.0f')}), "
            f"{num(f['dkk_per_year'], ',.0f')} DKK, {num(f['co2_kg_per_year'], ',.0f')} kg CO2",
        ]
        if f["expected_kwh_per_year"] is not None:
            lines.append(
                f"  expected per year: {num(f['expected_kwh_per_year'], ',.0f')} kWh "
                f"(realisation {_pct(f['realisation_rate'])})"
            )
        lines += [f"  warning: {w}" for w in s["warnings"]]
    lines += [f"note: {n}" for n in d["notes"]]
    return "\n".join(lines)


def _measure_options(sp: argparse.ArgumentParser, required: bool) -> None:
    sp.add_argument("--site", required=required, help="the site (edit: moves the measure)")
    sp.add_argument(
        "--meter",
        action="append",
        required=required,
        help="a meter at the site whose energy the measure changes (repeatable; all of them "
        "are summed)",
    )
    sp.add_argument("--kind", required=required, help=f"one of: {', '.join(measures.KINDS)}")
    sp.add_argument("--title", required=required, help="what was done, in one line")
    sp.add_argument(
        "--installed",
        required=required,
        metavar="DATE",
        help="the day the measure was installed (YYYY-MM-DD, local); the baseline is the "
        "year before it",
    )
    sp.add_argument(
        "--installed-to",
        metavar="DATE",
        help="the last day of an installation period; savings are counted from it",
    )
    sp.add_argument("--investment-dkk", metavar="DKK", help="what it cost, ex VAT")
    sp.add_argument(
        "--expected-kwh-year", metavar="KWH", help="the yearly saving it was expected to give"
    )
    sp.add_argument("--opportunity", metavar="ID", help="the savings opportunity it acts on")
    sp.add_argument(
        "--model",
        help=f"baseline model: {', '.join(measures.MODELS)} (default auto: the data decide)",
    )
    sp.add_argument(
        "--exclude",
        action="append",
        metavar="START:END[:LABEL]",
        help="a non-routine event left out of baseline and savings, e.g. "
        "2026-07-01:2026-07-21:summer-closure (repeatable)",
    )
    sp.add_argument("--note", help="anything else worth knowing")


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `measure` command group; `parents` give each command --json, --config, --db."""
    add = command_group(
        sub,
        "measure",
        "record measures a company took and verify their savings",
        "Measures a company took, and their savings verified against a baseline "
        "fitted on the year before (ASHRAE Guideline 14; docs/verification.md).",
        parents,
    )

    sp = add("add", "record a measure; its meters must be known at the site")
    _measure_options(sp, required=True)
    sp.set_defaults(func=cmd_add)
    sp = add("list", "recorded measures, by site and installation date")
    sp.add_argument("--site", help="only this site")
    sp.set_defaults(func=cmd_list)
    sp = add("edit", "change a measure: the options given replace what is stored")
    sp.add_argument("id")
    _measure_options(sp, required=False)
    sp.add_argument(
        "--clear",
        action="append",
        choices=sorted(CLEARABLE),
        help="forget an optional field (repeatable)",
    )
    sp.set_defaults(func=cmd_edit)
    sp = add("remove", "delete a measure")
    sp.add_argument("id")
    sp.set_defaults(func=cmd_remove)
    sp = add(
        "verify",
        "fit the baseline and verify the savings now: model and why, CV(RMSE) and NMBE, "
        "kWh, DKK and CO2 a year with their uncertainty",
    )
    sp.add_argument("id")
    sp.add_argument("--sites", type=Path, help="sites file, instead of the config's")
    sp.set_defaults(func=cmd_verify)
