"""JSON payloads for receivers: the per-site notification, the retained open-alerts state."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from collector.alerts.model import Severity
from sparwatt.wire import Timestamp

NOTIFICATION_SCHEMA: Literal[1] = 1
_MODEL = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AlertOut(BaseModel):
    """One alert as receivers see it."""

    model_config = _MODEL
    fingerprint: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    severity: Severity
    summary: str
    values: dict[str, float | int | str | None] = Field(default_factory=dict)
    starts_at: Timestamp  # when the condition was first seen
    fired_at: Timestamp | None = None
    ends_at: Timestamp | None = None  # resolved alerts only

    @property
    def title(self) -> str:
        return self.labels.get("alertname", "alert")


class Notification(BaseModel):
    """Everything that changed for one site in one evaluation, plus what is still open there."""

    model_config = _MODEL
    schema_: Literal[1] = Field(default=NOTIFICATION_SCHEMA, alias="schema")
    site: str
    ts: Timestamp
    firing: list[AlertOut] = Field(default_factory=list)  # newly firing
    resolved: list[AlertOut] = Field(default_factory=list)  # newly resolved
    open: list[AlertOut] = Field(default_factory=list)  # all notified alerts still firing

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    def headline(self) -> str:
        parts = []
        if self.firing:
            parts.append(f"{len(self.firing)} firing")
        if self.resolved:
            parts.append(f"{len(self.resolved)} resolved")
        return f"{self.site}: " + (", ".join(parts) or "no change")


class OpenAlerts(BaseModel):
    """Retained state of a site: the alerts its people have been told about and are still open."""

    model_config = _MODEL
    schema_: Literal[1] = Field(default=NOTIFICATION_SCHEMA, alias="schema")
    site: str
    ts: Timestamp
    alerts: list[AlertOut]

    @classmethod
    def of(cls, notification: Notification) -> OpenAlerts:
        return cls(site=notification.site, ts=notification.ts, alerts=notification.open)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
