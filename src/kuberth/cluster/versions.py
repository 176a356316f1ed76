"""The one place where the versions of the local control plane are pinned.

Kubernetes v1.36 is the minor kwok v0.8.0 is released against (its KubeVersion is 1.36.1) and the
newest that etcd v3.6 is supported with; all three declare Go 1.26 in their go.mod.
"""

from __future__ import annotations

from dataclasses import dataclass

KUBERNETES = "1.36.3"
ETCD = "3.6.16"
KWOK = "0.8.0"
#: The real node's Ingress controller. v3.6 is the newest line that can be a Go dependency: v3.7
#: replaces one of its own nested modules, which `go` refuses in a consumer's build.
TRAEFIK = "3.6.12"
#: The real node's NetworkPolicy controller (the only v2 release the module proxy serves).
KUBE_ROUTER = "2.1.0"

#: The Go toolchain the newest of these modules declares in its go.mod.
MINIMUM_GO = (1, 26)


@dataclass(frozen=True)
class Versions:
    """Versions of one control plane; the binary cache is keyed by them."""

    kubernetes: str = KUBERNETES
    etcd: str = ETCD
    kwok: str = KWOK
    traefik: str = TRAEFIK
    kube_router: str = KUBE_ROUTER

    @property
    def staging(self) -> str:
        """The version Kubernetes' staging modules (k8s.io/api, client-go, ...) are published at."""
        return "0." + self.kubernetes.split(".", 1)[1]

    @property
    def kubernetes_minor(self) -> str:
        return self.kubernetes.split(".")[1]
