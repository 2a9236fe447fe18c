"""The local cluster's TLS material and service-account keys, made with `cryptography`.

A CA; the API server's serving certificate (loopback, the service IP and the in-cluster
names); the admin client certificate (group `system:masters`); the service-account signing
key pair. Fresh at every start, valid for two days, keys unencrypted PEM (PKCS#8) as the
control plane reads them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=2)
SERVICE_IP = "10.96.0.1"  # the first address of the service range: the `kubernetes` Service
API_SERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local")


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization else []
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _certificate(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name,
                 issuer_key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False))


def _leaf(builder: x509.CertificateBuilder, usage: x509.ObjectIdentifier) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))


def write_pki(folder: Path) -> None:
    """ca.crt/key, apiserver.crt/key, admin.crt/key, sa.key/pub in `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_name = _key(), _name("local-cluster-ca")
    ca = (_certificate(ca_name, ca_key, ca_name, ca_key)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write_key(folder / "ca.key", ca_key)
    _write_cert(folder / "ca.crt", ca)

    serving_key = _key()
    alt_names = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", SERVICE_IP)]
    alt_names += [x509.DNSName(name) for name in API_SERVER_NAMES]
    serving = (_leaf(_certificate(_name("kube-apiserver"), serving_key, ca_name, ca_key),
                     ExtendedKeyUsageOID.SERVER_AUTH)
               .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
               .sign(ca_key, hashes.SHA256()))
    _write_key(folder / "apiserver.key", serving_key)
    _write_cert(folder / "apiserver.crt", serving)

    # The API server maps O to the user's groups: system:masters may do anything.
    admin_key = _key()
    admin = (_leaf(_certificate(_name("local-admin", "system:masters"), admin_key, ca_name, ca_key),
                   ExtendedKeyUsageOID.CLIENT_AUTH)
             .sign(ca_key, hashes.SHA256()))
    _write_key(folder / "admin.key", admin_key)
    _write_cert(folder / "admin.crt", admin)

    sa_key = _key()
    _write_key(folder / "sa.key", sa_key)
    (folder / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
