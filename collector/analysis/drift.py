"""Drift: CUSUM on daily residuals of an hour-of-week model fitted on the site's own baseline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from collector.analysis.findings import Finding
from collector.analysis.frame import EPOCH, Frame, ensure_frame, strength
from collector.analysis.series import INTERVAL_H, MeterSeries
from collector.analysis.site_context import SiteContext

KIND = "drift"
SLOTS = 7 * 24
SEASON_DAYS = 15  # window of the centred mean that smooths the sector's season


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
    slot = frame.weekday.astype(np.int64) * 24 + cal.quarter // 4
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


def smooth_days(day_num: np.ndarray, values: np.ndarray, window: int) -> np.ndarray:
    """Centred mean over `window` calendar days, ignoring NaN and missing days."""
    if len(day_num) == 0:
        return values
    pos = day_num - day_num[0]
    dense = np.zeros(int(pos[-1]) + 1)
    count = np.zeros_like(dense)
    ok = np.isfinite(values)
    dense[pos[ok]] = values[ok]
    count[pos[ok]] = 1.0
    kernel = np.ones(window)
    total = np.convolve(dense, kernel, mode="same")
    n = np.convolve(count, kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, total / n, np.nan)
    return out[pos]


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


def fit_ramp(
    day: np.ndarray, rel: np.ndarray, w: np.ndarray, season: np.ndarray | None, onset: int
) -> tuple[int, int, float, float]:
    """Fit rel = gap + beta * season + level * ramp(t0 -> t1) by weighted least squares.

    Returns (t0, t1, level, beta): use rises after day t0 and is fully up on day t1.
    `rel` is use relative to the own baseline; `season` the
    sector's median of the same. gap and beta (how strongly this site follows its sector; a
    large constant load follows it less) come from the days before t0 only, so the change
    cannot be mistaken for season. A step is a ramp of one day; t0 is searched up to 12 weeks
    before the CUSUM onset because slow drift starts unnoticed.
    """
    last = int(day[-1])
    sea = season if season is not None else np.zeros_like(rel)
    with_season = season is not None

    Fit = tuple[int, int, float, float, float]

    def search(t0s: range, t1s_of: Callable[[int], list[int]]) -> Fit:
        best = (onset, onset + 1, 0.0, 1.0, np.inf)
        for t0 in t0s:
            pre = day <= t0
            post = ~pre
            if not post.any():
                continue
            gap, beta = _pre_fit(rel[pre], w[pre], sea[pre], with_season)
            r = rel - gap - beta * sea
            wr = w[post] * r[post]
            t1 = np.array(t1s_of(t0), dtype=float)
            # all ramp ends at once: one-parameter least squares per row of g
            g = np.clip((day[post][None, :] - t0) / (t1[:, None] - t0), 0.0, 1.0)
            num = g @ wr
            den = (g * g) @ w[post]
            with np.errstate(invalid="ignore", divide="ignore"):
                sse = float(np.dot(w, r * r)) - np.where(den > 0, num * num / den, 0.0)
            i = int(np.argmin(sse))
            if sse[i] < best[4] and den[i] > 0:
                best = (t0, int(t1[i]), float(num[i] / den[i]), beta, float(sse[i]))
        return best

    # a weekly grid first, then day by day around the best weekly fit
    c0, c1, *_ = search(
        range(onset - 84, onset + 8, 7), lambda t0: [t0 + 1, *range(t0 + 7, last + 1, 7)]
    )
    t0, t1, level, beta, _ = search(
        range(c0 - 7, c0 + 8),
        lambda t0: list(range(max(t0 + 1, c1 - 7), min(c1 + 8, last + 1))) or [t0 + 1],
    )
    return t0, t1, level, beta


def _pre_fit(
    rel: np.ndarray, w: np.ndarray, season: np.ndarray, with_season: bool
) -> tuple[float, float]:
    """(gap, beta) on the days before a change; beta = 1 when too few days to tell."""
    if len(rel) < 28 or not with_season:
        return (float(np.dot(w, rel - season) / w.sum()) if len(rel) else 0.0), 1.0
    x = np.stack([np.ones_like(season), season], axis=1)
    xw = x * w[:, None]
    try:
        gap, beta = np.linalg.solve(x.T @ xw, xw.T @ rel)
    except np.linalg.LinAlgError:
        return float(np.dot(w, rel - season) / w.sum()), 1.0
    return float(gap), float(beta)


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
    if common is not None:
        # the sector median is noisy from day to day; unsmoothed, that noise would shrink the
        # fitted season response (regression dilution) and leave a bias in the rise
        common = smooth_days(f.day_num, common, SEASON_DAYS)
    expected = f.expected * (1 + (common if common is not None else 0.0))
    a = f.actual / expected - 1
    z = a / _robust_sigma(a)
    alarm, onset = cusum_upper(z, th.drift_k, th.drift_h)
    if alarm < 0:
        return []
    fin = np.isfinite(a) & (f.day_num >= f.baseline_end_day)
    if fin.sum() < th.drift_recent_days:
        return []
    season = common[fin] if common is not None else None
    t0, t1, level, beta = fit_ramp(
        f.day_num[fin], f.rel[fin], f.expected[fin], season, int(f.day_num[onset])
    )
    min_rel = th.drift_min_rel_peers if common is not None else th.drift_min_rel_alone
    regular_days_per_year = 365 - fr.special_days_per_year()
    seasonal = f.expected[fin] * (1 + beta * season) if season is not None else f.expected[fin]
    annual_kwh = level * float(np.mean(seasonal)) * regular_days_per_year
    if level < min_rel or annual_kwh < th.min_annual_kwh:
        return []
    day_ms = 86_400_000
    day0 = int(fr.cal.day_num[0])
    since = fr.cal.day_num[fr.cal.day] >= t1
    value = fr.value(np.where(since, fr.energy0, 0.0), annual_kwh)
    first_ms = int(fr.series.start_ms[0])
    start_ms = max(first_ms + (t0 - day0) * day_ms, first_ms)
    conf = fr.coverage * strength(level, min_rel) * (1.0 if common is not None else 0.6)
    rel, rise_days = level, t1 - t0
    evidence: dict[str, float | str] = {
        "change_date": str(EPOCH + dt.timedelta(days=t0 + 1)),
        "alarm_date": str(EPOCH + dt.timedelta(days=int(f.day_num[alarm]))),
        "baseline_until": str(EPOCH + dt.timedelta(days=f.baseline_end_day)),
        "rise": round(rel, 3),
        "follows_sector_season": round(beta, 2),
        "rise_days": rise_days,
        "shape": "step" if rise_days <= 10 else "gradual",
        "expected_from": "own baseline + sector season" if common is not None else "own baseline",
    }
    return [fr.finding(KIND, annual_kwh, value, conf, start_ms=start_ms, evidence=evidence)]
