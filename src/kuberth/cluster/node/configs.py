"""The real node's configuration files, as pure functions of its layout.

Each setting that departs from a default says why: most are walls this machine kind puts up
(cgroup v1, no CAP_SYS_RESOURCE, sysctls that are read-only outside the initial network namespace)
or keep the node's files under its own directory instead of system-wide defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kuberth.cluster.components import SERVICE_CLUSTER_IP_RANGE
from kuberth.cluster.node.layout import (
    CLUSTER_CIDR,
    KUBE_PROXY_HEALTHZ_PORT,
    KUBE_ROUTER_HEALTH_PORT,
    KUBELET_HEALTHZ_PORT,
    KUBELET_PORT,
    LABEL,
    LABEL_VALUE,
    NODE_NAME,
    POD_CIDR,
    TAINT_KEY,
    NodeLayout,
)

#: What the kubelet wants these sysctls to be. With protectKernelDefaults it only checks them;
#: the node's mount namespace shows it files holding these values over /proc/sys, so the host's
#: real settings (kernel.panic_on_oops=1 would panic the machine on any oops) never change.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


#: Directories the node gets empty and private (tmpfs in its mount namespace), because its
#: programs write there whatever they are told: containerd's shim sockets and runc's state
#: (/run/containerd), the CNI result cache (/var/lib/cni), the kubelet's root and sockets
#: (/var/lib/kubelet) and its log symlinks (/var/log/containers). Mounting over
#: the parents creates nothing on the host's disk.
PRIVATE_DIRECTORIES = ("/run", "/var/lib", "/var/log")


def containerd_config(layout: NodeLayout, *, sandbox_image: str, runc: str, cni_bin: Path) -> str:
    """containerd's config.toml: its own root, state and socket; never the system defaults."""
    d = layout.directory
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{d / "containerd" / "root"}"
state = "{d / "containerd" / "state"}"
# The node's services are not the ones the OOM killer should spare; and without
# CAP_SYS_RESOURCE nothing may lower its score anyway.
oom_score = 0
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[metrics]
  address = ""

[{cri}]
  sandbox_image = "{sandbox_image}"
  # No CAP_SYS_RESOURCE here: runc may not lower oom_score_adj below containerd's own, and every
  # sandbox would fail with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # Pod network namespaces under the node's state, not /run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  max_container_log_line_size = 16384

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  # cgroup v1 with the cgroupfs driver, as the kubelet.
  SystemdCgroup = false
  BinaryName = "{runc}"

[{cri}.cni]
  bin_dir = "{cni_bin}"
  conf_dir = "{d / "cni" / "net.d"}"
"""


def cni_conflist(layout: NodeLayout) -> str:
    """A bridge network for the pods, addresses from the node's pod CIDR kept under its state."""
    config = {
        "cniVersion": "1.0.0",
        "name": "kuberth",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.path("cni", "ipam")),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(config, indent=2)


def kubelet_config(layout: NodeLayout, *, ca_file: Path) -> dict[str, Any]:
    """The KubeletConfiguration."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        # On the node's address so `kuberth cluster status` reaches it from the host.
        "healthzBindAddress": layout.node_ip,
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        # cgroup v1 on this machine kind: the kubelet refuses it unless told, and needs the
        # cgroupfs driver (no systemd) and a root of its own, created beforehand.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_root,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        # Check, never write, the host-wide sysctls (see KUBELET_SYSCTLS).
        "protectKernelDefaults": True,
        "failSwapOn": False,
        "podLogsDir": str(layout.path("pod-logs")),
        "podCIDR": POD_CIDR,
        "registerNode": True,
        "registerWithTaints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
        "resolvConf": "/etc/resolv.conf",
        "clusterDomain": "cluster.local",
        "serializeImagePulls": False,
        "maxPods": 30,
        # The disk is shared with everything else on the machine: do not evict for its use.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "60s",
        "staticPodPath": "",
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(layout: NodeLayout, *, kubeconfig: Path) -> dict[str, Any]:
    """The KubeProxyConfiguration: iptables mode, inside the node's network namespace."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "bindAddress": layout.node_ip,
        "healthzBindAddress": f"{layout.node_ip}:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": f"{layout.node_ip}:10249",
        "clusterCIDR": CLUSTER_CIDR,
        # The conntrack sysctls are read-only outside the initial network namespace: zeros tell
        # kube-proxy to leave them alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "nodePortAddresses": [f"{layout.node_ip}/32"],
        # route_localnet is a sysctl too; node ports on 127.0.0.1 are not needed.
        "iptables": {"localhostNodePorts": False},
    }


#: kube-router's own identity (a client certificate from the plane's CA) and its ClusterRole.
KUBE_ROUTER_USER = "kuberth:kube-router"
KUBE_ROUTER_ROLE = "kuberth:kube-router"


def kube_router_flags(*, kubeconfig: Path) -> list[str]:
    """kube-router as the node's NetworkPolicy controller only: no BGP routing, no service
    proxy (kube-proxy is that), no load balancer IPs. It programs iptables and ipsets in the
    network namespace it runs in, the node's, so nothing of it reaches the host's rulesets."""
    return [
        f"--kubeconfig={kubeconfig}",
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--run-loadbalancer=false",
        f"--hostname-override={NODE_NAME}",
        # Traffic to ClusterIPs is let through its INPUT chain; the policy then sees the pod
        # address kube-proxy translated it to.
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        f"--health-port={KUBE_ROUTER_HEALTH_PORT}",
        "--metrics-port=0",
        # v1 logs each sync ("sync iptables took ..."), which is what one wants to read here.
        "--v=1",
    ]


def kube_router_rbac() -> list[dict[str, Any]]:
    """kube-router's least privilege, as its upstream manifests give it to the firewall alone:
    read pods, namespaces, network policies and nodes (its own address), and the Services and
    endpoints its shared informers list at start; no writes (leases and services/status are
    for its load-balancer controller, which does not run)."""
    return _reader(
        KUBE_ROUTER_ROLE,
        KUBE_ROUTER_USER,
        [
            {
                "apiGroups": [""],
                "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
            },
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"]},
        ],
    )


#: The firewall gate's identity (:mod:`.gate`) and its ClusterRole.
GATE_USER = "kuberth:firewall-gate"
GATE_ROLE = "kuberth:firewall-gate"


def gate_rbac() -> list[dict[str, Any]]:
    """The firewall gate reads pods (the node's, by a field selector RBAC cannot narrow)."""
    return _reader(GATE_ROLE, GATE_USER, [{"apiGroups": [""], "resources": ["pods"]}])


def _reader(name: str, user: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ClusterRole that reads ``rules``' resources (get, list, watch) and its binding to
    ``user``."""
    labels = {"app.kubernetes.io/managed-by": "kuberth-cluster"}
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": [{**rule, "verbs": ["get", "list", "watch"]} for rule in rules],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": role_ref,
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    ]


def kubelet_flags(layout: NodeLayout) -> list[str]:
    """Flags the configuration file cannot carry."""
    return [
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={layout.node_ip}",
        f"--node-labels={LABEL}={LABEL_VALUE}",
        f"--root-dir={layout.kubelet_root}",
        f"--cert-dir={layout.kubelet_root / 'pki'}",
        "--v=1",
    ]


def namespace_script(layout: NodeLayout, sysctl_files: dict[str, Path]) -> str:
    """The shell script the node's namespace holder runs, already inside the node's network
    namespace and a private mount namespace, before it sleeps for the node's lifetime.

    - its own /sys: sysfs mounted after entering the network namespace shows the node's
      interfaces; the host's cgroup trees are moved back in under it;
    - tmpfs over :data:`PRIVATE_DIRECTORIES`, so nothing the node writes there reaches the host;
    - files holding the kubelet's expected values bound over the sysctls it checks.

    ``mount -n`` everywhere: the first mounts happen while /run is still the host's, and
    util-linux would otherwise create /run/mount/utab there.
    """
    hold = layout.path("mnt", "cgroup")
    lines = [
        "set -eu",
        "mount -n --make-rprivate /",
        f"mkdir -p {hold}",
        f"mount -n --rbind /sys/fs/cgroup {hold}",
        "mount -n -t sysfs sysfs /sys",
        f"mount -n --move {hold} /sys/fs/cgroup",
        *(f"mount -n -t tmpfs -o mode=755 tmpfs {path}" for path in PRIVATE_DIRECTORIES),
    ]
    for name, source in sorted(sysctl_files.items()):
        lines.append(f"mount -n --bind {source} /proc/sys/{name}")
    lines += [f"touch {layout.ready_file}", "exec sleep infinity"]
    return "\n".join(lines) + "\n"
