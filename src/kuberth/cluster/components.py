"""Command lines, kubeconfigs and the fake Node of the local control plane, as pure functions."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuberth.cluster.build import Binaries
from kuberth.cluster.pki import Pki

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
FAKE_NODE_NAME = "kwok-node-0"

#: Start order; `down` stops them in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


@dataclass(frozen=True)
class Ports:
    """Loopback ports of one plane, chosen free at `up`."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


@dataclass(frozen=True)
class Layout:
    """Where one plane keeps its state; all of it goes at `down`."""

    directory: Path

    @property
    def pki(self) -> Pki:
        return Pki(self.directory / "pki")

    @property
    def etcd_data(self) -> Path:
        return self.directory / "etcd"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.directory / "admin.kubeconfig"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def kubeconfig(self, client: str) -> Path:
        return self.directory / "kubeconfigs" / f"{client}.kubeconfig"


def server_url(ports: Ports) -> str:
    return f"https://127.0.0.1:{ports.apiserver}"


def kubeconfig(
    *, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, user: str
) -> dict[str, Any]:
    """A kubeconfig with everything embedded, so it keeps working when copied elsewhere."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kuberth-local",
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)},
            }
        ],
        "contexts": [
            {"name": "kuberth-local", "context": {"cluster": "kuberth-local", "user": user}}
        ],
        "current-context": "kuberth-local",
    }


def commands(binaries: Binaries, layout: Layout, ports: Ports) -> dict[str, list[str]]:
    """Every component's command line, in start order."""
    pki = layout.pki
    common_secure = ["--bind-address=127.0.0.1", "--leader-elect=false"]
    return {
        "etcd": [
            str(binaries.etcd),
            "--name=kuberth-local",
            f"--data-dir={layout.etcd_data}",
            f"--listen-client-urls=http://127.0.0.1:{ports.etcd_client}",
            f"--advertise-client-urls=http://127.0.0.1:{ports.etcd_client}",
            f"--listen-peer-urls=http://127.0.0.1:{ports.etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{ports.etcd_peer}",
            f"--initial-cluster=kuberth-local=http://127.0.0.1:{ports.etcd_peer}",
            "--unsafe-no-fsync=true",  # a throwaway plane: durability is not worth the latency
            "--quota-backend-bytes=8589934592",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(binaries.kubernetes("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--authorization-mode=Node,RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--endpoint-reconciler-type=none",  # no kubelet-backed endpoints to reconcile
            "--allow-privileged=true",
            # Kuberth pins tenant pods to a pool of nodes through namespace annotations.
            "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
            # Logs and exec of a real node's pods: the kubelet's address, and a client cert the
            # kubelet's webhook authorization admits.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={pki.client_cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={pki.client_key('apiserver-kubelet-client')}",
        ],
        "kube-controller-manager": [
            str(binaries.kubernetes("kube-controller-manager")),
            f"--kubeconfig={layout.kubeconfig('kube-controller-manager')}",
            *common_secure,
            f"--secure-port={ports.controller_manager}",
            f"--root-ca-file={pki.ca_cert}",
            f"--service-account-private-key-file={pki.service_account_key}",
            # Each controller acts as its own service account, as in kubeadm clusters; the
            # controller manager's own identity may only mint their tokens.
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        ],
        "kube-scheduler": [
            str(binaries.kubernetes("kube-scheduler")),
            f"--kubeconfig={layout.kubeconfig('kube-scheduler')}",
            *common_secure,
            f"--secure-port={ports.scheduler}",
        ],
        "kwok": [
            str(binaries.kwok),
            f"--kubeconfig={layout.kubeconfig('kwok')}",
            f"--config={binaries.kwok_stages}",
            # Only the fake node: a real node beside it has a kubelet of its own.
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            # A Lease per fake node, renewed every 10 s as a kubelet does: its stages send the
            # node's status only every 10-20 minutes ("heartbeat with lease"), and without a
            # lease its status updates came ~53 s apart, past the node monitor's 50 s grace,
            # so a busy moment made the node NotReady and its pods unready.
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{ports.kwok}",
        ],
    }


def health_urls(ports: Ports) -> dict[str, str]:
    """Each component's health endpoint."""
    return {
        "etcd": f"http://127.0.0.1:{ports.etcd_client}/health",
        "kube-apiserver": f"https://127.0.0.1:{ports.apiserver}/readyz",
        "kube-controller-manager": f"https://127.0.0.1:{ports.controller_manager}/healthz",
        "kube-scheduler": f"https://127.0.0.1:{ports.scheduler}/healthz",
        "kwok": f"http://127.0.0.1:{ports.kwok}/healthz",
    }


def fake_node(name: str = FAKE_NODE_NAME) -> dict[str, Any]:
    """A Node for kwok to manage. It has no kwok taint, so ordinary pods schedule on it."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
            },
        },
        "status": {"allocatable": resources, "capacity": resources},
    }
