"""Home Assistant MQTT discovery: retained sensor configs per meter quantity, with unit,
device class and state class from the canonical vocabulary, and the state they point at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.broker import Mosquitto
from gateway import meter_maps
from gateway.home_assistant import HomeAssistant, discovery
from gateway.settings import GatewayConfig
from sparwatt import configfile, wire
from sparwatt.broker_acl import home_assistant_node
from tests.support.processes import (
    MqttRecorder,
    Processes,
    free_port,
    gateway_config,
    sim_config,
    wait_until,
)

SDM = "eastron-sdm630"
HA = '[home_assistant]\nenabled = true\nprefix = "homeassistant"\n'
NODE = home_assistant_node("acme", "gw1")


def config(meters: list[tuple[int, str]], extra: str = HA) -> GatewayConfig:
    text = gateway_config(Path("state"), "acme", 1883, 502, meters, extra=extra)
    return configfile.validate(GatewayConfig, configfile.parse_toml(text, "-"), "-")


def expected_fields(quantity: str) -> dict[str, object]:
    """What a sensor must say about a quantity, from the vocabulary alone."""
    q = wire.QUANTITIES[quantity]
    classes = {
        "W": "power",
        "V": "voltage",
        "A": "current",
        "var": "reactive_power",
        "VA": "apparent_power",
        "Hz": "frequency",
        "kWh": "energy",
        "": "power_factor",
    }
    fields: dict[str, object] = {
        "state_class": "measurement" if q.kind is wire.Kind.GAUGE else "total_increasing"
    }
    if q.unit:
        fields["unit_of_measurement"] = q.unit
    if q.unit in classes:
        fields["device_class"] = classes[q.unit]
    return fields


class FakeLink:
    def __init__(self) -> None:
        self.generation = 1
        self.sent: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> int:
        self.sent.append((topic, payload, retain))
        return len(self.sent)


def test_discovery_is_off_unless_enabled() -> None:
    assert discovery(config([(1, SDM)], extra="")) == {}


def test_a_sensor_per_meter_quantity_with_unit_and_classes_from_the_vocabulary() -> None:
    found = discovery(config([(1, SDM), (2, SDM)]))
    quantities = meter_maps.library()[SDM].quantities
    assert len(found) == 2 * len(quantities)
    for meter in ("m1", "m2"):
        for quantity in quantities:
            body = json.loads(found[f"homeassistant/sensor/{NODE}/{meter}_{quantity}/config"])
            assert {k: body.get(k) for k in expected_fields(quantity)} == expected_fields(quantity)
            assert body["state_topic"] == wire.state_topic("acme", "gw1", meter)
            assert body["value_template"] == f"{{{{ value_json.{quantity} }}}}"
            assert body["availability_topic"] == wire.topic("acme", "gw1", "status")
    assert len({json.loads(b)["unique_id"] for b in found.values()}) == len(found)


def test_a_new_config_removes_the_sensors_of_a_meter_that_went() -> None:
    link = FakeLink()
    ha = HomeAssistant(link, config([(1, SDM), (2, SDM)]))
    assert ha.announce()
    ha.reconfigure(config([(1, SDM)]))
    link.sent.clear()
    assert ha.announce()
    removed = [topic for topic, payload, retain in link.sent if payload == b"" and retain]
    assert sorted(removed) == sorted(
        t for t in discovery(config([(1, SDM), (2, SDM)])) if f"/{NODE}/m2_" in t
    )


@pytest.mark.integration
def test_gateway_publishes_retained_discovery_and_state_home_assistant_can_use(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    port = free_port()
    procs.sim(sim_config([(port, [(1, SDM)])]), ports=[port])
    gw = tmp_path / "gw.toml"
    gw.write_text(
        gateway_config(tmp_path / "state", "acme", broker.port, port, [(1, SDM)], extra=HA)
    )
    procs.spawn("gateway", "gateway.cli", "run", str(gw))
    quantities = meter_maps.library()[SDM].quantities
    state_topic = wire.state_topic("acme", "gw1", "m1")
    first = MqttRecorder(broker.port, ["homeassistant/#", state_topic], client_id="first")
    try:
        wait_until(lambda: first.payloads(state_topic), 20, "the meter's state")
        wait_until(
            lambda: (
                len([t for t, _, _ in first.messages if t.endswith("/config")]) >= len(quantities)
            ),
            20,
            "every sensor announced",
        )
    finally:
        first.stop()
    # what Home Assistant sees when it starts later: the retained configs and state
    late = MqttRecorder(broker.port, ["homeassistant/#", state_topic], client_id="home-assistant")
    try:
        wait_until(lambda: len(late.messages) >= len(quantities) + 1, 10, "retained messages")
        # live state updates may follow the retained messages; the first of each is retained
        configs = {t: json.loads(p) for t, p, _ in late.messages if t.endswith("/config")}
        assert all(retained for t, _, retained in late.messages if t.endswith("/config"))
        first_state = next(m for m in late.messages if m[0] == state_topic)
        assert first_state[2], "the state is retained too"
        assert set(configs) == {f"homeassistant/sensor/{NODE}/m1_{q}/config" for q in quantities}
        state = json.loads(first_state[1])
        for body in configs.values():
            key = body["value_template"].removeprefix("{{ value_json.").removesuffix(" }}")
            assert isinstance(state[key], float | int), key
        power = configs[f"homeassistant/sensor/{NODE}/m1_power_w/config"]
        assert (power["device_class"], power["state_class"], power["unit_of_measurement"]) == (
            "power",
            "measurement",
            "W",
        )
        energy = configs[f"homeassistant/sensor/{NODE}/m1_energy_import_kwh/config"]
        assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
            "energy",
            "total_increasing",
            "kWh",
        )
    finally:
        late.stop()
