"""Sector peer figures: what comparable sites show, leaving each site out of its own yardstick.

A yardstick is never below zero: a peer whose own figure came out negative (its base load
changed within the year, say) cannot make another site look wasteful.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

LARGE_SECTOR = 10  # above this one site barely moves the median, so it is computed once


def usable(yardstick: float | None) -> float | None:
    """A peer figure a site can be judged against: finite and above zero, else None."""
    if yardstick is None or not np.isfinite(yardstick) or yardstick <= 0:
        return None
    return float(yardstick)


def median_of_others(
    values: Mapping[str, float], sector_of: Mapping[str, str], min_peers: int
) -> dict[str, float | None]:
    """For each key: median of the other keys' values in its sector, at least 0 (None below
    min_peers)."""
    by_sector: dict[str, list[str]] = {}
    for key in values:
        by_sector.setdefault(sector_of[key], []).append(key)
    out: dict[str, float | None] = {}
    for keys in by_sector.values():
        arr = np.array([values[k] for k in keys], dtype=float)
        if len(keys) > LARGE_SECTOR:
            med = max(float(np.nanmedian(arr)), 0.0)
            out.update(dict.fromkeys(keys, med))
            continue
        for i, key in enumerate(keys):
            others = np.delete(arr, i)
            others = others[np.isfinite(others)]
            out[key] = max(float(np.median(others)), 0.0) if len(others) >= min_peers else None
    return out


def common_mode(
    days: Mapping[str, np.ndarray],
    rel: Mapping[str, np.ndarray],
    sector_of: Mapping[str, str],
    min_peers: int,
) -> dict[str, np.ndarray | None]:
    """For each key: per-day median relative residual of its sector peers, on its own days.

    A residual is use relative to expected minus one, so it never falls below -1.
    """
    by_sector: dict[str, list[str]] = {}
    for key in days:
        by_sector.setdefault(sector_of[key], []).append(key)
    out: dict[str, np.ndarray | None] = {}
    for keys in by_sector.values():
        if len(keys) <= min_peers:
            out.update(dict.fromkeys(keys))
            continue
        lo = min(int(days[k][0]) for k in keys if len(days[k]))
        hi = max(int(days[k][-1]) for k in keys if len(days[k]))
        mat = np.full((len(keys), hi - lo + 1), np.nan)
        for i, k in enumerate(keys):
            mat[i, days[k] - lo] = rel[k]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # days no peer covered stay NaN
            count = np.sum(np.isfinite(mat), axis=0)
            shared = np.nanmedian(mat, axis=0) if len(keys) > LARGE_SECTOR else None
            for i, k in enumerate(keys):
                if shared is not None:
                    cm = shared
                else:
                    cm = np.nanmedian(np.delete(mat, i, axis=0), axis=0)
                    cm[count - np.isfinite(mat[i]) < min_peers] = np.nan
                out[k] = np.clip(cm[days[k] - lo], -1.0, None)
    return out


def aligned_share(
    shares: Mapping[str, float],
    profiles: Mapping[str, np.ndarray],
    band: np.ndarray,
    sector_of: Mapping[str, str],
    min_peers: int,
    max_shift: int = 4,
) -> dict[str, float | None]:
    """For each key: the peers' median share of energy in `band` (bool per quarter-hour),
    within [0, 1].

    Peers rarely keep exactly the same hours. Each peer's daily profile is first shifted by
    up to `max_shift` quarter-hours to best match this site's profile outside the band, and
    its share is corrected by what that shift moves across the band edges.
    """
    by_sector: dict[str, list[str]] = {}
    for key in shares:
        by_sector.setdefault(sector_of[key], []).append(key)
    out: dict[str, float | None] = {}
    shifts = np.arange(-max_shift, max_shift + 1)
    for keys in by_sector.values():
        prof = np.array([profiles[k] for k in keys])  # (k, 96)
        share = np.array([shares[k] for k in keys])
        rolled = np.stack([np.roll(prof, s, axis=1) for s in shifts])  # (shift, k, 96)
        total = rolled.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            moved = rolled[:, :, band].sum(axis=2) / total - prof[:, band].sum(axis=1) / prof.sum(
                axis=1
            )
            outside = rolled[:, :, ~band]
            outside = outside / outside.sum(axis=2, keepdims=True)
        for i, key in enumerate(keys):
            own = prof[i, ~band] / prof[i, ~band].sum()
            dist = ((outside - own) ** 2).sum(axis=2)  # (shift, k)
            best = np.argmin(np.nan_to_num(dist, nan=np.inf), axis=0)
            expected = share + moved[best, np.arange(len(keys))]
            others = np.delete(expected, i)
            others = others[np.isfinite(others)]
            enough = len(others) >= min_peers
            out[key] = float(np.clip(np.median(others), 0.0, 1.0)) if enough else None
    return out
