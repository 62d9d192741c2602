"""Per-meter prepared view: local calendar, opening masks, prices and daily statistics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from collector.analysis.co2 import co2_per_interval
from collector.analysis.findings import Finding
from collector.analysis.localtime import LocalCalendar, day_matrix, local_calendar
from collector.analysis.money import price_per_kwh
from collector.analysis.series import INTERVAL_H, INTERVALS_PER_YEAR, MeterSeries
from collector.analysis.site_context import SiteContext

EPOCH = dt.date(1970, 1, 1)


@lru_cache(maxsize=64)
def _holiday_days(
    country: str, subdiv: str | None, categories: tuple[str, ...], years: tuple[int, ...]
) -> np.ndarray:
    import holidays

    table = holidays.country_holidays(country, subdiv=subdiv, years=years, categories=categories)
    return np.array(sorted((d - EPOCH).days for d in table), dtype=np.int64)


def holiday_day_numbers(ctx: SiteContext, first_day: int, last_day: int) -> np.ndarray:
    """Local day numbers in [first_day, last_day] that are public holidays."""
    y0 = (EPOCH + dt.timedelta(days=int(first_day))).year
    y1 = (EPOCH + dt.timedelta(days=int(last_day))).year
    h = ctx.holidays
    out = _holiday_days(h.country, h.subdiv, tuple(h.categories), tuple(range(y0, y1 + 1)))
    return out[(out >= first_day) & (out <= last_day)]


def special_day_numbers(ctx: SiteContext, first_day: int, last_day: int) -> np.ndarray:
    """Local day numbers in [first_day, last_day] the site is closed beyond its week plan."""
    h = ctx.holidays
    days = [np.array([(d - EPOCH).days for d in h.extra], dtype=np.int64)]
    if h.treat_as == "closed":
        days.append(holiday_day_numbers(ctx, first_day, last_day))
    for c in ctx.closures:
        days.append(np.arange((c.start - EPOCH).days, (c.end - EPOCH).days + 1, dtype=np.int64))
    out = np.unique(np.concatenate(days))
    return out[(out >= first_day) & (out <= last_day)]


@dataclass
class Frame:
    """A meter series seen through its site's calendar and prices; built once per meter."""

    series: MeterSeries
    ctx: SiteContext
    cal: LocalCalendar = field(init=False)

    def __post_init__(self) -> None:
        self.cal = local_calendar(self.series.start_ms, self.ctx.timezone)

    @cached_property
    def p_kw(self) -> np.ndarray:
        return self.series.power_kw

    @cached_property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.series.energy_kwh)

    @cached_property
    def n_valid(self) -> int:
        return int(self.valid.sum())

    @cached_property
    def coverage(self) -> float:
        return self.n_valid / max(self.series.n, 1)

    @cached_property
    def year_factor(self) -> float:
        """Multiplies a sum over valid intervals into a yearly figure."""
        return INTERVALS_PER_YEAR / max(self.n_valid, 1)

    @cached_property
    def special_day(self) -> np.ndarray:
        """Bool per day: public holiday, company extra day or planned closure."""
        cal = self.cal
        special = special_day_numbers(self.ctx, int(cal.day_num[0]), int(cal.day_num[-1]))
        return np.isin(cal.day_num, special)

    @cached_property
    def special(self) -> np.ndarray:
        return self.special_day[self.cal.day]

    @cached_property
    def day_weekday(self) -> np.ndarray:
        """Weekday per day as the site runs it: Mon=0, holidays kept as Sunday count as 6."""
        wd = self.cal.day_weekday.copy()
        if self.ctx.holidays.treat_as == "sunday":
            cal = self.cal
            hol = holiday_day_numbers(self.ctx, int(cal.day_num[0]), int(cal.day_num[-1]))
            wd[np.isin(cal.day_num, hol)] = 6
        return wd

    @cached_property
    def weekday(self) -> np.ndarray:
        return self.day_weekday[self.cal.day]

    @cached_property
    def open_(self) -> np.ndarray:
        """Bool per interval: inside regular opening hours on an ordinary day."""
        return self.ctx.open_table[self.weekday, self.cal.quarter] & ~self.special

    @cached_property
    def closed_regular(self) -> np.ndarray:
        """Bool per interval: outside opening hours on an ordinary (non-special) day."""
        return ~self.open_ & ~self.special

    @cached_property
    def off_hours(self) -> np.ndarray:
        """Closed intervals on ordinary days, leaving a grace time next to opening hours."""
        q = round(self.ctx.thresholds.offhours_grace_h * 4)
        near = np.convolve(self.open_.astype(np.int8), np.ones(2 * q + 1), mode="same") > 0
        return self.closed_regular & ~near

    @cached_property
    def price(self) -> np.ndarray:
        return price_per_kwh(self.cal, self.ctx, self.series.start_ms)

    @cached_property
    def co2(self) -> np.ndarray:
        return co2_per_interval(self.series.start_ms, self.ctx.co2)

    @cached_property
    def energy0(self) -> np.ndarray:
        """Interval energy with missing intervals as 0, for sums."""
        return np.nan_to_num(self.series.energy_kwh, nan=0.0)

    @cached_property
    def day_energy(self) -> np.ndarray:
        return np.bincount(self.cal.day, weights=self.energy0, minlength=self.cal.n_days)

    @cached_property
    def day_coverage(self) -> np.ndarray:
        counts = np.bincount(self.cal.day, weights=self.valid, minlength=self.cal.n_days)
        return counts / self.cal.day_len

    @cached_property
    def day_p5_kw(self) -> np.ndarray:
        """5th percentile of 15-minute power per local day (NaN for days under 80 % coverage)."""
        m = np.sort(day_matrix(self.p_kw, self.cal), axis=1)  # NaN sorts last
        cnt = np.sum(np.isfinite(m), axis=1)
        idx = np.clip(np.floor(0.05 * (cnt - 1)).astype(np.int64), 0, None)
        out = m[np.arange(len(m)), idx]
        out[self.day_coverage < 0.8] = np.nan
        return out

    @cached_property
    def base_kw(self) -> float:
        """Base load: median over days of the daily 5th percentile of 15-minute power."""
        ok = np.isfinite(self.day_p5_kw)
        return float(np.median(self.day_p5_kw[ok])) if ok.any() else float("nan")

    def special_days_per_year(self) -> int:
        """Holidays and closures in the year that starts on the series' first local day."""
        first = int(self.cal.day_num[0])
        return len(special_day_numbers(self.ctx, first, first + 364))

    def value(self, weights: np.ndarray, annual_kwh: float) -> tuple[float, float]:
        """(DKK, kg CO2) per year of saving `annual_kwh`, spread over intervals like `weights`."""
        w = np.where(self.valid, np.nan_to_num(weights, nan=0.0), 0.0)
        total = float(w.sum())
        if total <= 0:
            w, total = self.valid.astype(float), float(max(self.n_valid, 1))
        dkk = annual_kwh * float(np.dot(w, self.price)) / total
        kg = annual_kwh * float(np.dot(w, self.co2)) / total / 1000.0
        return dkk, kg

    def period(self) -> tuple[int, int]:
        return int(self.series.start_ms[0]), self.series.end_ms

    def finding(
        self,
        kind: str,
        annual_kwh: float,
        value: tuple[float, float],
        confidence: float,
        *,
        evidence: dict[str, float | str],
        size: float = 0.0,
        start_ms: int | None = None,
    ) -> Finding:
        """This meter's Finding from `start_ms` (default: its first reading); value = (DKK, kg)."""
        start, end = self.period()
        dkk, kg = value
        return Finding(
            site=self.series.site,
            meter=self.series.meter,
            kind=kind,
            period_start_ms=start if start_ms is None else start_ms,
            period_end_ms=end,
            annual_kwh=annual_kwh,
            annual_dkk=dkk,
            annual_kg_co2=kg,
            confidence=confidence,
            size=size,
            evidence=evidence,
        )

    def kwh_to_kw(self, kwh: float, n_intervals: int) -> float:
        return kwh / max(n_intervals, 1) / INTERVAL_H


def ensure_frame(series: MeterSeries, ctx: SiteContext, frame: Frame | None) -> Frame:
    """The caller's prepared frame, or a new one for a detector called on its own."""
    if frame is not None and frame.series is series and frame.ctx is ctx:
        return frame
    return Frame(series, ctx)


def strength(excess: float, threshold: float) -> float:
    """0.5 at the threshold rising to 1 at three times it: how clear an effect is."""
    if threshold <= 0:
        return 1.0
    return float(min(1.0, 0.5 + 0.25 * (excess / threshold - 1.0)))
