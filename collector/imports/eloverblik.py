"""Eloverblik (DataHub) metering-point data as a company downloads it: the time-series
CSV export (semicolon, decimal comma, BOM, Danish local time) and the API's JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from collector.imports import eloverblik_parts, eloverblik_points, eloverblik_rows
from collector.imports.eloverblik_rows import ESTIMATED, MEASURED, NOT_AVAILABLE, UNITS
from collector.imports.utility import UtilityFile, fail, point_series
from sparwatt.errors import ConfigError
from sparwatt.timeutil import HOUR_MS, QUARTER_MS, epoch_ms

PARALLEL_BYTES = 64 << 20  # smaller files parse faster than processes start
MAX_PROCESSES = 4
_RESOLUTION = {"PT15M": QUARTER_MS, "PT1H": HOUR_MS}


def read_csv(path: Path) -> UtilityFile:
    """An Eloverblik time-series export, every row checked; raises ConfigError naming the
    file, line and reason of the first fault. A large file is read in parts by as many
    processes as there are cores (up to MAX_PROCESSES)."""
    name = str(path)
    found = eloverblik_parts.read(path, PARALLEL_BYTES, MAX_PROCESSES)
    if found is None:
        parsed = eloverblik_rows.parse(path)
        if not parsed.gsrns:
            raise fail(name, None, "no rows")
        points = eloverblik_points.points(name, parsed)
        return UtilityFile(name, "eloverblik-csv", points, parsed.rows, parsed.empty)
    if not found.gsrns:
        raise fail(name, None, "no rows")
    return UtilityFile(name, "eloverblik-csv", found.points, found.rows, found.empty)


def read_json(path: Path) -> UtilityFile:
    """Eloverblik API time series (`result[].MyEnergyData_MarketDocument.TimeSeries[]`)."""
    name = str(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        results = doc["result"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise fail(name, None, f"not Eloverblik JSON ({exc})") from None
    by_point: dict[str, list[tuple[int, float, bool, int, int]]] = {}
    places: list[tuple[int, int, int, int]] = []  # per row: result, series, period, point
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
                unit = series.get("measurement_Unit.name", "KWH")
                scale = UNITS.get(str(unit).lower())
                if scale is None:
                    raise fail(name, None, f"{where}.TimeSeries[{s}]: unit {unit!r} is not kWh, "
                               "MWh or Wh")  # fmt: skip
                for p, period in enumerate(series["Period"]):
                    at = f"{where}.TimeSeries[{s}].Period[{p}]"
                    step = _RESOLUTION.get(period["resolution"])
                    if step is None:
                        raise fail(name, None, f"{at}: resolution {period['resolution']!r}: "
                                   "only PT15M and PT1H")  # fmt: skip
                    start = _utc_ms(name, at, period["timeInterval"]["start"])
                    for k, point in enumerate(period["Point"]):
                        position = _position(point["position"])
                        if position is None:
                            raise fail(name, None, f"{at}.Point[{k}]: position "
                                       f"{point['position']!r} is not 1 or more")  # fmt: skip
                        quality = str(point.get("out_Quantity.quality", "A04")).lower()
                        text = point.get("out_Quantity.quantity")
                        rows += 1
                        if quality in NOT_AVAILABLE or text in (None, ""):
                            empty += 1
                            continue
                        if quality not in MEASURED | ESTIMATED:
                            raise fail(name, None, f"{at}.Point[{k}]: quality "
                                       f"{quality!r} is not a DataHub quality")  # fmt: skip
                        kwh = _quantity(text)
                        if kwh is None:
                            raise fail(name, None, f"{at}.Point[{k}]: quantity {text!r} is not "
                                       "a number")  # fmt: skip
                        by_point.setdefault(gsrn, []).append(
                            (start + (position - 1) * step, kwh * scale, quality in ESTIMATED,
                             len(places), step)
                        )  # fmt: skip
                        places.append((r, s, p, k))
            except ConfigError:
                raise
            except (KeyError, TypeError, ValueError) as exc:
                raise fail(
                    name, None, f"{where}.TimeSeries[{s}]: {type(exc).__name__} {exc}"
                ) from None

    def place(row: int) -> str:
        r, s, p, k = places[row]
        return f"result[{r}].TimeSeries[{s}].Period[{p}].Point[{k}]"

    points = []
    for gsrn, entries in by_point.items():
        arr = np.array([e[:2] for e in entries], dtype=float)
        steps = {e[4] for e in entries}
        if len(steps) > 1:
            raise fail(name, None, f"metering point {gsrn}: periods of mixed resolution")
        found = point_series(
            name, gsrn, np.array([e[0] for e in entries], dtype=np.int64), arr[:, 1],
            np.array([e[2] for e in entries]), np.array([e[3] for e in entries]),
            steps.pop(), place,
        )  # fmt: skip
        points.append(dataclasses.replace(found, first_line=0))  # no line to name in JSON
    if not rows:
        raise fail(name, None, "no time series points")
    return UtilityFile(name, "eloverblik-json", points, rows, empty)


def _position(value: object) -> int | None:
    """A point's position (1 for the period's first interval), or None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 1 else None


def _quantity(value: object) -> float | None:
    """A quantity (the API writes it as a string, a decimal comma taken too), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _utc_ms(name: str, at: str, text: object) -> int:
    if not isinstance(text, str):
        raise fail(name, None, f"{at}: start {text!r} is not a time")
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise fail(name, None, f"{at}: start {text!r} is not a time") from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return epoch_ms(ts.to_pydatetime())
