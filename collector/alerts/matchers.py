"""Alertmanager-style label matchers (`site="a"`, `meter=~"hall-.*"`) for silences, inhibition."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

_SYNTAX = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


class Op(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label; a missing label matches as the empty string."""

    name: str
    op: Op
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in (Op.RE, Op.NRE):
            try:
                # Anchored like Alertmanager, so "hall" does not also match "hall-2".
                compiled = re.compile(f"^(?:{self.value})$")
            except re.error as exc:
                raise ValueError(f"bad regular expression {self.value!r}: {exc}") from None
            object.__setattr__(self, "_regex", compiled)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        found = _SYNTAX.match(text)
        if not found:
            raise ValueError(f'matcher {text!r} is not of the form name="value" (ops = != =~ !~)')
        name, op, raw = found.groups()
        return cls(name, Op(op), re.sub(r"\\(.)", r"\1", raw))

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is Op.EQ:
            return actual == self.value
        if self.op is Op.NE:
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.match(actual) is not None
        return hit if self.op is Op.RE else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_all(texts: Iterable[str]) -> tuple[Matcher, ...]:
    return tuple(Matcher.parse(t) for t in texts)


def match_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
