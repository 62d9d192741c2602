"""Turns the store's gateway rows (retained status, newest health report) into fleet rows.

Health reports are free-form JSON on the wire, and gateways of several versions report to
one collector, so every figure is read leniently: a missing or mistyped one becomes None
instead of hiding the gateway.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from collector.store import GatewayRow, Reader
from sparwatt.timeutil import SECOND_MS

# the gateway's own default (gateway/settings.py), for reports that do not say theirs
DEFAULT_HEALTH_INTERVAL_S = 60.0
# a gateway whose status says online but that sent no health for this many intervals is
# "silent": hung, or cut off in a way the broker has not noticed yet (no last will so far)
SILENT_AFTER_INTERVALS = 3

GatewayState = Literal["online", "offline", "silent", "unknown"]
MeterState = Literal["ok", "failing", "waiting"]
STATES: tuple[GatewayState, ...] = ("online", "silent", "offline", "unknown")


@dataclass(frozen=True, slots=True)
class FleetMeter:
    """One meter's polling as its gateway last reported it (counts since the gateway started).

    `state`: ok (the last poll answered), failing (failed polls since the last good one),
    waiting (not polled yet, or not in the report).
    """

    meter: str
    state: MeterState
    ok: int
    failed: int
    missed: int
    skipped: int
    success_ratio: float | None  # ok / (ok + failed); None before the first poll
    latency_ms: float | None  # the last good poll
    consecutive_failures: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class FleetGateway:
    """One gateway as the fleet page shows it. Times are epoch ms as the collector received
    them, except `last_reading_ms`, the newest reading's own time."""

    site: str
    gateway: str
    state: GatewayState
    status: str | None  # the retained status as sent: "online" or "offline"
    status_ms: int | None
    last_seen_ms: int | None  # the newest of status, health and reading
    last_health_ms: int | None
    last_reading_ms: int | None
    health_interval_s: float
    version: str | None
    config_version: str | None
    uptime_s: float | None
    outbox_depth: int | None
    outbox_oldest_age_s: float | None  # as of the last health report
    outbox_dropped_batches: int | None
    mqtt_connected: bool | None
    meters: tuple[FleetMeter, ...]
    errors: tuple[str, ...]  # each failing meter's last error, dropped and refused batches


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a double
        return None
    return number if math.isfinite(number) else None


def _int(value: object) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def meter_row(meter: str, stats: Mapping[str, object]) -> FleetMeter:
    ok, failed = _int(stats.get("ok")) or 0, _int(stats.get("failed")) or 0
    streak = _int(stats.get("consecutive_failures")) or 0
    state: MeterState = "failing" if streak > 0 else "ok" if ok > 0 else "waiting"
    return FleetMeter(
        meter=meter,
        state=state,
        ok=ok,
        failed=failed,
        missed=_int(stats.get("missed")) or 0,
        skipped=_int(stats.get("skipped")) or 0,
        success_ratio=ok / (ok + failed) if ok + failed > 0 else None,
        latency_ms=_float(stats.get("last_latency_ms")),
        consecutive_failures=streak,
        last_error=_text(stats.get("last_error")),
    )


def gateway_state(
    status: str | None, heard_ms: int | None, interval_s: float, now_ms: int
) -> GatewayState:
    """offline when its retained status says so (a clean stop or the broker's last will);
    silent when nothing came for SILENT_AFTER_INTERVALS health intervals; else online."""
    if status == "offline":
        return "offline"
    if heard_ms is None:
        return "unknown"
    if now_ms - heard_ms > SILENT_AFTER_INTERVALS * interval_s * SECOND_MS:
        return "silent"
    return "online"


def fleet_row(row: GatewayRow, now_ms: int) -> FleetGateway:
    health = _map(row.health)
    status = _map(row.status)
    interval_s = _float(health.get("health_interval_s"))
    interval_s = interval_s if interval_s and interval_s > 0 else DEFAULT_HEALTH_INTERVAL_S
    reported = _map(health.get("meters"))
    listed = status.get("meters")
    configured = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else []
    names = sorted(set(reported) | set(configured))
    meters = tuple(meter_row(m, _map(reported.get(m))) for m in names)
    outbox, mqtt = _map(health.get("outbox")), _map(health.get("mqtt"))
    errors = [f"{m.meter}: {m.last_error}" for m in meters if m.last_error]
    dropped = _int(outbox.get("dropped_batches"))
    if dropped:
        errors.append(f"outbox dropped {dropped} batches (size or age limit)")
    rejected = _int(mqtt.get("rejected"))
    if rejected:
        errors.append(f"broker refused {rejected} batches")
    # health is received while the gateway runs; before its first report, its birth counts
    heard = row.health_ms if row.health_ms is not None else row.state_ms
    seen = [t for t in (row.state_ms, row.health_ms, row.last_seen_ms) if t is not None]
    return FleetGateway(
        site=row.site,
        gateway=row.gateway,
        state=gateway_state(row.state, heard, interval_s, now_ms),
        status=row.state,
        status_ms=row.state_ms,
        last_seen_ms=max(seen) if seen else None,
        last_health_ms=row.health_ms,
        last_reading_ms=row.last_seen_ms,
        health_interval_s=interval_s,
        version=_text(health.get("version")) or _text(status.get("version")),
        config_version=_text(health.get("config_version")),
        uptime_s=_float(health.get("uptime_s")),
        outbox_depth=_int(outbox.get("depth")),
        outbox_oldest_age_s=_float(outbox.get("oldest_age_s")),
        outbox_dropped_batches=dropped,
        mqtt_connected=_bool(mqtt.get("connected")),
        meters=meters,
        errors=tuple(errors),
    )


def fleet(reader: Reader, now_ms: int, sites: Collection[str] | None = None) -> list[FleetGateway]:
    """Every gateway of `sites` (None: of every site), by site and gateway."""
    return [
        fleet_row(row, now_ms) for row in reader.gateways() if sites is None or row.site in sites
    ]


def tally(rows: Iterable[FleetGateway]) -> dict[GatewayState, int]:
    """How many gateways are in each state, every state present."""
    counts = Counter(r.state for r in rows)
    return {state: counts.get(state, 0) for state in STATES}
