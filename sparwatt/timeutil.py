"""Time on Sparwatt's axis: UTC epoch milliseconds and the 15-minute interval grid.

Stored times are integer epoch milliseconds everywhere; datetimes appear only at the edges
(the wire format, the CLI, the web pages).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from pydantic_core import TzInfo

SECOND_MS = 1_000
MINUTE_MS = 60_000
QUARTER_MS = 900_000  # one interval of the 15-minute history
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
QUARTERS_PER_DAY = DAY_MS // QUARTER_MS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_FIXED_ZONES = (timezone, TzInfo)  # zones whose offset is the same at every instant


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def epoch_ms(ts: datetime) -> int:
    """An aware datetime in exact epoch milliseconds (float timestamps can land one low)."""
    return (ts - _EPOCH) // _ONE_MS


def epochs_ms(stamps: Sequence[datetime]) -> list[int]:
    """Many aware datetimes in exact epoch milliseconds, at about half the cost of
    `epoch_ms` each: a fixed UTC offset (parsed timestamps carry one) is asked once per
    zone object, not once per datetime, and the rest is integer arithmetic. A sequence, not
    any iterable: the zones are told apart by id, so they must all stay alive."""
    out: list[int] = []
    offsets: dict[int, int] = {}
    append = out.append
    for ts in stamps:
        zone = ts.tzinfo
        if type(zone) not in _FIXED_ZONES:
            append((ts - _EPOCH) // _ONE_MS)
            continue
        offset = offsets.get(id(zone))
        if offset is None:
            offset = offsets[id(zone)] = ts.utcoffset() // _ONE_MS  # type: ignore[operator]
        append(
            (ts.toordinal() - _EPOCH_ORDINAL) * 86_400_000
            + ts.hour * 3_600_000
            + ts.minute * 60_000
            + ts.second * 1000
            + ts.microsecond // 1000
            - offset
        )
    return out


def from_ms(ms: int, tz: tzinfo = UTC) -> datetime:
    """Epoch milliseconds as an aware datetime (UTC unless a zone is given)."""
    return datetime.fromtimestamp(ms / 1000, tz)


def quarter_floor(ms: int) -> int:
    """The start of the 15-minute interval that holds `ms`."""
    return ms // QUARTER_MS * QUARTER_MS
