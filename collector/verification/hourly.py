"""Hourly weather model: CalTRACK's time-of-week and temperature regression, one model per
calendar month fitted on three months with the neighbours at half weight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from collector.verification.lsq import grouped_wls
from collector.verification.rows import Rows
from collector.verification.rules import Resolution, Rules

HOURS_OF_WEEK = 168
MONTHS = 12


def merge_bins(
    temperature_c: np.ndarray, endpoints: tuple[float, ...], min_hours: int
) -> np.ndarray:
    """Bin endpoints left once every bin holds `min_hours` temperatures (CalTRACK 3.9.1.2):
    a short bin loses its upper endpoint and joins the next one; the top bin loses its lower
    endpoint."""
    ends = list(endpoints)
    while ends:
        counts = np.bincount(
            np.searchsorted(ends, temperature_c, side="left"), minlength=len(ends) + 1
        )
        short = np.flatnonzero(counts < min_hours)
        if not len(short):
            break
        b = int(short[0])
        ends.pop(b if b < len(ends) else b - 1)
    return np.asarray(ends)


def temperature_features(temperature_c: np.ndarray, endpoints: np.ndarray) -> np.ndarray:
    """Piecewise-linear temperature features (CalTRACK 3.9.1): the part of the temperature
    that falls in each bin, the first bin measured from zero."""
    t = temperature_c[:, None]
    if not len(endpoints):
        return t.copy()
    upper = np.concatenate((endpoints, [np.inf]))
    base = np.concatenate(([0.0], endpoints))
    out: np.ndarray = np.clip(np.minimum(t, upper) - base, 0.0, None)
    out[:, 0] = np.minimum(temperature_c, upper[0])
    return out


@dataclass(frozen=True)
class Segment:
    """The model for one calendar month."""

    endpoints_c: np.ndarray  # temperature bin endpoints after merging short bins
    occupied: np.ndarray  # (168,) bool: the hour of week runs above the degree-hour fit
    alpha_kwh: np.ndarray  # (168,) per hour of week; NaN where the segment saw no data
    beta: np.ndarray  # temperature slopes occupied, then unoccupied, then the driver
    n_params: float  # leverage of the month's own hours (its share of the fitted parameters)

    def design(
        self, temperature_c: np.ndarray, slot: np.ndarray, driver: np.ndarray | None
    ) -> np.ndarray:
        f = temperature_features(temperature_c, self.endpoints_c)
        occ = self.occupied[slot][:, None]
        cols = [f * occ, f * ~occ]
        if driver is not None:
            cols.append(driver[:, None])
        return np.hstack(cols)


@dataclass(frozen=True)
class HourlyModel:
    """Twelve month segments; a row is predicted by the segment of its calendar month."""

    segments: tuple[Segment, ...]
    has_driver: bool
    n_params: float
    name: Literal["caltrack_hourly"] = field(default="caltrack_hourly", init=False)
    resolution: Resolution = field(default="hourly", init=False)

    def predict(self, rows: Rows) -> np.ndarray:
        out = np.full(rows.n, np.nan)
        if rows.temperature_c is None:
            return out
        drv = rows.driver if self.has_driver else None
        if self.has_driver and drv is None:
            return out
        for m, seg in enumerate(self.segments):
            sel = np.flatnonzero(rows.month == m)
            if not len(sel):
                continue
            slot = rows.slot[sel]
            x = seg.design(rows.temperature_c[sel], slot, None if drv is None else drv[sel])
            out[sel] = seg.alpha_kwh[slot] + x @ seg.beta
        return out


def _occupancy(
    t: np.ndarray, y: np.ndarray, slot: np.ndarray, w: np.ndarray, rules: Rules
) -> np.ndarray:
    """Hours of week where the load runs above a 50 F / 65 F degree-hour fit more than 65 %
    of the (weighted) time (CalTRACK 3.8)."""
    x = np.column_stack(
        (
            np.maximum(rules.occupancy_heating_c - t, 0.0),
            np.maximum(t - rules.occupancy_cooling_c, 0.0),
        )
    )
    fit = grouped_wls(np.zeros(len(y), dtype=np.int64), 1, x, y, w)
    above = (y - fit.predict(np.zeros(len(y), dtype=np.int64), x)) > 0
    total = np.bincount(slot, weights=w, minlength=HOURS_OF_WEEK)
    share = np.bincount(slot, weights=w * above, minlength=HOURS_OF_WEEK) / np.where(
        total > 0, total, 1.0
    )
    return share > rules.occupied_share


def fit_hourly(rows: Rows, use: np.ndarray, rules: Rules) -> HourlyModel:
    """Fit the twelve month segments on the hours in `use` (energy and temperature present)."""
    assert rows.temperature_c is not None
    has_driver = rows.driver is not None
    segments = []
    for m in range(MONTHS):
        own = use & (rows.month == m)
        near = use & ((rows.month == (m - 1) % MONTHS) | (rows.month == (m + 1) % MONTHS))
        sel = np.flatnonzero(own | near)
        w = np.where(own[sel], 1.0, rules.neighbour_month_weight)
        t = rows.temperature_c[sel]
        y = rows.energy_kwh[sel]
        slot = rows.slot[sel]
        drv = rows.driver[sel] if rows.driver is not None else None
        occupied = _occupancy(t, y, slot, w, rules)
        ends = merge_bins(t, rules.bin_endpoints_c, rules.min_hours_per_bin)
        seg = Segment(ends, occupied, np.zeros(0), np.zeros(0), 0.0)
        x = seg.design(t, slot, drv)
        fit = grouped_wls(slot, HOURS_OF_WEEK, x, y, w)
        segments.append(
            Segment(ends, occupied, fit.alpha, fit.beta, float(fit.leverage[own[sel]].sum()))
        )
    return HourlyModel(
        segments=tuple(segments),
        has_driver=has_driver,
        n_params=float(sum(s.n_params for s in segments)),
    )
