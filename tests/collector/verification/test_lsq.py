"""The grouped least-squares solver against the full dummy-variable regression."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.verification.lsq import grouped_wls


def _dense(group: np.ndarray, n_groups: int, x: np.ndarray) -> np.ndarray:
    return np.hstack((np.eye(n_groups)[group], x))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(0, 3), n_groups=st.integers(1, 6))
def test_grouped_fit_equals_dummy_regression_and_leverage_sums_to_rank(
    seed: int, k: int, n_groups: int
) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    group = np.concatenate((np.arange(n_groups), rng.integers(0, n_groups, n - n_groups)))
    x = rng.normal(size=(n, k))
    y = rng.normal(size=n) + 3 * group
    w = rng.uniform(0.5, 1.0, n)
    fit = grouped_wls(group, n_groups, x, y, w)

    sw = np.sqrt(w)
    design = _dense(group, n_groups, x)
    coef, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
    np.testing.assert_allclose(fit.alpha, coef[:n_groups], atol=1e-8)
    np.testing.assert_allclose(fit.beta, coef[n_groups:], atol=1e-8)
    np.testing.assert_allclose(fit.predict(group, x), design @ coef, atol=1e-8)

    wd = design * sw[:, None]
    hat = wd @ np.linalg.pinv(wd.T @ wd) @ wd.T
    np.testing.assert_allclose(fit.leverage, np.diag(hat), atol=1e-8)
    assert fit.rank == n_groups + k
    assert abs(fit.leverage.sum() - fit.rank) < 1e-8


def test_a_group_without_data_has_no_coefficient_and_a_constant_column_is_dropped() -> None:
    group = np.array([0, 0, 1, 1, 0, 1])
    x = np.column_stack((np.arange(6.0), np.ones(6)))  # the second column is the intercepts'
    y = np.array([1.0, 2.0, 5.0, 6.0, 5.0, 9.0])
    fit = grouped_wls(group, 3, x, y, np.ones(6))
    assert np.isnan(fit.alpha[2])
    assert fit.rank == 3  # two groups, one slope; the constant adds nothing
    assert abs(fit.leverage.sum() - 3) < 1e-9
