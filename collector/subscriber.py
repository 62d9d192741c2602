"""The collector's only paho-mqtt user: a persistent QoS 1 session, acked after commit."""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.settings import Mqtt
from sparwatt import wire

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    session: int = 0  # which connection delivered it; its mid means nothing on another


class Subscriber:
    """Queues every message; the consumer calls ack() once the message is safely stored."""

    def __init__(self, cfg: Mqtt, password: str | None, max_queue: int = 20000) -> None:
        self.cfg = cfg
        self.inbox: queue.Queue[Incoming] = queue.Queue(maxsize=max_queue)
        self.connected = threading.Event()
        self._session = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                                  protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
        self.client.max_inflight_messages_set(1000)
        if cfg.username:
            self.client.username_pw_set(cfg.username, password)
        if cfg.tls:
            self.client.tls_set(ca_certs=str(cfg.tls.ca_file),
                                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                                cert_reqs=ssl.CERT_REQUIRED)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        # clean_start False: the broker keeps queued QoS 1 messages while we are down
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
                                  clean_start=False, properties=props)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, items: list[Incoming]) -> None:
        """Acknowledge stored messages; those of an older connection are skipped, since
        the broker resends them on the new one (and their mid may now name another message)."""
        session = self._session
        for item in items:
            if item.qos > 0 and item.session == session:
                self.client.ack(item.mid, item.qos)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain)

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: Any,
                    _p: object) -> None:
        if reason.is_failure:
            log.error("broker %s:%d refused the connection: %s", self.cfg.host, self.cfg.port,
                      reason)
            return
        self._session += 1
        client.subscribe([(wire.subscription(c), 1) for c in wire.CHANNELS])
        self.connected.set()
        log.info("subscribed to %s:%d", self.cfg.host, self.cfg.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: Any,
                       _p: object) -> None:
        self.connected.clear()
        log.warning("disconnected from broker: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            name = msg.topic
        except UnicodeDecodeError:  # brokers check UTF-8, but a bad topic must not kill us
            name = msg._topic.decode("utf-8", "replace")
        # blocks the network thread when the store falls behind: back-pressure, not loss
        self.inbox.put(Incoming(name, msg.payload, msg.mid, msg.qos, self._session))
