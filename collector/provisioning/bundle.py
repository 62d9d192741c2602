"""The installer's bundle: one tar.gz holding a gateway's config, CA certificate and secrets.

Unpacked as root with `tar -xzf BUNDLE -C /etc/sparwatt`: the members belong to the
`sparwatt-gateway` user (GNU tar maps the name when that user exists, else falls back to
root), secrets are 0600, and the folder itself becomes the service's (0750), so a config
pushed by the admin can replace gateway.toml there.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from sparwatt.errors import ProvisioningError

OWNER = "sparwatt-gateway"
SECRET, PUBLIC, CONFIG = 0o600, 0o644, 0o640


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    data: bytes
    mode: int


def _q(text: str) -> str:
    return json.dumps(text)  # a TOML basic string takes JSON's escapes


def gateway_toml(
    site: str,
    gateway: str,
    broker: tuple[str, int],
    install_dir: Path,
    client_cert: bool,
) -> str:
    """The gateway config an installer starts from: broker, identity and TLS filled in,
    buses and meters left as a commented example."""

    def where(name: str) -> str:
        return _q(str(install_dir / name))

    tls = f"[mqtt.tls]\nca_file = {where('ca.crt')}\n"
    if client_cert:
        tls += f"cert_file = {where('client.crt')}\nkey_file = {where('client.key')}\n"
    return f"""\
# Sparwatt gateway {site}/{gateway}, from `sparwatt-collector gateway add`.
# Unpack the bundle on the gateway with:  sudo tar -xzf BUNDLE -C {install_dir}
# then describe the meters below and check the file:
#   sparwatt-gateway check-config {install_dir}/gateway.toml
# The admin may later replace this file remotely (`sparwatt-collector gateway config push`).

[gateway]
site = {_q(site)}
id = {_q(gateway)}
state_dir = "/var/lib/sparwatt-gateway"

[mqtt]
host = {_q(broker[0])}
port = {broker[1]}
username = {_q(f"{site}.{gateway}")}
password_file = {where("mqtt-password")}

{tls}
# [home_assistant]              # MQTT discovery for the company's Home Assistant
# enabled = true
# prefix = "homeassistant"

# One [[buses]] entry per RS485 line or Modbus TCP endpoint, one [[meters]] entry per meter
# (`sparwatt-gateway scan` finds them, `sparwatt-gateway meters` lists the models):
# [[buses]]
# id = "rs485-main"
# transport = "rtu"             # "tcp", "rtu" or "rtu-over-tcp"
# device = "/dev/ttyUSB0"
# baud = 9600
#
# [[meters]]
# id = "main"
# bus = "rs485-main"
# unit = 1
# model = "eastron-sdm630"
# interval_s = 10
"""


def _entry(name: str, mode: int, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.size, info.mtime = mode, size, mtime
    info.uname = info.gname = OWNER
    info.uid = info.gid = 0  # where the gateway has no such user: root's, never someone else's
    return info


def write(path: Path, members: list[Member]) -> None:
    """Write the bundle, readable by its maker only: it holds the gateway's secrets."""
    now = int(time.time())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = _entry(".", 0o750, 0, now)
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for m in members:
            tar.addfile(_entry(m.name, m.mode, len(m.data), now), io.BytesIO(m.data))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET)
    except FileExistsError:
        raise ProvisioningError(f"{path}: already exists; give another --output") from None
    except OSError as exc:
        raise ProvisioningError(f"{path}: cannot write: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(buffer.getvalue())
