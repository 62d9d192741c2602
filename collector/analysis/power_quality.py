"""Power quality: low power factor and phase imbalance (NEMA), with the losses they cause."""

from __future__ import annotations

import numpy as np

from collector.analysis.findings import Finding
from collector.analysis.frame import Frame, ensure_frame
from collector.analysis.series import INTERVAL_H, MeterSeries
from collector.analysis.site_context import SiteContext

PF = "power_factor"
IMBALANCE = "phase_imbalance"


def _reactive_kvarh(series: MeterSeries) -> np.ndarray | None:
    if series.reactive_kvarh is not None:
        return np.abs(series.reactive_kvarh)
    if series.power_factor is not None:
        pf = np.clip(np.abs(series.power_factor), 0.05, 1.0)
        return series.energy_kwh * np.sqrt(1 - pf**2) / pf
    return None


def detect_power_factor(
    series: MeterSeries, ctx: SiteContext, *, frame: Frame | None = None
) -> list[Finding]:
    """Flag an energy-weighted power factor below the threshold; size the compensation."""
    q = _reactive_kvarh(series)
    if q is None:
        return []
    fr = ensure_frame(series, ctx, frame)
    th, tariff = ctx.thresholds, ctx.grid_tariff
    ok = fr.valid & np.isfinite(q)
    if ok.mean() < th.min_coverage:
        return []
    p_kwh, q_kvarh = fr.energy0[ok], q[ok]
    p_tot, q_tot = float(p_kwh.sum()), float(q_kvarh.sum())
    if p_tot <= 0:
        return []
    pf = p_tot / float(np.hypot(p_tot, q_tot))
    if pf >= th.pf_min:
        return []
    yf = fr.year_factor
    tan_target = np.sqrt(1 - th.pf_target**2) / th.pf_target
    # capacitor size: reactive power above the target that 95 % of intervals need removed
    above_kvar = np.clip((q_kvarh - p_kwh * tan_target) / INTERVAL_H, 0, None)
    kvar_needed = float(np.quantile(above_kvar, 0.95))
    # internal cable and transformer losses scale with current squared, i.e. with 1/pf^2
    annual_kwh = th.internal_loss_share * p_tot * yf * (1 - (pf / th.pf_target) ** 2)
    billed = np.clip(q_kvarh - p_kwh * tariff.reactive_free_tan_phi, 0, None)
    billed_kvarh = float(billed.sum()) * yf
    dkk, kg = fr.value(np.where(ok, fr.energy0, 0.0), annual_kwh)
    dkk += billed_kvarh * tariff.reactive_dkk_per_kvarh
    conf = float(ok.mean()) * (1.0 if series.reactive_kvarh is not None else 0.9)
    evidence: dict[str, float | str] = {
        "power_factor": round(pf, 3),
        "threshold": th.pf_min,
        "target": th.pf_target,
        "reactive_kvarh_per_year": round(q_tot * yf, 0),
        "billable_kvarh_per_year": round(billed_kvarh, 0),
        "kvar_needed": round(kvar_needed, 1),
    }
    return [fr.finding(PF, annual_kwh, (dkk, kg), conf, size=kvar_needed, evidence=evidence)]


def nema_imbalance(phases: np.ndarray) -> np.ndarray:
    """NEMA imbalance per row: largest deviation from the three-phase mean / mean."""
    a, b, c = np.ascontiguousarray(phases.T)  # column arithmetic beats axis=1 reductions
    mean = (a + b + c) / 3
    dev = np.maximum(np.maximum(np.abs(a - mean), np.abs(b - mean)), np.abs(c - mean))
    with np.errstate(invalid="ignore", divide="ignore"):
        return dev / mean


def detect_phase_imbalance(
    series: MeterSeries, ctx: SiteContext, *, frame: Frame | None = None
) -> list[Finding]:
    """Flag current (or voltage) imbalance; size the extra copper losses it causes."""
    if series.currents_a is None and series.voltages_v is None:
        return []
    fr = ensure_frame(series, ctx, frame)
    th = ctx.thresholds
    imb_i = imb_v = float("nan")
    annual_kwh = 0.0
    if series.currents_a is not None:
        a, b, c = np.ascontiguousarray(series.currents_a.T)
        mean = (a + b + c) / 3
        fin = np.isfinite(mean)
        if fin.mean() >= th.min_coverage and fin.any():
            # at low load a single-phase device dominates; judge imbalance under real load
            loaded = fin & (mean >= th.imbalance_min_load * np.quantile(mean[fin], 0.95))
            dev = np.maximum(np.maximum(np.abs(a - mean), np.abs(b - mean)), np.abs(c - mean))
            imb_i = float(np.median(dev[loaded] / mean[loaded]))
            ok = fin & fr.valid & (mean > 0)
            # copper losses with unequal phases, relative to the same current balanced
            factor = (a[ok] ** 2 + b[ok] ** 2 + c[ok] ** 2) / (3 * mean[ok] ** 2)
            loss = th.internal_loss_share * fr.energy0[ok] * (1 - 1 / factor)
            annual_kwh = float(loss.sum()) * fr.year_factor
    if series.voltages_v is not None:
        vi = nema_imbalance(series.voltages_v)
        vi = vi[np.isfinite(vi)]
        if len(vi) >= th.min_coverage * series.n:
            imb_v = float(np.median(vi))
    high_i = imb_i > th.imbalance_current_max
    high_v = imb_v > th.imbalance_voltage_max
    if not (high_i or high_v):
        return []
    value = fr.value(fr.energy0, annual_kwh)
    evidence: dict[str, float | str] = {
        "current_imbalance": round(imb_i, 3),
        "current_threshold": th.imbalance_current_max,
        "voltage_imbalance": round(imb_v, 4),
        "voltage_threshold": th.imbalance_voltage_max,
        "cause": "installation" if high_i else "supply voltage (ask the grid company)",
    }
    return [fr.finding(IMBALANCE, annual_kwh, value, fr.coverage, evidence=evidence)]
