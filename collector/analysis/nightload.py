"""Constant load on a dedicated process meter while production is off: leak-like load."""

from __future__ import annotations

import numpy as np

from collector.analysis.findings import Finding
from collector.analysis.frame import Frame, ensure_frame, strength
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
