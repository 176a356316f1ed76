"""Certificates and keys of the local control plane: a CA, serving and client certs, the SA key.

Unlike kwokctl, which reuses one admin key pair for everything, each component gets its own identity
so RBAC sees the real built-in users (system:kube-controller-manager, system:kube-scheduler).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kuberth.certificates import CLIENT_AUTH, SERVER_AUTH, Issued, issue, new_ca, new_key

#: Lifetime of every certificate of a local plane; it is thrown away with `cluster down`.
VALIDITY = datetime.timedelta(days=365)

#: The first address of the service range, which the `kubernetes` Service gets.
KUBERNETES_SERVICE_IP = "10.96.0.1"

#: Client identities: file stem -> (common name, organisations).
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("kuberth-admin", ("system:masters",)),
    "kube-controller-manager": ("system:kube-controller-manager", ()),
    "kube-scheduler": ("system:kube-scheduler", ()),
    "kwok": ("kwok-controller", ("system:masters",)),
    # The API server towards kubelets (logs, exec), as kubeadm's apiserver-kubelet-client.
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",)),
}


@dataclass(frozen=True)
class Pki:
    """Paths of the files :func:`create_pki` writes."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def service_account_public_key(self) -> Path:
        return self.directory / "sa.pub"

    def client_cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def client_key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


def create_pki(directory: Path) -> Pki:
    """Write a fresh CA, API server cert, a client cert per :data:`CLIENTS` and the SA keys."""
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = new_ca("kuberth-local-ca", validity=VALIDITY)
    _write(pki.ca_cert, pki.ca_key, ca)
    serving = issue(
        ca,
        "kube-apiserver",
        usage=SERVER_AUTH,
        validity=VALIDITY,
        hosts=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "127.0.0.1",
            KUBERNETES_SERVICE_IP,
        ),
    )
    _write(pki.serving_cert, pki.serving_key, serving)
    for name, (common_name, organisations) in CLIENTS.items():
        client = issue(
            ca, common_name, usage=CLIENT_AUTH, validity=VALIDITY, organisations=organisations
        )
        _write(pki.client_cert(name), pki.client_key(name), client)

    sa_key = new_key()
    _write_private(pki.service_account_key, sa_key)
    pki.service_account_public_key.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def issue_client(pki: Pki, name: str, common_name: str, organisations: tuple[str, ...]) -> None:
    """Write one more client cert from the plane's CA (a real node's kubelet and kube-proxy)."""
    ca = Issued.from_pem(pki.ca_cert.read_bytes(), pki.ca_key.read_bytes())
    client = issue(
        ca, common_name, usage=CLIENT_AUTH, validity=VALIDITY, organisations=organisations
    )
    _write(pki.client_cert(name), pki.client_key(name), client)


def _write(cert_path: Path, key_path: Path, issued: Issued) -> None:
    key_path.write_bytes(issued.key_pem)
    key_path.chmod(0o600)
    cert_path.write_bytes(issued.cert_pem)


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
