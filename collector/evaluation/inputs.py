"""What evaluation reads: the sites and alerts files, and meter data from the store on a
15-minute grid."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from collector.alerts import (
    AlertsConfig,
    IntervalGrid,
    MeterKey,
    load_alerts_config,
)
from collector.analysis import MeterSeries, Sites, load_sites
from collector.intervals.rollup import CounterStats, GaugeStats, Stats
from collector.settings import Evaluation as EvaluationSettings
from collector.store import MeterRef, Reader
from sparwatt.timeutil import QUARTER_MS, from_ms

log = logging.getLogger(__name__)

REACTIVE = "reactive_energy_import_kvarh"
# gauges the savings scan reads as 15-minute means, by the MeterSeries field they fill
GAUGES = {
    "power_factor": ("power_factor",),
    "currents_a": ("current_l1_a", "current_l2_a", "current_l3_a"),
    "voltages_v": ("voltage_l1_v", "voltage_l2_v", "voltage_l3_v"),
}


@dataclass(frozen=True)
class Inputs:
    """The validated evaluation files; None where the collector config names none."""

    sites: Sites | None = None  # every fact about a site; the scan, alerts and pages read it
    alerts: AlertsConfig | None = None


def load_inputs(settings: EvaluationSettings) -> Inputs:
    """Read and validate the sites and alerts files; raises ConfigError naming the key."""
    sites = load_sites(settings.sites_file) if settings.sites_file else None
    alerts = load_alerts_config(settings.alerts_file) if settings.alerts_file else None
    return Inputs(sites, alerts)


def check_inputs(settings: EvaluationSettings) -> Inputs:
    """Everything a running collector would later read, validated now (check-config, start):
    the sites and alerts files, the CSV series they name and the receivers' secret files."""
    from collector.alerts.channels import build_channels

    inputs = load_inputs(settings)
    if inputs.alerts is not None:
        build_channels(inputs.alerts, publish=lambda *_: None, source=str(settings.alerts_file))
    return inputs


def meter_keys(index: Iterable[MeterRef]) -> dict[int, MeterKey]:
    """Meter id -> (site, meter); a meter name two gateways of a site share gets 'gw:' first."""
    rows = list(index)
    taken: dict[tuple[str, str], int] = {}
    for _id, site, _gw, meter in rows:
        taken[(site, meter)] = taken.get((site, meter), 0) + 1
    return {
        meter_id: MeterKey(site, meter if taken[(site, meter)] == 1 else f"{gw}:{meter}")
        for meter_id, site, gw, meter in rows
    }


def load_series(
    reader: Reader, sites: Iterable[str], now_ms: int, days: int, dedicated: Iterable[str] = ()
) -> list[MeterSeries]:
    """One MeterSeries per meter of `sites` over the last `days` of complete intervals."""
    wanted = set(sites)
    roles = set(dedicated)
    end = now_ms // QUARTER_MS * QUARTER_MS
    start = end - days * 96 * QUARTER_MS
    out = []
    resolutions = reader.resolutions()
    # one meter at a time: a portfolio's 91 days of rows never sit in memory as tuples
    for meter_id, key in sorted(meter_keys(reader.meter_index()).items()):
        if key.site not in wanted:
            continue
        rows = [r for r in reader.interval_energy(start, end, meter_id) if r.energy_kwh is not None]
        if not rows:
            continue
        grid = np.arange(rows[0].start_ms, end, QUARTER_MS, dtype=np.int64)
        kwh = on_grid(grid, [(s, e) for _m, s, e, _w in rows])
        extra: dict[str, np.ndarray] = {}
        max_w = on_grid(grid, [(s, w) for _m, s, _e, w in rows])
        if np.isfinite(max_w).any():
            extra["max_power_w"] = max_w
        extra.update(_rollup_columns(grid, reader.rollups(meter_id, int(grid[0]), end)))
        role = "dedicated" if f"{key.site}/{key.meter}" in roles else "main"
        resolution = resolutions.get(meter_id, QUARTER_MS)
        out.append(
            MeterSeries(key.site, key.meter, role, grid, kwh, **extra, resolution_ms=resolution)
        )
    return out


def _rollup_columns(
    grid: np.ndarray, rollups: list[tuple[int, dict[str, Stats]]]
) -> dict[str, np.ndarray]:
    """Power factor, currents, voltages and reactive energy on the grid, from the 15-minute
    history (kept for good, so a scan looks the same whatever the raw retention)."""
    out: dict[str, np.ndarray] = {}
    for name, quantities in GAUGES.items():
        columns = [
            on_grid(grid, [(s, _mean(st, q)) for s, st in rollups if q in st]) for q in quantities
        ]
        if any(np.isfinite(c).any() for c in columns):
            out[name] = columns[0] if len(columns) == 1 else np.stack(columns, axis=1)
    # metered reactive energy weighs the power factor by energy, as the bill does
    reactive = on_grid(grid, [(s, _energy(st, REACTIVE)) for s, st in rollups if REACTIVE in st])
    if np.isfinite(reactive).mean() >= 0.5:
        out["reactive_kvarh"] = reactive
    return out


def _mean(stats: dict[str, Stats], quantity: str) -> float | None:
    found = stats.get(quantity)
    return found.mean if isinstance(found, GaugeStats) else None


def _energy(stats: dict[str, Stats], quantity: str) -> float | None:
    found = stats.get(quantity)
    return found.energy if isinstance(found, CounterStats) else None


def on_grid(grid: np.ndarray, rows: Sequence[tuple[int, float | None]]) -> np.ndarray:
    """Values of (start ms, value) rows at their place on a 15-minute grid, NaN elsewhere."""
    out = np.full(len(grid), np.nan)
    if rows and len(grid):
        starts = np.array([s for s, _ in rows], dtype=np.int64)
        values = np.array([np.nan if v is None else v for _, v in rows], dtype=float)
        col = (starts - grid[0]) // QUARTER_MS
        ok = (col >= 0) & (col < len(grid))
        out[col[ok]] = values[ok]
    return out


def interval_grid(
    reader: Reader, keys: dict[int, MeterKey], start_ms: int, end_ms: int
) -> IntervalGrid:
    """Import energy of every meter in `keys` on one 15-minute axis, NaN where missing."""
    order = sorted(keys, key=lambda i: keys[i])
    n = max(0, (end_ms - start_ms) // QUARTER_MS)
    grid = np.arange(start_ms, start_ms + n * QUARTER_MS, QUARTER_MS, dtype=np.int64)
    energy = np.full((len(order), n), np.nan)
    for row, meter_id in enumerate(order):
        energy[row] = on_grid(
            grid,
            [
                (s, kwh)
                for _m, s, kwh, _w in reader.interval_energy(
                    start_ms, start_ms + n * QUARTER_MS, meter_id
                )
            ],
        )
    return IntervalGrid(tuple(keys[i] for i in order), from_ms(start_ms), energy)
