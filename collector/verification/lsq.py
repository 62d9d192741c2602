"""Weighted least squares with one intercept per group (time-of-week, day type) and a few
shared slopes, solved by demeaning within groups instead of building the dummy matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EIG_TOL = 1e-10


@dataclass(frozen=True)
class GroupedFit:
    """y ~ alpha[group] + x @ beta; alpha is NaN for a group without weight."""

    alpha: np.ndarray  # (n_groups,)
    beta: np.ndarray  # (k,)
    beta_se_unit: np.ndarray  # (k,) standard error of beta per unit residual std deviation
    leverage: np.ndarray  # (n,) diagonal of the weighted hat matrix
    rank: int  # fitted parameters: non-empty groups + rank of the slopes

    def predict(self, group: np.ndarray, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.alpha[group] + (x @ self.beta if len(self.beta) else 0.0)
        return out


def _pinv_sym(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Pseudo-inverse and rank of a symmetric positive semi-definite matrix."""
    if a.size == 0:
        return a.copy(), 0
    vals, vecs = np.linalg.eigh(a)
    keep = vals > _EIG_TOL * max(float(vals.max()), 1.0)
    inv = (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T
    return inv, int(keep.sum())


def grouped_wls(
    group: np.ndarray, n_groups: int, x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> GroupedFit:
    """Fit y = alpha[group] + x @ beta by weighted least squares.

    With fixed beta each alpha is the weighted group mean of y - x @ beta, so beta comes
    from the regression of group-demeaned y on group-demeaned x (a k x k system). The hat
    matrix is the group projection plus the projection on demeaned x, so each leverage is
    w_i / W_g + w_i x~_i' A+ x~_i; their sum over a subset of rows is the number of
    parameters that subset used, which weighted segment models need for Guideline 14.
    """
    k = x.shape[1]
    wsum = np.bincount(group, weights=w, minlength=n_groups)
    has = wsum > 0
    safe = np.where(has, wsum, 1.0)
    ybar = np.bincount(group, weights=w * y, minlength=n_groups) / safe
    yt = y - ybar[group]
    xt = np.empty_like(x)
    xbar = np.empty((n_groups, k))
    for j in range(k):
        xbar[:, j] = np.bincount(group, weights=w * x[:, j], minlength=n_groups) / safe
        xt[:, j] = x[:, j] - xbar[group, j]
    wx = xt * w[:, None]
    a = xt.T @ wx
    ainv, rank_x = _pinv_sym(a)
    beta = ainv @ (wx.T @ yt) if k else np.zeros(0)
    alpha = np.where(has, ybar - xbar @ beta, np.nan)
    lev = w / safe[group]
    if k:
        lev = lev + w * ((xt @ ainv) * xt).sum(axis=1)
    return GroupedFit(
        alpha=alpha,
        beta=beta,
        beta_se_unit=np.sqrt(np.clip(np.diag(ainv), 0.0, None)),
        leverage=lev,
        rank=int(has.sum()) + rank_x,
    )
