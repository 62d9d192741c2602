"""The three transports end to end: RTU on a real pty pair, RTU over TCP, and scanning a bus."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.broker import free_port, wait_for_port
from gateway import meter_maps
from gateway.sim.device import FixedValues, MeterRegisters
from gateway.sim.known import known_values, tolerance
from gateway.sim.serial_pair import serial_pair
from gateway.sim.server import BackgroundServers
from tests.support.processes import ROOT

pytestmark = pytest.mark.integration

LIB = meter_maps.library()
BUS = {1: "eastron-sdm630", 2: "carlo-gavazzi-em24"}


def known_meter(unit: int, model: str) -> MeterRegisters:
    return MeterRegisters(
        unit=unit, meter_map=LIB[model], meter=FixedValues(known_values(LIB[model]))
    )


def cli(*args: str) -> tuple[int, object]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def assert_known_readings(results: object) -> None:
    assert isinstance(results, list)
    assert [(r["unit"], r["model"]) for r in results] == sorted(BUS.items())
    for r in results:
        meter = LIB[r["model"]]
        assert r["ok"], r
        assert sorted(r["values"]) == sorted(meter.quantities)
        for name, known in known_values(meter).items():
            assert abs(r["values"][name] - known) <= tolerance(meter, name), (r["model"], name)


@pytest.fixture
def rtu_line(tmp_path: Path) -> Iterator[Path]:
    """Two meters (units 1 and 2) on one virtual RS485 line; yields the gateway's end."""
    with serial_pair(tmp_path) as (meters_end, gateway_end), BackgroundServers() as servers:
        servers.serve(
            "rtu", [known_meter(u, m) for u, m in BUS.items()], device=str(meters_end), baud=38400
        )
        yield gateway_end


def bus_config(tmp_path: Path, bus: str) -> Path:
    meters = "".join(
        f'[[meters]]\nid = "m{u}"\nbus = "line"\nunit = {u}\nmodel = "{m}"\n'
        for u, m in BUS.items()
    )
    path = tmp_path / "gateway.toml"
    path.write_text(f'[gateway]\nsite = "s"\nid = "g"\n[[buses]]\nid = "line"\n{bus}\n{meters}')
    return path


def test_rtu_pty_two_meters_on_one_bus_read_their_known_values(
    tmp_path: Path, rtu_line: Path
) -> None:
    config = bus_config(
        tmp_path, f'transport = "rtu"\ndevice = "{rtu_line}"\nbaud = 38400\ntimeout_s = 0.5'
    )
    code, results = cli("read", str(config))
    assert code == 0, results
    assert_known_readings(results)


def test_rtu_over_tcp_two_meters_read_their_known_values(tmp_path: Path) -> None:
    port = free_port()
    with BackgroundServers() as servers:
        servers.serve("rtu-over-tcp", [known_meter(u, m) for u, m in BUS.items()], port=port)
        wait_for_port(port)
        config = bus_config(
            tmp_path,
            f'transport = "rtu-over-tcp"\nhost = "127.0.0.1"\nport = {port}\ntimeout_s = 0.5',
        )
        code, results = cli("read", str(config))
    assert code == 0, results
    assert_known_readings(results)


def test_scan_on_rtu_finds_both_units_and_guesses_their_models(rtu_line: Path) -> None:
    # the simulated meters answer from this process, which may be busy: a timeout too tight
    # for that would lose a unit that is there; the absent unit 3 costs one timeout
    code, found = cli("scan", "--port", str(rtu_line), "--units", "1-3", "--timeout", "1.0")
    assert code == 0, found
    assert isinstance(found, list)
    assert [(f["unit"], f["guess"]) for f in found] == sorted(BUS.items())


def test_scan_over_tcp_skips_units_a_gateway_reports_absent() -> None:
    # Behind a TCP gateway an absent unit answers exception 0Bh rather than staying silent.
    port = free_port()
    served = {1: "eastron-sdm630", 3: "carlo-gavazzi-em340", 4: "eastron-sdm120", 5: "sunspec-203"}
    with BackgroundServers() as servers:
        servers.serve("tcp", [known_meter(u, m) for u, m in served.items()], port=port)
        wait_for_port(port)
        code, found = cli("scan", "--host", f"127.0.0.1:{port}", "--units", "1-6")
    assert code == 0, found
    assert isinstance(found, list)
    # the SDM120 has no identify register: found, model unknown
    assert [(f["unit"], f["guess"]) for f in found] == [
        (1, "eastron-sdm630"),
        (3, "carlo-gavazzi-em340"),
        (4, None),
        (5, "sunspec-203"),
    ]
