"""Response bodies of the HTTP API; they are also its OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
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
