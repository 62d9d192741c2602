"""Shared by the programme tests: a sites file and constant 15-minute history of its sites."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from collector.store import Store
from collector.store.history import EnergyHistory, MeterHistory, write_energy

CPH = ZoneInfo("Europe/Copenhagen")
QUARTER_MS = 900_000


def local_ms(year: int, month: int = 1, day: int = 1, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=CPH).timestamp() * 1000)


def write_constant(store: Store, site: str, from_ms: int, to_ms: int, kwh: float) -> int:
    """`kwh` in every quarter hour of [from_ms, to_ms) on the site's utility meter; returns
    the number of quarter hours written."""
    start = np.arange(from_ms, to_ms, QUARTER_MS, dtype=np.int64)
    history = EnergyHistory(
        start, np.full(len(start), kwh), np.zeros(len(start), dtype=bool), QUARTER_MS
    )
    write_energy(store, [MeterHistory(site, "utility", "main", "eloverblik", history)])
    return len(start)


def sites_file(folder: Path, baseline_year: int, extra: str = "") -> Path:
    """Three sites in one programme: two with data for every quarter hour, one whose data
    begins in the middle of the baseline year."""
    path = folder / "sites.toml"
    # the first local hour of the baseline year at 560 g/kWh; every other hour the factor
    first_hour = datetime(baseline_year, 1, 1, tzinfo=CPH).astimezone(UTC)
    (folder / "co2.csv").write_text(
        f"ts,g_per_kwh\n{first_hour.strftime('%Y-%m-%dT%H:%M:%SZ')},560\n"
    )
    path.write_text(f"""
[sites.bakery-north]
sector = "bakery"
co2 = {{ g_per_kwh = 100.0 }}

[sites.office-harbour]
sector = "office"
co2 = {{ g_per_kwh = 60.0, hourly_csv = "co2.csv" }}

[sites.late-bakery]
sector = "bakery"

[sites.elsewhere]
sector = "office"

[programmes.aarhus-2030]
name = "Aarhus energy partnership"
sites = ["bakery-north", "office-harbour", "late-bakery"]
baseline_year = {baseline_year}
target = {{ co2 = -0.20, energy = -0.15 }}

[programmes.energy-only]
name = "Harbour energy network"
sites = ["office-harbour"]
baseline_year = {baseline_year}
target = {{ energy = -0.10 }}
{extra}""")
    return path
