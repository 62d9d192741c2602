"""Base load: the always-on floor of a site, against its opening pattern and its peers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collector.analysis.findings import Finding
from collector.analysis.frame import Frame, ensure_frame, strength
from collector.analysis.series import HOURS_PER_YEAR, MeterSeries
from collector.analysis.site_context import SiteContext

KIND = "baseload"


@dataclass(frozen=True)
class BaseloadFeatures:
    """Figures a peer comparison needs; ratio = base load / mean power in opening hours."""

    base_kw: float
    open_mean_kw: float
    mean_kw: float
    ratio: float
    closed_share: float  # share of the year's hours outside opening hours (incl. holidays)


def features(frame: Frame) -> BaseloadFeatures | None:
    ok = frame.valid
    open_ok = frame.open_ & ok
    if frame.coverage < frame.ctx.thresholds.min_coverage or not open_ok.any():
        return None
    open_mean = float(frame.p_kw[open_ok].mean())
    base = frame.base_kw
    if not np.isfinite(base) or open_mean <= 0:
        return None
    return BaseloadFeatures(
        base_kw=base,
        open_mean_kw=open_mean,
        mean_kw=float(frame.p_kw[ok].mean()),
        ratio=base / open_mean,
        closed_share=float((~frame.open_[ok]).mean()),
    )


def detect(
    series: MeterSeries,
    ctx: SiteContext,
    *,
    peer_ratio: float | None = None,
    frame: Frame | None = None,
) -> list[Finding]:
    """Flag a base load that is high against opening hours and (if given) the sector's peers."""
    if series.role != "main":
        return []
    fr = ensure_frame(series, ctx, frame)
    f = features(fr)
    if f is None:
        return []
    th = ctx.thresholds
    if peer_ratio is not None:
        expected = peer_ratio
        flagged = (
            f.ratio > peer_ratio * (1 + th.base_peer_margin)
            and f.ratio - peer_ratio >= th.base_min_excess_ratio
        )
        trust = 1.0
    else:
        # alone, only a floor above half the opening-hours load is clearly too high
        expected = th.base_ratio_target_alone
        flagged = f.ratio > th.base_ratio_max_alone
        trust = 0.6
    excess_kw = (f.ratio - expected) * f.open_mean_kw
    closed_hours = f.closed_share * HOURS_PER_YEAR
    annual_kwh = excess_kw * closed_hours  # the floor can go when the site is closed
    annual_total = f.mean_kw * HOURS_PER_YEAR
    if not flagged or annual_kwh < max(th.min_annual_kwh, th.base_min_share * annual_total):
        return []
    value = fr.value((~fr.open_).astype(float), annual_kwh)
    conf = trust * fr.coverage * strength(annual_kwh / annual_total, th.base_min_share)
    evidence: dict[str, float | str] = {
        "base_kw": round(f.base_kw, 2),
        "open_mean_kw": round(f.open_mean_kw, 2),
        "base_ratio": round(f.ratio, 3),
        "expected_ratio": round(expected, 3),
        "expected_from": "sector peers" if peer_ratio is not None else "default",
        "base_share_of_energy": round(f.base_kw / f.mean_kw, 3),
        "excess_kw": round(excess_kw, 2),
        "closed_hours_per_year": round(closed_hours, 0),
    }
    return [fr.finding(KIND, annual_kwh, value, conf, size=excess_kw, evidence=evidence)]
