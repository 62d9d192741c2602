"""Drift: CUSUM on daily residuals of an hour-of-week model fitted on the site's own baseline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from collector.analysis.findings import Finding
from collector.analysis.frame import EPOCH, Frame, ensure_frame, strength
from collector.analysis.series import INTERVAL_H, MeterSeries
from collector.analysis.site_context import SiteContext

KIND = "drift"
SLOTS = 7 * 24


@dataclass(frozen=True)
class DriftFeatures:
    """Daily actual and baseline-expected kWh on ordinary, well-covered days."""

    day_num: np.ndarray  # local day numbers (days since 1970-01-01)
    actual: np.ndarray
    expected: np.ndarray
    baseline_end_day: int

    @property
    def rel(self) -> np.ndarray:
        return self.actual / self.expected - 1


def _baseline_days(frame: Frame) -> tuple[int, int]:
    ctx, days = frame.ctx, frame.cal.day_num
    first = int(days[np.argmax(frame.day_coverage > 0)])
    start = (ctx.baseline_start - EPOCH).days if ctx.baseline_start else first
    end = (
        (ctx.baseline_end - EPOCH).days
        if ctx.baseline_end
        else start + 7 * ctx.thresholds.drift_baseline_weeks
    )
    return start, end


def features(frame: Frame) -> DriftFeatures | None:
    cal = frame.cal
    good_day = (frame.day_coverage >= 0.9) & ~frame.special_day
    b0, b1 = _baseline_days(frame)
    in_base_day = good_day & (cal.day_num >= b0) & (cal.day_num < b1)
    if in_base_day.sum() < 14:
        return None
    slot = cal.weekday.astype(np.int64) * 24 + cal.quarter // 4
    use = frame.valid & in_base_day[cal.day]
    n = np.bincount(slot[use], minlength=SLOTS)
    model_kw = np.bincount(slot[use], weights=frame.p_kw[use], minlength=SLOTS)
    with np.errstate(invalid="ignore", divide="ignore"):
        model_kw = np.where(n > 0, model_kw / n, np.nan)
    exp_i = model_kw[slot] * INTERVAL_H
    ok = frame.valid & np.isfinite(exp_i)
    actual = np.bincount(cal.day, weights=np.where(ok, frame.energy0, 0.0), minlength=cal.n_days)
    expected = np.bincount(cal.day, weights=np.where(ok, exp_i, 0.0), minlength=cal.n_days)
    keep = good_day & (expected > 0)
    return DriftFeatures(cal.day_num[keep], actual[keep], expected[keep], b1)


def cusum_upper(z: np.ndarray, k: float, h: float) -> tuple[int, int]:
    """(first alarm index, start of the run that raised it), or (-1, -1) without an alarm."""
    s, start = 0.0, 0
    for i, zi in enumerate(z):
        if not np.isfinite(zi):
            continue
        s = max(0.0, s + zi - k)
        if s == 0.0:
            start = i + 1
        elif s > h:
            return i, min(start, i)
    return -1, -1


def _robust_sigma(a: np.ndarray) -> float:
    d = np.diff(a[np.isfinite(a)])
    if len(d) < 5:
        return 0.05
    mad = float(np.median(np.abs(d - np.median(d))))
    return max(1.4826 * mad / np.sqrt(2), 0.01)


def detect(
    series: MeterSeries,
    ctx: SiteContext,
    *,
    common: np.ndarray | None = None,
    frame: Frame | None = None,
) -> list[Finding]:
    """Flag a lasting rise against the site's own baseline.

    `common` is the sector's median relative residual on the same days as this meter's
    DriftFeatures.day_num: subtracting it removes season and weather shared with the peers.
    """
    fr = ensure_frame(series, ctx, frame)
    th = ctx.thresholds
    f = features(fr)
    if f is None or fr.coverage < th.min_coverage:
        return []
    expected = f.expected * (1 + (common if common is not None else 0.0))
    a = f.actual / expected - 1
    z = a / _robust_sigma(a)
    alarm, onset = cusum_upper(z, th.drift_k, th.drift_h)
    if alarm < 0:
        return []
    recent = np.isfinite(a) & (f.day_num > f.day_num[-1] - th.drift_recent_days)
    recent_expected = float(expected[recent].sum())
    if recent_expected <= 0:
        return []
    rel = float((f.actual[recent] - expected[recent]).sum()) / recent_expected
    min_rel = th.drift_min_rel_peers if common is not None else th.drift_min_rel_alone
    regular_days_per_year = 365 - fr.special_days_per_year()
    annual_kwh = rel * float(np.nanmean(expected)) * regular_days_per_year
    if rel < min_rel or annual_kwh < th.min_annual_kwh:
        return []
    # days from the change until a week's mean reached 80 % of today's level: step or slow
    after = np.nan_to_num(a[onset:], nan=0.0)
    week = np.convolve(after, np.ones(7) / 7, mode="valid") if len(after) >= 7 else after
    reached = np.flatnonzero(week >= 0.8 * rel)
    rise_days = int(f.day_num[onset + reached[0] + min(6, len(after) - 1)] - f.day_num[onset]) \
        if len(reached) else int(f.day_num[-1] - f.day_num[onset])
    day_ms = 86_400_000
    day0 = int(fr.cal.day_num[0])
    recent_iv = np.isin(fr.cal.day_num[fr.cal.day], f.day_num[recent])
    dkk, kg = fr.value(np.where(recent_iv, fr.energy0, 0.0), annual_kwh)
    start_ms = int(fr.series.start_ms[0]) + (int(f.day_num[onset]) - day0) * day_ms
    conf = fr.coverage * strength(rel, min_rel) * (1.0 if common is not None else 0.6)
    return [
        Finding(
            site=series.site,
            meter=series.meter,
            kind=KIND,
            period_start_ms=max(start_ms, int(fr.series.start_ms[0])),
            period_end_ms=fr.series.end_ms,
            annual_kwh=annual_kwh,
            annual_dkk=dkk,
            annual_kg_co2=kg,
            confidence=conf,
            evidence={
                "change_date": str(EPOCH + dt.timedelta(days=int(f.day_num[onset]))),
                "alarm_date": str(EPOCH + dt.timedelta(days=int(f.day_num[alarm]))),
                "baseline_until": str(EPOCH + dt.timedelta(days=f.baseline_end_day)),
                "recent_rise": round(rel, 3),
                "rise_days": rise_days,
                "shape": "step" if rise_days <= 10 else "gradual",
                "expected_from": "own baseline + sector season" if common is not None
                else "own baseline",
            },
        )
    ]
