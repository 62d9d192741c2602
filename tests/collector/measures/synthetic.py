"""A bakery with a known measure: 15-minute history of two meters whose base load drops
25 % on the installation date, and its outdoor temperature as DMI's observations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import holidays
import numpy as np
import pandas as pd

from collector.store import Store
from collector.store.history import EnergyHistory, MeterHistory, write_energy

TZ = "Europe/Copenhagen"
HOUR_MS, QUARTER_MS = 3_600_000, 900_000
DATA_START = dt.date(2024, 1, 1)
INSTALLED = dt.date(2025, 1, 1)
DATA_END = dt.date(2025, 7, 1)  # exclusive
NOW_MS = int(pd.Timestamp("2025-07-01 06:00").tz_localize(TZ).value // 1_000_000)
BASE_KW, OPEN_KW, OVENS_KW = 20.0, 40.0, 10.0
CUT = 0.25


@dataclass(frozen=True)
class Site:
    hours: np.ndarray  # UTC hour starts
    grid_kwh: np.ndarray  # per hour, metered (after the measure)
    ovens_kwh: np.ndarray
    effect_kwh: np.ndarray  # what the measure removed, per hour
    temperature_c: np.ndarray  # hourly mean outdoor temperature
    local_day: np.ndarray

    def true_avoided_kwh(self, first: dt.date, last: dt.date) -> float:
        lo, hi = (first - dt.date(1970, 1, 1)).days, (last - dt.date(1970, 1, 1)).days
        inside = (self.local_day >= lo) & (self.local_day <= hi)
        return float(self.effect_kwh[inside].sum())


def make_site(hour_noise: float = 0.06, day_noise: float = 0.03, seed: int = 1) -> Site:
    """Hourly loads: base, opening hours on weekdays that are not holidays, and heating
    below 15 C; a day factor and hour-to-hour noise on top."""
    t0 = pd.Timestamp(DATA_START).tz_localize(TZ).value // 1_000_000
    t1 = pd.Timestamp(DATA_END).tz_localize(TZ).value // 1_000_000
    hours = np.arange(t0, t1, HOUR_MS, dtype=np.int64)
    local = pd.DatetimeIndex(hours.astype("datetime64[ms]"), tz="UTC").tz_convert(TZ)
    local_ms = local.tz_localize(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    day = local_ms // 86_400_000
    hour = (local_ms - day * 86_400_000) // HOUR_MS
    hol = [
        (d - dt.date(1970, 1, 1)).days for d in holidays.country_holidays("DK", years=[2024, 2025])
    ]
    open_ = ((day + 3) % 7 < 5) & ~np.isin(day, hol) & (hour >= 7) & (hour < 17)
    rng = np.random.default_rng(seed)
    days = day - day[0]
    n_days = int(days[-1]) + 1
    anomaly = np.zeros(n_days)
    shocks = rng.normal(0.0, 2.0, n_days)
    for i in range(1, n_days):
        anomaly[i] = 0.8 * anomaly[i - 1] + shocks[i]
    doy = local.day_of_year.to_numpy()
    temp = 8.5 - 8.5 * np.cos(2 * np.pi * (doy - 20) / 365.25) + anomaly[days]
    temp = temp + 3.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
    heat = 4.0 * np.maximum(15.0 - temp, 0.0) * np.where(open_, 1.0, 0.6)
    factor = 1.0 + rng.normal(0.0, day_noise, n_days)[days]
    ar = np.zeros(len(hours))
    shocks = rng.normal(0.0, hour_noise * np.sqrt(0.75), len(hours))
    for i in range(1, len(hours)):
        ar[i] = 0.5 * ar[i - 1] + shocks[i]
    noise = np.clip(factor * (1.0 + ar), 0.05, None)
    after = day >= (INSTALLED - dt.date(1970, 1, 1)).days
    effect = after * CUT * BASE_KW * noise
    grid = (BASE_KW + OPEN_KW * open_ + heat) * noise - effect
    ovens = (2.0 + OVENS_KW * open_) * np.clip(1.0 + rng.normal(0, 0.05, len(hours)), 0.1, None)
    return Site(hours, grid, ovens, effect, temp, day)


def store_history(store: Store, site: Site, name: str = "bakery") -> None:
    """Both meters' energy as 15-minute intervals (each hour split in four)."""
    quarters = (site.hours[:, None] + np.arange(4) * QUARTER_MS).ravel()
    items = [
        MeterHistory(
            name,
            "utility",
            meter,
            "eloverblik",
            EnergyHistory(
                quarters,
                np.round(np.repeat(kwh / 4, 4), 3),
                np.zeros(len(quarters), dtype=bool),
                QUARTER_MS,
            ),
        )
        for meter, kwh in (("grid", site.grid_kwh), ("ovens", site.ovens_kwh))
    ]
    write_energy(store, items)


def write_dmi_csv(path: Path, site: Site, station: str = "06180") -> None:
    """Observations every 10 minutes as DMI's metObs gives them (temp_dry, UTC times), with
    another parameter of the station in between; each hour's mean is the hour's value."""
    lines = ["observed,parameterId,stationId,value"]
    offsets = np.array([-0.5, -0.3, -0.1, 0.1, 0.3, 0.5])
    for start, temp in zip(site.hours, site.temperature_c, strict=True):
        for k, off in enumerate(offsets):
            ts = pd.Timestamp(int(start) + k * 600_000, unit="ms", tz="UTC")
            stamp = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
            lines.append(f"{stamp},temp_dry,{station},{temp + off:.2f}")
            if k == 0:
                lines.append(f"{stamp},humidity,{station},80")
    path.write_text("\n".join(lines) + "\n")
