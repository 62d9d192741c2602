"""CO2 intensity per interval from a yearly factor or an hourly (ts,g_per_kwh) CSV."""

from __future__ import annotations

import numpy as np

from collector.analysis import hourly
from collector.analysis.site_context import Co2


def co2_per_interval(start_ms: np.ndarray, co2: Co2) -> np.ndarray:
    """g CO2/kWh for each interval; hours missing from the CSV fall back to the yearly factor."""
    return hourly.per_interval(
        start_ms, co2.hourly_csv, "g_per_kwh", co2.g_per_kwh, "CO2 series", co2.price_area
    )
