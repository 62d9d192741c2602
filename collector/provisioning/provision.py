"""Add, revoke and list gateways' broker credentials: password file, ACL, bundle, reload."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collector.provisioning import broker, bundle, files, passwords
from collector.settings import Provisioning
from sparwatt import broker_acl
from sparwatt.errors import ProvisioningError


@dataclass(frozen=True, slots=True)
class Added:
    site: str
    gateway: str
    user: str
    bundle: Path
    files: list[str]  # the bundle's members
    reloaded: str


def user_of(site: str, gateway: str) -> str:
    """The broker user of a gateway; the ACL derives its topics from this name."""
    return f"{site}.{gateway}"


def provisioned(p: Provisioning) -> list[tuple[str, str]]:
    """(site, gateway) of every gateway user in the password file."""
    names = broker_acl.users(files.read_text(p.password_file))
    return sorted(g for g in map(broker_acl.gateway_of, names) if g is not None)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ProvisioningError(f"{what} {path}: cannot read: {exc.strerror}") from None


def add(
    p: Provisioning,
    site: str,
    gateway: str,
    output: Path,
    install_dir: Path,
    client_cert: bool = False,
    replace: bool = False,
) -> Added:
    """New credentials for a gateway, in effect at the broker and packed into `output`."""
    user = user_of(site, gateway)
    if output.exists():
        raise ProvisioningError(f"{output}: already exists; give another --output")
    members = [bundle.Member("ca.crt", _read(p.ca_cert, "provisioning.ca_cert"), bundle.PUBLIC)]
    if client_cert:
        if p.ca_key is None:
            raise ProvisioningError("--cert needs provisioning.ca_key in the collector config")
        # cryptography takes a while to import and only --cert needs it
        from collector.provisioning.certs import client_certificate

        cert, key = client_certificate(
            members[0].data, _read(p.ca_key, "provisioning.ca_key"), user, p.cert_days
        )
        members += [
            bundle.Member("client.crt", cert, bundle.PUBLIC),
            bundle.Member("client.key", key, bundle.SECRET),
        ]
    password = passwords.new_password()
    config = bundle.gateway_toml(
        site, gateway, (p.broker_host, p.broker_port), install_dir, client_cert
    )
    members += [
        bundle.Member("gateway.toml", config.encode(), bundle.CONFIG),
        bundle.Member("mqtt-password", f"{password}\n".encode(), bundle.SECRET),
    ]
    with files.locked(p.password_file):
        text = files.read_text(p.password_file)
        if user in broker_acl.users(text) and not replace:
            raise ProvisioningError(
                f"{site}/{gateway} is already provisioned; --replace issues new credentials "
                "(the old ones stop working)"
            )
        # the bundle first: if it cannot be written, the broker learns no password nobody has
        bundle.write(output, members)
        text = passwords.with_user(text, user, passwords.hash_password(password))
        files.replace(p.password_file, text)
        broker.write_acl(p, text)
    return Added(site, gateway, user, output, [m.name for m in members], broker.reload(p))


def revoke(p: Provisioning, site: str, gateway: str) -> str:
    """Remove a gateway's credentials and ACL entries; the broker drops and refuses it."""
    user = user_of(site, gateway)
    with files.locked(p.password_file):
        text = files.read_text(p.password_file)
        if user not in broker_acl.users(text):
            raise ProvisioningError(f"{site}/{gateway} is not provisioned (no user {user!r})")
        text = passwords.without_user(text, user)
        files.replace(p.password_file, text)
        broker.write_acl(p, text)
    return broker.reload(p)
