"""The local plane's certificates chain to its CA and carry the identities RBAC expects."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from kuberth.cluster.pki import CLIENTS, create_pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_every_certificate_is_issued_by_the_ca(tmp_path: Path) -> None:
    pki = create_pki(tmp_path)
    ca = _cert(pki.ca_cert)
    for path in [pki.serving_cert, *(pki.client_cert(name) for name in CLIENTS)]:
        _cert(path).verify_directly_issued_by(ca)


def test_serving_certificate_names_loopback_and_the_in_cluster_service(tmp_path: Path) -> None:
    sans = (
        _cert(create_pki(tmp_path).serving_cert)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("10.96.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)


def test_client_identities(tmp_path: Path) -> None:
    pki = create_pki(tmp_path)
    admin = _cert(pki.client_cert("admin")).subject
    assert admin.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    scheduler = _cert(pki.client_cert("kube-scheduler")).subject
    assert scheduler.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:kube-scheduler"
    assert not scheduler.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)


def test_private_keys_are_private(tmp_path: Path) -> None:
    pki = create_pki(tmp_path)
    for key in (pki.ca_key, pki.serving_key, pki.service_account_key, pki.client_key("admin")):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
