"""The rules a baseline must meet: data sufficiency, model search ranges and fit-quality gates.

Every threshold of the verification layer lives here so docs/verification.md, the code and
a report can quote the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Resolution = Literal["quarter-hour", "hourly", "daily", "monthly"]


def f_to_c(value_f: float) -> float:
    """Degrees F (the unit CalTRACK states its constants in) to degrees C."""
    return (value_f - 32.0) * 5.0 / 9.0


@dataclass(frozen=True)
class Gate:
    """ASHRAE Guideline 14 limits for a baseline model at one resolution (fractions)."""

    max_cvrmse: float
    max_abs_nmbe: float


# ASHRAE Guideline 14 gives limits for monthly and hourly data. Daily data sits between the
# two; the hourly limits apply to it, as they do to quarter-hour models (which makes those
# stricter, since quarter-hour residuals are noisier than hourly ones).
GATES: dict[Resolution, Gate] = {
    "quarter-hour": Gate(0.30, 0.10),
    "hourly": Gate(0.30, 0.10),
    "daily": Gate(0.30, 0.10),
    "monthly": Gate(0.15, 0.05),
}


@dataclass(frozen=True)
class Rules:
    """Sufficiency rules and model constants; the defaults are the documented ones."""

    # baseline window: up to this many days before the installation date
    baseline_days: int = 365
    # a day has data when this share of its intervals is present (the rest is filled with
    # the day's mean, as CalTRACK 2.2.2.1 does)
    day_min_coverage: float = 0.9
    # at least this share of the window's days (from the first day with data, excluded
    # periods left out) must have data
    window_min_coverage: float = 0.9
    # days with data needed per model
    min_days_weather: int = 180
    min_days_time_of_week: int = 90
    # every time-of-week slot must be seen this often in the baseline
    min_slot_observations: int = 4
    # weather models: share of days with data that also have a daily mean temperature; a
    # daily mean needs at least half of the day's temperature values (CalTRACK 2.2.2.3)
    min_temperature_coverage: float = 0.9
    day_min_temperature_share: float = 0.5
    # hourly weather model: every calendar month of the baseline window needs this share of
    # its hours (CalTRACK 2.2.1.2); otherwise the daily weather model is used
    month_min_hour_coverage: float = 0.9
    # daily change-point search (CalTRACK 3.2): balance points from 30 to 90 F in 0.5 C
    # steps; a candidate needs 10 days with non-zero degree days and 20 F-days in total
    balance_points_c: tuple[float, ...] = field(
        default_factory=lambda: tuple(float(x) for x in np.arange(-1.0, 32.01, 0.5))
    )
    min_degree_days_nonzero: int = 10
    min_degree_days_total_c: float = 20.0 * 5.0 / 9.0
    # a heating or cooling slope must be positive and significant at this level (two-sided)
    slope_max_p: float = 0.1
    # hourly temperature model (CalTRACK 3.8, 3.9): occupancy from a 50 F / 65 F degree-hour
    # fit, seven temperature bins between 30 and 90 F, bins with fewer than 20 hours merged
    occupancy_heating_c: float = f_to_c(50.0)
    occupancy_cooling_c: float = f_to_c(65.0)
    occupied_share: float = 0.65
    bin_endpoints_c: tuple[float, ...] = tuple(f_to_c(f) for f in (30, 45, 55, 65, 75, 90))
    min_hours_per_bin: int = 20
    # three-month weighted segments (CalTRACK 3.7.5): the month itself 1, its neighbours 0.5
    neighbour_month_weight: float = 0.5
    # savings: the interval's confidence level and the reporting data needed to claim any
    confidence: float = 0.90
    min_reporting_days: float = 30.0
    # per-year figures from fewer days of data than this carry a seasonal-bias warning
    full_year_days: float = 0.9 * 365
    gates: dict[Resolution, Gate] = field(default_factory=lambda: dict(GATES))


DEFAULT_RULES = Rules()
