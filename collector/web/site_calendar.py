"""A site's calendar from the sites file as the pages state it, and the off-hours share
measured with the savings scan's own calendar, so a report and a scan never disagree about
when a site was open."""

from __future__ import annotations

import datetime as dt

import numpy as np

from collector.analysis.frame import Frame
from collector.analysis.series import MeterSeries
from collector.analysis.site_context import WEEKDAYS, OpeningHours, SiteContext, parse_span
from collector.web.figures import Point
from sparwatt.timeutil import QUARTER_MS

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def opening_hours_text(hours: OpeningHours) -> str:
    """Runs of days with the same hours: 'Monday to Friday 06:00-22:00; Saturday and Sunday
    closed'."""
    days = [_spans_text(getattr(hours, day)) for day in WEEKDAYS]
    parts = []
    first = 0
    while first < len(days):
        last = first
        while last + 1 < len(days) and days[last + 1] == days[first]:
            last += 1
        parts.append(f"{_day_run(first, last)} {days[first]}")
        first = last + 1
    return "; ".join(parts)


def closed_days_text(ctx: SiteContext, first: dt.date, last: dt.date) -> str:
    """How holidays count, and the company's closed days and closures between two dates."""
    h = ctx.holidays
    where = h.country + (f"-{h.subdiv}" if h.subdiv else "")
    kind = " and ".join(h.categories)
    if h.treat_as == "closed":
        parts = [f"Public holidays ({where}, {kind}) count as closed days."]
    else:
        parts = [f"Public holidays ({where}, {kind}) keep Sunday's opening hours."]
    extra = [d.isoformat() for d in sorted(h.extra) if first <= d <= last]
    if extra:
        parts.append(f"Company closed days: {', '.join(extra)}.")
    closures = [
        (c.start.isoformat() if c.start == c.end else f"{c.start} to {c.end}")
        + (f" ({c.note})" if c.note else "")
        for c in sorted(ctx.closures, key=lambda c: c.start)
        if c.start <= last and c.end >= first
    ]
    if closures:
        parts.append(f"Closures: {'; '.join(closures)}.")
    return " ".join(parts)


def off_hours_share(
    points: list[Point], from_ms: int, to_ms: int, site: str, ctx: SiteContext
) -> float | None:
    """Share of the energy in [from_ms, to_ms) outside the site's opening hours; holidays and
    closures count as the scan counts them. None when the period used no energy."""
    start = -(-from_ms // QUARTER_MS) * QUARTER_MS
    grid = np.arange(start, to_ms, QUARTER_MS, dtype=np.int64)
    if not len(grid):
        return None
    energy = np.full(len(grid), np.nan)
    for p in points:
        col = (p.start_ms - start) // QUARTER_MS
        if p.energy_kwh is not None and 0 <= col < len(grid):
            energy[col] = p.energy_kwh
    frame = Frame(MeterSeries(site, "site total", "main", grid, energy), ctx)
    total = float(frame.energy0.sum())
    if total <= 0:
        return None
    return float(frame.energy0[~frame.open_].sum()) / total


def _day_run(first: int, last: int) -> str:
    if first == last:
        return DAY_NAMES[first]
    joint = " and " if last == first + 1 else " to "
    return DAY_NAMES[first] + joint + DAY_NAMES[last]


def _spans_text(spans: list[str]) -> str:
    if not spans:
        return "closed"
    return ", ".join(
        f"{_hhmm(a)}-{_hhmm(b)}" for a, b in sorted(parse_span(span) for span in spans)
    )


def _hhmm(quarter: int) -> str:
    return f"{quarter // 4:02d}:{quarter % 4 * 15:02d}"
