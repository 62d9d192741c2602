"""Rules other than expected usage: silent meters, offline gateways, counter anomalies, gaps."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from collector.alerts import rules
from collector.alerts.config import (
    CounterAnomalyRule,
    DataGapRule,
    GatewayOfflineRule,
    MeterSilentRule,
)
from collector.alerts.model import CounterSeries, GatewayStatus, IntervalGrid, MeterKey, Severity
from tests.support.alert_data import STEP, utc

NOW = utc(2025, 5, 6, 12)
M1 = MeterKey("s1", "m1")
M2 = MeterKey("s1", "m2")


def test_fuse_capacity_is_sqrt3_times_400v_times_amps():
    assert rules.fuse_capacity_kw(63) == pytest.approx(math.sqrt(3) * 400 * 63 / 1000)
    assert rules.fuse_capacity_kw(63) == pytest.approx(43.65, abs=0.01)


def test_meter_silent_after_the_configured_time():
    seen = {M1: NOW - timedelta(minutes=29), M2: NOW - timedelta(minutes=31)}
    found = rules.meter_silent(seen, NOW, MeterSilentRule(after=1800))
    assert [c.labels for c in found] == [{"alertname": "meter_silent", "site": "s1", "meter": "m2"}]
    assert found[0].values["silent_min"] == 31


def test_never_seen_meter_is_silent():
    found = rules.meter_silent({M1: None}, NOW, MeterSilentRule())
    assert found[0].values == {"last_seen": None}


def test_gateway_offline_from_status():
    found = rules.gateway_offline(
        [
            GatewayStatus("s1", "gw1", online=False, since=NOW - timedelta(minutes=3)),
            GatewayStatus("s1", "gw2", online=True),
        ],
        GatewayOfflineRule(),
    )
    assert len(found) == 1
    assert found[0].labels == {"alertname": "gateway_offline", "site": "s1", "gateway": "gw1"}
    assert found[0].severity is Severity.CRITICAL
    assert found[0].for_s == 300


def _series(*points: tuple[float, float]) -> CounterSeries:
    base = NOW.timestamp()
    return CounterSeries(
        np.array([base + minutes * 60 for minutes, _ in points]),
        np.array([kwh for _, kwh in points]),
    )


def test_counter_drop_is_a_reset():
    series = _series((-30, 1000.0), (-15, 1001.0), (-1, 3.0))
    found = rules.counter_anomalies({M1: series}, lambda _site: 63, NOW, CounterAnomalyRule())
    assert [c.labels["alertname"] for c in found] == ["counter_reset"]
    assert found[0].values["from_kwh"] == 1001.0
    assert found[0].values["to_kwh"] == 3.0


def test_counter_jitter_within_tolerance_is_not_a_reset():
    series = _series((-30, 1000.0), (-15, 999.995), (-1, 1000.5))
    assert not rules.counter_anomalies({M1: series}, lambda _s: 63, NOW, CounterAnomalyRule())


def test_jump_above_the_fuse_capacity_is_implausible():
    # 63 A fuse: at most 43.6 kW, so 11 kWh in 15 minutes; 20 kWh cannot be real.
    series = _series((-30, 1000.0), (-15, 1010.0), (0, 1030.0))
    found = rules.counter_anomalies({M1: series}, lambda _s: 63, NOW, CounterAnomalyRule())
    assert [c.labels["alertname"] for c in found] == ["counter_jump"]
    assert found[0].values["implied_kw"] == pytest.approx(80.0)
    assert found[0].values["limit_kw"] == pytest.approx(43.6, abs=0.1)


def test_jump_needs_a_known_fuse():
    series = _series((-30, 1000.0), (0, 5000.0))
    assert not rules.counter_anomalies({M1: series}, lambda _s: None, NOW, CounterAnomalyRule())


def test_one_counter_tick_seconds_apart_is_not_a_jump():
    # 0.01 kWh in 1 s is 36 kW, more than a 25 A fuse; it is counter resolution, not load.
    base = NOW.timestamp()
    series = CounterSeries(np.array([base - 1, base]), np.array([1000.0, 1000.01]))
    assert not rules.counter_anomalies({M1: series}, lambda _s: 25, NOW, CounterAnomalyRule())


def test_counter_anomaly_ages_out_of_the_window():
    series = _series((-8 * 60, 1000.0), (-7 * 60, 3.0), (-60, 4.0))
    assert not rules.counter_anomalies(
        {M1: series}, lambda _s: 63, NOW, CounterAnomalyRule(window=6 * 3600)
    )


def _grid(rows: list[list[float]], end=NOW) -> IntervalGrid:
    energy = np.array(rows, dtype=float)
    start = end - timedelta(seconds=STEP * energy.shape[1])
    return IntervalGrid((M1, M2)[: len(rows)], start, energy, STEP)


def test_interior_gaps_are_counted():
    nan = np.nan
    grid = _grid([[1, nan, nan, 1, nan, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    found = rules.data_gaps(grid, NOW, DataGapRule())
    assert len(found) == 1
    assert found[0].labels["meter"] == "m1"
    assert found[0].values["missing_intervals"] == 3
    assert found[0].values["longest_gap_min"] == 30


def test_leading_and_trailing_gaps_are_not_data_gaps():
    nan = np.nan
    grid = _grid([[nan, nan, 1, 1, 1, nan, nan]])
    assert not rules.data_gaps(grid, NOW, DataGapRule())


def test_gaps_outside_the_window_are_ignored():
    nan = np.nan
    grid = _grid([[1, nan, 1, 1, 1, 1, 1]])
    assert not rules.data_gaps(grid, NOW, DataGapRule(window=4 * STEP))
    assert rules.data_gaps(grid, NOW, DataGapRule(window=7 * STEP))
