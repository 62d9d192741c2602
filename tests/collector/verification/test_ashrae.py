"""Guideline 14 statistics on examples small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.verification import GATES, Gate, fit_quality, savings_uncertainty_kwh
from collector.verification.ashrae import (
    FitQuality,
    effective_n,
    lag1_autocorrelation,
    t_quantile,
)

OBSERVED = np.array([10.0, 12.0, 14.0, 16.0, 18.0])
PREDICTED = np.array([11.0, 11.0, 15.0, 15.0, 19.0])


def test_cvrmse_nmbe_and_r_squared_match_the_hand_calculation() -> None:
    # residuals -1, 1, -1, 1, -1: SSE 5, sum -1, mean 14, n - p = 4, SST 40
    fq = fit_quality(OBSERVED, PREDICTED, p=1, resolution="hourly")
    assert fq.n == 5
    assert fq.mean_kwh == 14.0
    assert fq.rmse_kwh == pytest.approx(math.sqrt(5 / 4))
    assert fq.cvrmse == pytest.approx(math.sqrt(5 / 4) / 14)  # 7.99 %
    assert fq.nmbe == pytest.approx(-1 / (4 * 14))  # -1.79 %
    assert fq.r_squared == pytest.approx(1 - 5 / 40)
    # alternating residuals: rho -1, and negative autocorrelation is not corrected for
    assert fq.rho == pytest.approx(-1.0)
    assert fq.n_effective == 5


def test_lag1_autocorrelation_and_effective_n_by_hand() -> None:
    # deviations 1,1,1,-1,-1,-1: pair products 1,1,-1,1,1 (mean 0.6), mean square 1
    rho = lag1_autocorrelation(np.array([1.0, 1.0, 1.0, -1.0, -1.0, -1.0]))
    assert rho == pytest.approx(0.6)
    assert effective_n(6, rho) == pytest.approx(6 * 0.4 / 1.6)


def test_lag1_autocorrelation_skips_pairs_across_gaps() -> None:
    e = np.array([1.0, 1.0, -1.0, -1.0])
    # without gaps the middle pair (1, -1) counts: products 1, -1, 1 -> 1/3
    assert lag1_autocorrelation(e) == pytest.approx(1 / 3)
    # a gap between the 2nd and 3rd residual leaves pairs (1, 1) and (-1, -1) -> 1
    adjacent = np.array([True, False, True])
    assert lag1_autocorrelation(e, adjacent) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        (0.95, 1, 6.3138),
        (0.975, 2, 4.3027),
        (0.95, 3, 2.3534),
        (0.95, 5, 2.0150),
        (0.975, 10, 2.2281),
        (0.95, 30, 1.6973),
        (0.975, 120, 1.9799),
    ],
)
def test_t_quantile_matches_the_tables(p: float, df: int, table: float) -> None:
    assert t_quantile(p, df) == pytest.approx(table, abs=0.005 if df < 5 else 0.001)


def test_savings_uncertainty_follows_guideline_14_annex_b() -> None:
    # n 365 days, p 9, CV 10 %, rho 0.3 -> n' = 365 * 0.7 / 1.3 = 196.54; t(0.95, 356) = 1.6491
    # dE = 1.26 * 1.6491 * 0.10 * 100000 * sqrt((365 / 196.54) * (1 + 2 / 196.54) / 365)
    fq = FitQuality("daily", 365, 9, 274.0, 27.4, 0.10, 0.0, 0.8, 0.3, effective_n(365, 0.3))
    half = savings_uncertainty_kwh(fq, baseline_kwh=100_000, m=365, confidence=0.90)
    assert half == pytest.approx(1489.7, abs=0.1)
    # the interval shrinks with the square root of the reporting length
    quarter = savings_uncertainty_kwh(fq, baseline_kwh=25_000, m=365 / 4, confidence=0.90)
    assert quarter == pytest.approx(half / 2, rel=1e-9)


def test_gates_name_the_limit_a_fit_breaks() -> None:
    fq = FitQuality("hourly", 8760, 200, 10.0, 3.5, 0.35, -0.12, 0.5, 0.6, 2190.0)
    problems = fq.problems(GATES["hourly"])
    assert problems == [
        "CV(RMSE) 35.0% exceeds the 30% limit for hourly models (ASHRAE Guideline 14)",
        "NMBE -12.0% exceeds the +/-10% limit for hourly models (ASHRAE Guideline 14)",
    ]
    monthly = FitQuality("monthly", 12, 3, 10.0, 1.6, 0.16, 0.04, 0.9, 0.0, 12.0)
    assert len(monthly.problems(GATES["monthly"])) == 1  # 16 % > 15 %; 4 % is within 5 %
    assert fq.problems(Gate(max_cvrmse=0.40, max_abs_nmbe=0.15)) == []
