"""Run the gateway: poller -> batches -> outbox -> publisher, plus health and watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway import learned, metrics, modbus_io, remote_config, sdnotify
from gateway.home_assistant import HomeAssistant
from gateway.outbox import NewBatch, Outbox
from gateway.poller import Poller
from gateway.publisher import Inbound, Publisher
from gateway.remote import Remote
from gateway.settings import GatewayConfig, mqtt_password
from sparwatt import __version__, wire

log = logging.getLogger(__name__)


class Link(Protocol):
    """What the forwarder needs from the MQTT side (Publisher, or a fake in tests)."""

    @property
    def generation(self) -> int:
        """Changes on every successful (re)connect."""

    def is_connected(self) -> bool: ...

    def publish(self, topic: str, payload: bytes) -> int | None: ...


@dataclass
class Forwarder:
    """Moves outbox batches to the broker: fresh ones at once, the backlog at a set rate.

    On every (re)connect the batches committed before it become the backlog, sent oldest
    first at `rate_per_s`; everything committed since goes out as it is committed. A batch
    is deleted from the outbox only after its PUBACK (at the next `flush`).
    """

    outbox: Outbox
    link: Link
    topic: str
    rate_per_s: float
    retry_rejected_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    inflight: dict[int, int] = field(default_factory=dict)  # mid -> seq
    acked: list[int] = field(default_factory=list)  # seqs waiting to be deleted
    published: int = 0
    rejected: int = 0
    _acks: deque[tuple[int, bool]] = field(default_factory=deque)
    _busy: set[int] = field(default_factory=set)  # in flight or acked, not yet deleted
    _held: dict[int, float] = field(default_factory=dict)  # rejected seq -> retry at
    _generation: int = -1
    _live_from: int = 0
    _cursor: int = -1  # backlog: last seq looked at
    _fresh_after: int = -1  # fresh: last seq looked at
    _tokens: float = 0.0
    _last: float = 0.0

    def on_ack(self, mid: int, accepted: bool) -> None:
        """PUBACK callback; thread-safe (deque append), handled in the next `step`."""
        self._acks.append((mid, accepted))

    def take_acks(self) -> None:
        while self._acks:
            mid, accepted = self._acks.popleft()
            seq = self.inflight.pop(mid, None)
            if seq is None:
                continue  # birth, health, or a message from before a restart
            if accepted:
                self.acked.append(seq)
            else:
                self.rejected += 1
                self._busy.discard(seq)
                self._held[seq] = self.clock() + self.retry_rejected_s
                log.error(
                    "broker rejected batch seq=%d on %s; kept, retry in %.0f s",
                    seq,
                    self.topic,
                    self.retry_rejected_s,
                )

    def flushed(self) -> list[int]:
        """Hand over the acknowledged seqs for deletion; they stay skipped until then."""
        done, self.acked = self.acked, []
        return done

    def deleted(self, seqs: list[int]) -> None:
        self._busy.difference_update(seqs)

    def step(self) -> None:
        """One round: note acks, then send fresh batches and a rate-limited share of backlog."""
        self.take_acks()
        now = self.clock()
        if not self.link.is_connected():
            self._last = now
            return
        if self.link.generation != self._generation:
            self._generation = self.link.generation
            self._live_from, self._cursor, self._tokens = self.outbox.next_seq(), -1, 0.0
            self._fresh_after = self._live_from - 1
        for seq, held_until in list(self._held.items()):
            if now >= held_until:
                del self._held[seq]
                self._cursor = min(self._cursor, seq - 1)
                self._fresh_after = min(self._fresh_after, seq - 1)
        self._tokens = min(
            self._tokens + self.rate_per_s * (now - self._last), max(self.rate_per_s, 1.0)
        )
        self._last = now
        if not self._send_fresh():
            return
        self._send_backlog()

    def _eligible(self, seq: int) -> bool:
        return seq not in self._busy and seq not in self._held

    def _send(self, seq: int, payload: bytes) -> bool:
        mid = self.link.publish(self.topic, payload)
        if mid is None:
            return False
        self.inflight[mid] = seq
        self._busy.add(seq)
        self.published += 1
        return True

    def _send_fresh(self) -> bool:
        while True:
            rows = self.outbox.pending(max(self._fresh_after, self._live_from - 1), None, 200)
            for seq, payload in rows:
                if self._eligible(seq) and not self._send(seq, payload):
                    return False
                self._fresh_after = seq
            if len(rows) < 200:
                return True

    def _send_backlog(self) -> None:
        while self._tokens >= 1:
            rows = self.outbox.pending(self._cursor, self._live_from, 50)
            if not rows:
                return
            for seq, payload in rows:
                if self._tokens < 1:
                    return
                if self._eligible(seq):
                    if not self._send(seq, payload):
                        return
                    self._tokens -= 1
                self._cursor = seq


class Gateway:
    """Owns the loops of one gateway process; everything else gets plain data."""

    def __init__(
        self,
        config: GatewayConfig,
        environ: dict[str, str] | None = None,
        open_bus: Callable[..., modbus_io.BusClient] = modbus_io.open_bus,
        config_path: Path | None = None,
    ) -> None:
        self.env = dict(os.environ if environ is None else environ)
        self.config = config
        self.open_bus = open_bus
        # where a config pushed by the admin is kept once it runs (docs/fleet.md)
        self.config_path = config_path
        self.config_version = remote_config.version_of(config_path)
        ident = config.gateway
        self.readings_topic = wire.topic(ident.site, ident.id, "readings")
        self.status_topic = wire.topic(ident.site, ident.id, "status")
        self.health_topic = wire.topic(ident.site, ident.id, "health")
        self.outbox = Outbox(
            ident.state_dir / "outbox.db",
            max_bytes=int(config.outbox.max_mb * 1_000_000),
            max_age_s=config.outbox.max_age_days * 86400,
        )
        self.pending: list[dict[str, object]] = []
        self.poller = self.new_poller(config)
        self.scheduler: AsyncIOScheduler | None = None
        self.remote = Remote(self)
        self._inbound: asyncio.Queue[Inbound] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.publisher = Publisher(
            config.mqtt,
            client_id=f"sparwatt-{ident.site}-{ident.id}",
            password=mqtt_password(config.mqtt, self.env),
            will=(self.status_topic, self._status(wire.GatewayState.OFFLINE)),
            birth=lambda: (self.status_topic, self._status(wire.GatewayState.ONLINE)),
            on_ack=self._on_ack,
            max_inflight=config.outbox.max_inflight,
            subscriptions=self.remote.subscriptions,
            on_message=self._on_inbound,
        )
        self.home_assistant = HomeAssistant(self.publisher, config)
        self.forwarder = Forwarder(
            self.outbox,
            PublisherLink(self.publisher),
            self.readings_topic,
            config.outbox.drain_per_s,
        )
        self.started = time.monotonic()

    def _on_ack(self, mid: int, accepted: bool) -> None:
        self.forwarder.on_ack(mid, accepted)

    def _on_inbound(self, msg: Inbound) -> None:
        """A request from the admin, handed from paho's thread to the event loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._inbound.put_nowait, msg)

    def new_poller(self, config: GatewayConfig) -> Poller:
        return Poller(
            config,
            self.take_reading,
            open_bus=self.open_bus,
            learned_path=config.gateway.state_dir / learned.FILE_NAME,
        )

    def take_reading(self, reading: dict[str, object]) -> None:
        self.pending.append(reading)
        self.home_assistant.state(reading)

    def adopt(self, config: GatewayConfig, poller: Poller) -> None:
        """Run on a new config whose poller already runs; the outbox and link stay."""
        self.config, self.poller = config, poller
        self.outbox.max_bytes = int(config.outbox.max_mb * 1_000_000)
        self.outbox.max_age_s = config.outbox.max_age_days * 86400
        self.forwarder.rate_per_s = config.outbox.drain_per_s
        self.home_assistant.reconfigure(config)

    def _status(self, state: wire.GatewayState) -> bytes:
        return wire.encode_status(
            wire.StatusMessage(
                state=state,
                version=__version__,
                meters=[m.id for m in self.config.meters],
                ts=datetime.now(UTC),
            )
        )

    def _builder(self, chunk: list[dict[str, object]]) -> Callable[[int], bytes]:
        def build(seq: int) -> bytes:
            return wire.encode_readings(
                wire.ReadingsMessage.model_validate(
                    {
                        "schema": wire.SCHEMA_VERSION,
                        "site": self.config.gateway.site,
                        "gateway": self.config.gateway.id,
                        "seq": seq,
                        "sent_at": datetime.now(UTC),
                        "readings": chunk,
                    }
                )
            )

        return build

    def commit(self) -> None:
        """One transaction: pending readings become numbered batches, acked ones go."""
        limit = self.config.outbox.max_readings_per_message
        readings, self.pending[:] = self.pending[:], []
        batches = [
            NewBatch(self._builder(readings[i : i + limit]), len(readings[i : i + limit]))
            for i in range(0, len(readings), limit)
        ]
        self.forwarder.take_acks()
        acked = self.forwarder.flushed()
        if not (batches or acked):
            return
        try:
            self.outbox.flush(batches, acked)
        except BaseException:
            # nothing was committed (a full disk, say): keep all of it for the next commit
            self.pending[:0] = readings
            self.forwarder.acked[:0] = acked
            raise
        self.forwarder.deleted(acked)

    async def drain(self, stop: asyncio.Event, tick_s: float = 0.05) -> None:
        while not stop.is_set():
            self.forwarder.step()
            await asyncio.sleep(tick_s)

    def health(self) -> dict[str, object]:
        stats = self.outbox.stats()
        return {
            "schema": wire.SCHEMA_VERSION,
            "site": self.config.gateway.site,
            "gateway": self.config.gateway.id,
            "ts": wire.format_ts(datetime.now(UTC)),
            "version": __version__,
            "config_version": self.config_version,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "health_interval_s": self.config.health.interval_s,
            "meters": {mid: s.report() for mid, s in self.poller.stats.items()},
            "outbox": {
                "depth": stats.depth,
                "bytes": stats.bytes,
                "oldest_age_s": stats.oldest_age_s,
                "dropped_batches": stats.dropped_batches,
                "dropped_readings": stats.dropped_readings,
                "next_seq": stats.next_seq,
            },
            "mqtt": {
                "connected": self.publisher.connected.is_set(),
                "reconnects": self.publisher.reconnects,
                "published": self.forwarder.published,
                "inflight": len(self.forwarder.inflight),
                "rejected": self.forwarder.rejected,
            },
        }

    async def _every(
        self, seconds: Callable[[], float], stop: asyncio.Event, work: Callable[[], object]
    ) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                # read each round: a pushed config may change the interval
                await asyncio.wait_for(stop.wait(), timeout=seconds())
            if stop.is_set():
                return
            try:
                work()
            except Exception:  # one bad round must not end the loop
                log.exception("periodic task failed")

    def _send_health(self) -> None:
        self.publisher.publish(self.health_topic, json.dumps(self.health()).encode(), qos=0)

    def poll_loop_problem(self) -> str | None:
        """Why the poll loop counts as stuck, or None: a poll must have started within three
        of the longest schedule intervals, and no bus request may run far past its timeout
        and retries. The second part catches one hung bus while the others poll on."""
        limit = 3 * max(
            max([m.interval_s, *(g.interval_s for g in m.groups)]) for m in self.config.meters
        )
        now = time.monotonic()
        if now - self.poller.last_poll_started >= limit:
            return f"no poll started for {now - self.poller.last_poll_started:.0f} s"
        hung = self.poller.hung_bus(now)
        if hung is not None:
            return f"a request on bus {hung[0]} has been running for {hung[1]:.0f} s"
        return None

    def _watchdog(self) -> None:
        problem = self.poll_loop_problem()
        if problem is None:
            sdnotify.notify("WATCHDOG=1", self.env)
        else:
            log.error("poll loop stalled (%s); not pinging the watchdog", problem)

    async def run(self, stop: asyncio.Event) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        self.scheduler = scheduler
        self._loop = asyncio.get_running_loop()
        # first: a taken port stops the gateway before it polls or connects
        listener = metrics.serve(self.config.metrics.address(), self._loop, self.health)
        self.poller.start(scheduler)
        scheduler.start()
        self.publisher.start()
        tasks = [
            asyncio.create_task(
                self._every(lambda: self.config.outbox.commit_interval_s, stop, self.commit)
            ),
            asyncio.create_task(self.drain(stop)),
            asyncio.create_task(
                self._every(lambda: self.config.health.interval_s, stop, self._send_health)
            ),
            asyncio.create_task(self.remote.serve(self._inbound, stop)),
            asyncio.create_task(self.home_assistant.run(stop)),
        ]
        ping = sdnotify.watchdog_interval_s(self.env)
        if ping:
            every = float(ping)
            tasks.append(asyncio.create_task(self._every(lambda: every, stop, self._watchdog)))
        sdnotify.notify("READY=1", self.env)
        log.info(
            "gateway %s/%s running with %d meters on %d buses",
            self.config.gateway.site,
            self.config.gateway.id,
            len(self.config.meters),
            len(self.config.buses),
        )
        try:
            await stop.wait()
        finally:
            sdnotify.notify("STOPPING=1", self.env)
            scheduler.shutdown(wait=False)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.commit()
            self.publisher.stop(final=(self.status_topic, self._status(wire.GatewayState.OFFLINE)))
            self.commit()
            if listener is not None:
                listener.stop()
            self.poller.close()
            self.outbox.close()


class PublisherLink:
    """The Forwarder's Link over a running Publisher."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    @property
    def generation(self) -> int:
        return self.publisher.generation

    def is_connected(self) -> bool:
        return self.publisher.connected.is_set()

    def publish(self, topic: str, payload: bytes) -> int | None:
        return self.publisher.publish(topic, payload)
