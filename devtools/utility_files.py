"""Write metering-point data the way Eloverblik exports it: for the demo's imported history
and for the import benchmark (tests write their own files line by line)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

HEADER = "MålepunktsID;Fra_dato;Til_dato;Mængde;Måleenhed;Kvalitet;Type"
TZ = "Europe/Copenhagen"


def local_stamps(start_ms: np.ndarray, step_ms: int) -> tuple[list[str], list[str]]:
    """'DD-MM-YYYY HH:MM:SS' Danish local time of each interval's start and end."""
    fmt = "%d-%m-%Y %H:%M:%S"
    starts = pd.to_datetime(start_ms, unit="ms", utc=True).tz_convert(TZ)
    ends = pd.to_datetime(start_ms + step_ms, unit="ms", utc=True).tz_convert(TZ)
    return list(starts.strftime(fmt)), list(ends.strftime(fmt))


def write_eloverblik_csv(
    path: Path,
    start_ms: np.ndarray,
    step_ms: int,
    points: Mapping[str, np.ndarray],
    estimated_every: int = 0,
) -> int:
    """One file of several metering points sharing the interval starts `start_ms` (UTC epoch
    ms); `points` maps GSRN -> kWh per interval. Every `estimated_every`-th row is marked
    estimated. Returns the number of rows written."""
    fra, til = local_stamps(start_ms, step_ms)
    rows = 0
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        out.write(HEADER + "\r\n")
        for gsrn, kwh in points.items():
            amounts = [f"{v:.3f}".replace(".", ",") for v in kwh.tolist()]
            quality = ["Målt"] * len(amounts)
            if estimated_every:
                quality[::estimated_every] = ["Estimeret"] * len(quality[::estimated_every])
            out.write(
                "".join(
                    f"{gsrn};{a};{b};{q};KWH;{k};Tidsserie\r\n"
                    for a, b, q, k in zip(fra, til, amounts, quality, strict=True)
                )
            )
            rows += len(amounts)
    return rows
