"""The gateway's only paho-mqtt user: one connection, birth and will, acked QoS 1 publishes."""

from __future__ import annotations

import logging
import random
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.settings import Mqtt
from sparwatt.wire import READINGS_QOS

log = logging.getLogger(__name__)


class Publisher:
    """Connects in the background and reports PUBACKs through `on_ack(mid)` (paho's thread)."""

    def __init__(self, cfg: Mqtt, client_id: str, password: str | None,
                 will: tuple[str, bytes], birth: Callable[[], tuple[str, bytes]],
                 on_ack: Callable[[int], None], max_inflight: int = 50) -> None:
        self.cfg = cfg
        self.birth = birth
        self.on_ack = on_ack
        self.reconnects = 0
        self.connected = threading.Event()
        self._ever_connected = False
        version = (MQTTProtocolVersion.MQTTv5 if cfg.protocol == "v5"
                   else MQTTProtocolVersion.MQTTv311)
        kwargs: dict[str, Any] = {} if cfg.protocol == "v5" else {"clean_session": True}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=version, **kwargs)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        if cfg.username:
            self.client.username_pw_set(cfg.username, password)
        if cfg.tls:
            self.client.tls_set(
                ca_certs=str(cfg.tls.ca_file),
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            self.client.tls_insecure_set(cfg.tls.insecure_skip_verify)
        self.client.will_set(will[0], will[1], qos=1, retain=True)
        self._jitter_backoff()
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    def _jitter_backoff(self) -> None:
        # paho doubles the delay itself; a random floor spreads many gateways after an outage
        floor = self.cfg.reconnect_min_s * random.uniform(0.5, 1.5)
        self.client.reconnect_delay_set(min_delay=max(1, round(floor)),
                                        max_delay=int(self.cfg.reconnect_max_s))

    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def stop(self, final: tuple[str, bytes] | None = None) -> None:
        if final is not None and self.connected.is_set():
            info = self.client.publish(final[0], final[1], qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, retain: bool = False,
                qos: int = READINGS_QOS) -> int | None:
        """Hand a message to paho; the mid, or None when it could not be queued now."""
        if not self.connected.is_set():
            return None
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return int(info.mid)

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object,
                    reason: Any, _props: object) -> None:
        if reason.is_failure:
            log.error("broker %s:%d refused the connection: %s (will retry)", self.cfg.host,
                      self.cfg.port, reason)
            return
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        log.info("connected to broker %s:%d", self.cfg.host, self.cfg.port)
        topic, payload = self.birth()
        client.publish(topic, payload, qos=1, retain=True)
        self.connected.set()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        log.error("cannot reach broker %s:%d (will retry with backoff)", self.cfg.host,
                  self.cfg.port)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object,
                       reason: Any, _props: object) -> None:
        if self.connected.is_set():
            log.warning("disconnected from broker: %s", reason)
        self.connected.clear()
        self._jitter_backoff()

    def _on_publish(self, _client: mqtt.Client, _userdata: object, mid: int, _reason: Any,
                    _props: object) -> None:
        self.on_ack(mid)
