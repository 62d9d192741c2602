"""Config files: every shipped example loads, and mistakes get one precise line each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector import settings as collector_settings
from gateway import settings as gateway_settings
from gateway.sim import config as sim_settings
from sparwatt.errors import ConfigError
from tests.support.processes import collector_cli

CONFIG = Path(__file__).resolve().parents[2] / "config"
LOADERS = {
    "gateway": gateway_settings.load,
    "collector": collector_settings.load,
    "sim": sim_settings.load,
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_example_config_loads(kind: str) -> None:
    assert LOADERS[kind](CONFIG / f"{kind}.example.toml") is not None


THREE_MISTAKES = """
[gateway]
site = "Acme Foods"
id = "gw1"

[[buses]]
id = "b1"
transport = "tcp"
host = "10.0.0.5"
colour = "blue"

[[meters]]
id = "main"
bus = "b1"
unit = 1
model = "eastron-sdm630"
interval_s = 0.1
"""


def test_three_mistakes_give_three_lines_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(THREE_MISTAKES)
    with pytest.raises(ConfigError) as err:
        gateway_settings.load(path)
    problems = err.value.problems
    assert len(problems) == 3
    assert any("gateway.site" in p and "'Acme Foods'" in p for p in problems)
    assert any("buses[0].colour" in p and "Extra inputs" in p for p in problems)
    assert any("meters[0].interval_s" in p and "0.1" in p for p in problems)
    assert all(p.startswith(f"{path}: ") for p in problems)

    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == problems
    assert "Traceback" not in run.stderr


def test_cross_reference_mistakes_are_each_reported(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text("""
[gateway]
site = "s"
id = "g"
[[buses]]
id = "b1"
transport = "rtu"
[[meters]]
id = "m"
bus = "b1"
unit = 1
model = "eastron-sdm630"
""")
    with pytest.raises(ConfigError) as err:
        gateway_settings.load(path)
    assert err.value.problems == [
        f"{path}: buses[0]: transport 'rtu' needs device (e.g. /dev/ttyUSB0)"
    ]
    path.write_text(
        path.read_text()
        .replace('transport = "rtu"', 'transport = "tcp"\nhost = "h"')
        .replace('bus = "b1"', 'bus = "b9"')
    )
    with pytest.raises(ConfigError) as err:
        gateway_settings.load(path)
    assert err.value.problems == [f"{path}: (top level): meters[0].bus: no bus with id 'b9'"]


def test_broken_toml_and_missing_file_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[storage\n")
    for target in (path, tmp_path / "absent.toml"):
        run = subprocess.run(
            [sys.executable, "-m", "collector.cli", "check-config", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 2
        assert len(run.stderr.strip().splitlines()) == 1
        assert str(target) in run.stderr


def test_secret_comes_from_file_not_config(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    mqtt = gateway_settings.Mqtt(username="u", password_file=secret)
    assert gateway_settings.mqtt_password(mqtt, {}) == "s3cret"
    assert (
        gateway_settings.mqtt_password(gateway_settings.Mqtt(), {"SPARWATT_MQTT_PASSWORD": "e"})
        == "e"
    )
    with pytest.raises(ConfigError, match="cannot read"):
        gateway_settings.mqtt_password(gateway_settings.Mqtt(password_file=tmp_path / "none"), {})


def test_database_is_a_file_or_a_postgresql_url_without_its_password(tmp_path: Path) -> None:
    storage = collector_settings.Storage
    assert storage.model_validate({"db": "data/s.db"}).db == Path("data/s.db")
    url = "postgresql://sparwatt@db.example/sparwatt?passfile=/etc/sparwatt/pgpass"
    assert storage.model_validate({"db": url}).db == url
    path = tmp_path / "c.toml"
    path.write_text('[storage]\ndb = "postgresql://sparwatt:hunter2@db.example/sparwatt"\n')
    run = collector_cli("check-config", str(path))
    assert run.returncode == 2
    assert "storage.db" in run.stderr
    assert "password file" in run.stderr
    assert "hunter2" not in run.stderr  # the secret is named, never echoed
