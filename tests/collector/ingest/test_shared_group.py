"""`mqtt.shared_group`: readings through an MQTT v5 shared subscription, checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import settings
from collector.ingest.subscriber import subscription
from sparwatt.errors import ConfigError
from tests.support.processes import collector_cli


def test_readings_are_shared_in_the_group_status_and_health_reach_every_collector() -> None:
    assert subscription("readings", "ingest") == "$share/ingest/sparwatt/v1/+/+/readings"
    assert subscription("status", "ingest") == "sparwatt/v1/+/+/status"
    assert subscription("health", "ingest") == "sparwatt/v1/+/+/health"
    assert subscription("readings") == "sparwatt/v1/+/+/readings"


def test_a_group_and_a_grace_are_read_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(
        '[mqtt]\nclient_id = "collector-2"\nshared_group = "sparwatt-ingest.1"\n\n'
        "[ingest]\ngap_grace_s = 120\n"
    )
    cfg = settings.load(path)
    assert (cfg.mqtt.shared_group, cfg.ingest.gap_grace_s) == ("sparwatt-ingest.1", 120.0)
    default = settings.CollectorConfig()
    assert (default.mqtt.shared_group, default.ingest.gap_grace_s) == (None, 60.0)


@pytest.mark.parametrize("group", ["a/b", "a+b", "#", "", "two words", "tab\there", "x" * 65])
def test_a_group_name_that_is_no_single_topic_level_is_refused(tmp_path: Path, group: str) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(f'[mqtt]\nshared_group = "{group}"\n'.replace("\t", "\\t"))
    with pytest.raises(ConfigError) as caught:
        settings.load(path)
    [line] = caught.value.problems
    assert line.startswith(f"{path}: mqtt.shared_group: must be 1 to 64 characters")
    assert "no '/', '+' or '#'" in line


def test_the_collector_refuses_to_start_with_a_bad_group_or_grace(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    path = tmp_path / "collector.toml"
    path.write_text(f'[storage]\ndb = "{db}"\n\n[mqtt]\nshared_group = "a/b"\n')
    run = collector_cli("run", str(path))
    assert run.returncode == 2
    assert "mqtt.shared_group" in run.stderr
    assert "'a/b'" in run.stderr
    path.write_text(f'[storage]\ndb = "{db}"\n\n[ingest]\ngap_grace_s = -1\n')
    run = collector_cli("run", str(path))
    assert run.returncode == 2
    assert "ingest.gap_grace_s" in run.stderr
    assert not db.exists()  # refused before any I/O
