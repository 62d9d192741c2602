"""Imported interval energy reaches the pages as the mean power it stands for, in watts."""

from __future__ import annotations

import numpy as np
import pytest

from collector.store import Reader, Store
from collector.store.history import EnergyHistory, MeterHistory, write_energy
from collector.store.sql import Target

T0 = 1_704_063_600_000  # 2024-01-01 00:00 Danish time
Q, H = 900_000, 3_600_000


@pytest.mark.parametrize(
    ("step", "kwh", "watts"),
    [(Q, [2.5, 0.25], [10_000.0, 1_000.0]), (H, [4.0], [4_000.0] * 4)],
)
def test_imported_energy_is_stored_with_its_mean_power_in_watts(
    db_target: Target, step: int, kwh: list[float], watts: list[float]
) -> None:
    store = Store(db_target)
    starts = T0 + step * np.arange(len(kwh), dtype=np.int64)
    history = EnergyHistory(starts, np.array(kwh), np.zeros(len(kwh), bool), step)
    write_energy(store, [MeterHistory("bakery", "utility", "grid", "eloverblik", history)])
    store.close()
    with Reader(db_target) as reader:
        totals = reader.site_totals("bakery", 0, 2**62)
    assert [t.mean_power_w for t in totals] == pytest.approx(watts)
