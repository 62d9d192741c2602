"""Run the collector: subscriber -> ingest -> store (and sink) -> interval energy."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from collector import ingest
from collector.intervals import IntervalPolicy, counter_intervals, merge, power_stats
from collector.settings import CollectorConfig
from collector.store import Store
from collector.subscriber import Incoming, Subscriber
from sparwatt import configfile, wire

log = logging.getLogger(__name__)

INTERVAL_MS = 900_000


class Collector:
    """Owns the ingest loop; one thread writes, everything else reads."""

    def __init__(self, config: CollectorConfig, environ: dict[str, str] | None = None,
                 sink: object | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.config = config
        self.store = Store(config.storage.db)
        for entry in config.ingest.gateways:
            self.store.register_gateway(entry.site, entry.gateway)
        self.known = {(e.site, e.gateway) for e in config.ingest.gateways}
        self.subscriber = Subscriber(config.mqtt, configfile.read_secret(
            config.mqtt.password_file, "SPARWATT_MQTT_PASSWORD", env))
        self.sink = sink
        self.policy = IntervalPolicy(
            max_gap_ms=int(config.intervals.max_gap_minutes * 60_000),
            rollover_values=tuple(config.intervals.rollover_kwh))
        self.listeners: list[Callable[[list[wire.ReadingsMessage]], None]] = []

    def handle(self, items: list[Incoming]) -> None:
        """Validate and store one batch of messages, then acknowledge them all."""
        accepted: list[wire.ReadingsMessage] = []
        rejected: list[tuple[str, str, str, bytes, int]] = []
        cap = self.config.ingest.quarantine_payload_bytes
        for item in items:
            verdict = self._judge(item)
            if isinstance(verdict, ingest.Rejected):
                log.warning("quarantined message on %r: %s: %s", item.topic[:200],
                            verdict.reason, verdict.detail[:300])
                rejected.append((item.topic[:500], verdict.reason, verdict.detail[:2000],
                                 item.payload[:cap], len(item.payload)))
            elif verdict is not None:
                accepted.append(verdict)
        for message in accepted:
            self.store.register_gateway(message.site, message.gateway)
        self.store.write(accepted, rejected)
        self.subscriber.ack(items)
        for listener in self.listeners:
            listener(accepted)

    def _judge(self, item: Incoming) -> wire.ReadingsMessage | ingest.Rejected | None:
        try:
            address = wire.parse_topic(item.topic)
        except wire.WireError as err:
            return ingest.Rejected(err.reason, err.detail)
        if address.channel == "readings":
            return ingest.check(item.topic, item.payload, self.config.ingest, self.known)
        if not self._allowed(address.site, address.gateway):
            return ingest.Rejected("unknown_gateway", f"{address.site}/{address.gateway}")
        try:
            if address.channel == "status":
                self.store.register_gateway(address.site, address.gateway)
                self.store.set_status(address.site, address.gateway,
                                      wire.decode_status(item.payload))
            else:
                self.store.register_gateway(address.site, address.gateway)
                self.store.set_health(address.site, address.gateway,
                                      wire.decode_json_object(item.payload))
        except wire.WireError as err:
            return ingest.Rejected(err.reason, f"{address.channel}: {err.detail}")
        return None

    def _allowed(self, site: str, gateway: str) -> bool:
        return self.config.ingest.registration == "auto" or (site, gateway) in self.known

    def refresh_intervals(self) -> int:
        """Recompute 15-minute energy and power for meters that got new readings."""
        done = 0
        lookback = self.policy.max_gap_ms + INTERVAL_MS
        for meter_id, from_ms in self.store.take_dirty():
            start = (from_ms // INTERVAL_MS) * INTERVAL_MS - lookback
            energy = counter_intervals(self.store.samples(meter_id, "energy_import_kwh", start),
                                       self.policy)
            power = power_stats(self.store.samples(meter_id, "power_w", start), INTERVAL_MS)
            rows = [(r.start_ms, r.energy_kwh, r.estimated, r.mean_power_w, r.max_power_w)
                    for r in merge(energy, power) if r.start_ms >= start + lookback - INTERVAL_MS]
            self.store.put_intervals(meter_id, rows)
            done += 1
        return done

    def run(self, stop: threading.Event) -> None:
        self.subscriber.start()
        batch = self.config.ingest.batch_messages
        next_refresh = time.monotonic() + self.config.intervals.refresh_s
        next_prune = time.monotonic() + 60
        log.info("collector storing into %s", self.config.storage.db)
        try:
            while not stop.is_set():
                items = self._take(batch)
                if items:
                    try:
                        self.handle(items)
                    except Exception:
                        # unacked messages come back from the broker after a restart
                        log.exception("storing %d messages failed; they stay unacknowledged",
                                      len(items))
                        time.sleep(1)
                now = time.monotonic()
                if now >= next_refresh:
                    self._guarded(self.refresh_intervals)
                    next_refresh = now + self.config.intervals.refresh_s
                if now >= next_prune:
                    self._guarded(lambda: self.store.prune(
                        self.config.storage.raw_retention_days))
                    next_prune = now + 3600
        finally:
            self.subscriber.stop()
            self._guarded(self.refresh_intervals)
            self.store.close()

    def _take(self, limit: int) -> list[Incoming]:
        try:
            items = [self.subscriber.inbox.get(timeout=0.05)]
        except queue.Empty:
            return []
        while len(items) < limit:
            try:
                items.append(self.subscriber.inbox.get_nowait())
            except queue.Empty:
                break
        return items

    @staticmethod
    def _guarded(work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:
            log.exception("periodic task failed")
