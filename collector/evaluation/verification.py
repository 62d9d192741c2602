"""Verified savings of a recorded measure: the store's meter energy, the site's outdoor
temperature, calendar, prices and CO2, handed to the verification package."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

from collector.analysis.co2 import co2_per_interval
from collector.analysis.frame import holiday_day_numbers, special_day_numbers
from collector.analysis.localtime import local_calendar
from collector.analysis.money import price_per_kwh
from collector.analysis.site_context import SiteContext, Sites
from collector.evaluation.inputs import meter_keys, on_grid
from collector.evaluation.measures import as_json
from collector.store import MeasureRow, Reader
from collector.verification import (
    DEFAULT_RULES,
    Baseline,
    DateRange,
    FitQuality,
    Gate,
    MeterData,
    ModelChoice,
    Savings,
    SavingsFigures,
    fit_baseline,
    savings_uncertainty_kwh,
    verify_savings,
)
from sparwatt.errors import SiteConfigError
from sparwatt.timeutil import DAY_MS, HOUR_MS, QUARTER_MS

log = logging.getLogger(__name__)

EPOCH = dt.date(1970, 1, 1)
QUARTERS_PER_HOUR = HOUR_MS // QUARTER_MS
_MODELS: dict[str, ModelChoice] = {
    "auto": "auto",
    "caltrack_hourly": "caltrack_hourly",
    "caltrack_daily": "caltrack_daily",
    "time_of_week": "time_of_week",
}
Status = Literal["verified", "baseline_failed", "insufficient_data", "not_started"]


@dataclass(frozen=True)
class Cumulative:
    """Avoided energy summed day by day over the reporting period, with its interval."""

    day: np.ndarray  # datetime64[D], local days with data
    avoided_kwh: np.ndarray
    low_kwh: np.ndarray
    high_kwh: np.ndarray


@dataclass(frozen=True)
class MeasureVerification:
    """A measure, its baseline and its verified savings. `notes` says what the verification
    could not use (a meter without data, a price file it could not read)."""

    measure: MeasureRow
    baseline: Baseline
    savings: Savings
    notes: tuple[str, ...] = ()
    temperature: bool = False  # whether the site's outdoor temperature was stored
    started: bool = True  # whether the reporting period has begun

    @property
    def status(self) -> Status:
        if self.savings.status == "ok":
            return "verified"
        if self.baseline.status == "failed":
            return "baseline_failed"
        if not self.started:
            return "not_started"
        return "insufficient_data"

    def cumulative(self) -> Cumulative | None:
        """The cumulative avoided energy with its interval (Guideline 14's formula applied to
        the days up to each day), or None when no savings are claimed."""
        daily, basis = self.savings.daily, self.baseline.uncertainty_basis
        figures = self.savings.figures
        if daily is None or basis is None or figures is None:
            return None
        baseline = np.cumsum(daily.baseline_kwh)
        days = np.cumsum(daily.coverage)
        half = np.array(
            [
                savings_uncertainty_kwh(basis, float(b), float(m), figures.confidence)
                for b, m in zip(baseline, days, strict=True)
            ]
        )
        cum = daily.cumulative_kwh
        return Cumulative(daily.day, cum, cum - half, cum + half)


def verify(reader: Reader, sites: Sites, measure: MeasureRow, now_ms: int) -> MeasureVerification:
    """Fit the baseline of `measure` on up to a year before its installation and verify its
    savings from the end of its installation to the last whole local day before `now_ms`.

    The measure's meters are summed hour by hour (an hour counts when every meter has all
    of its quarters); a meter without data or unknown to the store leaves the result
    saying so, never an exception.
    """
    ctx = sites.calendar_of(measure.site)
    tz = ZoneInfo(ctx.timezone)
    notes: list[str] = []
    grid = _hour_grid(measure, tz, now_ms)
    energy = _energy(reader, measure, grid, notes)
    temps = _temperature(reader, measure.site, grid)
    price, co2 = _money(ctx, grid, notes)
    exclusions = tuple(DateRange(e.start, e.end, e.label) for e in measure.exclusions)
    data = MeterData(
        start_ms=grid,
        energy_kwh=energy,
        temperature_c=temps,
        timezone=ctx.timezone,
        holidays=_holidays(ctx, grid, tz),
        meter=f"{measure.site}/{'+'.join(measure.meters)}",
    )
    baseline = fit_baseline(
        data,
        measure.installed_from,
        exclusions=exclusions,
        model=_MODELS.get(measure.model, "auto"),
    )
    first = measure.installed_to or measure.installed_from
    today = dt.datetime.fromtimestamp(now_ms / 1000, tz).date()
    last = today - dt.timedelta(days=1)
    if last < first:
        savings = _not_started(baseline, first, last)
    else:
        savings = verify_savings(
            baseline,
            data,
            DateRange(first, last, "reporting"),
            price_dkk_per_kwh=price,
            co2_g_per_kwh=co2,
            expected_kwh_per_year=measure.expected_kwh_year,
        )
    log.info(
        "measure verified site=%s measure=%s baseline=%s model=%s savings=%s",
        measure.site, measure.id, baseline.status, baseline.model, savings.status,
    )  # fmt: skip
    return MeasureVerification(
        measure, baseline, savings, tuple(notes), temps is not None, started=last >= first
    )


def _hour_grid(measure: MeasureRow, tz: ZoneInfo, now_ms: int) -> np.ndarray:
    """UTC hours from the local midnight opening the baseline window to the hour now is in
    (or to the installation, for a measure still to come)."""
    opens = measure.installed_from - dt.timedelta(days=DEFAULT_RULES.baseline_days)
    start = _midnight_ms(opens, tz) // HOUR_MS * HOUR_MS
    end = max(now_ms // HOUR_MS * HOUR_MS, _midnight_ms(measure.installed_from, tz) + DAY_MS)
    return np.arange(start, end, HOUR_MS, dtype=np.int64)


def _midnight_ms(day: dt.date, tz: ZoneInfo) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


def _energy(reader: Reader, measure: MeasureRow, grid: np.ndarray, notes: list[str]) -> np.ndarray:
    """The measure's meters summed per hour; NaN where any of them misses a quarter."""
    ids = {
        key.meter: meter_id
        for meter_id, key in meter_keys(reader.meter_index()).items()
        if key.site == measure.site
    }
    quarters = np.arange(int(grid[0]), int(grid[-1]) + HOUR_MS, QUARTER_MS, dtype=np.int64)
    total = np.zeros(len(grid))
    for name in measure.meters:
        meter_id = ids.get(name)
        if meter_id is None:
            notes.append(f"meter {name}: not in the database")
            return np.full(len(grid), np.nan)
        rows = reader.interval_energy(int(quarters[0]), int(quarters[-1]) + QUARTER_MS, meter_id)
        kwh = on_grid(quarters, [(s, e) for _m, s, e, _w in rows])
        if not np.isfinite(kwh).any():
            notes.append(f"meter {name}: no interval energy stored in the period")
        # a sum is NaN when any quarter is: a partly missing hour is a gap, not less energy
        total += kwh.reshape(len(grid), QUARTERS_PER_HOUR).sum(axis=1)
    return total


def _temperature(reader: Reader, site: str, grid: np.ndarray) -> np.ndarray | None:
    """The site's hourly outdoor temperature on the grid; None when none is stored."""
    rows = reader.temperatures(site, int(grid[0]), int(grid[-1]) + HOUR_MS)
    if not rows:
        return None
    out = np.full(len(grid), np.nan)
    starts = np.array([r.start_ms for r in rows], dtype=np.int64)
    on_hour = starts % HOUR_MS == 0
    out[(starts[on_hour] - grid[0]) // HOUR_MS] = np.array([r.celsius for r in rows])[on_hour]
    return out


def _money(
    ctx: SiteContext, grid: np.ndarray, notes: list[str]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Price (DKK/kWh) and CO2 intensity (g/kWh) per hour: the means of its quarters'."""
    quarters = (grid[:, None] + np.arange(QUARTERS_PER_HOUR) * QUARTER_MS).ravel()
    hourly = (len(grid), QUARTERS_PER_HOUR)
    price = co2 = None
    try:
        cal = local_calendar(quarters, ctx.timezone)
        price = price_per_kwh(cal, ctx, quarters).reshape(hourly).mean(axis=1)
    except SiteConfigError as exc:
        notes.append(f"no DKK figures: {exc}")
    try:
        co2 = co2_per_interval(quarters, ctx.co2).reshape(hourly).mean(axis=1)
    except SiteConfigError as exc:
        notes.append(f"no CO2 figures: {exc}")
    return price, co2


def _holidays(ctx: SiteContext, grid: np.ndarray, tz: ZoneInfo) -> tuple[dt.date, ...]:
    """Public holidays, the company's extra closed days and its closures: days the models
    treat as Sundays."""
    first = dt.datetime.fromtimestamp(int(grid[0]) / 1000, tz).date()
    last = dt.datetime.fromtimestamp(int(grid[-1]) / 1000, tz).date()
    lo, hi = (first - EPOCH).days, (last - EPOCH).days
    days = np.union1d(special_day_numbers(ctx, lo, hi), holiday_day_numbers(ctx, lo, hi))
    return tuple(EPOCH + dt.timedelta(days=int(d)) for d in days)


def _not_started(baseline: Baseline, first: dt.date, last: dt.date) -> Savings:
    """Savings of a measure whose reporting period has not begun: nothing to claim yet."""
    return Savings(
        meter=baseline.meter,
        model=baseline.model,
        period=DateRange(first, first, "reporting"),
        status="insufficient_data",
        reasons=(f"the reporting period starts on {first}; the last whole day is {last}",),
        warnings=(),
        figures=None,
        daily=None,
    )


# ---- the result as plain JSON values: what `measure verify --json` prints and the API returns


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _fit(fit: FitQuality | None, gate: Gate | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    cv, nmbe = _finite(fit.cvrmse), _finite(fit.nmbe)
    return {
        "resolution": fit.resolution,
        "n": fit.n,
        "p": round(fit.p, 1),
        "cvrmse": cv,
        "nmbe": nmbe,
        "r_squared": _finite(fit.r_squared),
        "rho": _finite(fit.rho),
        "max_cvrmse": None if gate is None else gate.max_cvrmse,
        "max_abs_nmbe": None if gate is None else gate.max_abs_nmbe,
        "cvrmse_ok": None if gate is None else cv is not None and cv <= gate.max_cvrmse,
        "nmbe_ok": None if gate is None else nmbe is not None and abs(nmbe) <= gate.max_abs_nmbe,
    }


def _figures(f: SavingsFigures | None) -> dict[str, Any] | None:
    if f is None:
        return None
    out: dict[str, Any] = {
        name: _finite(getattr(f, name))
        for name in (
            "days_with_data", "baseline_kwh", "metered_kwh", "avoided_kwh", "savings_fraction",
            "confidence", "uncertainty_kwh", "low_kwh", "high_kwh", "verified_kwh_per_year",
            "uncertainty_kwh_per_year", "expected_kwh_per_year", "realisation_rate", "dkk",
            "dkk_per_year", "co2_kg", "co2_kg_per_year",
        )
    }  # fmt: skip
    per_year, half = out["verified_kwh_per_year"], out["uncertainty_kwh_per_year"]
    both = per_year is not None and half is not None
    out["low_kwh_per_year"] = per_year - half if both else None
    out["high_kwh_per_year"] = per_year + half if both else None
    out["significant"] = f.significant
    return out


def summary(v: MeasureVerification) -> dict[str, Any]:
    """The measure with its verification status and yearly figures (the site page's row)."""
    f = _figures(v.savings.figures) or {}
    return {
        "measure": as_json(v.measure),
        "status": v.status,
        "model": v.baseline.model,
        "verified_kwh_per_year": f.get("verified_kwh_per_year"),
        "low_kwh_per_year": f.get("low_kwh_per_year"),
        "high_kwh_per_year": f.get("high_kwh_per_year"),
        "expected_kwh_per_year": v.measure.expected_kwh_year,
        "dkk_per_year": f.get("dkk_per_year"),
        "co2_kg_per_year": f.get("co2_kg_per_year"),
        "significant": f.get("significant"),
    }


def describe(v: MeasureVerification) -> dict[str, Any]:
    """Everything about one verification: baseline, Guideline 14 figures, savings and the
    cumulative avoided energy per day with its interval."""
    b, s, suff = v.baseline, v.savings, v.baseline.sufficiency
    cum = v.cumulative()
    return {
        "measure": as_json(v.measure),
        "status": v.status,
        "notes": list(v.notes),
        "temperature": v.temperature,
        "baseline": {
            "status": b.status,
            "model": b.model,
            "model_reason": b.model_reason,
            "reasons": list(b.reasons),
            "window_start": suff.window_start.isoformat(),
            "window_end": suff.window_end.isoformat(),
            "days_in_window": suff.days_in_window,
            "days_with_data": suff.days_with_data,
            "coverage": _finite(suff.coverage),
            "fit": _fit(b.fit, b.gate),
            "attempts": [
                {
                    "model": a.model,
                    "status": a.status,
                    "fit": _fit(
                        a.fit, None if a.fit is None else DEFAULT_RULES.gates[a.fit.resolution]
                    ),
                    "reasons": list(a.reasons),
                }
                for a in b.attempts
            ],
        },
        "savings": {
            "status": s.status,
            "period_start": s.period.start.isoformat(),
            "period_end": s.period.end.isoformat(),
            "reasons": list(s.reasons),
            "warnings": list(s.warnings),
            "figures": _figures(s.figures),
        },
        "cumulative": []
        if cum is None
        else [
            {
                "day": str(day),
                "avoided_kwh": _finite(float(a)),
                "low_kwh": _finite(float(lo)),
                "high_kwh": _finite(float(hi)),
            }
            for day, a, lo, hi in zip(
                cum.day, cum.avoided_kwh, cum.low_kwh, cum.high_kwh, strict=True
            )
        ],
    }
