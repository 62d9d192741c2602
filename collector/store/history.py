"""Interval energy a utility measured (a DataHub metering point, imported) written straight
into the 15-minute history, beside what gateways send.

A utility's series is already interval energy, so it skips the raw-readings table: each
interval becomes one `interval_energy` row and one rollup of the same energy. Hourly data
is spread evenly over its four quarters and the meter records its resolution, so the scan
and the pages can say what an hourly meter cannot show (its peaks within the hour).
Writing is idempotent: a value already stored is kept, except that a measured value
replaces an estimated one (DataHub revises estimates).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.intervals.rollup import CounterStats, Rollup, pack
from collector.store.writer import Store
from sparwatt.timeutil import HOUR_MS, QUARTER_MS

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
RESOLUTIONS = (QUARTER_MS, HOUR_MS)
ENERGY = "energy_import_kwh"
_ROLLUP = np.dtype([("kwh", "<f8"), ("estimated", "u1")])  # rollup.pack's counter layout


@dataclass(frozen=True)
class EnergyHistory:
    """One metering point's interval energy; starts ascending, unique, on its grid."""

    start_ms: Ints
    kwh: Floats
    estimated: Bools
    resolution_ms: int


@dataclass(frozen=True)
class HistoryResult:
    stored: int  # intervals of the source newly stored or turned from estimated to measured
    kept: int  # intervals already stored as they are


@dataclass(frozen=True)
class MeterHistory:
    """Where one metering point's history goes, and the history."""

    site: str
    gateway: str
    meter: str
    source: str  # where it came from, e.g. "eloverblik"
    history: EnergyHistory


def write_energy(store: Store, items: list[MeterHistory]) -> HistoryResult:
    """Store the interval energy of one or more metering points in one transaction (a
    second writer waits for it: keep a batch to a second or so of work)."""
    stored = total = 0
    with store.transaction():
        for item in items:
            stored += _write(store, item)
            total += len(item.history.start_ms)
    return HistoryResult(stored, total - stored)


def _write(store: Store, item: MeterHistory) -> int:
    history = item.history
    if history.resolution_ms not in RESOLUTIONS:
        raise ValueError(f"resolution {history.resolution_ms} ms: only 15 minutes or 1 hour")
    parts = history.resolution_ms // QUARTER_MS
    starts = (history.start_ms[:, None] + np.arange(parts) * QUARTER_MS).ravel()
    kwh = np.repeat(history.kwh / parts, parts)
    estimated = np.repeat(history.estimated, parts)
    layout_key, _ = pack(Rollup(0, {ENERGY: CounterStats(0.0, False)}))
    site, gateway, meter = item.site, item.gateway, item.meter
    meter_id = store.meter_id(site, gateway, meter) or store.new_meter(site, gateway, meter)
    store.set_meter_source(meter_id, item.source, history.resolution_ms, ENERGY)
    layout_id = store.rollup_layout_id("15m:" + layout_key)
    changed = sum(
        _insert_run(store, meter_id, layout_id, starts[lo], kwh[lo:hi], estimated[lo:hi])
        for lo, hi in _runs(starts)
    )
    return changed // parts


def _runs(starts: Ints) -> list[tuple[int, int]]:
    """[lo, hi) index ranges of consecutive quarters: one statement each."""
    cut = np.flatnonzero(np.diff(starts) != QUARTER_MS) + 1
    edges = [0, *cut.tolist(), len(starts)]
    return list(itertools.pairwise(edges))


def _insert_run(
    store: Store, meter_id: int, layout_id: int, first: np.int64, kwh: Floats, estimated: Bools
) -> int:
    """Write one run of consecutive quarters; returns how many intervals changed."""
    blobs = np.empty(len(kwh), dtype=_ROLLUP)
    blobs["kwh"], blobs["estimated"] = kwh, estimated
    if store.dialect == "postgres":  # no JSON here: the arrays as they are
        flags_list = estimated.astype(np.int64).tolist()
        return store.put_energy_rows(
            meter_id, layout_id, int(first), kwh.tolist(), flags_list, blobs.tobytes()
        )
    # values travel as one JSON array and one blob, and SQLite unrolls them itself: an
    # executemany of one tuple per interval costs three times as much
    values, scale = _json_numbers(kwh)
    flags = estimated.astype(np.uint8).tobytes()
    args = {
        "meter": meter_id,
        "first": int(first),
        "step": QUARTER_MS,
        "values": values,
        "flags": flags,
        "blobs": blobs.tobytes(),
        "layout": layout_id,
        "size": _ROLLUP.itemsize,
        "scale": scale,
    }
    changed = store.db.execute(
        "INSERT INTO interval_energy (meter_id, start_ms, energy_kwh, estimated, mean_power_w, "
        "max_power_w) SELECT :meter, :first + key * :step, value / :scale, "
        "substr(:flags, key + 1, 1) = x'01', value / :scale * 3600000000.0 / :step, NULL "
        "FROM json_each(:values) WHERE true "
        "ON CONFLICT (meter_id, start_ms) DO UPDATE SET energy_kwh = excluded.energy_kwh, "
        "estimated = 0, mean_power_w = excluded.mean_power_w "
        "WHERE interval_energy.estimated AND NOT excluded.estimated",
        args,
    ).rowcount
    store.db.execute(
        "INSERT INTO rollup (meter_id, start_ms, layout, data) "
        "SELECT :meter, :first + key * :step, :layout, substr(:blobs, key * :size + 1, :size) "
        "FROM json_each(:values) WHERE true "
        "ON CONFLICT (meter_id, start_ms) DO UPDATE SET data = excluded.data "
        "WHERE rollup.layout = excluded.layout AND substr(rollup.data, :size, 1) = x'01' "
        "AND substr(excluded.data, :size, 1) = x'00'",
        args,
    )
    return int(changed)


def _json_numbers(kwh: Floats) -> tuple[str, float]:
    """The values as a JSON array, and what to divide them by. Utilities give watt-hours at
    most (kWh with three decimals): those travel as integers, which print four times
    faster, and come back exactly (division is correctly rounded, as parsing the decimal
    was)."""
    milli = np.rint(kwh * 1000.0)
    if np.all(np.abs(milli) < 2**53) and np.array_equal(milli / 1000.0, kwh):
        return json.dumps(milli.astype(np.int64).tolist()), 1000.0
    return json.dumps(kwh.tolist()), 1.0
