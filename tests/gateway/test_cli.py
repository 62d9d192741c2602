"""Installer commands: meters, plan, check-config, and run refusing an overloaded RS485 line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import bus_budget, meter_maps, planner, settings
from sparwatt.wire import QUANTITIES
from tests.support.processes import ROOT

pytestmark = pytest.mark.integration

MODELS = sorted(meter_maps.library())


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def meters_json() -> dict[str, dict[str, object]]:
    done = cli("meters", "--json")
    assert done.returncode == 0, done.stderr
    return {m["id"]: m for m in json.loads(done.stdout)}


def test_meters_json_lists_exactly_the_shipped_models(
    meters_json: dict[str, dict[str, object]],
) -> None:
    assert sorted(meters_json) == MODELS


@pytest.mark.parametrize("model", MODELS)
def test_meters_json_gives_each_quantity_with_its_canonical_unit(
    meters_json: dict[str, dict[str, object]], model: str
) -> None:
    meter = meter_maps.library()[model]
    entry = meters_json[model]
    assert entry["quantities"] == {q: QUANTITIES[q].unit for q in meter.quantities}
    assert entry["identifiable"] == (meter.identify is not None)
    assert entry["requests"] == len(planner.plan(meter, meter.quantities))
    assert entry["source"] == meter.source


def test_plan_json_reads_all_sdm630_quantities_in_at_most_three_requests() -> None:
    done = cli("plan", "eastron-sdm630", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["requests"] == len(plan["blocks"]) <= 3
    read = {q for block in plan["blocks"] for q in block["quantities"]}
    assert read == set(meter_maps.library()["eastron-sdm630"].quantities)
    assert plan["line_ms"] == pytest.approx(sum(b["line_ms"] for b in plan["blocks"]), abs=0.2)


def test_check_config_reports_each_rs485_bus_utilisation() -> None:
    example = ROOT / "config" / "gateway.example.toml"
    done = cli("check-config", str(example), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    config = settings.load(example)
    rtu = [b for b in config.buses if b.transport == "rtu"]
    assert [r["bus"] for r in report["rs485"]] == [b.id for b in rtu]
    for entry, bus in zip(report["rs485"], rtu, strict=True):
        assert entry["utilisation"] == pytest.approx(
            bus_budget.bus_load(bus, config).utilisation, abs=1e-4
        )


def test_run_refuses_to_start_when_a_line_cannot_meet_its_intervals(tmp_path: Path) -> None:
    meters = "".join(
        f'[[meters]]\nid = "m{u}"\nbus = "line1"\nunit = {u}\n'
        f'model = "eastron-sdm630"\ninterval_s = 1\n'
        for u in range(1, 5)
    )
    path = tmp_path / "gw.toml"
    path.write_text(
        f'[gateway]\nsite = "s"\nid = "g"\nstate_dir = "{tmp_path}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = 9\n'
        f'[[buses]]\nid = "line1"\ntransport = "rtu"\ndevice = "/dev/null"\n'
        f"baud = 9600\n{meters}"
    )
    done = cli("run", str(path))
    assert done.returncode == 2
    assert "buses.line1" in done.stderr
    assert "9600 baud 8N1: 130% busy" in done.stderr
    assert "Traceback" not in done.stderr
