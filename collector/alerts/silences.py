"""Silences: time windows with label matchers (planned shutdowns) that mute notifications."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from collector.alerts.matchers import Matcher, match_all
from collector.alerts.model import require_utc


@dataclass(frozen=True, slots=True)
class Silence:
    """Alerts whose labels match every matcher are not notified between starts_at and ends_at."""

    id: str
    starts_at: datetime
    ends_at: datetime
    matchers: tuple[Matcher, ...]
    comment: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts_at", require_utc(self.starts_at, "silence start"))
        object.__setattr__(self, "ends_at", require_utc(self.ends_at, "silence end"))
        if self.ends_at <= self.starts_at:
            raise ValueError(f"silence {self.id!r} ends before it starts")
        if not self.matchers:
            # An empty matcher list would mute every alert of every site.
            raise ValueError(f"silence {self.id!r} needs at least one matcher")

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.active_at(now) and match_all(self.matchers, labels)


def active_silences(silences: Iterable[Silence], now: datetime) -> list[Silence]:
    return [s for s in silences if s.active_at(now)]


def silenced_by(labels: Mapping[str, str], active: Sequence[Silence]) -> str | None:
    """Id of the first active silence that matches, or None."""
    for silence in active:
        if match_all(silence.matchers, labels):
            return silence.id
    return None
