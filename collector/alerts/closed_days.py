"""Dates on which sites are closed: public holidays from `holidays` plus configured extra days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import holidays

from collector.alerts.config import CalendarConfig


def holiday_dates(
    years: Iterable[int],
    country: str = "DK",
    subdivision: str | None = None,
    categories: Iterable[str] = ("public",),
    extra: Iterable[date] = (),
) -> frozenset[date]:
    """Holidays of `country` in `years` plus `extra` days (Christmas Eve, company closures)."""
    calendar = holidays.country_holidays(
        country, subdiv=subdivision, years=sorted(set(years)), categories=tuple(categories)
    )
    return frozenset(calendar.keys()) | frozenset(extra)


def closed_days(calendar: CalendarConfig, years: Iterable[int]) -> frozenset[date]:
    """Holiday dates as configured in the [calendar] table."""
    return holiday_dates(
        years,
        calendar.holiday_country,
        calendar.holiday_subdivision,
        calendar.holiday_categories,
        calendar.extra_closed_days,
    )
