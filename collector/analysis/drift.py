"""Drift: CUSUM on daily residuals of an hour-of-week model fitted on the site's own baseline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from collector.analysis.findings import Finding
from collector.analysis.frame import EPOCH, Frame, ensure_frame, strength
from collector.analysis.series import INTERVAL_H, MeterSeries
from collector.analysis.site_context import SiteContext, Thresholds

KIND = "drift"
SLOTS = 7 * 24
SEASON_DAYS = 15  # window of the centred mean that smooths the sector's season
# with the season of fewer than min_peers sites, a rise must show at least this share of its
# size in the site's own data too: a single peer that dropped would otherwise look like a rise.
# The own data is read on days within SAME_SEASON_DAYS of the baseline's time of year
# (a year later, too), so the site's own season does not pass for a rise.
OWN_SHARE_FEW_PEERS = 0.5
SAME_SEASON_DAYS = 42


@dataclass(frozen=True)
class DriftFeatures:
    """Daily actual and baseline-expected figures (kWh; kW for a floor) on ordinary days."""

    day_num: np.ndarray  # local day numbers (days since 1970-01-01)
    actual: np.ndarray
    expected: np.ndarray
    baseline_end_day: int

    @property
    def rel(self) -> np.ndarray:
        return self.actual / self.expected - 1


def baseline_days(frame: Frame) -> tuple[int, int]:
    """[first, end) local day numbers of the own baseline: the context's dates or first weeks."""
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
    b0, b1 = baseline_days(frame)
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
    before the CUSUM onset because slow drift starts unnoticed, and up to 4 weeks after it
    because an edge of the season can raise the alarm a little before the change.
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
        range(onset - 84, onset + 29, 7), lambda t0: [t0 + 1, *range(t0 + 7, last + 1, 7)]
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


@dataclass(frozen=True)
class Rise:
    """A lasting rise of a daily series over its own baseline: up after day t0, full on t1."""

    t0: int
    t1: int
    level: float  # relative to the baseline, on top of the site's usual season
    beta: float  # how strongly the series follows the season it was given
    alarm_day: int
    used: np.ndarray  # bool per input day: the days after the baseline the fit used
    season: np.ndarray | None  # smoothed season per input day, None without one
    level_own: float  # the same ramp fitted without the season

    def shows_in_own_data(self) -> bool:
        """Whether enough of the rise is seen without the season (see OWN_SHARE_FEW_PEERS)."""
        return self.level_own >= OWN_SHARE_FEW_PEERS * self.level


def find_rise(
    day_num: np.ndarray,
    actual: np.ndarray,
    expected: np.ndarray,
    baseline_end_day: int,
    th: Thresholds,
    season: np.ndarray | None = None,
) -> Rise | None:
    """CUSUM alarm and ramp fit of `actual` against its own baseline `expected`, per day.

    `season` is a relative residual shared with comparable sites on the same days; it is
    smoothed over SEASON_DAYS first. None when there is no alarm or too few recent days.
    """
    if season is not None:
        # the sector median is noisy from day to day; unsmoothed, that noise would shrink the
        # fitted season response (regression dilution) and leave a bias in the rise
        season = smooth_days(day_num, season, SEASON_DAYS)
        # a share can fall at most to nothing: an expectation below zero is no expectation
        season = np.clip(season, -1.0, None)
    scaled = expected * (1 + season) if season is not None else expected
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(scaled > 0, actual / scaled - 1, np.nan)
        rel = np.where(expected > 0, actual / expected - 1, np.nan)
    z = a / _robust_sigma(a)
    alarm, onset = cusum_upper(z, th.drift_k, th.drift_h)
    if alarm < 0:
        return None
    used = np.isfinite(a) & np.isfinite(rel) & (day_num >= baseline_end_day)
    if used.sum() < th.drift_recent_days:
        return None
    day, rel, w = day_num[used], rel[used], expected[used]
    t0, t1, level, beta = fit_ramp(
        day, rel, w, season[used] if season is not None else None, int(day_num[onset])
    )
    own = level
    if season is not None:
        pos = (day - int(day_num[0])) % 365  # place in the year, counted from the first day
        like = (pos < baseline_end_day - int(day_num[0]) + SAME_SEASON_DAYS) | (
            pos > 365 - SAME_SEASON_DAYS
        )
        keep = like.copy()
        if np.sum(keep & (day > t1)) < 7:  # the data has not come round to that season yet
            keep[:] = True
        own = _ramp_level(day[keep], rel[keep], w[keep], t0, t1)
    return Rise(t0, t1, level, beta, int(day_num[alarm]), used, season, own)


def _ramp_level(day: np.ndarray, rel: np.ndarray, w: np.ndarray, t0: int, t1: int) -> float:
    """Weighted least-squares size of ramp(t0 -> t1) in `rel`, over its mean before t0."""
    pre = day <= t0
    gap, _ = _pre_fit(rel[pre], w[pre], np.zeros(int(pre.sum())), with_season=False)
    g = np.clip((day[~pre] - t0) / max(t1 - t0, 1), 0.0, 1.0)
    den = float(np.dot(g * g, w[~pre]))
    return float(np.dot(g * w[~pre], rel[~pre] - gap)) / den if den > 0 else 0.0


def day_str(day: int) -> str:
    """Local day number as an ISO date."""
    return str(EPOCH + dt.timedelta(days=int(day)))


def timeline(rise: Rise, baseline_end_day: int) -> dict[str, float | str]:
    """When a rise began and was noticed, how long it took, and the baseline it is
    measured against: the evidence every history-based detector shows."""
    days = rise.t1 - rise.t0
    return {
        "change_date": day_str(rise.t0 + 1),
        "alarm_date": day_str(rise.alarm_day),
        "baseline_until": day_str(baseline_end_day),
        "rise_days": days,
        "shape": "step" if days <= 10 else "gradual",
    }


def since_ms(frame: Frame, day: int) -> int:
    """Epoch ms where the evidence of a change that began on local day `day` starts."""
    first_ms = int(frame.series.start_ms[0])
    return max(first_ms + (day - int(frame.cal.day_num[0])) * 86_400_000, first_ms)


def detect(
    series: MeterSeries,
    ctx: SiteContext,
    *,
    common: np.ndarray | None = None,
    few_peers: bool = False,
    frame: Frame | None = None,
) -> list[Finding]:
    """Flag a lasting rise against the site's own baseline.

    `common` is the sector's median relative residual on the same days as this meter's
    DriftFeatures.day_num: subtracting it removes season and weather shared with the peers.
    `few_peers` says it comes from fewer than `min_peers` sites: it is then only a season
    for the site's own history, and a rise must reach `drift_min_rel_few_peers`.
    """
    fr = ensure_frame(series, ctx, frame)
    th = ctx.thresholds
    f = features(fr)
    if f is None or fr.coverage < th.min_coverage:
        return []
    rise = find_rise(f.day_num, f.actual, f.expected, f.baseline_end_day, th, common)
    if rise is None or (few_peers and not rise.shows_in_own_data()):
        return []
    t0, t1, level, beta = rise.t0, rise.t1, rise.level, rise.beta
    if common is None:
        min_rel, trust, source = th.drift_min_rel_alone, 0.6, "own baseline"
    elif few_peers:
        min_rel, trust, source = th.drift_min_rel_few_peers, 0.8, "own history + few peers' season"
    else:
        min_rel, trust, source = th.drift_min_rel_peers, 1.0, "own baseline + sector season"
    regular_days_per_year = 365 - fr.special_days_per_year()
    seasonal = f.expected[rise.used]
    if rise.season is not None:
        seasonal = seasonal * (1 + beta * rise.season[rise.used])
    annual_kwh = level * float(np.mean(seasonal)) * regular_days_per_year
    if level < min_rel or annual_kwh < th.min_annual_kwh:
        return []
    since = fr.cal.day_num[fr.cal.day] >= t1
    value = fr.value(np.where(since, fr.energy0, 0.0), annual_kwh)
    start_ms = since_ms(fr, t0)
    conf = fr.coverage * strength(level, min_rel) * trust
    evidence: dict[str, float | str] = {
        **timeline(rise, f.baseline_end_day),
        "rise": round(level, 3),
        "rise_in_own_data": round(rise.level_own, 3),
        "follows_sector_season": round(beta, 2),
        "expected_from": source,
    }
    return [fr.finding(KIND, annual_kwh, value, conf, start_ms=start_ms, evidence=evidence)]
