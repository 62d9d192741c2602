"""Input contract: one meter's interval energy, outdoor temperature and driver as arrays."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from sparwatt.errors import VerificationError
from sparwatt.timeutil import HOUR_MS, QUARTER_MS

STEPS_MS = (QUARTER_MS, HOUR_MS)


@dataclass(frozen=True)
class DateRange:
    """Local calendar days from `start` to `end`, both included."""

    start: dt.date
    end: dt.date
    label: str = ""  # what happened: "roof works", "installation", ...

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise VerificationError(f"date range {self.start}..{self.end} ends before it starts")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class MeterData:
    """One meter on a regular UTC grid of 15- or 60-minute intervals; NaN marks a gap.

    `temperature_c` is the outdoor temperature in degrees C for each interval (None when the
    site has none); `driver` an amount per interval that the load follows (units produced,
    operating hours), summed when intervals are combined. `holidays` are local dates that
    count as Sundays in every time-of-week model.
    """

    start_ms: np.ndarray  # int64 UTC epoch ms of each interval start
    energy_kwh: np.ndarray  # float64 energy of each interval, NaN = missing
    temperature_c: np.ndarray | None = None
    driver: np.ndarray | None = None
    timezone: str = "Europe/Copenhagen"
    holidays: tuple[dt.date, ...] = ()
    meter: str = ""
    step_ms: int = field(init=False)

    def __post_init__(self) -> None:
        where = f"meter={self.meter or '?'}"
        n = len(self.start_ms)
        if self.start_ms.ndim != 1 or self.start_ms.dtype != np.int64:
            raise VerificationError(f"{where}: start_ms must be a 1-D int64 array of epoch ms")
        if n < 2:
            raise VerificationError(f"{where}: need at least two intervals, got {n}")
        steps = np.diff(self.start_ms)
        step = int(steps[0])
        if step not in STEPS_MS or not np.all(steps == step):
            raise VerificationError(
                f"{where}: start_ms must be a regular 15- or 60-minute grid (gaps as NaN)"
            )
        if step == HOUR_MS and int(self.start_ms[0]) % HOUR_MS:
            raise VerificationError(f"{where}: a 60-minute grid must start on the hour")
        for name in ("energy_kwh", "temperature_c", "driver"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n,):
                raise VerificationError(f"{where}: {name} must have shape ({n},), got {arr.shape}")
        object.__setattr__(self, "step_ms", step)

    @property
    def n(self) -> int:
        return len(self.start_ms)

    def per_interval(self, name: str, values: np.ndarray | None) -> np.ndarray | None:
        """Check that a caller's per-interval array (price, CO2) lies on this meter's grid."""
        if values is None:
            return None
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape != (self.n,):
            raise VerificationError(
                f"meter={self.meter or '?'}: {name} must have one value per interval "
                f"({self.n}), got shape {arr.shape}"
            )
        return arr
