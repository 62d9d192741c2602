"""GET /metrics: the collector's own figures in Prometheus text format, for admin tokens.

Everything comes from the database at scrape time (counters, the runtime figures the ingest
loop and the evaluation jobs write to the stat table, the gateway registry), so a scrape
shows what `sparwatt-collector status` shows and needs no state in the web process.

The figures name sites and gateways, so the route wants a token like the API, and an admin
one: Prometheus sends it as `authorization: {credentials_file: ...}`.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from collector import fleet
from collector.evaluation.scheduler import JOBS, job_stat
from collector.fleet.state import STATES
from collector.store import Reader, Stat
from collector.store.sql import Target
from collector.web import auth
from collector.web.access import caller
from collector.web.context import ctx_of

router = APIRouter(include_in_schema=False)

# ingest totals kept in the counter table: (its name, metric name, help)
COUNTERS = (
    ("messages", "sparwatt_collector_messages", "readings messages stored"),
    ("readings", "sparwatt_collector_readings", "readings in the stored messages"),
    ("stored", "sparwatt_collector_stored_values", "values stored"),
    ("duplicates", "sparwatt_collector_duplicate_values", "values already stored (redelivered)"),
)
SINK = (
    ("written", "sparwatt_collector_sink_written_points", "points written to InfluxDB"),
    ("dropped", "sparwatt_collector_sink_dropped_points", "points lost: buffer full or refused"),
    ("failures", "sparwatt_collector_sink_failed_writes", "failed write attempts"),
)


def _number(stat: Stat | None) -> float | None:
    if stat is None or isinstance(stat.value, str) or stat.value is None:
        return None
    return float(stat.value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def families(reader: Reader, db: Target, now_ms: int) -> Iterator[Metric]:
    """Every family the collector exposes, read from the database now."""
    counters = reader.counters()
    for key, name, doc in COUNTERS:
        yield CounterMetricFamily(name, doc, value=counters.get(key, 0))
    quarantined = CounterMetricFamily(
        "sparwatt_collector_quarantined_messages", "rejected messages by reason", labels=["reason"]
    )
    for reason, count in reader.quarantine_by_reason().items():
        quarantined.add_metric([reason], count)
    yield quarantined
    yield _gauge(
        "sparwatt_collector_store_bytes",
        "database on disk (SQLite: the file and its WAL)",
        reader.database_bytes(db),
    )

    stats = reader.stats()
    rate = _number(stats.get("ingest_readings_per_s"))
    if rate is not None:
        yield _gauge(
            "sparwatt_collector_ingest_readings_per_second", "over the last few seconds", rate
        )
    sink_on = bool(_number(stats.get("sink_enabled")))
    yield _gauge("sparwatt_collector_sink_enabled", "1 with the InfluxDB sink on", float(sink_on))
    if sink_on:
        yield _gauge(
            "sparwatt_collector_sink_backlog_points",
            "points waiting for InfluxDB",
            _number(stats.get("sink_backlog")) or 0.0,
        )
        for key, name, doc in SINK:
            yield CounterMetricFamily(name, doc, value=_number(stats.get(f"sink_{key}")) or 0.0)

    yield from _jobs(stats)
    yield from _gateways(fleet.fleet(reader, now_ms))


def _jobs(stats: dict[str, Stat]) -> Iterator[Metric]:
    duration = SummaryMetricFamily(
        "sparwatt_collector_job_duration_seconds",
        "scheduled savings scans and alert rounds",
        labels=["job"],
    )
    last = GaugeMetricFamily(
        "sparwatt_collector_job_last_duration_seconds", "the latest run", labels=["job"]
    )
    at = GaugeMetricFamily(
        "sparwatt_collector_job_last_run_timestamp_seconds", "end of the latest run", labels=["job"]
    )
    failures = CounterMetricFamily(
        "sparwatt_collector_job_failures", "runs that raised", labels=["job"]
    )
    for job in JOBS:
        runs = _number(stats.get(job_stat(job, "runs")))
        if runs is None:
            continue  # never ran (or not configured): no series rather than zeros
        total = _number(stats.get(job_stat(job, "seconds_total"))) or 0.0
        duration.add_metric([job], count_value=int(runs), sum_value=total)
        latest = stats.get(job_stat(job, "last_seconds"))
        if latest is not None:
            last.add_metric([job], _number(latest) or 0.0)
            at.add_metric([job], latest.updated_ms / 1000)
        failures.add_metric([job], _number(stats.get(job_stat(job, "failures"))) or 0.0)
    yield from (duration, last, at, failures)


def _gateways(rows: list[fleet.FleetGateway]) -> Iterator[Metric]:
    ident = ["site", "gateway"]
    seen = GaugeMetricFamily(
        "sparwatt_collector_gateway_last_seen_timestamp_seconds",
        "when the collector last heard from the gateway (status, health or a reading)",
        labels=ident,
    )
    state = GaugeMetricFamily(
        "sparwatt_collector_gateway_state",
        "1 for the gateway's state: online, silent (no health for 3 intervals), offline, unknown",
        labels=[*ident, "state"],
    )
    depth = GaugeMetricFamily(
        "sparwatt_collector_gateway_outbox_batches",
        "batches waiting in the gateway's outbox, as last reported",
        labels=ident,
    )
    failing = GaugeMetricFamily(
        "sparwatt_collector_gateway_meters_failing",
        "meters whose last poll failed, as last reported",
        labels=ident,
    )
    for row in rows:
        key = [row.site, row.gateway]
        if row.last_seen_ms is not None:
            seen.add_metric(key, row.last_seen_ms / 1000)
        for name in STATES:
            state.add_metric([*key, name], float(row.state == name))
        if row.outbox_depth is not None:
            depth.add_metric(key, row.outbox_depth)
        failing.add_metric(key, sum(m.state == "failing" for m in row.meters))
    yield from (seen, state, depth, failing)


class _Scrape(Collector):
    def __init__(self, reader: Reader, db: Target, now_ms: int) -> None:
        self.reader, self.db, self.now_ms = reader, db, now_ms

    def collect(self) -> Iterator[Metric]:
        return families(self.reader, self.db, self.now_ms)


def render(reader: Reader, db: Target, now_ms: int, accept: str | None) -> tuple[bytes, str]:
    """The exposition body and its content type (OpenMetrics when the scraper asks for it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(reader, db, now_ms))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    ctx = ctx_of(request)

    def scrape() -> tuple[bytes, str]:
        who = caller(request)
        if who is None:
            raise HTTPException(
                401, "a valid API token is needed", headers={"WWW-Authenticate": "Bearer"}
            )
        if who.role is not auth.Role.ADMIN:
            raise HTTPException(403, "admins only")
        return render(ctx.reader(), ctx.db, ctx.now_ms(), request.headers.get("accept"))

    body, content_type = await run_in_threadpool(scrape)
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
