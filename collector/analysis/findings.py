"""Result types: a detector's Finding and the priced, tracked Opportunity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal


def stable_id(site: str, meter: str, kind: str) -> str:
    """Same site, meter and kind -> same id, so a re-run updates instead of duplicating."""
    return hashlib.sha256(f"{site}\x1f{meter}\x1f{kind}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Finding:
    """What one detector saw on one meter, sized per year."""

    site: str
    meter: str
    kind: str
    period_start_ms: int  # the data the evidence comes from
    period_end_ms: int
    annual_kwh: float  # energy saved per year (for peak_shift: energy moved out of spidslast)
    annual_dkk: float
    annual_kg_co2: float
    confidence: float  # 0..1
    size: float = 0.0  # kW removed or kvar to compensate; scales the investment
    evidence: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Opportunity:
    """A savings opportunity with its measure, payback and tracking state."""

    id: str
    site: str
    meter: str
    kind: str
    period_start_ms: int
    period_end_ms: int
    evidence: dict[str, float | str]
    annual_kwh: float
    annual_dkk: float
    annual_kg_co2: float
    action: str
    investment_dkk: float
    lifetime_years: float
    payback_years: float
    rentabel: bool
    confidence: float
    status: Literal["open", "closed"] = "open"
    first_seen_ms: int = 0
    last_seen_ms: int = 0
    closed_ms: int | None = None
