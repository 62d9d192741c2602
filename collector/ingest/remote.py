"""Requests to gateways (config push, meter read, bus scan), matched to their replies.

MQTT v5 request/response: a request names a Response Topic in the gateway's `reply/`
subtree that ends in this requester's id, and Correlation Data the reply carries back. The
subscriber (the collector's only paho user) sends the request and hands every message on
`reply_filter` to `deliver`; the asking thread waits for its own reply, with a timeout.
In the collector service the ingest thread runs the network loop, so a web request just
waits; a command-line client has no such thread and passes `pump` to run the loop itself.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pydantic import BaseModel

from sparwatt import wire
from sparwatt.errors import RemoteError, WireError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Pump = Callable[[float], object]  # run the network loop for up to this many seconds


class Transport(Protocol):
    """What requests need from the MQTT side (the Subscriber)."""

    connected: threading.Event

    def request(
        self, topic: str, payload: bytes, response_topic: str, correlation: bytes
    ) -> bool: ...


def requester_id(client_id: str) -> str:
    """A topic level naming this client in reply topics (an id, whatever the client id)."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", client_id.lower()).strip("-_")[:63]
    return cleaned or "collector"


@dataclass
class _Waiting:
    done: threading.Event = field(default_factory=threading.Event)
    payload: bytes = b""


class Requests:
    """Requests under way, by correlation data."""

    def __init__(self, requester: str) -> None:
        self.requester = requester
        self.transport: Transport | None = None  # set by the Subscriber that carries them
        self._waiting: dict[bytes, _Waiting] = {}
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self.transport is not None and self.transport.connected.is_set()

    @property
    def reply_filter(self) -> str:
        return wire.reply_subscription(self.requester)

    def is_reply(self, topic: str) -> bool:
        """Whether `topic` matches `reply_filter`, checked on every message the network loop
        hands over (paho's general matcher costs about 10 us a message)."""
        root = wire.TOPIC_ROOT + "/"
        if not topic.startswith(root):
            return False
        levels = topic[len(root) :].split("/")  # site, gateway, "reply", requester
        return len(levels) == 4 and levels[2] == "reply" and levels[3] == self.requester

    def deliver(self, topic: str, payload: bytes, correlation: bytes | None) -> None:
        """A reply arrived (called on the network loop's thread)."""
        with self._lock:
            waiting = self._waiting.get(correlation or b"")
        if waiting is None:
            log.info("reply on %s matches no request waiting (too late?)", topic)
            return
        waiting.payload = payload
        waiting.done.set()

    def ask(
        self,
        site: str,
        gateway: str,
        topic: str,
        payload: bytes,
        timeout_s: float,
        pump: Pump | None = None,
    ) -> bytes:
        """Send one request and return the gateway's reply; RemoteError without one."""
        transport = self.transport
        if transport is None or not transport.connected.is_set():
            raise RemoteError("not connected to the broker")
        correlation = secrets.token_hex(8).encode()
        waiting = _Waiting()
        with self._lock:
            self._waiting[correlation] = waiting
        try:
            answer_on = wire.reply_topic(site, gateway, self.requester)
            if not transport.request(topic, payload, answer_on, correlation):
                raise RemoteError("the link to the broker dropped; try again")
            deadline = time.monotonic() + timeout_s
            while not waiting.done.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RemoteError(
                        f"{site}/{gateway} did not answer within {timeout_s:g} s "
                        "(offline, or running a version without remote management?)"
                    )
                if pump is None:
                    waiting.done.wait(left)
                else:
                    pump(min(left, 0.05))
        finally:
            with self._lock:
                self._waiting.pop(correlation, None)
        return waiting.payload

    def _call(
        self,
        model: type[M],
        site: str,
        gateway: str,
        topic: str,
        message: BaseModel,
        timeout_s: float,
        pump: Pump | None,
    ) -> M:
        raw = self.ask(site, gateway, topic, wire.encode(message), timeout_s, pump)
        try:
            return wire.decode(model, raw)
        except WireError as err:
            try:
                refused = wire.decode(wire.Refused, raw)
            except WireError:
                raise RemoteError(f"{site}/{gateway} sent an unreadable answer: {err}") from None
            raise RemoteError(f"{site}/{gateway} refused the request: {refused.error}") from None

    def read_meter(
        self, site: str, gateway: str, meter: str, timeout_s: float, pump: Pump | None = None
    ) -> wire.ReadReply:
        """Read one meter of a gateway now (what `sparwatt-gateway read` does on site)."""
        command = wire.Command(command="read", meter=meter)
        topic = wire.command_topic(site, gateway)
        return self._call(wire.ReadReply, site, gateway, topic, command, timeout_s, pump)

    def scan_bus(
        self,
        site: str,
        gateway: str,
        bus: str,
        units: str,
        timeout_s: float,
        pump: Pump | None = None,
    ) -> wire.ScanReply:
        command = wire.Command(command="scan", bus=bus, units=units)
        topic = wire.command_topic(site, gateway)
        return self._call(wire.ScanReply, site, gateway, topic, command, timeout_s, pump)

    def push_config(
        self,
        site: str,
        gateway: str,
        text: str,
        source: str,
        timeout_s: float,
        pump: Pump | None = None,
    ) -> wire.ConfigResult:
        push = wire.ConfigPush(version=wire.config_version(text), source=source, config=text)
        return self._call(
            wire.ConfigResult,
            site,
            gateway,
            wire.config_set_topic(site, gateway),
            push,
            timeout_s,
            pump,
        )
