"""A site's outdoor temperature from a file, as hourly means in degrees Celsius.

Taken as they come: DMI's open data observations (metObs, parameter `temp_dry`) as the API's
GeoJSON FeatureCollection, as its bulk files (one GeoJSON feature per line) or as a CSV with
`observed`, `parameterId` and `value` columns (a `properties.` prefix is allowed, as
flattened GeoJSON has it); or a plain CSV `ts,celsius` (or `ts,fahrenheit`). Times are UTC
unless they carry an offset. The observations within a UTC hour are averaged into that hour.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from collector.imports.utility import fail
from sparwatt.timeutil import HOUR_MS, from_ms
from sparwatt.wire import format_ts

PARAMETER = "temp_dry"  # DMI: dry-bulb air temperature 2 m above ground, degrees C
MIN_C, MAX_C = -60.0, 60.0  # beyond any Danish (or European) outdoor temperature
UNITS = ("celsius", "fahrenheit")
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TemperatureFile:
    """A file's temperatures as hourly means; `rows` observations were read, `skipped`
    were of other parameters or without a value."""

    path: str
    source: str  # dmi-geojson, dmi-lines, dmi-csv or csv
    start_ms: Ints  # UTC hour starts, ascending
    celsius: Floats
    rows: int
    skipped: int
    station: str | None

    @property
    def values(self) -> int:
        return len(self.start_ms)


@dataclass(frozen=True)
class _Obs:
    line: int | None
    where: str  # "feature 3" for a GeoJSON document, else ""
    ts: str
    value: object
    parameter: str | None
    station: str | None


def recognise(head: str) -> bool:
    """Whether the first bytes of a file look like outdoor temperatures this module reads."""
    if '"parameterId"' in head:
        return True
    first = head.lstrip().splitlines()[0] if head.strip() else ""
    header = [c.strip().lower().removeprefix("properties.") for c in re.split("[,;]", first)]
    return "parameterid" in header or header in (["ts", unit] for unit in UNITS)


def summary(found: TemperatureFile) -> dict[str, Any]:
    """What a file holds: what the import reports."""
    return {
        "file": found.path,
        "format": "temperature",
        "source": found.source,
        "station": found.station,
        "rows": found.rows,
        "other_rows": found.skipped,
        "hours": found.values,
        "first": format_ts(from_ms(int(found.start_ms[0]))),
        "last": format_ts(from_ms(int(found.start_ms[-1]))),
        "min_c": float(found.celsius.min()),
        "mean_c": round(float(found.celsius.mean()), 2),
        "max_c": float(found.celsius.max()),
    }


def to_celsius(values: Floats, unit: str) -> Floats:
    """The one place a unit becomes degrees Celsius."""
    if unit == "fahrenheit":
        out: Floats = (values - 32.0) * 5.0 / 9.0
        return out
    return values


def read(path: Path) -> TemperatureFile:
    """The whole file, checked: ConfigError names the file, the line and the reason."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise fail(name, None, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise fail(name, None, "not UTF-8 text") from None
    stripped = text.lstrip()
    unit = "celsius"
    if stripped.startswith("{") and _one_feature(stripped.splitlines()[0]):
        source, observations = "dmi-lines", _lines(name, text)
    elif stripped.startswith("{"):
        source, observations = "dmi-geojson", _geojson(name, text)
    else:
        source, unit, observations = _csv(name, text)
    return _hourly(name, source, unit, list(observations))


def _one_feature(line: str) -> bool:
    """Whether a line is a whole GeoJSON feature (DMI's bulk files have one per line)."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(doc, dict) and "properties" in doc


def _geojson(name: str, text: str) -> Iterator[_Obs]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(name, exc.lineno, f"not valid JSON: {exc.msg}") from None
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise fail(name, None, "a GeoJSON FeatureCollection needs a 'features' list")
    for n, feature in enumerate(features, start=1):
        yield _feature(name, None, f"feature {n}", feature)


def _lines(name: str, text: str) -> Iterator[_Obs]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            feature = json.loads(line)
        except json.JSONDecodeError as exc:
            raise fail(name, n, f"not a GeoJSON feature: {exc.msg}") from None
        yield _feature(name, n, "", feature)


def _feature(name: str, line: int | None, where: str, feature: Any) -> _Obs:
    props = feature.get("properties") if isinstance(feature, dict) else None
    if not isinstance(props, dict) or "observed" not in props:
        raise fail(name, line, _at(where, "a feature needs properties.observed and value"))
    station = props.get("stationId")
    parameter = props.get("parameterId")
    return _Obs(
        line,
        where,
        str(props["observed"]),
        props.get("value"),
        None if parameter is None else str(parameter),
        None if station is None else str(station),
    )


def _csv(name: str, text: str) -> tuple[str, str, Iterator[_Obs]]:
    lines = text.splitlines()
    first = lines[0] if lines else ""
    delimiter = ";" if ";" in first and "," not in first else ","
    rows = csv.reader(lines, delimiter=delimiter)
    header = [h.strip().removeprefix("properties.") for h in next(rows, [])]
    lower = [h.lower() for h in header]
    if lower[:2] in (["ts", u] for u in UNITS) and len(header) == 2:
        return "csv", lower[1], _plain(name, rows, delimiter)
    if {"observed", "value"} <= set(header):
        return "dmi-csv", "celsius", _dmi_csv(name, rows, header, delimiter)
    raise fail(name, 1, f"header {first.strip()[:80]!r}: expected ts,celsius or DMI's "
               "observed,parameterId,value columns")  # fmt: skip


def _plain(name: str, rows: Iterator[list[str]], delimiter: str) -> Iterator[_Obs]:
    for n, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise fail(name, n, f"{len(row)} fields, expected 2")
        yield _Obs(n, "", row[0], _decimal(row[1], delimiter), PARAMETER, None)


def _dmi_csv(
    name: str, rows: Iterator[list[str]], header: list[str], delimiter: str
) -> Iterator[_Obs]:
    for n, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise fail(name, n, f"{len(row)} fields, expected {len(header)}")
        cells = dict(zip(header, row, strict=True))
        yield _Obs(
            n,
            "",
            cells["observed"],
            _decimal(cells["value"], delimiter),
            cells.get("parameterId", PARAMETER).strip(),
            cells.get("stationId", "").strip() or None,
        )


def _decimal(text: str, delimiter: str) -> str:
    """A CSV cell as a number's text: with semicolons, a decimal comma is a point."""
    cell = text.strip()
    return cell.replace(",", ".") if delimiter == ";" else cell


def _at(where: str, reason: str) -> str:
    return f"{where}: {reason}" if where else reason


def _hourly(name: str, source: str, unit: str, observations: list[_Obs]) -> TemperatureFile:
    """Check every observation and average them per UTC hour."""
    stamps: list[int] = []
    values: list[float] = []
    taken: list[_Obs] = []
    station: _Obs | None = None
    for obs in observations:
        if obs.parameter != PARAMETER or obs.value in (None, ""):
            continue
        taken.append(obs)
        if obs.station is not None:
            if station is None:
                station = obs
            elif obs.station != station.station:
                first = f" (line {station.line})" if station.line else ""
                why = f"station {obs.station} after station {station.station}{first}"
                raise fail(name, obs.line, _at(obs.where, f"{why}: one station per file"))
        stamps.append(_ms(name, obs))
        values.append(_number(name, obs))
    if not stamps:
        raise fail(name, None, f"no {PARAMETER} observations with a value")
    celsius = to_celsius(np.array(values, dtype=np.float64), unit)
    bad = np.flatnonzero((celsius < MIN_C) | (celsius > MAX_C))
    if len(bad):
        obs = taken[int(bad[0])]
        raise fail(name, obs.line, _at(obs.where, f"{celsius[bad[0]]:g} C is not a plausible "
                   "outdoor temperature"))  # fmt: skip
    hours, where = np.unique(np.array(stamps, dtype=np.int64) // HOUR_MS, return_inverse=True)
    mean = np.bincount(where, weights=celsius) / np.bincount(where)
    return TemperatureFile(
        name,
        source,
        hours * HOUR_MS,
        np.round(mean, 3),
        len(observations),
        len(observations) - len(taken),
        None if station is None else station.station,
    )


def _ms(name: str, obs: _Obs) -> int:
    try:
        ts = datetime.fromisoformat(obs.ts.strip().replace("Z", "+00:00"))
    except ValueError:
        raise fail(name, obs.line, _at(obs.where, f"time {obs.ts!r} is not ISO 8601")) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)  # DMI's times are UTC; a plain file's are too
    if not 2000 <= ts.year <= 2100:
        raise fail(name, obs.line, _at(obs.where, f"time {obs.ts!r} is not between 2000 and 2100"))
    return int(ts.timestamp() * 1000)


def _number(name: str, obs: _Obs) -> float:
    value = obs.value
    number = float("nan")
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            number = float(value)
    if not np.isfinite(number):
        raise fail(name, obs.line, _at(obs.where, f"value {value!r} is not a number"))
    return number
