"""Input contract: one meter's 15-minute interval series as numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sparwatt.errors import SeriesError
from sparwatt.timeutil import QUARTER_MS

INTERVAL_H = 0.25
INTERVALS_PER_DAY = 96
INTERVALS_PER_YEAR = 365 * INTERVALS_PER_DAY
HOURS_PER_YEAR = 8760.0
ROLES = ("main", "dedicated")


@dataclass(frozen=True)
class MeterSeries:
    """One meter's interval data; NaN energy marks a missing interval."""

    site: str
    meter: str
    role: str  # "main" (whole site) or "dedicated" (one process: compressed air, cooling, ...)
    start_ms: np.ndarray  # int64 UTC epoch ms of each 15-min interval start, regular grid
    energy_kwh: np.ndarray  # float64, NaN = missing
    max_power_w: np.ndarray | None = None
    power_factor: np.ndarray | None = None  # 15-min mean |PF|
    reactive_kvarh: np.ndarray | None = None
    currents_a: np.ndarray | None = None  # shape (n, 3) per-phase 15-min mean current
    voltages_v: np.ndarray | None = None  # shape (n, 3)
    # how finely the energy was measured: 15 minutes, or an hour spread over its quarters
    # (a utility's hourly data), which hides peaks within the hour
    resolution_ms: int = QUARTER_MS

    def __post_init__(self) -> None:
        where = f"site={self.site} meter={self.meter}"
        if self.role not in ROLES:
            raise SeriesError(f"{where}: role must be one of {ROLES}, got {self.role!r}")
        if self.start_ms.ndim != 1 or self.energy_kwh.shape != self.start_ms.shape:
            raise SeriesError(
                f"{where}: start_ms and energy_kwh must be 1-D of equal length, got "
                f"{self.start_ms.shape} and {self.energy_kwh.shape}"
            )
        if self.start_ms.dtype != np.int64:
            raise SeriesError(f"{where}: start_ms must be int64 epoch ms ({self.start_ms.dtype})")
        n = len(self.start_ms)
        if n > 1 and not np.all(np.diff(self.start_ms) == QUARTER_MS):
            raise SeriesError(f"{where}: start_ms must be a regular 15-minute grid (gaps as NaN)")
        for name in ("max_power_w", "power_factor", "reactive_kvarh"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n,):
                raise SeriesError(f"{where}: {name} must have shape ({n},), got {arr.shape}")
        for name in ("currents_a", "voltages_v"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n, 3):
                raise SeriesError(f"{where}: {name} must have shape ({n}, 3), got {arr.shape}")

    @property
    def n(self) -> int:
        return len(self.start_ms)

    @property
    def power_kw(self) -> np.ndarray:
        """Mean power of each interval in kW."""
        return self.energy_kwh / INTERVAL_H

    @property
    def end_ms(self) -> int:
        return int(self.start_ms[-1]) + QUARTER_MS if self.n else 0

    def same_grid(self, other: MeterSeries) -> bool:
        return self.n == other.n and (self.n == 0 or self.start_ms[0] == other.start_ms[0])

    def with_energy(self, energy_kwh: np.ndarray, meter: str | None = None) -> MeterSeries:
        """The same meter with other interval energy (e.g. main minus its sub-meters)."""
        return replace(self, energy_kwh=energy_kwh, meter=meter or self.meter)
