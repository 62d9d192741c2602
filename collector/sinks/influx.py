"""The collector's only influxdb-client user: a bounded, batching, retrying copy of readings.

SQLite stays the record. The sink gets every accepted reading after it is committed, keeps
it in a bounded in-memory buffer and writes it in batches; while InfluxDB is down it retries
with exponential backoff, ingest goes on, and the backlog is reported. When the buffer is
full the oldest points are dropped and counted (they remain in SQLite).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from collector.intervals.rollup import GaugeStats, Rollup
from collector.settings import Influx
from sparwatt import wire
from sparwatt.backoff import backoff_s
from sparwatt.errors import SinkWriteError

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class LineWriter(Protocol):
    """Sends line-protocol lines (ms precision) to InfluxDB; raises SinkWriteError."""

    def write(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...


class ClientWriter:
    """LineWriter on influxdb-client's synchronous write API (our own retry loop around it)."""

    def __init__(self, cfg: Influx, token: str | None) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.domain.write_precision import WritePrecision

        self.cfg = cfg
        self._precision: Any = WritePrecision.MS
        self.client = InfluxDBClient(
            url=cfg.url, token=token or "", org=cfg.org, timeout=cfg.timeout_ms, retries=False
        )
        self.api = self.client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: list[str]) -> None:
        from influxdb_client.client.exceptions import InfluxDBError
        from influxdb_client.rest import ApiException

        try:
            self.api.write(
                bucket=self.cfg.bucket,
                org=self.cfg.org,
                record=lines,
                write_precision=self._precision,
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            # 4xx other than 408/429 means the server will never take this batch
            retry = status in (0, 408, 429) or status >= 500
            raise SinkWriteError(
                f"HTTP {status}: {str(exc.body or exc.reason)[:300]}", retry
            ) from None
        except InfluxDBError as exc:
            raise SinkWriteError(str(exc)[:300], retry=True) from None
        except Exception as exc:  # connection refused, timeouts, DNS: all worth retrying
            raise SinkWriteError(f"{type(exc).__name__}: {str(exc)[:300]}", retry=True) from None

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]


def reading_line(
    measurement: str, site: str, gateway: str, meter: str, ts_ms: int, values: Mapping[str, float]
) -> str:
    """One reading as one line: measurement,site=..,gateway=..,meter=.. quantity=value,... ts_ms.

    The sink and the VictoriaMetrics store (collector/store/victoria.py) both render through
    here, so a reading both send becomes the same series and timestamp, which the server
    keeps once. Ids match wire.ID_PATTERN and quantity names are fixed, so nothing needs
    escaping; repr is the shortest text that parses back to the same float64.
    """
    fields = ",".join(f"{q}={v!r}" for q, v in values.items())
    return f"{measurement},site={site},gateway={gateway},meter={meter} {fields} {ts_ms}"


def to_lines(measurement: str, messages: Iterable[wire.ReadingsMessage]) -> list[str]:
    """One line per reading (see reading_line)."""
    lines: list[str] = []
    for message in messages:
        site, gateway = message.site, message.gateway
        for reading in message.readings:
            ts = (reading.ts - _EPOCH) // _MS
            lines.append(
                reading_line(measurement, site, gateway, reading.meter, ts, reading.values)
            )
    return lines


def rollup_lines(
    measurement: str, site: str, gateway: str, meter: str, rollups: Iterable[Rollup]
) -> list[str]:
    """One line per meter and 15 minutes, stamped with the interval's start."""
    prefix = f"{measurement},site={site},gateway={gateway},meter={meter}"
    lines = []
    for r in rollups:
        fields = []
        for q, stats in r.values.items():
            if isinstance(stats, GaugeStats):
                fields += [
                    f"{q}_mean={stats.mean!r}",
                    f"{q}_min={stats.min!r}",
                    f"{q}_max={stats.max!r}",
                    f"{q}_count={stats.count}i",
                ]
            elif stats.energy is not None:
                fields.append(f"{q}_energy={stats.energy!r}")
        if fields:
            lines.append(f"{prefix} {','.join(fields)} {r.start_ms}")
    return lines


@dataclass(frozen=True, slots=True)
class SinkStats:
    backlog: int  # points waiting (buffered or being written)
    written: int
    dropped: int  # lost to a full buffer or refused by the server
    failures: int  # failed write attempts
    last_error: str | None


class InfluxSink:
    """Bounded buffer plus one writer thread; submit() never blocks ingest."""

    def __init__(
        self,
        cfg: Influx,
        writer: LineWriter,
        sleep_until: Callable[[threading.Condition, float], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.writer = writer
        self._buffer: deque[str] = deque()
        self._inflight = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._written = self._dropped = self._failures = 0
        self._last_error: str | None = None
        self._wait = sleep_until or (lambda cond, s: cond.wait(s))

    # ---- ingest side

    def submit(self, messages: list[wire.ReadingsMessage]) -> None:
        if not messages:
            return
        lines = to_lines(self.cfg.measurement, messages)
        with self._cond:
            self._buffer.extend(lines)
            self._trim()
            if len(self._buffer) >= self.cfg.batch_size:
                self._cond.notify()

    def submit_rollups(self, site: str, gateway: str, meter: str, rollups: list[Rollup]) -> None:
        """The meter's recomputed 15-minute history, if the config asks for it (a recomputed
        interval is written again with the same timestamp)."""
        if not self.cfg.rollups or not rollups:
            return
        lines = rollup_lines(self.cfg.rollup_measurement, site, gateway, meter, rollups)
        with self._cond:
            self._buffer.extend(lines)
            self._trim()
            self._cond.notify()

    def _trim(self) -> None:
        excess = len(self._buffer) + self._inflight - self.cfg.max_buffer_points
        if excess > 0:
            excess = min(excess, len(self._buffer))
            for _ in range(excess):
                self._buffer.popleft()
            if not self._dropped:
                log.warning(
                    "influx sink buffer full (%d points): dropping the oldest",
                    self.cfg.max_buffer_points,
                )
            self._dropped += excess

    def stats(self) -> SinkStats:
        with self._cond:
            return SinkStats(
                len(self._buffer) + self._inflight,
                self._written,
                self._dropped,
                self._failures,
                self._last_error,
            )

    # ---- writer thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="influx-sink", daemon=True)
        self._thread.start()

    def stop(self, flush_s: float = 5.0) -> None:
        """Flush what can be written within flush_s, then stop the writer thread."""
        deadline = time.monotonic() + flush_s
        with self._cond:
            self._cond.notify()
        while self._thread and time.monotonic() < deadline:
            with self._cond:
                if not self._buffer and not self._inflight:
                    break
            time.sleep(0.02)
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout=self.cfg.timeout_ms / 1000 + 1)
        self.writer.close()

    def _run(self) -> None:
        attempt = 0
        while True:
            with self._cond:
                if not self._stop and len(self._buffer) < self.cfg.batch_size:
                    self._wait(self._cond, self.cfg.flush_interval_ms / 1000)
                if self._stop:
                    return
                if not self._buffer:
                    continue
                n = min(self.cfg.batch_size, len(self._buffer))
                batch = [self._buffer.popleft() for _ in range(n)]
                self._inflight = n
            error = self._send(batch)
            with self._cond:
                self._inflight = 0
                if error is None:
                    self._written += n
                    if attempt:
                        log.info("influx sink writing again after %d failed attempts", attempt)
                    attempt = 0
                    continue
                self._failures += 1
                self._last_error = str(error)
                if not error.retry:
                    log.error("influx refused %d points, dropping them: %s", n, error)
                    self._dropped += n
                    continue
                self._buffer.extendleft(reversed(batch))
                self._trim()
                if attempt == 0:
                    log.warning("influx write failed, retrying with backoff: %s", error)
                attempt += 1
                delay_ms = backoff_s(
                    attempt - 1, self.cfg.retry_initial_ms, self.cfg.retry_max_ms, random.random
                )
                deadline = time.monotonic() + delay_ms / 1000
                while not self._stop and (left := deadline - time.monotonic()) > 0:
                    self._wait(self._cond, left)

    def _send(self, batch: list[str]) -> SinkWriteError | None:
        try:
            self.writer.write(batch)
        except SinkWriteError as exc:
            return exc
        except Exception as exc:
            return SinkWriteError(f"{type(exc).__name__}: {exc}", retry=True)
        return None
