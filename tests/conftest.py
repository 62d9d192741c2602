"""Shared fixtures: real Mosquitto brokers, simulator and service processes on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sparwatt.broker import Mosquitto, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


class Processes:
    """Child processes of one test, always stopped at its end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=log,
                                cwd=ROOT, env={**os.environ, **(env or {})},
                                start_new_session=True)
        self.children.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def sim(self, config_text: str, name: str = "sim", served_log: Path | None = None,
            ports: list[int] | None = None) -> subprocess.Popen[bytes]:
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


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    yield p
    p.stop_all()


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str,
               every_s: float = 0.2) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def sim_config(servers: list[tuple[int, list[tuple[int, str]]]], tick_s: float = 1.0,
               transport: str = "tcp") -> str:
    """Simulator TOML for [(port, [(unit, model), ...]), ...]."""
    lines = [f"tick_s = {tick_s}"]
    for port, meters in servers:
        lines += ["[[servers]]", f'transport = "{transport}"', f"port = {port}"]
        for unit, model in meters:
            lines += ["[[servers.meters]]", f"unit = {unit}", f'model = "{model}"',
                      f"seed = {port % 100 + unit}", f"start_kwh = {1000 * unit}"]
    return "\n".join(lines) + "\n"


def gateway_config(state_dir: Path, site: str, broker_port: int, bus_port: int,
                   meters: list[tuple[int, str]], interval_s: float = 1.0,
                   gateway_id: str = "gw1", extra: str = "") -> str:
    text = (f'[gateway]\nsite = "{site}"\nid = "{gateway_id}"\nstate_dir = "{state_dir}"\n\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\nreconnect_max_s = 2\n\n'
            f'[health]\ninterval_s = 2\n\n'
            f'[[buses]]\nid = "b1"\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {bus_port}\n'
            f'timeout_s = 1.0\n\n')
    for unit, model in meters:
        text += (f'[[meters]]\nid = "m{unit}"\nbus = "b1"\nunit = {unit}\nmodel = "{model}"\n'
                 f"interval_s = {interval_s}\n\n")
    return text + extra


def collector_config(db: Path, broker_port: int, client_id: str = "collector-test",
                     extra: str = "") -> str:
    return (f'[storage]\ndb = "{db}"\n\n[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\n'
            f'client_id = "{client_id}"\n\n[intervals]\nrefresh_s = 1\n\n' + extra)


__all__ = ["Processes", "collector_config", "free_port", "gateway_config", "sim_config",
           "wait_until"]
