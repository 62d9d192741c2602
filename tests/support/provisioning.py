"""Test support for provisioning and remote management: a template broker the collector CLI
can provision against, its collector config, and gateway configs from bundles."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.gateway.test_mqtt_tls import USERS, Broker


def collector_toml(
    folder: Path, broker: Broker, pid_file: Path | None = None, client_cert: bool = False
) -> Path:
    """A collector config that talks to the template broker as its admin user, and can
    provision gateways into its password file and ACL (reloading it through `pid_file`)."""
    secret = folder / "collector-mqtt-password"
    secret.write_text(USERS["collector"] + "\n")
    etc, pki = broker.folder / "etc", broker.folder / "pki"
    text = (
        f'[storage]\ndb = "{folder / "collector.db"}"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "collector"\n'
        f'password_file = "{secret}"\nclient_id = "collector-test"\n\n'
        f'[mqtt.tls]\nca_file = "{broker.certs["ca"]}"\n'
    )
    if client_cert:
        text += (
            f'cert_file = "{broker.certs["client_cert"]}"\n'
            f'key_file = "{broker.certs["client_key"]}"\n'
        )
    if pid_file is not None:
        text += (
            f'\n[provisioning]\npassword_file = "{etc / "passwd"}"\nacl_file = "{etc / "acl"}"\n'
            f'ca_cert = "{broker.certs["ca"]}"\nca_key = "{pki / "ca.key"}"\n'
            f'broker_host = "127.0.0.1"\nbroker_port = {broker.port}\n'
            f'reload_pid_file = "{pid_file}"\n'
        )
    path = folder / "collector.toml"
    path.write_text(text)
    return path


def unpack(bundle: Path, folder: Path) -> Path:
    """What the installer does on the gateway: `tar -xzf BUNDLE -C FOLDER`."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xzf", str(bundle), "-C", str(folder)], check=True)
    return folder / "gateway.toml"


def fill_in(config: Path, state_dir: Path, bus_port: int, meters: list[tuple[int, str]]) -> str:
    """The installer's part of a bundle's gateway.toml: the meters, and a state folder here."""
    text = config.read_text().replace('"/var/lib/sparwatt-gateway"', f'"{state_dir}"')
    text = text.replace("[mqtt]\n", "[mqtt]\nreconnect_min_s = 0.5\nreconnect_max_s = 1\n")
    text += (
        f'\n[health]\ninterval_s = 1\n\n[[buses]]\nid = "b1"\ntransport = "tcp"\n'
        f'host = "127.0.0.1"\nport = {bus_port}\n'
    )
    for unit, model in meters:
        text += f'\n[[meters]]\nid = "m{unit}"\nbus = "b1"\nunit = {unit}\nmodel = "{model}"\n'
        text += "interval_s = 1\n"
    config.write_text(text)
    return text
