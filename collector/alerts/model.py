"""Plain data types the alert rules read (grids, counters, status) and write (conditions)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Value = float | int | str | None


class MeterKey(NamedTuple):
    """A meter is only unique within its site."""

    site: str
    meter: str


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


def require_utc(ts: datetime, what: str = "time") -> datetime:
    """Reject naive datetimes: a local wall-clock time is ambiguous twice a year."""
    if ts.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {ts.isoformat()}")
    return ts.astimezone(UTC)


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable identity of an alert: the same label set always gives the same key."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Condition:
    """One rule finding that is true right now; the lifecycle turns it into an alert."""

    labels: Mapping[str, str]
    severity: Severity
    summary: str
    values: Mapping[str, Value] = field(default_factory=dict)
    for_s: float = 0.0  # how long it must hold before it fires

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def site(self) -> str:
        return self.labels.get("site", "")


@dataclass(frozen=True, slots=True)
class IntervalGrid:
    """Energy per fixed interval for many meters on one shared time axis (NaN = missing)."""

    meters: tuple[MeterKey, ...]
    start: datetime  # start of column 0, aligned to step_s
    energy_kwh: FloatArray  # shape (len(meters), n_intervals)
    step_s: int = 900

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", require_utc(self.start, "grid start"))
        if self.energy_kwh.ndim != 2 or self.energy_kwh.shape[0] != len(self.meters):
            raise ValueError(
                f"energy_kwh must have shape ({len(self.meters)}, n), got {self.energy_kwh.shape}"
            )
        if int(self.start.timestamp()) % self.step_s:
            raise ValueError(
                f"grid start {self.start.isoformat()} is not aligned to {self.step_s}s"
            )

    @property
    def start_s(self) -> int:
        return int(self.start.timestamp())

    @property
    def n_intervals(self) -> int:
        return int(self.energy_kwh.shape[1])

    def column_starts(self) -> npt.NDArray[np.int64]:
        """Epoch seconds at which each column's interval begins."""
        return self.start_s + self.step_s * np.arange(self.n_intervals, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class CounterSeries:
    """Recent samples of one meter's import energy counter, oldest first."""

    ts_s: FloatArray  # epoch seconds
    kwh: FloatArray


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """Presence of one gateway as last seen on its retained status topic."""

    site: str
    gateway: str
    online: bool
    since: datetime | None = None  # when the current state was announced, if known
