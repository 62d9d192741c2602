"""Run the gateway: poller -> batches -> outbox -> publisher, plus health and watchdog."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import time
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway import sdnotify
from gateway.outbox import Outbox
from gateway.poller import Poller
from gateway.publisher import Publisher
from gateway.settings import GatewayConfig, mqtt_password
from sparwatt import __version__, wire

log = logging.getLogger(__name__)


class Gateway:
    """Owns the loops of one gateway process; everything else gets plain data."""

    def __init__(self, config: GatewayConfig, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.config = config
        ident = config.gateway
        self.readings_topic = wire.topic(ident.site, ident.id, "readings")
        self.status_topic = wire.topic(ident.site, ident.id, "status")
        self.health_topic = wire.topic(ident.site, ident.id, "health")
        self.outbox = Outbox(ident.state_dir / "outbox.db",
                             max_bytes=int(config.outbox.max_mb * 1_000_000),
                             max_age_s=config.outbox.max_age_days * 86400)
        self.pending: list[dict[str, object]] = []
        self.poller = Poller(config, self.pending.append)
        self._acks: collections.deque[int] = collections.deque()
        self.inflight: dict[int, tuple[int, float]] = {}  # mid -> (seq, published at)
        self.publisher = Publisher(
            config.mqtt, client_id=f"sparwatt-{ident.site}-{ident.id}",
            password=mqtt_password(config.mqtt, env),
            will=(self.status_topic, self._status(wire.GatewayState.OFFLINE)),
            birth=lambda: (self.status_topic, self._status(wire.GatewayState.ONLINE)),
            on_ack=self._acks.append, max_inflight=config.outbox.max_inflight,
        )
        self.started = time.monotonic()
        self.published = 0

    def _status(self, state: wire.GatewayState) -> bytes:
        return wire.encode_status(wire.StatusMessage(
            state=state, version=__version__, meters=[m.id for m in self.config.meters],
            ts=datetime.now(UTC)))

    def commit(self) -> None:
        """Move pending readings into the outbox as numbered batches, one transaction each."""
        limit = self.config.outbox.max_readings_per_message
        while self.pending:
            chunk = self.pending[:limit]
            del self.pending[:limit]
            seq = self.outbox.next_seq()
            message = wire.ReadingsMessage.model_validate({
                "schema": wire.SCHEMA_VERSION, "site": self.config.gateway.site,
                "gateway": self.config.gateway.id, "seq": seq,
                "sent_at": datetime.now(UTC), "readings": chunk})
            self.outbox.append(seq, wire.encode_readings(message), len(chunk))

    def _take_acks(self) -> None:
        seqs = []
        while self._acks:
            entry = self.inflight.pop(self._acks.popleft(), None)
            if entry is not None:
                seqs.append(entry[0])
        self.outbox.ack(seqs)

    def _publish(self, batches: list[tuple[int, bytes]], now: float) -> int:
        sending = {seq for seq, _ in self.inflight.values()}
        done = 0
        for seq, payload in batches:
            if seq in sending:
                continue
            mid = self.publisher.publish(self.readings_topic, payload)
            if mid is None:
                break
            self.inflight[mid] = (seq, now)
            self.published += 1
            done += 1
        return done

    async def drain(self, stop: asyncio.Event) -> None:
        """Fresh batches go out at once; the backlog from before a (re)connect at a set rate."""
        tick = 0.05
        live_from, backlog_after, tokens = 0, -1, 0.0
        was_connected = False
        stale_s = max(30.0, 2.0 * self.config.mqtt.keepalive_s)
        while not stop.is_set():
            self._take_acks()
            now = time.monotonic()
            connected = self.publisher.connected.is_set()
            if connected and not was_connected:
                live_from, backlog_after, tokens = self.outbox.next_seq(), -1, 0.0
            was_connected = connected
            if connected:
                for mid, (_seq, at) in list(self.inflight.items()):
                    if now - at > stale_s:  # no PUBACK in time: send it again
                        del self.inflight[mid]
                self._publish(self.outbox.pending(live_from - 1, 200), now)
                rate = self.config.outbox.drain_per_s
                tokens = min(tokens + rate * tick, max(rate, 1.0))
                if tokens >= 1:
                    backlog = [b for b in self.outbox.pending(backlog_after, int(tokens))
                               if b[0] < live_from]
                    if backlog:
                        tokens -= self._publish(backlog, now)
                        backlog_after = backlog[-1][0]
            await asyncio.sleep(tick)

    def health(self) -> dict[str, object]:
        stats = self.outbox.stats()
        return {
            "schema": wire.SCHEMA_VERSION, "site": self.config.gateway.site,
            "gateway": self.config.gateway.id, "ts": wire.format_ts(datetime.now(UTC)),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "meters": {mid: s.report() for mid, s in self.poller.stats.items()},
            "outbox": {"depth": stats.depth, "bytes": stats.bytes,
                       "oldest_age_s": stats.oldest_age_s,
                       "dropped_batches": stats.dropped_batches,
                       "dropped_readings": stats.dropped_readings},
            "next_seq": stats.next_seq, "published": self.published,
            "inflight": len(self.inflight), "reconnects": self.publisher.reconnects,
        }

    async def _every(self, seconds: float, stop: asyncio.Event, work: object) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=seconds)
            except TimeoutError:
                pass
            try:
                work()  # type: ignore[operator]
            except Exception:  # one bad round must not end the loop
                log.exception("periodic task failed")

    def _send_health(self) -> None:
        self.publisher.publish(self.health_topic, json.dumps(self.health()).encode(), qos=0)

    def _watchdog(self) -> None:
        longest = max(m.interval_s for m in self.config.meters)
        if time.monotonic() - self.poller.last_poll_started < max(60.0, 3 * longest):
            sdnotify.notify("WATCHDOG=1")

    async def run(self, stop: asyncio.Event) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        self.poller.start(scheduler)
        scheduler.start()
        self.publisher.start()
        tasks = [
            asyncio.create_task(self._every(self.config.outbox.commit_interval_s, stop,
                                            self.commit)),
            asyncio.create_task(self.drain(stop)),
            asyncio.create_task(self._every(self.config.health.interval_s, stop,
                                            self._send_health)),
        ]
        ping = sdnotify.watchdog_interval_s()
        if ping:
            tasks.append(asyncio.create_task(self._every(ping, stop, self._watchdog)))
        sdnotify.notify("READY=1")
        log.info("gateway %s/%s running with %d meters on %d buses",
                 self.config.gateway.site, self.config.gateway.id, len(self.config.meters),
                 len(self.config.buses))
        await stop.wait()
        sdnotify.notify("STOPPING=1")
        scheduler.shutdown(wait=False)
        await asyncio.gather(*tasks, return_exceptions=True)
        self.commit()
        self._take_acks()
        self.publisher.stop(final=(self.status_topic, self._status(wire.GatewayState.OFFLINE)))
        self._take_acks()
        self.poller.close()
        self.outbox.close()
