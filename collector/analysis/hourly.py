"""Spot price and CO2 series from a file, as the value of each 15-minute interval.

A file is either the project's own CSV (ts,dkk_per_kwh or ts,g_per_kwh; ts ISO 8601, UTC
when it has no offset) or a download from Energi Data Service as it comes, recognised by its
columns or keys: DayAheadPrices and Elspotprices (DKK per MWh, taken per kWh) or CO2Emis
(g/kWh every 5 minutes). A download may be CSV (';' with decimal comma as the Danish site
writes it, or ',' with decimal point; a BOM is fine) or the API's JSON ({"records": [...]});
its *UTC column gives the time, and only rows of the site's price area count. Empty or null
values are skipped and counted.

A row lasts until the next row, at most an hour when it starts on the hour, a quarter when it
starts on a quarter hour and 5 minutes otherwise. So a price file may change from hourly to
15-minute rows, as Energinet's day-ahead prices did on 1 October 2025. An interval gets the
time-weighted mean of the rows covering it: an hourly row gives all four quarters its value,
three 5-minute rows are averaged.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from sparwatt.errors import SiteConfigError
from sparwatt.timeutil import HOUR_MS, MINUTE_MS, QUARTER_MS

log = logging.getLogger(__name__)

FIVE_MINUTES_MS = 5 * MINUTE_MS
_GRAIN_NAMES = {
    HOUR_MS: "a whole hour",
    QUARTER_MS: "a quarter hour",
    FIVE_MINUTES_MS: "a 5-minute mark",
}


@dataclass(frozen=True)
class Layout:
    """One file layout: where time, value and price area are, and how values convert."""

    name: str
    column: str  # the project's quantity: dkk_per_kwh or g_per_kwh
    time: str
    value: str
    area: str | None  # None: the file holds one area (the project's own layout)
    per: Decimal  # file units per project unit (DKK/MWh -> DKK/kWh: 1000)
    grains: tuple[int, ...]  # longest row by where it starts, coarsest first


EDS_LAYOUTS = (
    Layout(
        "DayAheadPrices",
        "dkk_per_kwh",
        "TimeUTC",
        "DayAheadPriceDKK",
        "PriceArea",
        Decimal(1000),
        (HOUR_MS, QUARTER_MS),
    ),
    Layout(
        "Elspotprices",
        "dkk_per_kwh",
        "HourUTC",
        "SpotPriceDKK",
        "PriceArea",
        Decimal(1000),
        (HOUR_MS,),
    ),
    Layout(
        "CO2Emis",
        "g_per_kwh",
        "Minutes5UTC",
        "CO2Emission",
        "PriceArea",
        Decimal(1),
        (FIVE_MINUTES_MS,),
    ),
)


@dataclass(frozen=True)
class Series:
    """The rows of one price area, sorted by start (UTC epoch ms), with value and length (ms)."""

    starts: np.ndarray
    values: np.ndarray
    lengths: np.ndarray
    layout: str  # "ts,dkk_per_kwh", "ts,g_per_kwh" or the Energi Data Service dataset
    skipped: int  # rows of the area without a value


def load(path: Path, column: str, what: str, area: str | None = None) -> Series:
    """The series in `path` for price area `area` (DK1, DK2; unused by the project's own
    layout), in the unit of `column`; read again whenever the file changes (prices are
    refreshed daily). Raises SiteConfigError naming the file, the row and the reason."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise SiteConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    return _load(path, stat.st_mtime_ns, stat.st_size, column, what, area)


def per_interval(
    start_ms: np.ndarray,
    path: Path | None,
    column: str,
    fallback: float,
    what: str,
    area: str | None = None,
) -> np.ndarray:
    """The time-weighted mean of the rows covering each 15-minute interval; intervals no row
    covers (or no file) get `fallback`."""
    out = np.full(len(start_ms), fallback, dtype=np.float64)
    if path is None:
        return out
    s = load(path, column, what, area)
    if not len(s.starts) or not len(start_ms):
        return out
    ends = s.starts + s.lengths  # non-decreasing: a row never runs past the next one's start
    stop = start_ms + QUARTER_MS
    first = np.searchsorted(ends, start_ms, side="right")  # first row ending after the start
    after = np.searchsorted(s.starts, stop, side="left")  # first row starting after the end
    weight = np.zeros(len(start_ms), dtype=np.int64)
    total = np.zeros(len(start_ms), dtype=np.float64)
    rows = np.zeros(len(start_ms), dtype=np.int64)
    single = np.zeros(len(start_ms), dtype=np.float64)
    last = len(s.starts) - 1
    for k in range(int(np.max(after - first, initial=0))):
        j = first + k
        row = np.minimum(j, last)
        overlap = np.minimum(ends[row], stop) - np.maximum(s.starts[row], start_ms)
        overlap = np.where(j < after, np.maximum(overlap, 0), 0)
        weight += overlap
        total += overlap * s.values[row]
        rows += overlap > 0
        single = np.where(overlap > 0, s.values[row], single)
    # one row: its value as it is, so an hourly or 15-minute price is never rounded
    out[rows == 1] = single[rows == 1]
    several = rows > 1
    out[several] = total[several] / weight[several]
    return out


@dataclass
class _Rows:
    """What a file holds for one area, before timestamps and values are checked."""

    layout: Layout
    kind: str  # CSV or JSON
    decimal_comma: bool
    pos: list[int]  # CSV line number or JSON record index, for messages
    times: list[object]
    values: list[object]  # text (CSV), number or None (JSON)
    areas: set[str]


@lru_cache(maxsize=16)
def _load(
    path: Path, _mtime_ns: int, _size: int, column: str, what: str, area: str | None
) -> Series:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SiteConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SiteConfigError(f"{path}: cannot read {what}: not UTF-8 text") from None
    if text.lstrip().startswith(("{", "[")):
        rows = _json_rows(path, text, column, what, area)
    else:
        rows = _csv_rows(path, text, column, what, area)
    lay = rows.layout

    def where(i: int) -> str:
        if rows.kind == "CSV":
            return f"{path}: bad row in {what} CSV: row {rows.pos[i]}"
        return f"{path}: bad record in {what} JSON: records[{rows.pos[i]}]"

    if lay.area is not None:
        if area is None:
            raise SiteConfigError(
                f"{path}: {what} is Energi Data Service's {lay.name} with the price areas "
                f"{_listed(rows.areas)}; set price_area for the site"
            )
        if not rows.pos:
            raise SiteConfigError(
                f"{path}: {what} has no rows for price area {area}; "
                f"the file has {_listed(rows.areas)}"
            )
    texts = [t if isinstance(t, str) else "" for t in rows.times]
    ts = pd.to_datetime(texts, utc=True, format="ISO8601", errors="coerce")
    bad = np.flatnonzero(ts.isna())
    if len(bad):
        i = int(bad[0])
        raise SiteConfigError(f"{where(i)}: bad timestamp {rows.times[i]!r} in {lay.time}")
    values = np.empty(len(rows.pos), dtype=np.float64)
    for i, raw in enumerate(rows.values):
        try:
            values[i] = _number(raw, lay, rows.decimal_comma)
        except ValueError as exc:
            raise SiteConfigError(f"{where(i)}: {exc}") from None
    ms = ts.as_unit("ms").asi8.astype(np.int64)
    off = np.flatnonzero(ms % lay.grains[-1])
    if len(off):
        i = int(off[0])
        raise SiteConfigError(f"{where(i)} does not start on {_GRAIN_NAMES[lay.grains[-1]]}")
    order = np.argsort(ms, kind="stable")
    ms, values = ms[order], values[order]
    grain = np.full(len(ms), lay.grains[-1], dtype=np.int64)
    for g in reversed(lay.grains):
        grain[ms % g == 0] = g
    # a row without a value still ends the one before it: its interval falls back
    to_next = np.diff(ms, append=ms[-1] + lay.grains[0]) if len(ms) else ms
    lengths = np.minimum(to_next, grain)
    keep = ~np.isnan(values)
    skipped = int(len(keep) - keep.sum())
    if skipped:
        log.warning(
            "series rows without a value skipped file=%s series=%r area=%s skipped=%d",
            path,
            what,
            area,
            skipped,
        )
    arrays = ms[keep], values[keep], lengths[keep]
    for a in arrays:
        a.flags.writeable = False  # shared by every caller through the cache
    name = f"ts,{column}" if lay.area is None else lay.name
    return Series(*arrays, layout=name, skipped=skipped)


def _layout(path: Path, names: list[str], column: str, what: str, kind: str) -> Layout:
    """The layout a header (or a JSON record's keys) is in."""
    if set(names) == {"ts", column}:
        return Layout(f"ts,{column}", column, "ts", column, None, Decimal(1), (HOUR_MS, QUARTER_MS))
    for lay in EDS_LAYOUTS:
        if lay.time not in names:
            continue
        if lay.column != column:
            raise SiteConfigError(
                f"{path}: {what} {kind} is Energi Data Service's {lay.name}, which is not a {what}"
            )
        missing = [c for c in (lay.area, lay.value) if c is not None and c not in names]
        if missing:
            raise SiteConfigError(
                f"{path}: {what} {kind} looks like Energi Data Service's {lay.name} but has "
                f"no column {', '.join(missing)}"
            )
        return lay
    eds = "; ".join(
        f"{lay.name}: {lay.time}, {lay.area}, {lay.value}"
        for lay in EDS_LAYOUTS
        if lay.column == column
    )
    found = ", ".join(names) or "none"
    raise SiteConfigError(
        f"{path}: {what} {kind} needs exactly the columns ts,{column}, or those of an Energi "
        f"Data Service download ({eds}); found: {found}"
    )


def _csv_rows(path: Path, text: str, column: str, what: str, area: str | None) -> _Rows:
    header = text.lstrip().partition("\n")[0]
    delimiter = ";" if ";" in header else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    names = [n.strip() for n in next((r for r in reader if r), [])]
    lay = _layout(path, names, column, what, "CSV")
    t, v = names.index(lay.time), names.index(lay.value)
    a = names.index(lay.area) if lay.area is not None else None
    width = max(t, v, -1 if a is None else a) + 1
    rows = _Rows(lay, "CSV", delimiter == ";", [], [], [], set())
    for fields in reader:
        if not fields:
            continue  # a blank line
        if len(fields) < width:
            raise SiteConfigError(
                f"{path}: bad row in {what} CSV: row {reader.line_num}: {len(fields)} "
                f"field(s) where the header has {len(names)}, so no {names[width - 1]}"
            )
        if a is not None:
            rows.areas.add(fields[a].strip())
            if fields[a].strip() != area:
                continue
        rows.pos.append(reader.line_num)
        rows.times.append(fields[t].strip())
        rows.values.append(fields[v])
    return rows


def _json_rows(path: Path, text: str, column: str, what: str, area: str | None) -> _Rows:
    try:
        doc = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise SiteConfigError(f"{path}: {what} JSON cannot be read: {exc}") from None
    records = doc.get("records") if isinstance(doc, dict) else doc
    if not isinstance(records, list) or not records:
        raise SiteConfigError(f"{path}: {what} JSON has no records (a list under 'records')")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise SiteConfigError(
                f"{path}: bad record in {what} JSON: records[{i}] is not an object"
            )
    lay = _layout(path, list(records[0]), column, what, "JSON")
    rows = _Rows(lay, "JSON", False, [], [], [], set())
    for i, rec in enumerate(records):
        for key in (lay.time, lay.value, lay.area):
            if key is not None and key not in rec:
                raise SiteConfigError(
                    f"{path}: bad record in {what} JSON: records[{i}]: missing key {key}"
                )
        if lay.area is not None:
            rows.areas.add(str(rec[lay.area]))
            if rec[lay.area] != area:
                continue
        rows.pos.append(i)
        rows.times.append(rec[lay.time])
        rows.values.append(rec[lay.value])
    return rows


def _number(raw: object, lay: Layout, decimal_comma: bool) -> float:
    """The value in the project's unit; NaN for an empty or null one (skipped later)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return float("nan")
    number = None
    if isinstance(raw, str):
        text = raw.strip()
        with contextlib.suppress(InvalidOperation):
            number = Decimal(text.replace(",", ".") if decimal_comma else text)
    elif isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
        number = Decimal(raw)
    if number is None:
        raise ValueError(f"bad number {raw!r} in {lay.value}")
    if not number.is_finite():
        raise ValueError(f"{raw!r} in {lay.value} is not a finite number")
    return float(number / lay.per)


def _listed(areas: set[str]) -> str:
    named = sorted(a for a in areas if a)
    return ", ".join(named) if named else "no rows at all"
