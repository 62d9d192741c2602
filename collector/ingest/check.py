"""Decide for each incoming MQTT message: accept it as readings, or quarantine it and why."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from collector.settings import Ingest
from sparwatt import wire
from sparwatt.errors import WireError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str


Registry = set[tuple[str, str]]


def check(
    topic: str, payload: bytes, rules: Ingest, known: Registry, now: float | None = None
) -> wire.ReadingsMessage | Rejected:
    """Validate one readings message; never raises, whatever the input."""
    try:
        return _check(topic, payload, rules, known, time.time() if now is None else now)
    except OverflowError as exc:
        # datetime arithmetic on a timestamp at the edge of the calendar (year 1 or 9999)
        return Rejected("out_of_range", f"{type(exc).__name__}: {str(exc)[:300]}")
    except Exception as exc:
        # a validator bug must cost one message, never the ingest loop
        log.exception("validator failed on topic=%r", topic[:200])
        return Rejected("validator_error", f"{type(exc).__name__}: {str(exc)[:300]}")


def _check(
    topic: str, payload: bytes, rules: Ingest, known: Registry, now: float
) -> wire.ReadingsMessage | Rejected:
    if len(payload) > rules.max_payload_bytes:
        return Rejected(
            "payload_too_large", f"{len(payload)} bytes, limit {rules.max_payload_bytes}"
        )
    try:
        message = wire.decode_readings(topic, payload)
    except WireError as err:
        return Rejected(err.reason, err.detail)
    if len(message.readings) > rules.max_readings_per_message:
        return Rejected(
            "too_many_readings",
            f"{len(message.readings)} readings, limit {rules.max_readings_per_message}",
        )
    if rules.registration == "registry" and (message.site, message.gateway) not in known:
        return Rejected(
            "unknown_gateway",
            f"{message.site}/{message.gateway} is not in the collector's registry",
        )
    stamps = message.stamps_ms
    newest, oldest = max(stamps), min(stamps)
    now_ms = now * 1000
    if newest > now_ms + rules.max_future_s * 1000:
        i = stamps.index(newest)
        return Rejected(
            "future_timestamp",
            f"readings[{i}].ts {wire.format_ts(message.readings[i].ts)} "
            f"is {(newest - now_ms) / 1000:.0f} s ahead of the collector clock "
            f"(limit {rules.max_future_s:g} s)",
        )
    if oldest < now_ms - rules.max_past_days * 86_400_000:
        i = stamps.index(oldest)
        return Rejected(
            "stale_timestamp",
            f"readings[{i}].ts {wire.format_ts(message.readings[i].ts)} "
            f"is older than {rules.max_past_days:g} days",
        )
    return message
