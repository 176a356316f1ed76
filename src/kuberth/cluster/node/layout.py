"""Names, addresses and paths of one real node, all derived from its plane's directory.

Addressing (documented choice): each node gets one /24 out of ``100.72.0.0/16`` (shared address
space, RFC 6598, which home and office networks do not use) for the veth pair that joins it to the
host: ``.1`` is the host end (where the API server forwarder listens), ``.2`` the node end, which
is the node's InternalIP. Pods get ``10.244.0.0/24``; that range lives only inside the node's
network namespace, so several planes' nodes may all use it.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "kuberth-node-0"
POD_CIDR = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
VETH_SUPERNET = ipaddress.IPv4Network("100.72.0.0/16")

#: The taint the real node registers with: only pods that ask for a real node land on it, so an
#: app whose image the node cannot pull (there is no registry yet) still runs on kwok.
TAINT_KEY = "kuberth.dev/real-node"
#: The label that selects it.
LABEL = "kuberth.dev/node"
LABEL_VALUE = "real"

#: What a pod needs to run on the real node; `kuberth dev` gives it to every tenant pod.
NODE_SELECTOR = {LABEL: LABEL_VALUE}
TOLERATION = {"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}

KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
#: kube-router serves /healthz on every address of the node's network namespace (it takes no
#: address); `kuberth cluster status` asks the node's.
KUBE_ROUTER_HEALTH_PORT = 20244


def node_id(plane_directory: Path) -> str:
    """Eight hex digits, unique per plane directory: the veth's and cgroup's names carry it."""
    return hashlib.sha256(str(plane_directory.resolve()).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class NodeLayout:
    """Where one node keeps its files, and what its kernel objects are called."""

    directory: Path  # <plane>/node
    ident: str
    subnet: int  # the third octet of its /24 in VETH_SUPERNET

    @property
    def host_veth(self) -> str:
        return f"kb-{self.ident}"  # 11 characters, under IFNAMSIZ

    @property
    def node_veth(self) -> str:
        return "eth0"

    @property
    def cgroup_root(self) -> str:
        return f"/kuberth-{self.ident}"

    @property
    def host_ip(self) -> str:
        return str(VETH_SUPERNET.network_address + self.subnet * 256 + 1)

    @property
    def node_ip(self) -> str:
        return str(VETH_SUPERNET.network_address + self.subnet * 256 + 2)

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def containerd_socket(self) -> Path:
        """containerd's socket as the node's processes see it: on the node's private /run (a
        socket path under a test's temporary directory would pass the 104-byte limit)."""
        return Path("/run/containerd/containerd.sock")

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's root, on the node's private /var/lib: it binds unix sockets there
        (pod-resources, plugins), which a test's temporary directory would push past the
        108-byte limit, and its pods' volume mounts stay in the node's mount namespace."""
        return Path("/var/lib/kubelet")

    def host_containerd_socket(self, holder_pid: int) -> Path:
        """The same socket from the host, through the namespace holder's view of the files."""
        return Path(f"/proc/{holder_pid}/root") / self.containerd_socket.relative_to("/")

    @property
    def ready_file(self) -> Path:
        return self.directory / "namespaces.ready"

    def path(self, *parts: str) -> Path:
        return self.directory.joinpath(*parts)
