"""A gateway health report as gateway/service.py builds it, for fleet and metrics tests."""

from __future__ import annotations

from typing import Any


def health(**override: Any) -> dict[str, Any]:
    """A health report as gateway/service.py builds it."""
    body: dict[str, Any] = {
        "schema": 1,
        "site": "site-a",
        "gateway": "gw1",
        "ts": "2026-01-01T00:00:00Z",
        "version": "0.1.0",
        "config_version": "0123456789ab",
        "uptime_s": 120.0,
        "health_interval_s": 10.0,
        "meters": {
            "main": {
                "ok": 98,
                "failed": 2,
                "missed": 0,
                "skipped": 0,
                "invalid_values": 0,
                "requests": 196,
                "last_latency_ms": 41.5,
                "last_error": None,
                "consecutive_failures": 0,
            },
            "hall": {
                "ok": 10,
                "failed": 30,
                "missed": 1,
                "skipped": 5,
                "invalid_values": 0,
                "requests": 20,
                "last_latency_ms": 50.0,
                "last_error": "unit 2: no answer within 1.0 s",
                "consecutive_failures": 30,
            },
        },
        "outbox": {
            "depth": 3,
            "bytes": 4000,
            "oldest_age_s": 12.5,
            "dropped_batches": 0,
            "dropped_readings": 0,
            "next_seq": 101,
        },
        "mqtt": {
            "connected": True,
            "reconnects": 0,
            "published": 100,
            "inflight": 0,
            "rejected": 0,
        },
    }
    body.update(override)
    return body
