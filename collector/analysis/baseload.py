"""Base load: the always-on floor of a site, against its opening pattern, its peers or its past."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collector.analysis import drift, peers
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
    peer_ratio = peers.usable(peer_ratio)  # a yardstick of zero or below judges nobody
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


def history_features(frame: Frame) -> drift.DriftFeatures | None:
    """Daily floor (5th percentile of power) on ordinary days against the baseline's median."""
    p5, day = frame.day_p5_kw, frame.cal.day_num
    keep = np.isfinite(p5) & ~frame.special_day
    b0, b1 = drift.baseline_days(frame)
    in_base = keep & (day >= b0) & (day < b1)
    if in_base.sum() < 14:
        return None
    floor = float(np.median(p5[in_base]))
    if floor <= 0:  # no floor to rise from: a rise has no relative size
        return None
    return drift.DriftFeatures(day[keep], p5[keep], np.full(int(keep.sum()), floor), b1)


def detect_history(
    series: MeterSeries,
    ctx: SiteContext,
    *,
    season: np.ndarray | None = None,
    frame: Frame | None = None,
) -> list[Finding]:
    """Flag a floor that rose against the site's own baseline (for sites without peers).

    `season` is the relative daily floor of the sector's other sites on the site's
    history_features days, if there are any; the rise is judged on top of it.
    """
    if series.role != "main":
        return []
    fr = ensure_frame(series, ctx, frame)
    f, h = features(fr), history_features(fr)
    if f is None or h is None:
        return []
    th = ctx.thresholds
    rise = drift.find_rise(h.day_num, h.actual, h.expected, h.baseline_end_day, th, season)
    if rise is None or not rise.shows_in_own_data():
        return []
    min_rise = th.history_min_rise if season is not None else th.history_min_rise_alone
    baseline_kw = float(h.expected[0])
    excess_kw = rise.level * baseline_kw
    closed_hours = f.closed_share * HOURS_PER_YEAR
    annual_kwh = excess_kw * closed_hours  # the added floor can go when the site is closed
    annual_total = f.mean_kw * HOURS_PER_YEAR
    if rise.level < min_rise or annual_kwh < max(
        th.min_annual_kwh, th.base_min_share * annual_total
    ):
        return []
    since = fr.cal.day_num[fr.cal.day] >= rise.t1
    value = fr.value((~fr.open_ & since).astype(float), annual_kwh)
    trust = 0.8 if season is not None else 0.6
    conf = trust * fr.coverage * strength(rise.level, min_rise)
    evidence: dict[str, float | str] = {
        "base_kw_before": round(baseline_kw, 2),
        "base_kw_after": round(baseline_kw + excess_kw, 2),
        "excess_kw": round(excess_kw, 2),
        "rise": round(rise.level, 3),
        "rise_in_own_data": round(rise.level_own, 3),
        **drift.timeline(rise, h.baseline_end_day),
        "closed_hours_per_year": round(closed_hours, 0),
        "expected_from": "own history + few peers' season" if season is not None else "own history",
    }
    start_ms = drift.since_ms(fr, rise.t0)
    return [
        fr.finding(
            KIND, annual_kwh, value, conf, size=excess_kw, start_ms=start_ms, evidence=evidence
        )
    ]
