"""Company load shapes: how much power a simulated meter draws at a given moment."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

ProfileKind = Literal["office", "production", "retail", "cold-store", "compressor"]

# Share of peak power drawn while open / closed, by kind of load.
_SHAPES: dict[str, tuple[tuple[int, int], float, float]] = {
    # kind: ((open hour, close hour), base share, saturday share of open load)
    "office": ((7, 17), 0.18, 0.10),
    "production": ((6, 22), 0.30, 0.40),
    "retail": ((9, 20), 0.25, 0.90),
    "cold-store": ((6, 18), 0.60, 0.60),
    "compressor": ((6, 16), 0.05, 0.00),
}
_TZ = ZoneInfo("Europe/Copenhagen")


@dataclass(frozen=True, slots=True)
class LoadProfile:
    kind: ProfileKind = "office"
    peak_kw: float = 40.0
    seed: int = 1

    def power_w(self, t: float) -> float:
        """Active power at epoch second t: day/night, weekday/weekend, a little noise."""
        (opens, closes), base, saturday = _SHAPES[self.kind]
        local = datetime.fromtimestamp(t, UTC).astimezone(_TZ)
        hour = local.hour + local.minute / 60
        weekday = local.weekday()
        day_factor = 1.0 if weekday < 5 else (saturday if weekday == 5 else 0.0)
        if opens <= hour < closes:
            # soft ramps at opening and closing rather than a square wave
            ramp = min(1.0, (hour - opens) / 1.0, (closes - hour) / 1.0)
            midday_dip = 0.9 if 11.5 <= hour < 12.5 else 1.0
            occupancy = day_factor * max(ramp, 0.0) * midday_dip
        else:
            occupancy = 0.0
        share = base + (1 - base) * occupancy
        noise = random.Random(self.seed * 1_000_003 + int(t)).gauss(0.0, 0.02)
        cycle = 0.03 * math.sin(t / 97.0 + self.seed)  # compressors and fans cycling
        return max(0.0, self.peak_kw * 1000.0 * share * (1.0 + noise + cycle))
