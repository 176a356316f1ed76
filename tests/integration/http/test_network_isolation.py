"""Tenant network isolation with real traffic, on the real node where kube-router enforces
Kuberth's NetworkPolicy baseline.

Every probe is a fresh connection made from inside a pod (the demo web image with ``PROBES=on``:
``/dial`` and ``/fetch``), asked for from the node's network namespace. A policy does not cut an
established connection, so nothing here reuses one; refused and timed out both count as blocked.
Blocked paths are awaited (kube-router syncs a new pod within a second or two of its start) and
then checked again with new connections. Each test checks at least one blocked path, so none of
them passes on a node without kube-router. Skipped where the machine has no real node.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from kubernetes import client

from kuberth.cluster.build import Builder
from kuberth.cluster.node.layout import NODE_SELECTOR, TOLERATION
from kuberth.cluster.node.runtime import RealNode
from kuberth.cluster.pki import KUBERNETES_SERVICE_IP
from kuberth.cluster.versions import Versions
from kuberth.devtools.github import StandInServer
from kuberth.settings import Settings
from tests.integration.conftest import ON_REAL_NODE, TEST_LABEL, Tenant, _signed_in_tenants
from tests.timing import eventually, scaled

#: An address no blocked range holds, standing in for "the internet": TEST-NET-3 (RFC 5737),
#: put on the node's loopback by `outside` (the node netns has no route out of the machine).
OUTSIDE_IP = "203.0.113.10"
OUTSIDE_PORT = 8081  # not a NodePort (kube-router lets those through to the node)

#: Times a blocked path is checked again once blocked, each with a new connection.
RECHECKS = 3


@dataclass(frozen=True)
class Web:
    """One demo web pod of a Deployment, and its Service."""

    namespace: str
    pod: str
    pod_ip: str
    cluster_ip: str


@dataclass(frozen=True)
class Node:
    """The real node as the tests probe it: its namespace holder's pid and its addresses."""

    holder: int
    node_ip: str
    host_ip: str
    apiserver_port: int

    def probe(self, pod_ip: str, path: str) -> tuple[bool, str]:
        """GET ``path`` of the demo web pod at ``pod_ip``: whether the probe got through, and the
        pod's answer (on a 502, the probe's own connection failed: blocked). Anything else is an
        error: the probing pod itself must be reachable, or "blocked" would prove nothing."""
        url = f"http://{pod_ip}:8080{path}"
        script = (
            "import sys, urllib.request, urllib.error\n"
            "try:\n"
            f"    print(urllib.request.urlopen({url!r}, timeout=10).read().decode())\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code, e.read().decode()); sys.exit(2 if e.code == 502 else 1)\n"
        )
        result = subprocess.run(
            ["nsenter", f"--target={self.holder}", "--net", sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode in (0, 2):
            return result.returncode == 0, result.stdout
        raise AssertionError(f"the probe pod {pod_ip} did not answer {path}: {result}")

    def ask(self, pod_ip: str, path: str) -> str | None:
        """The pod's answer when the probe got through, None when it was blocked."""
        through, answer = self.probe(pod_ip, path)
        return answer if through else None

    def dial(self, source: Web, address: str) -> str | None:
        return self.ask(source.pod_ip, f"/dial?addr={quote(address)}")

    def fetch(self, source: Web, url: str) -> str | None:
        return self.ask(source.pod_ip, f"/fetch?url={quote(url, safe='')}")


def blocked(node: Node, source: Web, address: str, what: str) -> None:
    """``source`` cannot open a connection to ``address``: awaited, then checked again."""
    eventually(lambda: node.dial(source, address) is None, within=20, what=f"{what} blocked")
    for _ in range(RECHECKS):
        assert node.dial(source, address) is None, f"{what}: a new connection got through"


def reached(node: Node, source: Web, url: str, what: str) -> str:
    """``source`` fetches ``url``: awaited, then every time with a new connection; returns the
    page. Awaited because a pod is Ready a moment before kube-proxy routes its Service to it and
    kube-router puts its address in its namespace's sets."""
    path = f"/fetch?url={quote(url, safe='')}"
    refusal = ""

    def through() -> str | None:
        nonlocal refusal
        ok, answer = node.probe(source.pod_ip, path)
        if not ok:
            refusal = answer.strip()
        return answer if ok else None

    started = time.monotonic()
    try:
        page = eventually(through, within=20, what=f"{what} reached")
    except AssertionError as error:
        raise AssertionError(f"{error}; the probe's last answer: {refusal}") from error
    if refusal:
        waited = time.monotonic() - started
        print(f"{what}: reached after {waited:.1f}s (before: {refusal})")
    for _ in range(RECHECKS):
        assert node.fetch(source, url) is not None, f"{what}: blocked on a new connection"
    return page


@pytest.fixture(scope="module")
def web_image() -> str:
    node = Builder(cache_dir=Settings().cache_dir, versions=Versions(), progress=print)
    return node.ensure_node().images["web"].reference


@pytest.fixture
def node(real_node: RealNode, plane_state: dict[str, int]) -> Node:
    layout = real_node.layout()
    assert layout is not None
    holder = json.loads(layout.state_file.read_text())["pids"]["node-namespaces"]
    return Node(holder, layout.node_ip, layout.host_ip, plane_state["apiserver"])


@pytest.fixture
def plane_state(real_node: RealNode) -> dict[str, int]:
    ports: dict[str, int] = json.loads(real_node.plane.state_file.read_text())["ports"]
    return ports


@pytest.fixture
def kuberth_tenants(
    real_node: RealNode,
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> Callable[..., AbstractContextManager[Callable[[], Tenant]]]:
    """A Kuberth whose tenants' pods run on the real node, with these settings; yields a maker
    of its signed-in tenants."""

    @contextmanager
    def start(**settings: object) -> Iterator[Callable[[], Tenant]]:
        with (
            kuberth_server(**ON_REAL_NODE, **settings) as url,
            _signed_in_tenants(url, github, new_id) as make,
        ):
            yield make

    return start


def tenant_web(tenant: Tenant, name: str, image: str, admin_api: client.ApiClient) -> Web:
    """A Deployment of the demo web image with probes on, and its Service, made by the tenant
    through Kuberth; waits until it is rolled out."""
    ns, http = tenant.namespace, tenant.http
    env = {"PROBES": "on", "POD_NAMESPACE": ns}
    created = http.post(
        f"/api/v1/namespaces/{ns}/deployments",
        json={"name": name, "image": image, "port": 8080, "env": env},
    )
    assert created.status_code == 201, created.text
    service = http.post(
        f"/api/v1/namespaces/{ns}/services",
        json={"name": name, "app": name, "ports": [{"port": 80, "target_port": 8080}]},
    )
    assert service.status_code == 201, service.text
    done = http.get(f"/api/v1/namespaces/{ns}/deployments/{name}/rollout", params={"timeout": 60})
    assert done.status_code == 200, done.text
    return _web(admin_api, ns, name, service.json()["cluster_ip"])


def admin_web(admin_api: client.ApiClient, ns: str, name: str, image: str) -> Web:
    """A probe pod (and Service) made by the cluster's admin in a namespace of no tenant, pinned
    to the real node."""
    core = client.CoreV1Api(admin_api)
    eventually(
        lambda: core.list_namespaced_service_account(ns).items, within=10, what="a service account"
    )
    container = {
        "name": "web",
        "image": image,
        "imagePullPolicy": "Never",
        "env": [{"name": "PROBES", "value": "on"}, {"name": "POD_NAMESPACE", "value": ns}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
    }
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "nodeSelector": NODE_SELECTOR,
                "tolerations": [TOLERATION],
                "containers": [container],
            },
        },
    )
    service = core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    return _web(admin_api, ns, name, service.spec.cluster_ip)


def _web(admin_api: client.ApiClient, ns: str, app: str, cluster_ip: str) -> Web:
    core = client.CoreV1Api(admin_api)

    def ready() -> client.V1Pod | None:
        for pod in core.list_namespaced_pod(ns, label_selector=f"app={app}").items:
            conditions = pod.status.conditions or []
            if pod.status.pod_ip and any(
                c.type == "Ready" and c.status == "True" for c in conditions
            ):
                return pod
        return None

    pod = eventually(ready, within=60, what=f"a Ready pod of {ns}/{app}")
    return Web(ns, pod.metadata.name, pod.status.pod_ip, cluster_ip)


@pytest.fixture
def admin_namespaces(admin_api: client.ApiClient) -> Iterator[Callable[[str], str]]:
    """Namespaces of no tenant (an ingress controller's, another's), deleted afterwards."""
    core = client.CoreV1Api(admin_api)
    made: list[str] = []

    def make(role: str) -> str:
        name = f"kt-{role}-{secrets.token_hex(3)}"
        core.create_namespace({"metadata": {"name": name, "labels": {TEST_LABEL: "true"}}})
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(name)


def test_a_tenant_reaches_its_own_namespace_and_nothing_of_another_tenant(
    node: Node,
    kuberth_tenants: Callable[..., AbstractContextManager[Callable[[], Tenant]]],
    admin_api: client.ApiClient,
    web_image: str,
) -> None:
    with kuberth_tenants() as tenants:
        alice, bob = tenants(), tenants()
        alice_web = tenant_web(alice, "web", web_image, admin_api)
        alice_peer = tenant_web(alice, "peer", web_image, admin_api)
        bob_web = tenant_web(bob, "web", web_image, admin_api)

        # Across tenants, both ways, by pod address and by the Service's ClusterIP.
        blocked(node, alice_web, f"{bob_web.pod_ip}:8080", "alice -> bob's pod")
        blocked(node, alice_web, f"{bob_web.cluster_ip}:80", "alice -> bob's Service")
        blocked(node, bob_web, f"{alice_web.pod_ip}:8080", "bob -> alice's pod")
        blocked(node, bob_web, f"{alice_peer.cluster_ip}:80", "bob -> alice's Service")

        # Inside a namespace, pod to pod and through a Service.
        page = reached(node, alice_web, f"http://{alice_peer.pod_ip}:8080/", "alice -> peer")
        assert f"Hello from pod {alice_peer.pod} in namespace {alice.namespace}" in page
        page = reached(node, alice_web, f"http://{alice_peer.cluster_ip}/", "alice -> peer svc")
        assert f"in namespace {alice.namespace}" in page


@contextmanager
def kube_router_paused(real_node: RealNode) -> Iterator[None]:
    """kube-router stopped (SIGSTOP): it syncs nothing until the block ends, as on a node where
    its sync is slow."""
    (pid,) = (c.pid for c in real_node.status() if c.name == "kube-router")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_pod_is_cut_off_until_kube_router_firewalls_it(
    node: Node,
    real_node: RealNode,
    kuberth_tenants: Callable[..., AbstractContextManager[Callable[[], Tenant]]],
    admin_api: client.ApiClient,
    web_image: str,
) -> None:
    """kube-router v2.1.0 lets everything reach a pod, and the pod reach everything, until it
    syncs the pod; the node's firewall gate drops both until then (docs/design.md)."""
    with kuberth_tenants() as tenants:
        alice = tenants()
        web = tenant_web(alice, "web", web_image, admin_api)
        peer = tenant_web(alice, "peer", web_image, admin_api)
        # Alice's policy admits her own pods, so only the gate can refuse what follows.
        reached(node, web, f"http://{peer.pod_ip}:8080/", "web -> peer, both firewalled")
        with kube_router_paused(real_node):
            late = tenant_web(alice, "late", web_image, admin_api)
            assert not real_node.firewall_guards(alice.namespace, late.pod)
            blocked(node, web, f"{late.pod_ip}:8080", "into a pod kube-router has not synced")
            blocked(node, late, f"{peer.pod_ip}:8080", "out of a pod kube-router has not synced")
        reached(node, web, f"http://{late.pod_ip}:8080/", "into the pod once synced")
        reached(node, late, f"http://{peer.pod_ip}:8080/", "out of the pod once synced")


def test_only_the_configured_ingress_controller_namespace_gets_into_a_tenant(
    node: Node,
    kuberth_tenants: Callable[..., AbstractContextManager[Callable[[], Tenant]]],
    admin_namespaces: Callable[[str], str],
    admin_api: client.ApiClient,
    web_image: str,
) -> None:
    controller_ns, other_ns = admin_namespaces("ingress"), admin_namespaces("other")
    controller = admin_web(admin_api, controller_ns, "controller", web_image)
    other = admin_web(admin_api, other_ns, "other", web_image)
    with kuberth_tenants(ingress_controller_namespace=controller_ns) as tenants:
        alice = tenant_web(tenants(), "web", web_image, admin_api)
    with kuberth_tenants(ingress_controller_namespace=other_ns) as tenants:
        carol = tenant_web(tenants(), "web", web_image, admin_api)

    # Kuberth configured for controller_ns: its pods get in, another namespace's do not.
    page = reached(node, controller, f"http://{alice.pod_ip}:8080/", "controller -> alice")
    assert f"in namespace {alice.namespace}" in page
    reached(node, controller, f"http://{alice.cluster_ip}/", "controller -> alice's Service")
    blocked(node, other, f"{alice.pod_ip}:8080", "another namespace -> alice")
    # Kuberth configured for another controller namespace: controller_ns's pods stay out.
    blocked(node, controller, f"{carol.pod_ip}:8080", "a non-configured controller -> carol")
    blocked(node, controller, f"{carol.cluster_ip}:80", "a non-configured controller -> svc")
    reached(node, other, f"http://{carol.pod_ip}:8080/", "the configured controller -> carol")


@contextmanager
def outside(node: Node) -> Iterator[str]:
    """A TCP listener at an address outside every blocked range (on the node's loopback, in
    its network namespace): where ``internet`` egress may go. Removed afterwards."""
    enter = ["nsenter", f"--target={node.holder}", "--net"]
    subprocess.run([*enter, "ip", "addr", "add", f"{OUTSIDE_IP}/32", "dev", "lo"], check=True)
    # socketserver's, not http.server's HTTPServer, which looks its name up in DNS at start.
    serve = (
        "import http.server, socketserver\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(b'outside')\n"
        "socketserver.TCPServer.allow_reuse_address = True\n"
        f"socketserver.TCPServer(({OUTSIDE_IP!r}, {OUTSIDE_PORT}), H).serve_forever()\n"
    )
    server = subprocess.Popen([*enter, sys.executable, "-c", serve])
    try:
        deadline = time.monotonic() + scaled(10)
        probe = f"import socket; socket.create_connection(({OUTSIDE_IP!r}, {OUTSIDE_PORT}), 1)"
        while subprocess.run([*enter, sys.executable, "-c", probe], check=False).returncode:
            assert time.monotonic() < deadline, "the outside listener did not start"
            time.sleep(0.1)
        yield f"{OUTSIDE_IP}:{OUTSIDE_PORT}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        subprocess.run([*enter, "ip", "addr", "del", f"{OUTSIDE_IP}/32", "dev", "lo"], check=False)


@pytest.mark.parametrize("egress", ["internet", "namespace", "open"])
def test_egress_is_the_operators_setting(
    egress: str,
    node: Node,
    kuberth_tenants: Callable[..., AbstractContextManager[Callable[[], Tenant]]],
    admin_api: client.ApiClient,
    web_image: str,
) -> None:
    with kuberth_tenants(tenant_egress=egress) as tenants:
        alice, bob = tenants(), tenants()
        alice_web = tenant_web(alice, "web", web_image, admin_api)
        alice_peer = tenant_web(alice, "peer", web_image, admin_api)
        bob_web = tenant_web(bob, "web", web_image, admin_api)

    kubelet = f"{node.node_ip}:10250"
    apiserver_service = f"{KUBERNETES_SERVICE_IP}:443"
    apiserver_forwarder = f"{node.host_ip}:{node.apiserver_port}"
    with outside(node) as internet:
        reached(node, alice_web, f"http://{alice_peer.cluster_ip}/", "its own namespace")
        if egress == "open":
            reached(node, alice_web, f"http://{internet}/", "an outside address")
            assert node.dial(alice_web, kubelet) is not None, "open: the node's kubelet port"
            assert node.dial(alice_web, apiserver_service) is not None, "open: the API server"
            # Open egress lets nothing more in: bob still cannot reach alice.
            blocked(node, bob_web, f"{alice_web.pod_ip}:8080", "bob -> alice (open egress)")
            return
        if egress == "internet":
            page = reached(node, alice_web, f"http://{internet}/", "an outside address")
            assert page.startswith("200\noutside")
        else:
            blocked(node, alice_web, internet, "an outside address (namespace egress)")
        blocked(node, alice_web, kubelet, "the node's kubelet port")
        blocked(node, alice_web, apiserver_service, "the API server's Service")
        blocked(node, alice_web, apiserver_forwarder, "the API server's forwarder (veth host end)")
        blocked(node, alice_web, f"{bob_web.pod_ip}:8080", "another tenant's pod")
