"""The node's kernel objects: network namespace, veth pair, namespace holder and cgroup root.

Everything here is named after the node (:class:`NodeLayout`) so `down` finds it again from any
process, and every removal tolerates what is already gone, so a half-finished `up` is undone by
the same code.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from kuberth.cluster.node.layout import POD_CIDR, VETH_SUPERNET, NodeLayout
from kuberth.cluster.node.prerequisites import cgroup_mounts, cgroup_v1_hierarchies, which


class NodeError(Exception):
    """The real node could not be set up; the message says which step and what it printed."""


def run(*command: str, check: bool = True) -> str:
    """Run a short command; raise :class:`NodeError` with its output when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    if check and result.returncode != 0:
        raise NodeError(f"`{' '.join(command)}` failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def free_subnet(addresses: str | None = None) -> int:
    """The lowest /24 of :data:`VETH_SUPERNET` no interface of the host uses yet."""
    text = addresses if addresses is not None else run("ip", "-4", "-o", "addr", "show")
    used = set()
    for token in text.split():
        with contextlib.suppress(ValueError):
            address = ipaddress.IPv4Interface(token).ip
            if address in VETH_SUPERNET:
                used.add(int(address) - int(VETH_SUPERNET.network_address) >> 8)
    for subnet in range(256):
        if subnet not in used:
            return subnet
    raise NodeError(f"every /24 of {VETH_SUPERNET} is in use on this host")


@contextlib.contextmanager
def network_lock() -> Iterator[None]:
    """Serialise choosing a /24 and taking it, between planes starting at the same time.

    The lock is an flock on the ``/run`` directory itself, so it leaves no file behind; it goes
    with the process that holds it.
    """
    descriptor = os.open("/run", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def create_network(layout: NodeLayout, holder_pid: int) -> None:
    """The veth pair that joins the node's network namespace (the holder's) to the host.

    The host end gets ``.1/24`` (so the host has a route to the node's address, and nothing else);
    the node end ``.2/24`` and a default route back through the host end. The namespace itself
    has no name under /run/netns: it lives exactly as long as the holder, and leaves no mount.
    """
    run("ip", "link", "add", layout.host_veth, "type", "veth", "peer", "name", layout.node_veth,
        "netns", str(holder_pid))  # fmt: skip
    run("ip", "addr", "add", f"{layout.host_ip}/24", "dev", layout.host_veth)
    run("ip", "link", "set", layout.host_veth, "up")
    node = ["nsenter", f"--target={holder_pid}", "--net", "ip"]
    run(*node, "addr", "add", f"{layout.node_ip}/24", "dev", layout.node_veth)
    run(*node, "link", "set", "lo", "up")
    run(*node, "link", "set", layout.node_veth, "up")
    run(*node, "route", "add", "default", "via", layout.host_ip)
    # Pods reach the API server (through the forwarder on the host end) as the node: the host has
    # no route to the pod range, which lives only in here. The rule is in the node's own ruleset.
    iptables = ["nsenter", f"--target={holder_pid}", "--net", str(which("iptables"))]
    run(*iptables, "-t", "nat", "-A", "POSTROUTING", "-s", POD_CIDR, "-o", layout.node_veth,
        "-j", "MASQUERADE")  # fmt: skip


def delete_network(layout: NodeLayout) -> None:
    """Remove the veth pair (both ends go together), if present. The namespace goes with the
    last process in it."""
    run("ip", "link", "del", layout.host_veth, check=False)


def veth_exists(layout: NodeLayout) -> bool:
    return Path("/sys/class/net", layout.host_veth).exists()


def create_cgroups(layout: NodeLayout) -> None:
    """The kubelet's cgroup root in every v1 hierarchy; cpuset needs its cpus and mems copied in,
    or no process may join it."""
    for mount in sorted(set(cgroup_v1_hierarchies().values())):
        directory = mount / layout.cgroup_root.lstrip("/")
        directory.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            parent, child = mount / name, directory / name
            if parent.is_file() and not child.read_text().strip():
                child.write_text(parent.read_text())


def cgroup_pids(layout: NodeLayout) -> set[int]:
    """Every process in the node's cgroup root (the pods' containers and sandboxes)."""
    pids: set[int] = set()
    for mount in cgroup_mounts():
        root = mount / layout.cgroup_root.lstrip("/")
        for procs in root.rglob("cgroup.procs") if root.is_dir() else ():
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(line) for line in procs.read_text().split())
    return pids


def remove_cgroups(layout: NodeLayout, timeout: float = 10.0) -> list[str]:
    """Kill what is left in the node's cgroups and remove them, deepest first.

    Returns the cgroups that could not be removed (still busy after ``timeout``).
    """
    deadline = time.monotonic() + timeout
    while True:
        for pid in cgroup_pids(layout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        left = []
        for mount in sorted(cgroup_mounts()):
            root = mount / layout.cgroup_root.lstrip("/")
            if not root.is_dir():
                continue
            for directory in sorted(
                (p for p in [root, *root.rglob("*")] if p.is_dir()),
                key=lambda p: len(p.parts),
                reverse=True,
            ):
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(str(directory))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def mount_namespace(pid: int) -> str | None:
    """The identity (``mnt:[inode]``) of a process's mount namespace, or None if it is gone."""
    try:
        return str(Path(f"/proc/{pid}/ns/mnt").readlink())
    except OSError:
        return None


def processes_in_mount_namespace(namespace: str) -> list[int]:
    """Every process in one mount namespace: the node's daemons and the shims containerd forked.

    The node's mount namespace is private to it, so this is exactly what the node started.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and mount_namespace(int(entry.name)) == namespace:
            found.append(int(entry.name))
    return found


def holder_command(script: str) -> list[str]:
    """The namespace holder: unshares a network namespace and a private mount namespace, sets
    them up (see :func:`kuberth.cluster.node.configs.namespace_script`) and sleeps.

    Every other node process joins both namespaces through this process.
    """
    return [
        "unshare", "--net", "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", script,
    ]  # fmt: skip


def inside(holder_pid: int, command: list[str]) -> list[str]:
    """``command`` run in the node's network and mount namespaces (nsenter execs, so the pid of
    the process started is the command's own)."""
    return ["nsenter", f"--target={holder_pid}", "--mount", "--net", "--", *command]
