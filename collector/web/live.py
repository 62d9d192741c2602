"""Live power per meter: from the collector's ingest thread to open event streams.

The collector calls `LiveHub.publish` after each committed batch; every open stream of a
site gets one event per batch with the newest power of each meter in it. Streams live on
the web server's event loop, so the hand-over is `call_soon_threadsafe`; a slow browser
loses its oldest events instead of slowing ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sparwatt import wire

log = logging.getLogger(__name__)

QUANTITY = "power_w"


@dataclass(eq=False)
class Subscription:
    """One open stream of one site."""

    site: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=64)
    )

    def offer(self, event: dict[str, Any] | None) -> None:
        """Runs on the stream's loop: enqueue, dropping the oldest event when full."""
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(event)


def events(messages: list[wire.ReadingsMessage]) -> dict[str, dict[str, Any]]:
    """Site -> {"ts_ms": newest ts, "values": {"gateway/meter": [ts_ms, power W]}}."""
    out: dict[str, dict[str, Any]] = {}
    for message in messages:
        for reading in message.readings:
            value = reading.values.get(QUANTITY)
            if value is None:
                continue
            ts = int(reading.ts.timestamp() * 1000)
            site = out.setdefault(message.site, {"ts_ms": ts, "values": {}})
            key = f"{message.gateway}/{reading.meter}"
            old = site["values"].get(key)
            if old is None or old[0] <= ts:
                site["values"][key] = [ts, value]
            site["ts_ms"] = max(site["ts_ms"], ts)
    return out


class LiveHub:
    """Fan-out of accepted readings to the streams of their site."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, set[Subscription]] = {}

    def subscribe(self, site: str) -> Subscription:
        sub = Subscription(site, asyncio.get_running_loop())
        with self._lock:
            self._subs.setdefault(site, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.site)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.site]

    def subscribers(self, site: str) -> int:
        with self._lock:
            return len(self._subs.get(site, ()))

    def publish(self, messages: list[wire.ReadingsMessage]) -> None:
        """Collector listener: never raises, never blocks ingest."""
        try:
            with self._lock:
                if not self._subs:
                    return
                wanted = {site: list(subs) for site, subs in self._subs.items()}
            for site, event in events([m for m in messages if m.site in wanted]).items():
                for sub in wanted[site]:
                    self._hand_over(sub, event)
        except Exception:
            log.exception("live update failed; ingest goes on")

    def close(self) -> None:
        """End every open stream (server shutdown)."""
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            self._hand_over(sub, None)

    @staticmethod
    def _hand_over(sub: Subscription, event: dict[str, Any] | None) -> None:
        with contextlib.suppress(RuntimeError):  # the stream's loop has closed
            sub.loop.call_soon_threadsafe(sub.offer, event)
