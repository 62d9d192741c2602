"""Start a private Mosquitto broker on a free port in a temporary folder (demo and tests)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"nothing listens on {host}:{port} after {timeout_s} s")


class Mosquitto:
    """One broker process; `extra` is appended to the generated config (TLS, ACL, ...)."""

    def __init__(
        self,
        workdir: Path | None = None,
        port: int | None = None,
        extra: str = "",
        anonymous: bool = True,
    ) -> None:
        binary = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if binary is None:
            raise BrokerError("mosquitto is not installed (apt-get install -y mosquitto)")
        self.binary = binary
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="sparwatt-broker-"))
        self.port = port or free_port()
        self.extra = extra
        self.anonymous = anonymous
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            # started as root, mosquitto would switch to its own user and lose our temp folder
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            self.extra,
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> Mosquitto:
        self.write_config()
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port)
        except BrokerError:
            self.stop()
            raise BrokerError(
                f"mosquitto did not start; see {self.workdir}/mosquitto.log"
            ) from None
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
