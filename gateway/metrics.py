"""The gateway's optional Prometheus listener: its health report as metrics, read per scrape.

The figures are those of the health message (`Gateway.health`), so a scrape and the health
the collector stores never disagree on what a counter means. Every family carries `site` and
`gateway` labels, so one Prometheus job can scrape many gateways without relabelling.

The listener has no authentication: it serves poll counts, latencies and queue figures, no
readings. Bind it to loopback or to an address only the monitoring network reaches.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector, CollectorRegistry

from sparwatt.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")
Health = Mapping[str, object]
POLL_RESULTS = ("ok", "failed", "missed", "skipped")
SNAPSHOT_TIMEOUT_S = 5.0


def _section(health: Health, key: str) -> Mapping[str, object]:
    value = health.get(key)
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


def families(health: Health) -> list[Metric]:
    """Prometheus metric families from one health report; absent figures are left out."""
    ident = {"site": str(health.get("site", "")), "gateway": str(health.get("gateway", ""))}
    keys, values = list(ident), list(ident.values())
    out: list[Metric] = []

    info = InfoMetricFamily("sparwatt_gateway", "software and config version", labels=keys)
    info.add_metric(
        values,
        {
            "version": str(health.get("version") or ""),
            "config_version": str(health.get("config_version") or ""),
        },
    )
    out.append(info)
    uptime = _number(health.get("uptime_s"))
    if uptime is not None:
        out.append(
            _family(
                "gauge", "sparwatt_gateway_uptime_seconds", "since the start", keys, values, uptime
            )
        )

    meters = _section(health, "meters")
    polls = CounterMetricFamily(
        "sparwatt_gateway_meter_polls",
        "scheduled polls per meter by result: ok, failed (no answer or an error answer), "
        "missed (the bus was still busy), skipped (backing off a failing meter)",
        labels=[*keys, "meter", "result"],
    )
    requests = CounterMetricFamily(
        "sparwatt_gateway_meter_requests", "Modbus requests of good polls", labels=[*keys, "meter"]
    )
    invalid = CounterMetricFamily(
        "sparwatt_gateway_meter_invalid_values",
        "implausible values dropped",
        labels=[*keys, "meter"],
    )
    failing = GaugeMetricFamily(
        "sparwatt_gateway_meter_consecutive_failures",
        "failed polls since the last good one (0: the meter answers)",
        labels=[*keys, "meter"],
    )
    latency = GaugeMetricFamily(
        "sparwatt_gateway_meter_latency_seconds",
        "duration of the meter's last good poll",
        labels=[*keys, "meter"],
    )
    for meter, raw in sorted(meters.items()):
        stats = raw if isinstance(raw, Mapping) else {}
        for result in POLL_RESULTS:
            polls.add_metric([*values, meter, result], _number(stats.get(result)) or 0.0)
        requests.add_metric([*values, meter], _number(stats.get("requests")) or 0.0)
        invalid.add_metric([*values, meter], _number(stats.get("invalid_values")) or 0.0)
        failing.add_metric([*values, meter], _number(stats.get("consecutive_failures")) or 0.0)
        last_ms = _number(stats.get("last_latency_ms"))
        if last_ms is not None:
            latency.add_metric([*values, meter], last_ms / 1000)
    out += [polls, requests, invalid, failing, latency]

    outbox = _section(health, "outbox")
    for name, key, doc, kind in (
        ("sparwatt_gateway_outbox_batches", "depth", "batches waiting for the broker", "gauge"),
        ("sparwatt_gateway_outbox_bytes", "bytes", "size of the waiting batches", "gauge"),
        (
            "sparwatt_gateway_outbox_oldest_age_seconds",
            "oldest_age_s",
            "age of the oldest waiting batch (0: none waits)",
            "gauge",
        ),
        (
            "sparwatt_gateway_outbox_dropped_batches",
            "dropped_batches",
            "batches dropped by the size or age limit",
            "counter",
        ),
        (
            "sparwatt_gateway_outbox_dropped_readings",
            "dropped_readings",
            "readings in the dropped batches",
            "counter",
        ),
    ):
        if key in outbox:
            out.append(_family(kind, name, doc, keys, values, _number(outbox.get(key)) or 0.0))

    mqtt = _section(health, "mqtt")
    for name, key, doc, kind in (
        (
            "sparwatt_gateway_mqtt_connected",
            "connected",
            "1 while connected to the broker",
            "gauge",
        ),
        ("sparwatt_gateway_mqtt_reconnects", "reconnects", "reconnects to the broker", "counter"),
        ("sparwatt_gateway_mqtt_published", "published", "batches published", "counter"),
        ("sparwatt_gateway_mqtt_rejected", "rejected", "batches the broker refused", "counter"),
        ("sparwatt_gateway_mqtt_inflight", "inflight", "batches awaiting PUBACK", "gauge"),
    ):
        if key in mqtt:
            out.append(_family(kind, name, doc, keys, values, _number(mqtt.get(key)) or 0.0))
    return out


def _family(
    kind: str, name: str, doc: str, keys: list[str], values: list[str], value: float
) -> Metric:
    family = (
        CounterMetricFamily(name, doc, labels=keys)
        if kind == "counter"
        else GaugeMetricFamily(name, doc, labels=keys)
    )
    family.add_metric(values, value)
    return family


class HealthCollector(Collector):
    """Builds the families from a fresh health report on every scrape."""

    def __init__(self, snapshot: Callable[[], Health]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from families(self.snapshot())


def on_loop(
    loop: asyncio.AbstractEventLoop, work: Callable[[], T], timeout_s: float = SNAPSHOT_TIMEOUT_S
) -> Callable[[], T]:
    """`work` made callable from the listener's thread: it runs on the gateway's event loop,
    whose thread owns the outbox's SQLite connection and the poll counters."""

    def call() -> T:
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(work())
            except Exception as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout_s)

    return call


class MetricsListener:
    """prometheus-client's HTTP server on its own thread, serving one gateway's figures."""

    def __init__(self, host: str, port: int, snapshot: Callable[[], Health]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HealthCollector(snapshot))
        try:
            self.server: WSGIServer = start_http_server(port, host, self.registry)[0]
        except OSError as exc:
            raise ConfigError(
                [f"metrics: cannot listen on {host}:{port}: {exc.strerror or exc}"]
            ) from None
        self.port = int(self.server.server_address[1])
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(
    address: tuple[str, int] | None, loop: asyncio.AbstractEventLoop, health: Callable[[], Health]
) -> MetricsListener | None:
    """Start the listener when the config asks for one (`[metrics] listen`)."""
    if address is None:
        return None
    return MetricsListener(address[0], address[1], on_loop(loop, health))
