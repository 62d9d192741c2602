"""Constant load on a dedicated process meter while production is off: leak-like load."""

from __future__ import annotations

import numpy as np

from collector.analysis import drift
from collector.analysis.findings import Finding
from collector.analysis.frame import Frame, ensure_frame, strength
from collector.analysis.localtime import day_matrix
from collector.analysis.series import HOURS_PER_YEAR, MeterSeries
from collector.analysis.site_context import SiteContext

KIND = "night_load"


def detect(series: MeterSeries, ctx: SiteContext, *, frame: Frame | None = None) -> list[Finding]:
    """Flag a dedicated meter that keeps drawing a steady load when the site is closed."""
    if series.role != "dedicated":
        return []
    fr = ensure_frame(series, ctx, frame)
    th = ctx.thresholds
    ok = fr.valid
    off = ~fr.open_ & ok
    on = fr.open_ & ok
    if fr.coverage < th.min_coverage or off.sum() < 96 or not on.any():
        return []
    p_off = fr.p_kw[off]
    level = float(np.median(p_off))
    on_mean = float(fr.p_kw[on].mean())
    floor = max(th.night_min_kw, th.night_min_ratio * on_mean)
    if level <= floor:
        return []
    q25, q75 = np.quantile(p_off, [0.25, 0.75])
    steadiness = float(max(0.0, 1 - (q75 - q25) / level))  # a leak draws the same every hour
    # a leak does not stop for production, so fixing it saves the level around the clock
    annual_kwh = level * HOURS_PER_YEAR
    if annual_kwh < th.min_annual_kwh:
        return []
    value = fr.value(ok.astype(float), annual_kwh)
    conf = fr.coverage * strength(level, floor) * (0.5 + 0.5 * steadiness)
    evidence: dict[str, float | str] = {
        "off_hours_median_kw": round(level, 2),
        "production_mean_kw": round(on_mean, 2),
        "share_of_production_load": round(level / on_mean, 3) if on_mean > 0 else 0.0,
        "steadiness": round(steadiness, 2),
        "off_hours_kwh_per_year": round(
            float(p_off.mean()) * float((~fr.open_).mean()) * HOURS_PER_YEAR, 0
        ),
    }
    return [fr.finding(KIND, annual_kwh, value, conf, size=level, evidence=evidence)]


def history_features(frame: Frame) -> drift.DriftFeatures | None:
    """Daily median power while closed, on ordinary days, against the baseline's median."""
    closed = frame.closed_regular & frame.valid
    m = day_matrix(np.where(closed, frame.p_kw, np.nan), frame.cal)
    n = np.sum(np.isfinite(m), axis=1)
    keep = (n >= 16) & (frame.day_coverage >= 0.9)  # at least four closed hours seen
    level = np.full(len(n), np.nan)
    level[keep] = np.nanmedian(m[keep], axis=1)
    day = frame.cal.day_num
    b0, b1 = drift.baseline_days(frame)
    in_base = keep & (day >= b0) & (day < b1)
    if in_base.sum() < 14:
        return None
    # a meter that drew nothing while closed is measured from night_min_kw, so a leak that
    # appears on it still has a size
    before = max(float(np.median(level[in_base])), frame.ctx.thresholds.night_min_kw)
    return drift.DriftFeatures(day[keep], level[keep], np.full(int(keep.sum()), before), b1)


def detect_history(
    series: MeterSeries, ctx: SiteContext, *, frame: Frame | None = None
) -> list[Finding]:
    """Flag a dedicated meter whose load while closed rose against its own baseline."""
    if series.role != "dedicated":
        return []
    fr = ensure_frame(series, ctx, frame)
    th = ctx.thresholds
    on = fr.open_ & fr.valid
    h = history_features(fr)
    if fr.coverage < th.min_coverage or h is None or not on.any():
        return []
    rise = drift.find_rise(h.day_num, h.actual, h.expected, h.baseline_end_day, th)
    if rise is None:
        return []
    before = float(h.expected[0])
    excess_kw = rise.level * before
    on_mean = float(fr.p_kw[on].mean())
    floor = max(th.night_min_kw, th.night_min_ratio * on_mean)
    annual_kwh = excess_kw * HOURS_PER_YEAR  # as a leak: around the clock
    if rise.level < th.history_min_rise_alone or excess_kw <= floor:
        return []
    if annual_kwh < th.min_annual_kwh:
        return []
    since = fr.cal.day_num[fr.cal.day] >= rise.t1
    value = fr.value((fr.valid & since).astype(float), annual_kwh)
    conf = 0.6 * fr.coverage * strength(excess_kw, floor)
    evidence: dict[str, float | str] = {
        "off_hours_kw_before": round(before, 2),
        "off_hours_kw_after": round(before + excess_kw, 2),
        "production_mean_kw": round(on_mean, 2),
        "rise": round(rise.level, 3),
        **drift.timeline(rise, h.baseline_end_day),
        "expected_from": "own history",
    }
    start_ms = drift.since_ms(fr, rise.t0)
    return [
        fr.finding(
            KIND, annual_kwh, value, conf, size=excess_kw, start_ms=start_ms, evidence=evidence
        )
    ]
