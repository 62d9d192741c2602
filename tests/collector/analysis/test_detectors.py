"""Each detector finds a known injected problem at the right size and nothing on clean data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from collector.analysis import baseload, drift, nightload, offhours, peaks, power_quality, standby
from collector.analysis.frame import Frame
from collector.analysis.series import MeterSeries
from collector.analysis.site_context import SiteContext

TZ = "Europe/Copenhagen"
CTX = SiteContext()  # Mon-Fri 07-17, Danish public holidays


def grid(start: dt.date, days: int) -> np.ndarray:
    t0 = pd.Timestamp(start).tz_localize(TZ).tz_convert("UTC").value // 1_000_000
    t1 = pd.Timestamp(start + dt.timedelta(days=days)).tz_localize(TZ).tz_convert("UTC")
    n = (t1.value // 1_000_000 - t0) // 900_000
    return t0 + np.arange(n, dtype=np.int64) * 900_000


def local(start_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(local date, weekday Mon=0, quarter-hour of day) per interval."""
    idx = pd.DatetimeIndex(start_ms.astype("datetime64[ms]"), tz="UTC").tz_convert(TZ)
    ms = idx.tz_localize(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    day = ms // 86_400_000
    return day.astype("datetime64[D]"), (day + 3) % 7, (ms % 86_400_000) // 900_000


def office_kw(
    start_ms: np.ndarray,
    *,
    open_kw: float = 20.0,
    base_kw: float = 2.0,
    noise: float = 0.01,
    seed: int = 1,
    holidays: tuple[str, ...] = (),
) -> np.ndarray:
    """Power of a plain office: open Mon-Fri 07-17, base load otherwise, small noise."""
    date, wd, q = local(start_ms)
    closed_day = np.isin(date, np.array(holidays, dtype="datetime64[D]"))
    is_open = (wd < 5) & (q >= 28) & (q < 68) & ~closed_day
    kw = np.where(is_open, open_kw, base_kw)
    return kw * np.random.default_rng(seed).lognormal(0, noise, len(kw))


def meter(
    start_ms: np.ndarray, kw: np.ndarray, role: str = "main", **extra: np.ndarray
) -> MeterSeries:
    return MeterSeries(
        "acme", "m1" if role == "main" else "air", role, start_ms, kw * 0.25, **extra
    )


START = dt.date(2025, 2, 3)  # a Monday; four plain winter weeks, no holiday
T4 = grid(START, 28)
DATE, WD, Q = local(T4)
OPEN = (WD < 5) & (Q >= 28) & (Q < 68)


def test_baseload_raised_at_night_is_found_with_its_size() -> None:
    clean = meter(T4, office_kw(T4))
    peer = baseload.features(Frame(clean, CTX)).ratio
    raised = meter(T4, office_kw(T4) + np.where(OPEN, 0.0, 6.0))
    [f] = baseload.detect(raised, CTX, peer_ratio=peer)
    truth = 6.0 * (~OPEN).mean() * 8760
    assert f.kind == "baseload"
    assert f.annual_kwh == pytest.approx(truth, rel=0.05)
    assert f.size == pytest.approx(6.0, rel=0.05)
    assert f.annual_dkk > 0
    assert f.annual_kg_co2 > 0
    assert baseload.detect(clean, CTX, peer_ratio=peer) == []


def test_baseload_without_peers_needs_a_floor_above_half_the_open_load() -> None:
    assert baseload.detect(meter(T4, office_kw(T4)), CTX) == []
    [f] = baseload.detect(meter(T4, office_kw(T4) + np.where(OPEN, 0.0, 10.0)), CTX)
    assert f.evidence["expected_from"] == "default"
    assert f.confidence < 0.7


def test_baseload_survives_missing_intervals() -> None:
    kw = office_kw(T4) + np.where(OPEN, 0.0, 6.0)
    kw[np.random.default_rng(3).random(len(kw)) < 0.1] = np.nan
    peer = baseload.features(Frame(meter(T4, office_kw(T4)), CTX)).ratio
    [f] = baseload.detect(meter(T4, kw), CTX, peer_ratio=peer)
    assert f.annual_kwh == pytest.approx(6.0 * (~OPEN).mean() * 8760, rel=0.05)


def test_weekend_use_is_found_as_offhours_with_its_size() -> None:
    weekend = (WD >= 5) & (Q >= 32) & (Q < 64)  # 08-16 on Saturday and Sunday
    clean = meter(T4, office_kw(T4))
    peer = offhours.features(Frame(clean, CTX)).ratio
    [f] = offhours.detect(
        meter(T4, office_kw(T4) + np.where(weekend, 10.0, 0.0)), CTX, peer_ratio=peer
    )
    truth = 10.0 * weekend.mean() * 8760
    assert f.annual_kwh == pytest.approx(truth, rel=0.05)
    assert offhours.detect(clean, CTX, peer_ratio=peer) == []


EASTER = ("2025-04-17", "2025-04-18", "2025-04-20", "2025-04-21")
T_EASTER = grid(dt.date(2025, 4, 7), 28)


def test_standby_on_holidays_is_found_with_its_size() -> None:
    date, _, _ = local(T_EASTER)
    holiday = np.isin(date, np.array(EASTER, dtype="datetime64[D]"))
    clean_kw = office_kw(T_EASTER, holidays=EASTER)
    [f] = standby.detect(meter(T_EASTER, clean_kw + np.where(holiday, 8.0, 0.0)), CTX)
    per_year = f.evidence["special_days_per_year"]
    assert f.annual_kwh == pytest.approx(8.0 * 24 * per_year, rel=0.05)
    assert f.evidence["special_days_seen"] == 4
    assert standby.detect(meter(T_EASTER, clean_kw), CTX) == []


def test_load_in_spidslast_is_found_as_shiftable_with_its_size() -> None:
    ctx = SiteContext(
        opening_hours={d: ["06:00-22:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    )
    evening = (WD < 5) & (Q >= 68) & (Q < 84)
    clean = meter(T4, office_kw(T4))
    peer = peaks.features(Frame(clean, ctx)).share
    [f] = peaks.detect_shift(
        meter(T4, office_kw(T4) + np.where(evening, 10.0, 0.0)), ctx, peer_share=peer
    )
    assert f.annual_kwh == pytest.approx(10.0 * evening.mean() * 8760, rel=0.05)
    # February is winter: each kWh moved from spidslast to lavlast saves 1.26 - 0.14 DKK
    assert f.annual_dkk / f.annual_kwh == pytest.approx(1.12, rel=0.01)
    assert f.evidence["max_15min_kw"] > 0
    assert peaks.detect_shift(clean, ctx, peer_share=peer) == []


def test_demand_charge_prices_clipping_the_monthly_peaks() -> None:
    ctx = SiteContext(grid_tariff={"demand_charge_dkk_per_kw_month": 50.0})
    kw = office_kw(T4)
    kw[[500, 1500, 2500]] = 60.0  # three short spikes above a 20 kW day load
    [f] = peaks.detect_shave(meter(T4, kw), ctx)
    assert f.kind == "peak_shave"
    assert f.size == pytest.approx(40, rel=0.05)
    assert peaks.detect_shave(meter(T4, kw), CTX) == []  # no demand charge, nothing to save


def test_low_power_factor_is_found_with_compensation_and_loss_size() -> None:
    kw = office_kw(T4)
    low = np.full(len(kw), 0.80)
    [f] = power_quality.detect_power_factor(meter(T4, kw, power_factor=low), CTX)
    energy_year = kw.mean() * 8760
    assert f.annual_kwh == pytest.approx(0.02 * energy_year * (1 - (0.80 / 0.95) ** 2), rel=0.01)
    assert f.evidence["power_factor"] == pytest.approx(0.80, abs=0.005)
    # kvar to reach 0.95 at the 20 kW day load: 20 * (tan(acos .80) - tan(acos .95))
    assert f.size == pytest.approx(20 * (0.75 - 0.3287), rel=0.05)
    good = np.full(len(kw), 0.97)
    assert power_quality.detect_power_factor(meter(T4, kw, power_factor=good), CTX) == []


def test_power_factor_prefers_measured_reactive_energy() -> None:
    kw = office_kw(T4)
    kvarh = kw * 0.25 * 0.75  # tan(phi) 0.75 -> PF 0.80, whatever the PF column says
    [f] = power_quality.detect_power_factor(
        meter(T4, kw, power_factor=np.ones(len(kw)), reactive_kvarh=kvarh), CTX
    )
    assert f.evidence["power_factor"] == pytest.approx(0.80, abs=0.001)


def test_nema_imbalance_is_max_deviation_over_mean() -> None:
    assert power_quality.nema_imbalance(np.array([[110.0, 95.0, 95.0]]))[0] == pytest.approx(0.1)


def test_phase_imbalance_is_found_and_balanced_phases_are_not() -> None:
    kw = office_kw(T4)
    amps = kw[:, None] * 1.5 * np.array([1.3, 0.85, 0.85])[None, :]
    [f] = power_quality.detect_phase_imbalance(meter(T4, kw, currents_a=amps), CTX)
    assert f.evidence["current_imbalance"] == pytest.approx(0.30, abs=0.01)
    factor = (1.3**2 + 2 * 0.85**2) / 3
    assert f.annual_kwh == pytest.approx(0.02 * kw.mean() * 8760 * (1 - 1 / factor), rel=0.02)
    even = kw[:, None] * 1.5 * np.array([1.02, 0.99, 0.99])[None, :]
    assert power_quality.detect_phase_imbalance(meter(T4, kw, currents_a=even), CTX) == []


def test_voltage_imbalance_alone_points_at_the_supply() -> None:
    kw = office_kw(T4)
    volts = np.tile([236.0, 228.0, 226.0], (len(kw), 1))
    [f] = power_quality.detect_phase_imbalance(meter(T4, kw, voltages_v=volts), CTX)
    assert f.evidence["cause"].startswith("supply voltage")


def test_constant_night_load_on_a_dedicated_meter_is_a_leak_with_its_size() -> None:
    production = np.where(OPEN, 30.0, 0.05)
    [f] = nightload.detect(meter(T4, production + 5.0, role="dedicated"), CTX)
    assert f.annual_kwh == pytest.approx(5.05 * 8760, rel=0.02)
    assert f.evidence["steadiness"] > 0.9
    assert nightload.detect(meter(T4, production, role="dedicated"), CTX) == []
    assert nightload.detect(meter(T4, production + 5.0), CTX) == []  # main meters: not here


T20 = grid(dt.date(2025, 8, 4), 20 * 7)  # Aug-Dec: baseline 8 weeks, then 12 weeks
_, WD20, Q20 = local(T20)
OPEN20 = (WD20 < 5) & (Q20 >= 28) & (Q20 < 68)
WEEK20 = np.arange(len(T20)) // (96 * 7)


def test_a_step_after_the_baseline_is_found_as_drift_with_its_size() -> None:
    kw = office_kw(T20)
    extra = np.where(OPEN20 & (WEEK20 >= 11), 0.4 * kw, 0.0)  # alone, 25 % of all use counts
    stepped = meter(T20, kw + extra)
    [f] = drift.detect(stepped, CTX)
    fr = Frame(stepped, CTX)
    regular = ~fr.special_day
    after = regular & (fr.cal.day_num >= fr.cal.day_num[11 * 7])
    per_day = np.bincount(fr.cal.day, weights=extra * 0.25)[after].mean()
    truth = per_day * (365 - fr.special_days_per_year())
    assert f.annual_kwh == pytest.approx(truth, rel=0.1)
    assert f.evidence["shape"] == "step"
    assert f.evidence["change_date"] == str(dt.date(2025, 8, 4) + dt.timedelta(weeks=11))
    assert drift.detect(meter(T20, kw), CTX) == []


def test_a_slow_rise_is_found_as_gradual_drift() -> None:
    kw = office_kw(T20)
    ramp = np.clip((WEEK20 - 9) / 6, 0, 1)  # weeks 9-15 up to +40 %, then stays
    [f] = drift.detect(meter(T20, kw * (1 + 0.4 * ramp * OPEN20)), CTX)
    assert f.evidence["shape"] == "gradual"
    assert 25 <= f.evidence["rise_days"] <= 60


def test_a_drop_is_not_an_opportunity() -> None:
    kw = office_kw(T20)
    assert drift.detect(meter(T20, kw * np.where(WEEK20 >= 11, 0.7, 1.0)), CTX) == []


def test_a_floor_that_steps_up_is_found_against_own_history_with_its_size() -> None:
    kw = office_kw(T20)
    raised = meter(T20, kw + np.where(~OPEN20 & (WEEK20 >= 11), 4.0, 0.0))  # 2 kW floor to 6
    [f] = baseload.detect_history(raised, CTX)
    fr = Frame(raised, CTX)
    assert f.kind == "baseload"
    assert f.annual_kwh == pytest.approx(4.0 * (~fr.open_).mean() * 8760, rel=0.05)
    assert f.size == pytest.approx(4.0, rel=0.05)
    assert f.evidence["shape"] == "step"
    assert f.evidence["change_date"] == str(dt.date(2025, 8, 4) + dt.timedelta(weeks=11))
    assert f.annual_dkk > 0
    assert baseload.detect_history(meter(T20, kw), CTX) == []


def test_a_leak_that_appears_on_a_dedicated_meter_is_found_against_own_history() -> None:
    production = np.where(OPEN20, 30.0, 0.05)
    leak = np.where(WEEK20 >= 11, 5.0, 0.0)
    [f] = nightload.detect_history(meter(T20, production + leak, role="dedicated"), CTX)
    assert f.kind == "night_load"
    assert f.annual_kwh == pytest.approx(5.0 * 8760, rel=0.02)
    assert nightload.detect_history(meter(T20, production, role="dedicated"), CTX) == []
    # a leak there from the start is no change: the whole-period check reports that one
    assert nightload.detect_history(meter(T20, production + 5.0, role="dedicated"), CTX) == []


def test_hourly_utility_data_is_not_judged_for_15_minute_peaks_and_the_scan_says_why() -> None:
    from dataclasses import replace

    from collector.analysis.scan import scan_report

    ctx = SiteContext(grid_tariff={"demand_charge_dkk_per_kw_month": 50.0})
    kw = office_kw(T4)
    kw[[500, 1500, 2500]] = 60.0
    quarterly = meter(T4, kw)
    assert {o.kind for o in scan_report([quarterly], {"acme": ctx}).opportunities} >= {"peak_shave"}
    hourly = replace(quarterly, resolution_ms=3_600_000)
    report = scan_report([hourly], {"acme": ctx})
    assert "peak_shave" not in {o.kind for o in report.opportunities}
    reasons = {s.detector: s.reason for s in report.skipped}
    assert reasons["peak_shave"] == (
        "60-minute data hide the 15-minute peaks a demand charge is set by"
    )
    assert reasons["power_factor"] == "no power factor or reactive energy is metered"
    assert "peak_shave" not in {s.detector for s in scan_report([quarterly], {"acme": ctx}).skipped}
