"""Off-hours and weekend use: energy above the base load well outside opening hours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collector.analysis import peers
from collector.analysis.findings import Finding
from collector.analysis.frame import Frame, ensure_frame, strength
from collector.analysis.series import INTERVAL_H, MeterSeries
from collector.analysis.site_context import SiteContext

KIND = "offhours"


@dataclass(frozen=True)
class OffhoursFeatures:
    """ratio = yearly off-hours kWh above base load / yearly kWh in opening hours."""

    ratio: float
    open_kwh_year: float
    off_kwh_year: float  # all energy outside opening hours on ordinary days
    above_base_kwh_year: float
    weekend_above_base_kwh_year: float
    total_kwh_year: float


def features(frame: Frame) -> OffhoursFeatures | None:
    if frame.coverage < frame.ctx.thresholds.min_coverage or not np.isfinite(frame.base_kw):
        return None
    e, ok, yf = frame.energy0, frame.valid, frame.year_factor
    closed = frame.off_hours & ok
    # each day's own floor, so a base load that moved within the period is no off-hours use
    floor = np.where(np.isfinite(frame.day_p5_kw), frame.day_p5_kw, frame.base_kw)[frame.cal.day]
    above = np.where(closed, e - floor * INTERVAL_H, 0.0)
    open_kwh = float(e[frame.open_ & ok].sum()) * yf
    if open_kwh <= 0:
        return None
    weekend = frame.weekday >= 5
    return OffhoursFeatures(
        ratio=float(above.sum()) * yf / open_kwh,
        open_kwh_year=open_kwh,
        off_kwh_year=float(e[closed].sum()) * yf,
        above_base_kwh_year=float(above.sum()) * yf,
        weekend_above_base_kwh_year=float(above[weekend].sum()) * yf,
        total_kwh_year=float(e.sum()) * yf,
    )


def detect(
    series: MeterSeries,
    ctx: SiteContext,
    *,
    peer_ratio: float | None = None,
    frame: Frame | None = None,
) -> list[Finding]:
    """Flag off-hours energy above what the sector's peers (or a default) would use."""
    if series.role != "main":
        return []
    fr = ensure_frame(series, ctx, frame)
    f = features(fr)
    if f is None:
        return []
    th = ctx.thresholds
    peer_ratio = peers.usable(peer_ratio)  # a yardstick of zero or below judges nobody
    expected = peer_ratio if peer_ratio is not None else th.offhours_expected_alone
    annual_kwh = (f.ratio - expected) * f.open_kwh_year
    floor = max(th.min_annual_kwh, th.offhours_min_share * f.total_kwh_year)
    if f.ratio <= expected * (1 + th.offhours_peer_margin) or annual_kwh < floor:
        return []
    weights = np.where(fr.off_hours, np.clip(fr.p_kw - fr.base_kw, 0, None), 0.0)
    value = fr.value(weights, annual_kwh)
    trust = 1.0 if peer_ratio is not None else 0.6
    conf = trust * fr.coverage * strength(annual_kwh / f.total_kwh_year, th.offhours_min_share)
    closed_hours = float(fr.off_hours[fr.valid].mean()) * 8760
    size_kw = annual_kwh / max(closed_hours, 1.0)
    evidence: dict[str, float | str] = {
        "off_hours_kwh_per_year": round(f.off_kwh_year, 0),
        "above_base_kwh_per_year": round(f.above_base_kwh_year, 0),
        "expected_above_base_kwh_per_year": round(expected * f.open_kwh_year, 0),
        "weekend_above_base_kwh_per_year": round(f.weekend_above_base_kwh_year, 0),
        "ratio_to_open_hours": round(f.ratio, 3),
        "expected_ratio": round(expected, 3),
        "expected_from": "sector peers" if peer_ratio is not None else "default",
    }
    return [fr.finding(KIND, annual_kwh, value, conf, size=size_kw, evidence=evidence)]
