"""Every shipped model: known values served at its published addresses come back exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devtools.broker import free_port, wait_for_port
from gateway import meter_maps
from gateway.sim.device import FixedValues, MeterRegisters
from gateway.sim.known import known_values, tolerance
from gateway.sim.server import BackgroundServers
from tests.support.processes import ROOT

pytestmark = pytest.mark.integration

MODELS = sorted(meter_maps.library())
UNITS = {model: i + 1 for i, model in enumerate(MODELS)}


@pytest.fixture(scope="module")
def library_bus() -> Iterator[int]:
    """One Modbus TCP endpoint with every shipped model behind it, unit by unit."""
    lib = meter_maps.library()
    port = free_port()
    with BackgroundServers() as servers:
        servers.serve(
            "tcp",
            [
                MeterRegisters(
                    unit=UNITS[m], meter_map=lib[m], meter=FixedValues(known_values(lib[m]))
                )
                for m in MODELS
            ],
            port=port,
        )
        wait_for_port(port)
        yield port


def gateway_read(*args: str) -> tuple[int, list[dict[str, object]]]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "read", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("model", MODELS)
def test_read_json_returns_the_served_known_values_in_canonical_units(
    library_bus: int, model: str
) -> None:
    meter = meter_maps.library()[model]
    code, results = gateway_read(
        "--model", model, "--host", f"127.0.0.1:{library_bus}", "--unit", str(UNITS[model])
    )
    assert code == 0, results
    (result,) = results
    values = result["values"]
    assert isinstance(values, dict)
    expected = known_values(meter)
    assert sorted(values) == sorted(expected), result
    for name, known in expected.items():
        assert abs(values[name] - known) <= tolerance(meter, name), (
            f"{name}: read {values[name]}, served {known}"
        )
    assert result["invalid"] == []
