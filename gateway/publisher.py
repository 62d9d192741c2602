"""The gateway's only paho-mqtt user: one connection, birth and will, acked QoS 1 publishes,
and the admin's requests on the gateway's own topics."""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.settings import Mqtt
from sparwatt.backoff import backoff_s
from sparwatt.errors import ConfigError
from sparwatt.wire import READINGS_QOS

log = logging.getLogger(__name__)

# Called from paho's thread with (mid, accepted); accepted is False for a PUBACK whose reason
# code is a failure (MQTT v5, e.g. "not authorized"): the batch must stay in the outbox.
OnAck = Callable[[int, bool], None]


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message on one of the gateway's request topics, with its MQTT v5 request/response
    properties (None under v3.1.1 or when the sender gave none)."""

    topic: str
    payload: bytes
    retained: bool
    response_topic: str | None = None
    correlation: bytes | None = None


# Called from paho's thread for every message on `subscriptions`.
OnMessage = Callable[[Inbound], None]


class Publisher:
    """Connects in the background, reconnects with jittered backoff, reports PUBACKs.

    paho keeps every QoS 1 message it accepted (in flight, queued, or handed over while the
    link was down) and sends it again with the same mid after a reconnect, so a mid stays
    valid across reconnects; the outbox covers a restart of the process.
    """

    def __init__(
        self,
        cfg: Mqtt,
        client_id: str,
        password: str | None,
        will: tuple[str, bytes],
        birth: Callable[[], tuple[str, bytes]],
        on_ack: OnAck,
        max_inflight: int = 50,
        rng: Callable[[], float] = random.random,
        subscriptions: tuple[str, ...] = (),
        on_message: OnMessage | None = None,
    ) -> None:
        self.cfg = cfg
        self.birth = birth
        self.on_ack = on_ack
        self.subscriptions = subscriptions
        self.on_message = on_message
        self.rng = rng
        self.reconnects = 0
        self.generation = 0  # +1 per successful connection
        self.connected = threading.Event()
        self._failures = 0
        self._refused: str | None = None
        self._stopping = False
        version = (
            MQTTProtocolVersion.MQTTv5 if cfg.protocol == "v5" else MQTTProtocolVersion.MQTTv311
        )
        kwargs: dict[str, Any] = {} if cfg.protocol == "v5" else {"clean_session": True}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version, **kwargs
        )
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        if cfg.username:
            self.client.username_pw_set(cfg.username, password)
        if cfg.tls:
            for key in ("ca_file", "cert_file", "key_file"):
                path = getattr(cfg.tls, key)
                if path is not None and not path.is_file():
                    raise ConfigError([f"mqtt.tls.{key}: no such file: {path}"])
            try:
                self.client.tls_set(
                    ca_certs=str(cfg.tls.ca_file),
                    certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                    keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError([f"mqtt.tls: cannot load certificates: {exc}"]) from None
            self.client.tls_insecure_set(cfg.tls.insecure_skip_verify)
        self.client.will_set(will[0], will[1], qos=1, retain=True)
        self._schedule_retry(count=False)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    @property
    def where(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def _schedule_retry(self, count: bool = True) -> float:
        delay = backoff_s(
            self._failures, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s, self.rng
        )
        if count:
            self._failures += 1
        # min == max: paho waits exactly this long before its next attempt
        self.client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]
        return delay

    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def stop(self, final: tuple[str, bytes] | None = None, timeout_s: float = 2.0) -> None:
        """Publish `final` (retained) if connected, then disconnect cleanly and end the thread."""
        if final is not None and self.connected.is_set():
            info = self.client.publish(final[0], final[1], qos=1, retain=True)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                # the link may drop meanwhile: the will then says offline anyway
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=timeout_s)
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    def publish(
        self, topic: str, payload: bytes, retain: bool = False, qos: int = READINGS_QOS
    ) -> int | None:
        """Hand a message to paho; its mid, or None when the client is offline."""
        if not self.connected.is_set():
            return None
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        # NO_CONN: the link dropped a moment ago; paho kept the message and sends it on
        # reconnect, so its mid will still be acknowledged.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return None
        return int(info.mid)

    def reply(
        self, topic: str, payload: bytes, correlation: bytes | None, retain: bool = False
    ) -> int | None:
        """Answer a request: QoS 1, with its Correlation Data under MQTT v5."""
        if not self.connected.is_set():
            return None
        props = None
        if correlation is not None and self.cfg.protocol == "v5":
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = correlation
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return None
        return int(info.mid)

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: Any, _props: object
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)  # logged by _on_disconnect, which follows
            return
        if self.generation:
            self.reconnects += 1
        self.generation += 1
        self._failures = 0
        self._refused = None
        self._schedule_retry(count=False)
        log.info("connected to broker %s", self.where)
        topic, payload = self.birth()
        client.publish(topic, payload, qos=1, retain=True)
        if self.subscriptions:
            # no session is kept, so every connection subscribes afresh
            client.subscribe([(name, 1) for name in self.subscriptions])
        self.connected.set()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        # paho calls this inside its `except OSError`, so the cause is still at hand
        exc = sys.exc_info()[1]
        delay = self._schedule_retry()
        log.error(
            "cannot connect to broker %s: %s (retry in %.1f s)",
            self.where,
            exc or "connection failed",
            delay,
        )

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: Any, _props: object
    ) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if self._stopping:
            return
        delay = self._schedule_retry()
        if self._refused is not None:
            hint = (
                " - check mqtt.username and the password"
                if self._refused in ("Not authorized", "Bad user name or password")
                else ""
            )
            log.error(
                "broker %s refused the connection: %s%s (retry in %.1f s)",
                self.where,
                self._refused,
                hint,
                delay,
            )
            self._refused = None
        elif was_connected:
            log.warning(
                "disconnected from broker %s: %s (retry in %.1f s)", self.where, reason, delay
            )
        else:
            log.error(
                "broker %s closed the connection: %s (retry in %.1f s)", self.where, reason, delay
            )

    def _on_publish(
        self, _client: mqtt.Client, _userdata: object, mid: int, reason: Any, _props: object
    ) -> None:
        self.on_ack(mid, not getattr(reason, "is_failure", False))

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.on_message is None:
            return
        props = getattr(msg, "properties", None)
        response = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        try:
            name = msg.topic
        except UnicodeDecodeError:
            return  # not one of our topics, whatever it is
        self.on_message(
            Inbound(
                name,
                bytes(msg.payload),
                bool(msg.retain),
                response if isinstance(response, str) else None,
                bytes(correlation) if isinstance(correlation, bytes | bytearray) else None,
            )
        )
