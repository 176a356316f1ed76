"""Whether this machine can run a real node, and in one sentence why not.

A real node needs root (namespaces, mounts, cgroups, veth), the capabilities behind those, and the
Debian packages containerd, runc, containernetworking-plugins, iptables and ipset
(``make system-deps``). Each check is cheap and side-effect free, so `kuberth cluster up` runs
them every time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: Capabilities the node's set-up uses: mounts and namespaces, veth and addresses, and the
#: kubelet's and runc's own needs (chown, kill, ptrace of containers' processes).
REQUIRED_CAPABILITIES = {
    "CAP_SYS_ADMIN": 21,
    "CAP_NET_ADMIN": 12,
    "CAP_SYS_PTRACE": 19,
    "CAP_KILL": 5,
    "CAP_CHOWN": 0,
}

#: Commands looked up on PATH (or in /usr/sbin, where Debian puts some of them).
REQUIRED_COMMANDS = (
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "iptables",
    "iptables-save",
    "ipset",
    "ip",
    "nsenter",
    "unshare",
    "mount",
)

#: CNI plugins the node's network configuration uses.
REQUIRED_CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")

#: Where Debian (first) and upstream put CNI plugins.
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))

#: The packages that bring the commands and plugins above.
DEBIAN_PACKAGES = "containerd runc containernetworking-plugins iptables ipset"

_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"]
)


def which(command: str) -> str | None:
    """A command's path, also looking in the sbin directories a non-login PATH may lack."""
    return shutil.which(command, path=_SEARCH_PATH)


def cni_bin_dir() -> Path | None:
    """The first directory that holds every plugin of :data:`REQUIRED_CNI_PLUGINS`."""
    for directory in CNI_BIN_DIRS:
        if all((directory / plugin).is_file() for plugin in REQUIRED_CNI_PLUGINS):
            return directory
    return None


def effective_capabilities(status: str | None = None) -> int:
    """The CapEff mask of this process (from ``/proc/self/status`` unless given)."""
    text = status if status is not None else Path("/proc/self/status").read_text()
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


_CONTROLLERS = {"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"}


def cgroup_v1_hierarchies(mounts: str | None = None) -> dict[str, Path]:
    """The cgroup v1 hierarchies (controller -> mount point) of this machine."""
    text = mounts if mounts is not None else Path("/proc/self/mounts").read_text()
    found: dict[str, Path] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "cgroup":
            for option in fields[3].split(","):
                if option in _CONTROLLERS or option.startswith("name="):
                    found[option] = Path(fields[1])
    return found


def cgroup_mounts(mounts: str | None = None) -> set[Path]:
    """Every cgroup mount point, v1 and v2 (the kubelet also makes its root in the hybrid
    ``unified`` tree)."""
    text = mounts if mounts is not None else Path("/proc/self/mounts").read_text()
    return {
        Path(fields[1])
        for fields in (line.split() for line in text.splitlines())
        if len(fields) >= 3 and fields[2] in {"cgroup", "cgroup2"}
    }


def missing() -> list[str]:
    """What this machine lacks for a real node; empty when it has everything."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("not running as root")
    capabilities = effective_capabilities()
    lacking = [name for name, bit in REQUIRED_CAPABILITIES.items() if not capabilities >> bit & 1]
    if lacking:
        problems.append("missing capabilities " + ", ".join(lacking))
    commands = [command for command in REQUIRED_COMMANDS if which(command) is None]
    if commands:
        problems.append("missing commands " + ", ".join(commands))
    if cni_bin_dir() is None:
        problems.append(
            "missing CNI plugins ("
            + ", ".join(REQUIRED_CNI_PLUGINS)
            + ") in "
            + " or ".join(str(d) for d in CNI_BIN_DIRS)
        )
    if not Path("/proc/self/ns/net").exists():
        problems.append("the kernel has no network namespaces")
    if not {"cpu", "memory", "pids", "cpuset"} <= cgroup_v1_hierarchies().keys():
        # Only cgroup v1 (with the hybrid, hugetlb-only unified tree) is proven so far.
        problems.append(
            "no cgroup v1 cpu/memory/pids/cpuset hierarchies (cgroup v2 is not yet supported)"
        )
    return problems


def explain(problems: list[str]) -> str:
    """The one message `kuberth cluster up` prints when it falls back to kwok only."""
    return (
        "no real node: " + "; ".join(problems) + ". The plane runs with the kwok node only: "
        "pods are simulated, no container really runs. A real node needs root and the Debian "
        f"packages {DEBIAN_PACKAGES} (`make system-deps`)."
    )
