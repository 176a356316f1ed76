"""`kuberth cluster up` on a machine that cannot run a real node: one plain message, kwok only.

Runs in the ordinary suite: it starts no real node. The machine's lack is simulated by a PATH
without containerd (on a machine without the packages it is simply true).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kuberth.cluster.build import Binaries


def _kuberth() -> list[str]:
    script = Path(sys.executable).with_name("kuberth")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kuberth"]


def test_up_says_once_why_there_is_no_real_node_and_runs_kwok_only(
    binaries: Binaries, tmp_path: Path
) -> None:
    # `binaries` has built (or found) the plane, so `up` needs nothing from PATH.
    environment = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    environment |= {"PATH": str(tmp_path / "empty"), "KUBERTH_CLUSTER_DIR": str(tmp_path / "c")}

    def kuberth(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_kuberth(), "cluster", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    insisted = kuberth("up", "--real-node")
    assert insisted.returncode == 1
    assert "no real node: " in insisted.stderr
    assert "missing commands containerd" in insisted.stderr

    try:
        up = kuberth("up")
        assert up.returncode == 0, up.stderr
        assert up.stderr.count("no real node") == 1
        assert "missing commands containerd" in up.stderr
        assert "The plane runs with the kwok node only" in up.stderr
        status = kuberth("status")
        assert status.returncode == 0, status.stdout
        assert "kwok" in status.stdout
        assert "node/" not in status.stdout
    finally:
        down = kuberth("down")
    assert down.returncode == 0, down.stderr
    assert not (tmp_path / "c").exists()
