"""A site's calendar for the alert rules, read from its entry in the sites file.

Which days are closed is decided by the savings scan's own day functions, so an alert and
an opportunity never disagree about whether a site was open on a given day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from collector.analysis.frame import EPOCH, holiday_day_numbers, special_day_numbers
from collector.analysis.site_context import SiteContext


@dataclass(frozen=True, slots=True)
class SiteCalendar:
    """Local time and special days of one site over a span of local dates."""

    tz: ZoneInfo
    closed: frozenset[dt.date]  # public holidays (unless kept as Sunday), extra days, closures
    as_sunday: frozenset[dt.date] = frozenset()  # holidays the site opens with Sunday's hours
    quiet_weekday: int = 6  # Mon=0; a closed day is scored against this day of the week


def site_calendar(ctx: SiteContext, first: dt.date, last: dt.date) -> SiteCalendar:
    """The calendar of the site `ctx` describes for local dates `first` to `last` (inclusive)."""
    lo, hi = (first - EPOCH).days, (last - EPOCH).days
    closed = _dates(special_day_numbers(ctx, lo, hi))
    kept = (
        _dates(holiday_day_numbers(ctx, lo, hi))
        if ctx.holidays.treat_as == "sunday"
        else frozenset()
    )
    return SiteCalendar(ZoneInfo(ctx.timezone), closed, kept - closed, ctx.quiet_weekday)


def _dates(day_numbers: np.ndarray) -> frozenset[dt.date]:
    return frozenset(EPOCH + dt.timedelta(days=int(d)) for d in day_numbers)
