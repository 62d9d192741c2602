"""Verified savings of a reporting period: avoided energy (baseline prediction minus metered)
per day, in total and per year, in kWh, DKK and kg CO2, with its Guideline 14 interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from collector.verification.ashrae import savings_uncertainty_kwh
from collector.verification.baseline import Baseline, ModelName, model_rows, usable
from collector.verification.inputs import DateRange, MeterData
from collector.verification.rows import day_number, in_ranges, per_row_mean
from collector.verification.rules import DEFAULT_RULES, Rules
from sparwatt.errors import VerificationError

DAYS_PER_YEAR = 365.0
# CalTRACK 3.7.5.2: temperatures more than 10 % of the baseline's span beyond it
EXTRAPOLATION_MARGIN = 0.1


@dataclass(frozen=True)
class DailySavings:
    """One entry per local day of the reporting period that has data."""

    day: np.ndarray  # datetime64[D]
    baseline_kwh: np.ndarray  # the baseline model's prediction
    metered_kwh: np.ndarray
    avoided_kwh: np.ndarray  # baseline - metered
    cumulative_kwh: np.ndarray
    coverage: np.ndarray  # share of the day's model rows with a saving
    dkk: np.ndarray | None
    co2_kg: np.ndarray | None


@dataclass(frozen=True)
class SavingsFigures:
    """The reporting period's savings; `uncertainty_kwh` is the half-width at `confidence`."""

    days_with_data: float
    baseline_kwh: float
    metered_kwh: float
    avoided_kwh: float
    savings_fraction: float  # avoided / baseline
    confidence: float
    uncertainty_kwh: float
    low_kwh: float
    high_kwh: float
    fractional_uncertainty: float  # uncertainty / |avoided|; inf when nothing is avoided
    significant: bool  # the interval excludes zero
    verified_kwh_per_year: float  # avoided, scaled to 365 days of data
    uncertainty_kwh_per_year: float
    expected_kwh_per_year: float | None  # what the measure was expected to save
    realisation_rate: float | None  # verified / expected
    dkk: float | None
    dkk_per_year: float | None
    co2_kg: float | None
    co2_kg_per_year: float | None


@dataclass(frozen=True)
class Savings:
    """Verified savings of one measure on one meter; `figures` only when status is "ok"."""

    meter: str
    model: ModelName | None
    period: DateRange
    status: Literal["ok", "baseline_failed", "insufficient_data"]
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    figures: SavingsFigures | None
    daily: DailySavings | None


def _refused(
    baseline: Baseline,
    period: DateRange,
    status: Literal["baseline_failed", "insufficient_data"],
    reasons: list[str],
) -> Savings:
    return Savings(
        meter=baseline.meter,
        model=baseline.model,
        period=period,
        status=status,
        reasons=tuple(reasons),
        warnings=(),
        figures=None,
        daily=None,
    )


def verify_savings(
    baseline: Baseline,
    data: MeterData,
    period: DateRange,
    *,
    price_dkk_per_kwh: np.ndarray | None = None,
    co2_g_per_kwh: np.ndarray | None = None,
    exclusions: tuple[DateRange, ...] = (),
    expected_kwh_per_year: float | None = None,
    rules: Rules = DEFAULT_RULES,
) -> Savings:
    """Savings over `period` (local dates) against `baseline`, on the same meter's data.

    Price and CO2 intensity are per interval of `data`. The baseline's excluded periods
    apply here too; `exclusions` adds events of the reporting period. No savings are
    claimed from a baseline that is not "ok".
    """
    if baseline.fitted is None or not baseline.ok or baseline.model is None:
        why = f"no savings claimed: the baseline is {baseline.status.replace('_', ' ')}"
        return _refused(baseline, period, "baseline_failed", [why, *baseline.reasons])
    if period.start < baseline.installed:
        raise VerificationError(
            f"meter={data.meter or '?'}: the reporting period starts {period.start}, before "
            f"the installation on {baseline.installed}"
        )
    price = data.per_interval("price_dkk_per_kwh", price_dkk_per_kwh)
    co2 = data.per_interval("co2_g_per_kwh", co2_g_per_kwh)
    basis = baseline.uncertainty_basis
    assert basis is not None
    model = baseline.fitted
    rows = model_rows(baseline.model, data, rules, baseline.tow_slots)
    weather = baseline.model != "time_of_week"
    use = usable(rows, period.start, period.end, baseline.exclusions + exclusions, weather)
    pred = model.predict(rows)
    ok = use & np.isfinite(pred)
    days_covered = float(rows.row_hours[ok].sum() / 24.0)
    if days_covered < rules.min_reporting_days:
        return _refused(
            baseline,
            period,
            "insufficient_data",
            [
                f"{days_covered:.1f} days of reporting data the model can predict "
                f"(at least {rules.min_reporting_days:.0f} needed)"
            ],
        )
    metered = rows.energy_kwh[ok]
    predicted = pred[ok]
    avoided = predicted - metered
    weights = data.energy_kwh if rows.resolution == "daily" else None
    row_price = None if price is None else per_row_mean(rows, price, weights)[ok]
    row_co2 = None if co2 is None else per_row_mean(rows, co2, weights)[ok]
    in_period = (rows.day >= day_number(period.start)) & (rows.day <= day_number(period.end))
    in_period &= ~in_ranges(rows.day, baseline.exclusions + exclusions)
    daily = _per_day(rows.day, ok, predicted, metered, avoided, row_price, row_co2, in_period)

    base_sum = float(predicted.sum())
    avoided_sum = float(avoided.sum())
    half = savings_uncertainty_kwh(basis, base_sum, days_covered, rules.confidence)
    per_year = DAYS_PER_YEAR / days_covered
    dkk = None if row_price is None else float(np.nansum(avoided * row_price))
    co2_kg = None if row_co2 is None else float(np.nansum(avoided * row_co2) / 1000.0)
    figures = SavingsFigures(
        days_with_data=days_covered,
        baseline_kwh=base_sum,
        metered_kwh=float(metered.sum()),
        avoided_kwh=avoided_sum,
        savings_fraction=avoided_sum / base_sum if base_sum else math.nan,
        confidence=rules.confidence,
        uncertainty_kwh=half,
        low_kwh=avoided_sum - half,
        high_kwh=avoided_sum + half,
        fractional_uncertainty=half / abs(avoided_sum) if avoided_sum else math.inf,
        significant=abs(avoided_sum) > half,
        verified_kwh_per_year=avoided_sum * per_year,
        uncertainty_kwh_per_year=half * per_year,
        expected_kwh_per_year=expected_kwh_per_year,
        realisation_rate=(
            avoided_sum * per_year / expected_kwh_per_year if expected_kwh_per_year else None
        ),
        dkk=dkk,
        dkk_per_year=None if dkk is None else dkk * per_year,
        co2_kg=co2_kg,
        co2_kg_per_year=None if co2_kg is None else co2_kg * per_year,
    )
    warnings = _warnings(baseline, rows.temperature_c, ok, days_covered, weather, rules)
    return Savings(
        meter=data.meter,
        model=baseline.model,
        period=period,
        status="ok",
        reasons=(),
        warnings=tuple(warnings),
        figures=figures,
        daily=daily,
    )


def _per_day(
    day: np.ndarray,
    ok: np.ndarray,
    predicted: np.ndarray,
    metered: np.ndarray,
    avoided: np.ndarray,
    price: np.ndarray | None,
    co2: np.ndarray | None,
    in_period: np.ndarray,
) -> DailySavings:
    days, inv = np.unique(day[ok], return_inverse=True)
    n = len(days)

    def total(v: np.ndarray) -> np.ndarray:
        return np.bincount(inv, weights=v, minlength=n)

    in_days = in_period & np.isin(day, days)
    rows_per_day = np.bincount(np.searchsorted(days, day[in_days]), minlength=n)
    avoided_day = total(avoided)
    return DailySavings(
        day=days.astype("datetime64[D]"),
        baseline_kwh=total(predicted),
        metered_kwh=total(metered),
        avoided_kwh=avoided_day,
        cumulative_kwh=np.cumsum(avoided_day),
        coverage=np.bincount(inv, minlength=n) / np.maximum(rows_per_day, 1),
        dkk=None if price is None else total(avoided * price),
        co2_kg=None if co2 is None else total(avoided * co2) / 1000.0,
    )


def _warnings(
    baseline: Baseline,
    temperature: np.ndarray | None,
    ok: np.ndarray,
    days_covered: float,
    weather: bool,
    rules: Rules,
) -> list[str]:
    out = []
    if days_covered < rules.full_year_days:
        out.append(
            f"per-year figures scale {days_covered:.0f} days of data to 365: a measure whose "
            "effect changes with the season makes them biased"
        )
    if weather and temperature is not None and baseline.temperature_range_c is not None:
        lo, hi = baseline.temperature_range_c
        margin = EXTRAPOLATION_MARGIN * (hi - lo)
        t = temperature[ok]
        if len(t) and (t.min() < lo - margin or t.max() > hi + margin):
            out.append(
                f"reporting temperatures {t.min():.1f}..{t.max():.1f} C reach beyond the "
                f"baseline's {lo:.1f}..{hi:.1f} C: the model extrapolates"
            )
    return out
