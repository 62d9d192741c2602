"""Programme page, CSV and JSON: a partnership's companies against their baseline year.

Who sees what is decided in `programme_view` alone: an admin every programme; a consultant
a programme all of whose companies were given to them; a company only its own row of the
programmes it takes part in, with no total, sector or CSV that would show the others. A
programme the caller may not see answers like one that does not exist.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from pydantic import BaseModel

from collector.analysis.site_context import Programme, Sites
from collector.evaluation.programmes import (
    ProgrammeReport,
    current_year,
    programme_report,
    report_csv,
)
from collector.web import auth, models, pages, svg
from collector.web.access import caller
from collector.web.api import Caller, CsvResponse
from collector.web.context import WebContext, ctx_of
from sparwatt import wire
from sparwatt.timeutil import QUARTER_MS

ProgrammeId = Annotated[
    str, Path(pattern=wire.ID_PATTERN, examples=["aarhus-2030"], description="programme id")
]
Year = Annotated[
    int | None, Query(ge=2000, le=2100, description="the year to report; default this year")
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": models.Problem, "description": "a year the programme cannot report"},
    401: {"model": models.Problem, "description": "no valid token"},
    404: {"model": models.Problem, "description": "no such programme, or not yours"},
}
router = APIRouter()
_KEPT_REPORTS = 32
_reports: dict[tuple[object, ...], ProgrammeReport] = {}
_reports_lock = threading.Lock()


@dataclass(frozen=True)
class ProgrammeView:
    """What one caller may see of one programme."""

    companies: tuple[str, ...]  # the rows shown
    aggregates: bool  # the total, the sectors and the CSV


def programme_view(who: auth.Principal, programme: Programme) -> ProgrammeView | None:
    """The one access rule for programmes; None: the caller may not see it at all."""
    members = tuple(programme.sites)
    if who.role is auth.Role.ADMIN:
        return ProgrammeView(members, aggregates=True)
    if who.role is auth.Role.CONSULTANT:
        return ProgrammeView(members, aggregates=True) if who.sites >= set(members) else None
    own = tuple(s for s in members if s in who.sites)
    return ProgrammeView(own, aggregates=False) if own else None


class ProgrammeSummary(BaseModel):
    id: str
    name: str
    baseline_year: int
    target_energy: float | None
    target_co2: float | None
    sites: list[str]  # the companies the caller sees
    aggregates: bool  # whether the caller sees the total and the CSV


def visible_programmes(
    ctx: WebContext, who: auth.Principal
) -> list[tuple[str, Programme, ProgrammeView]]:
    """(id, programme, view) of every programme the caller may see, in file order."""
    found = ctx.sites.programmes.items() if ctx.sites is not None else []
    return [(pid, p, v) for pid, p in found if (v := programme_view(who, p)) is not None]


def programmes_for(request: Request, who: auth.Principal | None) -> list[tuple[str, str]]:
    """(id, name) of the programmes the caller may see, for the overview page."""
    if who is None:
        return []
    return [(pid, p.name) for pid, p, _v in visible_programmes(ctx_of(request), who)]


# the overview template is rendered by the pages module; it asks this one for its links
pages.templates.env.globals["programmes_for"] = programmes_for


def _report(
    ctx: WebContext, who: auth.Principal, programme_id: str, year: int | None
) -> tuple[ProgrammeReport, ProgrammeView, Sites]:
    """The report as the caller may see it; 404 for a programme they may not see."""
    sites = ctx.sites
    programme = sites.programme(programme_id) if sites is not None else None
    view = None if programme is None else programme_view(who, programme)
    if sites is None or view is None:
        raise HTTPException(404, "programme not found")
    now = ctx.now_ms()
    chosen = current_year(sites, now) if year is None else year
    only = None if view.aggregates else view.companies
    # the history a report reads grows once a quarter hour: a report made in this quarter
    # hour is shown again rather than read anew (a programme of many companies takes seconds)
    key = (str(ctx.db), id(sites), programme_id, chosen, only, now // QUARTER_MS)
    with _reports_lock:
        report = _reports.get(key)
    if report is None:
        try:
            report = programme_report(ctx.reader(), sites, programme_id, chosen, now, only=only)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        with _reports_lock:
            while len(_reports) >= _KEPT_REPORTS:
                del _reports[next(iter(_reports))]
            _reports[key] = report
    return report, view, sites


@router.get(
    "/api/programmes",
    response_model=list[ProgrammeSummary],
    responses={401: _ERRORS[401]},
    tags=["api"],
)
def list_programmes(request: Request, who: Caller) -> list[ProgrammeSummary]:
    """The programmes the caller may see, with the companies they see of each."""
    return [
        ProgrammeSummary(
            id=pid,
            name=p.name,
            baseline_year=p.baseline_year,
            target_energy=p.target.energy,
            target_co2=p.target.co2,
            sites=list(view.companies),
            aggregates=view.aggregates,
        )
        for pid, p, view in visible_programmes(ctx_of(request), who)
    ]


@router.get(
    "/api/programmes/{programme}",
    response_model=ProgrammeReport,
    responses={code: _ERRORS[code] for code in (400, 401, 404)},
    tags=["api"],
)
def programme_api(
    request: Request, who: Caller, programme: ProgrammeId, year: Year = None
) -> ProgrammeReport:
    """Energy and CO2 per company in the year (to date) against the same part of the
    baseline year, change, progress toward the targets, coverage; total and sectors for
    admins and consultants, a company's own row only for a company."""
    return _report(ctx_of(request), who, programme, year)[0]


def _who(request: Request) -> auth.Principal:
    found = caller(request)
    if found is None:
        raise HTTPException(401, "login needed")
    return found


@router.get("/programmes/{programme}.csv", include_in_schema=False)
def programme_csv(request: Request, programme: ProgrammeId, year: Year = None) -> Response:
    """The partnership's yearly table, for admins and the consultants of all its companies."""
    report, view, sites = _report(ctx_of(request), _who(request), programme, year)
    if not view.aggregates:
        raise HTTPException(403, "the programme's table is for admins and its consultants")
    name = f"programme-{programme}-{report.year}.csv"
    return CsvResponse(
        report_csv(report, sites),
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/programmes/{programme}", include_in_schema=False)
def programme_page(request: Request, programme: ProgrammeId, year: Year = None) -> Response:
    ctx = ctx_of(request)
    who = _who(request)
    report, view, sites = _report(ctx, who, programme, year)
    first = report.baseline_year
    years = list(range(first, max(first, current_year(sites, ctx.now_ms())) + 1))
    rows = [(c.site, c.figures.energy_change, c.figures.co2_change) for c in report.companies]
    return pages.render(
        request,
        "programme.html",
        tz=ctx.site_tz(report.companies[0].site) if report.companies else None,
        who=who,
        report=report,
        view=view,
        years=years,
        chart=change_chart(rows, report.target_energy, report.target_co2),
    )


_ENERGY, _CO2 = "#1f6feb", "#1a7f37"


def change_chart(
    rows: list[tuple[str, float | None, float | None]],
    target_energy: float | None,
    target_co2: float | None,
    width: int = 900,
) -> Markup:
    """Horizontal bars of each company's energy and CO2 change (shares), with the targets
    as dashed lines; a change that cannot be shown fairly has no bar."""
    title = "Change against the same period of the baseline year, with the targets"
    row_h, left, right, top, bottom = 36, 170, 20, 26, 24
    height = top + bottom + row_h * max(1, len(rows))
    values = [v for _s, e, c in rows for v in (e, c) if v is not None]
    values += [t for t in (target_energy, target_co2) if t is not None]
    if not rows or not values:
        return svg._no_data(width, height, title)
    step = _tick_step(max(values) - min(values, default=0.0))
    lo = min(0.0, math.floor(min(values) / step) * step)
    hi = max(0.0, math.ceil(max(values) / step) * step)
    hi = hi if hi > lo else lo + step
    plot_w = width - left - right

    def x(value: float) -> float:
        return left + plot_w * (value - lo) / (hi - lo)

    body = []
    n = round((hi - lo) / step)
    for i in range(n + 1):
        tick = lo + i * step
        body.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{height - bottom}" '
            f'stroke="{"#888" if abs(tick) < 1e-9 else "#ddd"}" stroke-width="1"/>'
            f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle" {svg._FONT}>'
            f"{tick * 100:+.0f} %</text>"
        )
    for i, (site, energy, co2) in enumerate(rows):
        y = top + i * row_h
        body.append(
            f'<text x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end" '
            f"{svg._FONT}>{escape(site)}</text>"
        )
        if energy is None and co2 is None:
            body.append(
                f'<text x="{x(0.0) + 6:.1f}" y="{y + row_h / 2 + 4:.1f}" {svg._FONT}>'
                "not compared</text>"
            )
        for j, (what, value, colour, target) in enumerate(
            (("energy", energy, _ENERGY, target_energy), ("CO2", co2, _CO2, target_co2))
        ):
            if value is None:
                continue
            x0, x1 = sorted((x(0.0), x(value)))
            aim = "" if target is None else f" (target {target * 100:+.0f} %)"
            body.append(
                f'<rect x="{x0:.1f}" y="{y + 5 + j * 13}" width="{max(x1 - x0, 1):.1f}" '
                f'height="12" fill="{colour}"><title>{escape(site)}: {what} '
                f"{value * 100:+.1f} %{aim}</title></rect>"
            )
    key_x = float(left)
    for what, target, colour in (("energy", target_energy, _ENERGY), ("CO2", target_co2, _CO2)):
        if target is not None:
            body.append(
                f'<line x1="{x(target):.1f}" x2="{x(target):.1f}" y1="{top - 4}" '
                f'y2="{height - bottom}" stroke="{colour}" stroke-width="2" '
                f'stroke-dasharray="5,3"><title>{what} target {target * 100:+.0f} %</title>'
                "</line>"
            )
        key = f"{what} change" + (
            "" if target is None else f", target {target * 100:+.0f} % (dashed)"
        )
        body.append(
            f'<rect x="{key_x:.0f}" y="6" width="10" height="10" fill="{colour}"/>'
            f'<text x="{key_x + 14:.0f}" y="15" {svg._FONT}>{key}</text>'
        )
        key_x += 14 + 7 * len(key) + 24  # about 7 px per character of the 11 px font
    return svg._frame(width, height, title, body)


def _tick_step(span: float) -> float:
    """A grid step giving at most about ten ticks over `span` (a share)."""
    for step in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0):
        if span / step <= 10:
            return step
    return 1.0
