"""Time-of-week model for loads that do not follow the weather: one coefficient per hour (168)
or quarter-hour (672) of the week, optionally plus a linear driver such as production."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from collector.verification.lsq import grouped_wls
from collector.verification.rows import Rows
from collector.verification.rules import Resolution


@dataclass(frozen=True)
class TimeOfWeekModel:
    """kWh per interval = alpha[slot of week] (+ slope * driver).

    Holidays count as Sundays. Nothing seasonal is modelled: a load that changes with the
    weather or the season belongs in a weather model.
    """

    slots: int  # 168 (hourly rows) or 672 (quarter-hour rows)
    alpha_kwh: np.ndarray  # (slots,) NaN where the baseline never saw the slot
    driver_kwh_per_unit: float | None
    slot_observations: np.ndarray  # (slots,) baseline rows per slot
    n_params: float
    resolution: Resolution
    name: Literal["time_of_week"] = field(default="time_of_week", init=False)

    def predict(self, rows: Rows) -> np.ndarray:
        out: np.ndarray = self.alpha_kwh[rows.slot]
        if self.driver_kwh_per_unit is not None:
            drv = rows.driver if rows.driver is not None else np.full(rows.n, np.nan)
            out = out + self.driver_kwh_per_unit * drv
        return out


def fit_time_of_week(rows: Rows, use: np.ndarray, slots: int) -> TimeOfWeekModel:
    """Fit on the rows in `use` (energy, and the driver when there is one, present)."""
    y = rows.energy_kwh[use]
    slot = rows.slot[use]
    x = np.zeros((len(y), 0)) if rows.driver is None else rows.driver[use][:, None]
    fit = grouped_wls(slot, slots, x, y, np.ones(len(y)))
    return TimeOfWeekModel(
        slots=slots,
        alpha_kwh=fit.alpha,
        driver_kwh_per_unit=float(fit.beta[0]) if rows.driver is not None else None,
        slot_observations=np.bincount(slot, minlength=slots),
        n_params=float(fit.rank),
        resolution=rows.resolution,
    )
