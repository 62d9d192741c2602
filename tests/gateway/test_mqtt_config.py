"""MQTT settings that must fail at start-up with one clear line, before any connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.publisher import Publisher
from gateway.settings import Mqtt, Tls
from sparwatt.errors import ConfigError


def test_missing_ca_file_is_a_config_error_naming_key_and_path(tmp_path: Path) -> None:
    cfg = Mqtt(tls=Tls(ca_file=tmp_path / "missing-ca.crt"))
    with pytest.raises(ConfigError) as err:
        Publisher(
            cfg, "gw", None, ("t", b"offline"), lambda: ("t", b"online"), lambda _mid, _ok: None
        )
    assert cfg.tls is not None
    assert err.value.problems == [f"mqtt.tls.ca_file: no such file: {cfg.tls.ca_file}"]


def test_client_certificate_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cert_file and key_file go together"):
        Tls(ca_file=tmp_path / "ca.crt", cert_file=tmp_path / "gw.crt")


def test_unreadable_certificate_is_a_config_error(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as err:
        Publisher(
            Mqtt(tls=Tls(ca_file=ca)),
            "gw",
            None,
            ("t", b"offline"),
            lambda: ("t", b"online"),
            lambda _mid, _ok: None,
        )
    assert err.value.problems[0].startswith("mqtt.tls: cannot load certificates")
