"""Client certificates for gateways, signed by the deployment's CA.

Made with the `cryptography` package (in the collector extra) rather than the `openssl`
command: the new key never sits in a temporary file, there is no output of changing OpenSSL
versions to parse, and a wrong or encrypted CA key is a clear exception, not an exit code.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sparwatt.errors import ProvisioningError


def client_certificate(
    ca_cert_pem: bytes, ca_key_pem: bytes, common_name: str, days: int
) -> tuple[bytes, bytes]:
    """A new P-256 key and a client certificate for `common_name`: (certificate, key), PEM."""
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    except ValueError:
        raise ProvisioningError("ca_cert: not a PEM certificate") from None
    try:
        ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    except TypeError:
        raise ProvisioningError("ca_key: the key is encrypted; give an unencrypted copy") from None
    except ValueError:
        raise ProvisioningError("ca_key: not a PEM private key") from None
    if ca_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != ca_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ProvisioningError("ca_key does not belong to ca_cert")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # a Pi's clock may lag a little
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    # Ed25519/Ed448 sign without a separate hash
    digest = (
        None
        if isinstance(ca_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else (hashes.SHA256())
    )
    try:
        cert = builder.sign(ca_key, digest)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ProvisioningError(f"ca_key: cannot sign with it: {exc}") from None
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
