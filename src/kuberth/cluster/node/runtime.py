"""Starts, inspects and stops one real node beside a running plane.

`start` leaves the node's state in ``<plane>/node/state.json`` as it goes, so `stop` (from any
process) undoes a finished or a half-finished start alike: processes by pid and by mount
namespace, the pods' cgroups, the veth pair and the network namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from kuberth.cluster.build import NodeBinaries
from kuberth.cluster.components import Layout, kubeconfig
from kuberth.cluster.node import configs, gate, ingress, namespaces
from kuberth.cluster.node.layout import (
    KUBE_PROXY_HEALTHZ_PORT,
    KUBE_ROUTER_HEALTH_PORT,
    KUBELET_HEALTHZ_PORT,
    NODE_NAME,
    POD_CIDR,
    NodeLayout,
    node_id,
)
from kuberth.cluster.node.namespaces import NodeError
from kuberth.cluster.node.prerequisites import cni_bin_dir, which
from kuberth.cluster.pki import issue_client
from kuberth.cluster.processes import Children, alive

START_TIMEOUT = 60.0

#: Node processes in start order; stopped in reverse.
PROCESSES = (
    "node-namespaces",
    "api-forwarder",
    "containerd",
    "kubelet",
    "kube-proxy",
    "kube-router",
    "firewall-gate",
    "apps-forwarder",
)

#: Client identities of the node, from the plane's CA (the API server's Node authorizer and the
#: built-in system:node-proxier binding know them).
IDENTITIES = {
    "kubelet": (f"system:node:{NODE_NAME}", ("system:nodes",)),
    "kube-proxy": ("system:kube-proxy", ()),
    # Bound to its own read-only ClusterRole at start (configs.kube_router_rbac).
    "kube-router": (configs.KUBE_ROUTER_USER, ()),
    # Bound to its own ClusterRole, which reads pods, at start (configs.gate_rbac).
    "firewall-gate": (configs.GATE_USER, ()),
}

Report = Callable[[str], None]


@dataclass(frozen=True)
class NodeComponent:
    """One node process's health, as `kuberth cluster status` shows it."""

    name: str
    pid: int
    state: str  # healthy | unhealthy | crashed
    detail: str


class RealNode:
    """The real node of the plane whose state lives in ``plane_layout``."""

    def __init__(self, plane_layout: Layout) -> None:
        self.plane = plane_layout
        self.directory = plane_layout.directory / "node"
        self._children = Children(process_group=False)

    # -- state ---------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads((self.directory / "state.json").read_text())
        except FileNotFoundError:
            return None
        return state

    def _save(self, state: dict[str, Any]) -> None:
        (self.directory / "state.json").write_text(json.dumps(state, indent=2))

    def layout(self) -> NodeLayout | None:
        state = self._state()
        if state is None:
            return None
        return NodeLayout(self.directory, state["ident"], state["subnet"])

    def exists(self) -> bool:
        return self._state() is not None

    # -- start ---------------------------------------------------------------------------------

    def start(
        self,
        node: NodeBinaries,
        *,
        apiserver_port: int,
        apps_port: int | None = None,
        report: Report = lambda _: None,
    ) -> None:
        """Start the node and wait until it is Ready; on failure, leave nothing behind.

        With a ``traefik`` image among the node's, Traefik is deployed on it once it is Ready and
        published on the host's ``127.0.0.1:<apps_port>`` (see :mod:`.ingress`; default
        :data:`.ingress.DEFAULT_APPS_PORT`, any free port when that one is taken or for 0).

        Raises:
            NodeError: a step failed or the node was not Ready in time (with the log's tail).
        """
        started = time.monotonic()
        resolved = self.directory.resolve()
        hidden = [d for d in configs.PRIVATE_DIRECTORIES if resolved.is_relative_to(d)]
        if hidden:
            raise NodeError(
                f"the plane's directory {self.plane.directory} is under {hidden[0]}, which the "
                "node's mount namespace replaces with an empty one; choose another "
                "KUBERTH_CLUSTER_DIR"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        ident = node_id(self.plane.directory)
        # Whatever a crashed earlier node of this plane directory left carries the same names
        # (they derive from the directory): clear it first.
        namespaces.delete_network(NodeLayout(self.directory, ident, 0))
        namespaces.remove_cgroups(NodeLayout(self.directory, ident, 0))
        try:
            with namespaces.network_lock():
                layout = NodeLayout(self.directory, ident, namespaces.free_subnet())
                state: dict[str, Any] = {"ident": ident, "subnet": layout.subnet, "pids": {}}
                self._save(state)
                pids = state["pids"]
                script = configs.namespace_script(layout, self._sysctl_files(layout))
                holder = self._spawn("node-namespaces", namespaces.holder_command(script))
                pids["node-namespaces"] = holder
                self._save(state)
                self._wait(lambda: layout.ready_file.exists(), "node-namespaces", "set up")
                state["mount_namespace"] = namespaces.mount_namespace(holder)
                self._save(state)
                namespaces.create_network(layout, holder)
            self._write_files(layout, node, apiserver_port)
            namespaces.create_cgroups(layout)
            pids["api-forwarder"] = self._spawn(
                "api-forwarder",
                [sys.executable, "-m", "kuberth.cluster.node.forward", layout.host_veth,
                 layout.host_ip, str(apiserver_port), "127.0.0.1", str(apiserver_port)],
            )  # fmt: skip
            self._save(state)

            containerd = [str(which("containerd")), f"--config={layout.path('containerd.toml')}"]
            pids["containerd"] = self._spawn("containerd", namespaces.inside(holder, containerd))
            self._save(state)
            self._wait(lambda: self._ctr_ok(layout, holder), "containerd", "answer on its socket")
            self._import_images(layout, holder, node)
            report(
                f"containerd ready, demo images imported ({time.monotonic() - started:.1f}s more)"
            )

            kubelet = [
                str(node.kubelet),
                f"--config={layout.path('kubelet.yaml')}",
                f"--kubeconfig={layout.path('kubelet.kubeconfig')}",
                *configs.kubelet_flags(layout),
            ]
            pids["kubelet"] = self._spawn("kubelet", namespaces.inside(holder, kubelet))
            proxy = [str(node.kube_proxy), f"--config={layout.path('kube-proxy.yaml')}"]
            pids["kube-proxy"] = self._spawn("kube-proxy", namespaces.inside(holder, proxy))
            self._save(state)
            self._wait_ready()
            self._publish_api_endpoint(layout, apiserver_port)
            proxy_health = f"http://{layout.node_ip}:{KUBE_PROXY_HEALTHZ_PORT}/healthz"
            self._wait(lambda: _healthz(proxy_health) is None, "kube-proxy", "become healthy")
            self._start_kube_router(layout, holder, node, state)
            self._start_gate(layout, holder, state)
            report(f"real node {NODE_NAME} Ready ({time.monotonic() - started:.1f}s more)")
            if "traefik" in node.images:
                self._start_ingress(layout, state, node, apps_port, report)
        except BaseException:
            self.stop()
            raise

    def _start_ingress(
        self,
        layout: NodeLayout,
        state: dict[str, Any],
        node: NodeBinaries,
        apps_port: int | None,
        report: Report,
    ) -> None:
        """Traefik as a pod on the node, and the host's forwarder to it (:mod:`.ingress`)."""
        started = time.monotonic()
        preferred = ingress.DEFAULT_APPS_PORT if apps_port is None else apps_port
        port = ingress.choose_apps_port(preferred)
        if preferred and port != preferred:
            report(f"127.0.0.1:{preferred} is taken; apps are served on 127.0.0.1:{port} instead")
        state["apps_port"] = port
        ingress.deploy(self.plane.admin_kubeconfig, node.images["traefik"].reference)
        state["pids"]["apps-forwarder"] = self._spawn(
            "apps-forwarder", ingress.forwarder_command(layout, port)
        )
        self._save(state)
        ingress.wait_ready(self.plane.admin_kubeconfig, port, START_TIMEOUT, self._check_crashes)
        report(
            f"Traefik Ready, apps on 127.0.0.1:{port} "
            f"({time.monotonic() - started:.1f}s after the node)"
        )

    def firewall_guards(self, namespace: str, pod: str) -> bool:
        """Whether kube-router has given this pod of the node its firewall (see
        :func:`firewall_guards`); False while there is no node."""
        state = self._state()
        return state is not None and firewall_guards(
            state["pids"]["node-namespaces"], namespace, pod
        )

    def apps_port(self) -> int | None:
        """The host port apps answer on (through Traefik), if the node runs it."""
        state = self._state()
        port: int | None = state.get("apps_port") if state else None
        return port

    def _start_kube_router(
        self, layout: NodeLayout, holder: int, node: NodeBinaries, state: dict[str, Any]
    ) -> None:
        """The NetworkPolicy controller, once the Node exists (it reads its own address from it):
        granted its read-only role, started, and waited for until its first full sync is in the
        node's ruleset, so no pod of the node runs unpoliced once `start` returns."""
        self._apply_cluster_objects(configs.kube_router_rbac())
        router = [
            str(node.kube_router),
            *configs.kube_router_flags(kubeconfig=layout.path("kube-router.kubeconfig")),
        ]
        state["pids"]["kube-router"] = self._spawn("kube-router", namespaces.inside(holder, router))
        self._save(state)
        health = f"http://{layout.node_ip}:{KUBE_ROUTER_HEALTH_PORT}/healthz"
        self._wait(
            lambda: _healthz(health) is None and firewall_synced(holder),
            "kube-router",
            "sync the node's firewall",
        )

    def _start_gate(self, layout: NodeLayout, holder: int, state: dict[str, Any]) -> None:
        """The firewall gate (:mod:`.gate`), once kube-router has synced, and waited for until
        its rules are in: from then on no pod is reachable before kube-router firewalls it."""
        self._apply_cluster_objects(configs.gate_rbac())
        command = [sys.executable, "-m", "kuberth.cluster.node.gate"]
        command.append(str(layout.path("firewall-gate.kubeconfig")))
        state["pids"]["firewall-gate"] = self._spawn(
            "firewall-gate", namespaces.inside(holder, command)
        )
        self._save(state)
        self._wait(lambda: gate_closed(holder), "firewall-gate", "close the pod range")

    def _apply_cluster_objects(self, manifests: list[dict[str, Any]]) -> None:
        """Create or replace cluster-scoped RBAC objects, as the plane's admin."""
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException

        api = client.RbacAuthorizationV1Api(
            config.new_client_from_config(str(self.plane.admin_kubeconfig))
        )
        try:
            for manifest in manifests:
                kind = manifest["kind"]  # ClusterRole or ClusterRoleBinding
                snake = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()
                body = getattr(client, f"V1{kind}").from_dict(manifest)
                try:
                    getattr(api, f"create_{snake}")(body)
                except ApiException as error:
                    if error.status != 409:
                        raise
                    getattr(api, f"replace_{snake}")(manifest["metadata"]["name"], body)
        finally:
            api.api_client.close()

    def _write_files(self, layout: NodeLayout, node: NodeBinaries, apiserver_port: int) -> None:
        pki = self.plane.pki
        server = f"https://{layout.host_ip}:{apiserver_port}"
        for name, (common_name, organisations) in IDENTITIES.items():
            issue_client(pki, f"node-{name}", common_name, organisations)
            config = kubeconfig(
                server=server,
                ca_pem=pki.ca_cert.read_bytes(),
                cert_pem=pki.client_cert(f"node-{name}").read_bytes(),
                key_pem=pki.client_key(f"node-{name}").read_bytes(),
                user=common_name,
            )
            # The serving cert names 127.0.0.1 and localhost, not the forwarder's address.
            config["clusters"][0]["cluster"]["tls-server-name"] = "localhost"
            path = layout.path(f"{name}.kubeconfig")
            path.write_text(yaml.safe_dump(config))
            path.chmod(0o600)
        cni_bin = cni_bin_dir()
        runc = which("runc")
        if cni_bin is None or runc is None:
            raise NodeError("the CNI plugins or runc went missing")
        layout.path("containerd.toml").write_text(
            configs.containerd_config(
                layout, sandbox_image=node.images["pause"].reference, runc=runc, cni_bin=cni_bin
            )
        )
        layout.path("cni", "net.d").mkdir(parents=True, exist_ok=True)
        layout.path("cni", "net.d", "10-kuberth.conflist").write_text(configs.cni_conflist(layout))
        layout.path("kubelet.yaml").write_text(
            yaml.safe_dump(configs.kubelet_config(layout, ca_file=pki.ca_cert))
        )
        layout.path("kube-proxy.yaml").write_text(
            yaml.safe_dump(
                configs.kube_proxy_config(layout, kubeconfig=layout.path("kube-proxy.kubeconfig"))
            )
        )

    @staticmethod
    def _sysctl_files(layout: NodeLayout) -> dict[str, Path]:
        """Files to bind over the sysctls whose host value differs from the kubelet's wish."""
        files = {}
        for name, wanted in configs.KUBELET_SYSCTLS.items():
            with contextlib.suppress(OSError):
                if Path("/proc/sys", name).read_text().strip() == wanted:
                    continue
            path = layout.path("sysctl", name.replace("/", "."))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted + "\n")
            files[name] = path
        return files

    def _spawn(self, name: str, argv: list[str]) -> int:
        # The forwarder runs this very package, wherever it was imported from.
        source = str(Path(__file__).resolve().parents[3])
        path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
        with self.plane.log(name).open("ab") as log:
            process = subprocess.Popen(
                argv,
                env={**os.environ, "PYTHONPATH": path},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
            )
        self._children[name] = process
        return process.pid

    def _wait(self, done: Callable[[], bool], name: str, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not done():
            self._check_crashes()
            if time.monotonic() > deadline:
                raise NodeError(
                    f"{name} did not {what} in {START_TIMEOUT:.0f}s; last lines of "
                    f"{self.plane.log(name)}:\n{_tail(self.plane.log(name))}"
                )
            time.sleep(0.05)

    def _check_crashes(self) -> None:
        for name, process in self._children.items():
            if process.poll() is not None:
                raise NodeError(
                    f"{name} exited with code {process.returncode} during start-up; last lines "
                    f"of {self.plane.log(name)}:\n{_tail(self.plane.log(name))}"
                )

    @staticmethod
    def _ctr(socket: Path, *args: str) -> list[str]:
        return [str(which("ctr")), f"--address={socket}", *args]

    def _ctr_ok(self, layout: NodeLayout, holder: int) -> bool:
        socket = layout.host_containerd_socket(holder)
        with contextlib.suppress(OSError):
            if socket.is_socket():
                command = self._ctr(socket, "version")
                return subprocess.run(command, capture_output=True, timeout=10).returncode == 0
        return False

    def _import_images(self, layout: NodeLayout, holder: int, node: NodeBinaries) -> None:
        """``ctr images import`` inside the node's mount namespace, where containerd unpacks."""
        archives = [str(image.archive) for image in node.images.values()]
        for archive in archives:
            command = self._ctr(
                layout.containerd_socket, "--namespace=k8s.io", "images", "import", archive
            )
            namespaces.run(*namespaces.inside(holder, command))

    def _wait_ready(self) -> None:
        """Wait for the kubelet to register, give the Node its pod CIDR, then wait for Ready."""
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException

        api = client.CoreV1Api(config.new_client_from_config(str(self.plane.admin_kubeconfig)))
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                self._check_crashes()
                try:
                    node = api.read_node(NODE_NAME)
                except ApiException as error:
                    if error.status != 404:
                        raise
                else:
                    if not (node.spec and node.spec.pod_cidr):
                        # No IPAM controller runs in the plane: the node's CIDR is set by hand.
                        body = {"spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]}}
                        api.patch_node(NODE_NAME, body)
                    conditions = (node.status and node.status.conditions) or []
                    if any(c.type == "Ready" and c.status == "True" for c in conditions):
                        return
                if time.monotonic() > deadline:
                    raise NodeError(
                        f"node {NODE_NAME} was not Ready in {START_TIMEOUT:.0f}s; last lines of "
                        f"the kubelet's log:\n{_tail(self.plane.log('kubelet'))}"
                    )
                time.sleep(0.2)
        finally:
            api.api_client.close()

    def _publish_api_endpoint(self, layout: NodeLayout, apiserver_port: int) -> None:
        """Point the ``default/kubernetes`` Service at the forwarder, so pods (an Ingress
        controller, a tenant's own client) reach the API server at its ClusterIP. The plane runs
        without an endpoint reconciler (kwok pods need none), so nothing else writes this slice."""
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException

        body: Any = {  # the client takes a plain dict for any model
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {
                    "kubernetes.io/service-name": "kubernetes",
                    "endpointslice.kubernetes.io/managed-by": "cluster.kuberth.dev",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [layout.host_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": apiserver_port, "protocol": "TCP"}],
        }
        slice_ = client.V1EndpointSlice.from_dict(body)
        assert slice_ is not None
        api = client.DiscoveryV1Api(config.new_client_from_config(str(self.plane.admin_kubeconfig)))
        try:
            try:
                api.create_namespaced_endpoint_slice("default", slice_)
            except ApiException as error:
                if error.status != 409:
                    raise
                api.replace_namespaced_endpoint_slice("kubernetes", "default", slice_)
        finally:
            api.api_client.close()

    # -- status and stop -----------------------------------------------------------------------

    def status(self) -> list[NodeComponent]:
        """Each node process's health: alive, and answering where it serves."""
        state, layout = self._state(), self.layout()
        if state is None or layout is None:
            return []
        checks: dict[str, Callable[[], str | None]] = {
            "api-forwarder": lambda: _connects_from_node(
                state["pids"]["node-namespaces"], layout.host_ip, _forwarded_port(self.plane)
            ),
            "node-namespaces": lambda: (
                None if namespaces.veth_exists(layout) else f"the veth {layout.host_veth} is gone"
            ),
            "containerd": lambda: (
                None
                if self._ctr_ok(layout, state["pids"]["node-namespaces"])
                else "no answer on its socket"
            ),
            "kubelet": lambda: _healthz(f"http://{layout.node_ip}:{KUBELET_HEALTHZ_PORT}/healthz"),
            "kube-proxy": lambda: _healthz(
                f"http://{layout.node_ip}:{KUBE_PROXY_HEALTHZ_PORT}/healthz"
            ),
            "apps-forwarder": lambda: ingress.answers(state["apps_port"]),
            "kube-router": lambda: _healthz(
                f"http://{layout.node_ip}:{KUBE_ROUTER_HEALTH_PORT}/healthz"
            ),
            "firewall-gate": lambda: (
                None
                if gate_closed(state["pids"]["node-namespaces"])
                else "its hooks or chains are gone from the node's mangle table"
            ),
        }
        result = []
        for name in PROCESSES:
            pid = state["pids"].get(name)
            if pid is None:
                continue
            if not alive(pid):
                result.append(NodeComponent(name, pid, "crashed", _tail(self.plane.log(name))))
                continue
            problem = checks[name]()
            result.append(
                NodeComponent(name, pid, "unhealthy" if problem else "healthy", problem or "ok")
            )
        if "apps_port" in state:
            result.append(self._traefik_status(layout))
        return result

    def _traefik_status(self, layout: NodeLayout) -> NodeComponent:
        """Traefik's pod: its process among the pods', Ready by its own /ping probe."""
        pid = ingress.traefik_pid(namespaces.cgroup_pids(layout))
        try:
            pod = ingress.pod_state(self.plane.admin_kubeconfig)
        except Exception as error:  # status reports a problem, it does not raise one
            pod = ingress.PodState(False, f"cannot read its pod: {error}")
        if pid is None:
            return NodeComponent("traefik", 0, "crashed", f"no Traefik process; {pod.detail}")
        return NodeComponent("traefik", pid, "healthy" if pod.ready else "unhealthy", pod.detail)

    def stop(self) -> list[str]:
        """Stop everything the node started and remove its kernel objects; returns what ran.

        Order: kube-router, kube-proxy and the kubelet (so nothing restarts pods), the pods (by
        cgroup), containerd, then every process left in the node's mount namespace (shims), the
        forwarder, the cgroups, and last the veth pair and the network namespace (kube-router's
        and kube-proxy's iptables rules and ipsets live in it, so they go with it).
        """
        state, layout = self._state(), self.layout()
        if state is None or layout is None:
            return []
        pids: dict[str, int] = dict(state["pids"])
        pids.update({name: p.pid for name, p in self._children.items() if name not in pids})
        stopped: list[str] = []
        for name in ("firewall-gate", "kube-router", "kube-proxy", "kubelet"):
            if name in pids and self._children.stop(name, pids[name]):
                stopped.append(name)
        for pid in namespaces.cgroup_pids(layout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if "containerd" in pids and self._children.stop("containerd", pids["containerd"]):
            stopped.append("containerd")
        if mount_namespace := state.get("mount_namespace"):
            for pid in namespaces.processes_in_mount_namespace(mount_namespace):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for name in ("node-namespaces", "api-forwarder", "apps-forwarder"):
            if name in pids and self._children.stop(name, pids[name]):
                stopped.append(name)
        left = namespaces.remove_cgroups(layout)
        namespaces.delete_network(layout)
        self._children.clear()
        (self.directory / "state.json").unlink(missing_ok=True)
        if left:
            raise NodeError("cgroups still busy after the node stopped: " + ", ".join(left))
        return stopped

    def memory_bytes(self) -> int:
        """Resident memory of every node process and every pod (for the ≤ 600 MB budget)."""
        state, layout = self._state(), self.layout()
        if state is None or layout is None:
            return 0
        pids = set(state["pids"].values()) | namespaces.cgroup_pids(layout)
        if mount_namespace := state.get("mount_namespace"):
            pids |= set(namespaces.processes_in_mount_namespace(mount_namespace))
        total = 0
        for pid in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total


#: The rule kube-router appends to its FORWARD chain at the end of each full sync.
_SYNCED_MARK = "rule to explicitly ACCEPT traffic that comply to network policies"


def firewall_synced(holder_pid: int) -> bool:
    """Whether kube-router has restored a full sync into the node's filter table."""
    return any(_SYNCED_MARK in rule for rule in _forward_rules(holder_pid))


def gate_closed(holder_pid: int) -> bool:
    """Whether the firewall gate's hooks and chains are in the node's mangle table."""
    return gate.closed(_saved_rules(holder_pid, "mangle"))


def firewall_guards(holder_pid: int, namespace: str, pod: str) -> bool:
    """Whether kube-router has given the pod its firewall: traffic to the pod jumps to the
    pod's chain of policies. Until then kube-router v2.1.0 lets any traffic reach the pod, and
    only the firewall gate (:mod:`.gate`) keeps it away."""
    jumps = gate.firewalled(_saved_rules(holder_pid, "filter"))
    return any((namespace, pod) == (ns, name) for _, ns, name in jumps)


def _forward_rules(holder_pid: int) -> list[str]:
    """The rules of kube-router's FORWARD chain in the node's filter table."""
    chain = "-A KUBE-ROUTER-FORWARD "
    return [rule for rule in _saved_rules(holder_pid, "filter") if rule.startswith(chain)]


def _saved_rules(holder_pid: int, table: str) -> list[str]:
    """The node's rules of one table, as ``iptables-save`` prints them."""
    iptables_save = which("iptables-save")
    if iptables_save is None:
        return []
    command = namespaces.inside(holder_pid, [iptables_save, "-t", table])
    result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    return result.stdout.splitlines()


def _forwarded_port(plane: Layout) -> int:
    state = json.loads(plane.state_file.read_text())
    port: int = state["ports"]["apiserver"]
    return port


def _connects_from_node(holder_pid: int, host: str, port: int) -> str | None:
    """Whether the node reaches ``host:port``: the forwarder accepts only what comes through the
    veth, so the check runs in the node's network namespace."""
    check = f"import socket; socket.create_connection(({host!r}, {port}), timeout=2).close()"
    command = ["nsenter", f"--target={holder_pid}", "--net", sys.executable, "-c", check]
    result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return f"{host}:{port} from the node: {lines[-1] if lines else result.returncode}"


def _healthz(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError as error:
        return f"{url}: {error}"
    return None if response.status_code == 200 else f"{url}: {response.status_code}"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"
