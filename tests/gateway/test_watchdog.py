"""systemd integration: sd_notify over a real NOTIFY_SOCKET, and the gateway's unit file."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from gateway import settings
from gateway.meter_maps import Function
from gateway.service import Gateway
from tests.support.processes import ROOT, free_port

UNIT = ROOT / "systemd" / "sparwatt-gateway.service"


class HangableBus:
    """A bus answering zeros at once, or never while `hang` is set (a stuck read)."""

    def __init__(self) -> None:
        self.hang = False
        self.released = asyncio.Event()

    async def read(self, _function: Function, _start: int, count: int, _unit: int) -> list[int]:
        if self.hang:
            await self.released.wait()
        return [0] * count

    def close(self) -> None:
        pass


def config(state_dir: Path, buses: int = 1) -> settings.GatewayConfig:
    """One meter per bus, each read every second."""
    return settings.GatewayConfig.model_validate(
        {
            "gateway": {"site": "acme", "id": "gw1", "state_dir": str(state_dir)},
            # nobody listens there: the MQTT side retries in the background, which is fine here
            "mqtt": {"host": "127.0.0.1", "port": free_port(), "reconnect_max_s": 2},
            # a request counts as hung after 2 x 0.2 s x 1 attempt + 5 s
            "buses": [
                {
                    "id": f"b{i}",
                    "transport": "tcp",
                    "host": "127.0.0.1",
                    "timeout_s": 0.2,
                    "retries": 0,
                }
                for i in range(1, buses + 1)
            ],
            "meters": [
                {
                    "id": f"m{i}",
                    "bus": f"b{i}",
                    "unit": 1,
                    "model": "eastron-sdm630",
                    "interval_s": 1,
                    "quantities": ["power_w"],
                }
                for i in range(1, buses + 1)
            ],
        }
    )


async def next_state(sock: socket.socket, timeout_s: float) -> str | None:
    loop = asyncio.get_running_loop()
    try:
        return (await asyncio.wait_for(loop.sock_recv(sock, 256), timeout_s)).decode()
    except TimeoutError:
        return None


async def watch(tmp_path: Path, buses: int = 1) -> list[str]:
    """Pings while polling, silence while bus b1 hangs, pings again once it answers.

    With more buses, the others keep answering all along."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    by_id = {f"b{i}": HangableBus() for i in range(1, buses + 1)}
    bus = by_id["b1"]
    gateway = Gateway(
        config(tmp_path / "state", buses),
        environ={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"},
        open_bus=lambda b: by_id[b.id],
    )
    stop = asyncio.Event()
    run = asyncio.create_task(gateway.run(stop))
    seen: list[str] = []
    try:
        seen.append(await next_state(sock, 10) or "nothing")
        for _ in range(3):
            seen.append(await next_state(sock, 5) or "no ping while polling")
        bus.hang = True
        # the poll loop counts as stuck 3 s (three intervals) after its last poll started,
        # or 5.4 s into the hung request; pings (every 0.2 s) must stop then, so a 1.5 s
        # silence has to come
        for _ in range(100):
            if await next_state(sock, 1.5) is None:
                seen.append("silent while stuck")
                break
        else:
            seen.append("pings went on while stuck")
        bus.hang = False
        bus.released.set()
        seen.append(await next_state(sock, 5) or "no ping after the loop recovered")
        stop.set()
        await asyncio.wait_for(run, 15)
        states = []
        while (state := await next_state(sock, 0.5)) is not None:
            states.append(state)
        seen.append(states[-1] if states else "no STOPPING")
    finally:
        stop.set()
        sock.close()
        if not run.done():
            run.cancel()
    return seen


@pytest.mark.integration
def test_watchdog_pings_reach_notify_socket_and_stop_while_poll_loop_is_stuck(
    tmp_path: Path,
) -> None:
    seen = asyncio.run(watch(tmp_path))
    assert seen == [
        "READY=1",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "silent while stuck",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


@pytest.mark.integration
def test_watchdog_stops_pinging_when_one_bus_hangs_while_another_polls_on(tmp_path: Path) -> None:
    seen = asyncio.run(watch(tmp_path, buses=2))
    assert seen == [
        "READY=1",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "silent while stuck",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_is_a_notify_service_with_watchdog_and_restart() -> None:
    unit = unit_settings()
    assert unit["Type"] == ["notify"]
    assert int(unit["WatchdogSec"][0]) >= 30
    assert unit["NotifyAccess"] == ["main"]
    assert unit["Restart"] == ["always"]
    assert "AF_UNIX" in unit["RestrictAddressFamilies"][0].split()  # the notify socket


def test_unit_grants_serial_ports_and_the_state_directory_the_config_uses() -> None:
    unit = unit_settings()
    assert "dialout" in unit["SupplementaryGroups"][0].split()
    assert {"char-ttyUSB rw", "char-ttyAMA rw"} <= set(unit["DeviceAllow"])
    example = settings.load(ROOT / "config" / "gateway.example.toml")
    assert example.gateway.state_dir == Path("/var/lib") / unit["StateDirectory"][0]


def test_unit_is_hardened() -> None:
    unit = unit_settings()
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "DevicePolicy": "closed",
        "CapabilityBoundingSet": "",
        "RestrictNamespaces": "yes",
        "MemoryDenyWriteExecute": "yes",
    }
    assert {k: unit[k][-1] for k in expected} == expected
    assert unit["User"] != ["root"]


def test_notify_reaches_an_abstract_socket_and_survives_a_missing_one(tmp_path: Path) -> None:
    from gateway import sdnotify

    name = f"sparwatt-test-{free_port()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": f"@{name}"})
        assert sock.recv(64) == b"READY=1"
    assert not sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not sdnotify.notify("READY=1", {})


def test_a_slow_request_within_its_timeouts_is_not_a_hang(tmp_path: Path) -> None:
    """A dead meter on a bus with long timeouts must not make the watchdog restart us."""
    from gateway.poller import Poller, hang_limit_s

    cfg = config(tmp_path / "state", buses=2)
    slow = cfg.buses[0].model_copy(update={"timeout_s": 30.0, "retries": 5})
    cfg = cfg.model_copy(update={"buses": [slow, cfg.buses[1]]})
    poller = Poller(cfg, lambda _r: None, open_bus=lambda _b: HangableBus())
    now = 1000.0
    poller.gates["b1"].busy_since = now - 30.0 * 6  # every attempt ran into its timeout
    assert poller.hung_bus(now) is None
    poller.gates["b1"].busy_since = now - hang_limit_s(slow) - 1
    assert poller.hung_bus(now) == ("b1", pytest.approx(hang_limit_s(slow) + 1))
    assert hang_limit_s(slow) == 2 * 30.0 * 6 + 5
