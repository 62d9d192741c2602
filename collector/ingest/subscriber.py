"""The collector's only paho-mqtt user: a persistent QoS 1 session, acked after commit, and
the requests the admin sends gateways (collector/ingest/remote.py matches their replies).

The network loop runs in the ingest thread itself (take() drives it), not in a thread of
its own: a second thread would have to win the GIL back for every socket read while the
ingest thread validates, and that hand-over, not the work, would set the ingest rate.
While a batch is being stored nothing is read; the broker holds the stream meanwhile.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.ingest.remote import Requests
from collector.settings import Mqtt
from sparwatt import wire
from sparwatt.backoff import backoff_s

log = logging.getLogger(__name__)

RECONNECT_MIN_S, RECONNECT_MAX_S = 1.0, 30.0


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    session: int = 0  # which connection delivered it; its mid means nothing on another


def subscription(channel: str, shared_group: str | None = None) -> str:
    """The filter for one channel of every gateway; readings through the shared group if any.

    Only readings are shared: each is stored once whichever collector gets it. Status and
    health are last-value state: every collector takes them all, in order, and a retained
    status reaches a new member (a shared subscription gets no retained messages).
    """
    topic = wire.subscription(channel)
    if shared_group is not None and channel == "readings":
        return f"$share/{shared_group}/{topic}"
    return topic


class Subscriber:
    """Hands out batches of messages; the consumer acks them once they are safely stored."""

    def __init__(
        self,
        cfg: Mqtt,
        password: str | None,
        *,
        client_id: str | None = None,
        channels: tuple[str, ...] = wire.CHANNELS,
        persistent: bool = True,
        replies: Requests | None = None,
    ) -> None:
        """`channels`: the gateways' channels to ingest; `persistent`: keep a broker session
        across disconnects (the service; not a command-line client); `replies`: requests
        this client sends, whose replies it hands over instead of ingesting them."""
        self.cfg = cfg
        self.channels = channels
        self.persistent = persistent
        self.replies = replies
        if replies is not None:
            replies.transport = self
        self.connected = threading.Event()  # set once subscribed on a live connection
        self._socket_up = False
        self._stopping = False
        self._session = 0
        self._batch: list[Incoming] = []
        self._retry_at = 0.0
        self._retry_s, self._retries = RECONNECT_MIN_S, 0
        self._lock = threading.Lock()  # publish() may come from other threads
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or cfg.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        self.client.max_inflight_messages_set(1000)
        if cfg.username:
            self.client.username_pw_set(cfg.username, password)
        if cfg.tls:
            self.client.tls_set(
                ca_certs=str(cfg.tls.ca_file),
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry_s if self.persistent else 0
        # clean_start False: the broker keeps queued QoS 1 messages while we are down
        self.client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=not self.persistent,
            properties=props,
        )
        self._reconnect()

    def stop(self) -> None:
        self._stopping = True
        with self._lock:
            self.client.disconnect()
        for _ in range(20):  # let the DISCONNECT and the last acks go out
            if self.client.loop(timeout=0.01) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break

    def take(self, limit: int, wait_s: float, first_wait_s: float = 0.05) -> list[Incoming]:
        """Up to limit messages: wait first_wait_s for one, then up to wait_s for more."""
        batch: list[Incoming] = []
        self._batch = batch
        deadline = time.monotonic() + first_wait_s
        extended = False
        while len(batch) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                if not batch or extended:
                    break
                deadline, extended = time.monotonic() + wait_s, True
                continue
            if not self._socket_up and not self._reconnect():
                time.sleep(min(left, 0.05))
                continue
            with self._lock:
                rc = self.client.loop(timeout=min(left, 0.05))
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._lost()
            elif batch and not extended:
                deadline, extended = time.monotonic() + wait_s, True
        return batch

    def _reconnect(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            with self._lock:
                self.client.reconnect()
        except OSError as exc:
            log.warning(
                "cannot reach broker %s:%d (%s); retrying in %.0f s",
                self.cfg.host,
                self.cfg.port,
                exc,
                self._retry_s,
            )
            self._lost()
            return False
        self._socket_up = True  # CONNACK and our subscription follow in take()
        return True

    def _lost(self) -> None:
        """The connection is gone or never came up: back off before the next attempt."""
        self._socket_up = False
        self.connected.clear()
        self._retry_at = time.monotonic() + self._retry_s
        self._retries += 1
        self._retry_s = backoff_s(self._retries, RECONNECT_MIN_S, RECONNECT_MAX_S)

    def ack(self, items: list[Incoming]) -> None:
        """Acknowledge stored messages; those of an older connection are skipped, since
        the broker resends them on the new one (and their mid may now name another message)."""
        session = self._session
        with self._lock:
            for item in items:
                if item.qos > 0 and item.session == session:
                    self.client.ack(item.mid, item.qos)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        with self._lock:
            self.client.publish(topic, payload, qos=1, retain=retain)

    def request(self, topic: str, payload: bytes, response_topic: str, correlation: bytes) -> bool:
        """Send a request to a gateway (QoS 1); False when there is no connection for it."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = response_topic
        props.CorrelationData = correlation
        with self._lock:
            info = self.client.publish(topic, payload, qos=1, properties=props)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: Any, _p: object
    ) -> None:
        if reason.is_failure:
            log.error(
                "broker %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, reason
            )
            return
        self._session += 1
        self._retry_s, self._retries = RECONNECT_MIN_S, 0
        topics = [(subscription(c, self.cfg.shared_group), 1) for c in self.channels]
        if self.replies is not None:
            topics.append((self.replies.reply_filter, 1))
        if topics:
            client.subscribe(topics)
        if self.cfg.shared_group is not None and "readings" in self.channels:
            # a session from before the group would still get every reading on its own
            client.unsubscribe(wire.subscription("readings"))
        self.connected.set()
        log.info("subscribed to %s:%d", self.cfg.host, self.cfg.port)

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object
    ) -> None:
        self._lost()
        if not self._stopping:
            log.warning("disconnected from broker: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            name = msg.topic
        except UnicodeDecodeError:  # brokers check UTF-8, but a bad topic must not kill us
            name = msg._topic.decode("utf-8", "replace")
        if self.replies is not None and self.replies.is_reply(name):
            if msg.qos > 0:
                self.client.ack(msg.mid, msg.qos)  # nothing to store: acked at once
            correlation = getattr(msg.properties, "CorrelationData", None)
            self.replies.deliver(name, bytes(msg.payload), correlation)
            return
        self._batch.append(Incoming(name, bytes(msg.payload), msg.mid, msg.qos, self._session))
