"""Peak demand and load shifting: spidslast energy, peaks, load factor and demand charge."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collector.analysis.findings import Finding
from collector.analysis.frame import Frame, ensure_frame, strength
from collector.analysis.money import BANDS, band_of, is_winter, rate_table
from collector.analysis.series import INTERVAL_H, INTERVALS_PER_DAY, MeterSeries
from collector.analysis.site_context import SiteContext

SHIFT = "peak_shift"
SHAVE = "peak_shave"
PEAK = 2  # index of spidslast in BANDS


@dataclass(frozen=True)
class PeakFeatures:
    """share = part of the energy above the base load that is used in spidslast.

    The base load runs in every band and cannot be moved, so it is left out of the share.
    """

    share: float
    profile: np.ndarray  # mean kW above base load per local quarter-hour, all days
    above_base_kwh_year: float
    total_kwh_year: float
    peak_kwh_year: float
    load_factor: float
    max_kw: float


def _peak_power(frame: Frame) -> np.ndarray:
    mp = frame.series.max_power_w
    return mp / 1000.0 if mp is not None else frame.p_kw


def features(frame: Frame) -> PeakFeatures | None:
    if frame.coverage < frame.ctx.thresholds.min_coverage:
        return None
    e, ok = frame.energy0, frame.valid
    total = float(e.sum())
    base = frame.base_kw if np.isfinite(frame.base_kw) else 0.0
    above = np.where(ok, e - base * INTERVAL_H, 0.0)
    in_peak = band_of(frame.cal, frame.ctx) == PEAK
    if total <= 0 or above.sum() <= 0:
        return None
    peak = float(e[in_peak].sum())
    max_kw = float(np.nanmax(frame.p_kw))
    q = frame.cal.quarter[ok]
    n = np.maximum(np.bincount(q, minlength=INTERVALS_PER_DAY), 1)
    profile = np.bincount(q, weights=above[ok], minlength=INTERVALS_PER_DAY) / n / INTERVAL_H
    return PeakFeatures(
        share=float(above[in_peak].sum() / above.sum()),
        profile=profile,
        above_base_kwh_year=float(above.sum()) * frame.year_factor,
        total_kwh_year=total * frame.year_factor,
        peak_kwh_year=peak * frame.year_factor,
        load_factor=float(frame.p_kw[ok].mean()) / max_kw if max_kw > 0 else 0.0,
        max_kw=max_kw,
    )


def _shoulder_excess_kwh_year(frame: Frame) -> float:
    """Energy in spidslast above the line between the quarters just before and after it."""
    band = frame.ctx.band_table
    ok = frame.valid
    q = frame.cal.quarter[ok]
    n = np.maximum(np.bincount(q, minlength=INTERVALS_PER_DAY), 1)
    prof = np.bincount(q, weights=frame.p_kw[ok], minlength=INTERVALS_PER_DAY) / n
    excess = 0.0
    idx = np.flatnonzero(band == PEAK)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if len(idx) else []
    for run in runs:
        a, b = int(run[0]), int(run[-1]) + 1
        left, right = prof[(a - 1) % INTERVALS_PER_DAY], prof[b % INTERVALS_PER_DAY]
        line = np.linspace(left, right, b - a + 2)[1:-1]
        excess += float(np.clip(prof[a:b] - line, 0, None).sum())
    return excess * INTERVAL_H * 365


def _shift_value(frame: Frame, kwh: float, dest: int) -> tuple[float, float]:
    """DKK and kg CO2 per year from moving `kwh` out of spidslast into band `dest`."""
    band = band_of(frame.cal, frame.ctx)
    ok = frame.valid
    in_peak = (band == PEAK) & ok
    rates = rate_table(frame.ctx)
    winter = is_winter(frame.cal, frame.ctx).astype(np.int8)
    delta = rates[winter, PEAK] - rates[winter, dest]
    w = np.where(in_peak, frame.energy0, 0.0)
    dkk = kwh * float(np.dot(w, delta)) / max(float(w.sum()), 1e-9)
    in_dest = (band == dest) & ok
    co2_delta = float(frame.co2[in_peak].mean()) - float(frame.co2[in_dest].mean())
    return dkk, kwh * co2_delta / 1000.0


def _top_peaks(frame: Frame, n: int = 5) -> dict[str, float | str]:
    p = np.nan_to_num(_peak_power(frame), nan=-np.inf)
    top = np.argsort(p)[::-1][:n]
    out: dict[str, float | str] = {}
    for rank, i in enumerate(top, 1):
        out[f"peak_{rank}_kw"] = round(float(p[i]), 1)
        out[f"peak_{rank}_at"] = str(frame.series.start_ms[i].astype("datetime64[ms]")) + "Z"
    return out


def detect_shift(
    series: MeterSeries,
    ctx: SiteContext,
    *,
    peer_share: float | None = None,
    frame: Frame | None = None,
) -> list[Finding]:
    """Flag energy in spidslast 17-21 beyond what peers (or the day's shoulders) suggest."""
    if series.role != "main":
        return []
    fr = ensure_frame(series, ctx, frame)
    f = features(fr)
    if f is None:
        return []
    th = ctx.thresholds
    if peer_share is not None:
        if f.share <= peer_share * (1 + th.shift_peer_margin) or peer_share >= 1:
            return []
        # shifted energy S solves (B + S) / (T + S) = share with B = peer_share * T
        annual_kwh = (f.share - peer_share) * f.above_base_kwh_year / (1 - peer_share)
        trust, expected = 1.0, peer_share
    else:
        annual_kwh = _shoulder_excess_kwh_year(fr) * fr.coverage
        trust = 0.5
        expected = f.share - annual_kwh / max(f.above_base_kwh_year, 1e-9)
    if annual_kwh < max(th.min_annual_kwh, th.shift_min_share * f.total_kwh_year):
        return []
    dest = BANDS.index(th.shift_to)
    value = _shift_value(fr, annual_kwh, dest)
    conf = trust * fr.coverage * strength(annual_kwh / f.total_kwh_year, th.shift_min_share)
    evidence: dict[str, float | str] = {
        "spidslast_kwh_per_year": round(f.peak_kwh_year, 0),
        "spidslast_share_above_base": round(f.share, 3),
        "expected_share": round(expected, 3),
        "expected_from": "sector peers" if peer_share is not None else "day shoulders",
        "load_factor": round(f.load_factor, 3),
        "shift_to": th.shift_to,
    }
    evidence |= _capacity(fr, f.max_kw) | _top_peaks(fr)
    return [fr.finding(SHIFT, annual_kwh, value, conf, evidence=evidence)]


def _capacity(frame: Frame, max_kw: float) -> dict[str, float | str]:
    ctx = frame.ctx
    out: dict[str, float | str] = {"max_15min_kw": round(max_kw, 1)}
    if ctx.contracted_kw:
        out["max_share_of_contracted"] = round(max_kw / ctx.contracted_kw, 3)
    if ctx.main_fuse_a:
        # three-phase 400 V at power factor 1: the most the main fuse lets through
        fuse_kw = 3**0.5 * 400 * ctx.main_fuse_a / 1000
        out["max_share_of_fuse"] = round(max_kw / fuse_kw, 3)
    return out


def detect_shave(
    series: MeterSeries, ctx: SiteContext, *, frame: Frame | None = None
) -> list[Finding]:
    """With a demand charge: what clipping each month's few highest peaks would save."""
    charge = ctx.grid_tariff.demand_charge_dkk_per_kw_month
    if series.role != "main" or charge <= 0:
        return []
    fr = ensure_frame(series, ctx, frame)
    th = ctx.thresholds
    if fr.coverage < th.min_coverage:
        return []
    months = fr.cal.day_num.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    month = months[fr.cal.day]
    p = fr.p_kw
    clips = []
    for m in np.unique(month):
        pm = p[(month == m) & fr.valid]
        if len(pm) >= INTERVALS_PER_DAY * 7:
            clips.append(float(pm.max() - np.quantile(pm, th.shave_quantile)))
    if not clips:
        return []
    reducible_kw = float(np.mean(clips))
    annual_dkk = reducible_kw * charge * 12
    if annual_dkk < th.shave_min_dkk:
        return []
    evidence: dict[str, float | str] = (
        {
            "months": len(clips),
            "reducible_kw_per_month": round(reducible_kw, 1),
            "demand_charge_dkk_per_kw_month": charge,
            "above_quantile": th.shave_quantile,
        }
        | _capacity(fr, float(np.nanmax(p)))
        | _top_peaks(fr)
    )
    conf = fr.coverage * min(1.0, len(clips) / 6)
    return [fr.finding(SHAVE, 0.0, (annual_dkk, 0.0), conf, size=reducible_kw, evidence=evidence)]
