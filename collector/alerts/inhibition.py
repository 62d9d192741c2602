"""Inhibition: a firing source alert (gateway offline) mutes related target alerts (its meters)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from collector.alerts.matchers import Matcher, match_all, parse_all


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """Targets are muted while a source with the same `equal` label values is firing."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ("site",)


# A gateway that is offline makes every meter behind it silent or odd; one page is enough.
DEFAULT_INHIBIT_RULES: tuple[InhibitRule, ...] = (
    InhibitRule(
        source=parse_all(['alertname="gateway_offline"']),
        target=parse_all(['meter=~".+"']),
        equal=("site",),
    ),
)


class Inhibitor:
    """Answers "is this alert inhibited?" for one evaluation; built once from the firing alerts."""

    def __init__(self, rules: Sequence[InhibitRule], firing: Iterable[Mapping[str, str]]) -> None:
        self._rules = tuple(rules)
        # Index sources by their `equal` label values so each lookup is O(rules), not O(alerts).
        self._sources: list[dict[tuple[str, ...], list[Mapping[str, str]]]] = [
            {} for _ in self._rules
        ]
        for labels in firing:
            for rule, index in zip(self._rules, self._sources, strict=True):
                if match_all(rule.source, labels):
                    key = tuple(labels.get(name, "") for name in rule.equal)
                    index.setdefault(key, []).append(labels)

    def inhibited_by(self, labels: Mapping[str, str]) -> Mapping[str, str] | None:
        """Labels of the first firing alert that inhibits `labels`, or None."""
        for rule, index in zip(self._rules, self._sources, strict=True):
            if not match_all(rule.target, labels):
                continue
            key = tuple(labels.get(name, "") for name in rule.equal)
            for source in index.get(key, ()):
                # Like Alertmanager, an alert never inhibits itself.
                if dict(source) != dict(labels):
                    return source
        return None
