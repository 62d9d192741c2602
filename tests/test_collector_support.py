"""Builders shared by the collector tests: wire messages and configs (no tests here)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.settings import CollectorConfig
from sparwatt import wire

NOW_MS = (int(time.time() * 1000) // 900_000) * 900_000 - 24 * 3_600_000  # a quarter, a day ago


def iso(ms: int) -> str:
    return wire.format_ts(datetime.fromtimestamp(ms / 1000, UTC))


def payload(seq: int, readings: list[tuple[str, int, dict[str, Any]]], site: str = "site-a",
            gateway: str = "gw1", **override: Any) -> dict[str, Any]:
    """A readings batch as a JSON-ready dict: readings are (meter, ts ms, values)."""
    body: dict[str, Any] = {
        "schema": 1, "site": site, "gateway": gateway, "seq": seq,
        "sent_at": iso(max(ts for _m, ts, _v in readings) if readings else NOW_MS),
        "readings": [{"meter": m, "ts": iso(ts), "values": v} for m, ts, v in readings]}
    body.update(override)
    return body


def encoded(seq: int, readings: list[tuple[str, int, dict[str, Any]]], **kw: Any) -> bytes:
    return json.dumps(payload(seq, readings, **kw)).encode()


def message(seq: int, readings: list[tuple[str, int, dict[str, Any]]],
            site: str = "site-a", gateway: str = "gw1") -> wire.ReadingsMessage:
    return wire.ReadingsMessage.model_validate(payload(seq, readings, site, gateway))


def config(db: Path, **sections: dict[str, Any]) -> CollectorConfig:
    data: dict[str, Any] = {"storage": {"db": str(db)}, **sections}
    return CollectorConfig.model_validate(data)


def readings_topic(site: str = "site-a", gateway: str = "gw1") -> str:
    return wire.topic(site, gateway, "readings")
