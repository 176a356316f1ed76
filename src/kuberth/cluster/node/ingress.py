"""The real node's Ingress controller: Traefik as a pod on the node, reachable from the host.

Traefik runs as a one-replica Deployment in :data:`NAMESPACE` (the namespace tenants' default-deny
NetworkPolicies let in, as Kuberth's ``ingress_controller_namespace``), pinned to the real node,
with a ServiceAccount of its own and the least privilege Traefik's kubernetesingress provider
needs (its upstream RBAC less ``ingresses/status``: no published endpoint is configured, so it
never writes a status). It serves only Ingresses of the class :data:`INGRESS_CLASS`; its
``web`` entrypoint listens on :data:`WEB_PORT` in the pod, and a NodePort Service publishes it on
the node's IP at :data:`NODE_PORT` (kube-proxy serves node ports on that address only). A pod that
asks for no host port stays within Pod Security ``restricted``, which its namespace enforces.

From the host, a TCP forwarder (:mod:`kuberth.cluster.node.forward`, bound to loopback) listens on
``127.0.0.1:<apps port>`` (:data:`DEFAULT_APPS_PORT` unless taken or chosen otherwise) and
connects to ``<node IP>:NODE_PORT``: an app at ``<app>-<ns>.apps.localhost`` answers at
``http://<app>-<ns>.apps.localhost:<apps port>/`` (``*.localhost`` resolves to 127.0.0.1).

Caveat, as upstream: the provider watches Secrets in every namespace (for Ingress TLS), so
Traefik's identity may read every Secret of the cluster.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kuberth.cluster.node.layout import NODE_SELECTOR, TOLERATION, NodeLayout
from kuberth.cluster.node.namespaces import NodeError

#: The controller's namespace: what `kuberth dev` gives Kuberth as ``ingress_controller_namespace``.
NAMESPACE = "kuberth-ingress"
#: The IngressClass Traefik serves: what `kuberth dev` puts first in Kuberth's ``ingress_classes``.
INGRESS_CLASS = "traefik"
CONTROLLER = "traefik.io/ingress-controller"
NAME = "traefik"
LABELS = {"app.kubernetes.io/name": NAME}

#: Traefik's ``web`` entrypoint in the pod (above 1024: it runs as non-root, with no capability).
WEB_PORT = 8000
#: Its ``traefik`` entrypoint, for /ping only (the probes), so tenants' paths are never shadowed.
PING_PORT = 9000
#: The NodePort the ``web`` entrypoint is published at, on the node's IP.
NODE_PORT = 30080
#: Where the host reaches it, unless taken or set otherwise (``KUBERTH_CLUSTER_APPS_PORT``).
DEFAULT_APPS_PORT = 8080

#: A host no Ingress may have (RFC 2606): the readiness check gets Traefik's own 404 for it.
PROBE_HOST = "kuberth-probe.invalid"

#: Traefik's own user in its image, as the demo images'.
USER = 65532


def traefik_args() -> list[str]:
    return [
        f"--entryPoints.web.address=:{WEB_PORT}",
        f"--entryPoints.traefik.address=:{PING_PORT}",
        "--ping=true",
        "--ping.entryPoint=traefik",
        "--providers.kubernetesIngress=true",
        f"--providers.kubernetesIngress.ingressClass={INGRESS_CLASS}",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
        "--log.noColor=true",
    ]


def cluster_role_rules() -> list[dict[str, Any]]:
    """What the kubernetesingress provider reads: Ingresses and their classes, the Services and
    EndpointSlices behind them, Secrets (TLS), and Nodes (its informer for NodePort load
    balancing starts whenever IngressClasses are looked up)."""
    read = ["get", "list", "watch"]
    return [
        {"apiGroups": [""], "resources": ["services", "secrets", "nodes"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        {
            "apiGroups": ["networking.k8s.io"],
            "resources": ["ingresses", "ingressclasses"],
            "verbs": read,
        },
    ]


def manifests(image: str) -> list[dict[str, Any]]:
    """Every object of the controller, in creation order."""
    role = f"kuberth:ingress-{NAME}"
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": LABELS}
    probe = {"httpGet": {"path": "/ping", "port": "ping"}}
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NAMESPACE,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role, "labels": LABELS},
            "rules": cluster_role_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role, "labels": LABELS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": INGRESS_CLASS, "labels": LABELS},
            "spec": {"controller": CONTROLLER},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": LABELS},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {
                        "serviceAccountName": NAME,
                        "nodeSelector": NODE_SELECTOR,
                        "tolerations": [TOLERATION],
                        "terminationGracePeriodSeconds": 5,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": USER,
                            "runAsGroup": USER,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": NAME,
                                "image": image,
                                "imagePullPolicy": "Never",  # imported into the node's containerd
                                "args": traefik_args(),
                                "ports": [
                                    {"name": "web", "containerPort": WEB_PORT},
                                    {"name": "ping", "containerPort": PING_PORT},
                                ],
                                "readinessProbe": {**probe, "periodSeconds": 1},
                                "livenessProbe": {**probe, "periodSeconds": 10},
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True,
                                },
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "type": "NodePort",
                "selector": LABELS,
                "ports": [
                    {"name": "web", "port": 80, "targetPort": "web", "nodePort": NODE_PORT},
                ],
            },
        },
    ]


def deploy(kubeconfig: Path, image: str) -> None:
    """Create the controller's objects (the plane is fresh: none exists yet)."""
    from kubernetes import config, utils

    api = config.new_client_from_config(str(kubeconfig))
    try:
        for manifest in manifests(image):
            utils.create_from_dict(api, manifest)
    finally:
        api.close()


def choose_apps_port(preferred: int) -> int:
    """``preferred`` when 127.0.0.1 has it free, else any free port (0: any free port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def forwarder_command(layout: NodeLayout, apps_port: int) -> list[str]:
    """The host's 127.0.0.1:<apps port> to the node's NodePort (bound to loopback only)."""
    return [
        sys.executable, "-m", "kuberth.cluster.node.forward",
        "lo", "127.0.0.1", str(apps_port), layout.node_ip, str(NODE_PORT),
    ]  # fmt: skip


def answers(apps_port: int) -> str | None:
    """None when Traefik answers HTTP through the host's forwarder, else what went wrong.

    Any HTTP answer is Traefik's: the forwarder itself never speaks HTTP, and with no ready
    endpoint kube-proxy refuses the connection.
    """
    try:
        response = httpx.get(
            f"http://127.0.0.1:{apps_port}/", headers={"Host": PROBE_HOST}, timeout=2
        )
    except httpx.HTTPError as error:
        return f"127.0.0.1:{apps_port}: {type(error).__name__} {error}"
    if response.status_code != 404:  # Traefik's own "404 page not found" for an unknown host
        return f"127.0.0.1:{apps_port}: unexpected {response.status_code}"
    return None


@dataclass(frozen=True)
class PodState:
    ready: bool
    detail: str


def pod_state(kubeconfig: Path) -> PodState:
    """Whether Traefik's pod is Ready, and if not, its phase, conditions and log's tail."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    try:
        selector = ",".join(f"{k}={v}" for k, v in LABELS.items())
        pods = api.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        if not pods:
            return PodState(False, f"no pod of {NAMESPACE}/{NAME} (see its Deployment's events)")
        pod = pods[0]
        name = pod.metadata.name if pod.metadata else "?"
        status = pod.status or client.V1PodStatus()
        if any(c.type == "Ready" and c.status == "True" for c in status.conditions or []):
            return PodState(True, f"pod {NAMESPACE}/{name} Ready")
        waiting = [
            f"{s.name}: {s.state.waiting.reason} {s.state.waiting.message or ''}".strip()
            for s in status.container_statuses or []
            if s.state and s.state.waiting
        ]
        log = ""
        with contextlib.suppress(client.ApiException):
            log = api.read_namespaced_pod_log(str(name), NAMESPACE, tail_lines=20)
        detail = f"pod {NAMESPACE}/{name} {status.phase}, not Ready {'; '.join(waiting)}\n{log}"
        return PodState(False, detail.rstrip())
    finally:
        api.api_client.close()


def wait_ready(kubeconfig: Path, apps_port: int, timeout: float, check: Callable[[], None]) -> None:
    """Wait until Traefik's pod is Ready and it answers through the forwarder.

    Raises:
        NodeError: not in ``timeout`` seconds (with the pod's state and log), or ``check`` raised.
    """
    deadline = time.monotonic() + timeout
    while True:
        check()
        problem = answers(apps_port)
        if problem is None and (state := pod_state(kubeconfig)).ready:
            return
        if time.monotonic() > deadline:
            state = pod_state(kubeconfig)
            raise NodeError(
                f"Traefik did not answer at 127.0.0.1:{apps_port} in {timeout:.0f}s "
                f"({problem or 'it answers'}); {state.detail}"
            )
        time.sleep(0.2)


def traefik_pid(pids: set[int]) -> int | None:
    """Traefik's process among the node's pods' processes."""
    for pid in sorted(pids):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == NAME:
                return pid
    return None


def apps_url(apps_domain: str, apps_port: int) -> str:
    """The pattern of an app's URL through the forwarder."""
    return f"http://<app>-<namespace>.{apps_domain}:{apps_port}/"
