"""Test support: service processes on free ports, their configs, an MQTT recorder, a test CA."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from collector.store.sql import Target
from devtools.broker import free_port, wait_for_port
from tests.support.engines import victoria_line

ROOT = Path(__file__).resolve().parents[2]


class Processes:
    """Child processes of one test, always stopped at its end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=log,
            stderr=log,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.children.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def sim(
        self,
        config_text: str,
        name: str = "sim",
        served_log: Path | None = None,
        ports: list[int] | None = None,
    ) -> subprocess.Popen[bytes]:
        path = self.root / f"{name}.toml"
        path.write_text(config_text)
        args = ["gateway.sim.cli", "--config", str(path)]
        if served_log:
            args += ["--served-log", str(served_log)]
        proc = self.spawn(name, *args)
        for port in ports or []:
            wait_for_port(port, 15)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.children):
            self.stop(proc)


def collector_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m collector.cli ARGS` from the repository root; a non-zero exit does not raise."""
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def wait_until(
    predicate: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.2
) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def sim_config(
    servers: list[tuple[int, list[tuple[int, str]]]], tick_s: float = 1.0, transport: str = "tcp"
) -> str:
    """Simulator TOML for [(port, [(unit, model), ...]), ...]."""
    lines = [f"tick_s = {tick_s}"]
    for port, meters in servers:
        lines += ["[[servers]]", f'transport = "{transport}"', f"port = {port}"]
        for unit, model in meters:
            lines += [
                "[[servers.meters]]",
                f"unit = {unit}",
                f'model = "{model}"',
                f"seed = {port % 100 + unit}",
                f"start_kwh = {1000 * unit}",
            ]
    return "\n".join(lines) + "\n"


def gateway_config(
    state_dir: Path,
    site: str,
    broker_port: int,
    bus_port: int,
    meters: list[tuple[int, str]],
    interval_s: float = 1.0,
    gateway_id: str = "gw1",
    extra: str = "",
) -> str:
    text = (
        f'[gateway]\nsite = "{site}"\nid = "{gateway_id}"\nstate_dir = "{state_dir}"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\nreconnect_max_s = 2\n\n'
        f"[health]\ninterval_s = 2\n\n"
        f'[[buses]]\nid = "b1"\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {bus_port}\n'
        f"timeout_s = 1.0\n\n"
    )
    for unit, model in meters:
        text += (
            f'[[meters]]\nid = "m{unit}"\nbus = "b1"\nunit = {unit}\nmodel = "{model}"\n'
            f"interval_s = {interval_s}\n\n"
        )
    return text + extra


def collector_config(
    db: Target,
    broker_port: int,
    client_id: str = "collector-test",
    extra: str = "",
    http_port: int | None = None,
) -> str:
    """A collector config for tests, on a SQLite file or a PostgreSQL URL (with the
    VictoriaMetrics the database keeps its raw readings in); with `http_port` its web pages
    and API listen on it."""
    http = (
        f'[http]\nenabled = true\nhost = "127.0.0.1"\nport = {http_port}\n\n'
        if http_port is not None
        else ""
    )
    return (
        f'[storage]\ndb = "{db}"\n{victoria_line(db)}\n[mqtt]\nhost = "127.0.0.1"\n'
        f'port = {broker_port}\nclient_id = "{client_id}"\n\n[intervals]\nrefresh_s = 1\n\n'
        + http
        + extra
    )


__all__ = [
    "Processes",
    "collector_config",
    "free_port",
    "gateway_config",
    "sim_config",
    "wait_until",
]


# --- MQTT test clients and a throw-away certificate authority (gateway MQTT tests) ---------
# (appended section: its own imports stay here)
from typing import Any  # noqa: E402


class MqttRecorder:
    """A QoS 1 subscriber with a persistent session that records every message it gets.

    The session outlives a broker restart (persistence on), so nothing published while
    this client is reconnecting is lost to it.
    """

    def __init__(
        self,
        port: int,
        topics: list[str],
        client_id: str = "recorder",
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        cert: tuple[Path, Path] | None = None,
    ) -> None:
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        if username:
            self.client.username_pw_set(username, password)
        if ca_file:
            self.client.tls_set(
                ca_certs=str(ca_file),
                certfile=str(cert[0]) if cert else None,
                keyfile=str(cert[1]) if cert else None,
            )
        self.client.reconnect_delay_set(1, 1)

        def on_connect(client: mqtt.Client, *_: object) -> None:
            client.subscribe([(t, 1) for t in topics])

        def on_subscribe(*_: object) -> None:
            self.subscribed.set()

        def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()
        wait_until(self.subscribed.is_set, 10, f"subscription of {client_id}")

    def payloads(self, suffix: str) -> list[dict[str, Any]]:
        import json

        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith(suffix)]

    def seqs(self) -> list[int]:
        return [int(m["seq"]) for m in self.payloads("/readings")]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_test_ca(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def issue(
        cn: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
        usage: list[x509.ObjectIdentifier],
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        if usage == [ExtendedKeyUsageOID.SERVER_AUTH]:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    paths: dict[str, Path] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = issue("sparwatt test ca", ca_key, name("sparwatt test ca"), ca_key, True, [])
    for label, cn, usage in [
        ("server", "127.0.0.1", [ExtendedKeyUsageOID.SERVER_AUTH]),
        ("client", "acme.gw1", [ExtendedKeyUsageOID.CLIENT_AUTH]),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(cn, key, ca_cert.subject, ca_key, False, usage)
        paths[f"{label}_cert"] = folder / f"{label}.crt"
        paths[f"{label}_key"] = folder / f"{label}.key"
        paths[f"{label}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key, paths[f"{label}_key"])
    paths["ca"] = folder / "ca.crt"
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    write_key(ca_key, folder / "ca.key")
    return paths
