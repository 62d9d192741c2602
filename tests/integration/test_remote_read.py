"""Remote installer commands for real: a simulated meter read (and its bus scanned) by a
running gateway on the collector's request, through Mosquitto, from the command line and from
the web API."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from collector.cli.main import main as collector_main
from collector.store import Reader
from devtools.broker import Mosquitto, wait_for_port
from gateway import meter_maps
from sparwatt.wire import QUANTITIES
from tests.support.processes import (
    Processes,
    collector_cli,
    collector_config,
    free_port,
    gateway_config,
    sim_config,
    wait_until,
)

pytestmark = pytest.mark.integration

SDM = "eastron-sdm630"


def token(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> str:
    # in this process: the command is the same, minus a second of start-up
    assert collector_main(["token", "add", "--name", "t", "--config", str(config), *args]) == 0
    found = re.search(r"spw_[\w-]+", capsys.readouterr().out)
    assert found
    return found[0]


def post(url: str, bearer: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, method="POST", headers={"Authorization": f"Bearer {bearer}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_meter_is_read_on_request_from_the_cli_and_the_web_api(
    tmp_path: Path, broker: Mosquitto, procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    sim_port, web_port = free_port(), free_port()
    procs.sim(sim_config([(sim_port, [(1, SDM)])]), ports=[sim_port])
    db = tmp_path / "collector.db"
    config = tmp_path / "collector.toml"
    config.write_text(
        collector_config(
            db,
            broker.port,
            http_port=web_port,
        )
    )
    procs.spawn("collector", "collector.cli", "run", str(config))
    gw = tmp_path / "gw.toml"
    gw.write_text(
        gateway_config(tmp_path / "state", "acme", broker.port, sim_port, [(1, SDM)], 5.0)
    )
    procs.spawn("gateway", "gateway.cli", "run", str(gw))
    wait_until(
        lambda: db.exists() and any(g.gateway == "gw1" for g in Reader(db).gateways("acme")),
        30,
        "the collector knowing acme/gw1",
    )
    quantities = set(meter_maps.library()[SDM].quantities)

    done = collector_cli(
        "gateway", "read", "--site", "acme", "--id", "gw1", "--meter", "m1", "--json",
        "--config", str(config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["ok"] is True
    assert set(reply["values"]) == quantities
    assert reply["unit"] == {q: QUANTITIES[q].unit for q in quantities}
    # the simulator's meter at unit 1 starts at 1000 kWh and counts up slowly
    assert 1000 <= reply["values"]["energy_import_kwh"] < 1001

    human = collector_cli(
        "gateway", "read", "--site", "acme", "--id", "gw1", "--meter", "m1",
        "--config", str(config),
    )  # fmt: skip
    assert human.returncode == 0, human.stderr
    assert re.search(r"^\s+energy_import_kwh\s+100\d\.\d{3} kWh$", human.stdout, re.MULTILINE)

    scanned = collector_cli(
        "gateway", "scan", "--site", "acme", "--id", "gw1", "--bus", "b1", "--units", "1-3",
        "--config", str(config),
    )  # fmt: skip
    assert scanned.returncode == 0, scanned.stderr
    assert scanned.stdout.strip() == f"unit 1: {SDM}"

    missing = collector_cli(
        "gateway", "read", "--site", "acme", "--id", "gw1", "--meter", "nope",
        "--config", str(config),
    )  # fmt: skip
    assert missing.returncode == 1
    assert "FAILED: no meter 'nope' (have: m1)" in missing.stdout

    silent = collector_cli(
        "gateway", "read", "--site", "acme", "--id", "gw9", "--meter", "m1", "--timeout", "1",
        "--config", str(config),
    )  # fmt: skip
    assert silent.returncode == 1
    assert "acme/gw9 did not answer within 1 s" in silent.stderr

    wait_for_port(web_port, 10)
    url = f"http://127.0.0.1:{web_port}/api/sites/acme/gateways/gw1/meters/m1/read"
    status, body = post(url, token(capsys, config, "--role", "admin"))
    assert status == 200, body
    assert set(body) == {"ok", "values", "unit", "error", "latency_ms"}
    assert body["ok"] is True
    assert body["error"] is None
    assert set(body["values"]) == quantities
    assert body["unit"]["power_w"] == "W"
    assert body["latency_ms"] > 0

    consultant = token(capsys, config, "--role", "consultant", "--site", "acme")
    assert post(url, consultant)[0] == 200
    assert post(url.replace("/m1/", "/nope/"), consultant)[1]["ok"] is False
    elsewhere = token(capsys, config, "--role", "consultant", "--site", "other")
    assert post(url, elsewhere)[0] == 404
    company = token(capsys, config, "--role", "company", "--site", "acme")
    assert post(url, company)[0] == 403
    assert post(url.replace("/gw1/", "/gw9/"), consultant)[0] == 404
