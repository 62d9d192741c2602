"""Provisioning for real: `gateway add` -> bundle -> a gateway started from it publishes
through the TLS broker with passwords and ACL; `gateway revoke` locks it out; one gateway's
credentials cannot write another's topics."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.provisioning import passwords
from tests.gateway.test_mqtt_tls import Broker, mosquitto_passwd, start_template_broker
from tests.support.processes import (
    ROOT,
    MqttRecorder,
    Processes,
    collector_cli,
    free_port,
    sim_config,
    wait_until,
)
from tests.support.provisioning import collector_toml, fill_in, unpack

pytestmark = pytest.mark.integration


@pytest.fixture
def provisioned_broker(tmp_path: Path) -> Iterator[tuple[Broker, Path]]:
    """The shipped broker template (TLS, passwords, ACL, client certificates required) and a
    collector config that provisions into it, reloading it through a pid file."""
    broker, proc = start_template_broker(tmp_path / "broker", require_certificate=True)
    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text(f"{proc.pid}\n")
    try:
        yield broker, collector_toml(tmp_path, broker, pid_file, client_cert=True)
    finally:
        Processes.stop(proc)


def add(config: Path, site: str, gateway: str, folder: Path, *extra: str) -> Path:
    out = folder / f"{site}.{gateway}.tgz"
    done = collector_cli(
        "gateway", "add", "--site", site, "--id", gateway, "--output", str(out),
        "--install-dir", str(folder / gateway), "--config", str(config), *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def start_gateway(
    procs: Processes, tmp_path: Path, name: str, config: Path, meters: list[tuple[int, str]]
) -> None:
    port = free_port()
    procs.sim(sim_config([(port, meters)]), name=f"sim-{name}", ports=[port])
    fill_in(config, tmp_path / f"state-{name}", port, meters)
    procs.spawn(name, "gateway.cli", "run", str(config))


def recorder(broker: Broker, client_cert: bool) -> MqttRecorder:
    return MqttRecorder(
        broker.port,
        ["sparwatt/v1/#"],
        client_id="watcher",
        username="collector",
        password="pw-collector",
        ca_file=broker.certs["ca"],
        cert=(broker.certs["client_cert"], broker.certs["client_key"]) if client_cert else None,
    )


def readings_of(sub: MqttRecorder, site: str, gateway: str) -> list[dict[str, object]]:
    return sub.payloads(f"/{site}/{gateway}/readings")


def test_gateway_add_bundle_runs_a_gateway_over_tls_and_revoke_locks_it_out(
    tmp_path: Path, procs: Processes, provisioned_broker: tuple[Broker, Path]
) -> None:
    broker, config = provisioned_broker
    etc = broker.folder / "etc"
    out = tmp_path / "acme.gw7.tgz"
    done = collector_cli(
        "gateway", "add", "--site", "acme", "--id", "gw7", "--cert", "--output", str(out),
        "--install-dir", str(tmp_path / "gw7"), "--config", str(config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"sudo tar -xzf acme.gw7.tgz -C {tmp_path / 'gw7'}" in done.stdout

    # one file, readable by its maker only; secrets 0600 inside
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with tarfile.open(out) as tar:
        modes = {m.name: stat.S_IMODE(m.mode) for m in tar.getmembers()}
        password = tar.extractfile("mqtt-password").read().decode().strip()  # type: ignore[union-attr]
    assert modes == {
        ".": 0o750,
        "ca.crt": 0o644,
        "client.crt": 0o644,
        "client.key": 0o600,
        "gateway.toml": 0o640,
        "mqtt-password": 0o600,
    }
    assert password not in done.stdout + done.stderr, "the password is never printed"
    (entry,) = [e for e in (etc / "passwd").read_text().splitlines() if e.startswith("acme.gw7:")]
    assert password not in entry  # hashed
    assert "user acme.gw7\n" in (etc / "acl").read_text()

    gateway_toml = unpack(out, tmp_path / "gw7")
    assert stat.S_IMODE((tmp_path / "gw7" / "client.key").stat().st_mode) == 0o600
    # as it ships, the config wants its meters described, and says so
    checked = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check-config", str(gateway_toml)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert checked.returncode == 2
    assert f"{gateway_toml}: buses: Field required" in checked.stderr

    sub = recorder(broker, client_cert=True)
    try:
        start_gateway(procs, tmp_path, "gw7", gateway_toml, [(1, "eastron-sdm630")])
        wait_until(lambda: len(readings_of(sub, "acme", "gw7")) >= 2, 20, "readings over TLS")
        assert sub.payloads("/acme/gw7/status")[0]["state"] == "online"

        done = collector_cli(
            "gateway", "revoke", "--site", "acme", "--id", "gw7", "--config", str(config)
        )
        assert done.returncode == 0, done.stderr
        assert "acme.gw7:" not in (etc / "passwd").read_text()
        assert "acme.gw7" not in (etc / "acl").read_text()
        # the reload drops the connection and every new attempt is refused
        wait_until(
            lambda: "refused the connection" in procs.log("gw7"), 15, "the broker refusing gw7"
        )
        seen = len(readings_of(sub, "acme", "gw7"))
        threading.Event().wait(3)
        assert len(readings_of(sub, "acme", "gw7")) == seen
        assert procs.children[-1].poll() is None, "the gateway keeps trying, it does not crash"
    finally:
        sub.stop()

    listed = collector_cli("gateway", "provisioned", "--json", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert {"site": "acme", "gateway": "gw7"} not in json.loads(listed.stdout)


def test_one_gateways_credentials_cannot_publish_into_another_gateways_topics(
    tmp_path: Path, procs: Processes
) -> None:
    broker, proc = start_template_broker(tmp_path / "broker")
    try:
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(str(proc.pid))
        config = collector_toml(tmp_path, broker, pid_file)
        own = unpack(add(config, "acme", "gw7", tmp_path), tmp_path / "gw7")
        other = unpack(add(config, "acme", "gw8", tmp_path), tmp_path / "gw8")
        # gw8's bundle, but claiming to be gw7: its credentials say acme.gw8
        other.write_text(other.read_text().replace('id = "gw8"', 'id = "gw7"'))
        sub = recorder(broker, client_cert=False)
        try:
            start_gateway(procs, tmp_path, "gw7", own, [(1, "eastron-sdm630")])
            start_gateway(procs, tmp_path, "impostor", other, [(5, "eastron-sdm630")])
            wait_until(
                lambda: (
                    "broker rejected batch" in procs.log("impostor")
                    or "refused the connection" in procs.log("impostor")
                ),
                20,
                "the broker refusing the impostor",
            )
            # the rightful gateway's readings arrive meanwhile, none of the impostor's meter
            wait_until(lambda: len(readings_of(sub, "acme", "gw7")) >= 3, 20, "gw7's readings")
            meters = {
                r["meter"]
                for batch in readings_of(sub, "acme", "gw7")
                for r in batch["readings"]  # type: ignore[attr-defined]
            }
            assert meters == {"m1"}
            statuses = sub.payloads("/acme/gw7/status")
            assert all(s["meters"] == ["m1"] for s in statuses), statuses
        finally:
            sub.stop()
    finally:
        Processes.stop(proc)


def test_passwords_are_hashed_as_mosquitto_passwd_hashes_them(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(
        [mosquitto_passwd(), "-c", "-b", str(path), "acme.gw1", "s3cret"],
        check=True,
        capture_output=True,
    )
    encoded = path.read_text().strip().partition(":")[2]
    salt = base64.b64decode(encoded.split("$")[3])
    assert passwords.hash_password("s3cret", salt) == encoded
