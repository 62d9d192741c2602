"""Local wall-clock times, as utilities write them, to UTC: vectorised, with the DST days
handled (a spring-forward time does not exist; an autumn time occurs twice)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from sparwatt.timeutil import HOUR_MS

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
_MISSING = np.iinfo(np.int64).min


@dataclass(frozen=True)
class Offsets:
    """A zone's UTC offset for each local hour of a span, for the first and for the
    second occurrence of an hour (they differ only in the repeated autumn hour)."""

    first_hour: int
    first: Ints
    second: Ints

    def to_utc(self, naive_ms: Ints, second_time: Bools) -> tuple[Ints, Bools]:
        """UTC epoch ms of local times within the span (see `to_utc_ms`)."""
        index = naive_ms // HOUR_MS - self.first_hour
        offset = np.where(second_time, self.second[index], self.first[index])
        missing = offset == _MISSING
        return np.where(missing, 0, naive_ms - offset), missing


def offsets(first_ms: int, last_ms: int, tz: str) -> Offsets:
    """`tz`'s offsets for the local hours from the one holding `first_ms` to the one
    holding `last_ms` (ms since 1970-01-01 00:00 local)."""
    # the UTC offset only changes on the hour: convert each hour of the span once
    first = first_ms // HOUR_MS
    hours = np.arange(first, last_ms // HOUR_MS + 1) * HOUR_MS
    span = pd.DatetimeIndex(pd.to_datetime(hours, unit="ms"))
    found = []
    for summer in (True, False):
        local = span.tz_localize(tz, ambiguous=np.full(len(span), summer), nonexistent="NaT")
        utc = local.tz_convert("UTC").tz_localize(None)
        offset = (span - utc).to_numpy(dtype="timedelta64[ms]").astype(np.int64)
        found.append(np.where(pd.isna(local), _MISSING, offset))
    return Offsets(first, found[0], found[1])


def to_utc_ms(naive_ms: Ints, second_time: Bools, tz: str) -> tuple[Ints, Bools]:
    """UTC epoch ms of local times given as ms since 1970-01-01 00:00 local; `second_time`
    marks the second occurrence of a repeated autumn time. Returns (utc, missing) where
    `missing` marks times the clock skipped in spring."""
    if not len(naive_ms):
        return naive_ms.copy(), np.zeros(0, dtype=bool)
    return offsets(int(naive_ms.min()), int(naive_ms.max()), tz).to_utc(naive_ms, second_time)
