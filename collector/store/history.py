"""Interval energy a utility measured (a DataHub metering point, imported) written straight
into the 15-minute history, beside what gateways send.

A utility's series is already interval energy, so it skips the raw-readings table: each
interval becomes one `interval_energy` row and one rollup of the same energy. Hourly data
is spread evenly over its four quarters and the meter records its resolution, so the scan
and the pages can say what an hourly meter cannot show (its peaks within the hour).
Writing is idempotent: a value already stored is kept, except that a measured value
replaces an estimated one (DataHub revises estimates).

At the rate a year of a thousand metering points needs: each run of a meter's consecutive
quarter hours goes to the store as one JSON array of whole numbers (thousandths of a kWh,
doubled, plus one where estimated; built with array operations, not a Python string per
value) and one string of rollup blobs, so the database unrolls the run itself
(`Store.put_energy_run`); a run that is stored already costs two range reads.
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
# rollup.pack's layout for one counter: its energy (float64) and whether it is estimated
ROLLUP = np.dtype([("kwh", "<f8"), ("estimated", "u1")])
_SPACE, _COMMA, _ZERO = b" ,0"


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
    starts, kwh, estimated = history.start_ms, history.kwh, history.estimated
    if parts > 1:  # an hour spread evenly over its quarters
        starts = (starts[:, None] + np.arange(parts) * QUARTER_MS).ravel()
        kwh = np.repeat(kwh / parts, parts)
        estimated = np.repeat(estimated, parts)
    site, gateway, meter = item.site, item.gateway, item.meter
    meter_id = store.meter_id(site, gateway, meter) or store.new_meter(site, gateway, meter)
    store.set_meter_source(meter_id, item.source, history.resolution_ms, ENERGY)
    layout_key, _ = pack(Rollup(0, {ENERGY: CounterStats(0.0, False)}))
    layout_id = store.rollup_layout_id("15m:" + layout_key)
    changed = 0
    for lo, hi in _runs(starts):
        numbers, scale, flagged = _numbers(kwh[lo:hi], estimated[lo:hi])
        blobs = np.empty(hi - lo, dtype=ROLLUP)
        blobs["kwh"], blobs["estimated"] = kwh[lo:hi], estimated[lo:hi]
        flags = estimated[lo:hi].astype(np.uint8).tobytes()
        changed += store.put_energy_run(
            meter_id, layout_id, int(starts[lo]), numbers, scale, flags, blobs.tobytes(), flagged
        )
    return changed // parts


def _runs(starts: Ints) -> list[tuple[int, int]]:
    """[lo, hi) index ranges of consecutive quarters: one statement each."""
    cut = np.flatnonzero(np.diff(starts) != QUARTER_MS) + 1
    return list(itertools.pairwise([0, *cut.tolist(), len(starts)]))


def _numbers(kwh: Floats, estimated: Bools) -> tuple[str, float, bool]:
    """The values as the store takes them: (JSON array, what they were multiplied by,
    whether they carry the estimated flags). Utilities give watt-hours at most (kWh with
    three decimals): those travel as whole thousandths and come back exactly (SQLite
    divides correctly rounded, as parsing the decimal was)."""
    milli = np.rint(kwh * 1000.0)
    if not (np.all(np.abs(milli) < 2**53) and np.array_equal(milli / 1000.0, kwh)):
        return json.dumps(kwh.tolist()), 1.0, False
    whole = milli.astype(np.int64)
    if (whole < 0).any():
        return json.dumps(whole.tolist()), 1000.0, False
    return _json_array(whole * 2 + estimated), 1000.0, True


def _json_array(values: Ints) -> str:
    """Non-negative whole numbers as a JSON array, each padded with spaces to one width,
    written digit column by digit column."""
    if not len(values):
        return "[]"
    width = len(str(int(values.max())))
    chars = np.full((len(values), width + 1), _SPACE, dtype=np.uint8)
    chars[:, width] = _COMMA
    rest = values.copy()
    for column in range(width - 1, -1, -1):
        # a leading zero is a space (JSON has no leading zeros); a zero itself is a digit
        digit = (rest % 10).astype(np.uint8) + _ZERO
        chars[:, column] = np.where((rest > 0) | (column == width - 1), digit, _SPACE)
        rest //= 10
    return "[" + chars.tobytes()[:-1].decode("ascii") + "]"
