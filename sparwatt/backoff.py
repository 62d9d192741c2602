"""The one retry schedule: exponential backoff with a ceiling, optionally jittered.

Used for broker reconnects, database retries, sink writes, alert channel retries and
notice redelivery, so every retry in Sparwatt grows and stops growing the same way.
"""

from __future__ import annotations

from collections.abc import Callable

_MAX_DOUBLINGS = 60  # 2**60 outgrows every ceiling in use; keeps the power finite


def backoff_s(
    retry: int, first: float, ceiling: float, jitter: Callable[[], float] | None = None
) -> float:
    """The pause before retry number `retry` (0 = the first): `first` doubled each time,
    at most `ceiling`. With `jitter` (a source of 0..1), "equal jitter": half the pause is
    fixed and half random, so many clients that lost the same server do not return at once."""
    pause = min(ceiling, first * 2.0 ** min(max(retry, 0), _MAX_DOUBLINGS))
    if jitter is None:
        return pause
    return pause / 2 + pause / 2 * jitter()
