"""`kuberth dev` (what `make run` runs): Ctrl-C stops everything it started.

The command runs as a process of its own, in a session of its own, with a private cluster directory
and the binaries already built; Ctrl-C is a SIGINT to its process group, as a terminal sends it.
Whatever happens, the test kills everything it saw started before it returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from kuberth.cluster.build import Binaries
from kuberth.cluster.plane import ControlPlane, free_port
from tests.timing import eventually, scaled

#: A process, told apart from a later one with the same pid by its start time.
Process = tuple[int, str]


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state is [0], ppid [1]), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _running(process: Process) -> bool:
    """Still the same process and not a zombie."""
    fields = _stat(process[0])
    return fields is not None and fields[19] == process[1] and fields[0] != "Z"


def _tree(root: int) -> set[Process]:
    """The process and all of its descendants, as they are now."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        starts[int(entry.name)] = fields[19]
    found: set[Process] = set()
    pending = [root]
    while pending:
        pid = pending.pop()
        if pid in starts:
            found.add((pid, starts[pid]))
            pending.extend(children.get(pid, []))
    return found


def _listening_ports(pids: set[int]) -> set[int]:
    """TCP ports these processes listen on (their sockets, matched in /proc/net/tcp*)."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, PermissionError, ProcessLookupError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = str(fd.readlink())
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _using(directory: Path) -> set[Process]:
    """Processes working in ``directory`` or naming it on their command line: the plane's."""
    found: set[Process] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cwd = str((entry / "cwd").readlink())
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = _stat(int(entry.name))
            if fields is not None and (cwd.startswith(str(directory)) or str(directory) in command):
                found.add((int(entry.name), fields[19]))
    return found


def _accepting(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _kill(processes: set[Process]) -> None:
    """SIGKILL each process's group (the plane's components lead their own) and the process."""
    for pid, start in processes:
        if _running((pid, start)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def dev_environment(binaries: Binaries, tmp_path: Path) -> Iterator[dict[str, str]]:
    """``kuberth dev``'s environment: only a private cluster directory and a free port are set."""
    cluster_dir = tmp_path / "cluster"
    environment = {
        key: value
        for key, value in os.environ.items()
        if (not key.startswith("KUBERTH_") or key == "KUBERTH_CACHE_DIR") and key != "KUBECONFIG"
    }
    environment.update(
        KUBERTH_CLUSTER_DIR=str(cluster_dir),
        KUBERTH_HOST="127.0.0.1",
        KUBERTH_PORT=str(free_port()),
    )
    try:
        yield environment
    finally:
        ControlPlane(cluster_dir).down()  # a safety net: normally nothing is left to stop
        shutil.rmtree(cluster_dir, ignore_errors=True)


def _kuberth() -> list[str]:
    """The console script `make run` starts (through uv), else the module."""
    script = Path(sys.executable).with_name("kuberth")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kuberth"]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def _dev(
    environment: dict[str, str], log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], set[Process]]]:
    """`kuberth dev` started; yields it and the set of processes seen in its tree (kept up to
    date by the caller). Afterwards everything seen is killed, whatever the test's outcome."""
    seen: set[Process] = set()
    with log.open("wb") as output:
        dev = subprocess.Popen(
            [*_kuberth(), "dev"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
            # and Ctrl-C's default action, as there: a suite started in the background of a
            # non-interactive shell would otherwise pass on an ignored SIGINT.
            preexec_fn=_default_sigint,
        )
    try:
        seen |= _tree(dev.pid)
        yield dev, seen
    finally:
        if dev.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(timeout=30)
        _kill(seen | _using(Path(environment["KUBERTH_CLUSTER_DIR"])))


def _ctrl_c(
    dev: subprocess.Popen[bytes],
    seen: set[Process],
    ports: set[int],
    log: Path,
    *,
    cluster_dir: Path,
    times: int,
) -> tuple[int, str]:
    """Ctrl-C ``times`` times; returns the exit code and the output once it has exited, after
    checking that none of ``seen`` runs and none of ``ports`` accepts connections any more."""
    seen |= _tree(dev.pid)
    for _ in range(times):
        os.killpg(dev.pid, signal.SIGINT)
    try:
        code = dev.wait(timeout=scaled(90))
    except subprocess.TimeoutExpired:
        pytest.fail(f"kuberth dev did not exit after Ctrl-C:\n{log.read_text()[-3000:]}")
    output = log.read_text()
    left = {process for process in seen if _running(process)} | _using(cluster_dir)
    assert not left, f"still running after Ctrl-C: {sorted(left)}\n{output[-3000:]}"
    listening = {port for port in ports if _accepting(port)}
    assert not listening, f"still accepting connections on {sorted(listening)}"
    assert "Traceback" not in output, output[-3000:]
    return code, output


def wait_serving(
    dev: subprocess.Popen[bytes], seen: set[Process], log: Path, url: str, *, within: float
) -> None:
    """Until ``kuberth dev`` answers /readyz at ``url``, noting every process it started."""

    def serving() -> bool:
        assert dev.poll() is None, f"kuberth dev exited early:\n{log.read_text()[-3000:]}"
        seen.update(_tree(dev.pid))
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        return False

    eventually(serving, within=within, what="kuberth dev serving /readyz", interval=0.3)


@pytest.mark.parametrize("times", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_stops_the_server_the_stand_in_and_the_control_plane(
    times: int, dev_environment: dict[str, str], tmp_path: Path
) -> None:
    """Twice: under `uv run` the terminal's Ctrl-C and uv's forwarded copy both arrive."""
    url = f"http://127.0.0.1:{dev_environment['KUBERTH_PORT']}"
    cluster_dir = Path(dev_environment["KUBERTH_CLUSTER_DIR"])
    log = tmp_path / "dev.log"
    with _dev(dev_environment, log) as (dev, seen):
        wait_serving(dev, seen, log, url, within=180)

        # What it started: the plane's components (state.json), the GitHub stand-in it sends
        # sign-ins to, and whatever else it and its children listen on.
        state = json.loads((cluster_dir / "state.json").read_text())
        seen |= _tree(dev.pid)
        assert {pid for pid, _ in seen} >= set(state["pids"].values())
        login = httpx.get(f"{url}/auth/github/login", timeout=10)
        assert login.status_code == 302, login.text
        stand_in = urlsplit(login.headers["location"])
        assert stand_in.port is not None
        page = httpx.get(login.headers["location"], timeout=10)
        assert page.status_code == 200, page.text  # the stand-in's sign-in page
        known = {int(dev_environment["KUBERTH_PORT"]), stand_in.port, *state["ports"].values()}
        assert all(_accepting(port) for port in known), known
        ports = known | _listening_ports({pid for pid, _ in seen})

        code, output = _ctrl_c(dev, seen, ports, log, cluster_dir=cluster_dir, times=times)
        assert code == 0, output[-3000:]
        assert "stopping the control plane" in output
        assert not ControlPlane(cluster_dir).is_running()


def test_ctrl_c_while_the_control_plane_starts_leaves_nothing_running(
    dev_environment: dict[str, str], tmp_path: Path
) -> None:
    """The first `make run` takes a while; giving up half-way must not leave etcd behind."""
    cluster_dir = Path(dev_environment["KUBERTH_CLUSTER_DIR"])
    log = tmp_path / "dev.log"
    with _dev(dev_environment, log) as (dev, seen):

        def etcd_started() -> dict[str, dict[str, int]] | None:
            assert dev.poll() is None, f"kuberth dev exited early:\n{log.read_text()[-3000:]}"
            seen.update(_tree(dev.pid))
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                state: dict[str, dict[str, int]] = json.loads(
                    (cluster_dir / "state.json").read_text()
                )
                if state["pids"]:
                    return state
            return None

        state = eventually(etcd_started, within=60, what="the plane's first component started")
        seen |= _tree(dev.pid)
        assert {pid for pid, _ in seen} >= set(state["pids"].values())

        code, output = _ctrl_c(
            dev, seen, set(state["ports"].values()), log, cluster_dir=cluster_dir, times=1
        )
        assert code != 0, output[-3000:]  # interrupted: it did not start
        assert not ControlPlane(cluster_dir).is_running()


def test_ctrl_c_just_after_the_control_plane_is_ready_leaves_nothing_running(
    dev_environment: dict[str, str], tmp_path: Path
) -> None:
    """Between the plane being ready and the server taking over Ctrl-C, the GitHub stand-in
    starts: an interrupt then (or the stand-in failing) must still stop the plane."""
    cluster_dir = Path(dev_environment["KUBERTH_CLUSTER_DIR"])
    log = tmp_path / "dev.log"
    with _dev(dev_environment, log) as (dev, seen):

        def plane_ready() -> bool:
            assert dev.poll() is None, f"kuberth dev exited early:\n{log.read_text()[-3000:]}"
            seen.update(_tree(dev.pid))
            return "control plane ready" in log.read_text()

        eventually(plane_ready, within=120, what="the control plane ready", interval=0.01)
        state = json.loads((cluster_dir / "state.json").read_text())
        ports = set(state["ports"].values())
        assert all(_accepting(port) for port in ports), ports

        _ctrl_c(dev, seen, ports, log, cluster_dir=cluster_dir, times=1)
        assert not ControlPlane(cluster_dir).is_running()
