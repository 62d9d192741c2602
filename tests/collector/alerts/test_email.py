"""E-mail channel against a real local aiosmtpd server: plain SMTP, STARTTLS with login."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.alerts.channels.transports import EmailChannel
from sparwatt.errors import ChannelError
from tests.support.alert_data import notification

pytestmark = pytest.mark.integration

USER, PASSWORD = "alerts@example.com", "correct horse"


class Inbox:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """Certificate for 127.0.0.1 so the client can verify the server by its IP."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sparwatt-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def _channel(
    port: int,
    *,
    starttls: bool,
    password_file: Path | None = None,
    recipients: Sequence[str] = ("ops@example.com",),
    cafile: Path | None = None,
) -> EmailChannel:
    """The channel under test; it logs in as USER when given a password file."""
    return EmailChannel(
        "127.0.0.1",
        port,
        starttls=starttls,
        username=USER if password_file is not None else None,
        password_file=password_file,
        sender="sparwatt@example.com",
        recipients=list(recipients),
        timeout=5,
        ssl_context=None if cafile is None else ssl.create_default_context(cafile=str(cafile)),
    )


@pytest.fixture
def plain_server() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Controller, Inbox, Path]]:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=_free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    yield controller, inbox, cert
    controller.stop()


def test_email_is_delivered_over_plain_smtp(plain_server):
    controller, inbox = plain_server
    _channel(
        controller.port,
        starttls=False,
        recipients=["ops@example.com", "site-lead@example.com"],
    ).send(notification())
    ((mail_from, rcpt, message),) = inbox.messages
    assert mail_from == "sparwatt@example.com"
    assert rcpt == ["ops@example.com", "site-lead@example.com"]
    assert message["Subject"] == "[Sparwatt] s1: 1 firing"
    body = message.get_payload(decode=True).decode()
    assert "FIRING (1)" in body
    assert "m1 at s1 has sent no reading for 31 min" in body


def test_email_uses_starttls_and_logs_in_with_the_password_file(tls_server, tmp_path):
    controller, inbox, cert = tls_server
    secret = tmp_path / "smtp-password"
    secret.write_text(PASSWORD + "\n")
    _channel(controller.port, starttls=True, password_file=secret, cafile=cert).send(notification())
    assert len(inbox.messages) == 1


def test_wrong_password_is_a_channel_error_without_the_secret(tls_server, tmp_path):
    controller, inbox, cert = tls_server
    secret = tmp_path / "smtp-password"
    secret.write_text("wrong-secret")
    channel = _channel(controller.port, starttls=True, password_file=secret, cafile=cert)
    with pytest.raises(ChannelError, match="SMTPAuthenticationError") as err:
        channel.send(notification())
    assert "wrong-secret" not in str(err.value)
    assert inbox.messages == []


def test_untrusted_certificate_is_refused(tls_server):
    controller, inbox, _ = tls_server
    channel = _channel(controller.port, starttls=True)
    with pytest.raises(ChannelError, match=r"CERTIFICATE_VERIFY_FAILED|SSLCertVerificationError"):
        channel.send(notification())
    assert inbox.messages == []


def test_starttls_required_but_not_offered_never_falls_back_to_clear(plain_server):
    controller, inbox = plain_server
    channel = _channel(controller.port, starttls=True)
    with pytest.raises(ChannelError, match="STARTTLS"):
        channel.send(notification())
    assert inbox.messages == []


def test_missing_password_file_is_a_channel_error(plain_server, tmp_path):
    controller, _ = plain_server
    channel = _channel(controller.port, starttls=False, password_file=tmp_path / "absent")
    with pytest.raises(ChannelError, match="cannot read password_file"):
        channel.send(notification())


class Refusing(Inbox):
    """Refuses every recipient with the given reply: 550 for good, 451 for now."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        return self.reply


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [
        ("550 5.1.1 no such mailbox", True),
        ("451 4.3.0 try again later", False),
    ],
)
def test_a_refused_recipient_is_permanent_only_for_a_5xx_reply(reply: str, permanent: bool) -> None:
    controller = Controller(Refusing(reply), hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        with pytest.raises(ChannelError, match="SMTPRecipientsRefused") as err:
            _channel(controller.port, starttls=False).send(notification())
    finally:
        controller.stop()
    assert err.value.permanent is permanent


def test_a_wrong_password_is_not_permanent(tls_server, tmp_path):
    controller, _, cert = tls_server
    secret = tmp_path / "smtp-password"
    secret.write_text("wrong-secret")  # fixed in the file, the next try can succeed
    channel = _channel(controller.port, starttls=True, password_file=secret, cafile=cert)
    with pytest.raises(ChannelError) as err:
        channel.send(notification())
    assert not err.value.permanent
