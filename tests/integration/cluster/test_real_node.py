"""A real node beside kwok: a pod of a demo image really runs and answers; `down` leaves nothing.

Each test starts a plane of its own (the suite's shared one has a real node too, but these check
what `up` and `down` do to the host). The first run builds kubelet and kube-proxy (about 80 s with
a warm Go cache). Skipped with the plain reason when the machine does not allow a real node (not
root, or `make system-deps` not run) or ``KUBERTH_TEST_REAL_NODE=0``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config

from kuberth.cluster.build import Binaries, Builder, NodeBinaries
from kuberth.cluster.node import prerequisites
from kuberth.cluster.node.configs import KUBE_ROUTER_USER, KUBELET_SYSCTLS
from kuberth.cluster.node.layout import LABEL, LABEL_VALUE, NODE_NAME, TAINT_KEY, node_id
from kuberth.cluster.node.runtime import firewall_synced
from kuberth.cluster.plane import ClusterError, ComponentStatus, ControlPlane, free_port
from kuberth.cluster.processes import alive
from kuberth.cluster.versions import Versions
from kuberth.settings import Settings
from tests.timing import eventually

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("KUBERTH_TEST_REAL_NODE") == "0", reason="KUBERTH_TEST_REAL_NODE=0"
    ),
    pytest.mark.skipif(
        bool(prerequisites.missing()), reason=prerequisites.explain(prerequisites.missing())
    ),
]

SYSTEM_PATHS = (
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/var/lib/cni",
    "/var/log/containers",
    "/var/log/pods",
    "/etc/cni",
    "/opt/cni",
    "/run/containerd",
    "/run/netns",
    "/run/mount",
)

#: Issue 15's budgets, on an idle 2-core machine.
UP_BUDGET = 30.0
POD_READY_BUDGET = 5.0
MEMORY_BUDGET = 600 * 1024**2


@pytest.fixture(scope="module")
def node_binaries() -> NodeBinaries:
    return Builder(
        cache_dir=Settings().cache_dir, versions=Versions(), progress=print
    ).ensure_node()


def host_network_state() -> dict[str, str]:
    """What of the host a node must never change: the rulesets and sysctls of its own network
    namespace, and the system-wide directories a node's programs write to by default."""
    state = {}
    for command in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"]):
        path = prerequisites.which(command[0])
        if path is None:
            continue
        out = subprocess.run([path, *command[1:]], capture_output=True, text=True).stdout
        state[command[0]] = "\n".join(line for line in out.splitlines() if not line.startswith("#"))
    # kube-router's sets live in the node's network namespace, never in the host's.
    if (ipset := prerequisites.which("ipset")) is not None:
        state["ipset"] = subprocess.run([ipset, "list"], capture_output=True, text=True).stdout
    for name in [*KUBELET_SYSCTLS, "net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet"]:
        state[name] = Path("/proc/sys", name).read_text()
    # Where a kubelet, containerd or CNI would write by default: the node keeps them private.
    for path in SYSTEM_PATHS:
        state[path] = "exists" if Path(path).exists() else "absent"
    return state


def pod_manifest(name: str, image: str) -> dict[str, object]:
    field = lambda path: {"valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    return {
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "nodeSelector": {LABEL: LABEL_VALUE},
            "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
            "securityContext": {"runAsNonRoot": True},
            "containers": [
                {
                    "name": "web",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "ports": [{"containerPort": 8080}],
                    "env": [
                        {"name": "POD_NAME", **field("metadata.name")},
                        {"name": "POD_NAMESPACE", **field("metadata.namespace")},
                        {"name": "GREETING", "value": "hello-from-env"},
                    ],
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080},
                        "periodSeconds": 1,
                    },
                    "securityContext": {"allowPrivilegeEscalation": False},
                }
            ],
        },
    }


def worker_manifest(name: str, node_binaries: NodeBinaries) -> dict[str, object]:
    field = lambda path: {"valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {LABEL: LABEL_VALUE},
            "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "worker",
                    "image": node_binaries.images["worker"].reference,
                    "imagePullPolicy": "Never",
                    "env": [
                        {"name": "POD_NAME", **field("metadata.name")},
                        {"name": "POD_NAMESPACE", **field("metadata.namespace")},
                        {"name": "INTERVAL", "value": "1s"},
                    ],
                }
            ],
        },
    }


def in_node(holder_pid: int, python: str) -> str | None:
    """Run a Python snippet in the node's network namespace; its output, or None if it failed."""
    result = subprocess.run(
        ["nsenter", f"--target={holder_pid}", "--net", sys.executable, "-c", python],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def network_namespaces() -> set[str]:
    """Every network namespace a process of this machine is in."""
    found = set()
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit():
                found.add(str((proc / "ns" / "net").readlink()))
    return found


def node_leftovers(veth: str, pids: list[int], marker: str) -> list[str]:
    """Whatever of a stopped node the host still has."""
    left = []
    named = subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
    left += [f"named netns {line}" for line in named.splitlines() if "kuberth" in line]
    if subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode == 0:
        left.append(f"veth {veth}")
    left += [f"mount {m}" for m in Path("/proc/mounts").read_text().splitlines() if marker in m]
    left += [f"pid {pid}" for pid in pids if Path(f"/proc/{pid}").exists()]
    cgroups = [p for p in Path("/sys/fs/cgroup").glob("*/kuberth-*") if marker[-8:] in p.name]
    left += [f"cgroup {p}" for p in cgroups]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:
                left.append(f"process {proc.name}: {cmdline[:120]}")
    return left


@pytest.fixture
def plane_with_node(
    binaries: Binaries, node_binaries: NodeBinaries, tmp_path: Path
) -> Iterator[tuple[ControlPlane, float, dict[str, str]]]:
    """A plane of this test's own with a real node; the host's network state from before."""
    before = host_network_state()
    plane = ControlPlane(tmp_path / "plane")
    started = time.monotonic()
    plane.up(binaries, node=node_binaries)  # leaves nothing running when it fails
    try:
        yield plane, time.monotonic() - started, before
    finally:
        if plane.is_running():
            plane.down()


def test_a_pod_really_runs_on_the_real_node_and_down_leaves_nothing(
    plane_with_node: tuple[ControlPlane, float, dict[str, str]],
    node_binaries: NodeBinaries,
    tmp_path: Path,
) -> None:
    plane, up_seconds, before = plane_with_node
    assert host_network_state() == before, "the running node changed the host's network"
    layout = plane.real_node.layout()
    assert layout is not None
    node_state = json.loads(layout.state_file.read_text())
    holder = node_state["pids"]["node-namespaces"]
    node_netns = str(Path(f"/proc/{holder}/ns/net").readlink())
    assert node_netns != str(Path("/proc/self/ns/net").readlink())
    print(f"\nplane and real node Ready in {up_seconds:.1f}s (budget {UP_BUDGET:.0f}s)")

    def all_healthy() -> list[ComponentStatus]:
        statuses = plane.status()
        return statuses if all(c.state == "healthy" for c in statuses) else []

    statuses = eventually(all_healthy, within=20, what="every component, the node's too, healthy")
    assert {c.name for c in statuses} >= {
        "node/containerd",
        "node/kubelet",
        "node/kube-proxy",
        "node/kube-router",
        "node/firewall-gate",
        "node/apps-forwarder",
        "node/traefik",
    }
    traefik_pid = next(c.pid for c in statuses if c.name == "node/traefik")
    # kube-router programs the node's own ruleset; the host's stays as it was.
    assert firewall_synced(holder)
    assert host_network_state() == before, "kube-router changed the host's network"

    # The API server stays on loopback; its forwarder takes only what arrives on the veth
    # (bound to the device), so other machines cannot reach it through the veth's address.
    port = json.loads((tmp_path / "plane" / "state.json").read_text())["ports"]["apiserver"]
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout.split()
    assert f"{layout.host_ip}%{layout.host_veth}:{port}" in listening
    assert f"127.0.0.1:{port}" in listening
    # Traefik is reached from the host on loopback only.
    apps_port = plane.real_node.apps_port()
    assert apps_port is not None
    assert f"127.0.0.1%lo:{apps_port}" in listening

    api = config.new_client_from_config(str(plane.kubeconfig))
    core = client.CoreV1Api(api)
    try:
        node = core.read_node(NODE_NAME)
        # kube-router's identity reads what a NetworkPolicy controller needs, and writes nothing.
        reviews = client.AuthorizationV1Api(api)

        def allowed(verb: str, resource: str, group: str = "") -> bool:
            attributes = {"verb": verb, "resource": resource, "group": group}
            spec = {"user": KUBE_ROUTER_USER, "resourceAttributes": attributes}
            review = reviews.create_subject_access_review({"spec": spec})
            return bool(review.status.allowed)

        assert allowed("watch", "networkpolicies", "networking.k8s.io")
        assert allowed("list", "pods")
        assert allowed("watch", "namespaces")
        assert not allowed("get", "secrets")
        assert not allowed("create", "pods")
        assert not allowed("update", "nodes")
        assert not allowed("create", "networkpolicies", "networking.k8s.io")
        assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})
        assert node.spec.pod_cidr == "10.244.0.0/24"
        core.create_namespace({"metadata": {"name": "alice"}})
        eventually(
            lambda: core.list_namespaced_service_account("alice").items,
            within=10,
            what="the default service account",
        )
        created = time.monotonic()
        core.create_namespaced_pod(
            "alice", pod_manifest("web-1", node_binaries.images["web"].reference)
        )
        pod = eventually(
            lambda: (
                (p := core.read_namespaced_pod("web-1", "alice")).status.conditions
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)
                and p
            ),
            within=30,
            what="the web pod Ready on the real node",
        )
        ready_seconds = time.monotonic() - created
        print(f"pod create -> Ready in {ready_seconds:.1f}s (budget {POD_READY_BUDGET:.0f}s)")
        assert pod.spec.node_name == NODE_NAME

        # The page, fetched from inside the node's network namespace, names the pod.
        fetch = (
            "import urllib.request;"
            f"print(urllib.request.urlopen('http://{pod.status.pod_ip}:8080/', timeout=5)"
            ".read().decode())"
        )
        page = in_node(holder, fetch)
        assert "Hello from pod web-1 in namespace alice" in page
        assert "GREETING=hello-from-env" in page

        # The API server reaches the kubelet: logs work, and the app runs as non-root.
        logs = core.read_namespaced_pod_log("web-1", "alice")
        assert "listening on :8080 as uid 65532" in logs

        # kube-proxy routes a ClusterIP Service to it, inside the node's network namespace.
        service = core.create_namespaced_service(
            "alice",
            {
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
            },
        )
        via_service = fetch.replace(f"{pod.status.pod_ip}:8080", f"{service.spec.cluster_ip}:80")
        page = eventually(
            lambda: in_node(holder, via_service),
            within=10,
            what="the page through the Service's ClusterIP",
        )
        assert "Hello from pod web-1 in namespace alice" in page

        # The worker image runs too, and its log reaches the API.
        core.create_namespaced_pod("alice", worker_manifest("worker-1", node_binaries))
        eventually(
            lambda: (
                "work item 1 done in pod alice/worker-1"
                in (core.read_namespaced_pod_log("worker-1", "alice") or "")
                if core.read_namespaced_pod("worker-1", "alice").status.phase == "Running"
                else None
            ),
            within=15,
            what="the worker's first log line",
        )

        router_pid = node_state["pids"]["kube-router"]
        router_rss = next(
            int(line.split()[1]) * 1024
            for line in Path(f"/proc/{router_pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        print(f"kube-router resident: {router_rss / 1024**2:.0f} MB")
        memory = plane.real_node.memory_bytes()
        print(
            f"real node memory (node processes and two pods): {memory / 1024**2:.0f} MB "
            f"(budget {MEMORY_BUDGET / 1024**2:.0f} MB)"
        )
        assert memory < MEMORY_BUDGET
    finally:
        api.close()

    pids = [*node_state["pids"].values(), traefik_pid]
    assert "apps-forwarder" in node_state["pids"]
    stopped_at = time.monotonic()
    stopped = plane.down()
    print(f"down in {time.monotonic() - stopped_at:.1f}s")
    assert "node/kubelet" in stopped
    assert "node/containerd" in stopped
    assert "node/kube-router" in stopped
    assert "node/firewall-gate" in stopped
    assert node_leftovers(layout.host_veth, pids, str(tmp_path / "plane")) == []
    assert node_netns not in network_namespaces()
    assert not any(Path("/sys/fs/cgroup").glob(f"*/{layout.cgroup_root.lstrip('/')}"))
    assert host_network_state() == before
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout.split()
    assert not [a for a in listening if a.endswith(f":{apps_port}")]


def _kuberth() -> list[str]:
    script = Path(sys.executable).with_name("kuberth")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kuberth"]


def test_cluster_up_prints_where_apps_answer_and_down_leaves_no_forwarder(
    binaries: Binaries, node_binaries: NodeBinaries, tmp_path: Path
) -> None:
    apps_port = free_port()
    directory = tmp_path / "c"
    environment = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    environment |= {
        "KUBERTH_CLUSTER_DIR": str(directory),
        "KUBERTH_CLUSTER_APPS_PORT": str(apps_port),
    }

    def kuberth(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_kuberth(), "cluster", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    try:
        up = kuberth("up", "--real-node")
        assert up.returncode == 0, up.stderr
        assert f"apps: http://<app>-<namespace>.apps.localhost:{apps_port}/" in up.stdout
        assert "Traefik Ready" in up.stderr
        status = kuberth("status")
        assert status.returncode == 0, status.stdout
        traefik = next(line for line in status.stdout.splitlines() if "node/traefik" in line)
        assert "healthy" in traefik
        assert "Ready" in traefik
        traefik_pid = int(traefik.split()[2])
        # No Ingress has this host: Traefik's own 404, through the forwarder and the NodePort.
        answer = httpx.get(
            f"http://127.0.0.1:{apps_port}/", headers={"Host": "x-y.apps.localhost"}, timeout=5
        )
        assert answer.status_code == 404
        node_state = json.loads((directory / "node" / "state.json").read_text())
        forwarder = node_state["pids"]["apps-forwarder"]
    finally:
        down = kuberth("down")
    assert down.returncode == 0, down.stderr
    assert "node/apps-forwarder" in down.stdout
    # Gone, or a zombie its new parent has yet to reap (`up` that started it has exited).
    assert not alive(forwarder)
    assert not alive(traefik_pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{apps_port}/", timeout=5)
    assert node_leftovers(f"kb-{node_id(directory)}", [], str(directory)) == []
    assert not directory.exists()


def test_a_node_that_fails_to_start_is_reported_and_leaves_nothing(
    binaries: Binaries, node_binaries: NodeBinaries, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-node"
    broken.mkdir()
    (broken / "kube-proxy").symlink_to(node_binaries.kube_proxy)
    kubelet = broken / "kubelet"
    kubelet.write_text("#!/bin/sh\necho 'kubelet: failed to run Kubelet: no luck' >&2\nexit 3\n")
    kubelet.chmod(0o755)
    before = host_network_state()
    plane = ControlPlane(tmp_path / "plane")
    broken_node = NodeBinaries(broken, node_binaries.images, node_binaries.kube_router_dir)
    try:
        with pytest.raises(ClusterError) as failure:
            plane.up(binaries, node=broken_node)
    finally:
        if plane.is_running():
            plane.down()

    assert "kubelet exited with code 3" in str(failure.value)
    assert "no luck" in str(failure.value)
    assert not plane.is_running()
    ident = node_id(tmp_path / "plane")
    assert node_leftovers(f"kb-{ident}", [], str(tmp_path / "plane")) == []
    assert host_network_state() == before
