"""Home Assistant MQTT discovery: one sensor per meter quantity, fed with each new reading.

With `[home_assistant] enabled = true` the gateway publishes, on every connection, a
retained discovery config per meter and quantity under
`<prefix>/sensor/<node>/<meter>_<quantity>/config`, and after every poll the meter's newest
values (retained) on `sparwatt/v1/<site>/<gateway>/state/<meter>`. Availability follows the
gateway's status topic (online / offline, also the last will). Unit, device class and state
class come from the canonical vocabulary (sparwatt/wire.py QUANTITIES).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Protocol, cast

from gateway import meter_maps
from gateway.settings import GatewayConfig
from sparwatt import __version__, wire
from sparwatt.broker_acl import home_assistant_node

log = logging.getLogger(__name__)

# Home Assistant's sensor device classes for our units. Reactive energy (kvarh) gets none:
# older Home Assistant versions reject a class they do not know, and the unit says enough.
DEVICE_CLASS = {
    "W": "power",
    "V": "voltage",
    "A": "current",
    "var": "reactive_power",
    "VA": "apparent_power",
    "Hz": "frequency",
    "kWh": "energy",
    "": "power_factor",
}
STATE_CLASS = {wire.Kind.GAUGE: "measurement", wire.Kind.COUNTER: "total_increasing"}


class Link(Protocol):
    """What discovery needs from the MQTT side (the gateway's Publisher)."""

    @property
    def generation(self) -> int: ...

    def publish(
        self, topic: str, payload: bytes, retain: bool = False, qos: int = 1
    ) -> int | None: ...


def sensor(config: GatewayConfig, meter_id: str, quantity: str) -> tuple[str, dict[str, object]]:
    """Discovery topic and config of one sensor."""
    ident = config.gateway
    node = home_assistant_node(ident.site, ident.id)
    meter = next(m for m in config.meters if m.id == meter_id)
    mapped = meter_maps.library()[meter.model]
    q = wire.QUANTITIES[quantity]
    body: dict[str, object] = {
        "name": q.description,
        "unique_id": f"{node}_{meter_id}_{quantity}",
        "state_topic": wire.state_topic(ident.site, ident.id, meter_id),
        "value_template": f"{{{{ value_json.{quantity} }}}}",
        "state_class": STATE_CLASS[q.kind],
        "availability_topic": wire.topic(ident.site, ident.id, "status"),
        "availability_template": "{{ value_json.state }}",
        "payload_available": wire.GatewayState.ONLINE.value,
        "payload_not_available": wire.GatewayState.OFFLINE.value,
        "device": {
            "identifiers": [f"{node}_{meter_id}"],
            "name": f"{meter_id} ({ident.site}/{ident.id})",
            "manufacturer": mapped.manufacturer,
            "model": mapped.model,
        },
        "origin": {"name": "Sparwatt", "sw_version": __version__},
    }
    if q.unit:
        body["unit_of_measurement"] = q.unit
    if q.unit in DEVICE_CLASS:
        body["device_class"] = DEVICE_CLASS[q.unit]
    prefix = config.home_assistant.prefix
    return f"{prefix}/sensor/{node}/{meter_id}_{quantity}/config", body


def discovery(config: GatewayConfig) -> dict[str, bytes]:
    """Every sensor's discovery message for this config; none when discovery is off."""
    if not config.home_assistant.enabled:
        return {}
    out = {}
    for meter in config.meters:
        for quantity in meter.wanted(meter_maps.library()[meter.model]):
            topic, body = sensor(config, meter.id, quantity)
            out[topic] = json.dumps(body).encode()
    return out


class HomeAssistant:
    """Keeps the discovery configs announced and the state topics fed."""

    def __init__(self, link: Link, config: GatewayConfig) -> None:
        self.link = link
        self.config = config
        self._announced = -1  # the link generation discovery was last published on
        self._published: set[str] = set()
        self._last: dict[str, dict[str, float]] = {}

    def reconfigure(self, config: GatewayConfig) -> None:
        """A new config: announce again on the next round, removing sensors that went."""
        self.config = config
        self._announced = -1
        kept = {m.id for m in config.meters}
        self._last = {k: v for k, v in self._last.items() if k in kept}

    def announce(self) -> bool:
        wanted = discovery(self.config)
        # an empty retained message removes the entity in Home Assistant
        gone = dict.fromkeys(self._published - wanted.keys(), b"")
        for topic, payload in (gone | wanted).items():
            if self.link.publish(topic, payload, retain=True, qos=1) is None:
                return False
        if wanted or gone:
            log.info("home assistant: %d sensors announced, %d removed", len(wanted), len(gone))
        self._published = set(wanted)
        return True

    def state(self, reading: dict[str, object]) -> None:
        """The meter's newest value of every quantity read, as one retained message."""
        if not self.config.home_assistant.enabled:
            return
        ident = self.config.gateway
        meter = str(reading["meter"])
        values = self._last.setdefault(meter, {})
        values.update(cast(dict[str, float], reading["values"]))
        body = {**values, "ts": reading["ts"]}
        self.link.publish(
            wire.state_topic(ident.site, ident.id, meter),
            json.dumps(body).encode(),
            retain=True,
            qos=0,
        )

    async def run(self, stop: asyncio.Event, tick_s: float = 0.5) -> None:
        """Announce on every new connection and after every new config."""
        while not stop.is_set():
            generation = self.link.generation  # 0 until the first connection
            if generation and generation != self._announced and self.announce():
                self._announced = generation
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_s)
