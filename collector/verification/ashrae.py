"""ASHRAE Guideline 14 statistics: CV(RMSE), NMBE, autocorrelation and savings uncertainty."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from collector.verification.rules import Gate, Resolution

# Guideline 14 Annex B: empirical factor of the fractional savings uncertainty formula
FSU_FACTOR = 1.26


def t_quantile(p: float, df: float) -> float:
    """Quantile `p` of Student's t with `df` degrees of freedom.

    Exact for 1 and 2 degrees of freedom; above that the Cornish-Fisher expansion of the
    normal quantile in 1/df (Abramowitz and Stegun 26.7.5): within 0.005 of the tables from
    df = 3, within 0.001 from df = 5.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    df = max(float(df), 1.0)
    if df < 1.5:
        return math.tan(math.pi * (p - 0.5))
    if df < 2.5:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def lag1_autocorrelation(residuals: np.ndarray, adjacent: np.ndarray | None = None) -> float:
    """Lag-1 autocorrelation of residuals in time order.

    `adjacent[i]` says residual i+1 directly follows residual i (no gap between them); pairs
    across a gap are left out of the numerator.
    """
    e = np.asarray(residuals, dtype=np.float64)
    if len(e) < 3:
        return 0.0
    d = e - e.mean()
    denom = float(d @ d)
    if denom <= 0:
        return 0.0
    prod = d[:-1] * d[1:]
    if adjacent is not None:
        prod = prod[adjacent]
    # scale to the pairs actually used so gaps do not pull the estimate towards zero
    pairs = len(prod)
    if pairs == 0:
        return 0.0
    return float(prod.sum() / pairs) / (denom / len(e))


def effective_n(n: int, rho: float) -> float:
    """Guideline 14's effective number of observations n' = n (1 - rho) / (1 + rho).

    Only positive autocorrelation is corrected for; a negative rho counts as zero.
    """
    r = min(max(rho, 0.0), 0.99)
    return n * (1 - r) / (1 + r)


@dataclass(frozen=True)
class FitQuality:
    """Goodness of fit of a baseline model on its own baseline data, per Guideline 14."""

    resolution: Resolution
    n: int  # observations the model was fitted on
    p: float  # parameters (effective number for weighted segment models)
    mean_kwh: float  # mean observed energy per observation
    rmse_kwh: float  # sqrt(SSE / (n - p))
    cvrmse: float  # rmse / mean
    nmbe: float  # sum(observed - predicted) / ((n - p) * mean)
    r_squared: float
    rho: float  # lag-1 autocorrelation of the residuals
    n_effective: float  # n' = n (1 - rho) / (1 + rho)

    def problems(self, gate: Gate) -> list[str]:
        """Why the fit fails `gate`, one line per limit broken; empty when it passes."""
        out = []
        if not math.isfinite(self.cvrmse) or self.cvrmse > gate.max_cvrmse:
            out.append(
                f"CV(RMSE) {self.cvrmse:.1%} exceeds the {gate.max_cvrmse:.0%} limit for "
                f"{self.resolution} models (ASHRAE Guideline 14)"
            )
        if not math.isfinite(self.nmbe) or abs(self.nmbe) > gate.max_abs_nmbe:
            out.append(
                f"NMBE {self.nmbe:+.1%} exceeds the +/-{gate.max_abs_nmbe:.0%} limit for "
                f"{self.resolution} models (ASHRAE Guideline 14)"
            )
        return out


def fit_quality(
    observed: np.ndarray,
    predicted: np.ndarray,
    p: float,
    resolution: Resolution,
    adjacent: np.ndarray | None = None,
) -> FitQuality:
    """Guideline 14 metrics of predictions against observations (both without NaN)."""
    y = np.asarray(observed, dtype=np.float64)
    e = y - np.asarray(predicted, dtype=np.float64)
    n = len(y)
    dof = n - p
    mean = float(y.mean()) if n else math.nan
    if dof <= 0 or mean == 0 or not math.isfinite(mean):
        nan = math.nan
        return FitQuality(resolution, n, p, mean, nan, nan, nan, nan, 0.0, float(n))
    sse = float(e @ e)
    rmse = math.sqrt(sse / dof)
    sst = float(((y - mean) ** 2).sum())
    rho = lag1_autocorrelation(e, adjacent)
    return FitQuality(
        resolution=resolution,
        n=n,
        p=p,
        mean_kwh=mean,
        rmse_kwh=rmse,
        cvrmse=rmse / mean,
        nmbe=float(e.sum()) / (dof * mean),
        r_squared=1.0 - sse / sst if sst > 0 else math.nan,
        rho=rho,
        n_effective=effective_n(n, rho),
    )


def savings_uncertainty_kwh(
    fit: FitQuality, baseline_kwh: float, m: float, confidence: float
) -> float:
    """Half-width of the savings interval at `confidence`, in kWh (Guideline 14 Annex B).

    Fractional savings uncertainty
        dE/E = 1.26 t CV / F * sqrt((n / n') (1 + 2 / n') / m)
    with F = E / baseline_kwh, so dE = 1.26 t CV baseline_kwh sqrt(...). n and n' are the
    baseline's observations and their effective number, m the reporting period's
    observations at the model's resolution, t the two-sided t value with n - p degrees of
    freedom. Written in kWh it needs no savings fraction and stays finite for zero savings.
    """
    if m <= 0 or not math.isfinite(fit.cvrmse) or fit.n_effective <= 0:
        return math.nan
    t = t_quantile(0.5 + confidence / 2, fit.n - fit.p)
    n_ratio = fit.n / fit.n_effective
    return (
        FSU_FACTOR
        * t
        * fit.cvrmse
        * abs(baseline_kwh)
        * math.sqrt(n_ratio * (1 + 2 / fit.n_effective) / m)
    )
