"""Run the collector: subscriber -> ingest -> store (and sink) -> interval energy."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from collector.evaluation import scheduler
from collector.evaluation.inputs import check_inputs
from collector.ingest import check as ingest
from collector.ingest.remote import Requests, requester_id
from collector.ingest.subscriber import Incoming, Subscriber
from collector.intervals.refresh import policy_of, prune, refresh_intervals
from collector.intervals.rollup import Rollup
from collector.settings import CollectorConfig
from collector.store import Quarantined, Store
from collector.store.leases import Leases, holder_id, is_busy
from sparwatt import configfile, wire
from sparwatt.backoff import backoff_s
from sparwatt.errors import VictoriaError, WireError

log = logging.getLogger(__name__)

STATS_EVERY_S = 2.0
QUARANTINE_LOG_EVERY_S = 60.0
DB_RETRY_FIRST_S, DB_RETRY_MAX_S = 0.5, 30.0
GC_THRESHOLD = 20_000  # allocations between young collections (CPython's default is 700)
GAPS_EVERY_S = 5.0  # how often seq ranges missing past the grace become gaps
# the interval refresh and pruning run at one collector at a time (docs/scaling.md): a lease
# kept while a refresh runs; a holder that dies blocks them for at most this long
INTERVALS_LEASE = "intervals"
INTERVALS_LEASE_MIN_S = 30.0
BUSY_RETRY_S = 5.0  # how long a leased task is retried when another collector's commit won


class Source(Protocol):
    """Where messages come from and go back to once stored (the MQTT subscriber)."""

    def take(self, limit: int, wait_s: float) -> list[Incoming]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def ack(self, items: list[Incoming]) -> None: ...


class Sink(Protocol):
    """A second home for accepted readings (InfluxDB); must never block ingest."""

    def submit(self, messages: list[wire.ReadingsMessage]) -> None: ...

    def start(self) -> None: ...

    def stop(self, flush_s: float = 5.0) -> None: ...

    def stats(self) -> object: ...


def tune_gc() -> None:
    """Keep the cycle collector from rescanning everything on every busy second.

    Ingest allocates many short-lived objects without cycles (plain reference counting
    frees them), and each allocation burst would otherwise start collections that walk
    every object made at start-up (config, web app, pydantic schemas): freezing those and
    collecting less often roughly halves the CPU spent per reading.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


@contextlib.contextmanager
def batch_gc() -> Iterator[None]:
    """No cycle collection while one batch is validated and stored.

    A batch's messages, readings and rows stay alive until it is stored, and collections
    in between would walk them all again and again (about a seventh of the CPU a reading)
    only to find no cycles. Once the batch is freed the count of young objects falls back,
    and whatever the batch or other threads left in cycles is collected after it, as usual.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Collector:
    """Owns the ingest loop; one thread writes, everything else reads."""

    def __init__(
        self,
        config: CollectorConfig,
        environ: dict[str, str] | None = None,
        sink: Sink | None = None,
        source: Source | None = None,
    ) -> None:
        env = dict(os.environ if environ is None else environ)
        self.config = config
        # the sites and alerts files are validated before any I/O; a bad one stops start-up
        self.inputs = check_inputs(config.evaluation)  # the web pages read its sites file too
        self.store = Store(config.storage.db, synchronous=config.storage.synchronous)
        try:
            self.store.use_victoria(config.storage.victoria)
            if self.store.victoria is not None:
                for problem in self.store.victoria.problems(config.ingest.max_past_days):
                    log.warning("%s (docs/scaling.md)", problem)
        except VictoriaError as exc:  # away now: ingest waits for it, as for any outage
            log.warning("cannot check VictoriaMetrics' flags: %s", exc)
        except BaseException:
            self.store.close()
            raise
        self.store.gap_grace_ms = round(config.ingest.gap_grace_s * 1000)
        self.leases = Leases(config.storage.db, holder_id(config.mqtt.client_id))
        self._intervals_ttl_ms = round(
            max(INTERVALS_LEASE_MIN_S, 2 * config.intervals.refresh_s) * 1000
        )
        self._lease_kept = 0.0
        with self.store.transaction():
            for entry in config.ingest.gateways:
                self.store.register_gateway(entry.site, entry.gateway)
        self.known = {(e.site, e.gateway) for e in config.ingest.gateways}
        # requests to gateways from the web pages, carried by the subscriber (docs/fleet.md)
        self.remote = Requests(requester_id(config.mqtt.client_id))
        self.source: Source = source or Subscriber(
            config.mqtt,
            configfile.read_secret(config.mqtt.password_file, "SPARWATT_MQTT_PASSWORD", env),
            replies=self.remote,
        )
        if sink is None and config.influxdb.enabled:
            from collector.sinks.influx import ClientWriter, InfluxSink

            token = configfile.read_secret(config.influxdb.token_file, "SPARWATT_INFLUX_TOKEN", env)
            sink = InfluxSink(config.influxdb, ClientWriter(config.influxdb, token))
        self.sink = sink
        self.policy = policy_of(config.intervals)
        self.listeners: list[Callable[[list[wire.ReadingsMessage]], None]] = []
        self.evaluation = scheduler.service(
            config, self.inputs, getattr(self.source, "publish", None)
        )
        self._readings_seen = 0
        self._logged: dict[str, tuple[float, int]] = {}
        self._rate_mark = (time.monotonic(), 0)

    # ---- one batch

    def handle(self, items: list[Incoming]) -> None:
        """Validate and store one batch of messages, then acknowledge them all."""
        with batch_gc():
            self._handle(items)

    def _handle(self, items: list[Incoming]) -> None:
        accepted: list[wire.ReadingsMessage] = []
        rejected: list[Quarantined] = []
        for item in items:
            verdict = self._judge(item)
            if isinstance(verdict, ingest.Rejected):
                rejected.append(self._quarantined(item, verdict))
            elif verdict is not None:
                accepted.append(verdict)
        try:
            self.store.write(accepted, rejected)
        except Exception as exc:
            if _transient(exc):
                # another collector held the lock past busy_timeout, or VictoriaMetrics is
                # away: nothing is wrong with these messages; unacked, the run loop stores
                # them again after a pause
                raise
            log.exception(
                "storing a batch of %d messages failed; storing them one by one", len(items)
            )
            accepted = self._write_one_by_one(accepted, rejected)
        self.source.ack(items)
        self._readings_seen += sum(len(m.readings) for m in accepted)
        if self.sink is not None:
            self.sink.submit(accepted)
        for listener in self.listeners:
            listener(accepted)

    def _quarantined(self, item: Incoming, verdict: ingest.Rejected) -> Quarantined:
        # a flood of one kind of bad message logs once a minute; the quarantine has them all
        now = time.monotonic()
        last, muted = self._logged.get(verdict.reason, (0.0, 0))
        if now - last >= QUARANTINE_LOG_EVERY_S:
            log.warning(
                "quarantined message topic=%r reason=%s: %s%s",
                item.topic[:200],
                verdict.reason,
                verdict.detail[:300],
                f" ({muted} more with this reason since the last report)" if muted else "",
            )
            self._logged[verdict.reason] = (now, 0)
        else:
            self._logged[verdict.reason] = (last, muted + 1)
        cap = self.config.ingest.quarantine_payload_bytes
        return Quarantined(
            item.topic[:500],
            verdict.reason,
            verdict.detail[:2000],
            item.payload[:cap],
            len(item.payload),
        )

    def _write_one_by_one(
        self, accepted: list[wire.ReadingsMessage], rejected: list[Quarantined]
    ) -> list[wire.ReadingsMessage]:
        """Contain a message the store cannot take: it goes to quarantine, the rest is kept.

        Raises (leaving the batch unacknowledged) only if even the quarantine cannot be
        written, which means the database itself is unusable.
        """
        stored: list[wire.ReadingsMessage] = []
        for message in accepted:
            try:
                self.store.write([message])
                stored.append(message)
            except Exception as exc:
                if _transient(exc):
                    raise  # the batch stays unacked and is stored again (idempotent)
                log.exception(
                    "message site=%s gateway=%s seq=%d cannot be stored",
                    message.site,
                    message.gateway,
                    message.seq,
                )
                raw = wire.encode_readings(message)
                rejected.append(
                    Quarantined(
                        wire.topic(message.site, message.gateway, "readings"),
                        "store_error",
                        f"{type(exc).__name__}: {exc}"[:2000],
                        raw[: self.config.ingest.quarantine_payload_bytes],
                        len(raw),
                    )
                )
        self.store.write([], rejected)
        return stored

    def _judge(self, item: Incoming) -> wire.ReadingsMessage | ingest.Rejected | None:
        try:
            address = wire.parse_topic(item.topic)
        except WireError as err:
            return ingest.Rejected(err.reason, err.detail)
        if address.channel == "readings":
            return ingest.check(item.topic, item.payload, self.config.ingest, self.known)
        if not self._allowed(address.site, address.gateway):
            return ingest.Rejected(
                "unknown_gateway",
                f"{address.site}/{address.gateway} is not in the collector's registry",
            )
        if len(item.payload) > self.config.ingest.max_payload_bytes:
            return ingest.Rejected("payload_too_large", f"{len(item.payload)} bytes")
        try:
            if address.channel == "status":
                status = wire.decode_status(item.payload)
                self._in_txn(
                    address, lambda: self.store.set_status(address.site, address.gateway, status)
                )
            else:
                health = wire.decode_json_object(item.payload)
                self._in_txn(
                    address, lambda: self.store.set_health(address.site, address.gateway, health)
                )
        except WireError as err:
            return ingest.Rejected(err.reason, f"{address.channel}: {err.detail}")
        except Exception as exc:  # e.g. a health document json cannot serialise back
            return ingest.Rejected("invalid_value", f"{address.channel}: {exc}"[:500])
        return None

    def _in_txn(self, address: wire.TopicAddress, work: Callable[[], object]) -> None:
        """Register the gateway and record its status or health in one transaction."""
        with self.store.transaction():
            self.store.register_gateway(address.site, address.gateway)
            work()

    def _allowed(self, site: str, gateway: str) -> bool:
        return self.config.ingest.registration == "auto" or (site, gateway) in self.known

    # ---- periodic work

    def refresh_intervals(self, store: Store | None = None) -> int:
        """Recompute the meters with new readings (on `store`, by default the ingest's),
        unless another collector on this database is doing it now; returns how many were
        done here."""
        on = store or self.store
        return self._leased(lambda: self._refresh_intervals(on)) or 0

    def _refresh_intervals(self, store: Store) -> int:
        self._lease_kept = time.monotonic()

        def refreshed(meter_id: int, rollups: list[Rollup]) -> None:
            """After each meter: keep a long refresh's lease, copy its rollups to the sink."""
            if time.monotonic() - self._lease_kept > self._intervals_ttl_ms / 3000:
                self._lease_kept = time.monotonic()
                self.leases.keep(INTERVALS_LEASE, self._intervals_ttl_ms)
            if self.sink is not None:
                self._rollups_to_sink(store, meter_id, rollups)

        return refresh_intervals(store, self.policy, refreshed)

    def _leased(self, work: Callable[[], int]) -> int | None:
        """Run interval work under the intervals lease (None: another collector has it).

        A refresh that overlapped another could store intervals computed from older
        readings after newer ones; one at a time, each refresh reads what the one before
        it wrote and every reading committed since marks its meter again.
        """
        _ran, result = self.leases.run(
            INTERVALS_LEASE, None, self._intervals_ttl_ms, work, busy_retry_s=BUSY_RETRY_S
        )
        return result

    def promote_gaps(self) -> int:
        """Turn seq ranges missing for longer than ingest.gap_grace_s into gaps."""
        return self.store.promote_gaps()

    def _rollups_to_sink(self, store: Store, meter_id: int, rollups: list[Rollup]) -> None:
        key = store.meter_key(meter_id)
        submit = getattr(self.sink, "submit_rollups", None)
        if key is not None and submit is not None:
            submit(*key, rollups)

    def publish_stats(self) -> dict[str, float | str | None]:
        """Write ingest rate and sink figures where `status` can read them."""
        now = time.monotonic()
        since, seen = self._rate_mark
        self._rate_mark = (now, self._readings_seen)
        values: dict[str, float | str | None] = {
            "ingest_readings_per_s": (self._readings_seen - seen) / max(now - since, 1e-9),
            "sink_enabled": float(self.sink is not None),
        }
        if self.sink is not None:
            stats = self.sink.stats()
            for name in ("backlog", "written", "dropped", "failures", "last_error"):
                values[f"sink_{name}"] = getattr(stats, name, None)
        self.store.set_stats(values)
        return values

    def run(self, stop: threading.Event) -> None:
        web = self._start_web()
        self.source.start()
        if self.sink is not None:
            self.sink.start()
        if self.evaluation is not None:
            self.evaluation.start()
        batch = self.config.ingest.batch_messages
        ingest_done = threading.Event()
        history = threading.Thread(
            target=self._keep_history, args=(stop, ingest_done), name="intervals", daemon=True
        )
        history.start()
        every = {self.publish_stats: STATS_EVERY_S, self.promote_gaps: GAPS_EVERY_S}
        due = {task: time.monotonic() + min(period, 60.0) for task, period in every.items()}
        pending: list[Incoming] = []
        retry = 0
        tune_gc()
        log.info("collector storing into %s", self.config.storage.db)
        try:
            while not stop.is_set():
                items = pending or self._take(batch)
                if items:
                    try:
                        self.handle(items)
                        pending, retry = [], 0
                    except Exception as exc:
                        # nothing was acked: keep the batch and try again, never drop it
                        pause = backoff_s(retry, DB_RETRY_FIRST_S, DB_RETRY_MAX_S)
                        if isinstance(exc, VictoriaError):  # its message says it all
                            log.error("%s; retrying %d messages in %.1f s", exc, len(items), pause)
                        else:
                            log.exception(
                                "database unusable; retrying %d messages in %.1f s",
                                len(items),
                                pause,
                            )
                        pending, retry = items, retry + 1
                        stop.wait(pause)
                now = time.monotonic()
                for task, period in every.items():
                    if now >= due[task]:
                        self._guarded(task)
                        due[task] = now + period
        finally:
            stop.set()  # the loop may end on an error too: the history thread ends with it
            if self.evaluation is not None:
                self.evaluation.stop()
            self.source.stop()
            ingest_done.set()
            history.join()
            if self.sink is not None:
                self.sink.stop()
            self._guarded(self.publish_stats)
            if web is not None:
                web.stop()
            self.leases.close()
            self.store.close()

    def _start_web(self) -> Any:
        """Serve the web pages and API beside ingest (collector/web), fed by `listeners`."""
        if not self.config.http.enabled:
            return None
        from collector.web.app import start_web

        return start_web(self)

    def _keep_history(self, stop: threading.Event, ingest_done: threading.Event) -> None:
        """Refresh the 15-minute history and prune raw readings on a connection of their own:
        a refresh of thousands of meters takes seconds, and ingest (with the MQTT loop and
        its keepalives) goes on meanwhile instead of waiting for it."""
        store = Store(self.config.storage.db, synchronous=self.config.storage.synchronous)

        def refresh() -> int:
            return self.refresh_intervals(store)

        def prune_raw() -> int:
            return self._prune(store)

        every = {refresh: self.config.intervals.refresh_s, prune_raw: 3600.0}
        due = {task: time.monotonic() + min(period, 60.0) for task, period in every.items()}
        try:
            while not stop.wait(max(0.0, min(due.values()) - time.monotonic())):
                for task, period in every.items():
                    if time.monotonic() >= due[task]:
                        self._guarded(task)
                        due[task] = time.monotonic() + period
            # everything ingest committed, before the collector stops
            ingest_done.wait()
            self._guarded(refresh)
        finally:
            store.close()

    def _prune(self, store: Store) -> int:
        return (
            self._leased(lambda: prune(store, self.config.storage.raw_retention_days, self.policy))
            or 0
        )

    def _take(self, limit: int) -> list[Incoming]:
        # waiting a little after the first message keeps commits (and fsyncs) few and large
        return self.source.take(limit, self.config.ingest.batch_wait_ms / 1000)

    @staticmethod
    def _guarded(work: Callable[[], object]) -> None:
        name = getattr(work, "__name__", work)
        try:
            work()
        except Exception as exc:
            if _transient(exc):
                # other collectors' writes held the database past the retries, or
                # VictoriaMetrics is away: nothing was half done; the next round does it
                log.warning("periodic task %s: %s; next round", name, _busy_or(exc))
                return
            log.exception("periodic task %s failed", name)


def _transient(exc: BaseException) -> bool:
    """A failure the same work will get past later: a busy database, or VictoriaMetrics
    away or refusing (validated readings it refuses mean its setup is wrong: an
    authenticating proxy, a wrong URL or tenant; never a reason to drop them)."""
    return is_busy(exc) or isinstance(exc, VictoriaError)


def _busy_or(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, VictoriaError) else f"database busy ({exc})"
