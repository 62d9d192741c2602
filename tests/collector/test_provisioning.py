"""Provisioning pieces without a broker: password-file edits, the bundle's config, certificates."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collector.provisioning import bundle, certs, passwords
from gateway import settings
from sparwatt import configfile
from sparwatt.errors import ProvisioningError
from tests.support.processes import make_test_ca


def test_password_file_entries_are_replaced_in_place_appended_and_removed() -> None:
    text = "collector:$7$a\nacme.gw1:$7$b\n"
    assert passwords.with_user(text, "acme.gw1", "$7$c") == "collector:$7$a\nacme.gw1:$7$c\n"
    assert passwords.with_user(text, "acme.gw2", "$7$d") == text + "acme.gw2:$7$d\n"
    assert passwords.without_user(text, "acme.gw1") == "collector:$7$a\n"
    assert passwords.without_user("acme.gw1:$7$b\n", "acme.gw1") == ""


def test_bundle_config_validates_once_the_installer_describes_the_meters() -> None:
    text = bundle.gateway_toml("acme", "gw1", ("broker.example.org", 8883), Path("/etc/x"), True)
    text += '[[buses]]\nid = "b"\ntransport = "tcp"\nhost = "10.0.0.9"\n'
    text += '[[meters]]\nid = "m"\nbus = "b"\nunit = 1\nmodel = "eastron-sdm630"\n'
    config = configfile.validate(settings.GatewayConfig, configfile.parse_toml(text, "-"), "-")
    assert (config.gateway.site, config.gateway.id) == ("acme", "gw1")
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.username) == (
        "broker.example.org",
        8883,
        "acme.gw1",
    )
    assert config.mqtt.password_file == Path("/etc/x/mqtt-password")
    assert config.mqtt.tls is not None
    assert config.mqtt.tls.key_file == Path("/etc/x/client.key")


def test_bundle_holds_secrets_0600_owned_by_the_service_user_and_refuses_to_overwrite(
    tmp_path: Path,
) -> None:
    out = tmp_path / "b.tgz"
    members = [
        bundle.Member("gateway.toml", b"x", bundle.CONFIG),
        bundle.Member("mqtt-password", b"pw\n", bundle.SECRET),
    ]
    bundle.write(out, members)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with tarfile.open(fileobj=io.BytesIO(out.read_bytes())) as tar:
        entries = {m.name: (stat.S_IMODE(m.mode), m.uname, m.uid) for m in tar.getmembers()}
    assert entries == {
        ".": (0o750, "sparwatt-gateway", 0),
        "gateway.toml": (0o640, "sparwatt-gateway", 0),
        "mqtt-password": (0o600, "sparwatt-gateway", 0),
    }
    with pytest.raises(ProvisioningError, match="already exists"):
        bundle.write(out, members)


def test_client_certificate_is_signed_by_the_ca_for_the_gateway_user(tmp_path: Path) -> None:
    ca = make_test_ca(tmp_path)
    ca_cert = ca["ca"].read_bytes()
    cert_pem, key_pem = certs.client_certificate(
        ca_cert, (tmp_path / "ca.key").read_bytes(), "acme.gw1", 30
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    issuer = x509.load_pem_x509_certificate(ca_cert)
    cert.verify_directly_issued_by(issuer)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "acme.gw1"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert b"PRIVATE KEY" in key_pem


def test_a_ca_key_of_another_ca_is_refused(tmp_path: Path) -> None:
    ca = make_test_ca(tmp_path / "one")
    make_test_ca(tmp_path / "two")
    with pytest.raises(ProvisioningError, match="does not belong"):
        certs.client_certificate(
            ca["ca"].read_bytes(), (tmp_path / "two" / "ca.key").read_bytes(), "acme.gw1", 30
        )
