"""`up`, `status` and `down` of a second, throwaway plane: crashes are reported, nothing is left."""

from __future__ import annotations

import os
import signal
import socket
import stat
from dataclasses import asdict
from pathlib import Path

import pytest

from kuberth.cluster.build import Binaries
from kuberth.cluster.components import Ports
from kuberth.cluster.plane import ClusterError, ControlPlane


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _down_if_running(plane: ControlPlane) -> None:
    """Its processes run in sessions of their own and would outlive pytest."""
    if plane.is_running():
        plane.down()


def test_status_reports_a_crash_and_down_leaves_nothing(binaries: Binaries, tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "plane")
    plane.up(binaries)
    try:
        assert plane.is_running()
        assert [c.state for c in plane.status()] == ["healthy"] * 5

        state = plane._read_state()
        assert state is not None
        ports = Ports(**state["ports"])
        pids = plane.pids()
        assert pids == state["pids"]
        assert {"etcd", "kube-apiserver", "kube-scheduler"} <= set(pids)
        os.kill(pids["kube-scheduler"], signal.SIGKILL)
        os.waitpid(pids["kube-scheduler"], 0)

        assert "kube-scheduler" not in plane.pids(), "only the components that run"
        by_name = {c.name: c for c in plane.status()}
        assert by_name["kube-scheduler"].state == "crashed"
        assert by_name["kube-scheduler"].detail.strip(), "a crash comes with the tail of its log"
        assert by_name["kube-apiserver"].state == "healthy"

        stopped = plane.down()
        assert set(stopped) == {"etcd", "kube-apiserver", "kube-controller-manager", "kwok"}
        assert not (tmp_path / "plane").exists()
        assert not any(_listening(port) for port in asdict(ports).values())
        for pid in pids.values():
            with pytest.raises(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reaped: not even a zombie remains
    finally:
        _down_if_running(plane)


def test_a_component_that_dies_at_start_is_reported_with_its_log(
    binaries: Binaries, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-etcd"
    broken.mkdir()
    script = broken / "etcd"
    script.write_text(
        "#!/bin/sh\necho 'etcdmain: listen tcp: address already in use' >&2\nexit 3\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    plane = ControlPlane(tmp_path / "plane")

    try:
        with pytest.raises(ClusterError) as failure:
            plane.up(Binaries(binaries.kubernetes_dir, broken, binaries.kwok_dir))
    finally:
        _down_if_running(plane)

    assert "etcd exited with code 3" in str(failure.value)
    assert "address already in use" in str(failure.value)
    assert not plane.is_running()
    assert not (tmp_path / "plane").exists()
