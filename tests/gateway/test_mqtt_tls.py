"""The production broker template for real: TLS, password file, per-gateway ACL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from devtools.broker import free_port, wait_for_port
from tests.support.processes import (
    ROOT,
    MqttRecorder,
    Processes,
    gateway_config,
    make_test_ca,
    sim_config,
    wait_until,
)

pytestmark = pytest.mark.integration

TEMPLATE = ROOT / "config" / "mosquitto" / "sparwatt.conf"
ACL_SCRIPT = ROOT / "config" / "mosquitto" / "sparwatt-acl.py"
USERS = {"acme.gw1": "pw-gw1", "acme.gw2": "pw-gw2", "collector": "pw-collector"}


@dataclass
class Broker:
    port: int
    folder: Path
    certs: dict[str, Path]


def mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd")
    assert found, "mosquitto_passwd is missing (apt-get install -y mosquitto)"
    return found


def start_template_broker(
    folder: Path, require_certificate: bool = False
) -> tuple[Broker, subprocess.Popen[bytes]]:
    """The shipped template with its paths and port moved into `folder`."""
    certs = make_test_ca(folder / "pki")
    etc = folder / "etc"
    etc.mkdir(parents=True)
    passwd = etc / "passwd"
    for i, (user, password) in enumerate(USERS.items()):
        subprocess.run(
            [mosquitto_passwd(), *(["-c"] if i == 0 else []), "-b", str(passwd), user, password],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [sys.executable, str(ACL_SCRIPT), str(passwd), "-o", str(etc / "acl")], check=True
    )
    for name, key in [
        ("ca.crt", "ca"),
        ("server.crt", "server_cert"),
        ("server.key", "server_key"),
    ]:
        shutil.copy(certs[key], etc / name)
    port = free_port()
    text = TEMPLATE.read_text()
    text = text.replace("/etc/mosquitto/sparwatt/", f"{etc}/")
    text = text.replace("/var/lib/mosquitto/", f"{folder}/")
    text = text.replace("listener 8883", f"listener {port} 127.0.0.1")
    text = text.replace("log_dest syslog", "log_dest stderr")
    if require_certificate:
        text = text.replace("# require_certificate true", "require_certificate true")
    if os.geteuid() == 0:  # the mosquitto user could not read pytest's private tmp folder
        text += "user root\n"
    conf = folder / "mosquitto.conf"
    conf.write_text(text)
    log = (folder / "mosquitto.log").open("ab")
    proc = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
    except Exception:
        Processes.stop(proc)
        raise
    return Broker(port, folder, certs), proc


@pytest.fixture
def template_broker(tmp_path: Path) -> Iterator[Broker]:
    broker, proc = start_template_broker(tmp_path / "broker")
    yield broker
    Processes.stop(proc)


@pytest.fixture
def template_broker_mtls(tmp_path: Path) -> Iterator[Broker]:
    broker, proc = start_template_broker(tmp_path / "broker", require_certificate=True)
    yield broker
    Processes.stop(proc)


def write_gateway(
    tmp_path: Path,
    procs: Processes,
    broker: Broker,
    user: str,
    password: str,
    ca: Path,
    client_cert: bool = False,
    name: str = "gateway",
) -> Path:
    sim_port = free_port()
    procs.sim(
        sim_config([(sim_port, [(1, "eastron-sdm630")])]), name=f"sim-{name}", ports=[sim_port]
    )
    secret = tmp_path / f"{name}.password"
    secret.write_text(password + "\n")
    site, gateway = user.split(".")
    text = gateway_config(
        tmp_path / f"state-{name}",
        site,
        broker.port,
        sim_port,
        [(1, "eastron-sdm630")],
        gateway_id=gateway,
    )
    mqtt_keys = (
        f'username = "{user}"\npassword_file = "{secret}"\nreconnect_min_s = 1\n'
        f"reconnect_max_s = 1\n"
    )
    text = text.replace("reconnect_max_s = 2\n", mqtt_keys)
    text += f'[mqtt.tls]\nca_file = "{ca}"\n'
    if client_cert:
        text += (
            f'cert_file = "{broker.certs["client_cert"]}"\n'
            f'key_file = "{broker.certs["client_key"]}"\n'
        )
    config = tmp_path / f"{name}.toml"
    config.write_text(text)
    procs.spawn(name, "gateway.cli", "run", str(config))
    return config


def collector(broker: Broker, client_cert: bool = False) -> MqttRecorder:
    cert = (broker.certs["client_cert"], broker.certs["client_key"]) if client_cert else None
    return MqttRecorder(
        broker.port,
        ["sparwatt/v1/#"],
        client_id="collector",
        username="collector",
        password=USERS["collector"],
        ca_file=broker.certs["ca"],
        cert=cert,
    )


def test_gateway_publishes_over_tls_with_client_certificate_and_password_file(
    tmp_path: Path, procs: Processes, template_broker_mtls: Broker
) -> None:
    broker = template_broker_mtls
    sub = collector(broker, client_cert=True)
    try:
        write_gateway(
            tmp_path,
            procs,
            broker,
            "acme.gw1",
            USERS["acme.gw1"],
            broker.certs["ca"],
            client_cert=True,
        )
        wait_until(lambda: len(sub.seqs()) >= 2, 30, "readings over TLS")
        status = sub.payloads("/status")[0]
        assert status["state"] == "online"
    finally:
        sub.stop()
    assert "ERROR" not in procs.log("gateway")


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR gateway.publisher" in line]


def assert_one_clear_line_per_attempt(procs: Processes, reason: str) -> None:
    """Several attempts, each one ERROR line naming the cause; backoff, not a tight loop."""
    wait_until(lambda: len(error_lines(procs.log("gateway"))) >= 3, 30, "three attempts")
    first = len(error_lines(procs.log("gateway")))
    # With reconnect_min_s = reconnect_max_s = 1 every wait is 0.5 to 1 s: a 4 s window has
    # at most 9 attempts; a loop without backoff would log hundreds.
    threading.Event().wait(4)
    lines = error_lines(procs.log("gateway"))
    assert 2 <= len(lines) - first <= 9, lines
    assert all(re.search(reason, line) for line in lines), lines
    assert "Traceback" not in procs.log("gateway")


def test_wrong_password_logs_one_clear_error_per_attempt_and_backs_off(
    tmp_path: Path, procs: Processes, template_broker: Broker
) -> None:
    write_gateway(
        tmp_path,
        procs,
        template_broker,
        "acme.gw1",
        "not-the-password",
        template_broker.certs["ca"],
    )
    assert_one_clear_line_per_attempt(
        procs,
        r"refused the connection: (Bad user name or "
        r"password|Not authorized)",
    )
    assert procs.children[-1].poll() is None, "the gateway keeps running"


def test_untrusted_broker_certificate_logs_one_clear_error_per_attempt(
    tmp_path: Path, procs: Processes, template_broker: Broker
) -> None:
    other_ca = make_test_ca(tmp_path / "other-pki")["ca"]
    write_gateway(tmp_path, procs, template_broker, "acme.gw1", USERS["acme.gw1"], other_ca)
    assert_one_clear_line_per_attempt(
        procs,
        r"cannot connect to broker .*certificate verify "
        r"failed",
    )
    assert procs.children[-1].poll() is None, "the gateway keeps running"


def connect(broker: Broker, user: str) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(user, USERS[user])
    client.tls_set(ca_certs=str(broker.certs["ca"]))
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    wait_until(connected.is_set, 10, f"{user} connected")
    return client


def publish_acked(client: mqtt.Client, topic: str, body: str) -> bool:
    """Publish at QoS 1 and wait for the PUBACK; False when the broker refused it."""
    done = threading.Event()
    outcome: dict[int, bool] = {}

    def on_publish(_c: object, _u: object, mid: int, reason: object, _p: object) -> None:
        outcome[mid] = not getattr(reason, "is_failure", False)
        done.set()

    client.on_publish = on_publish
    info = client.publish(topic, body, qos=1)
    wait_until(done.is_set, 10, f"PUBACK for {topic}")
    return outcome[info.mid]


def test_acl_lets_a_gateway_write_only_under_its_own_subtree(template_broker: Broker) -> None:
    sub = collector(template_broker)
    gw1 = connect(template_broker, "acme.gw1")
    try:
        forged = publish_acked(gw1, "sparwatt/v1/acme/gw2/readings", json.dumps({"forged": 1}))
        other_site = publish_acked(gw1, "sparwatt/v1/other/gw1/readings", "{}")
        alert = publish_acked(gw1, "sparwatt/v1/acme/alerts", "{}")
        own = publish_acked(gw1, "sparwatt/v1/acme/gw1/health", json.dumps({"own": 1}))
        # the broker handles one connection's messages in order: once the own message
        # arrived, a forged one let through would have arrived before it
        wait_until(lambda: sub.payloads("/health"), 10, "the gateway's own message")
        topics = [t for t, _, _ in sub.messages]
        assert topics == ["sparwatt/v1/acme/gw1/health"]
        assert (forged, other_site, alert, own) == (False, False, False, True)
    finally:
        gw1.disconnect()
        gw1.loop_stop()
        sub.stop()


def test_acl_script_grants_gateways_their_subtree_and_readers_everything(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("acme.gw1:$7$x\ncollector:$7$y\nBad Name:$7$z\nplain:$7$w\n")
    run = subprocess.run(
        [sys.executable, str(ACL_SCRIPT), str(passwd)], capture_output=True, text=True, check=True
    )
    blocks = [b.splitlines() for b in run.stdout.split("\n\n")[1:] if b.strip()]
    assert blocks == [
        [
            "user acme.gw1",
            "topic write sparwatt/v1/acme/gw1/readings",
            "topic write sparwatt/v1/acme/gw1/status",
            "topic write sparwatt/v1/acme/gw1/health",
            "topic write sparwatt/v1/acme/gw1/config/result",
            "topic write sparwatt/v1/acme/gw1/reply/#",
            "topic write sparwatt/v1/acme/gw1/state/#",
            "topic read sparwatt/v1/acme/gw1/config/set",
            "topic read sparwatt/v1/acme/gw1/command",
        ],
        [
            "user collector",
            "topic read sparwatt/v1/#",
            "topic write sparwatt/v1/+/alerts",
            "topic write sparwatt/v1/+/+/config/set",
            "topic write sparwatt/v1/+/+/command",
        ],
    ]
    assert "'Bad Name'" in run.stderr
    assert "'plain'" in run.stderr


def test_shipped_broker_config_lets_the_collector_commit_a_backlog_in_large_batches(
    tmp_path: Path, template_broker: Broker
) -> None:
    """The collector acks after each commit: the broker's in-flight window sets its batch."""
    from collector.ingest.subscriber import Subscriber
    from collector.settings import Mqtt, Tls

    secret = tmp_path / "collector.password"
    secret.write_text(USERS["collector"])
    cfg = Mqtt(
        host="127.0.0.1",
        port=template_broker.port,
        username="collector",
        password_file=secret,
        tls=Tls(ca_file=template_broker.certs["ca"]),
        client_id="collector-batch",
    )

    first = Subscriber(cfg, USERS["collector"])
    first.start()
    wait_until(
        lambda: first.take(10, 0.05) == [] and first.connected.is_set(),
        10,
        "the collector's session",
    )
    first.stop()  # the session now queues for the collector while it is away
    gw1 = connect(template_broker, "acme.gw1")
    try:
        infos = [
            gw1.publish("sparwatt/v1/acme/gw1/readings", json.dumps({"seq": seq}), qos=1)
            for seq in range(300)
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        gw1.disconnect()
        gw1.loop_stop()
    sub = Subscriber(cfg, USERS["collector"])
    sub.start()
    try:
        batch = sub.take(500, 0.5, first_wait_s=10)
        assert len(batch) == 300
        assert sorted(json.loads(m.payload)["seq"] for m in batch) == list(range(300))
    finally:
        sub.stop()
