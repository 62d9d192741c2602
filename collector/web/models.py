"""Response bodies of the HTTP API; they are also its OpenAPI schema."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(_Out):
    detail: str


class Me(_Out):
    name: str
    role: Literal["admin", "consultant", "company"]
    sites: list[str] | None  # None: every site (admin)


class Opportunity(_Out):
    id: str
    site: str
    meter: str
    kind: str
    status: Literal["open", "closed"]
    action: str | None
    annual_kwh: float | None
    annual_dkk: float | None
    annual_kg_co2: float | None
    investment_dkk: float | None
    payback_years: float | None
    lifetime_years: float | None
    rentabel: bool | None
    updated: datetime
    data: dict[str, Any]


class Alert(_Out):
    id: str
    site: str
    labels: dict[str, str]
    state: str
    severity: str
    summary: str
    started: datetime
    resolved: datetime | None
    data: dict[str, Any]


class SiteSummary(_Out):
    site: str
    power_w: float | None
    power_at: datetime | None
    today_kwh: float
    gateways_online: int
    gateways_total: int
    open_alerts: int
    open_opportunities: int
    top_opportunity: Opportunity | None


class Meter(_Out):
    gateway: str
    meter: str
    quantities: list[str]


class Latest(_Out):
    gateway: str
    meter: str
    quantity: str
    at: datetime
    value: float


class Point(_Out):
    start: datetime
    energy_kwh: float | None
    mean_power_w: float | None
    max_power_w: float | None
    estimated: bool


class Series(_Out):
    site: str
    meter: str | None
    step: Literal["15m", "1h", "1d"]
    start: datetime
    end: datetime
    points: list[Point]


class QuantityStats(_Out):
    """A gauge over one step: mean, extremes and how many readings made them; or, for a
    counter, the energy of the step (`energy`, in the quantity's unit)."""

    mean: float | None = None
    min: float | None = None
    max: float | None = None
    count: int | None = None
    energy: float | None = None


class RollupPoint(_Out):
    start: datetime
    values: dict[str, QuantityStats]


class Rollups(_Out):
    """Every quantity of one meter from the 15-minute history, kept for good."""

    site: str
    meter: str
    step: Literal["15m", "1h", "1d"]
    start: datetime
    end: datetime
    points: list[RollupPoint]


class Gateway(_Out):
    gateway: str
    online: bool
    state: str | None
    state_since: datetime | None
    last_reading: datetime | None
    last_seq: int | None
    status: dict[str, Any] | None
    health: dict[str, Any] | None


class SeqGap(_Out):
    gateway: str
    from_seq: int
    to_seq: int
    after: datetime | None
    before: datetime | None


class MissingIntervals(_Out):
    start: datetime
    end: datetime


class Gaps(_Out):
    seq_gaps: list[SeqGap]
    missing_intervals: list[MissingIntervals]


class Token(_Out):
    id: int
    name: str
    role: str
    sites: list[str]
    created: datetime
    revoked: datetime | None
    expires: datetime | None  # None: valid until revoked


class FleetMeter(_Out):
    meter: str
    state: Literal["ok", "failing", "waiting"]
    ok: int
    failed: int
    missed: int
    skipped: int
    success_ratio: float | None  # ok / (ok + failed) since the gateway started
    latency_ms: float | None  # the last good poll
    consecutive_failures: int
    last_error: str | None


class FleetGateway(_Out):
    site: str
    gateway: str
    state: Literal["online", "offline", "silent", "unknown"]
    status: str | None  # the retained status as the gateway sent it
    status_at: datetime | None
    last_seen: datetime | None  # the newest of status, health and reading
    last_health: datetime | None
    last_reading: datetime | None
    health_interval_s: float
    version: str | None
    config_version: str | None  # None: the gateway does not report one
    uptime_s: float | None
    outbox_depth: int | None
    outbox_oldest_age_s: float | None
    outbox_dropped_batches: int | None
    mqtt_connected: bool | None
    meters: list[FleetMeter]
    errors: list[str]


# ---- verified savings of recorded measures (docs/verification.md)

MeasureState = Literal["verified", "baseline_failed", "insufficient_data", "not_started"]


class MeasureExclusion(_Out):
    start: date
    end: date
    label: str


class Measure(_Out):
    """A measure a company took, as recorded."""

    id: str
    site: str
    meters: list[str]
    kind: str
    title: str
    installed_from: date
    installed_to: date | None  # the last day of an installation period
    investment_dkk: float | None
    expected_kwh_year: float | None
    opportunity_id: str | None
    model: Literal["auto", "caltrack_hourly", "caltrack_daily", "time_of_week"]
    exclusions: list[MeasureExclusion]
    note: str | None
    created_ms: int
    updated_ms: int


class MeasureSummary(_Out):
    """A measure with its verification status and yearly figures; the interval is 90 %."""

    measure: Measure
    status: MeasureState
    model: str | None
    verified_kwh_per_year: float | None
    low_kwh_per_year: float | None
    high_kwh_per_year: float | None
    expected_kwh_per_year: float | None
    dkk_per_year: float | None
    co2_kg_per_year: float | None
    significant: bool | None


class FitFigures(_Out):
    """ASHRAE Guideline 14 figures of a baseline on its own data, and the limits it meets."""

    resolution: str
    n: int
    p: float
    cvrmse: float | None
    nmbe: float | None
    r_squared: float | None
    rho: float | None  # lag-1 autocorrelation of the residuals
    max_cvrmse: float | None
    max_abs_nmbe: float | None
    cvrmse_ok: bool | None
    nmbe_ok: bool | None


class BaselineAttempt(_Out):
    model: str
    status: Literal["ok", "insufficient_data", "failed"]
    fit: FitFigures | None
    reasons: list[str]


class MeasureBaseline(_Out):
    status: Literal["ok", "insufficient_data", "failed"]
    model: str | None
    model_reason: str
    reasons: list[str]
    window_start: date
    window_end: date
    days_in_window: int
    days_with_data: int
    coverage: float | None
    fit: FitFigures | None
    attempts: list[BaselineAttempt]


class SavingsFigures(_Out):
    days_with_data: float | None
    baseline_kwh: float | None
    metered_kwh: float | None
    avoided_kwh: float | None
    savings_fraction: float | None
    confidence: float | None
    uncertainty_kwh: float | None
    low_kwh: float | None
    high_kwh: float | None
    verified_kwh_per_year: float | None
    uncertainty_kwh_per_year: float | None
    low_kwh_per_year: float | None
    high_kwh_per_year: float | None
    expected_kwh_per_year: float | None
    realisation_rate: float | None
    dkk: float | None
    dkk_per_year: float | None
    co2_kg: float | None
    co2_kg_per_year: float | None
    significant: bool


class MeasureSavings(_Out):
    status: Literal["ok", "baseline_failed", "insufficient_data"]
    period_start: date
    period_end: date
    reasons: list[str]
    warnings: list[str]
    figures: SavingsFigures | None


class CumulativePoint(_Out):
    day: date
    avoided_kwh: float | None
    low_kwh: float | None
    high_kwh: float | None


class MeasureVerification(_Out):
    """A measure's baseline, its Guideline 14 figures and its verified savings."""

    measure: Measure
    status: MeasureState
    notes: list[str]
    temperature: bool  # outdoor temperature of the site was stored
    baseline: MeasureBaseline
    savings: MeasureSavings
    cumulative: list[CumulativePoint]
