"""Local wall-clock times, as utilities write them, to UTC: vectorised, with the DST days
handled (a spring-forward time does not exist; an autumn time occurs twice)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from sparwatt.timeutil import HOUR_MS

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def to_utc_ms(naive_ms: Ints, second_time: Bools, tz: str) -> tuple[Ints, Bools]:
    """UTC epoch ms of local times given as ms since 1970-01-01 00:00 local; `second_time`
    marks the second occurrence of a repeated autumn time. Returns (utc, missing) where
    `missing` marks times the clock skipped in spring."""
    if not len(naive_ms):
        return naive_ms.copy(), np.zeros(0, dtype=bool)
    # the UTC offset only changes on the hour: convert each hour of the span once
    hours = naive_ms // HOUR_MS
    first = int(hours.min())
    span = pd.DatetimeIndex(
        pd.to_datetime(np.arange(first, int(hours.max()) + 1) * HOUR_MS, unit="ms")
    )
    offsets = []
    for summer in (True, False):
        local = span.tz_localize(tz, ambiguous=np.full(len(span), summer), nonexistent="NaT")
        utc = local.tz_convert("UTC").tz_localize(None)
        offset = (span - utc).to_numpy(dtype="timedelta64[ms]").astype(np.int64)
        offsets.append(np.where(pd.isna(local), np.iinfo(np.int64).min, offset))
    index = hours - first
    offset = np.where(second_time, offsets[1][index], offsets[0][index])
    missing = offset == np.iinfo(np.int64).min
    return np.where(missing, 0, naive_ms - offset), missing
