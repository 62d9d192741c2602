"""Alert lifecycle like Alertmanager: pending -> firing -> resolved, deduplicated, grouped per site.

`advance` is pure: it takes the previous state, this evaluation's conditions, the time and
the silences, and returns the next state plus one Notification per site that changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from collector.alerts.inhibition import DEFAULT_INHIBIT_RULES, Inhibitor, InhibitRule
from collector.alerts.model import Condition, Severity, Value, fingerprint, require_utc
from collector.alerts.notification import AlertOut, Notification
from collector.alerts.silences import Silence, active_silences, silenced_by

log = logging.getLogger(__name__)

STATE_VERSION = 1


class Status(StrEnum):
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert known to the lifecycle, keyed by the fingerprint of its labels."""

    labels: dict[str, str]
    severity: Severity
    summary: str
    values: dict[str, Value]
    status: Status
    active_since: datetime
    fired_at: datetime | None = None
    notified: bool = False  # its firing notice went out; it will get a resolve notice

    @property
    def site(self) -> str:
        return self.labels.get("site", "")

    def out(self, status: str, ends_at: datetime | None = None) -> AlertOut:
        return AlertOut(
            fingerprint=fingerprint(self.labels),
            status="resolved" if status == "resolved" else "firing",
            labels=self.labels,
            severity=self.severity,
            summary=self.summary,
            values=self.values,
            starts_at=self.active_since,
            fired_at=self.fired_at,
            ends_at=ends_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": dict(self.labels),
            "severity": str(self.severity),
            "summary": self.summary,
            "values": dict(self.values),
            "status": str(self.status),
            "active_since": self.active_since.isoformat(),
            "fired_at": self.fired_at.isoformat() if self.fired_at else None,
            "notified": self.notified,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertRecord:
        fired = data.get("fired_at")
        return cls(
            labels=dict(data["labels"]),
            severity=Severity(data["severity"]),
            summary=str(data["summary"]),
            values=dict(data.get("values", {})),
            status=Status(data["status"]),
            active_since=require_utc(datetime.fromisoformat(data["active_since"])),
            fired_at=require_utc(datetime.fromisoformat(fired)) if fired else None,
            notified=bool(data.get("notified", False)),
        )


@dataclass(frozen=True, slots=True)
class AlertState:
    """Everything the lifecycle must remember between evaluations; persist it with to_dict."""

    alerts: dict[str, AlertRecord] = field(default_factory=dict)
    evaluated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "evaluated_at": self.evaluated_at.isoformat() if self.evaluated_at else None,
            "alerts": {fp: rec.to_dict() for fp, rec in sorted(self.alerts.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"alert state version {data.get('version')!r} is not {STATE_VERSION}")
        alerts = {}
        for rec in (AlertRecord.from_dict(raw) for raw in data.get("alerts", {}).values()):
            # Recompute the key so a hand-edited or older file cannot hold a stale one.
            alerts[fingerprint(rec.labels)] = rec
        when = data.get("evaluated_at")
        return cls(alerts, require_utc(datetime.fromisoformat(when)) if when else None)

    def firing(self) -> list[AlertRecord]:
        return [rec for rec in self.alerts.values() if rec.status is Status.FIRING]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Result of one lifecycle step."""

    state: AlertState
    notifications: list[Notification]
    suppressed: dict[str, str]  # fingerprint -> "silenced:<id>" or "inhibited:<alertname>"


def _order(rec: AlertRecord) -> tuple[str, list[tuple[str, str]]]:
    return rec.labels.get("alertname", ""), sorted(rec.labels.items())


def _step(prev: AlertRecord | None, cond: Condition, now: datetime) -> AlertRecord:
    if prev is None:
        rec = AlertRecord(
            labels=dict(cond.labels),
            severity=cond.severity,
            summary=cond.summary,
            values=dict(cond.values),
            status=Status.PENDING,
            active_since=now,
        )
    else:
        # Keep the identity and timing; refresh what the rule says about it now.
        rec = replace(prev, severity=cond.severity, summary=cond.summary, values=dict(cond.values))
    if rec.status is Status.PENDING and (now - rec.active_since).total_seconds() >= cond.for_s:
        rec = replace(rec, status=Status.FIRING, fired_at=now)
    return rec


def advance(
    state: AlertState,
    conditions: Iterable[Condition],
    now: datetime,
    silences: Sequence[Silence] = (),
    inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
) -> Evaluation:
    """One evaluation: update pending/firing alerts, resolve the rest, build per-site notices."""
    now = require_utc(now, "now")
    current: dict[str, Condition] = {}
    for cond in conditions:
        fp = cond.fingerprint
        if fp in current:
            log.warning("duplicate alert condition labels=%s; keeping the first", dict(cond.labels))
            continue
        current[fp] = cond

    alerts = {fp: _step(state.alerts.get(fp), cond, now) for fp, cond in current.items()}
    ended = [rec for fp, rec in state.alerts.items() if fp not in current]

    firing = [rec for rec in alerts.values() if rec.status is Status.FIRING]
    inhibitor = Inhibitor(inhibit_rules, [rec.labels for rec in firing])
    muting = active_silences(silences, now)
    suppressed: dict[str, str] = {}
    new_by_site: dict[str, list[AlertRecord]] = {}
    for rec in sorted(firing, key=_order):
        fp = fingerprint(rec.labels)
        silence = silenced_by(rec.labels, muting)
        source = None if silence else inhibitor.inhibited_by(rec.labels)
        if silence:
            suppressed[fp] = f"silenced:{silence}"
        elif source is not None:
            suppressed[fp] = f"inhibited:{source.get('alertname', '')}"
        elif not rec.notified:
            # A suppressed alert stays un-notified and is announced if it outlives its
            # silence or inhibition; once announced it is never announced again.
            announced = alerts[fp] = replace(rec, notified=True)
            new_by_site.setdefault(rec.site, []).append(announced)

    # Whoever was told an alert fired is told it ended, even if it is muted by now.
    resolved_by_site: dict[str, list[AlertRecord]] = {}
    for rec in sorted(ended, key=_order):
        if rec.notified:
            resolved_by_site.setdefault(rec.site, []).append(rec)

    open_by_site: dict[str, list[AlertRecord]] = {}
    for rec in sorted(alerts.values(), key=_order):
        if rec.notified:
            open_by_site.setdefault(rec.site, []).append(rec)

    notifications = []
    for site in sorted(new_by_site.keys() | resolved_by_site.keys()):
        notifications.append(
            Notification(
                site=site,
                ts=now,
                firing=[r.out("firing") for r in new_by_site.get(site, [])],
                resolved=[r.out("resolved", ends_at=now) for r in resolved_by_site.get(site, [])],
                open=[r.out("firing") for r in open_by_site.get(site, [])],
            )
        )
    return Evaluation(AlertState(alerts, now), notifications, suppressed)
