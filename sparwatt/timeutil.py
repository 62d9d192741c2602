"""Time on Sparwatt's axis: UTC epoch milliseconds and the 15-minute interval grid.

Stored times are integer epoch milliseconds everywhere; datetimes appear only at the edges
(the wire format, the CLI, the web pages).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from itertools import repeat
from operator import sub

from pydantic_core import TzInfo

SECOND_MS = 1_000
MINUTE_MS = 60_000
QUARTER_MS = 900_000  # one interval of the 15-minute history
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
QUARTERS_PER_DAY = DAY_MS // QUARTER_MS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_FIXED_ZONES = (timezone, TzInfo)  # zones whose offset is the same at every instant


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def epoch_ms(ts: datetime) -> int:
    """An aware datetime in exact epoch milliseconds (float timestamps can land one low)."""
    return (ts - _EPOCH) // _ONE_MS


def epochs_ms(stamps: Sequence[datetime]) -> list[int]:
    """Many aware datetimes in exact epoch milliseconds, at about half the cost of
    `epoch_ms` each. The epoch is taken in the first datetime's zone when that zone has
    one offset at every instant: Python subtracts two datetimes of the same zone object
    without asking the zone for offsets (parsed timestamps of a message share one), and
    any other pair exactly, through their offsets. A difference's days, seconds and
    microseconds are whole and normalised (0 <= seconds < 86400, 0 <= microseconds <
    10**6), so the sum below floors exactly as `epoch_ms` does, with small integers
    instead of a timedelta division in microseconds."""
    if not stamps:
        return []
    zone = stamps[0].tzinfo
    epoch = _EPOCH.astimezone(zone) if type(zone) in _FIXED_ZONES else _EPOCH
    return [
        d.days * DAY_MS + d.seconds * SECOND_MS + d.microseconds // 1000
        for d in map(sub, stamps, repeat(epoch))
    ]


def from_ms(ms: int, tz: tzinfo = UTC) -> datetime:
    """Epoch milliseconds as an aware datetime (UTC unless a zone is given)."""
    return datetime.fromtimestamp(ms / 1000, tz)


def quarter_floor(ms: int) -> int:
    """The start of the 15-minute interval that holds `ms`."""
    return ms // QUARTER_MS * QUARTER_MS
