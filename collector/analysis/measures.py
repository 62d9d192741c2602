"""The measure table: suggested action, typical investment and lifetime per kind of
opportunity, and how a site's overrides change a row."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NonNeg = Annotated[float, Field(ge=0)]


class Measure(BaseModel):
    """What to do about one kind of opportunity, what it typically costs and how long it lasts."""

    model_config = ConfigDict(extra="forbid")

    action: str
    investment_dkk: NonNeg
    investment_dkk_per_unit: NonNeg = 0.0  # per kW removed, or per kvar for power factor
    lifetime_years: Annotated[float, Field(gt=0)]


class MeasureOverride(BaseModel):
    """A site's change to one row of the default measure table."""

    model_config = ConfigDict(extra="forbid")

    action: str | None = None
    investment_dkk: NonNeg | None = None
    investment_dkk_per_unit: NonNeg | None = None
    lifetime_years: Annotated[float, Field(gt=0)] | None = None


# Typical figures for a small or medium Danish company, ex VAT; docs/savings.md gives the
# reasoning. investment = investment_dkk + investment_dkk_per_unit * size (kW or kvar).
DEFAULT_MEASURES: dict[str, Measure] = {
    "baseload": Measure(
        action="Map what runs at night (ventilation, servers, lighting, compressors) and switch "
        "it off or put it on a schedule outside opening hours",
        investment_dkk=15_000,
        investment_dkk_per_unit=500,
        lifetime_years=10,
    ),
    "offhours": Measure(
        action="Tighten schedules in the building management system or add time switches so "
        "ventilation, heating and lighting follow opening hours and weekends",
        investment_dkk=10_000,
        lifetime_years=10,
    ),
    "standby": Measure(
        action="Shutdown checklist for holidays and closures: what is switched off, by whom",
        investment_dkk=2_000,
        lifetime_years=5,
    ),
    "peak_shift": Measure(
        action="Move shiftable load (batch processes, charging, cleaning machines) out of "
        "spidslast 17-21 with timers or control",
        investment_dkk=10_000,
        lifetime_years=10,
    ),
    "peak_shave": Measure(
        action="Load management that clips the few highest 15-minute peaks each month",
        investment_dkk=40_000,
        lifetime_years=10,
    ),
    "power_factor": Measure(
        action="Install automatic reactive power compensation (capacitor bank)",
        investment_dkk=15_000,
        investment_dkk_per_unit=350,
        lifetime_years=15,
    ),
    "phase_imbalance": Measure(
        action="Rebalance single-phase loads across the three phases (electrician)",
        investment_dkk=8_000,
        lifetime_years=15,
    ),
    "night_load": Measure(
        action="Leak survey and repair on the process (compressed air: ultrasonic leak "
        "detection) and a shut-off valve or schedule when production stops",
        investment_dkk=15_000,
        lifetime_years=5,
    ),
    "drift": Measure(
        action="Find what changed since the baseline (settings, faults, new equipment) and "
        "restore it",
        investment_dkk=5_000,
        lifetime_years=5,
    ),
}


def measure_for(kind: str, overrides: dict[str, MeasureOverride]) -> Measure:
    """The default row for `kind` with a site's overrides applied."""
    base = DEFAULT_MEASURES[kind]
    over = overrides.get(kind)
    if over is None:
        return base
    return base.model_copy(update=over.model_dump(exclude_none=True))
