"""Programme figures: each company's energy and CO2 in a year against its baseline year.

A programme (`[programmes.<id>]` in the sites file) groups sites under one baseline year and
targets. A year to date is compared with the same part of the baseline year, each site in
its own time zone: 1 January up to the same local date and time (29 February counts as
1 March). Energy is the site's 15-minute history summed over its meters, leaving out
sub-meters; CO2 is that energy times the savings scan's per-interval CO2 intensity from the
site's `co2` settings. A change is shown only where both periods and the whole baseline
year have data for at least FULL_COVERAGE of their quarter hours; totals and sectors sum
the companies that were compared and say how many that is.

    change   = (year - baseline) / baseline           -0.10 = 10 % less
    progress = change / target                        0.5 = half the target's reduction
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from collector.analysis.co2 import co2_per_interval
from collector.analysis.site_context import Programme, SiteContext, Sites
from collector.store import Reader
from sparwatt.timeutil import QUARTER_MS, quarter_floor

# A measure verification's figures for one site: (kWh a year, kg CO2 a year) saved, or None
# where it has none. The report shows them beside the metered change.
Verified = Callable[[str], tuple[float, float] | None]
FULL_COVERAGE = 0.95  # share of a period's quarter hours with data for a fair comparison

COMPARED = "compared"
NO_BASELINE = "no_full_baseline_year"
INCOMPLETE = "incomplete_year"


@dataclass(frozen=True)
class Figures:
    """Energy and CO2 in the compared periods; change and progress None where undefined."""

    baseline_kwh: float  # the same part of the baseline year
    year_kwh: float  # the chosen year (to date)
    baseline_kg_co2: float
    year_kg_co2: float
    energy_change: float | None  # share: -0.10 = 10 % less than the baseline
    co2_change: float | None
    energy_progress: float | None  # share of the energy target's reduction achieved
    co2_progress: float | None


@dataclass(frozen=True)
class Company:
    """One site of the programme: its figures and how much of each period has data."""

    site: str
    sector: str
    status: str  # COMPARED, NO_BASELINE or INCOMPLETE
    note: str  # the status for people
    year_from_ms: int
    year_to_ms: int  # exclusive
    baseline_from_ms: int
    baseline_to_ms: int  # exclusive
    baseline_year_coverage: float  # share of the whole baseline year's quarter hours
    baseline_coverage: float  # share of the compared part of the baseline year
    year_coverage: float
    baseline_year_kwh: float  # the whole baseline year
    baseline_year_kg_co2: float
    figures: Figures  # change and progress None unless status is COMPARED
    verified_kwh_year: float | None
    verified_kg_co2_year: float | None


@dataclass(frozen=True)
class Group:
    """The programme's total, or one sector: sums over the companies compared."""

    name: str
    companies: int
    compared: int
    figures: Figures | None  # None when no company of the group could be compared
    verified_kwh_year: float | None  # summed over the companies that have a figure
    verified_kg_co2_year: float | None


@dataclass(frozen=True)
class ProgrammeReport:
    programme_id: str
    name: str
    baseline_year: int
    year: int
    target_energy: float | None
    target_co2: float | None
    complete: bool  # the whole year is in; otherwise year to date
    companies: list[Company]
    total: Group | None  # None when the report was made for some companies only
    sectors: list[Group]


def current_year(sites: Sites, now_ms: int) -> int:
    """The calendar year of `now_ms` in the sites file's default time zone."""
    return datetime.fromtimestamp(now_ms / 1000, ZoneInfo(sites.defaults.timezone)).year


def programme_report(
    reader: Reader,
    sites: Sites,
    programme_id: str,
    year: int,
    now_ms: int,
    verified: Verified | None = None,
    *,
    only: Collection[str] | None = None,
) -> ProgrammeReport:
    """The programme's figures for `year` (to date) against its baseline year.

    `verified(site)` gives the savings verified for the site's measures (kWh and kg CO2 a
    year), None where there are none; without it that column stays empty. `only` limits the
    report to those companies, without total or sectors (a company's own view). Raises
    ValueError for an unknown programme, a year before the baseline year or not begun yet.
    """
    programme = sites.programme(programme_id)
    if programme is None:
        raise ValueError(f"no programme {programme_id!r} in the sites file")
    if year < programme.baseline_year:
        raise ValueError(f"{year} is before the baseline year {programme.baseline_year}")
    members = programme.sites if only is None else [s for s in programme.sites if s in only]
    meters: dict[str, list[int]] = {}
    for meter_id, site, _gateway, meter in reader.meter_index():
        if reader.in_site_total(site, meter):
            meters.setdefault(site, []).append(meter_id)
    companies = [
        _company(reader, meters.get(s, []), s, sites[s], programme, year, now_ms, verified)
        for s in members
    ]
    total, sectors = None, []
    if only is None:
        total = _group("total", companies, programme)
        sectors = [
            _group(sector, [c for c in companies if c.sector == sector], programme)
            for sector in sorted({c.sector for c in companies})
        ]
    return ProgrammeReport(
        programme_id=programme_id,
        name=programme.name,
        baseline_year=programme.baseline_year,
        year=year,
        target_energy=programme.target.energy,
        target_co2=programme.target.co2,
        complete=all(c.year_to_ms == _year_start(year + 1, sites[c.site]) for c in companies),
        companies=companies,
        total=total,
        sectors=sectors,
    )


def _company(
    reader: Reader,
    meters: list[int],
    site: str,
    ctx: SiteContext,
    programme: Programme,
    year: int,
    now_ms: int,
    verified: Verified | None,
) -> Company:
    base_year = programme.baseline_year
    year_from, year_end = _year_start(year, ctx), _year_start(year + 1, ctx)
    if year_from > now_ms:
        raise ValueError(f"{year} has not begun yet")
    year_to = min(year_end, quarter_floor(now_ms))
    base_from, base_year_end = _year_start(base_year, ctx), _year_start(base_year + 1, ctx)
    base_to = base_year_end if year_to == year_end else _same_moment(year_to, base_year, ctx)
    base_start, base_kwh = _energy(reader, meters, base_from, base_year_end)
    year_start, year_kwh = _energy(reader, meters, year_from, year_to)
    whole = _sums(base_start, base_kwh, ctx, base_from, base_year_end)
    base = _sums(base_start, base_kwh, ctx, base_from, base_to)
    this = _sums(year_start, year_kwh, ctx, year_from, year_to)
    if min(whole[2], base[2]) < FULL_COVERAGE:
        status = NO_BASELINE
        note = f"baseline year {base_year} has data for {_pct(whole[2])} of its quarter hours"
        if whole[2] >= FULL_COVERAGE:
            note = f"the compared part of {base_year} has data for {_pct(base[2])}"
    elif this[2] < FULL_COVERAGE:
        status, note = INCOMPLETE, f"{year} so far has data for {_pct(this[2])}"
    else:
        status, note = COMPARED, "compared"
    found = verified(site) if verified is not None else None
    return Company(
        site=site,
        sector=ctx.sector,
        status=status,
        note=note,
        year_from_ms=year_from,
        year_to_ms=year_to,
        baseline_from_ms=base_from,
        baseline_to_ms=base_to,
        baseline_year_coverage=whole[2],
        baseline_coverage=base[2],
        year_coverage=this[2],
        baseline_year_kwh=whole[0],
        baseline_year_kg_co2=whole[1],
        figures=_figures(base[0], this[0], base[1], this[1], programme, status == COMPARED),
        verified_kwh_year=None if found is None else found[0],
        verified_kg_co2_year=None if found is None else found[1],
    )


def _group(name: str, companies: list[Company], programme: Programme) -> Group:
    compared = [c.figures for c in companies if c.status == COMPARED]
    figures = None
    if compared:
        figures = _figures(
            sum(f.baseline_kwh for f in compared),
            sum(f.year_kwh for f in compared),
            sum(f.baseline_kg_co2 for f in compared),
            sum(f.year_kg_co2 for f in compared),
            programme,
            True,
        )
    kwh = [c.verified_kwh_year for c in companies if c.verified_kwh_year is not None]
    kg = [c.verified_kg_co2_year for c in companies if c.verified_kg_co2_year is not None]
    return Group(
        name=name,
        companies=len(companies),
        compared=len(compared),
        figures=figures,
        verified_kwh_year=sum(kwh) if kwh else None,
        verified_kg_co2_year=sum(kg) if kg else None,
    )


def _figures(
    base_kwh: float,
    year_kwh: float,
    base_kg: float,
    year_kg: float,
    programme: Programme,
    fair: bool,
) -> Figures:
    energy = _change(base_kwh, year_kwh) if fair else None
    co2 = _change(base_kg, year_kg) if fair else None
    return Figures(
        baseline_kwh=base_kwh,
        year_kwh=year_kwh,
        baseline_kg_co2=base_kg,
        year_kg_co2=year_kg,
        energy_change=energy,
        co2_change=co2,
        energy_progress=_progress(energy, programme.target.energy),
        co2_progress=_progress(co2, programme.target.co2),
    )


def _change(base: float, now: float) -> float | None:
    return (now - base) / base if base > 0 else None


def _progress(change: float | None, target: float | None) -> float | None:
    return None if change is None or target is None else change / target


def _energy(reader: Reader, meters: list[int], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """(interval starts, kWh) of a site's total over [lo, hi): per quarter hour any of its
    `meters` has, their sum, as the store's site totals count it (sub-meters left out by
    the caller). Read meter by meter along the history's key: a third of the time of a
    grouped query."""
    starts, values = [], []
    for meter_id in meters:
        columns = list(zip(*reader.interval_energy(lo, hi, meter_id), strict=False))
        if columns:
            starts.append(np.array(columns[1], dtype=np.int64))
            values.append(np.array(columns[2], dtype=np.float64))  # None becomes NaN
    if not starts:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    start, kwh = np.concatenate(starts), np.concatenate(values)
    known = np.isfinite(kwh)
    start, kwh = start[known], kwh[known]
    if len(starts) == 1:
        return start, kwh
    grid, at = np.unique(start, return_inverse=True)
    return grid, np.bincount(at, weights=kwh, minlength=len(grid))


def _sums(
    start: np.ndarray, kwh: np.ndarray, ctx: SiteContext, lo: int, hi: int
) -> tuple[float, float, float]:
    """(kWh, kg CO2, coverage) of the intervals in [lo, hi)."""
    inside = (start >= lo) & (start < hi)
    g_per_kwh = co2_per_interval(start[inside], ctx.co2)
    expected = (hi - lo) // QUARTER_MS
    coverage = int(inside.sum()) / expected if expected > 0 else 0.0
    return float(kwh[inside].sum()), float((kwh[inside] * g_per_kwh).sum() / 1000), coverage


def _year_start(year: int, ctx: SiteContext) -> int:
    """Local midnight of 1 January in the site's time zone, in epoch ms."""
    return int(datetime(year, 1, 1, tzinfo=ZoneInfo(ctx.timezone)).timestamp() * 1000)


def _same_moment(ms: int, year: int, ctx: SiteContext) -> int:
    """The same local date and time in another year, on the quarter-hour grid."""
    tz = ZoneInfo(ctx.timezone)
    local = datetime.fromtimestamp(ms / 1000, tz)
    try:
        moved = local.replace(year=year)
    except ValueError:  # 29 February in a year without one
        moved = datetime(year, 3, 1, tzinfo=tz)
    return quarter_floor(int(moved.timestamp() * 1000))


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


CSV_COLUMNS = (
    "Company",
    "Sector",
    "Status",
    "Year from",
    "Year to (exclusive)",
    "Baseline from",
    "Baseline to (exclusive)",
    "Coverage whole baseline year (%)",
    "Coverage baseline period (%)",
    "Coverage year (%)",
    "Energy baseline period (kWh)",
    "Energy year (kWh)",
    "Energy change (%)",
    "Energy target (%)",
    "Energy target progress (%)",
    "CO2 baseline period (kg)",
    "CO2 year (kg)",
    "CO2 change (%)",
    "CO2 target (%)",
    "CO2 target progress (%)",
    "Verified savings energy (kWh/year)",
    "Verified savings CO2 (kg/year)",
    "Energy whole baseline year (kWh)",
    "CO2 whole baseline year (kg)",
)


def report_csv(report: ProgrammeReport, sites: Sites) -> str:
    """The partnership's yearly table: one row per company, then the total when it has one;
    times are each site's local time, empty cells have no figure."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    targets = (_num(report.target_energy, 100, 1), _num(report.target_co2, 100, 1))
    for c in report.companies:
        tz = ZoneInfo(sites.calendar_of(c.site).timezone)
        times = [
            datetime.fromtimestamp(ms / 1000, tz).strftime("%Y-%m-%d %H:%M")
            for ms in (c.year_from_ms, c.year_to_ms, c.baseline_from_ms, c.baseline_to_ms)
        ]
        coverage = (c.baseline_year_coverage, c.baseline_coverage, c.year_coverage)
        writer.writerow([
            c.site, c.sector, c.note, *times, *(_num(x, 100, 1) for x in coverage),
            *_figure_cells(c.figures, targets),
            _num(c.verified_kwh_year), _num(c.verified_kg_co2_year),
            _num(c.baseline_year_kwh), _num(c.baseline_year_kg_co2),
        ])  # fmt: skip
    if report.total is not None:
        t = report.total
        writer.writerow([
            "Total", "", f"{t.compared} of {t.companies} companies compared", *[""] * 7,
            *_figure_cells(t.figures, targets),
            _num(t.verified_kwh_year), _num(t.verified_kg_co2_year), "", "",
        ])  # fmt: skip
    return out.getvalue()


def _figure_cells(figures: Figures | None, targets: tuple[str, str]) -> list[str]:
    f = figures
    if f is None:
        return ["", "", "", targets[0], "", "", "", "", targets[1], ""]
    return [
        _num(f.baseline_kwh), _num(f.year_kwh), _num(f.energy_change, 100, 2), targets[0],
        _num(f.energy_progress, 100, 1),
        _num(f.baseline_kg_co2), _num(f.year_kg_co2), _num(f.co2_change, 100, 2), targets[1],
        _num(f.co2_progress, 100, 1),
    ]  # fmt: skip


def _num(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "" if value is None else f"{value * scale:.{digits}f}"
