"""Daily weather model: CalTRACK-style heating/cooling degree-day regression with a balance
point search, one intercept per weekday."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from collector.verification.ashrae import t_quantile
from collector.verification.lsq import grouped_wls
from collector.verification.rows import Rows
from collector.verification.rules import Resolution, Rules

DailyKind = Literal["intercept_only", "hdd", "cdd", "hdd_cdd"]
WEEKDAYS = 7


@dataclass(frozen=True)
class DailyModel:
    """kWh/day = intercept[weekday] + heating * HDD(bp_h) + cooling * CDD(bp_c) [+ driver]."""

    kind: DailyKind
    intercepts_kwh: np.ndarray  # per weekday Mon..Sun (holidays count as Sunday)
    heating_balance_c: float | None
    heating_kwh_per_degree_day: float
    cooling_balance_c: float | None
    cooling_kwh_per_degree_day: float
    driver_kwh_per_unit: float | None
    n_params: float  # intercepts, slopes and balance points (Guideline 14 counts all three)
    adjusted_r_squared: float
    name: Literal["caltrack_daily"] = field(default="caltrack_daily", init=False)
    resolution: Resolution = field(default="daily", init=False)

    @property
    def weather_dependent(self) -> bool:
        return self.kind != "intercept_only"

    def predict(self, rows: Rows) -> np.ndarray:
        out: np.ndarray = self.intercepts_kwh[rows.slot].astype(np.float64)
        t = rows.temperature_c
        if self.heating_balance_c is not None or self.cooling_balance_c is not None:
            if t is None:
                return np.full(rows.n, np.nan)
            if self.heating_balance_c is not None:
                out = out + self.heating_kwh_per_degree_day * np.maximum(
                    self.heating_balance_c - t, 0.0
                )
            if self.cooling_balance_c is not None:
                out = out + self.cooling_kwh_per_degree_day * np.maximum(
                    t - self.cooling_balance_c, 0.0
                )
        if self.driver_kwh_per_unit is not None:
            drv = rows.driver if rows.driver is not None else np.full(rows.n, np.nan)
            out = out + self.driver_kwh_per_unit * drv
        return out


def _residualise(
    g: np.ndarray, counts: np.ndarray, z: np.ndarray | None, m: np.ndarray
) -> np.ndarray:
    """Columns of m less their weekday means and (if given) their projection on z."""
    onehot = np.eye(WEEKDAYS)[g]
    means = (onehot.T @ m) / np.where(counts > 0, counts, 1.0)[:, None]
    out: np.ndarray = m - onehot @ means
    if z is not None:
        zz = float(z @ z)
        if zz > 0:
            out = out - np.outer(z, (z @ out) / zz)
    return out


def fit_daily(rows: Rows, use: np.ndarray, rules: Rules) -> DailyModel | None:
    """Fit on the days in `use` (energy and temperature present); None when too few days.

    Candidates: weekday intercepts only; plus HDD; plus CDD; plus both, over every balance
    point (pair) that has enough degree days. A candidate qualifies when each slope is
    positive and significant (two-sided p < rules.slope_max_p); the qualifying candidate
    with the highest adjusted R-squared wins (CalTRACK 3.4.3).
    """
    assert rows.temperature_c is not None
    y = rows.energy_kwh[use]
    temp = rows.temperature_c[use]
    g = rows.slot[use]
    drv = rows.driver[use] if rows.driver is not None else None
    n = len(y)
    counts = np.bincount(g, minlength=WEEKDAYS).astype(np.float64)
    base_p = int((counts > 0).sum()) + (drv is not None)
    if n < base_p + 4:
        return None
    bps = np.asarray(rules.balance_points_c)
    hdd = np.maximum(bps[None, :] - temp[:, None], 0.0)
    cdd = np.maximum(temp[:, None] - bps[None, :], 0.0)
    ok_h = ((hdd > 0).sum(0) >= rules.min_degree_days_nonzero) & (
        hdd.sum(0) >= rules.min_degree_days_total_c
    )
    ok_c = ((cdd > 0).sum(0) >= rules.min_degree_days_nonzero) & (
        cdd.sum(0) >= rules.min_degree_days_total_c
    )
    z = None
    if drv is not None:
        z = _residualise(g, counts, None, drv[:, None])[:, 0]
    yt = _residualise(g, counts, z, y[:, None])[:, 0]
    ht = _residualise(g, counts, z, hdd)
    ct = _residualise(g, counts, z, cdd)
    yy = float(yt @ yt)
    sst = float(((y - y.mean()) ** 2).sum())
    hh, cc = (ht * ht).sum(0), (ct * ct).sum(0)
    hy, cy = ht.T @ yt, ct.T @ yt
    hc = ht.T @ ct

    def adj_r2(sse: np.ndarray | float, slopes: int) -> np.ndarray:
        return 1.0 - (np.asarray(sse) / (n - base_p - slopes)) / (sst / (n - 1))

    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = t_quantile(1 - rules.slope_max_p / 2, n - base_p - 1)
        t2 = t_quantile(1 - rules.slope_max_p / 2, n - base_p - 2)
        # one slope
        b_h, b_c = hy / hh, cy / cc
        sse_h, sse_c = yy - b_h * hy, yy - b_c * cy
        q_h = ok_h & (b_h > 0) & (b_h / np.sqrt(sse_h / (n - base_p - 1) / hh) > t1)
        q_c = ok_c & (b_c > 0) & (b_c / np.sqrt(sse_c / (n - base_p - 1) / cc) > t1)
        # both slopes, heating balance point at or below the cooling one
        det = hh[:, None] * cc[None, :] - hc**2
        bh2 = (cc[None, :] * hy[:, None] - hc * cy[None, :]) / det
        bc2 = (hh[:, None] * cy[None, :] - hc * hy[:, None]) / det
        sse2 = yy - bh2 * hy[:, None] - bc2 * cy[None, :]
        s2 = sse2 / (n - base_p - 2)
        q2 = (
            ok_h[:, None]
            & ok_c[None, :]
            & (bps[:, None] <= bps[None, :])
            & (det > 0)
            & (bh2 > 0)
            & (bc2 > 0)
            & (bh2 / np.sqrt(s2 * cc[None, :] / det) > t2)
            & (bc2 / np.sqrt(s2 * hh[:, None] / det) > t2)
        )
    best: tuple[float, DailyKind, int, int] = (float(adj_r2(yy, 0)), "intercept_only", -1, -1)
    if q_h.any():
        r = np.where(q_h, adj_r2(sse_h, 1), -np.inf)
        i = int(np.argmax(r))
        best = max(best, (float(r[i]), "hdd", i, -1))
    if q_c.any():
        r = np.where(q_c, adj_r2(sse_c, 1), -np.inf)
        j = int(np.argmax(r))
        best = max(best, (float(r[j]), "cdd", -1, j))
    if q2.any():
        r2 = np.where(q2, adj_r2(sse2, 2), -np.inf)
        i2, j2 = (int(v) for v in np.unravel_index(int(np.argmax(r2)), r2.shape))
        best = max(best, (float(r2[i2, j2]), "hdd_cdd", i2, j2))
    score, kind, i, j = best
    cols = []
    if i >= 0:
        cols.append(hdd[:, i])
    if j >= 0:
        cols.append(cdd[:, j])
    if drv is not None:
        cols.append(drv)
    x = np.column_stack(cols) if cols else np.zeros((n, 0))
    fit = grouped_wls(g, WEEKDAYS, x, y, np.ones(n))
    beta = list(fit.beta)
    slope_h = beta.pop(0) if i >= 0 else 0.0
    slope_c = beta.pop(0) if j >= 0 else 0.0
    return DailyModel(
        kind=kind,
        intercepts_kwh=fit.alpha,
        heating_balance_c=float(bps[i]) if i >= 0 else None,
        heating_kwh_per_degree_day=float(slope_h),
        cooling_balance_c=float(bps[j]) if j >= 0 else None,
        cooling_kwh_per_degree_day=float(slope_c),
        driver_kwh_per_unit=float(beta.pop(0)) if drv is not None else None,
        n_params=float(base_p + 2 * ((i >= 0) + (j >= 0))),
        adjusted_r_squared=score,
    )
