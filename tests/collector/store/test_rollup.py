"""15-minute rollups: gauge statistics and counter energy per interval, packed and back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.intervals.energy import IntervalPolicy
from collector.intervals.rollup import (
    CounterStats,
    GaugeStats,
    Rollup,
    counter_rollups,
    gauge_rollups,
    pack,
    unpack,
)

Q = 900_000


def test_gauges_roll_up_to_mean_min_max_and_count_per_interval() -> None:
    ts = np.array([0, 300_000, 600_000, Q, Q + 10_000], dtype=np.int64)
    values = np.array([[230.0, -0.8], [232.0, 0.9], [234.0, np.nan], [228.0, -0.5], [226.0, 0.7]])
    first, second = gauge_rollups(ts, values, ["voltage_l1_v", "power_factor"])
    assert first.start_ms == 0
    assert first.values["voltage_l1_v"] == GaugeStats(232.0, 230.0, 234.0, 3)
    # a power factor rolls up as a magnitude; the missing reading is not counted
    assert first.values["power_factor"] == GaugeStats(pytest.approx(0.85), 0.8, 0.9, 2)
    assert second.start_ms == Q
    assert second.values["voltage_l1_v"] == GaugeStats(227.0, 226.0, 228.0, 2)


def test_a_quantity_absent_from_an_interval_has_no_stats_there() -> None:
    ts = np.array([0, Q], dtype=np.int64)
    values = np.array([[1.0, np.nan], [2.0, np.nan]])
    rollups = gauge_rollups(ts, values, ["power_w", "current_n_a"])
    assert [set(r.values) for r in rollups] == [{"power_w"}, {"power_w"}]


def test_counter_energy_is_split_at_interval_boundaries() -> None:
    # 10 kWh over the hour, read every 5 minutes: 2.5 kWh a quarter
    rows = [(t * 300_000, 100.0 + t * 10 / 12) for t in range(13)]
    out = counter_rollups({"reactive_energy_import_kvarh": rows}, IntervalPolicy())
    energies = [out[s]["reactive_energy_import_kvarh"].energy for s in (0, Q, 2 * Q, 3 * Q)]
    assert energies == [pytest.approx(2.5)] * 4


def test_packed_rollups_come_back_float32_close_and_counters_exact() -> None:
    rollup = Rollup(
        Q,
        {
            "voltage_l1_v": GaugeStats(231.123456, 229.5, 233.25, 90),
            "energy_import_kwh": CounterStats(1.23456789012, False),
            "energy_export_kwh": CounterStats(None, True),
        },
    )
    key, blob = pack(rollup)
    assert len(blob) == 14 + 9 + 9
    back = unpack(key, blob)
    gauge = back["voltage_l1_v"]
    assert isinstance(gauge, GaugeStats)
    assert math.isclose(gauge.mean, 231.123456, rel_tol=1e-7)
    assert (gauge.min, gauge.max, gauge.count) == (229.5, 233.25, 90)
    assert back["energy_import_kwh"] == CounterStats(1.23456789012, False)
    assert back["energy_export_kwh"] == CounterStats(None, True)
