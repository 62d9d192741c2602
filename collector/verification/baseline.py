"""Baseline fitting: choose the model a meter's data allows, fit it on the window before the
installation date and hold it to the Guideline 14 gates."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from collector.verification.ashrae import FitQuality, fit_quality
from collector.verification.daily import DailyModel, fit_daily
from collector.verification.hourly import HourlyModel, fit_hourly
from collector.verification.inputs import DateRange, MeterData
from collector.verification.rows import Rows, day_number, day_rows, in_ranges, interval_rows
from collector.verification.rules import DEFAULT_RULES, Gate, Rules
from collector.verification.sufficiency import (
    Sufficiency,
    assess,
    hourly_problems,
    time_of_week_problems,
    weather_problems,
    window_problems,
)
from collector.verification.tow import TimeOfWeekModel, fit_time_of_week

log = logging.getLogger(__name__)

ModelName = Literal["caltrack_hourly", "caltrack_daily", "time_of_week"]
ModelChoice = Literal["auto", "caltrack_hourly", "caltrack_daily", "time_of_week"]
Status = Literal["ok", "insufficient_data", "failed"]
Model = DailyModel | HourlyModel | TimeOfWeekModel


@dataclass(frozen=True)
class Attempt:
    """One model tried on the baseline: its fit figures, or why it could not be fitted."""

    model: ModelName
    status: Status
    fit: FitQuality | None
    reasons: tuple[str, ...]
    uncertainty_basis: FitQuality | None = None


@dataclass(frozen=True)
class Baseline:
    """A fitted (or refused) baseline: savings are claimed only when `status` is "ok"."""

    meter: str
    installed: dt.date
    status: Status
    model: ModelName | None  # the model used, or the one that was tried first
    model_reason: str  # why that model
    reasons: tuple[str, ...]  # why the baseline is not usable; empty when ok
    fit: FitQuality | None  # at the model's resolution; the gates apply to it
    # residual statistics behind the savings interval: daily sums of the model's residuals
    # (the same as `fit` for the daily model); see daily_basis
    uncertainty_basis: FitQuality | None
    gate: Gate | None
    sufficiency: Sufficiency
    exclusions: tuple[DateRange, ...]
    attempts: tuple[Attempt, ...]
    temperature_range_c: tuple[float, float] | None  # what the weather model saw
    tow_slots: int
    fitted: Model | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def model_rows(name: ModelName, data: MeterData, rules: Rules, tow_slots: int = 168) -> Rows:
    """The meter's data at the resolution the model works at."""
    if name == "caltrack_daily":
        return day_rows(data, rules.day_min_coverage, rules.day_min_temperature_share)
    return interval_rows(data, tow_slots if name == "time_of_week" else 168)


def usable(
    rows: Rows, first: dt.date, last: dt.date, exclusions: tuple[DateRange, ...], weather: bool
) -> np.ndarray:
    """Rows between two local dates, outside excluded periods, with all the inputs present."""
    ok = (rows.day >= day_number(first)) & (rows.day <= day_number(last))
    ok &= ~in_ranges(rows.day, exclusions) & np.isfinite(rows.energy_kwh)
    if weather and rows.temperature_c is not None:
        ok &= np.isfinite(rows.temperature_c)
    if rows.driver is not None:
        ok &= np.isfinite(rows.driver)
    return ok


def _attempt(
    name: ModelName,
    data: MeterData,
    suff: Sufficiency,
    exclusions: tuple[DateRange, ...],
    rules: Rules,
    slots: int,
) -> tuple[Attempt, Model | None, tuple[float, float] | None]:
    weather = name != "time_of_week"
    problems = time_of_week_problems(suff, rules) if not weather else weather_problems(suff, rules)
    if name == "caltrack_hourly" and not problems:
        problems = hourly_problems(suff, rules)
    if problems:
        return Attempt(name, "insufficient_data", None, tuple(problems)), None, None
    rows = model_rows(name, data, rules, slots)
    use = usable(rows, suff.window_start, suff.window_end, exclusions, weather)
    model: Model | None
    if name == "caltrack_daily":
        model = fit_daily(rows, use, rules)
    elif name == "caltrack_hourly":
        model = fit_hourly(rows, use, rules)
    else:
        model = fit_time_of_week(rows, use, slots)
        seen = model.slot_observations
        rare = int((seen < rules.min_slot_observations).sum())
        if rare:
            reason = (
                f"{rare} of {slots} time-of-week slots seen fewer than "
                f"{rules.min_slot_observations} times in the baseline"
            )
            return Attempt(name, "insufficient_data", None, (reason,)), None, None
    if model is None:
        return Attempt(name, "insufficient_data", None, ("too few days to fit",)), None, None
    pred = model.predict(rows)
    fitted = use & np.isfinite(pred)
    idx = np.flatnonzero(fitted)
    fq = fit_quality(
        rows.energy_kwh[fitted], pred[fitted], model.n_params, model.resolution, np.diff(idx) == 1
    )
    basis = fq if model.resolution == "daily" else daily_basis(rows, fitted, pred, fq, rules)
    gate = rules.gates[model.resolution]
    fails = fq.problems(gate)
    trange = None
    if weather and rows.temperature_c is not None:
        t = rows.temperature_c[fitted]
        trange = (float(t.min()), float(t.max()))
    status: Status = "failed" if fails else "ok"
    return Attempt(name, status, fq, tuple(fails), basis), model, trange


def daily_basis(
    rows: Rows, fitted: np.ndarray, pred: np.ndarray, fq: FitQuality, rules: Rules
) -> FitQuality:
    """Guideline 14 statistics of a sub-daily model's residuals summed per local day.

    Hourly residuals are correlated across the hours of a day (a cold or busy day is off all
    day), which the lag-1 correction of hourly residuals does not see; on daily sums it sees
    the correlation from day to day. Days with fewer than rules.day_min_coverage of their
    rows are left out; the parameters count in proportion (n_days * p / n_rows).
    """
    days, inv = np.unique(rows.day, return_inverse=True)
    per_day = np.bincount(inv, minlength=len(days))
    used = np.bincount(inv[fitted], minlength=len(days))
    y = np.bincount(inv[fitted], weights=rows.energy_kwh[fitted], minlength=len(days))
    yhat = np.bincount(inv[fitted], weights=pred[fitted], minlength=len(days))
    keep = used >= rules.day_min_coverage * per_day
    p = fq.p * int(keep.sum()) / max(fq.n, 1)
    return fit_quality(y[keep], yhat[keep], p, "daily", np.diff(days[keep]) == 1)


def _plan(data: MeterData, suff: Sufficiency, rules: Rules) -> tuple[list[ModelName], str]:
    """Models to try, in order, and why (automatic choice)."""
    if data.temperature_c is None:
        return ["time_of_week"], "no outdoor temperature given: time-of-week model"
    problems = weather_problems(suff, rules)
    if problems:
        return ["time_of_week"], (
            "no weather model possible (" + "; ".join(problems) + "): time-of-week model"
        )
    given = "outdoor temperature given"
    hp = hourly_problems(suff, rules)
    if hp:
        return ["caltrack_daily"], f"{given}; {hp[0]}: daily weather model"
    return (
        ["caltrack_hourly", "caltrack_daily"],
        f"{given}; every calendar month has hourly data: hourly weather model",
    )


def fit_baseline(
    data: MeterData,
    installed: dt.date,
    *,
    exclusions: tuple[DateRange, ...] = (),
    model: ModelChoice = "auto",
    tow_slots: Literal[168, 672] = 168,
    rules: Rules = DEFAULT_RULES,
) -> Baseline:
    """Fit the baseline for a measure installed on `installed` (a local date).

    The window is the `rules.baseline_days` days before that date, less `exclusions` (non-
    routine events). "auto" picks a weather model when outdoor temperature is given and
    covers the window (hourly when every calendar month has its hours, else daily; when the
    hourly model fails its gates the daily one is tried) and the time-of-week model
    otherwise. A process load that ignores the weather is better served by asking for
    "time_of_week". The result says which model was used and why.
    """
    slots = tow_slots
    note = ""
    if slots == 672 and data.step_ms != 900_000:
        slots, note = 168, " (672 slots need 15-minute data; 168 used)"
    daily = day_rows(data, rules.day_min_coverage, rules.day_min_temperature_share)
    hourly = interval_rows(data, 168) if data.temperature_c is not None else None
    suff = assess(daily, hourly, installed, exclusions, rules)
    common = window_problems(suff, rules)
    if common:
        log.info("baseline not usable meter=%s %s", data.meter, common)
        return Baseline(
            meter=data.meter,
            installed=installed,
            status="insufficient_data",
            model=None,
            model_reason="no model: the baseline window has too little data for any",
            reasons=tuple(common),
            fit=None,
            uncertainty_basis=None,
            gate=None,
            sufficiency=suff,
            exclusions=exclusions,
            attempts=(),
            temperature_range_c=None,
            tow_slots=slots,
        )
    if model == "auto":
        plan, reason = _plan(data, suff, rules)
    else:
        plan, reason = [model], f"{model} model chosen by the caller"
    reason += note
    attempts: list[Attempt] = []
    for name in plan:
        attempt, fitted, trange = _attempt(name, data, suff, exclusions, rules, slots)
        attempts.append(attempt)
        if attempt.status == "ok":
            if len(attempts) > 1:
                reason += (
                    f"; {attempts[0].model} did not pass ("
                    + "; ".join(attempts[0].reasons)
                    + f"), {name} does"
                )
            return Baseline(
                meter=data.meter,
                installed=installed,
                status="ok",
                model=name,
                model_reason=reason,
                reasons=(),
                fit=attempt.fit,
                uncertainty_basis=attempt.uncertainty_basis,
                gate=rules.gates[attempt.fit.resolution] if attempt.fit else None,
                sufficiency=suff,
                exclusions=exclusions,
                attempts=tuple(attempts),
                temperature_range_c=trange,
                tow_slots=slots,
                fitted=fitted,
            )
    first = next((a for a in attempts if a.fit is not None), attempts[0])
    reasons = tuple(f"{a.model}: {r}" for a in attempts for r in a.reasons)
    log.info("baseline not usable meter=%s status=%s %s", data.meter, first.status, reasons)
    return Baseline(
        meter=data.meter,
        installed=installed,
        status=first.status,
        model=first.model,
        model_reason=reason,
        reasons=reasons,
        fit=first.fit,
        uncertainty_basis=first.uncertainty_basis,
        gate=rules.gates[first.fit.resolution] if first.fit else None,
        sufficiency=suff,
        exclusions=exclusions,
        attempts=tuple(attempts),
        temperature_range_c=None,
        tow_slots=slots,
    )
