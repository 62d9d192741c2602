"""Standby on holidays and closures: should look like the quietest ordinary day, or less."""

from __future__ import annotations

import numpy as np

from collector.analysis.findings import Finding
from collector.analysis.frame import Frame, ensure_frame, strength
from collector.analysis.series import MeterSeries
from collector.analysis.site_context import SiteContext

KIND = "standby"


def reference_days(frame: Frame) -> np.ndarray:
    """Bool per day: ordinary days of the quietest weekday.

    Quietest = fewest scheduled opening hours and, among those, the lowest median use (a
    Sunday rather than a Saturday when both are closed).
    """
    hours = frame.ctx.open_table.sum(axis=1)
    ordinary = ~frame.special_day & (frame.day_coverage >= 0.9)
    e = frame.day_energy / frame.day_coverage.clip(min=1e-9)
    best, best_use = -1, np.inf
    for wd in np.flatnonzero(hours == hours.min()):
        days = ordinary & (frame.day_weekday == wd)
        use = float(np.median(e[days])) if days.any() else np.inf
        if use < best_use:
            best, best_use = int(wd), use
    return ordinary & (frame.day_weekday == best)


def detect(series: MeterSeries, ctx: SiteContext, *, frame: Frame | None = None) -> list[Finding]:
    """Flag holidays and closures that use more than nearby quiet ordinary days."""
    if series.role != "main":
        return []
    fr = ensure_frame(series, ctx, frame)
    th = ctx.thresholds
    full = fr.day_coverage >= 0.9
    special = np.flatnonzero(fr.special_day & full)
    ref = np.flatnonzero(reference_days(fr) & full)
    if fr.coverage < th.min_coverage or len(special) == 0 or len(ref) == 0:
        return []
    # compare each special day with quiet days near it, so seasons do not count as standby
    e = fr.day_energy / fr.day_coverage.clip(min=1e-9)
    gap = np.abs(fr.cal.day_num[special][:, None] - fr.cal.day_num[ref][None, :])
    near = gap <= th.standby_window_days
    ref_e = np.where(near, e[ref][None, :], np.nan)
    has_ref = near.any(axis=1)
    if not has_ref.any():
        return []
    special = special[has_ref]
    expected = np.nanmedian(ref_e[has_ref], axis=1)
    actual = e[special]
    excess = actual - expected
    mean_excess = float(excess.mean())
    per_year = fr.special_days_per_year()
    annual_kwh = mean_excess * per_year
    if mean_excess <= th.standby_margin * float(expected.mean()) or annual_kwh < th.min_annual_kwh:
        return []
    weights = fr.special.astype(float)
    value = fr.value(weights, annual_kwh)
    conf = fr.coverage * strength(mean_excess / float(expected.mean()), th.standby_margin)
    conf *= min(1.0, 0.5 + len(special) / 10)
    evidence: dict[str, float | str] = {
        "special_days_seen": len(special),
        "special_days_per_year": per_year,
        "kwh_per_special_day": round(float(actual.mean()), 1),
        "expected_kwh_per_day": round(float(expected.mean()), 1),
        "excess_kwh_per_day": round(mean_excess, 1),
    }
    return [fr.finding(KIND, annual_kwh, value, conf, size=mean_excess / 24.0, evidence=evidence)]
