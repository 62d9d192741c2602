"""The poll coordinator: schedules every meter read, owns retries, backoff and error state."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from gateway import learned, meter_maps, modbus_io
from gateway.reader import BusGate, MeterReader
from gateway.settings import Bus, GatewayConfig, Meter
from sparwatt.backoff import backoff_s
from sparwatt.errors import ReadError
from sparwatt.wire import format_ts

log = logging.getLogger(__name__)

Sink = Callable[[dict[str, object]], None]


@dataclass
class MeterStats:
    ok: int = 0
    failed: int = 0
    missed: int = 0
    skipped: int = 0
    invalid_values: int = 0
    requests: int = 0
    last_latency_ms: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    skip_runs: int = 0  # scheduled runs still to skip while backing off

    def report(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("skip_runs")
        return out


def hang_limit_s(bus: Bus) -> float:
    """How long one request may take before its bus counts as hung: twice every attempt
    running into its timeout, plus room for a reconnect."""
    return 2 * bus.timeout_s * (bus.retries + 1) + 5.0


def aligned_start(interval_s: float, now: float) -> datetime:
    """Next wall-clock multiple of the interval, so reads of many gateways line up."""
    return datetime.fromtimestamp(math.ceil(now / interval_s) * interval_s, UTC)


class Poller:
    """Reads every configured meter on its schedule and hands each reading to `sink`."""

    def __init__(
        self,
        config: GatewayConfig,
        sink: Sink,
        open_bus: Callable[..., modbus_io.BusClient] = modbus_io.open_bus,
        max_backoff_s: float = 300.0,
        learned_path: Path | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.max_backoff_s = max_backoff_s
        self.learned_path = learned_path  # where learned splits are kept; None: not kept
        self.gates = {b.id: BusGate(open_bus(b), b.pause_ms / 1000) for b in config.buses}
        self.readers: dict[str, MeterReader] = {}
        self.stats: dict[str, MeterStats] = {}
        self.last_poll_started = time.monotonic()
        self.running = 0  # polls under way
        self.closed = False
        known = learned.load(learned_path) if learned_path else {}
        for m in config.meters:
            kept = learned.breaks_for(known, m.id, m.model, m.unit)
            self.readers[m.id] = MeterReader(
                meter_maps.library()[m.model],
                m.unit,
                m.max_registers,
                breaks=set(kept),
                refused_breaks=set(kept),
            )
            self.stats[m.id] = MeterStats()

    def schedules(self, meter: Meter) -> list[tuple[float, list[str]]]:
        return meter.schedules(meter_maps.library()[meter.model])

    def start(self, scheduler: AsyncIOScheduler) -> None:
        now = time.time()
        for meter in self.config.meters:
            for index, (interval, names) in enumerate(self.schedules(meter)):
                scheduler.add_job(
                    self.poll,
                    IntervalTrigger(seconds=interval, start_date=aligned_start(interval, now)),
                    args=[meter, names],
                    id=f"{meter.id}#{index}",
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=max(1, int(interval / 2)),
                )
        scheduler.add_listener(self._missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    def _missed(self, event: JobExecutionEvent) -> None:
        meter_id = event.job_id.split("#")[0]
        if meter_id in self.stats:
            self.stats[meter_id].missed += 1

    def stop(self, scheduler: AsyncIOScheduler) -> None:
        """Take this poller's jobs off the scheduler (a new config takes over); polls already
        under way finish, see `idle`."""
        for job in scheduler.get_jobs():
            if job.func == self.poll:
                job.remove()
        scheduler.remove_listener(self._missed)

    async def idle(self) -> None:
        """Return once no poll is under way; a run the scheduler fired just before `stop`
        gets a turn first, so it is counted."""
        await asyncio.sleep(0)
        while self.running:
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.closed = True
        for gate in self.gates.values():
            gate.client.close()

    def hung_bus(self, now: float) -> tuple[str, float] | None:
        """A bus whose current request has run far past what its timeout and retries allow
        (the client should have given up long before), and for how many seconds."""
        for bus in self.config.buses:
            started = self.gates[bus.id].busy_since
            if started is not None and now - started > hang_limit_s(bus):
                return bus.id, now - started
        return None

    async def poll(self, meter: Meter, names: list[str]) -> None:
        if self.closed:
            return  # fired before this poller was replaced; its buses are closed
        self.last_poll_started = time.monotonic()
        splits = len(self.readers[meter.id].refused_breaks)
        self.running += 1
        try:
            await self._poll(meter, names)
        finally:
            self.running -= 1
            if len(self.readers[meter.id].refused_breaks) != splits:
                self._remember_splits()

    def _remember_splits(self) -> None:
        if self.learned_path is None:
            return
        try:
            learned.save(
                self.learned_path,
                {
                    m.id: (m.model, m.unit, self.readers[m.id].refused_breaks)
                    for m in self.config.meters
                },
            )
        except OSError as exc:  # a full or read-only disk must not stop the polling
            log.warning("cannot keep learned splits in %s: %s", self.learned_path, exc)

    async def _poll(self, meter: Meter, names: list[str]) -> None:
        stats = self.stats[meter.id]
        if stats.skip_runs > 0:
            stats.skip_runs -= 1
            stats.skipped += 1
            return
        try:
            result = await self.readers[meter.id].read(self.gates[meter.bus], names)
        except ReadError as err:
            self._failed(meter, stats, err)
            return
        except Exception:  # a bug must not stop the other meters
            log.exception("meter=%s: unexpected error while reading", meter.id)
            stats.failed += 1
            return
        stats.ok += 1
        stats.requests += result.requests
        stats.last_latency_ms = round(result.latency_s * 1000, 1)
        stats.consecutive_failures = 0
        stats.last_error = None
        if result.invalid:
            stats.invalid_values += len(result.invalid)
            log.warning(
                "meter=%s: dropped implausible values for %s", meter.id, ", ".join(result.invalid)
            )
        if result.values:
            self.sink(
                {
                    "meter": meter.id,
                    "ts": format_ts(datetime.fromtimestamp(result.arrived, UTC)),
                    "values": result.values,
                }
            )

    def _failed(self, meter: Meter, stats: MeterStats, err: ReadError) -> None:
        stats.failed += 1
        stats.consecutive_failures += 1
        if stats.last_error != str(err):
            log.warning(
                "meter=%s bus=%s unit=%d: read failed: %s", meter.id, meter.bus, meter.unit, err
            )
        stats.last_error = str(err)
        if stats.consecutive_failures >= 3:
            # A dead meter stops costing its bus neighbours time but is retried now and then:
            # skip 1, 2, 4, ... runs, counted in runs so the retries stay on the wall clock.
            most = max(1, int(self.max_backoff_s / meter.interval_s))
            stats.skip_runs = int(backoff_s(stats.consecutive_failures - 3, 1, most))
