"""Eloverblik (DataHub) metering-point data as a company downloads it: the time-series
CSV export (semicolon, decimal comma, BOM, Danish local time) and the API's JSON."""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing as mp
import os
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from collector.imports.utility import (
    Ints,
    PointSeries,
    UtilityFile,
    fail,
    parse_local_times,
    point_series,
)
from collector.imports.wallclock import to_utc_ms
from sparwatt.errors import ConfigError
from sparwatt.timeutil import HOUR_MS, QUARTER_MS, epoch_ms

TZ = "Europe/Copenhagen"  # DataHub's local time
CSV_HEADER = ("MålepunktsID", "Fra_dato", "Til_dato", "Mængde", "Måleenhed", "Kvalitet", "Type")
CHUNK_ROWS = 1_000_000
PARALLEL_BYTES = 64 << 20  # smaller files parse faster than processes start
MAX_PROCESSES = 4
# DataHub's quality codes and the words the CSV export writes for them: measured values,
# values the grid company estimated or calculated, and values it does not have
MEASURED = {"a04", "målt", "maalt", "measured"}
ESTIMATED = {
    "a01", "a03", "a05", "a06", "d01", "estimeret", "beregnet", "justeret", "estimated",
    "calculated", "adjusted", "incomplete", "ufuldstændig",
}  # fmt: skip
NOT_AVAILABLE = {"a02", "ikke tilgængelig", "not available", "mangler"}
UNITS = {"kwh": 1.0, "mwh": 1000.0, "wh": 0.001}
_RESOLUTION = {"PT15M": QUARTER_MS, "PT1H": HOUR_MS}
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _categories(
    path: str, lines: Ints, column: pd.Series, table: dict[str, Any], what: str
) -> npt.NDArray[Any]:
    """A categorical column mapped through `table` (by its stripped, lower-case words)."""
    words = [str(c).strip().lower() for c in column.cat.categories]
    unknown = [w not in table for w in words]
    codes = column.cat.codes.to_numpy()
    if (codes < 0).any():  # a short line: pandas fills the missing fields with nothing
        i = int(np.flatnonzero(codes < 0)[0])
        raise fail(path, int(lines[i]), f"no {column.name} (too few fields)")
    if any(unknown):
        bad = np.flatnonzero(np.isin(codes, np.flatnonzero(unknown)))
        i = int(bad[0])
        value = str(column.iloc[i]).strip()
        why = f"{column.name} {value!r} {what}" if value else f"no {column.name}"
        raise fail(path, int(lines[i]), why)
    return np.array([table[w] for w in words])[codes] if words else np.zeros(0)


def _chunks(path: Path, span: tuple[int, int] | None = None) -> Iterator[pd.DataFrame]:
    """The file's rows in frames of CHUNK_ROWS; with `span`, only the lines in that byte
    range (read under the file's header)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = tuple(h.strip() for h in handle.readline().rstrip("\r\n").split(";"))
    if header[: len(CSV_HEADER)] != CSV_HEADER:
        raise fail(str(path), 1, f"not an Eloverblik export: header {';'.join(header)!r}, "
                   f"expected {';'.join(CSV_HEADER)!r}")  # fmt: skip
    dtypes: dict[str, Any] = dict.fromkeys(CSV_HEADER, "category")
    dtypes.update(Fra_dato=object, Til_dato=object, Mængde=np.float64)
    source: Path | io.BufferedReader = path
    if span is not None:
        source = io.BufferedReader(_Span(path, *span), buffer_size=1 << 20)
    try:
        yield from pd.read_csv(
            source,
            sep=";",
            decimal=",",
            encoding="utf-8-sig",
            dtype=dtypes,
            na_values={"Mængde": [""]},
            keep_default_na=False,
            skip_blank_lines=False,
            chunksize=CHUNK_ROWS,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        found = _FIELDS.search(str(exc))
        if found:
            want, line, saw = found.groups()
            raise fail(str(path), int(line), f"{saw} fields, expected {want}") from None
        raise fail(str(path), None, f"cannot read as CSV: {exc}") from None
    except ValueError:
        raise _bad_number(path) from None


def _bad_number(path: Path) -> ConfigError:
    """The first quantity that is not a number (read again as text to find its line)."""
    for n, line in enumerate(path.open(encoding="utf-8-sig"), start=1):
        fields = line.rstrip("\r\n").split(";")
        if n > 1 and len(fields) > 3 and fields[3].strip():
            try:
                float(fields[3].strip().replace(",", "."))
            except ValueError:
                return fail(str(path), n, f"quantity {fields[3]!r} is not a number")
    return fail(str(path), None, "a quantity is not a number")


def _times(path: str, lines: Ints, column: pd.Series) -> Ints:
    naive, bad = parse_local_times(column.to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise fail(path, int(lines[i]), f"{column.name} {column.iloc[i]!r} is not a time like "
                   "31-12-2024 23:00:00")  # fmt: skip
    return naive


_QUALITY = (
    dict.fromkeys(ESTIMATED, 1) | dict.fromkeys(MEASURED, 0) | dict.fromkeys(NOT_AVAILABLE, 2)
)
_QUALITY_NAMES = "is not a DataHub quality (Målt, Estimeret, Beregnet, or codes A01-A06)"


@dataclass
class _Parsed:
    """The rows of a file, or of a byte range of it, as columns."""

    gsrns: list[str]  # by code
    cols: dict[str, Any]
    lengths: dict[int, int]  # per point code, Til_dato - Fra_dato of its first row
    rows: int
    empty: int


def read_csv(path: Path) -> UtilityFile:
    """An Eloverblik time-series export, every row checked; raises ConfigError naming the
    file, line and reason of the first fault. A large file is parsed in parts by as many
    processes as there are cores, then checked whole."""
    name = str(path)
    parsed = _parse_in_parts(path) or _parse(path)
    if not parsed.gsrns:
        raise fail(name, None, "no rows")
    points = _points(name, parsed.gsrns, parsed.cols, parsed.lengths)
    return UtilityFile(name, "eloverblik-csv", points, parsed.rows, parsed.empty)


def _parse(path: Path, span: tuple[int, int] | None = None) -> _Parsed:
    name = str(path)
    codes: dict[str, int] = {}
    parts: dict[str, list[Any]] = {k: [] for k in ("code", "fra", "kwh", "est", "line")}
    lengths: dict[int, int] = {}
    rows = empty = 0
    for raw in _chunks(path, span):
        lines = np.arange(rows, rows + len(raw), dtype=np.int64) + 2
        rows += len(raw)
        ids = [str(c).strip() for c in raw["MålepunktsID"].cat.categories]
        for gsrn in ids:
            if gsrn:
                codes.setdefault(gsrn, len(codes))
        id_codes = raw["MålepunktsID"].cat.codes.to_numpy()
        code = np.array([codes.get(g, -1) for g in ids] or [-1], dtype=np.int64)[id_codes]
        # a blank line keeps its place so line numbers stay true; it carries nothing
        filled = code >= 0
        chunk, lines, code = raw[filled], lines[filled], code[filled]
        fra = _times(name, lines, chunk["Fra_dato"])
        # the resolution comes from the spacing of Fra_dato; Til_dato is read where a
        # point starts, for a point of one row
        first = np.flatnonzero(np.diff(code, prepend=-1) != 0)
        til = _times(name, lines[first], chunk["Til_dato"].iloc[first])
        for at, end in zip(first.tolist(), til.tolist(), strict=True):
            lengths.setdefault(int(code[at]), end - int(fra[at]))
        scale = _categories(name, lines, chunk["Måleenhed"], UNITS, "is not kWh, MWh or Wh")
        quality = _categories(name, lines, chunk["Kvalitet"], _QUALITY, _QUALITY_NAMES)
        kwh = chunk["Mængde"].to_numpy(np.float64) * scale
        kwh[quality == 2] = np.nan
        empty += int(np.isnan(kwh).sum())
        for key, value in (
            ("code", code), ("fra", fra), ("kwh", kwh), ("est", quality == 1),
            ("line", lines),
        ):  # fmt: skip
            parts[key].append(value)
    cols = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in parts.items()}
    return _Parsed(list(codes), cols, lengths, rows, empty)


def _parse_in_parts(path: Path) -> _Parsed | None:
    """Parse byte ranges of a large file in parallel (None: small file, one core, or a
    fault, which a plain parse then names with its true line)."""
    cores = min(os.cpu_count() or 1, MAX_PROCESSES)
    size = path.stat().st_size
    if cores < 2 or size < PARALLEL_BYTES or "fork" not in mp.get_all_start_methods():
        return None
    with path.open("rb") as handle:
        handle.readline()
        cuts = [handle.tell()]
        for k in range(1, cores):
            handle.seek(max(size * k // cores, cuts[-1]))
            handle.readline()
            cuts.append(handle.tell())
    cuts.append(size)
    spans = [(a, b) for a, b in itertools.pairwise(cuts) if b > a]
    try:
        with ProcessPoolExecutor(len(spans), mp_context=mp.get_context("fork")) as pool:
            results = list(pool.map(_parse, [path] * len(spans), spans))
    except ConfigError:
        return None
    return _merge(results)


def _merge(results: list[_Parsed]) -> _Parsed:
    """One file's parts as one: point codes made common, line numbers made global."""
    codes: dict[str, int] = {}
    parts: dict[str, list[Any]] = {k: [] for k in results[0].cols}
    lengths: dict[int, int] = {}
    rows = empty = 0
    for part in results:
        remap = np.array([codes.setdefault(g, len(codes)) for g in part.gsrns] or [0])
        for code, length in part.lengths.items():
            lengths.setdefault(int(remap[code]), length)
        cols = dict(part.cols, code=remap[part.cols["code"]], line=part.cols["line"] + rows)
        for key, value in cols.items():
            parts[key].append(value)
        rows += part.rows
        empty += part.empty
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    return _Parsed(list(codes), cols, lengths, rows, empty)


class _Span(io.RawIOBase):
    """A byte range of a file, read after the file's header line."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self._file = path.open("rb")
        self._head = self._file.readline()
        self._file.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n], self._head = self._head[:n], self._head[n:]
            return n
        n = self._file.readinto(view[: min(len(view), self._left)]) or 0
        self._left -= n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def _points(
    name: str, gsrns: list[str], cols: dict[str, Any], lengths: dict[int, int]
) -> list[PointSeries]:
    code: Ints = cols["code"]
    if len(code) > 1 and (np.diff(code) < 0).any():  # points interleaved: group them
        order = np.argsort(code, kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        code = cols["code"]
    fra: Ints = cols["fra"]
    # the autumn hour comes twice: a time no later than one already seen for the same
    # point is the second one (the file runs forward in time within a point)
    key = code * (1 << 40) + (fra - fra.min())
    before = np.maximum.accumulate(np.concatenate(([-1], key[:-1])))
    utc, skipped = to_utc_ms(fra, key <= before, TZ)
    if skipped.any():
        i = int(np.flatnonzero(skipped)[0])
        raise fail(name, int(cols["line"][i]), "Fra_dato falls in the hour the clocks skip in "
                   "spring; it does not exist in Danish time")  # fmt: skip
    cut = np.flatnonzero(np.diff(code)) + 1
    bounds = [0, *cut.tolist(), len(code)]
    out = []
    for lo, hi in itertools.pairwise(bounds):
        steps = np.diff(np.sort(utc[lo:hi]))
        quarters = int((steps == QUARTER_MS).sum())
        hours = int((steps == HOUR_MS).sum())
        resolution = QUARTER_MS if quarters >= hours else HOUR_MS
        if not quarters and not hours:
            resolution = lengths[int(code[lo])]
        keep = np.flatnonzero(~np.isnan(cols["kwh"][lo:hi])) + lo
        if not len(keep):
            continue
        out.append(
            point_series(
                name, gsrns[int(code[lo])], utc[keep], cols["kwh"][keep], cols["est"][keep],
                cols["line"][keep], resolution,
            )
        )  # fmt: skip
    return out


def read_json(path: Path) -> UtilityFile:
    """Eloverblik API time series (`result[].MyEnergyData_MarketDocument.TimeSeries[]`)."""
    name = str(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        results = doc["result"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise fail(name, None, f"not Eloverblik JSON ({exc})") from None
    by_point: dict[str, list[tuple[int, float, bool, int, int]]] = {}
    rows = empty = 0
    for r, result in enumerate(results):
        where = f"result[{r}]"
        try:
            series_list = result["MyEnergyData_MarketDocument"]["TimeSeries"]
        except (KeyError, TypeError):
            if isinstance(result, dict) and result.get("success") is False:
                why = result.get("errorText") or result.get("errorCode")
                raise fail(name, None, f"{where}: DataHub answered with an error: {why}") from None
            raise fail(name, None, f"{where}: no MyEnergyData_MarketDocument.TimeSeries") from None
        for s, series in enumerate(series_list):
            try:
                gsrn = str(series["MarketEvaluationPoint"]["mRID"]["name"])
                scale = UNITS[str(series.get("measurement_Unit.name", "KWH")).lower()]
                for p, period in enumerate(series["Period"]):
                    at = f"{where}.TimeSeries[{s}].Period[{p}]"
                    step = _RESOLUTION.get(period["resolution"])
                    if step is None:
                        raise fail(name, None, f"{at}: resolution {period['resolution']!r}: "
                                   "only PT15M and PT1H")  # fmt: skip
                    start = _utc_ms(name, at, period["timeInterval"]["start"])
                    for point in period["Point"]:
                        rows += 1
                        position = int(point["position"])
                        quality = str(point.get("out_Quantity.quality", "A04")).lower()
                        text = point.get("out_Quantity.quantity")
                        if quality in NOT_AVAILABLE or text in (None, ""):
                            empty += 1
                            continue
                        if quality not in MEASURED | ESTIMATED:
                            raise fail(name, None, f"{at}.Point position {position}: quality "
                                       f"{quality!r} is not a DataHub quality")  # fmt: skip
                        kwh = float(str(text).replace(",", ".")) * scale
                        by_point.setdefault(gsrn, []).append(
                            (start + (position - 1) * step, kwh, quality in ESTIMATED, rows, step)
                        )
            except ConfigError:
                raise
            except (KeyError, TypeError, ValueError) as exc:
                raise fail(
                    name, None, f"{where}.TimeSeries[{s}]: {type(exc).__name__} {exc}"
                ) from None
    points = []
    for gsrn, entries in by_point.items():
        arr = np.array([e[:2] for e in entries], dtype=float)
        steps = {e[4] for e in entries}
        if len(steps) > 1:
            raise fail(name, None, f"metering point {gsrn}: periods of mixed resolution")
        points.append(
            point_series(
                name, gsrn, np.array([e[0] for e in entries], dtype=np.int64), arr[:, 1],
                np.array([e[2] for e in entries]), np.array([e[3] for e in entries]),
                steps.pop(),
            )
        )  # fmt: skip
    if not rows:
        raise fail(name, None, "no time series points")
    return UtilityFile(name, "eloverblik-json", points, rows, empty)


def _utc_ms(name: str, at: str, text: str) -> int:
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise fail(name, None, f"{at}: start {text!r} is not a time") from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return epoch_ms(ts.to_pydatetime())
