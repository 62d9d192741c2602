"""Prices: tariff band and DKK/kWh per interval, valuing savings, payback and 'rentabel'."""

from __future__ import annotations

import math

import numpy as np

from collector.analysis import hourly
from collector.analysis.localtime import LocalCalendar
from collector.analysis.site_context import SiteContext

BANDS = ("lavlast", "hoejlast", "spidslast")


def band_of(cal: LocalCalendar, ctx: SiteContext) -> np.ndarray:
    """Int8 per interval: 0 lavlast, 1 hoejlast, 2 spidslast (local wall-clock time)."""
    return ctx.band_table[cal.quarter]


def is_winter(cal: LocalCalendar, ctx: SiteContext) -> np.ndarray:
    return np.isin(cal.month, ctx.grid_tariff.winter_months)


def rate_table(ctx: SiteContext) -> np.ndarray:
    """(2, 3) grid rates DKK/kWh: row 0 summer, row 1 winter; columns are BANDS."""
    t = ctx.grid_tariff
    return np.array([[getattr(r, b) for b in BANDS] for r in (t.summer, t.winter)])


def grid_rate(cal: LocalCalendar, ctx: SiteContext) -> np.ndarray:
    """Grid tariff DKK/kWh for each interval."""
    return rate_table(ctx)[is_winter(cal, ctx).astype(np.int8), band_of(cal, ctx)]


def spot_price(start_ms: np.ndarray, ctx: SiteContext) -> np.ndarray:
    """Spot DKK/kWh for each interval: its hour's price, or the flat one."""
    price = ctx.energy_price
    return hourly.per_interval(
        start_ms,
        price.spot_hourly_csv,
        "dkk_per_kwh",
        price.spot_dkk_per_kwh,
        "spot price",
        ctx.price_area,
    )


def price_per_kwh(cal: LocalCalendar, ctx: SiteContext, start_ms: np.ndarray) -> np.ndarray:
    """Full marginal price DKK/kWh ex VAT for each interval: spot, supplier margin, taxes and
    grid tariff."""
    price = ctx.energy_price
    return (
        spot_price(start_ms, ctx)
        + price.supplier_margin_dkk_per_kwh
        + price.taxes_dkk_per_kwh
        + grid_rate(cal, ctx)
    )


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """Mean of `values` weighted by `weights` (NaN weights count as 0)."""
    w = np.nan_to_num(weights, nan=0.0)
    total = float(w.sum())
    if total <= 0:
        return float(np.nanmean(values)) if len(values) else 0.0
    return float(np.dot(w, values) / total)


def simple_payback(investment_dkk: float, annual_dkk: float) -> float:
    """Years until the saving has paid the investment; inf when nothing is saved."""
    if annual_dkk <= 0:
        return math.inf
    return investment_dkk / annual_dkk


def is_rentabel(payback_years: float, lifetime_years: float, company_limit: float | None) -> bool:
    """Energy-label rule (payback within lifetime), tightened by the company's own limit."""
    limit = lifetime_years if company_limit is None else min(lifetime_years, company_limit)
    return payback_years <= limit
