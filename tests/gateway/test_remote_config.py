"""Remote configuration for real: the collector's admin user pushes a config over the TLS
broker with ACLs; the gateway validates it, switches without losing a reading and keeps it,
or refuses it and polls on as before. Pushes from anyone else never reach it."""

from __future__ import annotations

import itertools
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import remote_config
from gateway.outbox import Outbox
from gateway.settings import GatewayConfig
from sparwatt import configfile, wire
from sparwatt.errors import ConfigError
from tests.gateway.test_mqtt_tls import (
    USERS,
    Broker,
    connect,
    publish_acked,
    start_template_broker,
)
from tests.support.processes import (
    ROOT,
    MqttRecorder,
    Processes,
    collector_cli,
    free_port,
    gateway_config,
    sim_config,
    wait_until,
)
from tests.support.provisioning import collector_toml

SDM = "eastron-sdm630"


@dataclass
class Rig:
    broker: Broker
    collector: Path  # the admin's collector config
    gateway: Path  # the running gateway's config file
    state: Path
    sim_port: int
    sub: MqttRecorder
    proc: subprocess.Popen[bytes]

    def config(self, meters: list[tuple[int, str]], interval_s: float = 1.0) -> str:
        """A gateway config as the rig's gateway runs it, with other meters or interval."""
        text = gateway_config(
            self.state, "acme", self.broker.port, self.sim_port, meters, interval_s=interval_s
        )
        secret = self.gateway.parent / "gw1.password"
        text = text.replace(
            "reconnect_max_s = 2\n",
            f'reconnect_max_s = 2\nusername = "acme.gw1"\npassword_file = "{secret}"\n',
        )
        return text.replace("[health]\ninterval_s = 2", "[health]\ninterval_s = 1") + (
            f'[mqtt.tls]\nca_file = "{self.broker.certs["ca"]}"\n'
        )

    def push(self, path: Path) -> subprocess.CompletedProcess[str]:
        return collector_cli(
            "gateway", "config", "push", "--site", "acme", "--id", "gw1", str(path),
            "--config", str(self.collector),
        )  # fmt: skip

    def health(self) -> dict[str, object]:
        return self.sub.payloads("/acme/gw1/health")[-1]

    def readings(self, meter: str) -> list[datetime]:
        return sorted(
            datetime.fromisoformat(str(r["ts"]))
            for batch in self.sub.payloads("/acme/gw1/readings")
            for r in batch["readings"]
            if r["meter"] == meter
        )


@pytest.fixture
def rig(tmp_path: Path, procs: Processes) -> Iterator[Rig]:
    broker, proc = start_template_broker(tmp_path / "broker")
    sim_port = free_port()
    procs.sim(sim_config([(sim_port, [(1, SDM), (2, SDM)])]), ports=[sim_port])
    (tmp_path / "gw1.password").write_text(USERS["acme.gw1"])
    sub = MqttRecorder(
        broker.port,
        ["sparwatt/v1/#"],
        client_id="watcher",
        username="collector",
        password=USERS["collector"],
        ca_file=broker.certs["ca"],
    )
    rig = Rig(
        broker,
        collector_toml(tmp_path, broker),
        tmp_path / "gateway.toml",
        tmp_path / "state",
        sim_port,
        sub,
        proc,
    )
    rig.gateway.write_text(rig.config([(1, SDM)]))
    gateway = procs.spawn("gateway", "gateway.cli", "run", str(rig.gateway))
    try:
        wait_until(lambda: len(rig.readings("m1")) >= 2, 20, "the first readings")
        yield rig
    finally:
        Processes.stop(gateway)
        sub.stop()
        Processes.stop(proc)


@pytest.mark.integration
def test_new_meter_and_interval_apply_within_10_s_without_a_lost_reading_or_seq_gap(
    rig: Rig, procs: Processes, tmp_path: Path
) -> None:
    new = tmp_path / "new.toml"
    new.write_text(rig.config([(1, SDM), (2, SDM)], interval_s=2.0))
    version = wire.config_version(new.read_text())
    began = time.monotonic()
    done = rig.push(new)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began < 10
    assert done.stdout.strip() == f"acme/gw1 runs config {version} ({new})"
    switched = wait_until(lambda: rig.readings("m2"), 10, "the new meter's readings")
    assert isinstance(switched, list)
    wait_until(lambda: rig.health().get("config_version") == version, 10, "health naming it")
    assert rig.gateway.read_text() == new.read_text(), "kept in the gateway's config file"
    wait_until(lambda: len(rig.readings("m2")) >= 3, 15, "m2 polling on")

    # m1 polled on across the switch (no pause of two intervals), every 2 s after it
    m1 = rig.readings("m1")
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(m1)]
    assert max(gaps) < 3.5, gaps
    later = [
        (b - a).total_seconds() for a, b in itertools.pairwise(t for t in m1 if t > switched[0])
    ]
    assert statistics.median(later) == pytest.approx(2.0, abs=0.3), later

    # every batch the gateway numbered arrived, none twice-numbered, none missing
    gateway = procs.children[-1]
    Processes.stop(gateway, signal.SIGTERM)
    assert gateway.returncode == 0
    outbox = Outbox(rig.state / "outbox.db", max_bytes=10**9, max_age_s=10**9)
    try:
        next_seq, depth = outbox.next_seq(), outbox.stats().depth
    finally:
        outbox.close()
    assert depth == 0
    wait_until(lambda: set(rig.sub.seqs()) == set(range(next_seq)), 10, "every seq delivered")
    result = rig.sub.payloads("/acme/gw1/config/result")[-1]
    assert (result["ok"], result["version"], result["running_version"]) == (True, version, version)


@pytest.mark.integration
def test_an_invalid_config_is_refused_with_check_configs_lines_and_the_old_one_polls_on(
    rig: Rig, procs: Processes, tmp_path: Path
) -> None:
    before_text = rig.gateway.read_text()
    before = rig.health()["config_version"]
    bad = tmp_path / "bad.toml"
    bad.write_text(rig.config([(1, SDM), (2, SDM)]).replace("unit = 2", "unit = 300"))
    checked = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check-config", str(bad)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert checked.returncode == 2
    done = rig.push(bad)
    assert done.returncode == 1
    first, *errors = done.stderr.splitlines()
    assert first.startswith(f"acme/gw1 refused config {wire.config_version(bad.read_text())}")
    assert (
        errors
        == checked.stderr.splitlines()
        == [f"{bad}: meters[1].unit: Input should be less than or equal to 247 (got 300)"]
    )
    result = rig.sub.payloads("/acme/gw1/config/result")[-1]
    assert (result["ok"], result["running_version"], result["errors"]) == (False, before, errors)
    count = len(rig.readings("m1"))
    wait_until(lambda: len(rig.readings("m1")) >= count + 2, 10, "the old config polling on")
    assert rig.readings("m2") == []
    assert rig.health()["config_version"] == before
    assert rig.gateway.read_text() == before_text


@pytest.mark.integration
def test_pushes_from_a_gateway_user_or_for_another_gateway_have_no_effect(
    rig: Rig, procs: Processes
) -> None:
    before = rig.health()["config_version"]
    text = rig.config([(1, SDM), (2, SDM)])
    push = wire.encode(
        wire.ConfigPush(version=wire.config_version(text), source="evil.toml", config=text)
    )
    topic = wire.config_set_topic("acme", "gw1")
    # not an admin: the broker refuses the publish (the gateway itself included)
    for user in ("acme.gw2", "acme.gw1"):
        client = connect(rig.broker, user)
        try:
            assert publish_acked(client, topic, push.decode()) is False, user
        finally:
            client.disconnect()
            client.loop_stop()

    # the admin, but a config for acme/gw2 sent to gw1: gw1 ignores it and logs why
    other = rig.config([(1, SDM), (2, SDM)]).replace('id = "gw1"', 'id = "gw2"')
    reply = admin_request(
        rig,
        topic,
        wire.encode(
            wire.ConfigPush(version=wire.config_version(other), source="gw2.toml", config=other)
        ),
    )
    assert reply["ok"] is False
    assert reply["errors"] == [
        "gw2.toml: gateway: this config is for acme/gw2, not for this gateway (acme/gw1); ignored"
    ]
    assert "this config is for acme/gw2" in procs.log("gateway")
    assert "evil.toml" not in procs.log("gateway")
    count = len(rig.readings("m1"))
    wait_until(lambda: len(rig.readings("m1")) >= count + 2, 10, "polling on")
    assert rig.readings("m2") == []
    assert rig.health()["config_version"] == before


def admin_request(rig: Rig, topic: str, payload: bytes) -> dict[str, object]:
    """A request as the admin with MQTT v5 Response Topic and Correlation Data; the reply."""
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    answer = wire.reply_topic("acme", "gw1", "test")
    got: list[tuple[bytes, object]] = []
    ready = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="admin-test", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set("collector", USERS["collector"])
    client.tls_set(ca_certs=str(rig.broker.certs["ca"]))
    client.on_connect = lambda c, *_: c.subscribe(answer, qos=1)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, m: got.append(
        (bytes(m.payload), getattr(m.properties, "CorrelationData", None))
    )
    client.connect("127.0.0.1", rig.broker.port)
    client.loop_start()
    try:
        wait_until(ready.is_set, 10, "the admin's subscription")
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = answer
        props.CorrelationData = b"c-1"
        client.publish(topic, payload, qos=1, properties=props)
        wait_until(lambda: got, 10, "the gateway's answer")
    finally:
        client.disconnect()
        client.loop_stop()
    body, correlation = got[0]
    assert correlation == b"c-1"
    return json.loads(body)  # type: ignore[no-any-return]


# ---- the checks a running gateway adds to check-config's, without a broker


def running(text: str) -> GatewayConfig:
    return configfile.validate(GatewayConfig, configfile.parse_toml(text, "-"), "-")


def base() -> str:
    return gateway_config(Path("state"), "acme", 8883, 502, [(1, SDM)])


def push(text: str, source: str = "new.toml") -> wire.ConfigPush:
    return wire.ConfigPush(version=wire.config_version(text), source=source, config=text)


def problems(text: str, version: str | None = None) -> list[str]:
    message = push(text)
    if version is not None:
        message = message.model_copy(update={"version": version})
    with pytest.raises(ConfigError) as caught:
        remote_config.check(message, running(base()))
    return caught.value.problems


def test_a_push_whose_version_does_not_match_its_text_is_refused() -> None:
    assert problems(base(), "000000000000") == [
        "new.toml: version 000000000000 does not match the text sent"
    ]


def test_broker_settings_state_folder_and_inflight_window_stay_as_they_are() -> None:
    changed = base().replace("port = 8883", "port = 8884")
    changed = changed.replace('state_dir = "state"', 'state_dir = "elsewhere"')
    changed += "[outbox]\nmax_inflight = 10\n"
    assert problems(changed) == [
        "new.toml: gateway.state_dir: cannot be changed remotely (running: 'state'); "
        "change it on site",
        "new.toml: mqtt: cannot be changed remotely (a mistake would cut the gateway off "
        "from the broker); change it on site",
        "new.toml: outbox.max_inflight: cannot be changed while connected (running: 50); "
        "change it on site",
    ]


def test_a_config_naming_no_gateway_gets_check_configs_own_line() -> None:
    text = base().replace('[gateway]\nsite = "acme"\nid = "gw1"\n', "[gateway]\n")
    assert problems(text) == [
        "new.toml: gateway.site: Field required",
        "new.toml: gateway.id: Field required",
    ]


def test_a_missing_serial_device_keeps_a_valid_config_from_starting() -> None:
    text = base() + '[[buses]]\nid = "line"\ntransport = "rtu"\ndevice = "/dev/no-such-tty"\n'
    assert remote_config.start_problems(running(text), "new.toml") == [
        "new.toml: buses[1].device: no such device (got '/dev/no-such-tty')"
    ]


def test_the_config_file_is_replaced_whole_keeping_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("old\n")
    path.chmod(0o640)
    remote_config.save(path, "new\n")
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.toml"]
    assert remote_config.version_of(path) == wire.config_version("new\n")
