"""Decide for each incoming MQTT message: accept it as readings, or quarantine it and why."""

from __future__ import annotations

import time
from dataclasses import dataclass

from collector.settings import Ingest
from sparwatt import wire


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str


Registry = set[tuple[str, str]]


def check(topic: str, payload: bytes, rules: Ingest, known: Registry,
          now: float | None = None) -> wire.ReadingsMessage | Rejected:
    """Validate one readings message; never raises for bad input."""
    if len(payload) > rules.max_payload_bytes:
        return Rejected("payload_too_large",
                        f"{len(payload)} bytes, limit {rules.max_payload_bytes}")
    try:
        message = wire.decode_readings(topic, payload)
    except wire.WireError as err:
        return Rejected(err.reason, err.detail)
    if len(message.readings) > rules.max_readings_per_message:
        return Rejected("too_many_readings", f"{len(message.readings)} readings, limit "
                        f"{rules.max_readings_per_message}")
    if rules.registration == "registry" and (message.site, message.gateway) not in known:
        return Rejected("unknown_gateway",
                        f"{message.site}/{message.gateway} is not in the collector's registry")
    now = time.time() if now is None else now
    for i, reading in enumerate(message.readings):
        ts = reading.ts.timestamp()
        if ts > now + rules.max_future_s:
            return Rejected("future_timestamp", f"readings[{i}].ts {wire.format_ts(reading.ts)} "
                            f"is {ts - now:.0f} s ahead of the collector clock")
        if ts < now - rules.max_past_days * 86400:
            return Rejected("stale_timestamp", f"readings[{i}].ts {wire.format_ts(reading.ts)} "
                            f"is older than {rules.max_past_days:g} days")
    return message
