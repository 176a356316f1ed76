"""Starts, inspects and stops the local control plane as plain processes on 127.0.0.1.

`up` runs each component in its own session so it outlives the command that started it; the pids,
ports and paths go to ``state.json`` so `status` and `down` can find them again from any process.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from kuberth.cluster.build import Binaries, NodeBinaries
from kuberth.cluster.components import (
    COMPONENTS,
    FAKE_NODE_NAME,
    Layout,
    Ports,
    commands,
    fake_node,
    health_urls,
    kubeconfig,
    server_url,
)
from kuberth.cluster.pki import CLIENTS, create_pki
from kuberth.cluster.processes import Children, alive

if TYPE_CHECKING:
    from kuberth.cluster.node.runtime import RealNode

#: How long each component may take to become healthy; envtest allows 20 s for the API server.
START_TIMEOUT = 60.0
LOG_TAIL_LINES = 30

Report = Callable[[str], None]


class ClusterError(Exception):
    """The local control plane failed; the message carries what the failing component logged."""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int
    state: str  # healthy | unhealthy | crashed
    detail: str


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a component's log, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ControlPlane:
    """One local control plane, identified by its state directory."""

    def __init__(self, directory: Path) -> None:
        self.layout = Layout(directory)
        self._children = Children(process_group=True)
        self._stopping = False
        self._real_node: RealNode | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.layout.admin_kubeconfig

    @property
    def real_node(self) -> RealNode:
        """The plane's real node (which may not exist: see :meth:`RealNode.exists`)."""
        if self._real_node is None:
            from kuberth.cluster.node.runtime import RealNode

            self._real_node = RealNode(self.layout)
        return self._real_node

    # -- state ---------------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.layout.state_file.read_text())
        except FileNotFoundError:
            return None
        return state

    def _write_state(self, ports: Ports, pids: dict[str, int]) -> None:
        state = {"ports": asdict(ports), "pids": pids, "kubeconfig": str(self.kubeconfig)}
        self.layout.state_file.write_text(json.dumps(state, indent=2))

    def pids(self) -> dict[str, int]:
        """The process ids of the components that run, by name (none when the plane is down)."""
        state = self._read_state()
        return {} if state is None else {n: p for n, p in state["pids"].items() if alive(p)}

    def is_running(self) -> bool:
        """Whether a plane started from this directory has processes alive."""
        return bool(self.pids())

    # -- up ------------------------------------------------------------------------------------

    def up(
        self,
        binaries: Binaries,
        *,
        node: NodeBinaries | None = None,
        apps_port: int | None = None,
        report: Report = lambda _: None,
    ) -> Path:
        """Start every component, wait until the API server is ready and the Node is Ready.

        With ``node``, also start a real node beside the kwok one (see
        :mod:`kuberth.cluster.node`) and wait until it is Ready too; the caller checks first that
        the machine allows it; ``apps_port`` is the host port its Ingress controller is reached on
        (see :mod:`kuberth.cluster.node.ingress`). Returns the admin kubeconfig. On failure
        nothing is left running.

        Raises:
            ClusterError: a plane is already running here, or a component crashed or did not
                become healthy in time (the message has the tail of its log).
        """
        if self.is_running():
            raise ClusterError(f"a control plane is already running from {self.layout.directory}")
        if self.real_node.exists():  # a node whose plane died: its kernel objects go first
            from kuberth.cluster.node.namespaces import NodeError

            try:
                self.real_node.stop()
            except NodeError as error:
                raise ClusterError(f"a real node left here does not come down: {error}") from error
        shutil.rmtree(self.layout.directory, ignore_errors=True)
        started = time.monotonic()
        self.layout.logs.mkdir(parents=True)
        pki = create_pki(self.layout.pki.directory)
        ports = Ports(*(free_port() for _ in range(6)))
        for client in CLIENTS:
            path = self.kubeconfig if client == "admin" else self.layout.kubeconfig(client)
            path.parent.mkdir(parents=True, exist_ok=True)
            config = kubeconfig(
                server=server_url(ports),
                ca_pem=pki.ca_cert.read_bytes(),
                cert_pem=pki.client_cert(client).read_bytes(),
                key_pem=pki.client_key(client).read_bytes(),
                user=CLIENTS[client][0],
            )
            path.write_text(yaml.safe_dump(config))
            path.chmod(0o600)

        argv = commands(binaries, self.layout, ports)
        urls = health_urls(ports)
        pids: dict[str, int] = {}
        try:
            # etcd and the API server come first, one after the other; the rest only need the API.
            for name in ("etcd", "kube-apiserver"):
                pids[name] = self._spawn(name, argv[name])
                self._write_state(ports, pids)
                self._wait_healthy(name, urls[name])
                report(f"{name} ready ({time.monotonic() - started:.1f}s)")
            for name in COMPONENTS[2:]:
                pids[name] = self._spawn(name, argv[name])
            self._write_state(ports, pids)
            self._create_and_wait_for_node()
            for name in COMPONENTS[2:]:
                self._wait_healthy(name, urls[name])
            report(f"node {FAKE_NODE_NAME} Ready ({time.monotonic() - started:.1f}s)")
            if node is not None:
                self._start_real_node(node, ports, apps_port, report)
        except BaseException:
            self.down()
            raise
        return self.kubeconfig

    def _start_real_node(
        self, node: NodeBinaries, ports: Ports, apps_port: int | None, report: Report
    ) -> None:
        from kuberth.cluster.node.namespaces import NodeError

        try:
            self.real_node.start(
                node, apiserver_port=ports.apiserver, apps_port=apps_port, report=report
            )
        except NodeError as error:
            raise ClusterError(f"the real node did not start: {error}") from error

    def _spawn(self, name: str, argv: list[str]) -> int:
        with self.layout.log(name).open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.layout.directory,
                start_new_session=True,  # outlive `kuberth cluster up`; no Ctrl-C from its terminal
            )
        self._children[name] = process
        return process.pid

    def _crashed(self, name: str) -> ClusterError | None:
        process = self._children.get(name)
        if process is None or process.poll() is None:
            return None
        return ClusterError(
            f"{name} exited with code {process.returncode} during start-up; "
            f"last lines of {self.layout.log(name)}:\n{log_tail(self.layout.log(name))}"
        )

    def _wait_healthy(self, name: str, url: str) -> None:
        # A process that is still starting has no event to watch; poll its health endpoint briefly.
        deadline = time.monotonic() + START_TIMEOUT
        with self._http() as client:
            while True:
                if crash := self._crashed(name):
                    raise crash
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"{name} was not healthy at {url} after {START_TIMEOUT:.0f}s; "
                        f"last lines of {self.layout.log(name)}:\n{log_tail(self.layout.log(name))}"
                    )
                time.sleep(0.05)

    def _http(self) -> httpx.Client:
        pki = self.layout.pki
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(pki.client_cert("admin"), pki.client_key("admin"))
        # The controller manager and scheduler serve self-signed certs: trust, for these probes
        # only, the loopback endpoints this plane itself chose.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return httpx.Client(verify=context, timeout=2.0)

    def _create_and_wait_for_node(self) -> None:
        from kubernetes import client, config, watch

        api = client.CoreV1Api(config.new_client_from_config(str(self.kubeconfig)))
        try:
            node = client.V1Node.from_dict(fake_node())
            assert node is not None
            api.create_node(node)
            stream = watch.Watch().stream(
                api.list_node,
                field_selector=f"metadata.name={FAKE_NODE_NAME}",
                timeout_seconds=int(START_TIMEOUT),
            )
            for event in stream:
                conditions = event["object"].status.conditions or []
                if any(c.type == "Ready" and c.status == "True" for c in conditions):
                    return
                for name in COMPONENTS[2:]:
                    if crash := self._crashed(name):
                        raise crash
        finally:
            api.api_client.close()
        raise ClusterError(
            f"node {FAKE_NODE_NAME} did not become Ready in {START_TIMEOUT:.0f}s; last lines of "
            f"the kwok log:\n{log_tail(self.layout.log('kwok'))}"
        )

    def stop_component(self, name: str) -> None:
        """Stop one component (fault tests); `start_component` brings it back."""
        state = self._read_state()
        if state is None or name not in state["pids"]:
            raise ClusterError(f"{name} is not part of a running plane here")
        self._children.stop(name, state["pids"][name])

    def start_component(self, binaries: Binaries, name: str) -> None:
        """Start a stopped component again with its old ports and wait until it is healthy."""
        state = self._read_state()
        if state is None:
            raise ClusterError(f"no control plane was started from {self.layout.directory}")
        ports = Ports(**state["ports"])
        pids = dict(state["pids"])
        pids[name] = self._spawn(name, commands(binaries, self.layout, ports)[name])
        self._write_state(ports, pids)
        self._wait_healthy(name, health_urls(ports)[name])

    def restart_crashed(self, binaries: Binaries) -> list[str]:
        """Start again every component that has exited, as a supervisor would; returns them.

        The controller manager, for one, exits when the API server goes away while it is still
        setting up its controllers; in a real cluster the kubelet or systemd restarts it.
        """
        crashed = [c.name for c in self.status() if c.state == "crashed"]
        for name in crashed:
            self.start_component(binaries, name)
        return crashed

    def report_crashes(self, report: Report) -> None:
        """Report, with the tail of its log, any component this process started that exits.

        One daemon thread per component blocks on its exit; `down` is not reported as a crash.
        """

        def wait(name: str, process: subprocess.Popen[bytes]) -> None:
            code = process.wait()
            if not self._stopping:
                log = self.layout.log(name)
                report(f"{name} exited with code {code}; last lines of {log}:\n{log_tail(log)}")

        for name, process in self._children.items():
            threading.Thread(target=wait, args=(name, process), daemon=True).start()

    # -- status and down -----------------------------------------------------------------------

    def status(self) -> list[ComponentStatus]:
        """Each component's state; a crashed one carries the tail of its log."""
        state = self._read_state()
        if state is None:
            return []
        urls = health_urls(Ports(**state["ports"]))
        result = []
        with self._http() as client:
            for name, pid in state["pids"].items():
                if not alive(pid):
                    tail = log_tail(self.layout.log(name))
                    result.append(ComponentStatus(name, pid, "crashed", tail))
                    continue
                try:
                    response = client.get(urls[name])
                    healthy = response.status_code == 200
                    detail = (
                        urls[name] if healthy else f"{response.status_code} {response.text[:200]}"
                    )
                except httpx.HTTPError as error:
                    healthy, detail = False, f"{urls[name]}: {error}"
                result.append(
                    ComponentStatus(name, pid, "healthy" if healthy else "unhealthy", detail)
                )
        if self.real_node.exists():
            result += [
                ComponentStatus(f"node/{c.name}", c.pid, c.state, c.detail)
                for c in self.real_node.status()
            ]
        return result

    def down(self) -> list[str]:
        """Stop every process this plane started and remove its state; returns what was stopped."""
        state = self._read_state()
        pids: dict[str, int] = state["pids"] if state else {}
        pids.update({name: p.pid for name, p in self._children.items() if name not in pids})
        self._stopping = True
        stopped = []
        # The node first: its kubelet would otherwise log the API server's absence meanwhile.
        # A node that does not come down cleanly still lets the plane come down.
        from kuberth.cluster.node.namespaces import NodeError

        node_problem: NodeError | None = None
        try:
            stopped += [f"node/{name}" for name in self.real_node.stop()]
        except NodeError as error:
            node_problem = error
        for name in reversed(COMPONENTS):
            pid = pids.get(name)
            if pid is None:
                continue
            if self._children.stop(name, pid):
                stopped.append(name)
        self._children.clear()
        shutil.rmtree(self.layout.directory, ignore_errors=True)
        if node_problem is not None:
            raise ClusterError(f"the real node did not come down cleanly: {node_problem}")
        return stopped
